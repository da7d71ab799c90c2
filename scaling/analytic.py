"""The closed-form counter: parameters, FLOPs and activations of a network without building it.

Imports no torch, so specs can be counted, and spaces priced, without it. One function per module
of ``scaling.attention``, ``scaling.blocks`` and ``scaling.model``, in the same order, each taking
its module's constructor arguments and adding the module's cost to a running ``Cx`` (pycls'
complexity functions). Conventions are fvcore's (see ``scaling.cx``); tests/test_complexity.py
checks every sum against fvcore. The numeric arguments may be numpy arrays, one value per network
(``scaling.batch`` prices many networks of one layout at once this way).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect

from .block_kinds import BLOCK_KINDS, register_block
from .cx import (STEM_KERNELS, Cx, FeatureMapTooSmall, attn_channels, bottleneck_strides, conv2d_cx,
                 conv_bn_act_cx, gap_cx, inner_width, linear_cx, norm2d_cx, pool2d_cx, se_channels, sk_attn_channels,
                 sk_kernels, when)
from .errors import ArchScaleError
from .plan import block_kind, stage_plan
from .spec import ArchSpec


# ----- attention (scaling.attention) ----------------------------------------------------------
def squeeze_excite_cx(cx: Cx, channels: int, ratio: float):
    """Adds SqueezeExcite(channels, ratio) to ``cx``."""
    rd = se_channels(channels, ratio)
    h, w = cx.h, cx.w
    gap_cx(cx, channels)
    conv2d_cx(cx, channels, rd, 1, bias=True)
    conv2d_cx(cx, rd, channels, 1, bias=True)
    cx.h, cx.w = h, w


def split_attn_cx(cx: Cx, channels: int, stride: int, groups: int, radix: int):
    """Adds SplitAttn(channels, stride, groups, radix) to ``cx``."""
    attn = attn_channels(channels, radix)
    conv2d_cx(cx, channels, channels * radix, 3, stride, groups=groups * radix)
    norm2d_cx(cx, channels * radix)
    h, w = cx.h, cx.w
    gap_cx(cx, channels)
    conv2d_cx(cx, channels, attn, 1, groups=groups, bias=True)
    norm2d_cx(cx, attn)
    conv2d_cx(cx, attn, channels * radix, 1, groups=groups, bias=True)
    cx.h, cx.w = h, w


def selective_kernel_attn_cx(cx: Cx, channels: int, paths: int, attn: int):
    """Adds SelectiveKernelAttn(channels, paths, attn) to ``cx``."""
    h, w = cx.h, cx.w
    gap_cx(cx, channels)
    conv2d_cx(cx, channels, attn, 1)
    norm2d_cx(cx, attn)
    conv2d_cx(cx, attn, channels * paths, 1)
    cx.h, cx.w = h, w


def selective_kernel_cx(cx: Cx, channels: int, stride: int, groups: int, paths: int, reduction: int,
                        min_width: int, dilated: bool):
    """Adds SelectiveKernel(channels, stride, groups, paths, reduction, min_width, dilated) to ``cx``."""
    h_in, w_in = cx.h, cx.w
    for k, d in sk_kernels(paths, dilated):
        cx.h, cx.w = h_in, w_in
        conv_bn_act_cx(cx, channels, channels, k, stride, groups, d)
    selective_kernel_attn_cx(cx, channels, paths, sk_attn_channels(channels, reduction, min_width))


# ----- blocks (scaling.blocks) ---------------------------------------------------------------
def shortcut_cx(cx: Cx, cin: int, cout: int, stride: int, *, downsample: str = "b", preact: bool = False):
    """Adds make_shortcut(cin, cout, stride, downsample=, preact=) (nothing for an identity) to ``cx``."""
    when(cx, (stride != 1) | (cin != cout), _projection_cx, cin, cout, stride, downsample, preact)


def _projection_cx(cx: Cx, cin: int, cout: int, stride: int, downsample: str, preact: bool):
    if downsample == "d":
        if stride > 1:
            pool2d_cx(cx, 2, stride, 0, ceil=True)
        conv2d_cx(cx, cin, cout, 1)
        norm2d_cx(cx, cout)
    else:
        conv2d_cx(cx, cin, cout, 1, stride)
        if not preact:
            norm2d_cx(cx, cout)


def _tail_cx(cx: Cx, cin: int, cout: int, stride: int, h_in: int, w_in: int, *, preact: bool, downsample: str,
             se_ratio: float, shortcut: bool):
    """SE on the branch's output, and the projection shortcut on the block's input (``h_in`` x ``w_in``)."""
    when(cx, se_ratio > 0, squeeze_excite_cx, cout, se_ratio)
    h, w = cx.h, cx.w
    cx.h, cx.w = h_in, w_in
    if shortcut:
        shortcut_cx(cx, cin, cout, stride, downsample=downsample, preact=preact)
    cx.h, cx.w = h, w


@register_block("basic", expansion=1, convs=2, module="scaling.blocks:BasicBlock", grouped=False)
def basic_block_cx(cx: Cx, cin: int, planes: int, stride: int = 1, *, preact: bool = False, downsample: str = "b",
                   se_ratio: float = 0.0, shortcut: bool = True, drop_prob: float = 0.0):
    """Adds BasicBlock(cin, planes, stride, ...) to ``cx``."""
    h_in, w_in = cx.h, cx.w
    if preact:
        norm2d_cx(cx, cin)
    conv2d_cx(cx, cin, planes, 3, stride)
    norm2d_cx(cx, planes)
    conv2d_cx(cx, planes, planes, 3)
    if not preact:
        norm2d_cx(cx, planes)
    _tail_cx(cx, cin, planes, stride, h_in, w_in, preact=preact, downsample=downsample, se_ratio=se_ratio,
             shortcut=shortcut)


@register_block("bottleneck", expansion=4, convs=3, module="scaling.blocks:Bottleneck")
def bottleneck_cx(cx: Cx, cin: int, planes: int, stride: int = 1, *, cardinality: int = 1,
                  bottleneck_width: int = 64, widen_factor: float = 1.0, block_form: str = "grouped",
                  preact: bool = False, radix: int = 0, avd: bool = False,
                  downsample: str = "b", se_ratio: float = 0.0, shortcut: bool = True, drop_prob: float = 0.0):
    """Adds Bottleneck(cin, planes, stride, ...) to ``cx``."""
    width, cout = inner_width(planes, cardinality, bottleneck_width, widen_factor), planes * 4
    strides = bottleneck_strides(stride, downsample, avd)
    h_in, w_in = cx.h, cx.w
    if preact:
        norm2d_cx(cx, cin)
    if block_form == "grouped":
        _inner_cx(cx, cin, width, cardinality, strides, preact=preact, radix=radix)
        conv2d_cx(cx, width, cout, 1)
    else:
        d = width // cardinality
        for _ in range(cardinality):
            cx.h, cx.w = h_in, w_in
            _inner_cx(cx, cin, d, 1, strides, preact=preact, radix=radix)
            if block_form == "branches":
                conv2d_cx(cx, d, cout, 1)
        if block_form == "concat":
            conv2d_cx(cx, width, cout, 1)
    if not preact:
        norm2d_cx(cx, cout)
    _tail_cx(cx, cin, cout, stride, h_in, w_in, preact=preact, downsample=downsample, se_ratio=se_ratio,
             shortcut=shortcut)


def _inner_cx(cx: Cx, cin: int, width: int, groups: int, strides: tuple[int, int, int], *, preact: bool,
              radix: int):
    """scaling.blocks._inner on ``width`` channels in ``groups`` groups; ``strides`` as bottleneck_strides."""
    s1, s2, s_avd = strides
    conv2d_cx(cx, cin, width, 1, s1)
    norm2d_cx(cx, width)
    if radix:
        split_attn_cx(cx, width, s2, groups, radix)
    else:
        conv2d_cx(cx, width, width, 3, s2, groups=groups)
        if not preact:
            norm2d_cx(cx, width)
    if s_avd > 1:
        pool2d_cx(cx, 3, s_avd, 1)
    if preact:  # ResNet v2's BN before conv3, after the avd pool
        norm2d_cx(cx, width)


@register_block("sk_bottleneck", expansion=4, convs=3, module="scaling.blocks:SKBottleneck",
                selectable=False)
def sk_bottleneck_cx(cx: Cx, cin: int, planes: int, stride: int = 1, *, cardinality: int = 1,
                     bottleneck_width: int = 64, widen_factor: float = 1.0, sk_paths: int = 2, sk_reduction: int = 16, sk_min_width: int = 32,
                     sk_dilated: bool = True, avd: bool = False, downsample: str = "b", se_ratio: float = 0.0,
                     shortcut: bool = True, drop_prob: float = 0.0):
    """Adds SKBottleneck(cin, planes, stride, ...) to ``cx``."""
    width, cout = inner_width(planes, cardinality, bottleneck_width, widen_factor), planes * 4
    s1, s2, s_avd = bottleneck_strides(stride, downsample, avd)
    h_in, w_in = cx.h, cx.w
    conv_bn_act_cx(cx, cin, width, 1, s1)
    selective_kernel_cx(cx, width, s2, cardinality, sk_paths, sk_reduction, sk_min_width, sk_dilated)
    if s_avd > 1:
        pool2d_cx(cx, 3, s_avd, 1)
    conv_bn_act_cx(cx, width, cout, 1, act=False)
    _tail_cx(cx, cin, cout, stride, h_in, w_in, preact=False, downsample=downsample, se_ratio=se_ratio,
             shortcut=shortcut)


@functools.cache
def _block_fields(kind: str) -> tuple[str, ...]:
    names = {f.name for f in dataclasses.fields(ArchSpec)}
    params = inspect.signature(BLOCK_KINDS[kind].closed_form).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name in names)


def block_keywords(spec: ArchSpec) -> dict:
    """The keywords every block of ``spec`` takes besides (cin, planes, stride, drop_prob): the
    ArchSpec fields its closed form (and so its module: tests/test_complexity.py checks the two
    signatures match) takes as keyword-only arguments. The one place where spec flags reach the
    blocks: a block option named as its ArchSpec field needs no mapping anywhere."""
    return {name: getattr(spec, name) for name in _block_fields(block_kind(spec))}


# ----- the network (scaling.model) -----------------------------------------------------------
def stem_conv_cx(cx: Cx, stem: str, cin: int, cout: int):
    """Adds scaling.model.stem_conv(stem, cin, cout) to ``cx``."""
    if stem == "deep":
        mid = cout // 2
        conv2d_cx(cx, cin, mid, 3, 2)
        norm2d_cx(cx, mid)
        conv2d_cx(cx, mid, mid, 3)
        norm2d_cx(cx, mid)
        conv2d_cx(cx, mid, cout, 3)
    else:
        conv2d_cx(cx, cin, cout, *STEM_KERNELS[stem])


def stem_pool_cx(cx: Cx, pool: str, channels: int):
    """Adds scaling.model.stem_pool(pool, channels) to ``cx``."""
    if pool == "max":
        pool2d_cx(cx, 3, 2, 1)
    elif pool == "conv":
        conv2d_cx(cx, channels, channels, 3, 2)
        norm2d_cx(cx, channels)


def resnet_cx(cx: Cx, spec: ArchSpec):
    """Adds ResNet(spec): stem, blocks, pooling and classifier to ``cx``."""
    stem = spec.stem_channels
    stem_conv_cx(cx, spec.stem, spec.in_channels, stem)
    if not spec.preact:
        norm2d_cx(cx, stem)
    stem_pool_cx(cx, spec.stem_pool, stem)
    block, keywords = BLOCK_KINDS[block_kind(spec)].closed_form, block_keywords(spec)
    last = (0, 0, 0)  # the previous block's (flops, params, acts)
    for _, j, cin, planes, stride, drop in stage_plan(spec):
        if j >= 2:  # the same block as the one before (stride 1, as many channels in as out): the same cost
            cx.flops, cx.params, cx.acts = cx.flops + last[0], cx.params + last[1], cx.acts + last[2]
            continue
        before = cx.flops, cx.params, cx.acts
        block(cx, cin, planes, stride, drop_prob=drop, **keywords)
        last = cx.flops - before[0], cx.params - before[1], cx.acts - before[2]
    features = spec.stage_planes[-1] * spec.expansion
    if spec.preact:
        norm2d_cx(cx, features)
    gap_cx(cx, features)
    linear_cx(cx, features, spec.num_classes)


# ----- counting a spec -----------------------------------------------------------------------
def analytic_counts(spec: ArchSpec, resolution: int | None = None) -> Cx:
    """Closed-form params, FLOPs (one multiply-add = one flop) and activations of ``spec`` for one
    image at ``resolution`` px (default: the spec's), fvcore's conventions, without building the model.

    Raises ArchScaleError("resolution") naming the smallest resolution that fits when the input is
    too small for the network's downsampling (as ``check_fits``).
    """
    r = spec.resolution if resolution is None else int(resolution)
    try:
        return _count(spec, r)
    except FeatureMapTooSmall:
        raise ArchScaleError("resolution", f"{r} px is too small for this network's downsampling; "
                                           f"use at least {min_resolution(spec)} px") from None


def _count(spec: ArchSpec, resolution: int) -> Cx:
    cx = Cx(resolution, resolution)
    resnet_cx(cx, spec)
    return cx


def check_fits(spec: ArchSpec) -> None:
    """Refuse a network that cannot be built: ArchScaleError("resolution") naming the smallest
    resolution that fits when a strided layer would get fewer pixels than its stride, and
    ArchScaleError("cardinality") when a layer's groups do not divide its channels."""
    analytic_counts(spec)


def min_resolution(spec: ArchSpec, limit: int = 8192) -> int:
    """The smallest input resolution (px) this network's downsampling accepts (at most ``limit``)."""
    lo, hi = 1, 1
    while not _fits(spec, hi):
        lo, hi = hi, hi * 2
        if hi > limit:
            return limit
    while lo < hi:  # smallest r in (lo, hi] that fits
        mid = (lo + hi) // 2
        if _fits(spec, mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _fits(spec: ArchSpec, resolution: int) -> bool:
    try:
        _count(spec, resolution)
    except FeatureMapTooSmall:
        return False
    return True
