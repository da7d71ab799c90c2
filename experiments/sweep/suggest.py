"""The next sweep as a sweep spec: spend the next budget where a run says accuracy is cheapest.

``suggest(run_dir, budget)`` reads a sweep's output directory (results, plan and manifest),
lets ``reports.next_sweep.plan_next_sweep`` choose the base configuration and the strategies
(the best dimension by top-1 gained per doubling of FLOPs, the runner-up, the ResNet-RS rule),
places each strategy at the budget with ``search_spaces.strategies.scale`` (width, resolution
and cardinality solved by the equal-FLOP matcher, depth by bisection) and keeps those that land
within ``TOLERANCE`` of it. The spec is a ``kind: scaling`` space from the base with those
strategies at the one multiplier, and carries the run's regimes, data set, seeds, resources,
scheduler and trial options over; its reasoning is written as YAML comments. It is validated and
priced (``load_sweep`` and ``make_plan``, as ``archscale sweep --dry-run`` does) before it is returned.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

from reports.binning import format_flops
from reports.next_sweep import DEFAULT_BUDGET, STRATEGY_NAMES, STRATEGY_WHY, NextSweep, plan_next_sweep
from scaling import ArchSpec, spec_from_dict
from scaling.conventions import FLOP_CONVENTION, TRAIN_FLOPS_PER_FORWARD
from scaling.errors import ArchScaleError
from search_spaces.matching import parse_count
from search_spaces.strategies import ScaledConfig, scale

from ..results.schema import read_manifest
from ..results.store import load_results, read_plan

__all__ = ["Suggestion", "suggest", "parse_budget", "TOLERANCE"]

#: How far from the budget a placed configuration may land (relative).
TOLERANCE = 0.10
#: The run's spec keys the next sweep carries over as they were.
CARRIED = ("regimes", "dataset", "seeds", "resources", "scheduler", "retries", "storage_path", "trial")


@dataclass(frozen=True)
class Suggestion:
    """A suggested sweep: ``text`` (the YAML with its reasoning as comments), ``spec`` (the mapping),
    the configurations placed at ``budget_flops`` (FLOPs per image) and the strategies ``dropped``
    (with why), the decision ``plan`` it came from, and ``train_flops`` (its training compute)."""

    text: str
    spec: dict
    placed: tuple[ScaledConfig, ...]
    dropped: tuple[tuple[str, str], ...]
    plan: NextSweep
    budget_flops: int
    train_flops: int


def parse_budget(value, base_flops: float) -> float:
    """The FLOP multiplier of a budget: '2x' (times the base's FLOPs) or FLOPs per image ('5M', 2.4e6)."""
    text = str(value).strip().lower()
    try:
        multiplier = float(text[:-1]) if text.endswith("x") else None
    except ValueError:
        multiplier = None
    if multiplier is None and not text.endswith("x"):
        flops = parse_count(value, "budget", quiet=True)
        multiplier = flops / base_flops if flops is not None else None
    if multiplier is None or not math.isfinite(multiplier) or multiplier <= 0:
        raise ArchScaleError("budget", f"expected a multiple of the base's FLOPs such as 2x, or FLOPs per image such "
                                       f"as 5M or 2.4e6, got {value!r}")
    return multiplier


def suggest(run_dir, budget=DEFAULT_BUDGET, *, out_name: str | None = None) -> Suggestion:
    """The next sweep of the run in ``run_dir`` at ``budget`` (see ``parse_budget``), validated and priced.

    ``out_name``: the file name the spec will be saved under (shown in its comments). Raises
    ArchScaleError("run_dir") when the run has no finished trial or no manifest, and
    ArchScaleError("budget") when no strategy reaches the budget within ``TOLERANCE``.
    """
    run_dir = Path(run_dir)
    trials, _ = load_results(run_dir)
    manifest = read_manifest(run_dir, required=True)
    plan = plan_next_sweep(trials)
    if plan is None:
        raise ArchScaleError("run_dir", f"{run_dir} has no finished trial yet; suggest reads the results, so run it "
                                        "again when trials have finished")
    base = _base_spec(run_dir, plan.base)
    multiplier = float(f"{parse_budget(budget, plan.base_flops):.6g}")
    if plan.base_flops * multiplier < 1:
        raise ArchScaleError("budget", f"{budget} is less than one FLOP per image; ask for another budget")
    placed, dropped = _place(base, multiplier, plan)
    if not placed:
        why = "; ".join(f"{s}: {m}" for s, m in dropped)
        raise ArchScaleError("budget", f"no strategy reaches {multiplier:g}x the FLOPs of {plan.base} within "
                                       f"{TOLERANCE:.0%} ({why}); ask for another budget")
    spec = _spec(manifest, base, placed, multiplier, plan)
    train_flops = _check(spec, placed)
    text = _comments(plan, placed, dropped, multiplier, budget, run_dir, out_name, train_flops, spec) + \
        yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)
    return Suggestion(text, spec, tuple(placed), tuple(dropped), plan, int(round(plan.base_flops * multiplier)),
                      train_flops)


def _place(base: ArchSpec, multiplier: float, plan: NextSweep) -> tuple[list[ScaledConfig], list[tuple[str, str]]]:
    """The plan's strategies placed at the budget, and those left out with why. A ranked dimension that
    cannot be placed within ``TOLERANCE`` gives its place to the next one in the ranking."""
    ranked = [r.dimension for r in plan.ranking]
    wanted = [s for s in plan.strategies if s in ranked]
    queue = list(plan.strategies) + [d for d in ranked if d not in plan.strategies]
    placed, dropped = [], []
    for strategy in queue:
        reserve = strategy not in plan.strategies
        if reserve and sum(s.strategy in ranked for s in placed) >= len(wanted):
            break
        try:
            s = scale(base, strategy, multiplier, tolerance=TOLERANCE, regime_epochs=plan.regime_epochs)
        except ArchScaleError as e:
            dropped.append((strategy, e.message))
            continue
        if not s.within_tolerance:
            dropped.append((strategy, f"lands at {s.ratio:.2f}x the budget, beyond {TOLERANCE:.0%}"))
            continue
        same = next((p for p in placed if p.spec == s.spec), None)
        if same is not None:
            dropped.append((strategy, f"the same network as {STRATEGY_NAMES.get(same.strategy, same.strategy)} "
                                      "at this budget"))
            continue
        placed.append(s)
    return placed, dropped


def _base_spec(run_dir: Path, name: str) -> ArchSpec:
    """The ArchSpec the run trained under config name ``name`` (from its plan)."""
    for row in read_plan(run_dir):
        if row.get("name") == name and isinstance(row.get("config"), dict) and "spec" in row["config"]:
            return spec_from_dict(row["config"]["spec"])
    raise ArchScaleError("run_dir", f"the plan of {run_dir} does not hold configuration {name!r}")


def _spec(manifest: dict, base: ArchSpec, placed: list[ScaledConfig], multiplier: float, plan: NextSweep) -> dict:
    """The next sweep's spec mapping: a scaling space from ``base`` and the run's settings carried over."""
    raw = manifest.get("spec") or {}
    name = f"{manifest.get('name') or raw.get('name') or 'sweep'}_next"
    defaults = ArchSpec().to_dict()
    space = {"kind": "scaling",
             "base": {k: v for k, v in base.to_dict().items() if v != defaults[k]},
             "strategies": [s.strategy for s in placed], "multipliers": [multiplier],
             "regime_epochs": plan.regime_epochs, "tolerance": TOLERANCE}
    spec = {"name": name, "description": f"Next sweep of {manifest.get('name', 'a run')}: {plan.base} grown to "
                                        f"{multiplier:g}x its FLOPs where the run says accuracy is cheapest",
            "space": space}
    spec.update({k: raw[k] for k in CARRIED if raw.get(k) is not None})
    out = raw.get("output_dir") or manifest.get("output_dir") or f"runs/{name}"
    spec["output_dir"] = f"{str(out).rstrip('/')}_next"
    return spec


def _check(spec: dict, placed: list[ScaledConfig]) -> int:
    """Validate and price ``spec`` as a dry run does; returns its training compute (FLOPs). Raises when a
    configuration of the expanded space misses the budget (it would be a bug: each was placed within it)."""
    from search_spaces.pricing import exact_sum

    from .spec import load_sweep, make_plan

    trials, expansion = make_plan(load_sweep(spec), strict_data=False)
    scaled = [c for c in expansion.configs if c.tags.get("strategy") != "base"]
    targets = {s.strategy: s.target for s in placed}
    for c in scaled:
        ratio = c.tags.get("flop_ratio", 1.0)
        if abs(ratio - 1) > TOLERANCE or c.tags.get("strategy") not in targets:
            raise AssertionError(f"{c.name} landed at {ratio}x of its budget")
    return exact_sum(t["train_flops"] for t in trials)


def _comments(plan: NextSweep, placed, dropped, multiplier: float, budget, run_dir: Path, out_name, train_flops: int,
              spec: dict) -> str:
    """The spec's reasoning as '# ' lines."""
    budget_flops = plan.base_flops * multiplier
    lines = [f"Next sweep of {run_dir}, written by `archscale suggest {run_dir} --budget {budget}`.", ""]
    lines += plan.reasons()
    lines += ["", f"Budget: {multiplier:g}x the base's FLOPs = {format_flops(budget_flops, 3)} per image "
                  f"({FLOP_CONVENTION}). Each strategy placed there, within {TOLERANCE:.0%}:"]
    for s in placed:
        lines.append(f"- {STRATEGY_NAMES.get(s.strategy, s.strategy)}: {s.spec.slug()}, {format_flops(s.flops, 3)} "
                     f"({s.ratio:.3f}x the budget); {plan.why.get(s.strategy, STRATEGY_WHY['reserve'])}"
                     + (f": {s.detail}" if s.detail else ""))
    for strategy, why in dropped:
        lines.append(f"- left out: {STRATEGY_NAMES.get(strategy, strategy)} ({why})")
    regimes = ", ".join(r if isinstance(r, str) else str(r.get("name")) for r in spec.get("regimes", []))
    seeds = spec.get("seeds", [0])
    seeds = ", ".join(map(str, seeds)) if isinstance(seeds, list) else seeds
    lines += ["", f"The base is trained again as the control. Carried over from the run: regimes ({regimes}), data "
                  f"({_dataset(spec.get('dataset'))}), seeds ({seeds}) "
                  f"and its resources. Training compute: {_compute(train_flops)} ({TRAIN_FLOPS_PER_FORWARD} x FLOPs x "
                  "images x epochs, over all trials).",
              f"Check it: archscale sweep {out_name or 'next.yaml'} --dry-run", ""]
    wrapped = []
    for line in lines:
        indent = "  " if line.startswith(("- ", "  ")) else ""
        wrapped += textwrap.wrap(line, 100, subsequent_indent=indent, break_on_hyphens=False) or [""]
    return "".join(f"# {line}".rstrip() + "\n" for line in wrapped)


def _compute(flops: float) -> str:
    for unit, scale_ in (("EFLOPs", 1e18), ("PFLOPs", 1e15), ("TFLOPs", 1e12)):
        if flops >= scale_:
            return f"{flops / scale_:.3g} {unit}"
    return f"{flops / 1e9:.3g} GFLOPs"


def _dataset(value) -> str:
    if isinstance(value, dict):
        return str(value.get("label") or value.get("name"))
    return str(value or "digits")
