"""build_model: one generator for the ResNet family.

Module and parameter names follow torchvision's ``models/resnet.py`` (conv1, bn1, layer1.0.conv2,
downsample.0, fc), and timm's for what torchvision lacks (the deep stem as ``conv1.0..6``, the
ResNet-RS stem conv as ``maxpool.0..2``), so both libraries' state dicts load with ``strict=True``.
The blocks are in ``scaling.blocks``, what each spec builds in ``scaling.plan``, and the closed form
of the whole network (``resnet_cx``) in ``scaling.analytic``.
"""
from __future__ import annotations

import torch
from torch import nn

from .analytic import block_keywords, check_fits
from .blocks import _Block
from .block_kinds import BLOCK_KINDS
from .cx import STEM_KERNELS
from .layers import conv2d, norm2d
from .plan import block_kind, stage_plan
from .spec import ArchSpec

def stem_conv(stem: str, cin: int, cout: int) -> nn.Module:
    """The stem's convolution(s): "imagenet" 7x7 stride 2, "cifar" 3x3 stride 1, or "deep" (ResNet-C):
    three 3x3 convs with BN-ReLU between them, the first strided, inner width ``cout // 2``."""
    if stem == "deep":
        mid = cout // 2
        return nn.Sequential(conv2d(cin, mid, 3, 2), norm2d(mid), nn.ReLU(inplace=True),
                             conv2d(mid, mid, 3), norm2d(mid), nn.ReLU(inplace=True),
                             conv2d(mid, cout, 3))
    return conv2d(cin, cout, *STEM_KERNELS[stem])


def stem_pool(pool: str, channels: int) -> nn.Module:
    """What follows the stem: "max" 3x3 stride-2 max-pool, "conv" 3x3 stride-2 conv-BN-ReLU (ResNet-RS),
    or "none"."""
    if pool == "max":
        return nn.MaxPool2d(3, 2, padding=1)
    if pool == "conv":
        return nn.Sequential(conv2d(channels, channels, 3, 2), norm2d(channels), nn.ReLU(inplace=True))
    return nn.Identity()


class ResNet(nn.Module):
    """A ResNet-family network built from an ArchSpec (use ``build_model``)."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        stem = spec.stem_channels
        self.conv1 = stem_conv(spec.stem, spec.in_channels, stem)
        self.bn1 = None if spec.preact else norm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = stem_pool(spec.stem_pool, stem)
        block, keywords = BLOCK_KINDS[block_kind(spec)].module_class(), block_keywords(spec)
        stages: list[list[nn.Module]] = [[] for _ in spec.widths]
        for i, _, cin, planes, stride, drop in stage_plan(spec):
            stages[i].append(block(cin, planes, stride, drop_prob=drop, **keywords))
        for i, blocks in enumerate(stages):
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        features = spec.stage_planes[-1] * spec.expansion
        self.bn_final = norm2d(features) if spec.preact else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        self.fc = nn.Linear(features, spec.num_classes)
        self.num_features = features
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.spec.zero_init_residual:
            for m in self.modules():
                if isinstance(m, _Block):
                    for layer in m.last_layers():
                        nn.init.zeros_(layer.weight)

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(self.spec.num_stages)]

    def forward_features(self, x):
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.relu(self.bn1(x))
        x = self.maxpool(x)
        for stage in self.stages():
            x = stage(x)
        if self.bn_final is not None:
            x = self.relu(self.bn_final(x))
        return x

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.forward_features(x)), 1)
        return self.fc(self.dropout(x))


def build_model(spec: ArchSpec) -> ResNet:
    """The network an ArchSpec describes, freshly initialised (torchvision's initialisation).

    Raises ArchScaleError("resolution") when the spec's input is too small for its downsampling
    (see ``scaling.check_fits``).
    """
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build_model takes an ArchSpec, got {type(spec).__name__}")
    check_fits(spec)
    return ResNet(spec)
