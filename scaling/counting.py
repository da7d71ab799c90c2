"""Complexity of an ArchSpec: parameters, FLOPs and activations, by fvcore or in closed form
(``scaling.analytic``). Imports torch only when fvcore counts.

FLOP convention (everywhere in this project): fvcore's, where one fused multiply-add counts as
one flop. The ResNeXt paper's "FLOPs" use the same convention (ResNet-50: ~4.1 G); the ResNet-RS
paper's FLOPs are twice these (it counts a multiply and an add as two).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from .analytic import analytic_counts
from .errors import ArchScaleError
from .spec import ArchSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Complexity", "complexity", "fvcore_counts"]


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
    a thousand times faster: use it to price large spaces). Either raises ArchScaleError("resolution")
    when the input is too small for the network's downsampling (see ``scaling.check_fits``).
    """
    if resolution is not None and resolution != spec.resolution:
        spec = replace(spec, resolution=int(resolution))
    if counter == "analytic":
        cx = analytic_counts(spec)
        return Complexity(cx.params, cx.flops, cx.acts, spec.resolution, "analytic")
    if counter == "fvcore":
        params, flops, acts = fvcore_counts(spec)
        return Complexity(params, flops, acts, spec.resolution, "fvcore")
    raise ArchScaleError("counter", f"{counter!r} is not one of fvcore, analytic")


def fvcore_counts(spec: ArchSpec, model: nn.Module | None = None) -> tuple[int, int, int]:
    """(params, flops, activations) of ``spec`` counted by fvcore on a traced eval-mode forward of one
    image (one multiply-add = one flop). Imports torch and fvcore; builds the model unless given."""
    import torch

    from .model import build_model

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
