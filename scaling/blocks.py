"""Residual blocks: basic, bottleneck (ResNet, ResNeXt in its three forms, ResNeSt), SKNet's bottleneck.

Each block takes its in channels, planes and stride, and the few options it needs as keywords
(timm's and torchvision's style), named as the ArchSpec fields they come from;
``scaling.analytic.block_keywords`` reads them off an ArchSpec.
Names follow torchvision's (conv1, bn1, ..., downsample.0), and timm's where torchvision has none,
so both libraries' state dicts load strictly. The closed form of each block, taking the same
arguments, is in ``scaling.analytic``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SelectiveKernel, SplitAttn, SqueezeExcite
from .cx import bottleneck_strides, inner_width
from .layers import ConvBnAct, conv2d, norm2d


def make_shortcut(cin: int, cout: int, stride: int, *, downsample: str = "b", preact: bool = False) -> nn.Module | None:
    """The projection shortcut of a block that changes shape; None when the identity fits.

    ResNet-D (``downsample="d"``) average-pools before a 1x1 conv + BN; ResNet v2 (``preact``)
    projects the pre-activated input with a bare 1x1 conv; otherwise a strided 1x1 conv + BN.
    """
    if stride == 1 and cin == cout:
        return None
    if downsample == "d":
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        return nn.Sequential(pool, conv2d(cin, cout, 1), norm2d(cout))
    if preact:
        return nn.Sequential(conv2d(cin, cout, 1, stride))
    return nn.Sequential(conv2d(cin, cout, 1, stride), norm2d(cout))


def import_block_libraries() -> None:
    """Import what building a network needs beyond torch (torchvision's ops), ahead of building
    one: a trial does so before it starts counting peak memory, which library code paged in is not."""
    import torchvision.ops  # noqa: F401


def _stochastic_depth(drop_prob: float) -> nn.Module:
    """torchvision's per-sample stochastic depth, imported when a network uses it: torchvision's
    import (its models, ops and torch._dynamo, seconds) stays off the path of processes that only
    price networks, such as a sweep's driver."""
    from torchvision.ops import StochasticDepth

    return StochasticDepth(drop_prob, "row")


class _Block(nn.Module):
    """What every residual block ends with: SE, stochastic depth, the shortcut, the addition
    (with ``shortcut=False``: SE and the branch alone, the plain network's block)."""

    def _tail(self, cin: int, cout: int, stride: int, *, preact: bool, downsample: str, se_ratio: float,
              shortcut: bool, drop_prob: float):
        self.preact, self.use_shortcut = preact, shortcut
        self.se = SqueezeExcite(cout, se_ratio) if se_ratio > 0 else None
        self.downsample = make_shortcut(cin, cout, stride, downsample=downsample, preact=preact) if shortcut else None
        self.drop_path = _stochastic_depth(drop_prob) if drop_prob > 0 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def _finish(self, out, x, pre):
        if self.se is not None:
            out = self.se(out)
        out = self.drop_path(out)
        if self.use_shortcut:
            out = out + (x if self.downsample is None else self.downsample(pre))
        return out if self.preact else self.relu(out)


class BasicBlock(_Block):
    """Two 3x3 convs (ResNet-18/34); pre-activated (BN-ReLU before each conv) with ``preact``."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, *, preact: bool = False, downsample: str = "b",
                 se_ratio: float = 0.0, shortcut: bool = True, drop_prob: float = 0.0):
        super().__init__()
        self.conv1 = conv2d(cin, planes, 3, stride)
        self.bn1 = norm2d(cin if preact else planes)
        self.conv2 = conv2d(planes, planes, 3)
        self.bn2 = norm2d(planes)
        self._tail(cin, planes, stride, preact=preact, downsample=downsample, se_ratio=se_ratio, shortcut=shortcut,
                   drop_prob=drop_prob)

    def forward(self, x):
        if self.preact:
            pre = self.relu(self.bn1(x))
            out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
            return self._finish(out, x, pre)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self._finish(out, x, x)

    def last_layers(self) -> list[nn.Module]:
        """The layers zero_init_residual zeroes: the last BN of the branch (the last conv if pre-act)."""
        return [self.conv2 if self.preact else self.bn2]


class CardinalBranch(nn.Module):
    """One of the C paths of a ResNeXt block in the "branches" (a) or "concat" (b) form.

    The grouped block's layers and names on ``width`` = d channels: conv1 (1x1), conv2 (3x3, one
    group), the BNs on their outputs (bn1, bn2; pre-activation: bn2, bn3, before conv2 and conv3)
    and, with ``own_conv3`` (the "branches" form), its own conv3 (d -> ``cout``, no BN: the block's
    bn3 follows the sum).
    """

    def __init__(self, cin: int, width: int, cout: int, s1: int, s2: int, *, preact: bool = False,
                 own_conv3: bool = False):
        super().__init__()
        self.conv1 = conv2d(cin, width, 1, s1)
        if preact:
            self.bn2 = norm2d(width)
            self.conv2 = conv2d(width, width, 3, s2)
            self.bn3 = norm2d(width)
        else:
            self.bn1 = norm2d(width)
            self.conv2 = conv2d(width, width, 3, s2)
            self.bn2 = norm2d(width)
        self.conv3 = conv2d(width, cout, 1) if own_conv3 else None


class Bottleneck(_Block):
    """1x1 reduce, 3x3 (grouped, or split attention), 1x1 expand x4 (ResNet-50 and up, ResNeXt, ResNeSt).

    The 3x3 conv has ``inner_width(planes, cardinality, bottleneck_width, widen_factor)`` channels
    in ``cardinality`` groups; ``radix`` > 0 makes it ResNeSt's split attention. ``block_form`` picks one of the
    ResNeXt paper's three equivalent forms (its fig. 3): "grouped" (c) keeps conv1/conv2/their BNs on
    the block, torchvision's layout; "branches" (a) and "concat" (b) hold ``cardinality``
    CardinalBranch modules in ``branches``, whose outputs are summed (each branch ends in its own
    conv3) or concatenated before the block's one conv3.
    """

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, *, cardinality: int = 1, bottleneck_width: int = 64,
                 widen_factor: float = 1.0, block_form: str = "grouped", preact: bool = False, radix: int = 0,
                 avd: bool = False, downsample: str = "b", se_ratio: float = 0.0, shortcut: bool = True, drop_prob: float = 0.0):
        super().__init__()
        width, cout = inner_width(planes, cardinality, bottleneck_width, widen_factor), planes * self.expansion
        s1, s2, s_avd = bottleneck_strides(stride, downsample, avd)
        self.form = block_form
        if block_form == "grouped":
            self.conv1 = conv2d(cin, width, 1, s1)
            self.bn1 = norm2d(cin if preact else width)
            if radix:
                self.conv2 = SplitAttn(width, s2, cardinality, radix)
                self.bn2 = None  # split attention normalises and activates inside
            else:
                self.conv2 = conv2d(width, width, 3, s2, groups=cardinality)
                self.bn2 = norm2d(width)
        else:
            if preact:
                self.bn1 = norm2d(cin)
            self.branches = nn.ModuleList(
                CardinalBranch(cin, width // cardinality, cout, s1, s2, preact=preact,
                               own_conv3=block_form == "branches")
                for _ in range(cardinality))
        self.avd = nn.AvgPool2d(3, s_avd, padding=1) if s_avd > 1 else None
        if block_form != "branches":
            self.conv3 = conv2d(width, cout, 1)
        if block_form == "grouped" or not preact:
            self.bn3 = norm2d(width if preact else cout)
        self._tail(cin, cout, stride, preact=preact, downsample=downsample, se_ratio=se_ratio, shortcut=shortcut,
                   drop_prob=drop_prob)

    def forward(self, x):
        pre = self.relu(self.bn1(x)) if self.preact else x
        if self.form == "grouped":
            out = self.conv3(_inner(self, pre, self.preact, self.avd))
        elif self.form == "concat":
            out = self.conv3(torch.cat([_inner(b, pre, self.preact, self.avd) for b in self.branches], 1))
        else:
            out = self.branches[0].conv3(_inner(self.branches[0], pre, self.preact, self.avd))
            for b in self.branches[1:]:
                out = out + b.conv3(_inner(b, pre, self.preact, self.avd))
        if not self.preact:
            out = self.bn3(out)
        return self._finish(out, x, pre)

    def last_layers(self) -> list[nn.Module]:
        """The layers zero_init_residual zeroes: the last BN (the last conv(s) if pre-act)."""
        if not self.preact:
            return [self.bn3]
        return [b.conv3 for b in self.branches] if self.form == "branches" else [self.conv3]


def _inner(m: nn.Module, x, preact: bool, avd: nn.Module | None):
    """conv1 and conv2 of a bottleneck or one of its branches, with their BNs, ReLUs and the avd
    pool: what conv3 takes. ``x`` is the block input (pre-activated for ResNet v2)."""
    if preact:
        out = m.conv2(F.relu(m.bn2(m.conv1(x)), inplace=True))
        if avd is not None:
            out = avd(out)
        return F.relu(m.bn3(out), inplace=True)
    out = F.relu(m.bn1(m.conv1(x)), inplace=True)
    out = m.conv2(out)
    if m.bn2 is not None:
        out = F.relu(m.bn2(out), inplace=True)
    if avd is not None:
        out = avd(out)
    return out


class SKBottleneck(_Block):
    """SKNet's bottleneck: 1x1, selective kernel in place of the 3x3, 1x1 expand x4.

    timm's SelectiveKernelBottleneck with its names (``conv1.conv/bn``, ``conv2.paths``/``attn``,
    ``conv3.conv/bn``), so timm's skresnext50_32x4d state dict loads strictly. The selective kernel
    has ``sk_paths`` kernels (3x3, 5x5, ... or dilated 3x3s with ``sk_dilated``) and attention width
    max(width // ``sk_reduction``, ``sk_min_width``).
    """

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, *, cardinality: int = 1, bottleneck_width: int = 64,
                 widen_factor: float = 1.0, sk_paths: int = 2, sk_reduction: int = 16, sk_min_width: int = 32,
                 sk_dilated: bool = True, avd: bool = False, downsample: str = "b", se_ratio: float = 0.0,
                 shortcut: bool = True, drop_prob: float = 0.0):
        super().__init__()
        width, cout = inner_width(planes, cardinality, bottleneck_width, widen_factor), planes * self.expansion
        s1, s2, s_avd = bottleneck_strides(stride, downsample, avd)
        self.conv1 = ConvBnAct(cin, width, 1, s1)
        self.conv2 = SelectiveKernel(width, s2, cardinality, sk_paths, sk_reduction, sk_min_width, sk_dilated)
        self.avd = nn.AvgPool2d(3, s_avd, padding=1) if s_avd > 1 else None
        self.conv3 = ConvBnAct(width, cout, 1, act=False)
        self._tail(cin, cout, stride, preact=False, downsample=downsample, se_ratio=se_ratio, shortcut=shortcut,
                   drop_prob=drop_prob)

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        if self.avd is not None:
            out = self.avd(out)
        return self._finish(self.conv3(out), x, x)

    def last_layers(self) -> list[nn.Module]:
        """The layers zero_init_residual zeroes: the last BN."""
        return [self.conv3.bn]
