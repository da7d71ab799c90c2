"""scaling: ArchSpec -> nn.Module, and what a network costs.

The bottom layer of archscale: it knows nothing of training, sweeps or Ray.

    >>> from scaling import get_preset, build_model, complexity
    >>> spec = get_preset("resnext50_32x4d")
    >>> complexity(spec, counter="analytic").params
    25028904

Names are imported lazily, so specs, presets and the closed-form counter (``analytic_counts``,
``complexity(counter="analytic")``, ``check_fits``) can be used without importing torch; only
building, tracing or timing a model imports it.
"""
import importlib

_EXPORTS = {
    "ArchSpec": "spec", "NAMED_DEPTHS": "spec", "load_spec": "presets", "spec_from_dict": "presets",
    "ArchScaleError": "errors",
    "Complexity": "counting", "FLOP_CONVENTION": "conventions", "analytic_counts": "analytic",
    "complexity": "counting", "min_resolution": "analytic", "check_fits": "analytic",
    "Measurement": "timing", "measure": "timing",
    "build_model": "model", "convert_block_form": "block_forms",
    "PRESETS": "presets", "TORCHVISION_PRESETS": "presets", "get_preset": "presets",
    "preset_names": "presets", "__version__": "version",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scaling' has no attribute {name!r}")


def __dir__():
    return __all__
