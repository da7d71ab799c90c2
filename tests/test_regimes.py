
import pytest

from experiments.train.regimes import REGIMES, get_regime, regime_from
from scaling import ArchScaleError, ArchSpec, get_preset


def lrs(regime, spe=10):
    return [regime.lr_at(s, spe) for s in range(regime.epochs * spe)]


@pytest.mark.parametrize("name", ["rs-10", "rs-100", "rs-350"])
def test_rs_regimes_warm_up_linearly_then_decay_by_cosine_to_zero(name):
    r = get_regime(name)
    assert r.lr == pytest.approx(1.6)  # 0.1 per 256 images at batch 4096
    spe = 4
    sched = lrs(r, spe)
    warm = int(r.warmup_epochs * spe)
    assert sched[:warm] == pytest.approx([r.lr * (i + 1) / warm for i in range(warm)])
    assert max(sched) == pytest.approx(r.lr, rel=1e-3)
    after = sched[warm:]
    assert all(a >= b for a, b in zip(after, after[1:]))  # monotone decay
    mid = warm + (len(sched) - warm) // 2
    assert sched[mid] == pytest.approx(r.lr / 2, rel=0.05)  # cosine: half-way is half the peak
    assert sched[-1] < 0.01 * r.lr


def test_classic_regime_decays_in_steps():
    r = get_regime("classic-90")
    assert r.lr == pytest.approx(0.1) and r.weight_decay == 1e-4 and r.weight_decay_on == "all"
    assert r.lr_at(0, 1) == 0.1 and r.lr_at(29, 1) == 0.1
    assert r.lr_at(30, 1) == pytest.approx(0.01) and r.lr_at(60, 1) == pytest.approx(0.001)
    assert r.lr_at(85, 1) == pytest.approx(1e-4)


def test_with_epochs_keeps_the_shape():
    full, short = get_regime("rs-350"), get_regime("rs-350", epochs=35)
    assert short.epochs == 35 and short.warmup_epochs == pytest.approx(0.5)
    fractions = (0.005, 0.1, 0.5, 0.9)  # in warm-up, just after, half-way, near the end
    a = [full.lr_at(int(f * 350 * 100), 100) for f in fractions]
    b = [short.lr_at(int(f * 35 * 1000), 1000) for f in fractions]
    assert a == pytest.approx(b, rel=1e-6)
    c = get_regime("classic-90", epochs=9)
    assert c.step_epochs == pytest.approx((3, 6, 8))


def test_overrides_and_errors():
    r = regime_from({"name": "rs-100", "batch_size": 256, "weight_decay": 1e-4, "epochs": 10})
    assert (r.batch_size, r.lr, r.weight_decay, r.epochs) == (256, pytest.approx(0.1), 1e-4, 10)
    with pytest.raises(ArchScaleError, match="did you mean 'weight_decay'"):
        get_regime("rs-10", weight_decay_=1)
    with pytest.raises(ArchScaleError, match="unknown regime 'rs-35'"):
        get_regime("rs-35")
    with pytest.raises(ArchScaleError, match="epochs"):
        get_regime("rs-10", epochs=0)
    with pytest.raises(ArchScaleError, match="schedule"):
        get_regime("rs-10", schedule="linear")


@pytest.mark.parametrize("overrides,field", [
    ({"step_epochs": "abc"}, "regime.step_epochs"),
    ({"step_epochs": [30, "x"]}, "regime.step_epochs"),
    ({"nesterov": True, "momentum": 0}, "regime.nesterov"),
    ({"nesterov": "maybe"}, "regime.nesterov"),
    ({"randaugment_magnitude": 40}, "regime.randaugment_magnitude"),
    ({"randaugment_layers": -2}, "regime.randaugment_layers"),
    ({"step_gamma": -1}, "regime.step_gamma"),
    ({"dropout": 1.5}, "regime.dropout"),
    ({"weight_decay": float("nan")}, "regime.weight_decay"),
    ({"momentum": float("inf")}, "regime.momentum"),
])
def test_bad_regime_overrides_are_one_line_errors(overrides, field):
    with pytest.raises(ArchScaleError) as e:
        get_regime("classic-90", **overrides)
    assert e.value.field == field and "\n" not in str(e.value)


def test_scientific_notation_is_a_number_in_flags_and_specs(capsys):
    from experiments.cli import main

    assert main(["train", "--show-regime", "rs-10", "--set", "weight_decay=1e-4"]) == 0
    assert "0.0001" in capsys.readouterr().out
    assert regime_from({"name": "x", "base": "classic-90", "weight_decay": 5e-5}).weight_decay == 5e-5
    from scaling.yamlio import load_yaml

    doc = load_yaml("regimes: [{name: my-recipe, base: classic-90, epochs: 120, weight_decay: 5e-5}]\nlr: 1E3")
    assert doc["regimes"][0]["weight_decay"] == 5e-5 and doc["lr"] == 1000.0
    assert load_yaml("a: 1e\nb: '1e-4'") == {"a": "1e", "b": "1e-4"}  # not a number; quoted stays text


def test_regularisation_grows_with_model_size_and_regime_length():
    small, big = get_preset("resnetrs50"), get_preset("resnetrs350")
    rs350 = get_regime("rs-350")
    assert rs350.regularization(small) == {"dropout": 0.25, "stochastic_depth": 0.0, "randaugment_layers": 2,
                                           "randaugment_magnitude": 10}
    assert rs350.regularization(big) == {"dropout": 0.4, "stochastic_depth": 0.1, "randaugment_layers": 2,
                                         "randaugment_magnitude": 15}
    assert rs350.regularization(get_preset("resnetrs152"))["randaugment_magnitude"] == 15
    assert rs350.regularization(get_preset("resnetrs200"))["stochastic_depth"] == 0.1
    half = get_regime("rs-100").regularization(big)
    assert half == {"dropout": 0.2, "stochastic_depth": 0.05, "randaugment_layers": 2, "randaugment_magnitude": 7.5}
    assert get_regime("rs-10").regularization(big) == {"dropout": 0.0, "stochastic_depth": 0.0,
                                                       "randaugment_layers": 0, "randaugment_magnitude": 0}
    spec = ArchSpec(depth=50, dropout=0.3)
    assert get_regime("classic-90").regularization(spec)["dropout"] == 0.3


def test_rs_recipe_constants():
    for name in ("rs-10", "rs-100", "rs-350"):
        r = REGIMES[name]
        assert (r.momentum, r.weight_decay, r.label_smoothing, r.ema_decay) == (0.9, 4e-5, 0.1, 0.9999)
        assert r.weight_decay_on == "all_but_bn" and r.schedule == "cosine"


def test_randaugment_magnitudes_are_on_the_official_tf_scale():
    """10 and 15 (the ResNet-RS configs) mean every op at 1x and 1.5x its maximum, up to the 30 the
    official code calls the top of the useful range; torchvision's 31-bin scale is not ours."""
    from experiments.data.augment import MAX_LEVEL, level_to_arg

    big = get_preset("resnetrs350")
    magnitude = get_regime("rs-350").regularization(big)["randaugment_magnitude"]
    assert magnitude == 15 and level_to_arg("Rotate", magnitude) == pytest.approx(1.5 * 30) and MAX_LEVEL == 10
    assert get_regime("rs-350", randaugment_magnitude=30).randaugment_magnitude == 30
    with pytest.raises(ArchScaleError) as e:
        get_regime("rs-350", randaugment_magnitude=30.5)
    assert "from 0 to 30 on the official TensorFlow scale" in str(e.value)


def test_the_old_weight_decay_flag_still_reads_with_its_meaning():
    assert get_regime("rs-10", decay_norm_and_bias=True).weight_decay_on == "all"
    assert regime_from({"name": "classic-90", "decay_norm_and_bias": False}).weight_decay_on == "weights"
    with pytest.raises(ArchScaleError, match="weight_decay_on"):
        get_regime("rs-10", weight_decay_on="biases")


def test_lr_is_set_through_lr_per_256_and_shown_as_derived_from_it():
    from experiments.train.sources import regime_sources

    r = get_regime("rs-10", lr=0.8)
    assert r.lr_per_256 == pytest.approx(0.8 * 256 / 4096) and r.lr == pytest.approx(0.8)
    assert get_regime("rs-10", lr=0.8, batch_size=512).lr_per_256 == pytest.approx(0.4)  # at the batch given with it
    assert regime_from(r.to_dict()) == r  # to_dict's lr agrees with its lr_per_256
    with pytest.raises(ArchScaleError, match=r"^regime\.lr: lr 0\.8 and lr_per_256 0\.1 disagree at batch 4096"):
        get_regime("rs-10", lr=0.8, lr_per_256=0.1)
    with pytest.raises(ArchScaleError, match=r"^regime\.lr: "):
        get_regime("rs-10", lr=-1)
    [row] = [row for row in regime_sources(r) if row["field"] == "lr"]
    assert row["value"] == pytest.approx(0.8) and row["where"].startswith("lr_per_256 x batch_size / 256 = 0.8")
