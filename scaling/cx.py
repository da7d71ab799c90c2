"""The counting context and the closed form of each layer, and the width and stride formulas that the
modules and their closed forms share. Imports no torch.

Conventions are fvcore's, for a batch of one image in eval mode: a multiply-add is one flop;
convolutions and linear layers count their multiply-adds (not their bias), batch norm counts 2 per
element, adaptive average pooling 1 per input element; ReLU, sigmoid, softmax, max/avg pooling and
additions count 0. Activations are the output elements of convolutions and linear layers.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ArchScaleError


class FeatureMapTooSmall(Exception):
    """A strided layer got fewer pixels than its stride: the input resolution is too small."""


@dataclass
class Cx:
    """Running complexity of a forward pass: feature-map size (pixels) and totals so far
    (parameters, FLOPs with one multiply-add = one flop, activations)."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0


# ----- layers -------------------------------------------------------------------------------
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


def conv2d_cx(cx: Cx, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False,
              dilation: int = 1):
    """A k x k convolution padded to keep the size (``scaling.layers.conv2d``)."""
    if cin % groups or cout % groups:
        raise ArchScaleError("cardinality", f"{groups} groups do not divide a {cin}->{cout} channel "
                                            f"convolution; choose a cardinality that divides both")
    span = dilation * (k - 1) + 1  # a dilated kernel's extent; its flops are still k*k per output
    cx.h, cx.w = _out(cx.h, span, stride, span // 2), _out(cx.w, span, stride, span // 2)
    weights = cout * (cin // groups) * k * k
    cx.flops += weights * cx.h * cx.w
    cx.params += weights + (cout if bias else 0)
    cx.acts += cout * cx.h * cx.w


def norm2d_cx(cx: Cx, c: int):
    """Batch norm over ``c`` channels."""
    cx.flops += 2 * c * cx.h * cx.w
    cx.params += 2 * c


def pool2d_cx(cx: Cx, k: int, stride: int, pad: int, ceil: bool = False):
    """Max or average pooling."""
    cx.h, cx.w = _out(cx.h, k, stride, pad, ceil), _out(cx.w, k, stride, pad, ceil)


def gap_cx(cx: Cx, c: int):
    """Global average pooling to 1x1."""
    cx.flops += c * cx.h * cx.w
    cx.h = cx.w = 1


def linear_cx(cx: Cx, cin: int, cout: int):
    """A fully connected layer with bias."""
    cx.flops += cin * cout
    cx.params += cin * cout + cout
    cx.acts += cout


def conv_bn_act_cx(cx: Cx, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1,
                   act: bool = True):
    """``scaling.layers.ConvBnAct``: conv -> BN [-> ReLU]."""
    conv2d_cx(cx, cin, cout, k, stride, groups, dilation=dilation)
    norm2d_cx(cx, cout)


# ----- widths and strides the modules and their closed forms share ---------------------------
#: (kernel, stride) of the one-conv stems; the "deep" stem is three 3x3 convs, the first strided.
STEM_KERNELS = {"imagenet": (7, 2), "cifar": (3, 1)}


def se_channels(channels: int, ratio: float) -> int:
    """Reduced width of squeeze-and-excitation (TF ResNet-RS: max(1, int(C * ratio)))."""
    return max(1, int(channels * ratio))


def attn_channels(channels: int, radix: int) -> int:
    """Hidden width of split attention (ResNeSt: max(C * radix / 4, 32))."""
    return max(channels * radix // 4, 32)


def sk_kernels(paths: int, dilated: bool) -> list[tuple[int, int]]:
    """(kernel size, dilation) of each selective-kernel path: 3x3, 5x5, 7x7, ... or 3x3 dilated 1, 2, 3, ..."""
    return [(3, 1 + i) if dilated else (3 + 2 * i, 1) for i in range(paths)]


def sk_attn_channels(channels: int, reduction: int, min_width: int) -> int:
    """Reduced width of selective-kernel attention (SKNet's d = max(C / r, L))."""
    return max(channels // reduction, min_width)


def group_width(planes: int, bottleneck_width: int, widen_factor: float) -> int:
    """Channels per group of a bottleneck's 3x3 conv: int(planes * bottleneck_width / 64 *
    widen_factor) (torchvision's formula; ResNeXt's d at a stage of 64 planes)."""
    return int(planes * bottleneck_width / 64 * widen_factor)


def inner_width(planes: int, cardinality: int, bottleneck_width: int, widen_factor: float) -> int:
    """Channels of a bottleneck's 3x3 conv: ``group_width`` times the cardinality."""
    return group_width(planes, bottleneck_width, widen_factor) * cardinality


def bottleneck_strides(stride: int, downsample: str, avd: bool) -> tuple[int, int, int]:
    """Strides of a bottleneck's (first 1x1, 3x3, avd pool): ResNet-A strides the 1x1, -B/-D the 3x3,
    ResNeSt's avd a 3x3 average pool after the 3x3."""
    if avd and stride > 1:
        return 1, 1, stride
    if downsample == "a":
        return stride, 1, 1
    return 1, stride, 1
