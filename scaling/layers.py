"""The layers every module is made of: a size-keeping conv, batch norm, and conv-BN-ReLU.

Their closed forms are ``conv2d_cx``, ``norm2d_cx`` and ``conv_bn_act_cx`` in ``scaling.cx``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


def conv2d(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False,
           dilation: int = 1) -> nn.Conv2d:
    """A k x k convolution padded to keep the size (before striding)."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k - 1) // 2, dilation=dilation,
                     groups=groups, bias=bias)


def norm2d(c: int) -> nn.BatchNorm2d:
    """Batch norm over ``c`` channels."""
    return nn.BatchNorm2d(c)


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
