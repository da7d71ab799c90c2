"""Equal-complexity matching: solve one free dimension so a network costs what a target costs.

What "costs" means is ``by`` (``MATCH_BY``): whole-network FLOPs, whole-network parameters, or the
parameters of one block of the first stage (``block_params``), which is the ResNeXt paper's rule
for its Table 2: it keeps the complexity of the template's conv2-stage block, C x (256d + 9d^2 +
256d) ~ 70 k for ResNet-50, and so gets 1x64d, 2x40d, 4x24d, 8x14d and 32x4d on both templates
(equal whole-network FLOPs give 8x13d on ResNet-50). All FLOPs follow
``scaling.conventions.FLOP_CONVENTION``, priced with the closed-form counter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from scaling import ArchScaleError, ArchSpec, analytic_counts, check_fits, get_preset, spec_from_dict
from scaling.errors import did_you_mean
from scaling.spec import NAMED_DEPTHS
from scaling.validate import check_choice

#: Default grid of each solvable dimension: (step, low, high). Integers step by 1; the width
#: multiplier by 1/16 (whole channels on a 64-wide base); resolution by 8 px.
DEFAULT_STEPS: dict[str, tuple[float, float, float]] = {
    "bottleneck_width": (1, 1, 4096),
    "cardinality": (1, 1, 4096),
    "width_multiplier": (1 / 16, 1 / 16, 16),
    "resolution": (8, 8, 4096),
    "stem_width": (1, 2, 4096),
    "widen_factor": (1 / 16, 1 / 16, 64),
}
SOLVABLE = ("depth",) + tuple(DEFAULT_STEPS)
#: What a match holds equal: whole-network FLOPs, whole-network parameters, or one first-stage
#: block's parameters (the ResNeXt paper's Table 2 rule).
MATCH_BY = ("flops", "params", "block")
UNITS = {"flops": "FLOPs", "params": "params", "block": "block params"}


@dataclass(frozen=True)
class MatchResult:
    """The solved spec and how close its FLOPs came to the target."""

    spec: ArchSpec
    field: str
    value: Any
    flops: int
    #: The target in the unit of ``by`` (FLOPs, params or block params).
    target: int
    by: str = "flops"
    #: The solved network's measure in the unit of ``by`` (its FLOPs when None).
    achieved: int | None = None

    @property
    def ratio(self) -> float:
        """Achieved / target, in the unit of ``by``."""
        return (self.flops if self.achieved is None else self.achieved) / self.target


def flops_of(spec: ArchSpec) -> int:
    """Forward FLOPs of one image (``scaling.conventions.FLOP_CONVENTION``), closed form."""
    return analytic_counts(spec).flops


def params_of(spec: ArchSpec) -> int:
    """Parameters of the whole network, closed form."""
    return analytic_counts(spec).params


def block_params(spec: ArchSpec) -> int:
    """Parameters of one block of the first stage that keeps its width (ResNeXt's conv2 stage): the
    block complexity the ResNeXt paper holds constant in Table 2, closed form (its BNs included)."""
    from scaling.analytic import BLOCK_KINDS, block_keywords
    from scaling.cx import Cx
    from scaling.plan import block_kind

    planes = spec.stage_planes[0]
    cx = Cx(8, 8)  # parameters do not depend on the feature-map size
    BLOCK_KINDS[block_kind(spec)].closed_form(cx, planes * spec.expansion, planes, 1, drop_prob=0.0, **block_keywords(spec))
    return cx.params


MEASURES: dict[str, Callable[[ArchSpec], int]] = {"flops": flops_of, "params": params_of, "block": block_params}


def resolve_target(target: Any, by: str = "flops") -> tuple[int, str]:
    """(measure, label) of a target given as a number, a preset name, an ArchSpec or an ArchSpec
    mapping; the measure is what ``by`` holds equal (``MATCH_BY``): a network's FLOPs, params or
    first-stage block params. Numbers are taken in that unit and may carry a K/M/G/T suffix ("4.1G").
    """
    check_choice(by, MATCH_BY, "match.by", "match rule")
    measure = MEASURES[by]
    if isinstance(target, ArchSpec):
        return measure(target), target.slug()
    if isinstance(target, dict):
        spec = spec_from_dict(target)
        return measure(spec), str(target.get("preset", spec.slug()))
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        if target <= 0:
            raise ArchScaleError("target", f"{UNITS[by]} must be positive, got {target}")
        return int(round(target)), (f"{target / 1e9:g}G" if by == "flops" else f"{target / 1e6:g}M {UNITS[by]}")
    if isinstance(target, str):
        number = parse_count(target, "target", quiet=True)
        if number is not None:
            return resolve_target(number, by)
        return measure(get_preset(target)), target
    raise ArchScaleError("target", f"expected {UNITS[by]}, a preset name or an ArchSpec, got {target!r}")


def parse_count(value: Any, field: str, quiet: bool = False) -> float | None:
    """A count given as a number or a string with a K/M/G/T suffix ('25M', '4.1G')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip().upper().rstrip("B")
        scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(text[-1:], 1.0)
        try:
            return float(text[:-1] if scale != 1.0 else text) * scale
        except ValueError:
            pass
    if quiet:
        return None
    raise ArchScaleError(field, f"expected a number such as 25e6 or '25M', got {value!r}")


def _candidate(spec: ArchSpec, field: str, value) -> ArchSpec | None:
    """``spec`` with ``field`` set to ``value``, or None when that network is invalid or cannot be built."""
    try:
        candidate = spec.replace(**{field: value})
        check_fits(candidate)
    except ArchScaleError:
        return None
    return candidate


def _nearest(target: int, a: tuple[Any, ArchSpec, int] | None, b: tuple[Any, ArchSpec, int] | None):
    options = [o for o in (a, b) if o is not None]
    return min(options, key=lambda o: abs(math.log(o[2] / target)))


def _search_monotone(n: int, make: Callable[[int], ArchSpec | None], target: int,
                     measure: Callable[[ArchSpec], int] = flops_of):
    """Nearest (index, spec, measure) over indices 0..n-1 whose ``measure`` grows with the index.

    Invalid candidates (make returns None) are assumed to lie below the valid ones.
    """
    lo, hi = 0, n - 1
    if make(hi) is None:
        return None
    while lo < hi:  # first valid index
        mid = (lo + hi) // 2
        if make(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    lo, hi = first, n - 1
    while lo < hi:  # first index with FLOPs >= target
        mid = (lo + hi) // 2
        if measure(make(mid)) >= target:
            hi = mid
        else:
            lo = mid + 1

    def entry(i):
        spec = make(i)
        return (i, spec, measure(spec))

    above = entry(lo)
    below = entry(lo - 1) if lo > first else None
    return _nearest(target, above, below)


def match_flops(spec: ArchSpec, target: Any, solve: str, **options) -> MatchResult:
    """``match`` holding whole-network FLOPs equal (see ``match``)."""
    return match(spec, target, solve, by="flops", **options)


def match(spec: ArchSpec, target: Any, solve: str, *, by: str = "flops", step: float | None = None,
          low: float | None = None, high: float | None = None, tolerance: float = 0.15) -> MatchResult:
    """Solve ``solve`` so that ``spec``'s ``by`` (``MATCH_BY``) is nearest ``target``'s (see resolve_target).

    The value respects the dimension's step: whole numbers for widths per group and cardinality,
    multiples of ``step`` for the width multiplier (1/16) and resolution (8 px), named depths for
    depth. Raises ArchScaleError("target") when even the closest value misses the target by more
    than ``tolerance`` (relative), or when ``solve`` does not change what ``by`` measures.
    """
    target_value, label = resolve_target(target, by)
    measure, unit = MEASURES[by], UNITS[by]
    if solve == "depth":
        table = NAMED_DEPTHS.get((spec.block, spec.num_stages), {})
        options = [s for s in (_candidate(spec, "depth", d) for d in table) if s is not None]
        options.sort(key=measure)
        found = _search_monotone(len(options), lambda i: options[i], target_value, measure) if options else None
        describe = f"named depths {sorted(table)}"
    elif solve in DEFAULT_STEPS:
        d_step, d_low, d_high = DEFAULT_STEPS[solve]
        step, low, high = step or d_step, low or d_low, high or d_high
        integer = solve in ("bottleneck_width", "cardinality", "resolution", "stem_width")
        if integer and (step != int(step) or low != int(low)):
            raise ArchScaleError("step", f"{solve} takes whole numbers; use an integer step")
        k0 = max(1, math.ceil(low / step - 1e-9))
        n = int(math.floor(high / step + 1e-9)) - k0 + 1

        def value(i):
            v = (k0 + i) * step
            return int(round(v)) if integer else round(v, 10)

        make = lambda i: _candidate(spec, solve, value(i))  # noqa: E731
        found = _search_monotone(n, make, target_value, measure) if n > 0 else None
        describe = f"{solve} in [{value(0)}, {value(n - 1)}] step {step:g}"
    else:
        raise ArchScaleError("solve", f"cannot solve {solve!r}{did_you_mean(solve, SOLVABLE)}; "
                                      f"solvable: {', '.join(SOLVABLE)}")
    if found is None:
        raise ArchScaleError("target", f"no valid {solve} for {spec.slug()} ({describe})")
    _, solved, achieved = found
    result = MatchResult(solved, solve, getattr(solved, solve), flops_of(solved), target_value, by, achieved)
    if abs(result.ratio - 1) > tolerance:
        fixed = by == "block" and solve in ("resolution", "depth")
        raise ArchScaleError("target", f"{label} ({_amount(target_value, by)}) is out of reach by {solve} for "
                                       f"{spec.slug()}: the closest, {solve}={result.value}, gives "
                                       f"{result.ratio:.2f}x the {unit} ({describe})"
                                       + ("; a block's parameters do not change with " + solve if fixed else "")
                                       + "; change the target or solve another dimension")
    return result


def _amount(value: int, by: str) -> str:
    return f"{value / 1e9:.3g} GFLOPs" if by == "flops" else f"{value / 1e6:.4g} M {UNITS[by]}"
