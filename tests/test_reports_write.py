"""reports/: figures and write_report on partial, failed, empty and ImageNet runs."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_reports import synthetic_trials

from reports import load_reference, plot_dimension_curves, plot_pareto, plot_scaling_curves, write_report
from reports.style import FLOP_CONVENTION
from scaling.errors import ArchScaleError


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    """A report on a sweep with failed, diverged, running, pending and early-stopped trials."""
    trials, epochs = synthetic_trials()
    trials = trials.drop(columns=["train_time_s"])  # an older results table without it
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        aggregations = _count_aggregations(mp)
        summary = write_report(trials, epochs, out, manifest={"dataset": "cifar10", "space": {"depth": [26, 50, 101]}})
    return trials, out, summary, aggregations


def _count_aggregations(monkeypatch) -> list:
    """Count the calls of ``aggregate_seeds`` from every reports module; returns the growing list of calls."""
    import reports

    calls, original = [], reports.tables.aggregate_seeds

    def counted(trials, **kw):
        calls.append(kw.get("flagged", False))
        return original(trials, **kw)

    for module in vars(reports).values():  # tables too: its tables_of reads the run for the report
        if getattr(module, "aggregate_seeds", None) is original:
            monkeypatch.setattr(module, "aggregate_seeds", counted)
    return calls


def test_report_on_a_partial_failed_run_writes_every_file(partial_run):
    trials, out, summary, _ = partial_run
    assert (out / "report.md").is_file() and (out / "report.html").is_file() and (out / "summary.json").is_file()
    for name in ("pareto_flops", "pareto_params", "scaling_curves", "dimension_curves", "equal_flop", "error_edf",
                 "axis_effects", "learning_curves"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000, name
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml"), name
    for name in ("pareto", "equal_flop", "configs", "trials_not_drawn", "axis_effects", "scaling_law_fits"):
        assert len(pd.read_csv(out / "tables" / f"{name}.csv")) > 0, name
    assert all(p.endswith((".png", ".svg")) for p in summary["figures"])
    assert summary["status_counts"]["error"] == 1 and summary["n_finished"] == len(trials) - 4


def test_report_aggregates_the_seeds_once(partial_run):
    *_, aggregations = partial_run
    assert sorted(aggregations) == [False, True]  # every section and figure reads the one seed aggregate (and
    # the one of the flagged configurations)


def test_report_lists_failed_trials_and_skips_unmeasured_costs(partial_run):
    trials, out, summary, _ = partial_run
    md = (out / "report.md").read_text()
    assert "CUDA out of memory; lower --batch-size" in md
    for status in ("diverged", "running", "pending"):
        assert f"| {status} |" in md
    not_drawn = pd.read_csv(out / "tables" / "trials_not_drawn.csv")
    assert set(not_drawn["status"]) == {"error", "diverged", "running", "pending"}
    # latency, throughput and training time were not recorded: said, not drawn
    assert not (out / "figures" / "pareto_latency.png").exists()
    assert any("latency" in s for s in summary["skipped"]) and "not measured" in md
    assert any("training time" in s for s in summary["skipped"])
    assert FLOP_CONVENTION in md


def test_report_pareto_summary_holds_only_finished_configs(partial_run):
    trials, out, summary, _ = partial_run
    assert set(summary["pareto"]) == {"rs-10", "rs-100"}
    for regime, names in summary["pareto"].items():
        assert names and set(names) <= set(trials.loc[trials["regime"] == regime, "name"])
        finished = trials[(trials["regime"] == regime) & trials["status"].isin(["done", "stopped"])]
        assert set(names) <= set(finished["name"])
    # the most accurate configuration of each regime is always on the front
    for regime, g in trials[trials["status"] == "done"].groupby("regime"):
        best = g.groupby("name")["final_top1"].mean().idxmax()
        assert best in summary["pareto"][regime]


def test_report_html_is_self_contained_and_not_imagenet(partial_run):
    trials, out, summary, _ = partial_run
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(summary["figures"]) // 2
    assert 'src="figures/' not in html and "<table>" in html
    # a CIFAR-10 run (its manifest says so): the ResNeXt paper's CIFAR-10 points, no ImageNet ones
    assert summary["reference_drawn"]
    md = (out / "report.md").read_text()
    assert "ResNet-RS-420" not in md and "ResNeXt-29 (16x64d)" in md and "17.31" not in md


def test_report_states_the_findings_with_their_evidence_and_ends_with_the_next_sweep(partial_run):
    trials, out, summary, _ = partial_run
    md = (out / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Verdict", "## Findings: the papers' claims on this sweep"]
    assert headings[-2:] == ["## Claims this sweep cannot test", "## Next sweep"]
    assert headings.index("## Run") > headings.index("## Pareto fronts: top-1 accuracy against each cost")
    verdicts = {(f["claim"], f["regime"]): f["verdict"] for f in summary["findings"]}
    # the synthetic sweep plants width winning at 10 epochs, depth at 100: the regime claim holds
    assert verdicts[("depth_vs_width", "rs-10")] == "supported" and verdicts[("regime", None)] == "supported"
    assert verdicts[("depth_vs_width", "rs-100")] == verdicts[("cardinality", "rs-10")] == "untestable"
    for f in summary["findings"]:
        assert (f["verdict"] == "untestable") == (f["effect"] is None) and (f["needs"] != "") == (f["effect"] is None)
    for key in ("depth_vs_width", "resolution"):  # a figure per tested claim, linked from its paragraph
        assert (out / "figures" / f"finding_{key}.png").stat().st_size > 10_000
        assert f"figure [figures/finding_{key}.png](figures/finding_{key}.png)" in md
    comparisons = pd.read_csv(out / "tables" / "findings_comparisons.csv")
    assert set(comparisons["claim"]) == {"depth_vs_width", "resolution", "regime"}
    assert set(comparisons["a"]) | set(comparisons["b"]) <= set(trials["name"])
    untestable = md.split("## Claims this sweep cannot test")[1]
    assert "It needs configurations that differ in cardinality" in untestable
    assert untestable.count("At equal complexity, more groups") == 1  # once, with the regimes it would need
    assert summary["next_sweep"]["strategies"][-1] == "resnet_rs"
    assert md.rstrip().endswith("every configuration within 10 % of the budget.")
    assert '<a href="figures/finding_resolution.png">' in (out / "report.html").read_text()


def test_empty_results_are_a_user_error(tmp_path):
    for empty in (pd.DataFrame(), pd.DataFrame(columns=["trial_id", "name", "status"]), None):
        with pytest.raises(ArchScaleError) as e:
            write_report(empty, None, tmp_path)
        assert e.value.field == "run_dir" and "no results" in str(e.value)
    assert not (tmp_path / "report.md").exists()


def test_report_with_no_finished_trial_lists_them(tmp_path):
    trials, _ = synthetic_trials(depths=(26,), widths=(1.0,), resolutions=(32,), failures=False)
    trials["status"] = ["running", "pending", "error", "diverged"]
    trials[["final_top1", "best_top1"]] = np.nan
    summary = write_report(trials, pd.DataFrame(), tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "No finished trials yet" in md and summary["pareto"] == {} and summary["figures"] == []
    assert all(t in md for t in trials["trial_id"])


def test_reference_points_are_drawn_only_on_imagenet(tmp_path):
    trials, _ = synthetic_trials(dataset="ImageNet", depths=(50, 101), widths=(1.0,), resolutions=(224,),
                                 regimes=(("rs-350", 350),), seeds=1, failures=False)
    n_ref = len(load_reference())
    with_ref = plot_pareto(trials, "flops", reference=load_reference())
    without = plot_pareto(trials, "flops")
    count = lambda fig: sum(len(c.get_offsets()) for c in fig.axes[0].collections if hasattr(c, "get_offsets"))
    assert count(with_ref) - count(without) == n_ref
    summary = write_report(trials, None, tmp_path)
    assert summary["reference_drawn"] and "ResNet-RS-420" in (tmp_path / "report.md").read_text()
    ref_csv = pd.read_csv(tmp_path / "tables" / "imagenet_reference.csv")
    assert ref_csv.loc[ref_csv["model"] == "ResNet-RS-420 @320", "flops"].iloc[0] == pytest.approx(64e9)


def test_pareto_figure_axes_labels_and_point_labels():
    trials, _ = synthetic_trials(failures=False)
    fig = plot_pareto(trials, "flops")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and FLOP_CONVENTION in ax.get_xlabel() + fig.axes[-1].get_xlabel()
    assert "accuracy (%)" in ax.get_ylabel()
    labels = {t.get_text() for t in ax.texts}
    assert labels and all(lbl.startswith("d") for lbl in labels)
    assert plot_pareto(trials, "latency_ms") is None  # not measured


def test_plots_on_too_little_data_return_none():
    trials, _ = synthetic_trials(depths=(50,), widths=(1.0,), resolutions=(32,), failures=False)
    assert plot_scaling_curves(trials) is None
    assert plot_dimension_curves(trials) is None
    assert plot_pareto(trials, "flops") is not None


def _text_inside(fig) -> list[str]:
    """The texts (titles, legends) that a rendered figure cuts off at its edges."""
    fig.canvas.draw()
    renderer, box = fig.canvas.get_renderer(), fig.bbox
    artists = [fig._suptitle] + [ax.title for ax in fig.axes] + fig.legends
    out = []
    for a in artists:
        if a is None or (hasattr(a, "get_text") and not a.get_text()):
            continue
        e = a.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.x1 > box.x1 + 1:
            out.append(getattr(a, "get_text", lambda: "legend")())
    return out


def test_one_regime_figures_keep_titles_and_legends_whole():
    from reports.compare_plot import plot_equal_flop, plot_learning_curves

    trials, epochs = synthetic_trials(regimes=(("rs-10", 10),), failures=False)
    ext = trials.copy()  # a second network family, as the digits demo's 4x8d next to 1x64d
    ext["cardinality"], ext["name"] = 4, ext["name"].str.replace("c1x64", "c4x64")
    ext["trial_id"] = ext["trial_id"].str.replace("c1x64", "c4x64")
    both = pd.concat([trials, ext], ignore_index=True)
    curves = plot_scaling_curves(both)
    assert "with cardinality" in curves._suptitle.get_text()  # the family the lines hold fixed is named
    names = trials["name"].unique()[:5].tolist()
    for fig in (curves, plot_equal_flop(both), plot_learning_curves(epochs, {"rs-10": names})):
        assert fig is not None and not _text_inside(fig), _text_inside(fig)


def test_report_says_the_batch_trained_at_and_sizes_fit_ranges_in_the_runs_unit(tmp_path):
    trials, epochs = synthetic_trials(regimes=(("rs-10", 10),), failures=False)
    trials["flops"] = (trials["flops"] / 1e3).astype(int)  # tiny networks: MFLOPs, not GFLOPs
    trials["batch_size"], trials["lr_peak"] = 64, 0.025
    write_report(trials, epochs, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Trained at batch 64 (peak learning rate 0.025)." in md
    fits = pd.read_csv(tmp_path / "r" / "tables" / "scaling_law_fits.csv")
    header = next(line for line in md.splitlines() if "| dimension |" in line)
    assert "MFLOPs range" in header and "0.000-0.000" not in md and len(fits) > 0


def _store_trials(tmp_path, axes: dict) -> pd.DataFrame:
    """The trials table the results store builds for a tiny digits sweep over ``axes``: the sweep's
    plan, and a journal whose epochs carry made-up accuracies in place of training."""
    from sweep_helpers import TINY_BASE, tiny_sweep

    from experiments.results.store import build_tables
    from experiments.sweep.spec import load_sweep, make_plan

    spec = tiny_sweep(tmp_path / "run", seeds=(0, 1), epochs=1)
    spec["space"] = {"base": {**TINY_BASE, "block": "bottleneck", "depth": 11, "cardinality": 2,
                              "bottleneck_width": 32}, "axes": axes}
    plan, _ = make_plan(load_sweep(spec))
    events = []
    for i, trial in enumerate(plan):
        tid = trial["trial_id"]
        events += [{"event": "start", "trial_id": tid},
                   {"event": "epoch", "trial_id": tid, "epoch": 1, "val_top1": 80.0 + 1.5 * i, "train_loss": 0.5},
                   {"event": "end", "trial_id": tid, "status": "done"}]
    trials, _ = build_tables(plan, events)
    return trials


def test_a_sweep_over_block_form_and_shortcut_shows_both_axes(tmp_path):
    trials = _store_trials(tmp_path, {"block_form": ["grouped", "branches"], "shortcut": [True, False]})
    assert len(trials) == 8 and (trials["status"] == "done").all()
    out = tmp_path / "report"
    write_report(trials, None, out)
    effects = pd.read_csv(out / "tables" / "axis_effects.csv")
    assert {"block_form", "shortcut"} <= set(effects["axis"])
    assert set(effects.loc[effects["axis"] == "block_form", "value"]) == {"grouped", "branches"}
    md = (out / "report.md").read_text()
    assert "| block_form | grouped |" in md and "| shortcut |" in md
    svg = (out / "figures" / "axis_effects.svg").read_text()
    assert ">block form" in svg and ">shortcut" in svg  # the panels' x labels
    # grouped and branches cost the same: one equal-FLOP group whose members the table tells apart
    equal = pd.read_csv(out / "tables" / "equal_flop.csv")
    assert {"block_form", "shortcut"} <= set(equal.columns)
    configs = pd.read_csv(out / "tables" / "configs.csv")
    assert {"block_form", "shortcut"} <= set(configs.columns)


def test_a_report_that_fails_midway_leaves_the_old_one_and_no_temporary_files(tmp_path, monkeypatch):
    import reports.report as sections

    trials, epochs = synthetic_trials(depths=(26, 50), widths=(1.0,), resolutions=(32,), failures=False)
    short = (sections.run_section, sections.configs_section, sections.learning_curves_section,
             sections.distributions_section)
    monkeypatch.setattr(sections, "SECTIONS", short)  # a short report, to be quick
    out = tmp_path / "report"
    write_report(trials, epochs, out, title="first")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("killed while drawing")

    monkeypatch.setattr(sections, "plot_error_edf", boom)  # a section halfway through the report
    with pytest.raises(RuntimeError, match="killed while drawing"):
        write_report(trials.assign(final_top1=trials["final_top1"] - 1), None, out, title="second")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and b"# first" in after[Path("report.md")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder beside it
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_a_new_report_replaces_the_whole_folder(tmp_path, monkeypatch):
    import reports.report as sections

    short = (sections.run_section, sections.pareto_section, sections.learning_curves_section, sections.configs_section)
    monkeypatch.setattr(sections, "SECTIONS", short)  # a short report, to be quick
    trials, epochs = synthetic_trials(depths=(26, 50), widths=(1.0,), resolutions=(32,), failures=False)
    out = tmp_path / "report"
    first = write_report(trials, epochs, out)
    assert (out / "figures" / "learning_curves.png").is_file()
    second = write_report(trials, None, out)  # no epochs: no learning curves, and none left from before
    assert not (out / "figures" / "learning_curves.png").exists()
    assert len(second["figures"]) == len(first["figures"]) - 2
    assert all(Path(p).is_file() for p in second["figures"] + second["tables"] + [second["summary_json"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_folder_holding_other_files_is_not_replaced(tmp_path):
    trials, _ = synthetic_trials(depths=(26,), widths=(1.0,), resolutions=(32,), failures=False)
    (tmp_path / "trials.csv").write_text("precious")
    with pytest.raises(ArchScaleError) as e:
        write_report(trials, None, tmp_path)
    assert e.value.field == "out" and "trials.csv" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials.csv"]
    with pytest.raises(ArchScaleError, match="is a file"):
        write_report(trials, None, tmp_path / "trials.csv")


def test_one_seed_runs_say_nothing_about_seeds_and_tables_use_the_figures_flop_unit(tmp_path):
    trials, epochs = synthetic_trials(seeds=1, failures=False)
    trials["flops"] = trials["flops"] / 5e3  # a tiny network's MFLOPs
    manifest = {"name": "tiny", "description": "a small run", "output_dir": "/runs/tiny", "seeds": [0],
                "space": {"name": "tiny", "summary": "18 configs"},
                "spec": {"space": {"axes": {"depth": [26, 50, 101]}, "paired": [{"cardinality": [1, 4],
                                                                                 "bottleneck_width": [16, 8]}]}},
                "regimes": {"rs-10": {"epochs": 10, "schedule": "cosine", "batch_size": 64, "lr_per_256": 0.1}},
                "dataset": {"name": "digits", "root": None}, "versions": {"torch": "2.14.1", "pandas": "3"},
                "git_commit": "0123456789abcdef0123"}
    write_report(trials, epochs, tmp_path, manifest=manifest)
    md = (tmp_path / "report.md").read_text()
    assert "Bars from the worst" not in md and "±1 std over seeds" not in md and "within spread" not in md
    assert "Blue line: Pareto front" in md and "Results of every finished configuration" in md
    front = md.split("### Pareto-optimal configurations")[1].split("\n\n")[1]
    assert front.splitlines()[0] == "| regime | config | MFLOPs | params (M) | top-1 (%) |"
    # the Run section is a table a person reads; the raw record stays in manifest.json
    run = md.split("## Run")[1].split("\n## ")[0]
    assert run.lower().count("seed") == 2  # '1 seed.' and the seeds row of the Run table
    assert "| space | tiny: 18 configs; varies depth [26, 50, 101]; cardinality [1, 4] with bottleneck_width " \
           "[16, 8] |" in run
    assert "| regime `rs-10` | 10 epochs, cosine schedule, batch 64 (peak lr 0.025) |" in run
    assert "| git commit | 0123456789ab |" in run and "| software | torch 2.14.1 |" in run
    assert "`/runs/tiny/manifest.json`" in run and "{" not in run


def test_a_short_resolution_step_is_drawn_as_a_line_like_the_width_step():
    # resolution 32 -> 36 px is 1.27x the FLOPs: a step too short to fit, still drawn from the base
    trials, _ = synthetic_trials(depths=(26,), widths=(0.5, 1.0), resolutions=(32, 36), regimes=(("rs-10", 10),),
                                 failures=False)
    fig = plot_dimension_curves(trials)
    ax = fig.axes[0]
    lines = {c.get_label().split(":")[0]: c.lines[0] for c in ax.containers}
    assert set(lines) == {"width", "resolution"}
    for dim in ("width", "resolution"):
        assert len(lines[dim].get_xdata()) == 2 and lines[dim].get_linewidth() > 0, dim


def test_learning_curves_tick_whole_epochs():
    from reports.compare_plot import plot_learning_curves

    trials, epochs = synthetic_trials(depths=(26,), widths=(1.0,), resolutions=(32,), regimes=(("short", 3),),
                                      failures=False)
    fig = plot_learning_curves(epochs, {"short": list(trials["name"].unique())})
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    assert ax.get_title() == "short (3 epochs)"
