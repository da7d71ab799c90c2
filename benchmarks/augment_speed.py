"""RandAugment per training batch: our batched device pipeline against torchvision's, side by side.

Three ways to give a batch of uint8 images RandAugment (2 ops), timed alternately in one run:

- ours: experiments.data.augment.RandAugment, every image drawing its own ops, each op run once per
  batch on the images that drew it (the epoch's draws made beforehand, as the trainer does; that
  host-side cost is shown apart, per batch);
- the previous in-memory path: torchvision's v2.RandAugment called on 16-image chunks (one op
  draw per chunk), concatenated;
- torchvision's v2.RandAugment called on each image (per-image draws, as the recipe wants).

torchvision runs at magnitude M x 3 of its 31 bins, the same strength as our M on the official
scale (its maximum, 30, is our 10), so the ops do comparable work. Also counted: aten ops per
batch, which on a GPU is what the host spends launching kernels.

    python benchmarks/augment_speed.py                        # CPU, batch 512, 32 px (CIFAR)
    python benchmarks/augment_speed.py --device cuda --size 224 --batch-size 256
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from experiments.data.augment import RandAugment  # noqa: E402
from scaling.device import device_name, resolve_device, sync  # noqa: E402

PREVIOUS_CHUNK = 16  # the images per op draw of the previous in-memory path


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def aten_ops(fn) -> int:
    """aten ops one call of ``fn`` dispatches."""
    with _CountOps() as c:
        fn()
    return c.n


def timed(fn, device) -> float:
    """Seconds of one call of ``fn``, the device's queue drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--size", type=int, default=32, help="image side in px (32: CIFAR)")
    p.add_argument("--magnitude", type=float, default=10, help="on the official scale (10 = each op's maximum)")
    p.add_argument("--repeats", type=int, default=5, help="alternating timings of each way (medians shown)")
    args = p.parse_args(argv)
    from torchvision.transforms import v2

    device = resolve_device(args.device)
    b, s = args.batch_size, args.size
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (b, 3, s, s), generator=g, dtype=torch.uint8).to(device)
    ours = RandAugment(2, args.magnitude)
    batches = args.repeats + 1
    t0 = time.perf_counter()
    plan = ours.plan(batches, b, s, s, g).to(device)
    plan_s = (time.perf_counter() - t0) / batches
    tv = v2.RandAugment(num_ops=2, magnitude=min(30, int(round(args.magnitude * 3))))
    ways = {
        "ours": lambda i: ours(x, plan.batch(i % batches)),
        "previous": lambda i: torch.cat([tv(c) for c in x.split(PREVIOUS_CHUNK)]),
        "per_image": lambda i: torch.stack([tv(c) for c in x]),
    }
    times = {k: [] for k in ways}
    for k, fn in ways.items():  # warm-up
        fn(0)
    for i in range(args.repeats):
        for k, fn in ways.items():
            if k != "per_image" or i < max(1, args.repeats // 2):  # the slowest: fewer samples
                times[k].append(timed(lambda: fn(i), device))
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    ops = {k: aten_ops(lambda: fn(0)) for k, fn in ways.items()}
    print(f"RandAugment (2 ops, magnitude {args.magnitude:g} on the official scale) of a batch of {b} uint8 "
          f"3x{s}x{s} images on {device_name(device)}; medians of {args.repeats} alternating runs")
    print(f"  ours: batched, per-image draws          {ms['ours']:9.1f} ms/batch  {ops['ours']:6d} aten ops"
          f"   (+ {1e3 * plan_s:.1f} ms/batch drawing the epoch's plan on the host)")
    print(f"  previous: v2 per {PREVIOUS_CHUNK}-image chunk         {ms['previous']:9.1f} ms/batch  "
          f"{ops['previous']:6d} aten ops   ours is {ms['previous'] / ms['ours']:.2f}x faster")
    print(f"  torchvision v2 per image                {ms['per_image']:9.1f} ms/batch  {ops['per_image']:6d} aten ops"
          f"   ours is {ms['per_image'] / ms['ours']:.2f}x faster")
    return {"device": device_name(device), "ms": ms, "aten_ops": ops, "plan_ms_per_batch": 1e3 * plan_s,
            "ratio": ms["previous"] / ms["ours"], "ratio_per_image": ms["per_image"] / ms["ours"]}


if __name__ == "__main__":
    main()
