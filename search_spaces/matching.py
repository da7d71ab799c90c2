"""Equal-FLOP matching: solve one free dimension so a network costs what a target costs.

All FLOPs follow ``scaling.conventions.FLOP_CONVENTION``, priced with the closed-form counter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from scaling import ArchScaleError, ArchSpec, analytic_counts, check_fits, get_preset, spec_from_dict
from scaling.errors import did_you_mean
from scaling.spec import NAMED_DEPTHS

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


@dataclass(frozen=True)
class MatchResult:
    """The solved spec and how close its FLOPs came to the target."""

    spec: ArchSpec
    field: str
    value: Any
    flops: int
    target: int

    @property
    def ratio(self) -> float:
        """Achieved FLOPs / target FLOPs."""
        return self.flops / self.target


def flops_of(spec: ArchSpec) -> int:
    """Forward FLOPs of one image (``scaling.conventions.FLOP_CONVENTION``), closed form."""
    return analytic_counts(spec).flops


def resolve_target(target: Any) -> tuple[int, str]:
    """(FLOPs, label) of a target given as FLOPs, a preset name, an ArchSpec or an ArchSpec mapping.

    Numbers may carry a K/M/G/T suffix ("4.1G").
    """
    if isinstance(target, ArchSpec):
        return flops_of(target), target.slug()
    if isinstance(target, dict):
        spec = spec_from_dict(target)
        return flops_of(spec), str(target.get("preset", spec.slug()))
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        if target <= 0:
            raise ArchScaleError("target", f"FLOPs must be positive, got {target}")
        return int(round(target)), f"{target / 1e9:g}G"
    if isinstance(target, str):
        number = parse_count(target, "target", quiet=True)
        if number is not None:
            return resolve_target(number)
        return flops_of(get_preset(target)), target
    raise ArchScaleError("target", f"expected FLOPs, a preset name or an ArchSpec, got {target!r}")


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


def _search_monotone(n: int, make: Callable[[int], ArchSpec | None], target: int):
    """Nearest (index, spec, flops) over indices 0..n-1 whose FLOPs grow with the index.

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
        if flops_of(make(mid)) >= target:
            hi = mid
        else:
            lo = mid + 1

    def entry(i):
        spec = make(i)
        return (i, spec, flops_of(spec))

    above = entry(lo)
    below = entry(lo - 1) if lo > first else None
    return _nearest(target, above, below)


def match_flops(spec: ArchSpec, target: Any, solve: str, *, step: float | None = None,
                low: float | None = None, high: float | None = None, tolerance: float = 0.15) -> MatchResult:
    """Solve ``solve`` so that ``spec``'s FLOPs are nearest ``target`` (see resolve_target).

    The value respects the dimension's step: whole numbers for widths per group and cardinality,
    multiples of ``step`` for the width multiplier (1/16) and resolution (8 px), named depths for
    depth. Raises ArchScaleError("target") when even the closest value misses the target by more
    than ``tolerance`` (relative).
    """
    target_flops, label = resolve_target(target)
    if solve == "depth":
        table = NAMED_DEPTHS.get((spec.block, spec.num_stages), {})
        options = [s for s in (_candidate(spec, "depth", d) for d in table) if s is not None]
        options.sort(key=flops_of)
        found = _search_monotone(len(options), lambda i: options[i], target_flops) if options else None
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

        found = _search_monotone(n, lambda i: _candidate(spec, solve, value(i)), target_flops) if n > 0 else None
        describe = f"{solve} in [{value(0)}, {value(n - 1)}] step {step:g}"
    else:
        raise ArchScaleError("solve", f"cannot solve {solve!r}{did_you_mean(solve, SOLVABLE)}; "
                                      f"solvable: {', '.join(SOLVABLE)}")
    if found is None:
        raise ArchScaleError("target", f"no valid {solve} for {spec.slug()} ({describe})")
    _, solved, flops = found
    result = MatchResult(solved, solve, getattr(solved, solve), flops, target_flops)
    if abs(result.ratio - 1) > tolerance:
        raise ArchScaleError("target", f"{label} ({target_flops / 1e9:.3g} GFLOPs) is out of reach by "
                                       f"{solve} for {spec.slug()}: the closest, {solve}={result.value}, "
                                       f"gives {result.ratio:.2f}x ({describe}); change the target or solve "
                                       f"another dimension")
    return result
