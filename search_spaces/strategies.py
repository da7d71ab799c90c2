"""Scaling strategies: grow a base network to 2x, 4x, ... its FLOPs along one rule.

- ``depth``: blocks per stage multiplied by one factor k (rounded per stage).
- ``width``: the width multiplier (step 1/16).
- ``resolution``: the input resolution (step 8 px).
- ``cardinality``: the number of groups, bottleneck width per group fixed (bottleneck blocks).
- ``compound``: EfficientNet's rule, depth a^phi, width b^phi, resolution c^phi with
  a * b^2 * c^2 ~ 2 (default a=1.2, b=1.1, c=1.15); phi is solved so the FLOPs hit the target.
- ``resnet_rs``: the ResNet-RS rules (Bello et al. 2021; the tensorflow/tpu resnet_rs README:
  "scale the depth if overfitting can be an issue, if not, scale the width; scale image resolution
  slowly"), which need the training length (``regime_epochs``: a sweep passes its regimes'):

  1. Resolution grows as multiplier^alpha. The paper gives no exponent, only the advice to grow
     resolution more slowly than EfficientNet; alpha is **ours**: the growth of the published family
     from RS-50 at 160 px to RS-420 at 320 px, log(320/160) / log(FLOPs ratio of those two presets)
     = 0.208 (``rs_resolution_exponent``). That is EfficientNet's own rate within 3 % (compound
     scaling's c = 1.15 per doubling of FLOPs is 2^0.202), so from one base the two strategies reach
     nearly the same resolutions; what sets them apart is where the rest of the FLOPs go (step 2 and
     3, against EfficientNet's fixed depth and width exponents). ``resolution_exponent`` replaces it
     (e.g. 0.1 for a slower growth).
  2. Width takes a share of the growth left after resolution (in log-FLOPs), solved on the width
     strategy's 1/16 step: none of it in long regimes (>= ``LONG_REGIME_EPOCHS``), all of it in
     short ones (<= ``SHORT_REGIME_EPOCHS``), half of it in between. The two thresholds, the half
     and the step are ours: the paper trains 10, 100 and 350 epochs and finds depth best at 350,
     width at 10, and the 100-epoch winner depending on the resolution (its grid's widths, 0.25 ...
     2.0, are too coarse for this: 1.0 to 1.5 is already 2.25x the FLOPs, more than a 2x budget
     leaves after resolution). ``width_share`` fixes the share instead.
  3. Depth fills the rest along the ResNet-RS depth ladder, the family's blocks per stage
     (``RS_LADDER``: 50, 101, 152, 200, 270, 350, 420), which grows the middle stages: each stage
     is interpolated linearly between two rungs (those in-between layouts are ours), past RS-420
     the ladder's last step is repeated, below RS-50 the layout shrinks uniformly (both ours). A
     4-stage base that is not a rung grows by the ladder's per-stage ratios; other bases uniformly.

Every strategy solves its free numbers so the FLOPs land nearest the target; ``ScaledConfig``
says how close (``ratio``) and whether that is within the stated tolerance.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

from scaling import PRESETS, ArchScaleError, ArchSpec, check_fits
from scaling.conventions import LONG_REGIME_EPOCHS, SHORT_REGIME_EPOCHS
from scaling.errors import did_you_mean
from scaling.spec import NAMED_DEPTHS

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


# ----- ResNet-RS ------------------------------------------------------------------------------------
#: The depths of the ResNet-RS family: its presets (resnetrs50 ... resnetrs420).
RS_DEPTHS = tuple(sorted(int(name[len("resnetrs"):]) for name in PRESETS if name.startswith("resnetrs")))
#: The family's blocks per stage (tensorflow/tpu resnet_model.py's model_params, scaling.NAMED_DEPTHS).
RS_LADDER = tuple(NAMED_DEPTHS[("bottleneck", 4)][d] for d in RS_DEPTHS)


@functools.lru_cache(maxsize=None)
def rs_resolution_exponent() -> tuple[float, str]:
    """(alpha, where it came from): the published family's resolution grows as FLOPs^alpha (our choice
    of exponent: the paper gives none; see the module docstring).

    alpha = log(res of the largest / res of the smallest) / log(their FLOPs ratio), from the
    smallest and largest ResNet-RS presets at their published resolutions (160 and 320 px).
    """
    small, large = PRESETS[f"resnetrs{RS_DEPTHS[0]}"], PRESETS[f"resnetrs{RS_DEPTHS[-1]}"]
    ratio = flops_of(large) / flops_of(small)
    alpha = math.log(large.resolution / small.resolution) / math.log(ratio)
    return alpha, (f"ours, the paper gives none: alpha = log({large.resolution}/{small.resolution}) / "
                   f"log({ratio:.1f}) = {alpha:.3f}, RS-{RS_DEPTHS[0]} at {small.resolution} px to "
                   f"RS-{RS_DEPTHS[-1]} at {large.resolution} px, {ratio:.1f}x the FLOPs; EfficientNet's compound "
                   f"rate is log2(1.15) = {math.log2(1.15):.3f}")


def rs_width_share(regime_epochs: int) -> float:
    """The share of the growth (after resolution, in log-FLOPs) width takes in a regime this long."""
    if regime_epochs >= LONG_REGIME_EPOCHS:
        return 0.0
    if regime_epochs <= SHORT_REGIME_EPOCHS:
        return 1.0
    return 0.5


def ladder_layout(position: float, ladder: tuple[tuple[int, ...], ...] = RS_LADDER) -> tuple[int, ...]:
    """Blocks per stage at ``position`` on ``ladder`` (0 = its first rung, 1 = the second, ...).

    Between rungs each stage is interpolated linearly and rounded; past the last rung the ladder's
    last step repeats; below the first rung the first layout shrinks uniformly (2^position).
    """
    top = len(ladder) - 1
    if position < 0:
        return scaled_layout(ladder[0], 2.0 ** position)
    if position >= top:
        a, b, f = ladder[-2], ladder[-1], position - top + 1
    else:
        i = int(math.floor(position))
        a, b, f = ladder[i], ladder[i + 1], position - i
    return tuple(max(1, int(math.floor(x + f * (y - x) + 0.5))) for x, y in zip(a, b))


def ladder_describe(layout: tuple[int, ...]) -> str:
    """Where ``layout`` sits on the ResNet-RS ladder: a rung, between two (ours), or beyond it (ours)."""
    if layout in RS_LADDER:
        return f"RS-{RS_DEPTHS[RS_LADDER.index(layout)]}'s layout"
    total = sum(layout)
    sums = [sum(r) for r in RS_LADDER]
    if total < sums[0]:
        return f"below RS-{RS_DEPTHS[0]} (ours)"
    if total > sums[-1]:
        return f"past RS-{RS_DEPTHS[-1]}, its last step repeated (ours)"
    i = max(k for k, n in enumerate(sums) if n <= total)
    return f"between RS-{RS_DEPTHS[i]} and RS-{RS_DEPTHS[min(i + 1, len(sums) - 1)]} (interpolated, ours)"


def _rs_depth(spec: ArchSpec, target: int) -> ArchSpec | None:
    """``spec`` with its depth solved along the ResNet-RS ladder so its FLOPs are nearest ``target``."""
    layers = spec.layers
    if len(layers) != len(RS_LADDER[0]):
        return _depth(spec, target)
    if layers in RS_LADDER:
        start = RS_LADDER.index(layers)
        make = lambda t: _try(spec, depth=ladder_layout(start + t))  # noqa: E731
    else:  # the ladder's per-stage growth applied to the base's own layout
        make = lambda t: _try(spec, depth=tuple(max(1, round(n * g / r)) for n, g, r in  # noqa: E731
                                                zip(layers, ladder_layout(t), RS_LADDER[0])))
    return _solve_continuous(make, target, -8.0, 64.0)


def _resnet_rs(base: ArchSpec, multiplier: float, target: int, regime_epochs: int | None, width_share,
               resolution_exponent, resolution_step: int, width_step: float) -> tuple[ArchSpec | None, str]:
    """The ResNet-RS rules (see the module docstring): resolution, then width (its share of the growth
    left after resolution), then depth (the rest, along the ladder)."""
    if width_share is None:
        if regime_epochs is None:
            raise ArchScaleError("regimes", "the resnet_rs strategy picks depth or width by the training length: "
                                            "give the regime (a sweep passes its regimes; 'archscale space' and "
                                            "'space scale' take --regimes / --regime)")
        share, why = rs_width_share(regime_epochs), f"{regime_epochs}-epoch regime"
    else:
        share, why = float(width_share), "width_share given"
    alpha, alpha_where = rs_resolution_exponent() if resolution_exponent is None else \
        (float(resolution_exponent), "resolution_exponent given")
    res = int(_quantize(base.resolution * multiplier ** alpha, resolution_step))
    spec = _try(base, resolution=res)
    if spec is None:
        return None, ""
    rest, base_flops = target / flops_of(spec), flops_of(spec)
    wanted = share * math.log(rest) if share > 0 and rest > 0 else 0.0
    width = spec.width_multiplier
    if wanted > 0:  # width takes its share of the growth, on the 1/16 step (ours, as the width strategy)
        wide = match_flops(spec, int(round(base_flops * math.exp(wanted))), "width_multiplier", step=width_step,
                           tolerance=math.inf).spec
        width = max(wide.width_multiplier, spec.width_multiplier)
    wide = _try(spec, width_multiplier=width)
    spec = _rs_depth(wide, target) if wide is not None else None
    if spec is None:
        return None, ""
    detail = (f"resolution {res} px ({alpha_where}); width {width:g} ({share:g} of the rest: {why}; steps of "
              f"{width_step:g}, ours); depth {list(spec.layers)} ({ladder_describe(spec.layers)})")
    return spec, detail


def scale(base: ArchSpec, strategy: str, multiplier: float, *, tolerance: float = DEFAULT_TOLERANCE,
          regime_epochs: int | None = None, compound: tuple[float, float, float] = (1.2, 1.1, 1.15),
          width_share: float | None = None, resolution_exponent: float | None = None, width_step: float = 1 / 16,
          resolution_step: int | None = None) -> ScaledConfig:
    """``base`` grown to ``multiplier`` x its FLOPs by ``strategy`` (see the module docstring).

    ``regime_epochs``: the training length, for ``resnet_rs`` (required there unless ``width_share``
    is given); ``width_share`` and ``resolution_exponent`` replace resnet_rs's epoch rule and its
    exponent from the published family. Widths move in steps of ``width_step`` (1/16: whole
    channels on a 64-wide base); resolutions in steps of ``resolution_step``, by default 8 px for
    bases of 64 px and up, base/8 px below that.
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
    else:
        spec, detail = _resnet_rs(base, multiplier, target, regime_epochs, width_share, resolution_exponent,
                                  resolution_step, width_step)
    if spec is None:
        raise ArchScaleError("multipliers", f"{strategy} scaling cannot reach {multiplier}x the FLOPs of "
                                            f"{base.slug()}")
    return ScaledConfig(spec, strategy, float(multiplier), target, flops_of(spec), tolerance, detail)


def scale_all(base: ArchSpec, strategies=STRATEGIES, multipliers=(2, 4, 8, 16), **kwargs) -> list[ScaledConfig]:
    """Every strategy at every multiplier (in that order)."""
    return [scale(base, s, m, **kwargs) for s in strategies for m in multipliers]
