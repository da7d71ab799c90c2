"""experiments/sweep/suggest.py: the next sweep's spec validates, prices, and lands on the requested budget."""

import pytest
import yaml

from experiments.results.store import Journal
from experiments.sweep.spec import load_sweep, make_plan, prepare
from experiments.sweep.suggest import TOLERANCE, parse_budget, suggest
from scaling.errors import ArchScaleError

BASE = {"block": "bottleneck", "depth": 11, "widths": [16, 32, 64], "stem": "cifar", "stem_width": 16,
        "bottleneck_width": 16, "num_classes": 10, "resolution": 12}


GRID = {"width_multiplier": [0.5, 0.75, 1.0], "resolution": [10, 12], "depth": [11, 20]}


def finished_run(tmp_path, accuracy, *, seeds=(0, 1), regimes=({"name": "rs-10", "epochs": 3},), axes=GRID,
                 paired=()):
    """A run directory as a sweep leaves it (plan, manifest, journal), every trial done with
    ``accuracy(trial row)`` as its top-1; no training."""
    spec = {"name": "grid", "space": {"base": dict(BASE), "axes": dict(axes), "paired": list(paired)},
            "regimes": list(regimes), "dataset": "digits", "seeds": list(seeds),
            "resources": {"cpus": 1, "gpus": 0}, "output_dir": str(tmp_path / "run")}
    trials, _ = prepare(load_sweep(spec))
    journal = Journal(tmp_path / "run")
    for t in trials:
        journal.append({"event": "start", "trial_id": t["trial_id"]})
        journal.append({"event": "epoch", "trial_id": t["trial_id"], "epoch": 1, "val_top1": accuracy(t),
                        "val_top5": 99.0, "val_loss": 1.0, "train_loss": 1.0, "time_s": 1.0})
        journal.append({"event": "end", "trial_id": t["trial_id"], "status": "done"})
    return tmp_path / "run"


def width_wins(t):
    """Top-1 that grows fastest with width, a little with resolution and depth, and a seed wiggle."""
    return (60 + 30 * t["width_multiplier"] + 0.5 * (t["resolution"] - 10) + 0.5 * (t["depth_number"] > 11)
            + 0.2 * t["seed"])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("suggest"), width_wins)


@pytest.mark.parametrize("budget", ["2x", "3.5x", "2M"])
def test_suggested_spec_validates_prices_and_lands_within_ten_percent_of_the_budget(run_dir, budget):
    s = suggest(run_dir, budget)
    spec = yaml.safe_load(s.text)  # the text, comments and all, is the spec
    assert spec == s.spec
    trials, expansion = make_plan(load_sweep(spec), strict_data=False)
    assert trials and all(t["train_flops"] > 0 for t in trials)
    base = next(c for c in expansion.configs if c.tags["strategy"] == "base")
    assert base.name == s.plan.base == "d20-w1-c1x16-r12"
    placed = [t for t in trials if t["strategy"] != "base"]
    strategies = list(dict.fromkeys(t["strategy"] for t in placed))
    assert strategies == [c.strategy for c in s.placed] and strategies[0] == "width"  # the best dimension first
    # then the runner-up (or the next dimension, where it cannot reach the budget) and the ResNet-RS rule, unless
    # it makes the same network as another strategy at this budget; every strategy placed or said why not
    assert len(strategies) >= 2 and len(strategies) + len(s.dropped) >= 3
    for t in placed:
        assert abs(t["flops"] / s.budget_flops - 1) <= TOLERANCE, t["name"]
    if budget == "2M":
        assert s.budget_flops == pytest.approx(2e6, rel=1e-5)


def test_suggestion_carries_the_runs_regimes_data_and_seeds(run_dir):
    s = suggest(run_dir)
    assert s.spec["regimes"] == [{"name": "rs-10", "epochs": 3}] and s.spec["dataset"] == "digits"
    assert s.spec["seeds"] == [0, 1] and s.spec["name"] == "grid_next"
    assert s.spec["output_dir"].endswith("run_next") and s.spec["space"]["kind"] == "scaling"
    assert s.plan.ranking[0].dimension == "width"


def test_suggestion_explains_itself_in_comments(run_dir):
    text = suggest(run_dir, out_name="next.yaml").text
    comments = [line for line in text.splitlines() if line.startswith("#")]
    said = " ".join(line[2:] for line in comments)
    for words in ("width: +", "Base: d20-w1-c1x16-r12", "Budget: 2x", "within 10%", "the best dimension",
                  "Carried over from the run", "archscale sweep next.yaml --dry-run"):
        assert words in said, words
    assert "the runner-up" in said or "the next in the ranking" in said
    assert "left out: resolution (lands at" in said  # 12 px grows in whole pixels: 2x is out of its reach
    assert all(len(line) <= 102 for line in comments)


def test_budget_parsing():
    assert parse_budget("2x", 1e6) == 2.0 and parse_budget("0.5X", 1e6) == 0.5
    assert parse_budget("3M", 1e6) == pytest.approx(3.0) and parse_budget(4e6, 2e6) == pytest.approx(2.0)
    for bad in ("twice", "-2x", "0", "x"):
        with pytest.raises(ArchScaleError) as e:
            parse_budget(bad, 1e6)
        assert e.value.field == "budget"


def test_an_unreachable_budget_or_an_unfinished_run_is_a_user_error(run_dir, tmp_path):
    with pytest.raises(ArchScaleError) as e:
        suggest(run_dir, "1e-4x")
    assert e.value.field == "budget" and "another budget" in str(e.value)
    spec = {"name": "empty", "space": {"base": dict(BASE), "axes": {"width_multiplier": [0.5, 1.0]}},
            "regimes": [{"name": "rs-10", "epochs": 3}], "output_dir": str(tmp_path / "empty"),
            "resources": {"cpus": 1, "gpus": 0}}
    prepare(load_sweep(spec))
    with pytest.raises(ArchScaleError) as e:
        suggest(tmp_path / "empty")
    assert e.value.field == "run_dir" and "no finished trial" in str(e.value)


def test_a_run_with_nothing_to_rank_compares_the_published_rules(tmp_path):
    # two networks that differ in depth and width at once: no one-dimension step, no fit
    run = finished_run(tmp_path, width_wins, seeds=(0,), axes={}, paired=[{"width_multiplier": [0.5, 1.0],
                                                                           "depth": [11, 20]}])
    s = suggest(run)
    assert s.plan.ranking == () and s.plan.base == "d20-w1-c1x16-r12"
    assert [c.strategy for c in s.placed] == ["resnet_rs", "compound", "depth", "width"]
    assert "no fits or one-dimension steps" in s.text
