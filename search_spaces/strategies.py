"""Scaling strategies: grow a base network to 2x, 4x, ... its FLOPs along one rule.

- ``depth``: blocks per stage multiplied by one factor k (rounded per stage).
- ``width``: the width multiplier (step 1/16).
- ``resolution``: the input resolution (step 8 px).
- ``cardinality``: the number of groups, bottleneck width per group fixed (bottleneck blocks).
- ``compound``: EfficientNet's rule, depth a^phi, width b^phi, resolution c^phi with
  a * b^2 * c^2 ~ 2 (default a=1.2, b=1.1, c=1.15); phi is solved so the FLOPs hit the target.
- ``resnet_rs``: the ResNet-RS recommendation: grow the resolution slowly (it takes
  ``resolution_share`` of the log-FLOP growth, 0.25 by default, where EfficientNet's rule gives it
  0.40), and spend the rest on depth in long regimes (>= 150 epochs), on width in short ones
  (<= 30 epochs), half and half in between (the paper finds the 100-epoch winner depends on
  the resolution).

Every strategy solves its free numbers so the FLOPs land nearest the target; ``ScaledConfig``
says how close (``ratio``) and whether that is within the stated tolerance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from scaling import ArchScaleError, ArchSpec, check_fits
from scaling.conventions import LONG_REGIME_EPOCHS, SHORT_REGIME_EPOCHS
from scaling.errors import did_you_mean

from .matching import flops_of, match_flops

STRATEGIES = ("depth", "width", "resolution", "cardinality", "compound", "resnet_rs")
DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class ScaledConfig:
    """One scaled network and how close it came to its FLOP target."""

    spec: ArchSpec
    strategy: str
    multiplier: float
    target: int
    flops: int
    tolerance: float
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.flops / self.target

    @property
    def within_tolerance(self) -> bool:
        return abs(self.ratio - 1) <= self.tolerance


def scaled_layout(layers: tuple[int, ...], k: float) -> tuple[int, ...]:
    """Blocks per stage multiplied by k, each stage rounded and at least one block."""
    return tuple(max(1, int(math.floor(n * k + 0.5))) for n in layers)


def _quantize(x: float, step: float) -> float:
    return max(step, round(x / step) * step)


def _solve_continuous(make: Callable[[float], ArchSpec | None], target: int, lo: float, hi: float,
                      iters: int = 40) -> ArchSpec | None:
    """Bisect a FLOP-increasing continuous knob; return the nearest of the bracketing specs."""
    def flops(x):
        spec = make(x)
        return (spec, flops_of(spec)) if spec is not None else (None, None)

    lo_spec, lo_f = flops(lo)
    hi_spec, hi_f = flops(hi)
    if hi_spec is None:
        return lo_spec
    if lo_spec is not None and lo_f >= target:
        return lo_spec
    if hi_f <= target:
        return hi_spec
    for _ in range(iters):
        mid = (lo + hi) / 2
        spec, f = flops(mid)
        if spec is None or f < target:
            lo, lo_spec, lo_f = mid, spec, f
        else:
            hi, hi_spec, hi_f = mid, spec, f
    if lo_spec is None:
        return hi_spec
    return min((lo_spec, hi_spec), key=lambda s: abs(math.log(flops_of(s) / target)))


def _try(spec: ArchSpec, **changes) -> ArchSpec | None:
    """``spec`` with ``changes``, or None when that network is invalid or cannot be built."""
    try:
        candidate = spec.replace(**changes)
        check_fits(candidate)
    except ArchScaleError:
        return None
    return candidate


def _depth(spec: ArchSpec, target: int) -> ArchSpec | None:
    layers = spec.layers
    return _solve_continuous(lambda k: _try(spec, depth=scaled_layout(layers, k)), target, 0.01, 64.0)


def scale(base: ArchSpec, strategy: str, multiplier: float, *, tolerance: float = DEFAULT_TOLERANCE,
          regime_epochs: int = 350, compound: tuple[float, float, float] = (1.2, 1.1, 1.15),
          resolution_share: float = 0.25, width_step: float = 1 / 16,
          resolution_step: int | None = None) -> ScaledConfig:
    """``base`` grown to ``multiplier`` x its FLOPs by ``strategy`` (see the module docstring).

    Widths move in steps of ``width_step`` (1/16: whole channels on a 64-wide base); resolutions in
    steps of ``resolution_step``, by default 8 px for bases of 64 px and up, base/8 px below that.
    """
    if resolution_step is None:
        resolution_step = max(1, min(8, base.resolution // 8))
    if strategy not in STRATEGIES:
        raise ArchScaleError("strategies", f"unknown strategy {strategy!r}{did_you_mean(strategy, STRATEGIES)}; "
                                           f"known: {', '.join(STRATEGIES)}")
    if not multiplier > 0:
        raise ArchScaleError("multipliers", f"FLOP multipliers must be positive, got {multiplier}")
    base_flops = flops_of(base)
    target = int(round(base_flops * multiplier))
    detail = ""
    if strategy == "depth":
        spec = _depth(base, target)
    elif strategy in ("width", "resolution", "cardinality"):
        field = {"width": "width_multiplier", "resolution": "resolution", "cardinality": "cardinality"}[strategy]
        if strategy == "cardinality" and base.block != "bottleneck":
            raise ArchScaleError("strategies", "cardinality scaling needs bottleneck blocks (block: bottleneck)")
        step = {"width_multiplier": width_step, "resolution": resolution_step}.get(field)
        spec = match_flops(base, target, field, step=step, tolerance=math.inf).spec
    elif strategy == "compound":
        a, b, c = compound
        layers = base.layers

        def make(phi):
            return _try(base, depth=tuple(max(1, math.ceil(n * a ** phi)) for n in layers),
                        width_multiplier=_quantize(base.width_multiplier * b ** phi, width_step),
                        resolution=int(_quantize(base.resolution * c ** phi, resolution_step)))

        spec = _solve_continuous(make, target, -8.0, 4 * math.log2(max(multiplier, 1.0)) + 4)
        if spec is not None:
            detail = f"a={a} b={b} c={c}"
    else:  # resnet_rs
        res = int(_quantize(base.resolution * multiplier ** (resolution_share / 2), resolution_step))
        spec = _try(base, resolution=res)
        if spec is not None:
            if regime_epochs >= LONG_REGIME_EPOCHS:
                spec, detail = _depth(spec, target), "depth"
            elif regime_epochs <= SHORT_REGIME_EPOCHS:
                spec, detail = match_flops(spec, target, "width_multiplier", step=width_step,
                                           tolerance=math.inf).spec, "width"
            else:
                half = math.sqrt(target / flops_of(spec))  # width takes half the remaining log-FLOPs
                wm = _quantize(spec.width_multiplier * half ** 0.5, width_step)
                spec = _try(spec, width_multiplier=wm)
                spec, detail = (_depth(spec, target) if spec is not None else None), "depth+width"
            detail = f"resolution {res} px, then {detail} ({regime_epochs}-epoch regime)"
    if spec is None:
        raise ArchScaleError("multipliers", f"{strategy} scaling cannot reach {multiplier}x the FLOPs of "
                                            f"{base.slug()}")
    return ScaledConfig(spec, strategy, float(multiplier), target, flops_of(spec), tolerance, detail)


def scale_all(base: ArchSpec, strategies=STRATEGIES, multipliers=(2, 4, 8, 16), **kwargs) -> list[ScaledConfig]:
    """Every strategy at every multiplier (in that order)."""
    return [scale(base, s, m, **kwargs) for s in strategies for m in multipliers]
