import inspect
import random

import pytest
from conftest import random_spec

from scaling import (
    PRESETS,
    ArchScaleError,
    ArchSpec,
    analytic_counts,
    build_model,
    check_fits,
    complexity,
    get_preset,
    min_resolution,
)
from scaling.counting import fvcore_counts

HEAVY = {"resnetrs270", "resnetrs350", "resnetrs420", "wide_resnet101_2"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in PRESETS])
def test_analytic_equals_fvcore_for_every_preset(name):
    spec = get_preset(name)
    cx = analytic_counts(spec)
    assert (cx.params, cx.flops, cx.acts) == fvcore_counts(spec)


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_analytic_equals_fvcore_for_heavy_presets_at_low_resolution(name):
    spec = get_preset(name).replace(resolution=64)
    cx = analytic_counts(spec)
    assert (cx.params, cx.flops, cx.acts) == fvcore_counts(spec)


def test_analytic_equals_fvcore_for_random_specs():
    rng = random.Random(2024)
    for _ in range(40):
        spec = random_spec(rng)
        cx = analytic_counts(spec)
        assert (cx.params, cx.flops, cx.acts) == fvcore_counts(spec), spec


def test_counts_agree_with_torchvision_published_gflops():
    # torchvision's model cards: GFLOPS counts convs and the classifier (multiply-adds), not BN.
    published = {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "resnet152": 11.51,
                 "resnext50_32x4d": 4.23, "resnext101_32x8d": 16.41, "resnext101_64x4d": 15.46,
                 "wide_resnet50_2": 11.40, "wide_resnet101_2": 22.75}
    for name, gflops in published.items():
        c = complexity(get_preset(name), counter="analytic")
        assert c.flops / 1e9 == pytest.approx(gflops, rel=0.01), name  # ours adds BN's ~0.5%


def test_resnet_rs_flops_match_the_paper_at_twice_multiply_adds():
    # ResNet-RS paper, Table 7 (FLOPs = 2 x multiply-adds): RS-50@160 4.6 B, RS-420@320 128 B.
    assert 2 * complexity(get_preset("resnetrs50"), counter="analytic").flops / 1e9 == pytest.approx(4.6, rel=0.01)
    assert 2 * complexity(get_preset("resnetrs420"), counter="analytic").flops / 1e9 == pytest.approx(128, rel=0.01)


def test_resnext_cifar_params_match_the_paper():
    assert complexity(get_preset("resnext29_8x64d"), counter="analytic").params / 1e6 == pytest.approx(34.4, abs=0.05)
    assert complexity(get_preset("resnext29_16x64d"), counter="analytic").params / 1e6 == pytest.approx(68.1, abs=0.1)


def test_resolution_override_and_counter_names():
    spec = get_preset("resnet50")
    a = complexity(spec, resolution=160, counter="analytic")
    f = complexity(spec, resolution=160)
    assert a.resolution == f.resolution == 160
    assert (a.counter, f.counter) == ("analytic", "fvcore")
    assert (a.params, a.flops, a.activations) == (f.params, f.flops, f.activations)
    assert a.flops < complexity(spec, counter="analytic").flops


def test_unknown_counter_is_a_user_error():
    with pytest.raises(ArchScaleError, match="counter"):
        complexity(get_preset("resnet18"), counter="ptflops")


def test_too_small_input_is_refused_by_the_counters_and_build_model_not_by_the_spec():
    spec = get_preset("resnet50")
    need = min_resolution(spec)
    small = spec.replace(resolution=need - 1)  # a spec is plain data: it is made
    message = f"resolution: {need - 1} px is too small for this network's downsampling; use at least {need} px"
    for refuse in (check_fits, analytic_counts, build_model, complexity, lambda s: complexity(s, counter="analytic"),
                   lambda s: complexity(spec, resolution=need - 1, counter="analytic")):
        with pytest.raises(ArchScaleError) as e:
            refuse(small)
        assert str(e.value) == message and e.value.field == "resolution"
    check_fits(spec.replace(resolution=need))
    assert min_resolution(get_preset("resnext29_8x64d")) == 3  # 3 -> 2 -> 1 px through two stride-2 stages


def test_groups_that_do_not_divide_are_refused_when_counted():
    spec = ArchSpec(cardinality=3, bottleneck_width=16, radix=2)  # split attention's 48-wide FC in 3 groups
    for refuse in (check_fits, build_model):
        with pytest.raises(ArchScaleError, match="3 groups do not divide") as e:
            refuse(spec)
        assert e.value.field == "cardinality"


def test_each_closed_form_takes_its_modules_arguments():
    from scaling import analytic, attention, blocks, cx, layers, model
    from scaling.block_kinds import block_kinds

    pairs = [(layers.ConvBnAct, cx.conv_bn_act_cx), (attention.SqueezeExcite, analytic.squeeze_excite_cx),
             (attention.SplitAttn, analytic.split_attn_cx),
             (attention.SelectiveKernelAttn, analytic.selective_kernel_attn_cx),
             (attention.SelectiveKernel, analytic.selective_kernel_cx), (blocks.make_shortcut, analytic.shortcut_cx),
             *((kind.module_class(), kind.closed_form) for kind in block_kinds().values()),
             (model.stem_conv, analytic.stem_conv_cx),
             (model.stem_pool, analytic.stem_pool_cx), (model.ResNet, analytic.resnet_cx)]
    for module, closed_form in pairs:
        ours = list(inspect.signature(closed_form).parameters.values())[1:]  # after cx
        theirs = list(inspect.signature(module).parameters.values())
        assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs], module
    assert {k.module_class() for k in block_kinds().values()} == {blocks.BasicBlock, blocks.Bottleneck,
                                                                  blocks.SKBottleneck}
