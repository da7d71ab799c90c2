"""The ResNeXt paper's three equivalent block forms, measured side by side.

(a) "branches": C parallel paths summed; (b) "concat": paths concatenated before one 1x1;
(c) "grouped": one grouped 3x3 conv. Same parameters, FLOPs and outputs (tests/test_block_forms.py);
the paper chose (c) as the simplest and fastest. Prints batch-1 latency, inference and training
images/s of each, and each form's speed relative to the grouped form.

    python benchmarks/block_forms.py                                  # resnext50_32x4d, 128 px, CPU
    python benchmarks/block_forms.py --device cuda --resolution 224 --batch-size 64
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling import ArchSpec, get_preset, measure  # noqa: E402

FORMS = ("grouped", "branches", "concat")


def compare(base: ArchSpec, device: str, batch_size: int, iters: int, label: str | None = None) -> dict:
    """Measure ``base`` in each block form; print the table; return the slowest form's training
    speed over the grouped form's (``ratio``) and each form's figures."""
    rows = {}
    for form in FORMS:
        rows[form] = measure(base.replace(block_form=form), device=device, batch_size=batch_size, iters=iters)
    g = rows["grouped"]
    print(f"block forms of {label or base.slug()} at {base.resolution} px, batch {batch_size}, on {g.device}:")
    print(f"  {'form':9s} {'latency ms':>11s} {'infer img/s':>12s} {'train img/s':>12s} {'train vs grouped':>17s}")
    for form, m in rows.items():
        print(f"  {form:9s} {m.latency_ms:11.1f} {m.throughput:12.1f} {m.train_throughput:12.1f} "
              f"{m.train_throughput / g.train_throughput:16.2f}x")
    slowest = min(rows.values(), key=lambda m: m.train_throughput)
    return {"ratio": slowest.train_throughput / g.train_throughput,
            **{f"{f}_train_ips": m.train_throughput for f, m in rows.items()},
            **{f"{f}_latency_ms": m.latency_ms for f, m in rows.items()}}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="resnext50_32x4d")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args(argv)
    base = get_preset(args.preset).replace(resolution=args.resolution)
    return compare(base, args.device, args.batch_size, args.iters, args.preset)


if __name__ == "__main__":
    main()
