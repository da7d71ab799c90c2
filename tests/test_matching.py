import math

import pytest

from scaling import ArchScaleError, ArchSpec, get_preset
from scaling.analytic import analytic_counts
from search_spaces import STRATEGIES, match_flops, resolve_target, scale, scale_all


def flops(spec):
    return analytic_counts(spec).flops


def test_matcher_solves_the_resnext_paper_widths():
    r50 = get_preset("resnet50")
    assert match_flops(r50.replace(cardinality=32), "resnet50", "bottleneck_width").value == 4
    assert match_flops(r50.replace(cardinality=2), "resnet50", "bottleneck_width").value == 40
    r101 = get_preset("resnet101")
    assert match_flops(r101.replace(cardinality=8), "resnet101", "bottleneck_width").value == 14


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
    for s in scale_all(base, strategies=[strategy], multipliers=(2, 4, 8, 16)):
        assert s.within_tolerance, (s.strategy, s.multiplier, s.ratio)
        assert s.target == round(flops(base) * s.multiplier) and s.flops == flops(s.spec)


def test_strategies_change_only_their_dimension():
    base = get_preset("resnet50")
    assert scale(base, "depth", 4).spec.replace(depth=50) == base
    assert scale(base, "width", 4).spec.replace(width_multiplier=1.0) == base
    assert scale(base, "resolution", 4).spec.replace(resolution=224) == base
    card = scale(base.replace(cardinality=4, bottleneck_width=16), "cardinality", 4).spec
    assert card.bottleneck_width == 16 and card.cardinality > 4


def test_compound_follows_efficientnet_exponents_and_resnet_rs_grows_resolution_slower():
    base = get_preset("resnet50")
    c = scale(base, "compound", 8).spec
    phi_w = math.log(c.width_multiplier) / math.log(1.1)
    phi_r = math.log(c.resolution / 224) / math.log(1.15)
    assert abs(phi_w - phi_r) < 1.0  # the same phi drives width and resolution (up to quantisation)
    rs = scale(base, "resnet_rs", 8, regime_epochs=350).spec
    assert rs.resolution < c.resolution and rs.width_multiplier == 1.0 and sum(rs.layers) > sum(base.layers)
    short = scale(base, "resnet_rs", 8, regime_epochs=10).spec
    assert short.layers == base.layers and short.width_multiplier > 1.0


def test_cardinality_scaling_needs_bottlenecks():
    with pytest.raises(ArchScaleError, match="bottleneck"):
        scale(get_preset("resnet18"), "cardinality", 2)


def test_small_cifar_base_scales_too():
    base = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, resolution=16)
    for s in scale_all(base, strategies=["depth", "width", "resolution", "compound"], multipliers=(2, 4)):
        assert s.within_tolerance, (s.strategy, s.multiplier, s.ratio)
