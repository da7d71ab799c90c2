"""search_spaces/strategies.py: the resnet_rs strategy follows the ResNet-RS family's rules."""
import math
from pathlib import Path

import pytest

from experiments.train.regimes import RS_CONFIGS
from scaling import ArchScaleError, get_preset
from scaling.analytic import analytic_counts
from search_spaces import parse_space, scale
from search_spaces.strategies import RS_LADDER, ladder_describe, ladder_layout, rs_resolution_exponent


def counts(spec):
    cx = analytic_counts(spec)
    return cx.flops, cx.params


def family():
    """(FLOPs, params) of the published ResNet-RS models (the official configs), by our counter."""
    return [counts(get_preset(f"resnetrs{d}").replace(resolution=r)) for d, r in RS_CONFIGS]


def family_params_at(flops):
    """The family's params at ``flops``: a least-squares power law through the published models."""
    pts = [(math.log(f), math.log(p)) for f, p in family()]
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return math.exp(my + b * (math.log(flops) - mx))


def test_the_depth_ladder_is_the_resnet_rs_familys():
    # tensorflow/tpu resnet_model.py model_params: 50 ... 420
    assert RS_LADDER == ((3, 4, 6, 3), (3, 4, 23, 3), (3, 8, 36, 3), (3, 24, 36, 3), (4, 29, 53, 4),
                         (4, 36, 72, 4), (4, 44, 87, 4))
    assert all(ladder_layout(i) == rung for i, rung in enumerate(RS_LADDER))
    assert ladder_layout(0.5) == (3, 4, 15, 3) and ladder_layout(6.5) == (4, 48, 95, 4)  # between; past 420
    steps = [ladder_layout(k / 10) for k in range(-20, 80)]
    assert all(all(b >= a for a, b in zip(x, y)) for x, y in zip(steps, steps[1:]))  # never shrinks a stage
    assert ladder_describe((4, 36, 72, 4)) == "RS-350's layout"
    assert "interpolated, ours" in ladder_describe((3, 4, 15, 3)) and "ours" in ladder_describe((4, 48, 94, 4))


def test_the_resolution_exponent_comes_from_the_published_family():
    alpha, where = rs_resolution_exponent()
    f50, f420 = counts(get_preset("resnetrs50"))[0], counts(get_preset("resnetrs420"))[0]
    assert get_preset("resnetrs50").resolution == 160 and get_preset("resnetrs420").resolution == 320
    assert alpha == pytest.approx(math.log(2) / math.log(f420 / f50)) and alpha == pytest.approx(0.208, abs=1e-3)
    assert "RS-50 at 160 px" in where and "RS-420 at 320 px" in where
    # labelled ours, and said to be EfficientNet's rate: it does not grow resolution more slowly
    assert where.startswith("ours, the paper gives none") and "log2(1.15) = 0.202" in where
    assert alpha == pytest.approx(math.log2(1.15), rel=0.04)


@pytest.mark.parametrize("multiplier", [2, 4, 8, 16])
def test_long_regime_scaling_lands_on_the_published_familys_params(multiplier):
    base = get_preset("resnetrs50")
    s = scale(base, "resnet_rs", multiplier, regime_epochs=350)
    flops, params = counts(s.spec)
    assert s.within_tolerance and s.spec.width_multiplier == 1.0
    assert abs(params / family_params_at(flops) - 1) < 0.15, (s.spec.layers, params / 1e6)
    assert s.spec.resolution == round(160 * multiplier ** rs_resolution_exponent()[0] / 8) * 8
    first, *middle, last = s.spec.layers  # depth grows in the middle stages, as the ladder does
    assert first <= 4 and last <= 4 and sum(middle) > 10


def test_uniform_depth_growth_would_miss_the_family_by_far():
    s = scale(get_preset("resnetrs50"), "depth", 16)
    flops, params = counts(s.spec)
    assert params / family_params_at(flops) > 1.5  # the issue's 321 M against RS-350's 164 M


@pytest.mark.parametrize("multiplier", [2, 4, 8, 16])
def test_short_regimes_grow_width_and_long_ones_depth(multiplier):
    base = get_preset("resnetrs50")
    short = scale(base, "resnet_rs", multiplier, regime_epochs=10)
    long = scale(base, "resnet_rs", multiplier, regime_epochs=350)
    assert short.within_tolerance and long.within_tolerance
    # rs-10: the growth after resolution goes to width, on the 1/16 step; depth moves by a block at
    # most, to land on the FLOP target the width step misses
    assert short.spec.width_multiplier > 1 and (short.spec.width_multiplier * 16).is_integer()
    assert sum(short.spec.layers) - sum(base.layers) <= 1
    # rs-350: width stays, depth grows along the ladder
    assert long.spec.width_multiplier == 1 and sum(long.spec.layers) > sum(base.layers)
    assert short.spec.resolution == long.spec.resolution and short.spec != long.spec
    middle = scale(base, "resnet_rs", 16, regime_epochs=100).spec
    assert 1 < middle.width_multiplier < scale(base, "resnet_rs", 16, regime_epochs=10).spec.width_multiplier


def test_the_training_length_is_required_and_our_rules_can_be_replaced():
    base = get_preset("resnetrs50")
    with pytest.raises(ArchScaleError) as e:
        scale(base, "resnet_rs", 4)
    assert e.value.field == "regimes"
    assert scale(base, "resnet_rs", 4, width_share=0).spec == scale(base, "resnet_rs", 4, regime_epochs=350).spec
    flat = scale(base, "resnet_rs", 4, regime_epochs=350, resolution_exponent=0).spec
    assert flat.resolution == 160 and "resolution_exponent given" in \
        scale(base, "resnet_rs", 4, regime_epochs=350, resolution_exponent=0).detail


def test_a_base_off_the_ladder_grows_by_its_ratios_and_other_bases_uniformly():
    s = scale(get_preset("resnet50").replace(depth=(2, 2, 2, 2)), "resnet_rs", 4, regime_epochs=350)
    assert s.within_tolerance and s.spec.layers[0] == 2 and s.spec.layers[2] > s.spec.layers[1]
    cifar = get_preset("resnext29_8x64d")
    c = scale(cifar, "resnet_rs", 2, regime_epochs=350)
    assert c.within_tolerance and len(set(c.spec.layers)) == 1


def test_a_scaling_space_makes_resnet_rs_configs_for_each_regime_length():
    space = parse_space({"base": "resnetrs50", "kind": "scaling", "strategies": ["depth", "resnet_rs"],
                         "multipliers": [4]})
    with pytest.raises(ArchScaleError, match="training length"):
        space.expand()
    e = space.expand(epochs=[10, 150, 350])  # 150 and 350 epochs are both long: one config for the two
    rs = [c for c in e.configs if c.tags["strategy"] == "resnet_rs"]
    assert sorted(c.tags["regime_epochs"] for c in rs) == [(10,), (150, 350)]
    assert all("regime_epochs" not in c.tags for c in e.configs if c.tags["strategy"] != "resnet_rs")
    for c in rs:
        assert c.spec == scale(space.base, "resnet_rs", 4, regime_epochs=c.tags["regime_epochs"][0]).spec
    pinned = parse_space({**space.raw, "regime_epochs": 350}).expand(epochs=[10])
    assert [c.tags.get("regime_epochs") for c in pinned.configs] == [None, None, (350,)]


def test_a_sweep_trains_each_resnet_rs_config_under_its_own_regime():
    from experiments.sweep.spec import load_sweep, make_plan

    spec = {"space": {"base": "resnetrs50", "kind": "scaling", "strategies": ["resnet_rs"], "multipliers": [4]},
            "regimes": ["rs-10", "rs-350"], "dataset": "synthetic", "output_dir": "unused"}
    trials, _ = make_plan(load_sweep(spec), strict_data=False)
    pairs = {(t["strategy"], t["regime"], t["name"]) for t in trials}
    assert len(trials) == 4 and "regime_epochs" not in trials[0]  # the base under both, each grown net once
    short = {n for s, r, n in pairs if s == "resnet_rs" and r == "rs-10"}
    long = {n for s, r, n in pairs if s == "resnet_rs" and r == "rs-350"}
    assert len(short) == len(long) == 1 and short != long
    with pytest.raises(ArchScaleError) as e:
        load_sweep({**spec, "space": {**spec["space"], "regime_epochs": 350}})
    assert e.value.field == "regime_epochs" and "rs-10" in e.value.message


def test_the_readmes_2x_example_rs10_wider_rs350_deeper():
    base = get_preset("resnetrs50")
    short, long = (scale(base, "resnet_rs", 2, regime_epochs=e).spec for e in (10, 350))
    assert (short.width_multiplier, short.layers) == (1.1875, (3, 4, 7, 3))
    assert (long.width_multiplier, long.layers) == (1.0, (3, 4, 15, 3))
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "width 1.1875, depths 3-4-7-3" in readme and "width 1, depths 3-4-15-3" in readme
