"""archscale space: see what a space holds and costs before launching it.

    archscale space SPEC_OR_PRESET [--format table|csv|json] [--verify N] [--regimes ...]
    archscale space match --target resnet50 --vary cardinality=1,2,4,8,32 --solve bottleneck_width [--match block]
    archscale space scale --base resnet50 --multipliers 2,4,8,16 [--strategies depth,width,...]
    archscale space list
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import textwrap

from scaling.conventions import DATASET_TRAIN_SIZES, FLOP_CONVENTION, TRAIN_FLOPS_PER_FORWARD
from scaling.errors import ArchScaleError
from scaling.validate import check_choice, is_number
from scaling.wording import plural

from .specargs import parse_pairs, parse_value, spec_fields

ACTIONS = ("show", "match", "scale", "list")
#: The column suffix of a match's target, by what it holds equal.
MATCH_UNITS = {"flops": "flops", "params": "params", "block": "block_params"}
FLOPS_NOTE = f"FLOPs per image, {FLOP_CONVENTION}"
COST_NOTE = f"training cost = {TRAIN_FLOPS_PER_FORWARD} x forward FLOPs x training images x epochs"
#: Above this many configs, the table and json formats print a summary instead of every row (--all:
#: every row). Ours: the largest preset space (ResNet-RS, 175 configs) still prints whole.
SUMMARY_ABOVE = 300
#: Width the notes under a table are wrapped to (characters).
NOTE_WIDTH = 100
#: Rows shown at each end (cheapest, dearest) of a summary.
SUMMARY_ENDS = 5


def normalise_argv(argv: list[str]) -> list[str]:
    """``archscale space X`` means ``archscale space show X`` unless X is another action."""
    if len(argv) >= 2 and argv[0] == "space" and argv[1] not in ACTIONS + ("-h", "--help"):
        return ["space", "show"] + argv[1:]
    return argv


def add_parser(sub) -> None:
    p = sub.add_parser("space", help="expand, price and check a search space (dry run), match FLOPs, scale",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    s = actions.add_parser("show", help="every config of a space with its cost (the default action)",
                           formatter_class=_LazyHelpFormatter)
    s.add_argument("space", metavar="SPEC_OR_PRESET", help=_Deferred("a space YAML file or a preset", _preset_list))
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--verify", type=int, default=0, metavar="N",
                   help="cross-check N random configs against fvcore and report the largest relative difference")
    s.add_argument("--regimes", default="rs-10,rs-100,rs-350",
                   help="regimes to price, and to grow the resnet_rs strategy for (comma-separated)")
    s.add_argument("--dataset-size", default=None,
                   help="training images per epoch: a number or imagenet/cifar10/cifar100/digits "
                        "(default: the space's dataset_size, else ImageNet's 1,281,167)")
    s.add_argument("--throughput", metavar="FILE",
                   help="JSON lines of 'archscale count --measure --json' on the target device: adds estimated hours")
    s.add_argument("--all", action="store_true",
                   help=f"print every config (table and json) even above {SUMMARY_ABOVE} configs, where a summary "
                        f"is printed instead; csv always has every row")
    s.set_defaults(func=_show)

    m = actions.add_parser("match", help="solve one dimension so each config matches a target's complexity")
    m.add_argument("--target", required=True, help="a preset, an ArchSpec YAML file, or a number in --match's "
                                                  "unit ('4.1G' FLOPs, '25M' params)")
    m.add_argument("--match", default="flops", choices=("flops", "params", "block"),
                   help="what to hold equal: whole-network FLOPs (default) or params, or the params of a "
                        "first-stage block (the ResNeXt paper's Table 2 rule)")
    m.add_argument("--solve", required=True, help="bottleneck_width, width_multiplier, depth, resolution, ...")
    m.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2",
                   help="values of another field, one matched config each (repeatable: crossed)")
    m.add_argument("--base", help="the spec to vary (default: the target preset)")
    m.add_argument("--step", type=float, help="step of the solved dimension (default per dimension)")
    m.add_argument("--tolerance", type=float, default=0.15, help="largest accepted relative FLOP miss")
    m.add_argument("--format", choices=("table", "csv", "json"), default="table")
    m.set_defaults(func=_match)

    c = actions.add_parser("scale", help="grow a base network to FLOP multiples by each scaling strategy")
    c.add_argument("--base", required=True, help="a preset or an ArchSpec YAML file")
    c.add_argument("--multipliers", default="2,4,8,16", help="FLOP multipliers (comma-separated)")
    c.add_argument("--strategies", default=None, help="comma-separated; default all")
    c.add_argument("--regime", default="rs-350",
                   help="the regime the networks will train under: the resnet_rs strategy grows depth in long "
                        "regimes, width in short ones (default rs-350)")
    c.add_argument("--tolerance", type=float, default=0.10, help="stated tolerance on the FLOP target")
    c.add_argument("--format", choices=("table", "csv", "json"), default="table")
    c.set_defaults(func=_scale)

    ls = actions.add_parser("list", help="list the space presets")
    ls.set_defaults(func=_list)


class _Deferred(str):
    """A help text whose tail, ``tail()``, is computed only when the help is shown."""

    def __new__(cls, text: str, tail):
        obj = super().__new__(cls, text)
        obj.tail = tail
        return obj


class _LazyHelpFormatter(argparse.HelpFormatter):
    """Completes ``_Deferred`` help texts: the preset list imports search_spaces, which building
    the parser must not do (``archscale --help`` imports no torch)."""

    def _get_help_string(self, action):
        text = action.help
        return text + text.tail() if isinstance(text, _Deferred) else text


def _preset_list() -> str:
    return ": " + ", ".join(_presets())


def _presets() -> list[str]:
    from search_spaces import space_presets

    return space_presets()


def _spec(text: str):
    from pathlib import Path

    from scaling import get_preset, load_spec

    return load_spec(text) if Path(text).suffix in (".yaml", ".yml", ".json") else get_preset(text)


def dataset_size(value, space) -> tuple[int, str]:
    """(training images, label) from a flag value, the space spec, or ImageNet's default."""
    if value is None:
        if space.dataset_size:
            return space.dataset_size, "space spec"
        return DATASET_TRAIN_SIZES["imagenet"], "ImageNet-1k train (default)"
    if str(value).isdigit() and int(value) > 0:
        return int(value), "given"
    key = str(value).lower()
    if key == "digits":
        from ..data.datasets import digits_split_sizes

        return digits_split_sizes()[0], "digits train split"
    if key in DATASET_TRAIN_SIZES:
        return DATASET_TRAIN_SIZES[key], key
    raise ArchScaleError("dataset_size", f"{value!r} is not a positive number or one of "
                                         f"{', '.join(list(DATASET_TRAIN_SIZES) + ['digits'])}")


def regime_epochs(names: str) -> dict[str, int]:
    from ..train.regimes import get_regime

    return {n: get_regime(n).epochs for n in (x.strip() for x in names.split(",")) if n}


def _show(args) -> int:
    from search_spaces import verify_against_fvcore
    from search_spaces.pricing import add_training_cost, exact_sum, rate_from_measurements
    from search_spaces.table import space_table

    from .progress import log_lines

    space = load_space_arg(args.space)
    regimes = regime_epochs(args.regimes)
    table = space_table(space, epochs=list(regimes.values()), progress=big_space_note(space))
    size, size_label = dataset_size(args.dataset_size, space)
    rate, device = rate_from_measurements(args.throughput) if args.throughput else (None, None)
    df = add_training_cost(table.rows, regimes, size, rate)
    verified = (verify_against_fvcore(table.configs, args.verify, progress=log_lines(lambda c: c.name))
                if args.verify > 0 else None)
    whole = args.all or len(df) <= SUMMARY_ABOVE
    meta = {"space": space.name, "summary": table.summary(), "flop_convention": FLOP_CONVENTION,
            "cost_convention": COST_NOTE, "dataset_size": size, "dataset_size_source": size_label,
            "regimes": regimes}
    if rate:
        meta.update({"device": device, "train_flops_per_s": rate})
    if verified:
        meta["verify"] = {"checked": verified[1], "max_relative_difference": verified[0]}
    if args.format == "json":
        totals = {k: exact_sum(df[k]) if k.startswith("train_flops") else float(df[k].sum())
                  for k in df.columns if k.startswith(("train_flops_", "est_hours_"))}
        out = {**meta, "n_configs": len(df), "totals": totals}
        if whole:
            specs = {c.name: c.spec.to_dict() for c in table.configs}
            out["configs"] = [{**_plain(r), "spec": specs[r["name"]]} for r in df.to_dict("records")]
        else:
            out["range"] = {k: {"min": int(df[k].min()), "median": float(df[k].median()), "max": int(df[k].max())}
                            for k in ("flops", "params")}
            ends = df.sort_values("flops", kind="stable")
            out["cheapest"] = [_plain(r) for r in ends.head(SUMMARY_ENDS).to_dict("records")]
            out["dearest"] = [_plain(r) for r in ends.tail(SUMMARY_ENDS).iloc[::-1].to_dict("records")]
            out["configs_within_flops"] = {str(b): n for b, n in budget_counts(df["flops"])}
            out["configs"] = None
        print(json.dumps(out, indent=1))
        return 0
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
        if verified:
            print(_verify_line(verified), file=sys.stderr)
        return 0
    print(f"space {space.name}: {table.summary()}")
    print(f"{FLOPS_NOTE}; {COST_NOTE}; {size:,} training images ({size_label})"
          + (f"; hours at {rate / 1e12:.3g} TFLOP/s measured on {device}" if rate else ""))
    if whole:
        print(_space_table(df, regimes, rate is not None))
    else:
        print(summarise(df, lambda part: _space_table(part, regimes, rate is not None, total=False),
                        "--all prints every config, --format csv every row as CSV"))
        print(_totals_line(df, regimes, rate is not None))
    if verified:
        print(_verify_line(verified))
    return 0


def big_space_note(space):
    """Where a big space's expansion tells its steps: a line each on stderr (for grids and random
    spaces above ``SUMMARY_ABOVE`` points), else nowhere."""
    from .progress import note

    points = math.prod(len(v) for v in space.axes.values()) * math.prod(len(next(iter(g.values())))
                                                                      for g in space.paired)
    big = space.samples if space.kind == "random" else points if space.kind == "grid" else 0
    return note if big > SUMMARY_ABOVE else None


def load_space_arg(text: str):
    """The space a command names (a preset or a file)."""
    from search_spaces import load_space

    return load_space(text)


def budget_counts(flops) -> list[tuple[str, int]]:
    """(FLOP budget as text, configs at or under it) at 1-2-5 steps from the cheapest to the dearest."""
    lo, hi = float(flops.min()), float(flops.max())
    steps = [m * 10 ** e for e in range(int(math.floor(math.log10(max(lo, 1)))), int(math.log10(max(hi, 1))) + 2)
             for m in (1, 2, 5)]
    import numpy as np

    inside = [b for b in steps if lo <= b < hi]
    budgets = inside[::-(-len(inside) // 8) or 1] + [hi]  # at most 8 steps, and the dearest
    values = np.sort(flops.to_numpy())
    return [(_flops_text(b), int(np.searchsorted(values, b, side="right"))) for b in budgets]


def _flops_text(v: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.4g}{unit}"
    return f"{v:.4g}"


def summarise(df, render, hint: str) -> str:
    """A summary of a priced table too long to print whole: counts, the FLOP and parameter
    ranges, the cheapest and dearest rows (``render(rows)`` draws them), configs within FLOP
    budgets, and ``hint`` (how to see every row)."""
    ends = df.sort_values("flops", kind="stable")
    lines = [f"summary of {len(df):,} configs ({hint}):",
             f"  FLOPs per image {_flops_text(df['flops'].min())} to {_flops_text(df['flops'].max())} "
             f"(median {_flops_text(df['flops'].median())}); params {_flops_text(df['params'].min())} to "
             f"{_flops_text(df['params'].max())} (median {_flops_text(df['params'].median())})",
             f"  the {SUMMARY_ENDS} cheapest:", _indent(render(ends.head(SUMMARY_ENDS))),
             f"  the {SUMMARY_ENDS} dearest:", _indent(render(ends.tail(SUMMARY_ENDS).iloc[::-1])),
             "  configs within a FLOP budget (FLOPs per image; the space's constraints: {max_flops: ...} keeps "
             "only those):",
             _indent(", ".join(f"<= {b}: {n:,}" for b, n in budget_counts(df["flops"])), 4)]
    return "\n".join(lines)


def _indent(text: str, n: int = 4) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _totals_line(df, regimes: dict, hours: bool) -> str:
    from search_spaces.pricing import exact_sum

    parts = [f"{r}: {exact_sum(df[f'train_flops_{r}']) / 1e15:.4g} PFLOPs" for r in regimes if f"train_flops_{r}" in df]
    if hours:
        parts += [f"{r}: {df[f'est_hours_{r}'].sum():.4g} h" for r in regimes if f"est_hours_{r}" in df]
    return "  total training cost of every config: " + ("; ".join(parts) if parts else "-")


def _verify_line(verified) -> str:
    worst, names = verified
    return (f"verified {len(names)} configs against fvcore: largest relative difference in params/FLOPs/"
            f"activations = {worst:.3g}")


def _plain(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out


def _space_table(df, regimes: dict, hours: bool, total: bool = True) -> str:
    import pandas as pd

    from search_spaces.pricing import exact_sum

    cols = {"name": df["name"], "depth": df["depth"], "width": df["width_multiplier"].map("{:g}".format),
            "C x d": df["cardinality"].astype(str) + "x" + df["bottleneck_width"].astype(str),
            "res": df["resolution"], "params (M)": (df["params"] / 1e6).map("{:.2f}".format),
            "GFLOPs": (df["flops"] / 1e9).map("{:.3f}".format)}
    for tag in ("group", "strategy", "flop_multiplier", "match_by", "match_ratio", "flop_ratio"):
        if tag in df:
            cols[tag] = df[tag]
    if "regime_epochs" in df:  # the resnet_rs strategy's configs are made for these training lengths
        cols["for epochs"] = df["regime_epochs"].map(lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else "all")
    for r in regimes:
        if f"train_flops_{r}" in df:
            cols[f"PFLOPs {r}"] = (df[f"train_flops_{r}"] / 1e15).map(lambda v: "-" if v != v else f"{v:.4g}")
        if hours and f"est_hours_{r}" in df:
            cols[f"hours {r}"] = df[f"est_hours_{r}"].map(lambda v: "-" if v != v else f"{v:.3g}")
    table = pd.DataFrame(cols)
    if not total:
        return table.to_string(index=False)
    total = {k: "" for k in table.columns}
    total.update({"name": "TOTAL", "params (M)": f"{df['params'].sum() / 1e6:.1f}",
                  "GFLOPs": f"{df['flops'].sum() / 1e9:.1f}"})
    for r in regimes:
        if f"train_flops_{r}" in df:
            total[f"PFLOPs {r}"] = f"{exact_sum(df[f'train_flops_{r}']) / 1e15:.4g}"
        if hours and f"est_hours_{r}" in df:
            total[f"hours {r}"] = f"{df[f'est_hours_{r}'].sum():.4g}"
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.to_string(index=False)


def _parse_vary(items: list[str]) -> list[tuple[str, list]]:
    return [(name, parsed if isinstance(parsed, list) else [parsed])
            for name, parsed in parse_pairs(items, "vary", "FIELD=V1,V2,...")]


def _match(args) -> int:
    import pandas as pd

    from scaling import ArchSpec, complexity
    from search_spaces import block_params, match, resolve_target

    target = _spec(args.target) if args.target.endswith((".yaml", ".yml", ".json")) else args.target
    target_value, label = resolve_target(target, args.match)
    if args.base:
        base = _spec(args.base)
    elif isinstance(target, ArchSpec):
        base = target
    else:
        try:
            base = _spec(args.target)
        except ArchScaleError:
            raise ArchScaleError("base", "the target is a count: name the network to vary with --base") from None
    vary = _parse_vary(args.vary)
    for name, _ in vary:
        check_choice(name, spec_fields(), "vary", "ArchSpec field")
    rows = []
    for combo in itertools.product(*[[(n, v) for v in values] for n, values in vary]) if vary else [()]:
        spec = ArchSpec.from_dict({**base.to_dict(), **dict(combo)})
        r = match(spec, target_value, args.solve, by=args.match, step=args.step, tolerance=args.tolerance)
        cx = complexity(r.spec, counter="analytic")
        rows.append({**dict(combo), args.solve: r.value, "name": r.spec.slug(), "params": cx.params,
                     "block_params": block_params(r.spec), "flops": r.flops, f"target_{MATCH_UNITS[args.match]}":
                     target_value, "ratio": round(r.ratio, 4)})
    df = pd.DataFrame(rows)
    if args.format == "json":
        print(json.dumps({"target": label, "match": args.match, f"target_{MATCH_UNITS[args.match]}": target_value,
                          "solve": args.solve, "flop_convention": FLOP_CONVENTION,
                          "rows": [_plain(r) for r in df.to_dict("records")]}, indent=1))
        return 0
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
        return 0
    amount = (f"{target_value / 1e9:.3f} GFLOPs" if args.match == "flops" else
              f"{target_value / 1e6:.4g} M {'params' if args.match == 'params' else 'params in a first-stage block'}")
    print(f"equal-complexity match by {args.match}: target {label} = {amount}, solving {args.solve} ({FLOPS_NOTE})")
    shown = df.assign(**{"params (M)": (df["params"] / 1e6).map("{:.2f}".format),
                         "block params (k)": (df["block_params"] / 1e3).map("{:.1f}".format),
                         "GFLOPs": (df["flops"] / 1e9).map("{:.3f}".format),
                         "ratio": df["ratio"].map("{:.3f}".format)})
    print(shown.drop(columns=["params", "block_params", "flops", f"target_{MATCH_UNITS[args.match]}"])
          .to_string(index=False))
    return 0


def _scale(args) -> int:
    import pandas as pd

    from scaling import complexity
    from search_spaces import STRATEGIES, scale

    from ..train.regimes import get_regime

    base = _spec(args.base)
    epochs = get_regime(args.regime).epochs
    strategies = [s.strip() for s in args.strategies.split(",")] if args.strategies else list(STRATEGIES)
    multipliers = parse_value(args.multipliers)
    multipliers = multipliers if isinstance(multipliers, list) else [multipliers]
    rows = []
    for strategy in strategies:
        for m in multipliers:
            if not is_number(m):
                raise ArchScaleError("multipliers", f"expected numbers such as 2,4,8, got {m!r}")
            s = scale(base, strategy, m, tolerance=args.tolerance, regime_epochs=epochs)
            cx = complexity(s.spec, counter="analytic")
            rows.append({"strategy": strategy, "multiplier": m, "name": s.spec.slug(), "layers": "_".join(
                map(str, s.spec.layers)), "params": cx.params, "target_flops": s.target, "flops": s.flops,
                "ratio": round(s.ratio, 4), "within_tolerance": s.within_tolerance, "detail": s.detail})
    df = pd.DataFrame(rows)
    if args.format == "json":
        print(json.dumps({"base": args.base, "regime": args.regime, "regime_epochs": epochs,
                          "tolerance": args.tolerance, "flop_convention": FLOP_CONVENTION,
                          "rows": [_plain(r) for r in df.to_dict("records")]}, indent=1))
        return 0
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
        return 0
    print(f"scaling {args.base} ({FLOPS_NOTE}); tolerance on the FLOP target: +-{args.tolerance:.0%}; "
          f"for {args.regime} ({plural(epochs, 'epoch')})")
    shown = df.assign(**{"params (M)": (df["params"] / 1e6).map("{:.2f}".format),
                         "target GFLOPs": (df["target_flops"] / 1e9).map("{:.3f}".format),
                         "GFLOPs": (df["flops"] / 1e9).map("{:.3f}".format),
                         "ratio": df["ratio"].map("{:.3f}".format),
                         "ok": df["within_tolerance"].map({True: "yes", False: "NO"})})
    details = [d for d in dict.fromkeys(df["detail"]) if d]  # how each was placed: long, so notes below
    number = {d: i for i, d in enumerate(details, 1)}
    shown["detail"] = df["detail"].map(lambda d: f"[{number[d]}]" if d else "")
    print(shown.drop(columns=["params", "target_flops", "flops", "within_tolerance"])
          .rename(columns={"detail": "note"}).to_string(index=False))
    for d, i in number.items():
        print(textwrap.fill(f"[{i}] {d}", width=NOTE_WIDTH, subsequent_indent="    "))
    return 0


def _list(args) -> int:
    from .list_ import spaces

    print(spaces())
    return 0
