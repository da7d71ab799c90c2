"""The counting context and the closed form of each layer, and the width and stride formulas that the
modules and their closed forms share. Imports no torch.

Conventions are fvcore's, for a batch of one image in eval mode: a multiply-add is one flop;
convolutions and linear layers count their multiply-adds (not their bias), batch norm counts 2 per
element, adaptive average pooling 1 per input element; ReLU, sigmoid, softmax, max/avg pooling and
additions count 0. Activations are the output elements of convolutions and linear layers.

Every formula here takes plain numbers or numpy arrays alike (one value per network), so the same
closed form prices one network (``scaling.analytic``) or a million at once (``scaling.batch``). With
arrays, a network that cannot be built is not an exception but a mask in ``Cx.faults``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ArchScaleError


class FeatureMapTooSmall(Exception):
    """A strided layer got fewer pixels than its stride: the input resolution is too small."""


@dataclass
class Cx:
    """Running complexity of a forward pass: feature-map size (pixels) and totals so far
    (parameters, FLOPs with one multiply-add = one flop, activations). The totals are replaced,
    never changed in place, so a total read before a layer keeps its value when they are arrays."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0
    #: With arrays: ArchSpec field -> boolean mask of the networks that cannot be built because of it
    #: ("resolution": a feature map smaller than a stride; "cardinality": groups that do not divide
    #: the channels). None with plain numbers, which raise instead.
    faults: dict | None = None

    def fault(self, field: str, bad, error: Exception) -> None:
        """Record the networks where ``bad`` holds (arrays), or raise ``error`` when it holds (numbers)."""
        if self.faults is None:
            if bad:
                raise error
        else:
            self.faults[field] = self.faults.get(field, False) | bad


# ----- numbers or arrays --------------------------------------------------------------------
def is_array(x) -> bool:
    """Whether ``x`` is a numpy array (one value per network) rather than a plain number."""
    return hasattr(x, "ndim") and x.ndim > 0


def trunc(x):
    """``int(x)`` (towards zero) of a number, or of every element of an array (int64)."""
    return x.astype("int64") if is_array(x) else int(x)


def at_least(x, low):
    """``max(x, low)`` of a number, or of every element of an array."""
    return x.clip(min=low) if is_array(x) else max(x, low)


def when(cx: Cx, keep, add, *args, **kwargs) -> None:
    """``add(cx, *args, **kwargs)`` where ``keep`` holds: a plain ``if`` for a bool, and for a mask the
    layer's cost (and faults) counted only for the networks that have it."""
    if not is_array(keep):
        if keep:
            add(cx, *args, **kwargs)
        return
    sub = Cx(cx.h, cx.w, faults={} if cx.faults is not None else None)
    add(sub, *args, **kwargs)
    cx.flops, cx.params, cx.acts = (cx.flops + sub.flops * keep, cx.params + sub.params * keep,
                                    cx.acts + sub.acts * keep)
    h = _where(keep, sub.h, cx.h)
    cx.h, cx.w = h, (h if cx.w is cx.h and sub.w is sub.h else _where(keep, sub.w, cx.w))
    for field, bad in (sub.faults or {}).items():
        cx.fault(field, bad & keep, None)


def _where(keep, a, b):
    import numpy as np

    return np.where(keep, a, b)


# ----- layers -------------------------------------------------------------------------------
def _out(cx: Cx, size, k: int, stride: int, pad: int, ceil: bool = False):
    """Output size of a conv/pool, as PyTorch computes it (at least 1 where ``cx.faults`` records a
    fault, so that the networks that do fit go on counting)."""
    if stride == 1 and 2 * pad == k - 1 and not ceil:  # "same" padding keeps the size
        return size
    out = (size + 2 * pad - (k - 1) - 1 + (stride - 1 if ceil else 0)) // stride + 1
    if ceil:
        out = out - ((out - 1) * stride >= size + pad)
    too_small = (size < stride) | (out < 1) if stride > 1 else out < 1
    cx.fault("resolution", too_small, FeatureMapTooSmall(size))
    return at_least(out, 1)


def conv2d_cx(cx: Cx, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False,
              dilation: int = 1):
    """A k x k convolution padded to keep the size (``scaling.layers.conv2d``)."""
    if is_array(groups) or groups != 1:
        bad = (cin % groups != 0) | (cout % groups != 0)
        if cx.faults is None and bad:
            raise ArchScaleError("cardinality", f"{groups} groups do not divide a {cin}->{cout} channel "
                                                f"convolution; choose a cardinality that divides both")
        cx.fault("cardinality", bad, None)
    span = dilation * (k - 1) + 1  # a dilated kernel's extent; its flops are still k*k per output
    _resize(cx, span, stride, span // 2)
    weights = cout * (cin // groups) * k * k
    area = cx.h * cx.w
    cx.flops = cx.flops + weights * area
    cx.params = cx.params + weights + (cout if bias else 0)
    cx.acts = cx.acts + cout * area


def norm2d_cx(cx: Cx, c: int):
    """Batch norm over ``c`` channels."""
    cx.flops = cx.flops + 2 * c * cx.h * cx.w
    cx.params = cx.params + 2 * c


def pool2d_cx(cx: Cx, k: int, stride: int, pad: int, ceil: bool = False):
    """Max or average pooling."""
    _resize(cx, k, stride, pad, ceil)


def _resize(cx: Cx, k: int, stride: int, pad: int, ceil: bool = False):
    """The feature map after a conv/pool; a square one (the same object for h and w) computed once."""
    h = _out(cx, cx.h, k, stride, pad, ceil)
    cx.h, cx.w = h, (h if cx.w is cx.h else _out(cx, cx.w, k, stride, pad, ceil))


def gap_cx(cx: Cx, c: int):
    """Global average pooling to 1x1."""
    cx.flops = cx.flops + c * cx.h * cx.w
    cx.h = cx.w = 1


def linear_cx(cx: Cx, cin: int, cout: int):
    """A fully connected layer with bias."""
    cx.flops = cx.flops + cin * cout
    cx.params = cx.params + cin * cout + cout
    cx.acts = cx.acts + cout


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
    return at_least(trunc(channels * ratio), 1)


def attn_channels(channels: int, radix: int) -> int:
    """Hidden width of split attention (ResNeSt: max(C * radix / 4, 32))."""
    return at_least(channels * radix // 4, 32)


def sk_kernels(paths: int, dilated: bool) -> list[tuple[int, int]]:
    """(kernel size, dilation) of each selective-kernel path: 3x3, 5x5, 7x7, ... or 3x3 dilated 1, 2, 3, ..."""
    return [(3, 1 + i) if dilated else (3 + 2 * i, 1) for i in range(paths)]


def sk_attn_channels(channels: int, reduction: int, min_width: int) -> int:
    """Reduced width of selective-kernel attention (SKNet's d = max(C / r, L))."""
    return at_least(channels // reduction, min_width)


def group_width(planes: int, bottleneck_width: int, widen_factor: float) -> int:
    """Channels per group of a bottleneck's 3x3 conv: int(planes * bottleneck_width / 64 *
    widen_factor) (torchvision's formula; ResNeXt's d at a stage of 64 planes)."""
    return trunc(planes * bottleneck_width / 64 * widen_factor)


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
