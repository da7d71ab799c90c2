"""Our trainer's steady-state training images/s against a bare PyTorch loop, side by side.

Both train the same model (build_model of the same spec), at the same batch size, on the same
device, with SGD + momentum + cross-entropy. The trainer runs with EMA off so both do the same
arithmetic: the ratio measures the trainer's machinery (LR schedule, on-device batching, NaN
checks, metrics; evaluation excluded from the timing). Two data paths:

- synthetic in-memory data, no augmentation (the bare loop slices pre-normalised tensors);
- the real in-memory path: a CIFAR-format data set on disk, loaded as uint8 on the device, with
  pad-and-crop, flip and RandAugment (2 ops, magnitude 10); the bare loop does the same
  augmentation with experiments.data.augment directly (the epoch's draws made once per epoch).

A last line shows the full ResNet-RS recipe (EMA on), which does more work by design.

    python benchmarks/trainer_overhead.py                      # CPU, small ResNet
    python benchmarks/trainer_overhead.py --device cuda --preset resnet50 --resolution 224 --batch-size 256

On CUDA both run bf16 autocast and channels-last; the model-FLOPs utilisation is
3 x forward FLOPs x images/s over the GPU's dense bf16 peak (when the GPU is known).
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from experiments.data.augment import RandAugment, crop_flip_plan, pad_crop_flip  # noqa: E402
from experiments.data.datasets import CIFAR_MEAN, CIFAR_STD  # noqa: E402
from experiments.train.trial import train_trial  # noqa: E402
from scaling import ArchSpec, build_model, complexity, get_preset  # noqa: E402
from scaling.device import device_name, resolve_device  # noqa: E402

# Dense bf16 tensor-core peaks (FLOP/s, multiply and add counted separately), by device-name fragment.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def bare_loop(spec: ArchSpec, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int, device, amp: bool) -> float:
    """Images/s of the plainest training loop over pre-normalised tensors on the device."""
    torch.manual_seed(0)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = build_model(spec).to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=4e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    n = len(y)

    def step(i):
        lo = (i * batch) % (n - batch + 1)
        xb, yb = x[lo:lo + batch].contiguous(memory_format=fmt), y[lo:lo + batch]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def bare_augmented_loop(spec: ArchSpec, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int, device,
                        amp: bool, magnitude: float) -> float:
    """Images/s of a plain loop over uint8 images on the device, augmented like the in-memory
    path: the epoch's draws once, then per step pad-and-crop, flip, RandAugment, normalise."""
    torch.manual_seed(0)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = build_model(spec).to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=4e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, -1, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(1, -1, 1, 1)
    ra, pad, side = RandAugment(2, magnitude), max(1, spec.resolution // 8), spec.resolution

    def epoch(n_steps: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(y), generator=g)[:n_steps * batch].to(device)
        crops = crop_flip_plan(n_steps * batch, pad, True, g).to(device)
        plan = ra.plan(n_steps, batch, side, side, g).to(device)
        for i in range(n_steps):
            sl = slice(i * batch, (i + 1) * batch)
            step_plan = plan.batch(i)
            xb = ra(pad_crop_flip(x[order[sl]], pad, crops[sl]), step_plan)
            xb = ((xb.float() / 255 - mean) / std).contiguous(memory_format=fmt)
            yb = y[order[sl]][step_plan.order]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    epoch(min(3, steps), 0)  # warm-up: the data holds batch x steps images
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    epoch(steps, 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def write_cifar(root: Path, train: int, val: int) -> None:
    """A CIFAR-10 copy of random images in torchvision's on-disk format under ``root``."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    parts = [train // 5 + (i < train % 5) for i in range(5)]
    for name, n in [(f"data_batch_{i + 1}", n) for i, n in enumerate(parts)] + [("test_batch", val)]:
        with open(base / name, "wb") as f:
            pickle.dump({"data": torch.randint(0, 256, (n, 3072), generator=g, dtype=torch.uint8).numpy(),
                         "labels": torch.randint(0, 10, (n,), generator=g).tolist()}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def trainer(spec: ArchSpec, batch: int, steps: int, device: str, ema: bool, dataset: dict | None = None,
            magnitude: float = 0) -> float:
    """Steady-state images/s of train_trial (the last of three epochs, evaluation excluded), on
    synthetic data or ``dataset``, with RandAugment at ``magnitude`` (0: off)."""
    result = train_trial({
        "spec": spec.to_dict(), "seed": 0, "device": device, "max_steps_per_epoch": steps,
        "regime": {"name": "rs-10", "epochs": 3, "batch_size": batch, "ema_decay": 0.9999 if ema else 0.0,
                   "warmup_epochs": 0, "randaugment_magnitude": magnitude},
        "dataset": dataset or {"name": "synthetic", "train_size": batch * steps, "val_size": batch,
                               "num_classes": 10},
        "checkpoint_every": 0})
    return result["history"][-1]["observed_images_per_s"]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default=None, help="a preset instead of the default small CPU network")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="alternating trainer/bare measurements")
    p.add_argument("--magnitude", type=float, default=10, help="RandAugment magnitude of the real path")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if args.preset:
        spec = get_preset(args.preset).replace(num_classes=10)
    else:
        spec = ArchSpec(block="basic", depth=18, widths=(16, 32, 64, 128), stem="cifar", stem_width=16,
                        num_classes=10, resolution=32)
    if args.resolution:
        spec = spec.replace(resolution=args.resolution)
    amp = device.type == "cuda"
    g = torch.Generator().manual_seed(0)
    n = args.batch_size * args.steps
    x = (torch.randint(0, 256, (n, 3, spec.resolution, spec.resolution), generator=g).float() / 255 - 0.5) / 0.29
    x, y = x.to(device), torch.randint(0, 10, (n,), generator=g).to(device)
    ours, bare, full, ours_aug, bare_aug = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="archscale-overhead-") as tmp:
        write_cifar(Path(tmp), n, args.batch_size)
        cifar = {"name": "cifar10", "root": tmp}
        xu = torch.randint(0, 256, (n, 3, spec.resolution, spec.resolution), generator=g, dtype=torch.uint8)
        xu = xu.to(device)
        for _ in range(args.repeats):
            ours.append(trainer(spec, args.batch_size, args.steps, str(device), ema=False))
            bare.append(bare_loop(spec, x, y, args.batch_size, args.steps, device, amp))
            ours_aug.append(trainer(spec, args.batch_size, args.steps, str(device), ema=False, dataset=cifar,
                                    magnitude=args.magnitude))
            bare_aug.append(bare_augmented_loop(spec, xu, y, args.batch_size, args.steps, device, amp,
                                                args.magnitude))
        full.append(trainer(spec, args.batch_size, args.steps, str(device), ema=True, dataset=cifar,
                            magnitude=args.magnitude))
    o, b, f = statistics.median(ours), statistics.median(bare), statistics.median(full)
    oa, ba = statistics.median(ours_aug), statistics.median(bare_aug)
    flops = complexity(spec, counter="analytic").flops
    print(f"trainer overhead on {device_name(device)}: {spec.slug()} batch {args.batch_size}, "
          f"{args.repeats} alternating runs of {args.steps} steps")
    print("  synthetic in-memory data, no augmentation:")
    print(f"    bare PyTorch loop          {b:10.1f} img/s")
    print(f"    train_trial (same work)    {o:10.1f} img/s   ratio {o / b:.3f}  (goal >= 0.95)")
    print(f"  in-memory CIFAR-format data, pad-crop + flip + RandAugment (2 ops, magnitude {args.magnitude:g}):")
    print(f"    bare loop, same augmentation {ba:8.1f} img/s")
    print(f"    train_trial (same work)    {oa:10.1f} img/s   ratio {oa / ba:.3f}  (goal >= 0.95)")
    print(f"    train_trial (+EMA)         {f:10.1f} img/s   ratio {f / ba:.3f}  (full ResNet-RS recipe)")
    out = {"device": device_name(device), "bare": b, "trainer": o, "bare_augmented": ba, "trainer_augmented": oa,
           "trainer_ema": f, "ratio": o / b, "ratio_augmented": oa / ba}
    if device.type == "cuda":
        peak = next((v for k, v in BF16_PEAK.items() if k in torch.cuda.get_device_name(device)), None)
        if peak:
            mfu = 2 * 3 * flops * o / peak  # x2: fvcore counts a multiply-add as one FLOP
            out["mfu"] = mfu
            print(f"  model-FLOPs utilisation  {mfu:.1%} of {peak / 1e12:.0f} TFLOP/s bf16 dense")
    return out


if __name__ == "__main__":
    main()
