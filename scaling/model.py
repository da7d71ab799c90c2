"""build_model: one generator for the ResNet family, each module's complexity next to it.

Module and parameter names follow torchvision's ``models/resnet.py`` (conv1, bn1, layer1.0.conv2,
downsample.0, fc), and timm's for what torchvision lacks (the deep stem as ``conv1.0..6``, the
ResNet-RS stem conv as ``maxpool.0..2``, ``se.fc1/fc2``, split attention as ``conv2.conv/bn0/fc1/
bn1/fc2``, the whole SKNet block as ``conv1.conv/bn``, ``conv2.paths.N.conv/bn``,
``conv2.attn.fc_reduce/bn/fc_select``, ``conv3.conv/bn``), so both libraries' state dicts load with
``strict=True``. The ResNeXt "branches" and "concat" block forms, which neither library has, keep
the grouped block's names inside ``branches.N`` (see ``convert_block_form``).

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


def conv2d(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False,
           dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k - 1) // 2, dilation=dilation,
                     groups=groups, bias=bias)


def conv2d_cx(cx: Cx, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False,
              dilation: int = 1):
    if cin % groups or cout % groups:
        raise ArchScaleError("cardinality", f"{groups} groups do not divide a {cin}->{cout} channel "
                                            f"convolution; choose a cardinality that divides both")
    span = dilation * (k - 1) + 1  # a dilated kernel's extent; its flops are still k*k per output
    cx.h, cx.w = _out(cx.h, span, stride, span // 2), _out(cx.w, span, stride, span // 2)
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


def sk_kernels(paths: int, dilated: bool) -> list[tuple[int, int]]:
    """(kernel size, dilation) of each selective-kernel path: 3x3, 5x5, 7x7, ... or 3x3 dilated 1, 2, 3, ..."""
    return [(3, 1 + i) if dilated else (3 + 2 * i, 1) for i in range(paths)]


def sk_attn_channels(channels: int, reduction: int, min_width: int) -> int:
    """Reduced width of selective-kernel attention (SKNet's d = max(C / r, L))."""
    return max(channels // reduction, min_width)


class ConvBnAct(nn.Module):
    """conv -> BN [-> ReLU], named as timm's ConvNormAct (``conv``, ``bn``); the SKNet block's layers."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1,
                 act: bool = True):
        super().__init__()
        self.conv = conv2d(cin, cout, k, stride, groups, dilation=dilation)
        self.bn = norm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.act else x

    @staticmethod
    def complexity(cx: Cx, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1):
        conv2d_cx(cx, cin, cout, k, stride, groups, dilation=dilation)
        norm2d_cx(cx, cout)


class SelectiveKernelAttn(nn.Module):
    """SKNet's fuse and select: sum the paths, pool, 1x1 reduce-BN-ReLU, 1x1 to a logit per path and
    channel, softmax across paths. Returns the weights, shape (batch, paths, channels, 1, 1)."""

    def __init__(self, channels: int, paths: int, attn: int):
        super().__init__()
        self.paths = paths
        self.fc_reduce = nn.Conv2d(channels, attn, 1, bias=False)
        self.bn = norm2d(attn)
        self.fc_select = nn.Conv2d(attn, channels * paths, 1, bias=False)

    def forward(self, feats):
        s = F.adaptive_avg_pool2d(feats.sum(1), 1)
        s = self.fc_select(F.relu(self.bn(self.fc_reduce(s)), inplace=True))
        return F.softmax(s.view(s.shape[0], self.paths, -1, 1, 1), dim=1)

    @staticmethod
    def complexity(cx: Cx, channels: int, paths: int, attn: int):
        h, w = cx.h, cx.w
        gap_cx(cx, channels)
        conv2d_cx(cx, channels, attn, 1)
        norm2d_cx(cx, attn)
        conv2d_cx(cx, attn, channels * paths, 1)
        cx.h, cx.w = h, w


class SelectiveKernel(nn.Module):
    """SKNet's selective-kernel convolution in place of a bottleneck's 3x3 (timm's SelectiveKernel
    with ``split_input=False``, as the paper): every path sees the whole input; the outputs are
    weighted per channel by the attention and summed."""

    def __init__(self, channels: int, stride: int, groups: int, paths: int, reduction: int, min_width: int,
                 dilated: bool):
        super().__init__()
        self.paths = nn.ModuleList(ConvBnAct(channels, channels, k, stride, groups, d)
                                   for k, d in sk_kernels(paths, dilated))
        self.attn = SelectiveKernelAttn(channels, paths, sk_attn_channels(channels, reduction, min_width))

    def forward(self, x):
        feats = torch.stack([path(x) for path in self.paths], dim=1)
        return (feats * self.attn(feats)).sum(1)

    @staticmethod
    def complexity(cx: Cx, channels: int, stride: int, groups: int, paths: int, reduction: int,
                   min_width: int, dilated: bool):
        h_in, w_in = cx.h, cx.w
        for k, d in sk_kernels(paths, dilated):
            cx.h, cx.w = h_in, w_in
            ConvBnAct.complexity(cx, channels, channels, k, stride, groups, d)
        SelectiveKernelAttn.complexity(cx, channels, paths, sk_attn_channels(channels, reduction, min_width))


# ----- residual blocks ----------------------------------------------------------------------
def make_shortcut(spec: ArchSpec, cin: int, cout: int, stride: int) -> nn.Module | None:
    """The projection shortcut of a block that changes shape; None for an identity shortcut or none."""
    if (stride == 1 and cin == cout) or not spec.shortcut:
        return None
    if spec.downsample == "d":
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        return nn.Sequential(pool, conv2d(cin, cout, 1), norm2d(cout))
    if spec.preact:  # ResNet v2 projects the pre-activated input with a bare conv
        return nn.Sequential(conv2d(cin, cout, 1, stride))
    return nn.Sequential(conv2d(cin, cout, 1, stride), norm2d(cout))


def shortcut_cx(cx: Cx, spec: ArchSpec, cin: int, cout: int, stride: int):
    if (stride == 1 and cin == cout) or not spec.shortcut:
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
    """What every residual block ends with: SE, stochastic depth, the shortcut, the addition
    (with ``shortcut=False``: SE and the branch alone, the plain network's block)."""

    def _finish(self, out, x, pre):
        if self.se is not None:
            out = self.se(out)
        out = self.drop_path(out)
        if self.use_shortcut:
            out = out + (x if self.downsample is None else self.downsample(pre))
        return out if self.preact else self.relu(out)

    def _tail(self, spec: ArchSpec, cin: int, cout: int, stride: int, drop_prob: float):
        self.preact, self.use_shortcut = spec.preact, spec.shortcut
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

    def last_layers(self) -> list[nn.Module]:
        """The layers zero_init_residual zeroes: the last BN of the branch (the last conv if pre-act)."""
        return [self.conv2 if self.preact else self.bn2]

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
    """1x1 reduce, 3x3 (grouped, or split attention), 1x1 expand x4 (ResNet-50 and up, ResNeXt).

    ``spec.block_form`` picks one of the ResNeXt paper's three equivalent forms (its fig. 3):
    "grouped" (c) keeps conv1/conv2/their BNs on the block, torchvision's layout; "branches" (a)
    and "concat" (b) hold ``cardinality`` CardinalBranch modules in ``branches``, whose outputs are
    summed (each branch ends in its own conv3) or concatenated before the block's one conv3.
    """

    expansion = 4

    def __init__(self, spec: ArchSpec, cin: int, planes: int, stride: int = 1, drop_prob: float = 0.0):
        super().__init__()
        width, cout = bottleneck_width(spec, planes), planes * self.expansion
        s1, s2, s_avd = _bottleneck_strides(spec, stride)
        self.form = spec.block_form
        if self.form == "grouped":
            self.conv1 = conv2d(cin, width, 1, s1)
            self.bn1 = norm2d(cin if spec.preact else width)
            if spec.radix:
                self.conv2 = SplitAttn(width, s2, spec.cardinality, spec.radix)
                self.bn2 = None  # split attention normalises and activates inside
            else:
                self.conv2 = conv2d(width, width, 3, s2, groups=spec.cardinality)
                self.bn2 = norm2d(width)
        else:
            if spec.preact:
                self.bn1 = norm2d(cin)
            d = width // spec.cardinality
            self.branches = nn.ModuleList(CardinalBranch(spec, cin, d, cout, s1, s2, self.form == "branches")
                                          for _ in range(spec.cardinality))
        self.avd = nn.AvgPool2d(3, s_avd, padding=1) if s_avd > 1 else None
        if self.form != "branches":
            self.conv3 = conv2d(width, cout, 1)
        if self.form == "grouped" or not spec.preact:
            self.bn3 = norm2d(width if spec.preact else cout)
        self._tail(spec, cin, cout, stride, drop_prob)

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

    @staticmethod
    def complexity(cx: Cx, spec: ArchSpec, cin: int, planes: int, stride: int = 1):
        width, cout = bottleneck_width(spec, planes), planes * 4
        h_in, w_in = cx.h, cx.w
        if spec.preact:
            norm2d_cx(cx, cin)
        if spec.block_form == "grouped":
            _inner_cx(cx, spec, cin, width, spec.cardinality, stride)
            conv2d_cx(cx, width, cout, 1)
        else:
            d = width // spec.cardinality
            for _ in range(spec.cardinality):
                cx.h, cx.w = h_in, w_in
                _inner_cx(cx, spec, cin, d, 1, stride)
                if spec.block_form == "branches":
                    conv2d_cx(cx, d, cout, 1)
            if spec.block_form == "concat":
                conv2d_cx(cx, width, cout, 1)
        if not spec.preact:
            norm2d_cx(cx, cout)
        _Block._tail_cx(cx, spec, cin, cout, stride, h_in, w_in)


class CardinalBranch(nn.Module):
    """One of the C paths of a ResNeXt block in the "branches" (a) or "concat" (b) form.

    The grouped block's layers and names on d = width / C channels: conv1 (1x1), conv2 (3x3, one
    group), the BNs on their outputs (bn1, bn2; pre-activation: bn2, bn3, before conv2 and conv3)
    and, in the "branches" form, its own conv3 (d -> block output, no BN: the block's bn3 follows
    the sum).
    """

    def __init__(self, spec: ArchSpec, cin: int, d: int, cout: int, s1: int, s2: int, own_conv3: bool):
        super().__init__()
        self.conv1 = conv2d(cin, d, 1, s1)
        if spec.preact:
            self.bn2 = norm2d(d)
            self.conv2 = conv2d(d, d, 3, s2)
            self.bn3 = norm2d(d)
        else:
            self.bn1 = norm2d(d)
            self.conv2 = conv2d(d, d, 3, s2)
            self.bn2 = norm2d(d)
        self.conv3 = conv2d(d, cout, 1) if own_conv3 else None


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


def _inner_cx(cx: Cx, spec: ArchSpec, cin: int, width: int, groups: int, stride: int):
    """Complexity of ``_inner`` on ``width`` channels in ``groups`` groups."""
    s1, s2, s_avd = _bottleneck_strides(spec, stride)
    conv2d_cx(cx, cin, width, 1, s1)
    norm2d_cx(cx, width)
    if spec.radix:
        SplitAttn.complexity(cx, width, s2, groups, spec.radix)
    else:
        conv2d_cx(cx, width, width, 3, s2, groups=groups)
        if not spec.preact:
            norm2d_cx(cx, width)
    if s_avd > 1:
        pool2d_cx(cx, 3, s_avd, 1)
    if spec.preact:  # ResNet v2's BN before conv3, after the avd pool
        norm2d_cx(cx, width)


class SKBottleneck(_Block):
    """SKNet's bottleneck: 1x1, selective kernel in place of the 3x3, 1x1 expand x4.

    timm's SelectiveKernelBottleneck with its names (``conv1.conv/bn``, ``conv2.paths``/``attn``,
    ``conv3.conv/bn``), so timm's skresnext50_32x4d state dict loads strictly.
    """

    expansion = 4

    def __init__(self, spec: ArchSpec, cin: int, planes: int, stride: int = 1, drop_prob: float = 0.0):
        super().__init__()
        width, cout = bottleneck_width(spec, planes), planes * self.expansion
        s1, s2, s_avd = _bottleneck_strides(spec, stride)
        self.conv1 = ConvBnAct(cin, width, 1, s1)
        self.conv2 = SelectiveKernel(width, s2, spec.cardinality, spec.sk_paths, spec.sk_reduction,
                                     spec.sk_min_width, spec.sk_dilated)
        self.avd = nn.AvgPool2d(3, s_avd, padding=1) if s_avd > 1 else None
        self.conv3 = ConvBnAct(width, cout, 1, act=False)
        self._tail(spec, cin, cout, stride, drop_prob)

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        if self.avd is not None:
            out = self.avd(out)
        return self._finish(self.conv3(out), x, x)

    def last_layers(self) -> list[nn.Module]:
        return [self.conv3.bn]

    @staticmethod
    def complexity(cx: Cx, spec: ArchSpec, cin: int, planes: int, stride: int = 1):
        width, cout = bottleneck_width(spec, planes), planes * 4
        s1, s2, s_avd = _bottleneck_strides(spec, stride)
        h_in, w_in = cx.h, cx.w
        ConvBnAct.complexity(cx, cin, width, 1, s1)
        SelectiveKernel.complexity(cx, width, s2, spec.cardinality, spec.sk_paths, spec.sk_reduction,
                                   spec.sk_min_width, spec.sk_dilated)
        if s_avd > 1:
            pool2d_cx(cx, 3, s_avd, 1)
        ConvBnAct.complexity(cx, width, cout, 1)
        _Block._tail_cx(cx, spec, cin, cout, stride, h_in, w_in)


def _bottleneck_strides(spec: ArchSpec, stride: int) -> tuple[int, int, int]:
    """Strides of (first 1x1, 3x3, avd pool) for ResNet-A (1x1), -B/-D (3x3) and ResNeSt avd."""
    if spec.avd and stride > 1:
        return 1, 1, stride
    if spec.downsample == "a":
        return stride, 1, 1
    return 1, stride, 1


BLOCK_TYPES = {"basic": BasicBlock, "bottleneck": Bottleneck}


def block_type(spec: ArchSpec) -> type[_Block]:
    """The block class a spec builds: SKBottleneck with a selective kernel, else by ``spec.block``."""
    return SKBottleneck if spec.sk_paths else BLOCK_TYPES[spec.block]


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

        block = block_type(spec)
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
        block = block_type(spec)
        for _, _, cin, planes, stride, _ in stage_plan(spec):
            block.complexity(cx, spec, cin, planes, stride)
        features = spec.stage_planes[-1] * spec.expansion
        if spec.preact:
            norm2d_cx(cx, features)
        gap_cx(cx, features)
        linear_cx(cx, features, spec.num_classes)


# ----- moving weights between the ResNeXt block forms --------------------------------------
def convert_block_form(state_dict: dict[str, torch.Tensor], spec: ArchSpec, to_form: str) -> dict[str, torch.Tensor]:
    """The weights of a ``spec`` model (built in ``spec.block_form``) for the same network in ``to_form``.

    Returns a new state dict that loads with ``strict=True`` into
    ``build_model(spec.replace(block_form=to_form))`` and computes the same function (eval mode; in
    training mode too, as BN statistics are per channel). The conversion is exact: a branch's conv1,
    conv2 and their BN parameters and running statistics are its d-channel slice (dim 0) of the
    grouped block's, and a branch's conv3 in the "branches" form is its slice of the input
    channels (dim 1) of the shared conv3; converting back concatenates them. Each branch gets a copy
    of ``num_batches_tracked``. Keys outside the bottlenecks' cardinal paths pass through unchanged.
    """
    if to_form == spec.block_form:
        return dict(state_dict)
    target = spec.replace(block_form=to_form)  # validates to_form and its combinations
    grouped = state_dict if spec.block_form == "grouped" else _merge_branches(state_dict, spec)
    return dict(grouped) if to_form == "grouped" else _split_branches(grouped, target)


def _branch_layers(spec: ArchSpec) -> tuple[str, ...]:
    """Names of the layers a CardinalBranch holds in ``spec.block_form``."""
    names = ("conv1", "bn2", "conv2", "bn3") if spec.preact else ("conv1", "bn1", "conv2", "bn2")
    return names + (("conv3",) if spec.block_form == "branches" else ())


def _block_prefixes(spec: ArchSpec) -> list[str]:
    return [f"layer{i + 1}.{j}." for i, j, *_ in stage_plan(spec)]


def _missing(key: str, spec: ArchSpec) -> ArchScaleError:
    return ArchScaleError("block_form", f"the state dict has no {key}; pass the spec of the model it came from "
                                        f"(block_form {spec.block_form!r}, cardinality {spec.cardinality})")


def _merge_branches(sd: dict, spec: ArchSpec) -> dict:
    """"branches"/"concat" state dict -> grouped: concatenate the C branches' tensors."""
    out, n, layers = {}, spec.cardinality, _branch_layers(spec)
    for prefix in _block_prefixes(spec):
        first = f"{prefix}branches.0."
        if not any(k.startswith(first) for k in sd):
            raise _missing(first + "conv1.weight", spec)
    for key, value in sd.items():
        prefix, _, rest = key.partition("branches.")
        if not rest or not prefix.startswith("layer"):
            out[key] = value
            continue
        branch, name, param = rest.split(".", 2)
        if branch != "0":
            continue
        if name not in layers:
            raise ArchScaleError("block_form", f"unexpected key {key} for block_form {spec.block_form!r}")
        parts = []
        for b in range(n):
            k = f"{prefix}branches.{b}.{name}.{param}"
            if k not in sd:
                raise _missing(k, spec)
            parts.append(sd[k])
        out[f"{prefix}{name}.{param}"] = (parts[0].clone() if parts[0].dim() == 0
                                          else torch.cat(parts, dim=1 if name == "conv3" else 0))
    return out


def _split_branches(sd: dict, spec: ArchSpec) -> dict:
    """Grouped state dict -> ``spec.block_form``: slice each cardinal path's channels into branches.N."""
    n, layers = spec.cardinality, _branch_layers(spec)
    per_block: dict[str, list[str]] = {}
    for prefix in _block_prefixes(spec):
        if prefix + "conv1.weight" not in sd:
            raise _missing(prefix + "conv1.weight", spec)
        per_block[prefix] = [k for k in sd if k.startswith(prefix) and k[len(prefix):].split(".")[0] in layers]
    owner = {k: prefix for prefix, keys in per_block.items() for k in keys}
    out = {}
    for key, value in sd.items():
        prefix = owner.get(key)
        if prefix is None:
            out[key] = value
        elif key == per_block[prefix][0]:  # emit the whole block's branches, branch by branch
            for b in range(n):
                for k in per_block[prefix]:
                    t, name = sd[k], k[len(prefix):].split(".")[0]
                    part = t.clone() if t.dim() == 0 else t.chunk(n, dim=1 if name == "conv3" else 0)[b].clone()
                    out[f"{prefix}branches.{b}.{k[len(prefix):]}"] = part
    return out


def build_model(spec: ArchSpec) -> ResNet:
    """The network an ArchSpec describes, freshly initialised (torchvision's initialisation)."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build_model takes an ArchSpec, got {type(spec).__name__}")
    return ResNet(spec)
