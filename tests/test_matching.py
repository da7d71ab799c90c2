import math

import pytest

from scaling import ArchScaleError, ArchSpec, get_preset
from scaling.analytic import analytic_counts
from search_spaces import STRATEGIES, block_params, match, match_flops, resolve_target, scale, scale_all


def flops(spec):
    return analytic_counts(spec).flops


def test_matcher_solves_the_resnext_paper_widths():
    r50 = get_preset("resnet50")
    assert match_flops(r50.replace(cardinality=32), "resnet50", "bottleneck_width").value == 4
    assert match_flops(r50.replace(cardinality=2), "resnet50", "bottleneck_width").value == 40
    r101 = get_preset("resnet101")
    assert match_flops(r101.replace(cardinality=8), "resnet101", "bottleneck_width").value == 14


TABLE_2 = {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}  # ResNeXt paper, Table 2: C x d on both templates


@pytest.mark.parametrize("template", ["resnet50", "resnet101"])
def test_the_block_rule_reproduces_resnext_table_2(template):
    base = get_preset(template)
    got = {c: match(base.replace(cardinality=c), template, "bottleneck_width", by="block").value for c in TABLE_2}
    assert got == TABLE_2


def test_block_params_are_the_papers_conv2_stage_block():
    # C x (256d + 9d^2 + 256d) for the convs (69,632 for 1x64d) plus the three BNs' 2 x (d + d + 256) per group
    for c, d in TABLE_2.items():
        convs = c * (256 * d + 9 * d * d + d * 256)
        assert block_params(get_preset("resnet50").replace(cardinality=c, bottleneck_width=d)) == \
            convs + 2 * (2 * c * d + 256)
    assert block_params(get_preset("resnet50")) == block_params(get_preset("resnet101")) == 70_400
    # whole-network FLOPs pick 8x13d on ResNet-50 instead: the rule matters
    assert match_flops(get_preset("resnet50").replace(cardinality=8), "resnet50", "bottleneck_width").value == 13


def test_match_by_params_and_numbers_in_each_unit():
    base, wide = get_preset("resnet50"), get_preset("wide_resnet50_2")
    r = match(base, "wide_resnet50_2", "width_multiplier", by="params")
    assert r.by == "params" and abs(r.ratio - 1) < 0.05 and r.achieved == analytic_counts(r.spec).params
    assert abs(analytic_counts(r.spec).params / analytic_counts(wide).params - 1) < 0.05
    assert resolve_target("70.4K", "block") == (70_400, "0.0704M block params")
    with pytest.raises(ArchScaleError) as e:
        match(base, "wide_resnet50_2", "resolution", by="block")
    assert "do not change with resolution" in e.value.message
    with pytest.raises(ArchScaleError, match="match rule"):
        match(base, "resnet50", "bottleneck_width", by="activations")


def test_matcher_picks_the_nearest_value_on_the_step_grid():
    base = get_preset("resnet50")
    target = flops(get_preset("wide_resnet50_2"))
    r = match_flops(base, target, "width_multiplier")
    assert (r.value * 16).is_integer()
    below, above = r.value - 1 / 16, r.value + 1 / 16
    for other in (below, above):
        assert abs(math.log(flops(base.replace(width_multiplier=other)) / target)) >= abs(math.log(r.ratio))
    res = match_flops(base, 2 * flops(base), "resolution", step=32)
    assert res.value % 32 == 0 and abs(res.ratio - 1) < 0.1


def test_matcher_depth_uses_named_depths():
    r = match_flops(get_preset("resnet50"), "resnet152", "depth")
    assert r.value == 152 and r.ratio == 1.0
    r = match_flops(get_preset("resnet50"), flops(get_preset("resnet101")) * 1.1, "depth")
    assert r.value in (101, 152)


def test_target_forms():
    f50 = flops(get_preset("resnet50"))
    assert resolve_target("resnet50") == (f50, "resnet50")
    assert resolve_target("4.1G")[0] == 4_100_000_000
    assert resolve_target({"preset": "resnet50"})[0] == f50
    assert resolve_target(get_preset("resnet50"))[0] == f50


def test_unreachable_target_is_a_one_line_error():
    with pytest.raises(ArchScaleError) as e:
        match_flops(get_preset("resnet50"), "1K", "bottleneck_width")
    assert e.value.field == "target" and "out of reach" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ArchScaleError, match="cannot solve"):
        match_flops(get_preset("resnet50"), "resnet101", "colour")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_lands_within_tolerance_of_each_target(strategy):
    base = get_preset("resnet50")
    for s in scale_all(base, strategies=[strategy], multipliers=(2, 4, 8, 16), regime_epochs=100):
        assert s.within_tolerance, (s.strategy, s.multiplier, s.ratio)
        assert s.target == round(flops(base) * s.multiplier) and s.flops == flops(s.spec)


def test_strategies_change_only_their_dimension():
    base = get_preset("resnet50")
    assert scale(base, "depth", 4).spec.replace(depth=50) == base
    assert scale(base, "width", 4).spec.replace(width_multiplier=1.0) == base
    assert scale(base, "resolution", 4).spec.replace(resolution=224) == base
    card = scale(base.replace(cardinality=4, bottleneck_width=16), "cardinality", 4).spec
    assert card.bottleneck_width == 16 and card.cardinality > 4


def test_compound_follows_efficientnet_exponents_and_resnet_rs_the_published_family():
    base = get_preset("resnet50")
    c = scale(base, "compound", 8).spec
    phi_w = math.log(c.width_multiplier) / math.log(1.1)
    phi_r = math.log(c.resolution / 224) / math.log(1.15)
    assert abs(phi_w - phi_r) < 1.0  # the same phi drives width and resolution (up to quantisation)
    rs = scale(base, "resnet_rs", 8, regime_epochs=350).spec
    assert rs.width_multiplier == 1.0 and sum(rs.layers) > sum(base.layers)
    # per FLOP multiple the ResNet-RS family's resolution exponent (0.208) is EfficientNet's (log 1.15 / log 2)
    assert abs(rs.resolution - c.resolution) <= 16
    short = scale(base, "resnet_rs", 8, regime_epochs=10).spec
    # at 10 epochs the FLOPs go to width (on the strategy's 1/16 step), not depth, at the same resolution
    assert short.width_multiplier > 1.5 and (short.width_multiplier * 16).is_integer()
    assert short.layers == base.layers and short.resolution == rs.resolution


def test_cardinality_scaling_needs_bottlenecks():
    with pytest.raises(ArchScaleError, match="bottleneck"):
        scale(get_preset("resnet18"), "cardinality", 2)


def test_small_cifar_base_scales_too():
    base = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, resolution=16)
    for s in scale_all(base, strategies=["depth", "width", "resolution", "compound"], multipliers=(2, 4)):
        assert s.within_tolerance, (s.strategy, s.multiplier, s.ratio)
