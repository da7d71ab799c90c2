"""Images/s of our ImageNet-layout folder path against torchvision's, and the JPEG decode limit.

It writes ImageNet-sized JPEGs (400-600 x 300-450 px, photo-like content) to a temporary
folder, then measures, alternately and on the same files:

- per core (one process, one thread): ``torchvision.io.decode_jpeg`` alone (the decode limit);
  our worker's work per image (decode_jpeg, then random-resized-crop + flip on the uint8 tensor);
  torchvision's classic work per image (PIL decode, RandomResizedCrop, RandomHorizontalFlip,
  ToTensor, Normalize);
- through a DataLoader with the same workers and batch: our imagefolder training batches (uint8,
  as they reach the device, and once more normalised on ``--device``), the same with
  ``decode: device`` (the workers only read files; ``--device`` decodes each batch's JPEGs
  together and crops them: nvJPEG on a GPU, one thread of this process on a CPU), and
  torchvision's ImageFolder + DataLoader with the classic transforms (float32 batches).

The loaders' rates leave out each epoch's first batch, which waits for the workers to start.
On a loaded machine the workers share cores with everything else; the per-core ratios are the
steadier ones.

    python benchmarks/folder_pipeline.py                      # ~1-2 minutes on 2 cores
    python benchmarks/folder_pipeline.py --images 2000 --workers 8 --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from experiments.data.datasets import IMAGENET_MEAN, IMAGENET_STD, decode_batch, load_dataset, read_encoded, read_image  # noqa: E402


def write_jpegs(root: Path, images: int, seed: int = 0) -> list[Path]:
    """``images`` photo-like JPEGs (smooth colour fields with texture, 400-600 x 300-450 px, quality
    90) in ImageNet layout under ``root`` (train/ and val/, two classes); returns the train files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = []
    for split, n in (("train", images), ("val", 2)):
        for c in range(2):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            w, h = int(rng.integers(400, 600)), int(rng.integers(300, 450))
            yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
            base = np.stack([np.sin(xx * rng.uniform(2, 9) + rng.uniform(0, 6)) * np.cos(yy * rng.uniform(2, 9))
                             for _ in range(3)], 2)
            img = (base * 90 + 128 + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
            path = root / split / f"class{i % 2}" / f"{i}.jpg"
            Image.fromarray(img).save(path, quality=90)
            if split == "train":
                files.append(path)
    return files


def per_core(files: list[Path], fn) -> float:
    """Images/s of ``fn(path)`` over ``files`` in this process on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            t0 = time.perf_counter()
            for f in files:
                fn(str(f))
            return len(files) / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


def steady_rate(batches, device: torch.device = torch.device("cpu")) -> float:
    """Images/s of an epoch's batches after the first (which waits for the workers to start)."""
    it = iter(batches)
    next(it)
    t0, n = time.perf_counter(), 0
    for _, y in it:
        n += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - t0)


def classic_transform(resolution: int):
    """torchvision's classic training transform on PIL images, float32 out."""
    from torchvision import transforms

    return transforms.Compose([transforms.RandomResizedCrop(resolution), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def measure(root: Path, files: list[Path], resolution: int, batch: int, workers: int, device: torch.device) -> dict:
    """One round of every measurement (images/s)."""
    from PIL import Image
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.io import decode_jpeg, read_file

    data = load_dataset({"name": "imagefolder", "root": str(root), "workers": workers}, resolution, 3)
    on_device = load_dataset({"name": "imagefolder", "root": str(root), "workers": workers, "decode": "device"},
                             resolution, 3).to(device)
    classic = classic_transform(resolution)
    g = torch.Generator().manual_seed(0)
    tv = DataLoader(datasets.ImageFolder(str(root / "train"), transform=classic), batch_size=batch, shuffle=True,
                    num_workers=workers, drop_last=True, generator=g)
    return {
        "decode": per_core(files, lambda f: decode_jpeg(read_file(f))),
        "ours_core": per_core(files, lambda f: data.train_tf(read_image(f))),
        "tv_core": per_core(files, lambda f: classic(Image.open(f).convert("RGB"))),
        "ours": steady_rate(data._loader(data.train_set, batch, True, g, drop_last=True)),
        "ours_normalised": steady_rate(data.to(device).train_batches(batch, g), device),
        "ours_device_decode": steady_rate(on_device.train_batches(batch, g), device),
        "tv": steady_rate(tv),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=384, help="training JPEGs to write")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="alternating epochs of each (medians shown)")
    p.add_argument("--device", default="cpu", help="where batches are normalised (and decoded with decode: device)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="archscale-folder-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        files = write_jpegs(root, args.images)
        mb = sum(f.stat().st_size for f in files) / 2**20
        print(f"wrote {len(files)} JPEGs ({mb / len(files) * 1024:.0f} KB each) in {time.perf_counter() - t0:.0f}s")
        decode_batch([read_encoded(str(f)) for f in files[:2]], device)  # its first call sets up the decoder
        runs = []
        for _ in range(args.repeats):
            runs.append(measure(root, files, args.resolution, args.batch_size, args.workers, device))
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    w = max(1, args.workers)
    limit = m["decode"] * w
    print(f"folder pipeline at {args.resolution} px, {len(files)} ImageNet-sized JPEGs; medians of {args.repeats} "
          f"alternating rounds")
    print("  per core (one process, one thread):")
    print(f"    decode_jpeg alone (the decode limit)          {m['decode']:7.0f} img/s")
    print(f"    ours: decode_jpeg + crop + flip on uint8      {m['ours_core']:7.0f} img/s   "
          f"{m['ours_core'] / m['decode']:.0%} of the limit")
    print(f"    torchvision: PIL + classic transforms, float  {m['tv_core']:7.0f} img/s   "
          f"ours / torchvision {m['ours_core'] / m['tv_core']:.2f}")
    print(f"  through a DataLoader, batch {args.batch_size}, {args.workers} workers (first batch left out):")
    print(f"    ours, uint8 batches (what the device gets)    {m['ours']:7.0f} img/s   "
          f"{m['ours'] / limit:.0%} of {w} x the decode limit")
    print(f"    {'ours, + normalised on ' + args.device:<46}{m['ours_normalised']:7.0f} img/s")
    print(f"    {'ours, decode: device (decoded on ' + args.device + ')':<46}{m['ours_device_decode']:7.0f} img/s   "
          f"{m['ours_device_decode'] / limit:.0%} of {w} x the decode limit")
    print(f"    torchvision ImageFolder+DataLoader, float32   {m['tv']:7.0f} img/s   "
          f"ours / torchvision {m['ours'] / m['tv']:.2f}")
    batches, prefetched = len(files) // args.batch_size, 2 * args.workers  # DataLoader's prefetch_factor 2
    if batches < 4 * prefetched:
        print(f"  note: an epoch is {batches} batches and the workers prefetch {prefetched} while the first is "
              f"awaited, so the DataLoader rows overstate the steady rate; use --images "
              f"{4 * prefetched * args.batch_size} or more")
    return {**m, "ratio": m["ours"] / m["tv"], "ratio_per_core": m["ours_core"] / m["tv_core"],
            "of_decode_limit": m["ours"] / limit}


if __name__ == "__main__":
    main()
