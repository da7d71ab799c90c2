"""Images/s of our ImageNet-layout folder path: loaders against torchvision's, and training against in-memory data.

It writes photo-like JPEGs in ImageNet layout (``write_jpegs``: in parallel, one process per
core, and cached under ``--out`` so a rerun reuses them), then measures on the same files.

Loader rates (the default), alternately and on the same files:

- per core (one process, one thread): ``torchvision.io.decode_jpeg`` alone (the decode limit);
  our worker's work per image (decode_jpeg, then random-resized-crop + flip on the uint8 tensor);
  torchvision's classic work per image (PIL decode, RandomResizedCrop, RandomHorizontalFlip,
  ToTensor, Normalize);
- through a DataLoader with the same workers and batch: our training batches as the workers hand
  them over (uint8), the same normalised on ``--device``, the same with ``decode: device`` (the
  workers only read files; ``--device`` decodes each batch's JPEGs together and crops them in one
  op: nvJPEG on a GPU, the training process on a CPU), and torchvision's ImageFolder + DataLoader
  with the classic transforms (float32 batches). These leave out each epoch's first batch.

``--train``: one trial per data path, the same network, batch and recipe (``train_trial``; bf16,
channels-last and ``torch.compile`` on a GPU): in memory (synthetic images at the training
resolution: the ceiling), the folder with ``decode: workers``, with ``decode: device``, and
``decode: auto`` (what it chose). Each trains ``--epochs`` epochs and reports the last one's
images/s (the first compiles and warms up) and its loss, with the ratio to in memory.

    python benchmarks/folder_pipeline.py                         # loader rates, ~1-2 minutes on 2 cores
    python benchmarks/folder_pipeline.py --train --smoke         # the training comparison, tiny, on a CPU
    python benchmarks/folder_pipeline.py --train --device cuda --out /tmp/fp   # ResNet-50, 160 px
    python benchmarks/folder_pipeline.py --train --device cuda --resolution 224 --image-size 500x375
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from experiments.data.crops import crop_draws, crop_one  # noqa: E402
from experiments.data.datasets import IMAGENET_MEAN, IMAGENET_STD, load_dataset  # noqa: E402
from experiments.data.folder import available_cpus, decode_batch, read_encoded, read_image  # noqa: E402


# ----- the JPEGs -----------------------------------------------------------------------------------
def _write_some(job: tuple) -> int:
    """Write one process's share of the JPEGs: smooth colour fields (a few sinusoids) with texture
    (noise), JPEG quality 90; returns the bytes written."""
    from PIL import Image

    root, items, (w, h), seed = job
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    written = 0
    for path in items:
        fx, fy, phase = rng.uniform(2, 9, 3), rng.uniform(2, 9, 3), rng.uniform(0, 6, 3)
        field = np.stack([np.sin(xx * fx[c] + phase[c]) * np.cos(yy * fy[c]) for c in range(3)], 2)
        noise = rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
        img = (field * 90 + 128).astype(np.int16) + noise
        out = Path(root) / path
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(out, quality=90)
        written += out.stat().st_size
    return written


def write_jpegs(root: Path, images: int, classes: int = 2, size: tuple[int, int] = (500, 375), val: int = 2,
                seed: int = 0, processes: int | None = None) -> tuple[list[Path], float, bool]:
    """``images`` training JPEGs (``size`` = width x height px, photo-like) and ``val`` per class
    for validation, in ImageNet layout under ``root``, written by one process per core. Cached:
    a folder this function finished before (its ``done.json`` matches) is reused as it is.
    Returns (the training files, seconds taken, whether it was reused)."""
    t0 = time.perf_counter()
    key = {"images": images, "classes": classes, "size": list(size), "val": val, "seed": seed}
    marker = root / "done.json"
    names = [f"train/class{i % classes}/{i}.jpg" for i in range(images)]
    names += [f"val/class{c}/{c}_{i}.jpg" for c in range(classes) for i in range(val)]
    if marker.is_file() and json.loads(marker.read_text()) == key:
        return [root / n for n in names[:images]], time.perf_counter() - t0, True
    for split in ("train", "val"):
        for c in range(classes):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
    processes = processes or available_cpus()
    chunks = [names[k::processes] for k in range(processes)]
    jobs = [(str(root), chunk, size, seed * 1000 + k) for k, chunk in enumerate(chunks) if chunk]
    with ProcessPoolExecutor(len(jobs)) as pool:
        list(pool.map(_write_some, jobs))
    marker.write_text(json.dumps(key))
    return [root / n for n in names[:images]], time.perf_counter() - t0, False


# ----- loader rates -------------------------------------------------------------------------------
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
    for batch in it:
        n += len(batch[1])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - t0)


def classic_transform(resolution: int):
    """torchvision's classic training transform on PIL images, float32 out."""
    from torchvision import transforms

    return transforms.Compose([transforms.RandomResizedCrop(resolution), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def measure(root: Path, files: list[Path], resolution: int, batch: int, workers: int, device: torch.device) -> dict:
    """One round of every loader measurement (images/s)."""
    from PIL import Image
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.io import decode_jpeg, read_file

    data = load_dataset({"name": "imagefolder", "root": str(root), "workers": workers, "decode": "workers"},
                        resolution, 3)
    on_device = load_dataset({"name": "imagefolder", "root": str(root), "workers": workers, "decode": "device"},
                             resolution, 3).to(device)
    classic = classic_transform(resolution)
    g = torch.Generator().manual_seed(0)
    tv = DataLoader(datasets.ImageFolder(str(root / "train"), transform=classic), batch_size=batch, shuffle=True,
                    num_workers=workers, drop_last=True, generator=g)
    draw = crop_draws([0])[0]
    keys = list(zip(torch.randperm(data.train_size, generator=g).tolist(), range(data.train_size)))
    keys = keys[:len(keys) // batch * batch]
    return {
        "decode": per_core(files, lambda f: decode_jpeg(read_file(f))),
        "ours_core": per_core(files, lambda f: crop_one(read_image(f), resolution, draw)),
        "tv_core": per_core(files, lambda f: classic(Image.open(f).convert("RGB"))),
        "ours": steady_rate(data._loader(data.train_set, batch, keys)),
        "ours_normalised": steady_rate(data.to(device).train_batches(batch, g), device),
        "ours_device_decode": steady_rate(on_device.train_batches(batch, g), device),
        "tv": steady_rate(tv),
    }


def loader_rates(args, root: Path, files: list[Path]) -> dict:
    device = torch.device(args.device)
    decode_batch([read_encoded(str(f)) for f in files[:2]], device)  # its first call sets up the decoder
    runs = [measure(root, files, args.resolution, args.batch_size, args.workers, device) for _ in range(args.repeats)]
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    w = max(1, args.workers)
    limit = m["decode"] * w
    print(f"folder pipeline at {args.resolution} px, {len(files)} JPEGs; medians of {args.repeats} alternating rounds")
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


# ----- training from the folder against in-memory data --------------------------------------------------
PATHS = ("in memory", "decode: workers", "decode: device", "decode: auto")


def train_rates(root: Path, spec: dict, resolution: int, batch: int, epochs: int, steps: int | None, images: int,
                classes: int, device: str, compile_: bool, workers: int | None = None, cpus: int | None = None,
                log=print) -> dict:
    """{path: {images_per_s, train_loss, decode}}: one trial per data path (PATHS), the same
    network, batch, recipe and seed; the last epoch's images/s and loss (the first epoch compiles
    and warms up)."""
    from experiments.train.trial import train_trial

    folder = {"name": "imagefolder", "root": str(root), **({"workers": workers} if workers is not None else {})}
    datasets = {"in memory": {"name": "synthetic", "train_size": images, "val_size": max(batch, 2 * classes),
                              "num_classes": classes},
                "decode: workers": {**folder, "decode": "workers"}, "decode: device": {**folder, "decode": "device"},
                "decode: auto": {**folder, "decode": "auto"}}
    out = {}
    for path, dataset in datasets.items():
        result = train_trial({"spec": {**spec, "resolution": resolution, "num_classes": classes}, "seed": 0,
                              "device": device, "compile": compile_, "max_steps_per_epoch": steps,
                              "regime": {"name": "rs-10", "epochs": epochs, "batch_size": batch, "ema_decay": 0.0,
                                         "warmup_epochs": 0},
                              "dataset": dataset, "checkpoint_every": 0,
                              **({"cpus": cpus} if cpus else {})})
        last = result["history"][-1]
        out[path] = {"images_per_s": last["observed_images_per_s"], "train_loss": last["train_loss"],
                     "decode": result.get("decode"), "losses": [h["train_loss"] for h in result["history"]]}
        log(f"  {path:16s} {last['observed_images_per_s']:9.1f} img/s   loss {last['train_loss']:.3f}"
            + (f"   (decoded in {result['decode']})" if result.get("decode") else ""))
    return out


def train_table(rates: dict, log=print) -> dict:
    """Print each path's img/s with its ratio to in memory; returns {path: ratio}."""
    base = rates["in memory"]["images_per_s"]
    ratios = {path: r["images_per_s"] / base for path, r in rates.items()}
    log("  data path          img/s   vs in memory   last epoch's loss")
    for path, r in rates.items():
        log(f"  {path:16s} {r['images_per_s']:8.1f}   {ratios[path]:10.2f}   {r['train_loss']:10.3f}")
    return ratios


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", action="store_true", help="train one network from memory and from the folder each way")
    p.add_argument("--smoke", action="store_true", help="with --train: a tiny network and folder, on a CPU in seconds")
    p.add_argument("--images", type=int, help="training JPEGs to write (default 384; --train: 4,096, smoke 64)")
    p.add_argument("--classes", type=int, help="class folders (default 2; --train 10)")
    p.add_argument("--image-size", default=None, metavar="WxH",
                   help="JPEG size (default 500x375, ImageNet's typical; smoke 64x48)")
    p.add_argument("--resolution", type=int, help="training resolution (default 224; --train 160, RS-50's)")
    p.add_argument("--batch-size", type=int, help="default 32; --train 256 (smoke 8)")
    p.add_argument("--epochs", type=int, default=2, help="--train: epochs per path; the last is timed")
    p.add_argument("--steps", type=int, help="--train: cap on steps per epoch")
    p.add_argument("--workers", type=int, help="DataLoader workers (default 2; --train: the trial's rule)")
    p.add_argument("--cpus", type=int, help="--train: each trial's CPUs (default: the trial's rule)")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds of the loader rates (medians shown)")
    p.add_argument("--device", default="cpu", help="where batches are normalised, decoded (decode: device), trained")
    p.add_argument("--out", help="keep the JPEGs here and reuse them next time (default: a temporary folder)")
    args = p.parse_args(argv)
    smoke = args.smoke
    args.images = args.images or (64 if smoke else 4096 if args.train else 384)
    args.classes = args.classes or (2 if smoke or not args.train else 10)
    args.resolution = args.resolution or (32 if smoke else 160 if args.train else 224)
    args.batch_size = args.batch_size or (8 if smoke else 256 if args.train else 32)
    size = tuple(int(v) for v in (args.image_size or ("64x48" if smoke else "500x375")).lower().split("x"))
    if args.workers is None and not args.train:
        args.workers = 2
    with tempfile.TemporaryDirectory(prefix="archscale-folder-bench-") as tmp:
        root = Path(args.out) / f"jpegs-{args.images}-{args.classes}-{size[0]}x{size[1]}" if args.out else Path(tmp)
        files, took, reused = write_jpegs(root, args.images, args.classes, size)
        kb = sum(f.stat().st_size for f in files) / len(files) / 1024
        print(f"{'reused' if reused else 'wrote'} {len(files)} JPEGs of {size[0]}x{size[1]} px ({kb:.0f} KB each) in "
              f"{took:.1f}s under {root}", flush=True)
        if not args.train:
            return {**loader_rates(args, root, files), "setup_s": took}
        from scaling import get_preset

        spec = ({"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar", "stem_width": 8} if smoke
                else get_preset("resnet50").to_dict())
        cuda = args.device.startswith("cuda")
        print(f"training {'ResNet-50' if not smoke else 'a tiny ResNet'} at {args.resolution} px, batch "
              f"{args.batch_size}, {args.epochs} epochs per path on {args.device}"
              f"{' (bf16, channels-last, compiled)' if cuda else ''}; the last epoch is timed", flush=True)
        rates = train_rates(root, spec, args.resolution, args.batch_size, args.epochs, args.steps, args.images,
                            args.classes, args.device, compile_=cuda, workers=args.workers, cpus=args.cpus)
        ratios = train_table(rates)
        return {"rates": rates, "ratios": ratios, "ratio": ratios["decode: auto"], "setup_s": took,
                "cpus": os.cpu_count()}


if __name__ == "__main__":
    main()
