"""Complexity of an ArchSpec: parameters, FLOPs and activations, by fvcore or in closed form.

FLOP convention (everywhere in this project): fvcore's, where one fused multiply-add counts as
one flop. The ResNeXt paper's "FLOPs" use the same convention (ResNet-50: ~4.1 G); the ResNet-RS
paper's FLOPs are twice these (it counts a multiply and an add as two).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, replace

import torch

from .conventions import FLOP_CONVENTION
from .model import Cx, FeatureMapTooSmall, ResNet, build_model
from .spec import ArchSpec

__all__ = ["Complexity", "complexity", "analytic_counts", "fvcore_counts", "min_resolution",
           "FeatureMapTooSmall", "FLOP_CONVENTION", "check_fits"]



@dataclass(frozen=True)
class Complexity:
    """Cost of one network at one resolution, for one image."""

    #: Trainable parameters (BN running statistics not included).
    params: int
    #: Forward FLOPs for one image, fvcore's convention: one multiply-add = one flop
    #: (the ResNeXt paper's convention; the ResNet-RS paper's FLOPs are 2x this).
    flops: int
    #: Output elements of every convolution and linear layer for one image (fvcore's count).
    activations: int
    #: Input resolution in pixels.
    resolution: int
    #: "fvcore" (traced) or "analytic" (closed form, no model built).
    counter: str = "fvcore"

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    def to_dict(self) -> dict:
        return asdict(self)


def complexity(spec: ArchSpec, resolution: int | None = None, *, counter: str = "fvcore") -> Complexity:
    """Params, FLOPs (fvcore convention: 1 multiply-add = 1 flop) and activations of ``spec``.

    ``resolution`` overrides the spec's own. ``counter="fvcore"`` builds the model and traces it
    with fvcore; ``counter="analytic"`` uses the closed-form counter (same numbers, no model, about
    a thousand times faster: use it to price large spaces).
    """
    if resolution is not None and resolution != spec.resolution:
        spec = replace(spec, resolution=int(resolution))
    if counter == "analytic":
        cx = analytic_counts(spec)
        return Complexity(cx.params, cx.flops, cx.acts, spec.resolution, "analytic")
    if counter == "fvcore":
        params, flops, acts = fvcore_counts(spec)
        return Complexity(params, flops, acts, spec.resolution, "fvcore")
    from .errors import ArchScaleError

    raise ArchScaleError("counter", f"{counter!r} is not one of fvcore, analytic")


def analytic_counts(spec: ArchSpec, resolution: int | None = None) -> Cx:
    """Closed-form params/FLOPs/activations (fvcore's conventions) without building the model.

    Raises FeatureMapTooSmall when the resolution is too small for the network's downsampling.
    """
    r = spec.resolution if resolution is None else int(resolution)
    cx = Cx(r, r)
    ResNet.complexity(cx, spec)
    return cx


def fvcore_counts(spec: ArchSpec, model: torch.nn.Module | None = None) -> tuple[int, int, int]:
    """(params, flops, activations) of ``spec`` counted by fvcore on a traced eval-mode forward."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import calls the deprecated torch.jit.script
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = build_model(spec) if model is None else model
    model.eval()
    x = torch.zeros(1, spec.in_channels, spec.resolution, spec.resolution)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notes from fvcore's tracer
        logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
        flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        acts = ActivationCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return params, int(flops.total()), int(acts.total())


def check_fits(spec: ArchSpec) -> None:
    """Refuse a network its input cannot pass through: ArchScaleError("resolution") naming the
    smallest resolution that fits, when a strided layer would get fewer pixels than its stride."""
    from .errors import ArchScaleError

    try:
        analytic_counts(spec)
    except FeatureMapTooSmall:
        raise ArchScaleError("resolution", f"{spec.resolution} px is too small for this network's "
                                           f"downsampling; use at least {min_resolution(spec)} px") from None


def min_resolution(spec: ArchSpec, limit: int = 8192) -> int:
    """The smallest input resolution this network's downsampling accepts."""
    lo, hi = 1, 1
    while True:
        try:
            analytic_counts(spec, hi)
            break
        except FeatureMapTooSmall:
            lo, hi = hi, hi * 2
            if hi > limit:
                return limit
    while lo < hi:  # smallest r in (lo, hi] that fits
        mid = (lo + hi) // 2
        try:
            analytic_counts(spec, mid)
            hi = mid
        except FeatureMapTooSmall:
            lo = mid + 1
    return hi
