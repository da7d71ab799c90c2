"""build_model: one generator for the ResNet family, each module's complexity next to it.

Module and parameter names follow torchvision's ``models/resnet.py`` (conv1, bn1, layer1.0.conv2,
downsample.0, fc), and timm's for what torchvision lacks (the deep stem as ``conv1.0..6``, the
ResNet-RS stem conv as ``maxpool.0..2``, ``se.fc1/fc2``, split attention as ``conv2.conv/bn0/fc1/
bn1/fc2``), so both libraries' state dicts load with ``strict=True``.

Each module has a ``complexity(cx, ...)`` static method beside it (pycls' way): given the same
arguments as its constructor, it adds the module's parameters, FLOPs and activations to ``cx``
without building anything. The conventions are fvcore's, for a batch of one image in eval mode:
a multiply-add is one flop; convolutions and linear layers count their multiply-adds (not their
bias), batch norm counts 2 per element, adaptive average pooling 1 per input element; ReLU,
sigmoid, softmax, max/avg pooling and additions count 0. Activations are the output elements of
convolutions and linear layers. tests/test_complexity.py checks the sums against fvcore.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from .errors import ArchScaleError
from .spec import ArchSpec


class FeatureMapTooSmall(Exception):
    """A strided layer got fewer pixels than its stride: the input resolution is too small."""


@dataclass
class Cx:
    """Running complexity of a forward pass: feature-map size and totals so far."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0


# ----- layers and their complexity ----------------------------------------------------------
def _out(size: int, k: int, stride: int, pad: int, ceil: bool = False) -> int:
    """Output size of a conv/pool, as PyTorch computes it."""
    if stride > 1 and size < stride:
        raise FeatureMapTooSmall(size)
    out = (size + 2 * pad - (k - 1) - 1 + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    if out < 1:
        raise FeatureMapTooSmall(size)
    return out


def conv2d(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bias)


def conv2d_cx(cx: Cx, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False):
    if cin % groups or cout % groups:
        raise ArchScaleError("cardinality", f"{groups} groups do not divide a {cin}->{cout} channel "
                                            f"convolution; choose a cardinality that divides both")
    cx.h, cx.w = _out(cx.h, k, stride, k // 2), _out(cx.w, k, stride, k // 2)
    weights = cout * (cin // groups) * k * k
    cx.flops += weights * cx.h * cx.w
    cx.params += weights + (cout if bias else 0)
    cx.acts += cout * cx.h * cx.w


def norm2d(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


def norm2d_cx(cx: Cx, c: int):
    cx.flops += 2 * c * cx.h * cx.w
    cx.params += 2 * c


def pool2d_cx(cx: Cx, k: int, stride: int, pad: int, ceil: bool = False):
    cx.h, cx.w = _out(cx.h, k, stride, pad, ceil), _out(cx.w, k, stride, pad, ceil)


def gap_cx(cx: Cx, c: int):
    cx.flops += c * cx.h * cx.w
    cx.h = cx.w = 1


def linear_cx(cx: Cx, cin: int, cout: int):
    cx.flops += cin * cout
    cx.params += cin * cout + cout
    cx.acts += cout


# ----- attention modules --------------------------------------------------------------------
def se_channels(channels: int, ratio: float) -> int:
    """Reduced width of squeeze-and-excitation (TF ResNet-RS: max(1, int(C * ratio)))."""
    return max(1, int(channels * ratio))


class SqueezeExcite(nn.Module):
    """Squeeze (global pool) -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid -> scale."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        rd = se_channels(channels, ratio)
        self.fc1 = nn.Conv2d(channels, rd, 1, bias=True)
        self.fc2 = nn.Conv2d(rd, channels, 1, bias=True)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.fc2(F.relu(self.fc1(s), inplace=True))
        return x * torch.sigmoid(s)

    @staticmethod
    def complexity(cx: Cx, channels: int, ratio: float):
        rd = se_channels(channels, ratio)
        h, w = cx.h, cx.w
        gap_cx(cx, channels)
        conv2d_cx(cx, channels, rd, 1, bias=True)
        conv2d_cx(cx, rd, channels, 1, bias=True)
        cx.h, cx.w = h, w


def attn_channels(channels: int, radix: int) -> int:
    """Hidden width of split attention (ResNeSt: max(C * radix / 4, 32))."""
    return max(channels * radix // 4, 32)


class SplitAttn(nn.Module):
    """ResNeSt split attention around a 3x3 (grouped) conv.

    The conv makes ``radix`` splits of each cardinal group; the splits are summed, pooled, passed
    through 1x1 FC-BN-ReLU and a 1x1 FC per split, and a softmax across splits (a sigmoid when
    radix is 1) weights the splits, which are summed back to ``channels``.
    """

    def __init__(self, channels: int, stride: int, groups: int, radix: int):
        super().__init__()
        attn = attn_channels(channels, radix)
        self.radix, self.groups = radix, groups
        self.conv = conv2d(channels, channels * radix, 3, stride, groups=groups * radix)
        self.bn0 = norm2d(channels * radix)
        self.fc1 = nn.Conv2d(channels, attn, 1, groups=groups)
        self.bn1 = norm2d(attn)
        self.fc2 = nn.Conv2d(attn, channels * radix, 1, groups=groups)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv(x)), inplace=True)
        b, rc, h, w = x.shape
        splits = x.view(b, self.radix, rc // self.radix, h, w)
        gap = F.adaptive_avg_pool2d(splits.sum(1), 1)
        attn = self.fc2(F.relu(self.bn1(self.fc1(gap)), inplace=True))
        if self.radix > 1:
            attn = attn.view(b, self.groups, self.radix, -1).transpose(1, 2)
            attn = F.softmax(attn, dim=1).reshape(b, self.radix, rc // self.radix, 1, 1)
            return (splits * attn).sum(1)
        return x * torch.sigmoid(attn)

    @staticmethod
    def complexity(cx: Cx, channels: int, stride: int, groups: int, radix: int):
        attn = attn_channels(channels, radix)
        conv2d_cx(cx, channels, channels * radix, 3, stride, groups=groups * radix)
        norm2d_cx(cx, channels * radix)
        h, w = cx.h, cx.w
        gap_cx(cx, channels)
        conv2d_cx(cx, channels, attn, 1, groups=groups, bias=True)
        norm2d_cx(cx, attn)
        conv2d_cx(cx, attn, channels * radix, 1, groups=groups, bias=True)
        cx.h, cx.w = h, w


# ----- residual blocks ----------------------------------------------------------------------
def make_shortcut(spec: ArchSpec, cin: int, cout: int, stride: int) -> nn.Module | None:
    """The projection shortcut of a block that changes shape; None for an identity shortcut."""
    if stride == 1 and cin == cout:
        return None
    if spec.downsample == "d":
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        return nn.Sequential(pool, conv2d(cin, cout, 1), norm2d(cout))
    if spec.preact:  # ResNet v2 projects the pre-activated input with a bare conv
        return nn.Sequential(conv2d(cin, cout, 1, stride))
    return nn.Sequential(conv2d(cin, cout, 1, stride), norm2d(cout))


def shortcut_cx(cx: Cx, spec: ArchSpec, cin: int, cout: int, stride: int):
    if stride == 1 and cin == cout:
        return
    if spec.downsample == "d":
        if stride > 1:
            pool2d_cx(cx, 2, stride, 0, ceil=True)
        conv2d_cx(cx, cin, cout, 1)
        norm2d_cx(cx, cout)
    else:
        conv2d_cx(cx, cin, cout, 1, stride)
        if not spec.preact:
            norm2d_cx(cx, cout)


def bottleneck_width(spec: ArchSpec, planes: int) -> int:
    """Channels of a bottleneck's 3x3 conv: int(planes * d / 64 * widen) per group, times C."""
    return int(planes * spec.bottleneck_width / 64 * spec.widen_factor) * spec.cardinality


class _Block(nn.Module):
    """What every residual block ends with: SE, stochastic depth, the shortcut, the addition."""

    def _finish(self, out, x, pre):
        if self.se is not None:
            out = self.se(out)
        out = self.drop_path(out)
        out = out + (x if self.downsample is None else self.downsample(pre))
        return out if self.preact else self.relu(out)

    def _tail(self, spec: ArchSpec, cin: int, cout: int, stride: int, drop_prob: float):
        self.preact = spec.preact
        self.se = SqueezeExcite(cout, spec.se_ratio) if spec.se_ratio > 0 else None
        self.downsample = make_shortcut(spec, cin, cout, stride)
        self.drop_path = StochasticDepth(drop_prob, "row") if drop_prob > 0 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _tail_cx(cx: Cx, spec: ArchSpec, cin: int, cout: int, stride: int, h_in: int, w_in: int):
        if spec.se_ratio > 0:
            SqueezeExcite.complexity(cx, cout, spec.se_ratio)
        h, w = cx.h, cx.w
        cx.h, cx.w = h_in, w_in
        shortcut_cx(cx, spec, cin, cout, stride)
        cx.h, cx.w = h, w


class BasicBlock(_Block):
    """Two 3x3 convs (ResNet-18/34)."""

    def __init__(self, spec: ArchSpec, cin: int, planes: int, stride: int = 1, drop_prob: float = 0.0):
        super().__init__()
        self.conv1 = conv2d(cin, planes, 3, stride)
        self.bn1 = norm2d(cin if spec.preact else planes)
        self.conv2 = conv2d(planes, planes, 3)
        self.bn2 = norm2d(planes)
        self._tail(spec, cin, planes, stride, drop_prob)

    def forward(self, x):
        if self.preact:
            pre = self.relu(self.bn1(x))
            out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
            return self._finish(out, x, pre)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self._finish(out, x, x)

    def last_norm_or_conv(self) -> nn.Module:
        return self.conv2 if self.preact else self.bn2

    @staticmethod
    def complexity(cx: Cx, spec: ArchSpec, cin: int, planes: int, stride: int = 1):
        h_in, w_in = cx.h, cx.w
        if spec.preact:
            norm2d_cx(cx, cin)
        conv2d_cx(cx, cin, planes, 3, stride)
        norm2d_cx(cx, planes)
        conv2d_cx(cx, planes, planes, 3)
        if not spec.preact:
            norm2d_cx(cx, planes)
        _Block._tail_cx(cx, spec, cin, planes, stride, h_in, w_in)


class Bottleneck(_Block):
    """1x1 reduce, 3x3 (grouped, or split attention), 1x1 expand x4 (ResNet-50 and up, ResNeXt)."""

    expansion = 4

    def __init__(self, spec: ArchSpec, cin: int, planes: int, stride: int = 1, drop_prob: float = 0.0):
        super().__init__()
        width, cout = bottleneck_width(spec, planes), planes * self.expansion
        s1, s2, s_avd = _bottleneck_strides(spec, stride)
        self.conv1 = conv2d(cin, width, 1, s1)
        self.bn1 = norm2d(cin if spec.preact else width)
        if spec.radix:
            self.conv2 = SplitAttn(width, s2, spec.cardinality, spec.radix)
            self.bn2 = None  # split attention normalises and activates inside
        else:
            self.conv2 = conv2d(width, width, 3, s2, groups=spec.cardinality)
            self.bn2 = norm2d(width)
        self.avd = nn.AvgPool2d(3, s_avd, padding=1) if s_avd > 1 else None
        self.conv3 = conv2d(width, cout, 1)
        self.bn3 = norm2d(width if spec.preact else cout)
        self._tail(spec, cin, cout, stride, drop_prob)

    def forward(self, x):
        if self.preact:
            pre = self.relu(self.bn1(x))
            out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
            if self.avd is not None:
                out = self.avd(out)
            out = self.conv3(self.relu(self.bn3(out)))
            return self._finish(out, x, pre)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.bn2 is not None:
            out = self.relu(self.bn2(out))
        if self.avd is not None:
            out = self.avd(out)
        out = self.bn3(self.conv3(out))
        return self._finish(out, x, x)

    def last_norm_or_conv(self) -> nn.Module:
        return self.conv3 if self.preact else self.bn3

    @staticmethod
    def complexity(cx: Cx, spec: ArchSpec, cin: int, planes: int, stride: int = 1):
        width, cout = bottleneck_width(spec, planes), planes * 4
        s1, s2, s_avd = _bottleneck_strides(spec, stride)
        h_in, w_in = cx.h, cx.w
        if spec.preact:
            norm2d_cx(cx, cin)
        conv2d_cx(cx, cin, width, 1, s1)
        if not spec.preact:
            norm2d_cx(cx, width)
        if spec.radix:
            SplitAttn.complexity(cx, width, s2, spec.cardinality, spec.radix)
        else:
            if spec.preact:
                norm2d_cx(cx, width)
            conv2d_cx(cx, width, width, 3, s2, groups=spec.cardinality)
            if not spec.preact:
                norm2d_cx(cx, width)
        if s_avd > 1:
            pool2d_cx(cx, 3, s_avd, 1)
        if spec.preact:
            norm2d_cx(cx, width)
        conv2d_cx(cx, width, cout, 1)
        if not spec.preact:
            norm2d_cx(cx, cout)
        _Block._tail_cx(cx, spec, cin, cout, stride, h_in, w_in)


def _bottleneck_strides(spec: ArchSpec, stride: int) -> tuple[int, int, int]:
    """Strides of (first 1x1, 3x3, avd pool) for ResNet-A (1x1), -B/-D (3x3) and ResNeSt avd."""
    if spec.avd and stride > 1:
        return 1, 1, stride
    if spec.downsample == "a":
        return stride, 1, 1
    return 1, stride, 1


BLOCK_TYPES = {"basic": BasicBlock, "bottleneck": Bottleneck}


# ----- the network --------------------------------------------------------------------------
def stage_plan(spec: ArchSpec):
    """Yield (stage index, block index, in channels, planes, stride, drop-path rate) per block."""
    cin = spec.stem_channels
    for i, (planes, blocks) in enumerate(zip(spec.stage_planes, spec.layers)):
        drop = spec.stochastic_depth * (i + 2) / (spec.num_stages + 1)
        for j in range(blocks):
            yield i, j, cin, planes, (2 if i > 0 and j == 0 else 1), drop
            cin = planes * spec.expansion


class ResNet(nn.Module):
    """A ResNet-family network built from an ArchSpec (use ``build_model``)."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        stem, preact = spec.stem_channels, spec.preact
        if spec.stem == "deep":
            mid = stem // 2
            self.conv1 = nn.Sequential(
                conv2d(spec.in_channels, mid, 3, 2), norm2d(mid), nn.ReLU(inplace=True),
                conv2d(mid, mid, 3), norm2d(mid), nn.ReLU(inplace=True),
                conv2d(mid, stem, 3))
        else:
            k, s = (7, 2) if spec.stem == "imagenet" else (3, 1)
            self.conv1 = conv2d(spec.in_channels, stem, k, s)
        self.bn1 = None if preact else norm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        if spec.stem_pool == "max":
            self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        elif spec.stem_pool == "conv":
            self.maxpool = nn.Sequential(conv2d(stem, stem, 3, 2), norm2d(stem), nn.ReLU(inplace=True))
        else:
            self.maxpool = nn.Identity()

        block = BLOCK_TYPES[spec.block]
        stages: list[list[nn.Module]] = [[] for _ in spec.widths]
        cin = stem
        for i, _, cin, planes, stride, drop in stage_plan(spec):
            stages[i].append(block(spec, cin, planes, stride, drop))
        for i, blocks in enumerate(stages):
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        features = spec.stage_planes[-1] * spec.expansion
        self.bn_final = norm2d(features) if preact else None
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
                    nn.init.zeros_(m.last_norm_or_conv().weight)

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

    @staticmethod
    def complexity(cx: Cx, spec: ArchSpec):
        stem = spec.stem_channels
        if spec.stem == "deep":
            mid = stem // 2
            conv2d_cx(cx, spec.in_channels, mid, 3, 2)
            norm2d_cx(cx, mid)
            conv2d_cx(cx, mid, mid, 3)
            norm2d_cx(cx, mid)
            conv2d_cx(cx, mid, stem, 3)
        else:
            k, s = (7, 2) if spec.stem == "imagenet" else (3, 1)
            conv2d_cx(cx, spec.in_channels, stem, k, s)
        if not spec.preact:
            norm2d_cx(cx, stem)
        if spec.stem_pool == "max":
            pool2d_cx(cx, 3, 2, 1)
        elif spec.stem_pool == "conv":
            conv2d_cx(cx, stem, stem, 3, 2)
            norm2d_cx(cx, stem)
        block = BLOCK_TYPES[spec.block]
        for _, _, cin, planes, stride, _ in stage_plan(spec):
            block.complexity(cx, spec, cin, planes, stride)
        features = spec.stage_planes[-1] * spec.expansion
        if spec.preact:
            norm2d_cx(cx, features)
        gap_cx(cx, features)
        linear_cx(cx, features, spec.num_classes)


def build_model(spec: ArchSpec) -> ResNet:
    """The network an ArchSpec describes, freshly initialised (torchvision's initialisation)."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build_model takes an ArchSpec, got {type(spec).__name__}")
    return ResNet(spec)
