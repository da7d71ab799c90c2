"""Honest short regimes: a regime shortened more than 4x warns (train, sweep, its dry run, the manifest the
report reads), ``regularization_by_length`` scales regularization and the EMA with the length, and only
values the user set read "override"."""
import json
import math
from pathlib import Path

import pytest
import yaml
from sweep_helpers import tiny_sweep

from experiments.cli import main
from experiments.train.regimes import SHORTENING_WARNING, get_regime, regime_from, shortening_warning
from experiments.train.sources import OVERRIDE, regime_sources, source_of
from scaling import get_preset


def test_shortening_a_regime_more_than_4x_warns_naming_what_stays_and_what_fits():
    line = shortening_warning(get_regime("rs-350", epochs=8))
    assert line.startswith("regime rs-350 trains 8 of rs-350's 350 epochs (44x shorter) keeping what was tuned "
                           "for 350: dropout, stochastic depth and RandAugment at regularization_scale 1, EMA 0.9999")
    assert "the shorter regime that fits is rs-10 (10 epochs)" in line and "regularization_by_length: true" in line
    assert "\n" not in line
    assert "the shorter regime that fits is rs-10" in shortening_warning(get_regime("rs-100", epochs=20))
    assert shortening_warning(get_regime("rs-350", epochs=350 // SHORTENING_WARNING + 1)) is None  # under 4x
    assert shortening_warning(get_regime("rs-10")) is None and shortening_warning(get_regime("rs-350")) is None
    classic = shortening_warning(get_regime("classic-90", epochs=10))
    assert "no shorter named regime" in classic and "regularization_by_length" not in classic  # nothing to scale


def test_regularization_by_length_scales_the_effective_values_and_says_it_is_ours():
    spec = get_preset("resnetrs350").replace(resolution=320)
    full = get_regime("rs-350", epochs=8)
    scaled = regime_from({"name": "rs-350", "epochs": 8, "regularization_by_length": True})
    assert full.regularization(spec) == {"dropout": 0.4, "stochastic_depth": 0.1, "randaugment_layers": 2,
                                         "randaugment_magnitude": 15.0}
    factor = 8 / 350
    assert scaled.length_factor == pytest.approx(factor)
    reg = scaled.regularization(spec)
    assert reg["dropout"] == round(0.4 * factor, 4) and reg["stochastic_depth"] == round(0.1 * factor, 4)
    assert reg["randaugment_magnitude"] == round(15 * factor, 4)
    # the EMA's horizon, 1 / (1 - decay) = 10,000 steps, shrinks by the same factor: 228.6 steps
    assert 1 / (1 - scaled.effective_ema_decay) == pytest.approx(10_000 * factor)
    assert full.effective_ema_decay == 0.9999 and get_regime("rs-350").replace(
        regularization_by_length=True).effective_ema_decay == 0.9999  # full length: nothing changes
    rows = {r["field"]: r for r in regime_sources(scaled, spec)}
    assert rows["effective_regularization_scale"]["source"] == "project choice"
    assert rows["effective_dropout"]["source"] == "project choice" and "regularization_by_length" in \
        rows["effective_dropout"]["where"]
    assert "regularization and EMA scaled with the length" in shortening_warning(scaled)
    # the README's figures for 8 of 350 epochs
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"scale 1 -> {scaled.effective_regularization_scale:.2g}, EMA 0.9999 -> " \
           f"{scaled.effective_ema_decay:.4f}" in readme


def test_only_user_set_values_read_override():
    short = get_regime("rs-10", epochs=5)
    assert source_of(short, "epochs").kind == OVERRIDE
    warmup = source_of(short, "warmup_epochs")  # halved with the length, not set by the user
    assert warmup.kind == "project choice" and "scaled to 5 of 10 epochs" in warmup.where
    assert source_of(short.replace(warmup_epochs=2), "warmup_epochs").kind == OVERRIDE
    steps = source_of(get_regime("classic-90", epochs=45), "step_epochs")
    assert steps.kind != OVERRIDE and "named value [30, 60, 80]" in steps.where


def test_the_dry_run_and_the_manifest_carry_the_warning(tmp_path, capsys):
    from experiments.sweep.spec import load_sweep, manifest

    spec = tiny_sweep(tmp_path / "out", regimes=[{"name": "rs-350", "epochs": 8}])
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(f), "--dry-run"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("warning: regime rs-350")]
    assert len(lines) == 1 and "44x shorter" in lines[0]
    assert main(["sweep", str(f), "--dry-run", "--format", "json"]) == 0
    assert "44x shorter" in json.loads(capsys.readouterr().out)["short_regimes"]["rs-350"]
    sweep = load_sweep(spec)
    m = manifest(sweep, sweep.space.expand(epochs=[8]), 1)
    assert m.short_regimes == {"rs-350": shortening_warning(sweep.regimes[0])}
    assert manifest(load_sweep(tiny_sweep(tmp_path / "o", epochs=10)), sweep.space.expand(epochs=[10]),
                    1).short_regimes == {}


def test_archscale_train_warns_in_one_line(tmp_path, capsys, monkeypatch):
    import experiments.train.trial as trial

    seen = {}

    def fake(cfg, **kw):  # the warning comes before training: no need to train
        seen["regime"] = cfg.regime
        raise SystemExit(0)

    monkeypatch.setattr(trial, "train_trial", fake)
    with pytest.raises(SystemExit):
        main(["train", "--preset", "resnet18", "--regime", "rs-350", "--epochs", "8", "--set",
              "regularization_by_length=true"])
    err = capsys.readouterr().err.splitlines()
    assert len([ln for ln in err if ln.startswith("warning: regime rs-350 trains 8")]) == 1
    assert seen["regime"].regularization_by_length is True and math.isclose(seen["regime"].length_factor, 8 / 350)
