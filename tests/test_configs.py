"""Every shipped sweep spec validates and prices (a dry run), data present or not."""
import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.train.regimes import regime_from

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
    from experiments.sweep.spec import load_sweep, make_plan

    trials, expansion = make_plan(load_sweep(CONFIGS[[p.stem for p in CONFIGS].index("digits_demo")]))
    specs = [c.spec for c in expansion.configs]
    for field in ("cardinality", "width_multiplier", "depth", "resolution"):
        assert len({getattr(s, field) for s in specs}) >= 2, field
    assert len(expansion.configs) >= 12


def test_shipped_gpu_specs_follow_their_papers_learning_rates_at_a_one_gpu_batch():
    from experiments.sweep.spec import load_sweep

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


def test_digits_demo_tests_the_cardinality_and_depth_claims_seed_by_seed(tmp_path):
    """The demo's design, its trials given a planted top-1 (4x8d +1 pp, the wider net +1 pp over the
    deeper): its report has tested claims, each resting on the eight equal-FLOP pairs of its four matched groups and both seeds."""
    import yaml

    from experiments.results.store import Journal, load_results
    from experiments.sweep.spec import load_sweep, prepare
    from reports import assess_claims

    spec = yaml.safe_load(CONFIGS[[p.stem for p in CONFIGS].index("digits_demo")].read_text())
    spec["output_dir"] = str(tmp_path / "run")
    trials, _ = prepare(load_sweep(spec))
    journal = Journal(tmp_path / "run")
    for t in trials:
        top1 = 90 + (t["cardinality"] > 1) - (t["depth_number"] > 11) + 0.1 * t["resolution"] + 0.3 * t["seed"]
        journal.append({"event": "start", "trial_id": t["trial_id"]})
        journal.append({"event": "epoch", "trial_id": t["trial_id"], "epoch": 1, "val_top1": top1, "val_top5": 99.0,
                        "val_loss": 1.0, "train_loss": 1.0, "time_s": 1.0})
        journal.append({"event": "end", "trial_id": t["trial_id"], "status": "done"})
    findings = {f.claim.key: f for f in assess_claims(load_results(tmp_path / "run")[0])}
    for key, effect in (("cardinality", 1.0), ("depth_vs_width", 1.0)):  # width beats depth in a short regime
        f = findings[key]
        assert f.tested and f.estimate.n_units == 8 and f.estimate.n_seeds == 2, key
        assert f.estimate.effect == pytest.approx(effect, abs=0.05) and f.verdict == "supported", key
