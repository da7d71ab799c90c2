"""archscale list: what the package holds by name (presets, regimes, spaces, data sets).

    archscale list presets | regimes | spaces | datasets
"""
from __future__ import annotations

import argparse

from scaling.conventions import FLOP_CONVENTION

NAME = "list"
WHAT = ("presets", "regimes", "spaces", "datasets")


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="list the presets, regimes, space presets or data sets by name",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=WHAT, metavar="WHAT", help=" | ".join(WHAT))
    p.set_defaults(func=run)


def run(args) -> int:
    """Print one line per named thing; returns the exit status."""
    print(LISTS[args.what]())
    return 0


def presets() -> str:
    """Every ArchSpec preset with its shape and its closed-form params and FLOPs."""
    from scaling.analytic import analytic_counts
    from scaling.presets import PRESETS

    rows = [("name", "block", "depth", "C x d", "width", "res", "params (M)", "GFLOPs")]
    for name, spec in PRESETS.items():
        cx = analytic_counts(spec)
        rows.append((name, spec.block, str(spec.depth_number), f"{spec.cardinality}x{spec.bottleneck_width}",
                     f"{spec.width_multiplier * spec.widen_factor:g}", str(spec.resolution),
                     f"{cx.params / 1e6:.2f}", f"{cx.flops / 1e9:.3f}"))
    return _table(rows) + f"\nFLOPs per image, {FLOP_CONVENTION}; 'archscale count NAME' gives the detail."


def regimes() -> str:
    """Every training regime with its length and what it is."""
    from ..train.regimes import REGIMES

    rows = [("name", "epochs", "batch", "description")]
    rows += [(r.name, str(r.epochs), str(r.batch_size), r.description) for r in REGIMES.values()]
    return _table(rows) + "\n'archscale train --show-regime NAME' prints every setting."


def spaces() -> str:
    """Every bundled space preset with its description (as ``archscale space list``)."""
    from search_spaces import load_space, space_presets

    return "\n".join(f"{name:28s} {load_space(name).description}" for name in space_presets())


def datasets() -> str:
    """Every built-in data set, and how to plug in one's own."""
    from ..data.datasets import DATASETS

    lines = [f"{name:12s} {kind.description}" for name, kind in DATASETS.items()]
    lines.append("your own: dataset: {loader: 'mypkg.data:load'} in a sweep spec, or --dataset-loader "
                 "mypkg.data:load (see the README)")
    return "\n".join(lines)


LISTS = {"presets": presets, "regimes": regimes, "spaces": spaces, "datasets": datasets}


def _table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]) for r in rows)
