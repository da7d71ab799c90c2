"""reports/next_sweep.py: the next sweep's base, ranking and strategies, from fits or from steps."""
import numpy as np
from test_reports import synthetic_trials
from test_reports_findings import steps_table

from reports import best_dimension, dimension_members, scaling_law_fits
from reports.next_sweep import plan_next_sweep


def test_steps_rank_the_dimensions_and_the_best_configuration_is_the_base():
    trials = steps_table(3.0, 1.0, noise=(0.0,))
    plan = plan_next_sweep(trials)
    assert [r.dimension for r in plan.ranking] == ["width", "resolution"]
    assert np.isclose(plan.ranking[0].gain, 3.0) and "one-dimension steps" in plan.ranking[0].source
    assert plan.strategies == ("width", "resolution", "resnet_rs")
    assert plan.base == trials.loc[trials["final_top1"].idxmax(), "name"] == "w1.4-r20"
    text = plan.paragraph("runs/x", "2x")
    assert "cheapest along **width**: +3.00 pp per doubling" in text and "twice its FLOPs" in text
    assert "`archscale suggest runs/x --budget 2x`" in text


def test_power_law_fits_rank_the_dimensions_where_two_or_more_have_one():
    trials, _ = synthetic_trials(depths=(26, 50, 101, 152), widths=(0.5, 1.0, 1.5, 2.0), resolutions=(32, 48, 64, 96),
                                 failures=False)
    plan = plan_next_sweep(trials)
    assert plan.regime == "rs-100" and all("power-law fit" in r.source for r in plan.ranking)
    best = best_dimension(scaling_law_fits(trials, dimension_members(trials)))["rs-100"]
    assert plan.ranking[0].dimension == best["dimension"] and np.isclose(plan.ranking[0].gain, best["gain"])
    assert plan.ranking[1].dimension == best["runner_up"]


def test_nothing_finished_means_no_plan():
    trials = steps_table(3.0, 1.0).assign(status="running")
    assert plan_next_sweep(trials) is None
