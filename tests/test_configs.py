"""Every shipped sweep spec validates and prices (a dry run), data present or not."""
import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.regimes import regime_from

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "configs").glob("*.yaml"))


def test_the_example_specs_ship():
    assert {p.stem for p in CONFIGS} >= {"digits_demo", "cifar10_resnext29_cardinality",
                                         "resnext_equal_complexity_imagenet", "resnet_rs_imagenet",
                                         "resnext_2x_complexity_imagenet", "residual_ablation_imagenet"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_spec_dry_runs(path, capsys):
    assert main(["sweep", str(path), "--dry-run", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_trials"] >= 10 and doc["train_flops_total"] > 0
    assert len(doc["trials"]) == doc["n_trials"] == len({t["trial_id"] for t in doc["trials"]})
    # exact, also where an int64 sum would wrap around (the ImageNet specs pass 2**63)
    assert doc["train_flops_total"] == pytest.approx(sum(t["train_flops"] for t in doc["trials"]), rel=1e-12)


def test_digits_demo_is_a_real_scaling_grid():
    from experiments.sweep_spec import load_sweep, make_plan

    trials, expansion = make_plan(load_sweep(CONFIGS[[p.stem for p in CONFIGS].index("digits_demo")]))
    specs = [c.spec for c in expansion.configs]
    for field in ("cardinality", "width_multiplier", "depth", "resolution"):
        assert len({getattr(s, field) for s in specs}) >= 2, field
    assert len(expansion.configs) >= 12


def test_shipped_gpu_specs_follow_their_papers_learning_rates_at_a_one_gpu_batch():
    from experiments.sweep_spec import load_sweep

    spec = {p.stem: p for p in CONFIGS}
    cifar = load_sweep(spec["cifar10_resnext29_cardinality"]).regimes[0]
    assert (cifar.batch_size, cifar.lr, cifar.weight_decay) == (128, pytest.approx(0.1), 5e-4)  # ResNeXt, 5.2
    rs = load_sweep(spec["resnet_rs_imagenet"]).regimes  # ResNet-RS: lr 0.1 per 256 images, 10/100/350 epochs
    assert [r.epochs for r in rs] == [10, 100, 350]
    assert all(r.batch_size == 256 and r.lr == pytest.approx(0.1) for r in rs)


def test_derived_regime_keeps_its_base_and_takes_a_name():
    r = regime_from({"name": "resnext-cifar-300", "base": "classic-90", "epochs": 300, "batch_size": 128,
                     "step_epochs": [150, 225]})
    assert (r.name, r.epochs, r.schedule, r.step_epochs, r.lr) == ("resnext-cifar-300", 300, "step", (150, 225), 0.05)
