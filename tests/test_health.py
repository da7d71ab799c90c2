"""experiments/results/health.py: a verdict per trial, in load_results, archscale status and the sweep's warnings."""
import json
import math

import pytest

from experiments.cli.status import render
from experiments.results.health import HealthRules, chance_top1, health_counts, judge
from experiments.results.status import sweep_status
from experiments.results.store import MANIFEST, PLAN, Journal, load_results
from scaling import ArchScaleError

# planted trials, 10 classes (chance 10 %), 6 epochs each
CURVES = {
    # name, seed: (top-1 per epoch, training loss per epoch, status)
    ("good", 0): ([40, 70, 85, 90, 91, 91.5], [2.0, 1.2, 0.8, 0.6, 0.55, 0.54], "done"),
    ("good", 1): ([42, 71, 84, 89, 91, 91.2], [2.0, 1.2, 0.8, 0.6, 0.56, 0.55], "done"),
    ("dead", 0): ([10, 11, 10, 9, 11, 11.0], [2.30, 2.30, 2.30, 2.30, 2.30, 2.30], "done"),
    ("late", 0): ([10, 10, 11, 14, 30, 52], [2.30, 2.30, 2.29, 2.1, 1.7, 1.3], "done"),
    ("blowup", 0): ([40, 60, 70, 30, 20, 15], [2.0, 1.0, 0.7, 1.5, 2.5, 3.0], "done"),
    ("nan", 0): ([40, 60], [2.0, 1.0], "diverged"),
    ("split", 0): ([10, 10, 11, 10, 11, 11.0], [2.30] * 6, "done"),
    ("split", 1): ([40, 75, 90, 96, 98, 98.6], [2.0, 1.0, 0.5, 0.3, 0.25, 0.24], "done"),
    ("apart", 0): ([40, 70, 80, 85, 86, 86.0], [2.0, 1.2, 0.8, 0.6, 0.58, 0.57], "done"),
    ("apart", 1): ([40, 60, 65, 70, 72, 72.0], [2.0, 1.4, 1.1, 0.9, 0.88, 0.87], "done"),
}


def trial_id(name, seed):
    return f"{name}__rs-10__s{seed}"


def write_run(tmp_path, curves=CURVES, health=None, extra_plan=()):
    plan = [{"trial_id": trial_id(n, s), "name": n, "regime": "rs-10", "epochs": 6, "seed": s, "num_classes": 1000,
             "params": 1, "flops": 100, "train_flops": 600, "config": {}} for n, s in curves] + list(extra_plan)
    (tmp_path / PLAN).write_text(json.dumps({"name": "planted", "trials": plan}))
    (tmp_path / MANIFEST).write_text(json.dumps({"name": "planted", "health": health}))
    journal = Journal(tmp_path)
    for (n, s), (top1, loss, status) in curves.items():
        tid = trial_id(n, s)
        journal.append({"event": "start", "trial_id": tid, "time": 1.0})
        for e, (t, l) in enumerate(zip(top1, loss), 1):
            journal.append({"event": "epoch", "trial_id": tid, "epoch": e, "val_top1": t, "train_loss": l,
                            "classes": 10, "time_s": float(e)})
        journal.append({"event": "end", "trial_id": tid, "status": status, "time": 2.0})
    return tmp_path


def verdicts(trials):
    return {(r.name, r.seed): r.health for r in trials.itertuples()}


def test_each_planted_failure_gets_its_verdict_and_the_healthy_ones_are_ok(tmp_path):
    trials, _ = load_results(write_run(tmp_path))
    assert verdicts(trials) == {
        ("good", 0): "ok", ("good", 1): "ok",
        ("dead", 0): "at_chance",                 # 11.0 % < 1.5 x 10 %
        ("late", 0): "not_converged",             # +19 pp and -19 % loss an epoch over its last 2 epochs
        ("blowup", 0): "diverged",                # loss 3.0 > 2 x its lowest 0.7
        ("nan", 0): "diverged",                   # its status: the loss went NaN
        ("split", 0): "at_chance", ("split", 1): "seeds_disagree",   # 11.0 vs 98.6
        ("apart", 0): "seeds_disagree", ("apart", 1): "seeds_disagree",   # 86 vs 72: 14 points apart
    }
    reasons = dict(zip(trials["name"] + trials["seed"].astype(str), trials["health_reason"]))
    assert reasons["good0"] == ""
    assert "11.0 % is below 1.5 x chance (10 % with 10 classes)" in reasons["dead0"]
    assert "rose 19.0 points" in reasons["late0"] and "fell 19% per epoch" in reasons["late0"]


def test_chance_comes_from_the_classes_the_trial_trained_on_not_the_specs_head(tmp_path):
    trials, _ = load_results(write_run(tmp_path))
    assert (trials["num_classes"] == 1000).all() and (trials["classes"] == 10).all()
    assert chance_top1(trials).tolist() == [10.0] * len(trials)
    import pandas as pd
    assert math.isnan(chance_top1(pd.DataFrame({"x": [1]}))[0])  # no class count: no chance rule


def test_the_spec_health_thresholds_override_the_defaults(tmp_path):
    loose = {"chance_factor": 1.05, "seed_margin_pp": 20, "top1_gain_pp": 30}
    trials, _ = load_results(write_run(tmp_path, health=loose))
    v = verdicts(trials)
    assert v[("dead", 0)] == "ok"               # 11 % is above 1.05 x 10 %
    assert v[("late", 0)] == "ok"               # gains of 19 pp an epoch are under 30
    assert v[("apart", 0)] == v[("apart", 1)] == "ok"   # 14 points apart, under 20
    assert v[("split", 1)] == "seeds_disagree"  # 11.0 vs 98.6 still


def test_unfinished_trials_have_no_verdict_and_stopped_ones_are_not_judged_unconverged(tmp_path):
    curves = {("late", 0): CURVES[("late", 0)][:2] + ("stopped",)}
    pending = {"trial_id": "p__rs-10__s0", "name": "p", "regime": "rs-10", "epochs": 6, "seed": 0, "params": 1,
               "flops": 1, "train_flops": 6, "config": {}}
    trials, _ = load_results(write_run(tmp_path, curves, extra_plan=[pending]))
    assert verdicts(trials) == {("late", 0): "ok", ("p", 0): ""}


@pytest.mark.parametrize("value, field", [({"chance": 2}, "health.chance"), ({"window": 0}, "health.window"),
                                          ({"seed_margin_pp": -1}, "health.seed_margin_pp"), ("strict", "health")])
def test_bad_health_thresholds_are_refused_naming_the_field(value, field):
    with pytest.raises(ArchScaleError) as e:
        HealthRules.from_spec(value)
    assert e.value.field == field


def test_a_sweep_spec_takes_health_and_its_manifest_records_the_rules(tmp_path):
    from experiments.sweep.spec import load_sweep, manifest
    from tests.sweep_helpers import tiny_sweep

    sweep = load_sweep(tiny_sweep(tmp_path / "out", health={"seed_margin_pp": 5}))
    assert sweep.health == HealthRules(seed_margin_pp=5.0)
    expansion = sweep.space.expand(epochs=[2])
    assert manifest(sweep, expansion, 1).health == {**HealthRules().to_dict(), "seed_margin_pp": 5.0}
    with pytest.raises(ArchScaleError, match="health.margin"):
        load_sweep(tiny_sweep(tmp_path / "out", health={"margin": 5}))


def test_status_counts_the_verdicts_and_names_the_flagged_trials(tmp_path):
    s = sweep_status(write_run(tmp_path), now=10.0)
    assert s.health == {"ok": 2, "at_chance": 2, "not_converged": 1, "diverged": 2, "seeds_disagree": 3}
    assert [t.name for t in s.flagged] == ["dead", "late", "blowup", "nan", "split", "split", "apart", "apart"]
    text = render(s)
    assert "health: ok 2, at_chance 2, not_converged 1, diverged 2, seeds_disagree 3" in text
    assert "flagged: dead (rs-10, seed 0) at_chance: final top-1 11.0 % is below" in text
    assert s.to_dict()["health"] == s.health and s.to_dict()["trials"][2]["health"] == "at_chance"


def test_the_sweep_warns_once_per_newly_flagged_trial(tmp_path, capsys, monkeypatch):
    from experiments.sweep.callbacks import StoreCallback

    monkeypatch.delenv("ARCHSCALE_QUIET", raising=False)
    one = {k: v for k, v in CURVES.items() if k in (("good", 0), ("split", 0))}
    cb = StoreCallback(str(write_run(tmp_path, one)), {})
    cb.setup()  # the run so far: split seed 0 was flagged before this launch
    assert cb.warned == {trial_id("split", 0)}
    both = {**one, ("split", 1): CURVES[("split", 1)]}
    trials, _ = load_results(write_run(tmp_path, both))
    cb._warn_health(trials)
    cb._warn_health(trials)  # the next trial's end: nothing new
    out = capsys.readouterr().out.splitlines()
    assert out == ["warning: split (rs-10, seed 1) is seeds_disagree: its 2 seeds end at 11.0, 98.6 % top-1, "
                   "more than 10 points apart"]


def test_judge_on_a_bare_table_and_the_counts():
    import pandas as pd

    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "name": ["a", "b", "c"], "regime": "r",
                           "status": ["done", "error", "done"], "final_top1": [5.0, math.nan, 60.0],
                           "classes": [10, 10, 10]})
    out = judge(trials, None)
    assert out["health"].tolist() == ["at_chance", "", "ok"]
    assert health_counts(out["health"]) == {"ok": 1, "at_chance": 1}
