"""reports/ and trial health: chance lines, flagged configurations hollow and left out, inconclusive
findings, the verdict box first, the report's order, and the next sweep never growing a flagged config."""
import numpy as np
import pytest
from test_reports import synthetic_trials

from reports import plot_dimension_curves, plot_pareto, plot_scaling_curves, write_report
from reports.binning import equal_flop_table
from reports.compare_plot import plot_equal_flop, plot_error_edf, plot_learning_curves
from reports.findings import assess_claims
from reports.next_sweep import NextSweep, Ranked, plan_next_sweep
from reports.tables import aggregate_seeds, finished_trials, normalize_trials
from scaling.errors import ArchScaleError

DEAD = "d26-w2-c1x64-r32"     # planted at chance in rs-10 (both seeds)
SPLIT = "d101-w0.5-c1x64-r32"  # its seeds disagree in rs-10


def planted(flag_most: bool = False):
    """A synthetic sweep (10 classes) with a dead network and a seed-split one in rs-10."""
    trials, epochs = synthetic_trials(failures=False)
    trials["chance_top1"], trials["health"], trials["health_reason"] = 10.0, "ok", ""
    dead = (trials["regime"] == "rs-10") & (trials["name"] == DEAD)
    trials.loc[dead, ["final_top1", "best_top1"]] = [10.8, 11.0]
    trials.loc[dead, "health"] = "at_chance"
    split = (trials["regime"] == "rs-10") & (trials["name"] == SPLIT)
    trials.loc[split & (trials["seed"] == 1), "final_top1"] = 30.0
    trials.loc[split & (trials["seed"] == 0), "health"] = "seeds_disagree"
    trials.loc[split & (trials["seed"] == 1), "health"] = "at_chance"
    if flag_most:
        others = trials.index[~dead & ~split]
        trials.loc[others[: int(len(trials) * 0.6)], ["health", "health_reason"]] = ["not_converged", "still rising"]
    return trials, epochs


def gids(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_flagged_networks_are_left_out_of_every_analysis_but_kept_apart():
    trials, _ = planted()
    df = normalize_trials(trials)
    assert set(df.loc[df["flagged"], "name"]) == {DEAD, SPLIT}
    assert set(finished_trials(trials).query("regime == 'rs-10'")["name"]).isdisjoint({DEAD, SPLIT})
    configs, bad = aggregate_seeds(trials), aggregate_seeds(trials, flagged=True)
    assert set(bad["name"]) == {DEAD, SPLIT} and set(bad["health"]) == {"at_chance", "seeds_disagree"}
    assert set(configs.query("regime == 'rs-10'")["name"]).isdisjoint({DEAD, SPLIT})
    assert {DEAD, SPLIT} <= set(configs.query("regime == 'rs-100'")["name"])  # healthy there: kept
    table = equal_flop_table(trials)
    assert table.query("regime == 'rs-10'")["name"].isin([DEAD, SPLIT]).sum() == 0


def test_the_pareto_figure_draws_flagged_configs_hollow_and_the_chance_line():
    trials, _ = planted()
    fig = plot_pareto(trials, "flops")
    hollow = gids(fig, "flagged")
    drawn = np.concatenate([h.get_offsets() for h in hollow])
    split = trials.query(f"regime == 'rs-10' and name == '{SPLIT}'")["final_top1"].mean()
    assert sorted(drawn[:, 1]) == pytest.approx([10.8, split])  # the flagged networks' seed means in rs-10
    assert all((h.get_facecolors()[:, :3] == 1).all() for h in hollow if len(h.get_offsets()))  # white: hollow
    assert gids(fig, "chance")
    # an axis zoomed on the data marks chance beyond it instead of squeezing the points
    high = trials.assign(chance_top1=1.0)
    texts = [a.get_text() for a in gids(plot_pareto(high, "flops"), "chance")]
    assert any("below the axis" in t for t in texts)


def test_every_accuracy_figure_marks_chance():
    trials, epochs = planted()
    figures = {"scaling": plot_scaling_curves(trials), "dimensions": plot_dimension_curves(trials),
               "equal_flop": plot_equal_flop(trials), "edf": plot_error_edf(trials),
               "learning": plot_learning_curves(epochs, {"rs-10": ["d26-w1-c1x64-r32"]}, chances=[10.0])}
    for name, fig in figures.items():
        assert fig is not None and gids(fig, "chance"), name


def test_a_finding_that_would_rest_on_flagged_trials_is_inconclusive_with_the_reason():
    trials, _ = planted()
    unplanted, _ = synthetic_trials(failures=False)
    clean = {(f.claim.key, f.regime): f for f in assess_claims(unplanted)}
    assert clean[("depth_vs_width", "rs-10")].verdict == "supported"
    found = {(f.claim.key, f.regime): f for f in assess_claims(trials)}
    f = found[("depth_vs_width", "rs-10")]
    assert f.verdict == "inconclusive"
    assert f.flagged.startswith("it would rest on flagged trials of ") and DEAD in f.flagged
    assert DEAD not in f.configs()  # its comparisons leave the flagged networks out
    assert found[("depth_vs_width", "rs-100")].verdict == clean[("depth_vs_width", "rs-100")].verdict


def test_the_next_sweep_never_grows_a_flagged_config_and_never_calls_a_loss_a_gain():
    trials, _ = planted()
    best = trials.query("regime == 'rs-100'")["final_top1"].idxmax()
    trials.loc[trials["name"] == trials.at[best, "name"], "health"] = "not_converged"
    plan = plan_next_sweep(trials)
    assert plan.base != trials.at[best, "name"]
    loss = NextSweep(base="b", base_flops=1e9, base_top1=50.0, regime="rs-10", regime_epochs=10, strategies=("width",),
                     ranking=(Ranked("width", -1.24, -2.0, -0.5, "fit", 5), Ranked("depth", -2.0, -3, -1, "fit", 5)),
                     why={"width": "the best dimension"})
    text = loss.paragraph()
    assert "cheapest" not in text and "no dimension gained accuracy" in text and "-1.24" in text
    assert "would only test growing" in text
    assert "no dimension gained accuracy" in loss.reasons()[-2]


def test_a_data_set_of_one_class_is_an_error(tmp_path):
    trials, _ = synthetic_trials(depths=(26,), widths=(1.0,), resolutions=(32,), regimes=(("rs-10", 10),),
                                 failures=False)
    with pytest.raises(ArchScaleError) as e:
        write_report(trials.assign(chance_top1=100.0), None, tmp_path / "r")
    assert e.value.field == "dataset" and "at least 2 classes" in str(e.value)
    assert not (tmp_path / "r").exists()


MANIFEST = {"output_dir": "/runs/x", "regimes": {"rs-10": {"epochs": 10, "schedule": "cosine", "batch_size": 4096,
                                                            "lr_per_256": 0.1, "warmup_epochs": 5}},
            "short_regimes": {"rs-10": "rs-10 runs 10 of its 350 epochs (35x shorter) ..."}}


def test_the_report_reads_top_down():
    from reports import report

    order = [s.__name__ for s in report.SECTIONS]
    assert order[:3] == ["verdict_section", "findings_section", "pareto_section"]
    figures = ("scaling_curves_section", "dimensions_section", "equal_flop_section", "learning_curves_section")
    assert all(order.index("run_section") > order.index(f) for f in figures)
    assert order[-2:] == ["untestable_section", "next_sweep_section"]


def test_the_verdict_opens_with_the_warning_when_most_trials_are_flagged(tmp_path):
    from reports import report

    trials, epochs = planted(flag_most=True)
    trials = trials.assign(batch_size=64, lr_peak=0.025, warmup_epochs=1.0 / 7)
    (tmp_path / "out").mkdir()
    r = report._start(trials, epochs, tmp_path / "r", tmp_path / "out", manifest=MANIFEST, title=None,
                      tolerance=0.15)
    r._findings = []  # the findings are tested apart; the verdict reads them
    report.verdict_section(r)
    report.run_section(r)
    md = r.doc.to_markdown()
    verdict = md.split("## Verdict")[1].split("\n## ")[0].strip().splitlines()
    assert verdict[0].startswith("**Most trials are flagged (47 of 72 with a result): the likely cause is the "
                                 "shortened regime: rs-10 runs 10 of its 350")
    assert verdict[2] == "Shortened regime: rs-10 runs 10 of its 350 epochs (35x shorter) ..."
    html = r.doc.to_html()
    assert '<h2>Verdict</h2>\n<div class="box">' in html and html.count("<div") == html.count("</div>") == 1
    assert "| d26-w2-c1x64-r32 | rs-10 | 0 | at_chance | 10.8 |" in md
    assert r.summary["health"] == {"ok": 25, "at_chance": 3, "not_converged": 43, "seeds_disagree": 1}
    # the Run table: what the trials trained with, not the regime's nominal batch
    run = md.split("## Run")[1]
    assert "batch 64 (peak lr 0.025, warm-up 0.142857 epochs), as trained (the regime's batch 4096 is cut" in run
    without_cause = dict(MANIFEST, short_regimes={})
    (tmp_path / "out2").mkdir()
    r = report._start(trials, epochs, tmp_path / "r", tmp_path / "out2", manifest=without_cause, title=None,
                      tolerance=0.15)
    r._findings = []
    report.verdict_section(r)
    assert "most are not_converged, so likely training ended while the networks still improved fast; run again " \
           "with more epochs." in r.doc.to_markdown()


@pytest.mark.slow
def test_a_whole_report_on_a_planted_run_says_what_it_left_out(tmp_path):
    trials, epochs = planted()
    summary = write_report(trials, epochs, tmp_path / "report", manifest=MANIFEST)
    md = (tmp_path / "report" / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Verdict", "## Findings: the papers' claims on this sweep"]
    assert headings[-2:] == ["## Claims this sweep cannot test", "## Next sweep"]
    assert summary["left_out"] == f"2 configurations ({DEAD} (rs-10) at_chance, {SPLIT} (rs-10) seeds_disagree)"
    for section in ("## Pareto fronts", "## Scaling curves", "## Equal-FLOP comparison", "## Findings",
                    "## Distributions"):
        assert "_Left out of " in md.split(section)[1].split("\n## ")[0], section
    assert DEAD not in summary["pareto"]["rs-10"] and DEAD in summary["pareto"].get("rs-100", []) + [DEAD]
    verdicts = {(f["claim"], f["regime"]): f["verdict"] for f in summary["findings"]}
    assert verdicts[("depth_vs_width", "rs-10")] == "inconclusive"


def test_archscale_report_prints_the_health_and_a_finding_without_an_effect(tmp_path, capsys, monkeypatch):
    import reports
    from test_health import write_run

    from experiments.cli import main

    finding = {"claim": "depth_vs_width", "source": "ResNet-RS", "regime": "rs-10", "verdict": "inconclusive",
               "effect": None, "low": None, "high": None, "unit": "pp", "flagged": "it would rest on flagged trials"}
    summary = {"report_md": "r/report.md", "report_html": "r/report.html", "figures": [], "tables": [],
               "status_counts": {"done": 10}, "health": {"ok": 2, "at_chance": 8}, "left_out": "4 configurations",
               "pareto": {}, "findings": [finding]}
    monkeypatch.setattr(reports, "write_report", lambda *a, **k: summary)
    assert main(["report", str(write_run(tmp_path))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "health: 2 ok, 8 at_chance; left out of fronts, fits and findings: 4 configurations" in out
    assert "finding: ResNet-RS, depth vs width in rs-10: inconclusive; it would rest on flagged trials" in out


def test_the_run_tables_regime_line_counts_epochs_in_words():
    """'warm-up 1 epochs' read in the demo's Run table; one epoch is singular, fractions plural."""
    from reports.digests import _regime_text

    regime = {"epochs": 10, "schedule": "cosine", "batch_size": 4096, "lr_per_256": 0.1, "warmup_epochs": 5}
    one = _regime_text(regime, {"batch_size": [64], "lr_peak": [0.025], "warmup_epochs": [1.0]})
    assert one.startswith("10 epochs, cosine schedule, batch 64 (peak lr 0.025, warm-up 1 epoch), as trained")
    assert "warm-up 0.5 epochs)" in _regime_text(regime, {"warmup_epochs": [0.5]})
    assert _regime_text(dict(regime, epochs=1)).startswith("1 epoch, cosine schedule, batch 4096 (peak lr 1.6, "
                                                           "warm-up 5 epochs)")


def test_the_run_note_says_where_undrawn_trials_are_and_that_flagged_ones_are_hollow(tmp_path):
    """The note under the Run table named 'the end' for diverged and failed trials, which now come
    before the Run section under their own heading; flagged trials are hollow as well."""
    from reports import report

    trials, epochs = planted(flag_most=True)
    trials.loc[trials.index[0], ["status", "final_top1"]] = ["error", float("nan")]
    (tmp_path / "out").mkdir()
    r = report._start(trials, epochs, tmp_path / "r", tmp_path / "out", manifest=MANIFEST, title=None,
                      tolerance=0.15)
    report.not_drawn_section(r)
    report.run_section(r)
    md = r.doc.to_markdown()
    assert "## Trials not drawn" in md and "listed under 'Trials not drawn', never drawn" in md
    assert "trials flagged by their health verdict are drawn hollow too" in md
