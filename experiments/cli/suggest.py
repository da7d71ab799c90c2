"""archscale suggest: the next sweep of a run, as a sweep spec, where its results say accuracy is cheapest.

    archscale suggest RUN_DIR [--budget 2x|FLOPS] [--out next.yaml]

The spec grows the run's most accurate configuration to the budget along the dimension that
bought the most top-1 per doubling of FLOPs, along the runner-up and by the ResNet-RS rule, with
the run's regimes, data and seeds; its comments say why. Check it with
``archscale sweep next.yaml --dry-run``.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("suggest", help="write the next sweep's spec where a run says accuracy is cheapest",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's output directory")
    p.add_argument("--budget", default="2x", metavar="2x|FLOPS",
                   help="FLOPs per image of the next configurations: a multiple of the base's (2x, default) or "
                        "a count (5M, 2.4e6)")
    p.add_argument("--out", metavar="FILE", help="where to write the spec (default: RUN_DIR/next.yaml)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Write the suggested spec and print it; returns the exit status."""
    from scaling.files import atomic_write_text, check_writable_file

    from ..sweep.suggest import suggest

    out = Path(args.out) if args.out else Path(args.run_dir) / "next.yaml"
    check_writable_file(out, "out")
    suggestion = suggest(args.run_dir, args.budget, out_name=str(out))
    atomic_write_text(out, suggestion.text)
    print(suggestion.text, end="")
    print(f"written to {out}; check it with: archscale sweep {out} --dry-run")
    return 0
