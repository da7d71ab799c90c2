"""experiments/train/sources.py: every regime value has a source, and the per-model values are the official configs'."""
import json
from pathlib import Path

import pytest

from experiments.train.regimes import REGIMES, RS_CONFIGS, get_regime, regime_from, size_table
from experiments.train.sources import (
    KINDS,
    OFFICIAL,
    OURS,
    OVERRIDE,
    PAPER,
    regime_fields,
    regime_sources,
    rs_config_rows,
    sources_markdown,
)
from scaling import get_preset

README = Path(__file__).resolve().parents[1] / "README.md"


def by_field(rows):
    return {r["field"]: r for r in rows}


@pytest.mark.parametrize("name", list(REGIMES))
def test_every_field_of_every_regime_has_a_source(name):
    rows = regime_sources(REGIMES[name], get_preset("resnetrs350"))
    assert [r["field"] for r in rows][:len(regime_fields())] == regime_fields()
    for r in rows:
        assert r["source"] in KINDS and r["source"] != OVERRIDE and len(r["where"]) > 10, r


def test_the_350_epoch_recipe_is_the_papers_and_official_configs():
    rows = by_field(regime_sources(get_regime("rs-350"), get_preset("resnetrs350")))
    assert {k for k, r in rows.items() if r["source"] not in (PAPER, OFFICIAL)} == {"step_epochs", "step_gamma",
                                                                                    "regularization_by_length"}
    assert rows["regularization_by_length"]["value"] is False and rows["regularization_by_length"]["source"] == OURS
    assert rows["schedule"]["source"] == PAPER and "section 4.2" in rows["schedule"]["where"]
    assert "resnet_main.py" in rows["weight_decay_on"]["where"] and rows["weight_decay_on"]["value"] == "all_but_bn"
    for key in ("effective_dropout", "effective_stochastic_depth", "effective_randaugment_magnitude"):
        assert rows[key]["source"] == OFFICIAL and "resnetrs350_i320.yaml" in rows[key]["where"]
    assert (rows["effective_dropout"]["value"], rows["effective_stochastic_depth"]["value"],
            rows["effective_randaugment_magnitude"]["value"]) == (0.4, 0.1, 15)
    assert rows["zero_init_residual"] == {"field": "zero_init_residual", "value": True, "source": OFFICIAL,
                                          "where": rows["zero_init_residual"]["where"]}
    assert "init_zero=True" in rows["zero_init_residual"]["where"]


def test_our_choices_are_labelled_and_one_field_restores_the_official_values():
    for name, ours in (("rs-100", {"warmup_epochs", "regularization_scale", "regularization_by_length"}),
                       ("rs-10", {"warmup_epochs", "regularization_scale", "regularization_by_length"})):
        rows = by_field(regime_sources(get_regime(name)))
        assert {k for k, r in rows.items() if r["source"] == OURS} == ours, name
        assert "restores the official" in rows["regularization_scale"]["where"]
    big = get_preset("resnetrs350")
    assert get_regime("rs-10", regularization_scale=1).regularization(big) == \
        get_regime("rs-350").regularization(big)
    effective = by_field(regime_sources(get_regime("rs-10"), big))["effective_dropout"]
    assert effective["source"] == OURS and "regularization_scale 0" in effective["where"]


@pytest.mark.parametrize("row", rs_config_rows(), ids=[r["config"] for r in rs_config_rows()])
def test_each_official_config_gets_its_own_settings(row):
    spec = get_preset(f"resnetrs{row['depth']}").replace(resolution=row["resolution"])
    reg = get_regime("rs-350").regularization(spec)
    assert (reg["dropout"], reg["stochastic_depth"], reg["randaugment_magnitude"]) == \
        (row["dropout"], row["stochastic_depth"], row["randaugment_magnitude"])
    where = by_field(regime_sources(get_regime("rs-350"), spec))["effective_dropout"]["where"]
    assert row["config"] in where


def test_the_official_configs_as_published():
    # tensorflow/tpu models/official/resnet/resnet_rs/configs/*.yaml (dropout_rate, drop_connect_rate, randaug_magnitude)
    assert RS_CONFIGS[(50, 160)] == RS_CONFIGS[(101, 160)] == (0.25, 0.0, 10)
    assert RS_CONFIGS[(101, 192)] == RS_CONFIGS[(152, 256)] == (0.25, 0.0, 15)
    assert RS_CONFIGS[(200, 256)] == RS_CONFIGS[(350, 256)] == (0.25, 0.1, 15)
    assert RS_CONFIGS[(350, 320)] == RS_CONFIGS[(420, 320)] == (0.4, 0.1, 15)
    bounds = [b for b, _ in size_table()]
    assert bounds[:3] == pytest.approx([5.04e9, 17.76e9, 43.18e9], rel=1e-3) and bounds == sorted(bounds)


def test_a_network_between_the_configs_takes_the_settings_of_its_size_labelled_ours():
    wide = get_preset("resnetrs50").replace(width_multiplier=2.0)  # 4x the FLOPs of RS-50 @160: 9.1 G
    rows = by_field(regime_sources(get_regime("rs-350"), wide))
    assert rows["effective_randaugment_magnitude"]["value"] == 15
    assert rows["effective_dropout"]["source"] == OURS and "not an official config" in rows["effective_dropout"]["where"]


def test_overrides_and_derived_regimes_say_so():
    rows = by_field(regime_sources(get_regime("rs-350", epochs=35, weight_decay=1e-4)))
    assert rows["epochs"]["source"] == OVERRIDE and "rs-350 has 350" in rows["epochs"]["where"]
    assert rows["weight_decay"]["source"] == OVERRIDE and rows["momentum"]["source"] == OFFICIAL
    derived = regime_from({"name": "my-recipe", "base": "classic-90", "epochs": 120, "weight_decay": 5e-5})
    rows = by_field(regime_sources(derived))
    assert derived.base == "classic-90" and rows["weight_decay"]["source"] == OVERRIDE
    assert "torchvision" in rows["momentum"]["where"]
    assert by_field(regime_sources(get_regime("classic-90"), get_preset("resnet50")))["zero_init_residual"]["value"] is False


def test_show_regime_prints_every_value_with_its_source(capsys):
    from experiments.cli import main

    assert main(["train", "--show-regime", "rs-350", "--preset", "resnetrs350"]) == 0
    out = capsys.readouterr().out
    for field in regime_fields() + ["lr", "effective_dropout", "zero_init_residual"]:
        assert f"  {field} " in out
    assert "official config: tensorflow/tpu resnet_main.py" in out
    assert main(["train", "--show-regime", "rs-10", "--preset", "resnetrs350", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["regime"] == "rs-10" and doc["spec"] == "resnetrs350"
    assert by_field(doc["rows"])["regularization_scale"]["source"] == OURS


def test_readme_shows_the_same_recipe_table():
    table = sources_markdown(regime_sources(get_regime("rs-350"), get_preset("resnetrs350")))
    assert table in README.read_text()


def test_the_sweep_manifest_records_the_sources():
    from experiments.sweep.spec import load_sweep, make_plan, manifest

    sweep = load_sweep({"space": {"base": {"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar",
                                           "resolution": 16}, "axes": {"width_multiplier": [1.0]}},
                        "regimes": [{"name": "rs-10", "epochs": 2}], "output_dir": "unused"})
    trials, expansion = make_plan(sweep, strict_data=False)
    rows = by_field(manifest(sweep, expansion, len(trials))["regime_sources"]["rs-10"])
    assert rows["epochs"]["value"] == 2 and rows["epochs"]["source"] == OVERRIDE
