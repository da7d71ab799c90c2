import re

import pytest

from scaling import ArchScaleError, get_preset
from scaling.analytic import analytic_counts
from scaling.conventions import DATASET_TRAIN_SIZES, TRAIN_FLOPS_PER_FORWARD
from search_spaces import load_space, parse_space, price, space_presets

SMALL = {"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar", "stem_width": 8,
         "num_classes": 10, "resolution": 16}


def test_grid_is_the_product_of_axes_with_stable_readable_names():
    e = parse_space({"base": "resnet50", "axes": {"depth": [50, 101], "width_multiplier": [0.5, 1.0, 1.5],
                                                   "resolution": [160, 224]}}).expand()
    assert len(e.configs) == 12 and not e.dropped and e.duplicates == 0
    names = [c.name for c in e.configs]
    assert "d101-w1.5-c1x64-r224" in names and len(set(names)) == 12
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names)
    again = parse_space({"base": "resnet50", "axes": {"depth": [50, 101], "width_multiplier": [0.5, 1.0, 1.5],
                                                       "resolution": [160, 224]}}).expand()
    assert [c.name for c in again.configs] == names


def test_other_varied_fields_are_tagged_in_names():
    e = parse_space({"base": "resnet50", "axes": {"se_ratio": [0.0, 0.25], "stem": ["imagenet", "deep"]}}).expand()
    assert {c.name for c in e.configs} == {"d50-w1-c1x64-r224-se0-stemimagenet", "d50-w1-c1x64-r224-se0.25-stemimagenet",
                                          "d50-w1-c1x64-r224-se0-stemdeep", "d50-w1-c1x64-r224-se0.25-stemdeep"}
    e = parse_space({"base": "resnext50_32x4d", "axes": {"block_form": ["grouped", "concat"], "shortcut": [True, False],
                                                         "sk_paths": [0, 2]}}).expand()
    names = {c.name for c in e.configs}
    assert "d50-w1-c32x4-r224-concat-sc0-sk0" in names and "d50-w1-c32x4-r224-grouped-sc1-sk2" in names


def test_per_stage_depth_lists_are_axis_values():
    e = parse_space({"base": SMALL, "axes": {"depth": [[1, 1, 1], [2, 1, 1], 14]}}).expand()
    assert [c.spec.layers for c in e.configs] == [(1, 1, 1), (2, 1, 1), (2, 2, 2)]
    assert e.configs[1].name.startswith("d2_1_1-")


def test_paired_axes_move_together_and_cross_the_rest():
    e = parse_space({"base": "resnet50", "axes": {"resolution": [160, 224]},
                     "paired": [{"cardinality": [1, 2, 32], "bottleneck_width": [64, 40, 4]}]}).expand()
    pairs = {(c.spec.cardinality, c.spec.bottleneck_width) for c in e.configs}
    assert pairs == {(1, 64), (2, 40), (32, 4)} and len(e.configs) == 6


def test_invalid_configs_are_dropped_with_counted_reasons():
    e = parse_space({"base": "resnet18", "axes": {"cardinality": [1, 2, 4], "resolution": [8, 224]}}).expand()
    assert len(e.configs) == 1  # basic blocks take cardinality 1 only; 8 px is too small
    assert e.dropped["cardinality"][0] == 4 and e.dropped["resolution"][0] == 1
    assert "5 dropped" in e.summary() and "basic blocks" in e.summary()


def test_duplicates_are_removed():
    e = parse_space({"base": "resnet50", "axes": {"depth": [50, [3, 4, 6, 3]]}}).expand()
    assert len(e.configs) == 2  # a list and a name are different specs, kept apart
    e = parse_space({"base": "resnet50", "axes": {"stem_pool": ["auto", "max"]}}).expand()
    assert len(e.configs) == 1 and e.duplicates == 1  # auto resolves to max: the same network


def test_constraints_drop_configs_outside_the_budget():
    space = {"base": "resnet50", "axes": {"width_multiplier": [0.25, 0.5, 1.0, 2.0]},
             "constraints": {"min_flops": "0.5G", "max_params": "50M"}}
    e = parse_space(space).expand()
    assert [c.spec.width_multiplier for c in e.configs] == [0.5, 1.0]
    assert e.dropped["constraints.min_flops"][0] == 1 and e.dropped["constraints.max_params"][0] == 1
    for c in e.configs:
        cx = analytic_counts(c.spec)
        assert cx.flops >= 0.5e9 and cx.params <= 50e6


def _random(seed):
    return parse_space({"base": SMALL, "kind": "random", "samples": 15, "seed": seed, "axes": {
        "width_multiplier": {"low": 0.5, "high": 4.0, "dist": "log_uniform", "step": 0.25},
        "stem_width": {"low": 4, "high": 32, "dist": "pow2"},
        "resolution": {"low": 16, "high": 48, "dist": "uniform", "step": 8},
        "depth": [8, 14, 20]}}).expand()


def test_random_sampling_is_reproducible_and_respects_distributions():
    a, b, c = _random(0), _random(0), _random(1)
    assert [x.spec for x in a.configs] == [x.spec for x in b.configs]
    assert [x.spec for x in a.configs] != [x.spec for x in c.configs]
    assert len(a.configs) == 15 and len({x.spec for x in a.configs}) == 15
    for x in a.configs:
        s = x.spec
        assert 0.5 <= s.width_multiplier <= 4.0 and (s.width_multiplier / 0.25).is_integer()
        assert s.stem_width in (4, 8, 16, 32)
        assert s.resolution in (16, 24, 32, 40, 48) and isinstance(s.resolution, int)
    assert "asked" not in a.summary()
    small = parse_space({"base": SMALL, "kind": "random", "samples": 10, "axes": {"depth": [8, 14]}}).expand()
    assert len(small.configs) == 2 and small.summary().startswith("2 configs (of 10 samples asked")


def test_equal_complexity_preset_is_resnext_table_2():
    e = load_space("resnext_equal_complexity").expand()
    got = {(c.spec.depth, c.spec.cardinality): c.spec.bottleneck_width for c in e.configs}
    # The ResNeXt paper's Table 2 widths, 1x64d, 2x40d, 4x24d, 8x14d, 32x4d, on both templates: its rule
    # holds the conv2-stage block's parameters (match: {by: block})
    assert got == {(depth, c): d for depth in (50, 101) for c, d in ((1, 64), (2, 40), (4, 24), (8, 14), (32, 4))}
    assert e.space.match["by"] == "block"
    for c in e.configs:
        template = get_preset("resnet50" if c.spec.depth == 50 else "resnet101")
        assert c.tags["group"] == template.slug() and c.tags["match_by"] == "block"
        flops = analytic_counts(c.spec).flops / analytic_counts(template).flops
        assert abs(flops - 1) < 0.05 and c.tags["flop_ratio"] == pytest.approx(flops, abs=1e-4)


def test_match_by_flops_stays_the_default():
    e = parse_space({"base": "resnet50", "axes": {"cardinality": [8]},
                     "match": {"solve": "bottleneck_width", "target": "resnet50"}}).expand()
    assert e.configs[0].spec.bottleneck_width == 13 and e.configs[0].tags["match_by"] == "flops"
    with pytest.raises(ArchScaleError) as err:
        parse_space({"base": "resnet50", "axes": {"cardinality": [8]},
                     "match": {"by": "blocks", "solve": "bottleneck_width", "target": "resnet50"}})
    assert err.value.field == "match.by" and "did you mean 'block'" in str(err.value)


def test_resnext_table_4_at_twice_the_complexity():
    e = load_space("resnext_2x_complexity").expand()
    got = [(c.spec.depth, c.spec.cardinality, c.spec.bottleneck_width) for c in e.configs]
    assert got == [(200, 1, 64), (101, 1, 100), (101, 2, 64), (101, 64, 4)]  # Xie et al. 2017, Table 4
    r101 = analytic_counts(get_preset("resnet101")).flops
    assert all(1.9 < analytic_counts(c.spec).flops / r101 < 2.0 for c in e.configs)
    assert e.configs[3].spec == get_preset("resnext101_64x4d")


def test_the_residual_ablation_is_the_same_networks_with_and_without_shortcuts():
    e = load_space("residual_ablation").expand()
    specs = {(c.spec.cardinality, c.spec.shortcut): c.spec for c in e.configs}
    assert set(specs) == {(1, True), (1, False), (32, True), (32, False)}
    assert specs[(1, True)] == get_preset("resnet50") and specs[(32, True)] == get_preset("resnext50_32x4d")
    for c in (1, 32):
        plain, residual = analytic_counts(specs[(c, False)]), analytic_counts(specs[(c, True)])
        assert specs[(c, False)].replace(shortcut=True) == specs[(c, True)]
        assert 0.85 < plain.params / residual.params < 1  # only the four projection shortcuts go
    assert len({c.name for c in e.configs}) == 4 and all("sc" in c.name for c in e.configs)


def test_presets_expand():
    assert set(space_presets()) >= {"resnet_rs", "resnext_equal_complexity", "resnext_cifar",
                                    "resnext_2x_complexity", "residual_ablation"}
    rs = load_space("resnet_rs").expand()
    assert len(rs.configs) == 175
    assert {c.spec.width_multiplier for c in rs.configs} == {0.25, 0.5, 1.0, 1.5, 2.0}
    assert {c.spec.depth for c in rs.configs} == {26, 50, 101, 200, 300, 350, 400}
    assert {c.spec.resolution for c in rs.configs} == {128, 160, 224, 320, 448}
    assert all(c.spec.se_ratio == 0.25 and c.spec.downsample == "d" for c in rs.configs)
    cifar = load_space("resnext_cifar").expand()
    assert len(cifar.configs) == 10 and all(c.spec.resolution == 32 for c in cifar.configs)
    assert cifar.space.dataset_size == DATASET_TRAIN_SIZES["cifar10"]  # named, not copied, in the preset


def test_scaling_space_tags_strategy_and_multiplier():
    e = parse_space({"base": "resnet50", "kind": "scaling", "strategies": ["depth", "width"],
                     "multipliers": [2, 4]}).expand()
    assert len(e.configs) == 5
    assert e.configs[0].tags["strategy"] == "base"
    assert {(c.tags["strategy"], c.tags["flop_multiplier"]) for c in e.configs[1:]} == {
        ("depth", 2.0), ("depth", 4.0), ("width", 2.0), ("width", 4.0)}


def test_scaling_space_drops_and_counts_unreachable_multipliers():
    # At 24 px, resnet_rs's first step (0.01x FLOPs -> 12 px) is too small for ResNet-18's stem.
    space = parse_space({"base": {"preset": "resnet18", "resolution": 24}, "kind": "scaling",
                         "strategies": ["resnet_rs", "cardinality"], "multipliers": [0.01, 2]})
    points = list(space._points((350,)))
    assert not any(isinstance(x, BaseException) for p in points for x in (p if isinstance(p, tuple) else (p,)))
    e = space.expand(epochs=[350])
    assert [(c.tags["strategy"], c.tags["flop_multiplier"]) for c in e.configs] == [("base", 1.0), ("resnet_rs", 2.0)]
    assert e.dropped["multipliers"] == (1, "resnet_rs scaling cannot reach 0.01x the FLOPs of d18-w1-r24")
    assert e.dropped["strategies"][0] == 2 and "bottleneck" in e.dropped["strategies"][1]
    assert "3 dropped: 1 by multipliers" in e.summary()


def test_expansion_checks_that_each_config_fits_its_resolution():
    # Specs do not check the feature map on construction; expansion drops what does not fit.
    e = parse_space({"base": "resnet18", "axes": {"resolution": [8, 224]}}).expand()
    assert [c.spec.resolution for c in e.configs] == [224]
    assert e.dropped["resolution"][0] == 1 and "use at least" in e.dropped["resolution"][1]
    with pytest.raises(ArchScaleError, match="2 dropped: 2 by resolution .*use at least"):
        parse_space({"base": "resnet18", "axes": {"depth": [18, 34]},
                     "match": {"solve": "width_multiplier", "target_from": {"resolution": 8}}}).expand()


def test_price_training_cost_formula():
    e = parse_space({"base": "resnet50", "axes": {"resolution": [160, 224]}}).expand()
    df = price(e.configs, regimes={"rs-10": 10, "rs-350": 350}, dataset_size=1000, train_flops_per_s=1e12)
    for _, row in df.iterrows():
        assert row["train_flops_rs-10"] == TRAIN_FLOPS_PER_FORWARD * row["flops"] * 1000 * 10
        assert row["est_hours_rs-350"] == pytest.approx(row["train_flops_rs-350"] / 1e12 / 3600)


def test_empty_space_after_constraints_is_an_error():
    with pytest.raises(ArchScaleError, match="empty after validation and constraints.*max_params") as e:
        parse_space({"base": "resnet50", "axes": {"depth": [50, 101]}, "constraints": {"max_params": "1M"}}).expand()
    assert e.value.field == "space"


def test_expanding_and_pricing_a_space_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys\n"
            "from search_spaces import load_space, price\n"
            "for name in ('resnet_rs', 'resnext_equal_complexity', 'resnext_cifar'):\n"
            "    e = load_space(name).expand()\n"
            "    price(e.configs, regimes={'rs-10': 10}, dataset_size=1000)\n"
            "e = load_space({'base': 'resnet50', 'kind': 'scaling', 'multipliers': [2],\n"
            "                'constraints': {'max_flops': '100G'}}).expand(epochs=[10, 350])\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'fvcore'))\n"
            "assert not loaded, loaded\n"
            "print(len(e.configs))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
