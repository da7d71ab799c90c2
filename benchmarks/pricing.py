"""Pricing a whole space: the closed-form counter against fvcore, side by side in one run.

Prices every config of a space (default: the 175-config ResNet-RS grid) with the analytic
counter, then counts a random sample (or, with --full, every config) with fvcore, checks the
numbers are identical, and prints per-config times, their ratio and the full-space times
(measured for the analytic counter; for fvcore measured with --full, else extrapolated from the
sample's mean).

    python benchmarks/pricing.py                  # fvcore on 10 random configs
    python benchmarks/pricing.py --full           # fvcore on all 175 (tens of minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.analytic import analytic_counts  # noqa: E402
from scaling.counting import fvcore_counts  # noqa: E402
from search_spaces import load_space  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="resnet_rs")
    p.add_argument("--sample", type=int, default=10, help="configs counted by fvcore (ignored with --full)")
    p.add_argument("--full", action="store_true", help="count every config with fvcore too")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    configs = load_space(args.space).expand().configs
    expand_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    analytic = {c.name: analytic_counts(c.spec) for c in configs}
    analytic_s = time.perf_counter() - t0

    chosen = configs if args.full else random.Random(args.seed).sample(configs, min(args.sample, len(configs)))
    mismatches = 0
    t0 = time.perf_counter()
    for c in chosen:
        a = analytic[c.name]
        if (a.params, a.flops, a.acts) != fvcore_counts(c.spec):
            mismatches += 1
            print(f"  MISMATCH {c.name}", flush=True)
    fvcore_s = time.perf_counter() - t0
    per_analytic = analytic_s / len(configs)
    per_fvcore = fvcore_s / len(chosen)
    full_fvcore = fvcore_s if args.full else per_fvcore * len(configs)
    print(f"space {args.space}: {len(configs)} configs (expanded and validated in {expand_s:.2f}s)")
    print(f"  analytic counter: {analytic_s:.3f}s for all {len(configs)} ({per_analytic * 1e3:.2f} ms/config)")
    print(f"  fvcore:           {fvcore_s:.1f}s for {len(chosen)} ({per_fvcore:.2f} s/config); whole space "
          f"{'measured' if args.full else 'extrapolated'}: {full_fvcore / 60:.1f} min")
    print(f"  ratio fvcore/analytic per config: {per_fvcore / per_analytic:,.0f}x; "
          f"identical counts on {len(chosen) - mismatches}/{len(chosen)} configs")
    return {"configs": len(configs), "analytic_s": analytic_s, "fvcore_s": fvcore_s, "fvcore_n": len(chosen),
            "full_fvcore_s": full_fvcore, "ratio": per_fvcore / per_analytic, "mismatches": mismatches}


if __name__ == "__main__":
    sys.exit(1 if main()["mismatches"] else 0)
