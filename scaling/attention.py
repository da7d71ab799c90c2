"""Attention modules of the ResNet family: squeeze-and-excitation (SENet, ResNet-RS), split
attention (ResNeSt) and the selective kernel (SKNet).

Names follow timm's (``se.fc1/fc2``; ``conv2.conv/bn0/fc1/bn1/fc2``; ``conv2.paths.N``,
``conv2.attn.fc_reduce/bn/fc_select``) so its state dicts load strictly. The closed form of each
module, taking the same arguments, is in ``scaling.analytic``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cx import attn_channels, se_channels, sk_attn_channels, sk_kernels
from .layers import ConvBnAct, conv2d, norm2d


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
        if self.radix == 1:
            attn = self.fc2(F.relu(self.bn1(self.fc1(F.adaptive_avg_pool2d(x, 1))), inplace=True))
            return x * torch.sigmoid(attn)
        # The splits are channel slices of x, summed elementwise, so a channels-last x stays
        # channels-last (a 5-D view and .sum(1) would hand the next layer a contiguous tensor).
        splits = x.chunk(self.radix, dim=1)
        attn = self.fc2(F.relu(self.bn1(self.fc1(F.adaptive_avg_pool2d(_sum(splits), 1))), inplace=True))
        attn = attn.view(x.shape[0], self.groups, self.radix, -1).transpose(1, 2)
        attn = F.softmax(attn, dim=1).reshape(x.shape[0], self.radix, -1, 1, 1)
        return _sum(split * attn[:, i] for i, split in enumerate(splits))


class SelectiveKernelAttn(nn.Module):
    """SKNet's fuse and select: sum the paths, pool, 1x1 reduce-BN-ReLU, 1x1 to a logit per path and
    channel, softmax across paths. Takes the paths' outputs (a sequence of (batch, channels, h, w)
    tensors); returns the weights, shape (batch, paths, channels, 1, 1)."""

    def __init__(self, channels: int, paths: int, attn: int):
        super().__init__()
        self.paths = paths
        self.fc_reduce = nn.Conv2d(channels, attn, 1, bias=False)
        self.bn = norm2d(attn)
        self.fc_select = nn.Conv2d(attn, channels * paths, 1, bias=False)

    def forward(self, feats):
        s = F.adaptive_avg_pool2d(_sum(feats), 1)
        s = self.fc_select(F.relu(self.bn(self.fc_reduce(s)), inplace=True))
        return F.softmax(s.view(s.shape[0], self.paths, -1, 1, 1), dim=1)


class SelectiveKernel(nn.Module):
    """SKNet's selective-kernel convolution in place of a bottleneck's 3x3 (timm's SelectiveKernel
    with ``split_input=False``, as the paper): every path sees the whole input; the outputs are
    weighted per channel by the attention and summed (elementwise, so channels-last stays so)."""

    def __init__(self, channels: int, stride: int, groups: int, paths: int, reduction: int, min_width: int,
                 dilated: bool):
        super().__init__()
        self.paths = nn.ModuleList(ConvBnAct(channels, channels, k, stride, groups, d)
                                   for k, d in sk_kernels(paths, dilated))
        self.attn = SelectiveKernelAttn(channels, paths, sk_attn_channels(channels, reduction, min_width))

    def forward(self, x):
        feats = [path(x) for path in self.paths]
        weights = self.attn(feats)
        return _sum(feat * weights[:, i] for i, feat in enumerate(feats))


def _sum(tensors):
    """The elementwise sum of tensors, in order (keeps their memory format, unlike stack + sum)."""
    it = iter(tensors)
    total = next(it)
    for t in it:
        total = total + t
    return total
