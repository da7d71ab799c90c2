"""Named presets: the classic networks as plain ArchSpecs.

torchvision's (``torchvision.models.resnet``): resnet18/34/50/101/152, resnext50_32x4d,
resnext101_32x8d, resnext101_64x4d, wide_resnet50_2, wide_resnet101_2; identical parameters,
state-dict keys and outputs (tests/test_equivalence.py).

From their papers (and equal to timm's implementations of them, tests/test_equivalence.py and
tests/test_sknet.py):
resnet50d ("Bag of Tricks": deep stem + average-pool shortcut), seresnext50_32x4d (SENet,
reduction 16), resnest50 (ResNeSt-50: radix 2, deep stem of width 32/64, avd, avg-down),
skresnext50_32x4d (SKNet-50: ResNeXt-50 32x4d with a selective kernel of a 3x3 and a dilated 3x3
standing in for a 5x5, attention width max(C/16, 32); timm's skresnext50_32x4d),
resnext29_8x64d / resnext29_16x64d (the ResNeXt paper's CIFAR networks) and
resnetrs50 ... resnetrs420 (ResNet-RS: ResNet-D with SE 0.25, the stem max-pool replaced by a
strided conv, the last BN of every residual block zero-initialised, at the paper's training
resolutions, with the paper's dropout and stochastic depth). Their sources, all in tensorflow/tpu
models/official/resnet/: ``resnet_rs/configs/resnetrs{depth}_i{resolution}.yaml`` (use_resnetd_stem,
resnetd_shortcut, replace_stem_max_pool, se_ratio 0.25, image_size, dropout_rate,
drop_connect_rate) and ``resnet_model.py`` (the blocks' last batch norm is built with
``init_zero=True`` whatever the config, hence ``zero_init_residual=True``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ArchScaleError, did_you_mean
from .spec import ArchSpec, check_fields, override
from .yamlio import load_yaml, read_text, yaml_problem

#: ResNet-RS's architecture (see the module docstring for the official files each value is from).
_RS = dict(stem="deep", stem_pool="conv", downsample="d", se_ratio=0.25, zero_init_residual=True)

PRESETS: dict[str, ArchSpec] = {
    # torchvision
    "resnet18": ArchSpec(block="basic", depth=18),
    "resnet34": ArchSpec(block="basic", depth=34),
    "resnet50": ArchSpec(depth=50),
    "resnet101": ArchSpec(depth=101),
    "resnet152": ArchSpec(depth=152),
    "resnext50_32x4d": ArchSpec(depth=50, cardinality=32, bottleneck_width=4),
    "resnext101_32x8d": ArchSpec(depth=101, cardinality=32, bottleneck_width=8),
    "resnext101_64x4d": ArchSpec(depth=101, cardinality=64, bottleneck_width=4),
    "wide_resnet50_2": ArchSpec(depth=50, widen_factor=2.0),
    "wide_resnet101_2": ArchSpec(depth=101, widen_factor=2.0),
    # papers
    "resnet50d": ArchSpec(depth=50, stem="deep", downsample="d"),
    "seresnext50_32x4d": ArchSpec(depth=50, cardinality=32, bottleneck_width=4, se_ratio=1 / 16),
    "resnest50": ArchSpec(depth=50, stem="deep", downsample="d", radix=2, avd=True),
    "skresnext50_32x4d": ArchSpec(depth=50, cardinality=32, bottleneck_width=4, sk_paths=2),
    "resnext29_8x64d": ArchSpec(depth=29, widths=(64, 128, 256), stem="cifar", cardinality=8,
                                bottleneck_width=64, num_classes=10, resolution=32),
    "resnext29_16x64d": ArchSpec(depth=29, widths=(64, 128, 256), stem="cifar", cardinality=16,
                                 bottleneck_width=64, num_classes=10, resolution=32),
    # ResNet-RS at the paper's resolutions, regularisation from the official configs
    "resnetrs50": ArchSpec(depth=50, resolution=160, dropout=0.25, **_RS),
    "resnetrs101": ArchSpec(depth=101, resolution=192, dropout=0.25, **_RS),
    "resnetrs152": ArchSpec(depth=152, resolution=256, dropout=0.25, **_RS),
    "resnetrs200": ArchSpec(depth=200, resolution=256, dropout=0.25, stochastic_depth=0.1, **_RS),
    "resnetrs270": ArchSpec(depth=270, resolution=256, dropout=0.25, stochastic_depth=0.1, **_RS),
    "resnetrs350": ArchSpec(depth=350, resolution=320, dropout=0.4, stochastic_depth=0.1, **_RS),
    "resnetrs420": ArchSpec(depth=420, resolution=320, dropout=0.4, stochastic_depth=0.1, **_RS),
}

TORCHVISION_PRESETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                       "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                       "wide_resnet50_2", "wide_resnet101_2")


def get_preset(name: str) -> ArchSpec:
    """The ArchSpec of a named preset; ArchScaleError naming the closest preset if unknown."""
    key = str(name).lower().replace("-", "_")
    if key not in PRESETS:
        raise ArchScaleError("preset", f"unknown preset {name!r}{did_you_mean(key, PRESETS)}; "
                                       f"known: {', '.join(PRESETS)}")
    return PRESETS[key]


def preset_names() -> list[str]:
    return list(PRESETS)


def spec_from_dict(data: dict[str, Any]) -> ArchSpec:
    """An ArchSpec from a mapping of its fields; ``preset: NAME`` starts from that preset and the
    other keys override it (a stem pool that was the preset stem's default follows a new stem)."""
    if not isinstance(data, dict):
        raise ArchScaleError("spec", f"expected a mapping of ArchSpec fields, got {type(data).__name__}")
    data = dict(data)
    if "preset" not in data:
        return ArchSpec.from_dict(data)
    base = get_preset(data.pop("preset")).to_dict()
    check_fields(data)
    return ArchSpec(**override(base, data))


def load_spec(path: str | Path) -> ArchSpec:
    """Read an ArchSpec from a .yaml/.yml/.json file (``preset: NAME`` plus overrides allowed)."""
    import json

    p = Path(path)
    if not p.is_file():
        raise ArchScaleError("spec", f"no such file: {p}")
    text = read_text(p, "spec")
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArchScaleError("spec", f"not valid JSON ({e})") from None
    else:
        try:
            data = load_yaml(text)
        except yaml.YAMLError as e:
            raise ArchScaleError("spec", f"not valid YAML ({yaml_problem(e)})") from None
    return spec_from_dict(data)
