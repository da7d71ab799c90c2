"""Pricing many networks: configs/s of the vectorised closed form, the per-config closed form,
torch's FlopCounterMode on the meta device and fvcore, side by side in one run.

Draws N networks from a design space around the ResNet-RS block (depth 26-420, width 0.25-2,
cardinality 1-32 x bottleneck width 4-64, resolution 128-448; seeded), prices all of them with
``scaling.batch`` (numpy over arrays of fields, one batch per depth), a sample with
``analytic_counts`` one by one, and a smaller sample with each tracer, checks the counts are
identical to the closed form's (fvcore: params, FLOPs, activations; torch counts 2 flops per
multiply-add of its convolutions and linear layers and skips batch norm, so only its speed is
compared), and prints configs/s and their ratios.

    python benchmarks/pricing.py                  # 10^5 networks; tracers on 3
    python benchmarks/pricing.py --n 1000000 --sample 10
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling import ArchSpec, analytic_counts, get_preset  # noqa: E402
from scaling.batch import SpecBatch, count_batch  # noqa: E402

DEPTHS = (26, 50, 101, 152, 200, 270, 350, 420)
AXES = {"width_multiplier": (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0), "cardinality": (1, 2, 4, 8, 16, 32),
        "bottleneck_width": (4, 8, 16, 32, 64), "resolution": (128, 160, 192, 224, 256, 320, 384, 448)}


def design_space(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` networks: a depth and each numeric field per network."""
    rng = np.random.default_rng(seed)
    return rng.choice(DEPTHS, n), {k: rng.choice(v, n) for k, v in AXES.items()}


def price_vectorised(depths: np.ndarray, values: dict[str, np.ndarray], base: ArchSpec) -> dict[str, np.ndarray]:
    """Params, FLOPs, activations and fault of every network, one ``count_batch`` per depth."""
    out = {k: np.zeros(len(depths), dtype=np.int64) for k in ("params", "flops", "acts")}
    out["fault"] = np.full(len(depths), "", dtype=object)
    for d in np.unique(depths):
        rows = np.flatnonzero(depths == d)
        got = count_batch(SpecBatch(base.replace(depth=int(d)), {k: v[rows] for k, v in values.items()}))
        for k in out:
            out[k][rows] = getattr(got, k)
    return out


def spec_of(base: ArchSpec, depths, values, i: int) -> ArchSpec:
    return base.replace(depth=int(depths[i]), **{k: v[i].item() for k, v in values.items()})


def torch_meta_flops(spec: ArchSpec) -> int:
    """FLOPs of one image counted by torch's FlopCounterMode on a model built on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from scaling import build_model

    with torch.device("meta"):
        model = build_model(spec).eval()
        x = torch.empty(1, spec.in_channels, spec.resolution, spec.resolution)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="networks priced by the vectorised closed form")
    p.add_argument("--per-config", type=int, default=2000, help="networks priced one by one by analytic_counts")
    p.add_argument("--sample", type=int, default=3, help="networks traced by torch (meta device) and by fvcore")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from scaling.counting import fvcore_counts

    base = get_preset("resnetrs50")
    depths, values = design_space(args.n, args.seed)
    t0 = time.perf_counter()
    vec = price_vectorised(depths, values, base)
    vec_s = time.perf_counter() - t0
    valid = np.flatnonzero(vec["fault"] == "")
    rng = np.random.default_rng(args.seed + 1)
    picked = rng.choice(valid, min(args.per_config, len(valid)), replace=False)
    specs = [spec_of(base, depths, values, i) for i in picked]
    t0 = time.perf_counter()
    closed = [analytic_counts(s) for s in specs]
    one_s = time.perf_counter() - t0
    mismatches = sum((c.params, c.flops, c.acts) != (vec["params"][i], vec["flops"][i], vec["acts"][i])
                     for c, i in zip(closed, picked))
    traced = sorted(picked[: args.sample], key=lambda i: vec["flops"][i])  # the cheapest first: tracing is slow
    warm = base.replace(depth=26, width_multiplier=0.25, resolution=32)  # imports and first-call set-up, untimed
    torch_meta_flops(warm), fvcore_counts(warm)
    t0 = time.perf_counter()
    for i in traced:
        torch_meta_flops(spec_of(base, depths, values, i))
    torch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in traced:
        if fvcore_counts(spec_of(base, depths, values, i)) != (vec["params"][i], vec["flops"][i], vec["acts"][i]):
            mismatches += 1
    fvcore_s = time.perf_counter() - t0
    rates = {"vectorised closed form (scaling.batch)": args.n / vec_s,
             "per-config closed form (analytic_counts)": len(specs) / one_s,
             "torch FlopCounterMode, meta device": len(traced) / torch_s,
             "fvcore (traces a real model)": len(traced) / fvcore_s}
    print(f"{args.n:,} networks drawn from the ResNet-RS design space ({len(valid):,} valid); "
          f"{len(specs):,} priced one by one; {len(traced)} traced")
    for name, rate in rates.items():
        print(f"  {name:42s} {rate:14,.2f} configs/s  ({rate / rates['fvcore (traces a real model)']:,.0f}x fvcore)")
    ratio = rates["vectorised closed form (scaling.batch)"] / rates["per-config closed form (analytic_counts)"]
    print(f"  ratio vectorised / per-config: {ratio:,.0f}x; identical counts to analytic_counts on "
          f"{len(specs)} and to fvcore on {len(traced)}: {'yes' if not mismatches else f'NO ({mismatches})'}")
    return {"n": args.n, "rates": rates, "ratio": ratio, "mismatches": mismatches}


if __name__ == "__main__":
    sys.exit(1 if main()["mismatches"] else 0)
