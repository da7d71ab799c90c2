"""scaling: ArchSpec -> nn.Module, and what a network costs.

The bottom layer of archscale: it knows nothing of training, sweeps or Ray.

    >>> from scaling import get_preset, build_model, complexity
    >>> spec = get_preset("resnext50_32x4d")
    >>> complexity(spec, counter="analytic").params
    25028904
"""
from .complexity import FLOP_CONVENTION, Complexity, analytic_counts, complexity, min_resolution
from .errors import ArchScaleError
from .measure import Measurement, measure
from .model import build_model
from .presets import PRESETS, TORCHVISION_PRESETS, get_preset, preset_names
from .spec import NAMED_DEPTHS, ArchSpec, load_spec

__all__ = ["ArchSpec", "ArchScaleError", "Complexity", "FLOP_CONVENTION", "Measurement", "NAMED_DEPTHS",
           "PRESETS", "TORCHVISION_PRESETS", "analytic_counts", "build_model", "complexity",
           "get_preset", "load_spec", "measure", "min_resolution", "preset_names"]
