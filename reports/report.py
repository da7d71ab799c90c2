"""``write_report``: a sweep's results tables -> a report folder (Markdown, HTML, figures, CSV tables).

    out_dir/report.md       every figure and table, figures linked
    out_dir/report.html     the same, self-contained (figures embedded as PNG)
    out_dir/summary.json    the dict ``write_report`` returns
    out_dir/figures/*.png, *.svg
    out_dir/tables/*.csv

Works on a sweep that is still running or partly failed: only finished trials (done, or stopped
early by ASHA) are drawn; diverged, failed, running and pending trials are listed.

The report is a sequence of sections (``SECTIONS``), each a function that reads the run from a
``Report`` and adds its headings, figures and tables; adding a plot means adding one section.
The folder is built beside ``out_dir`` and swapped in whole at the end, so a crash or a kill
mid-report leaves the previous report as it was.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scaling.conventions import FLOP_CONVENTION
from scaling.errors import ArchScaleError
from scaling.files import atomic_dir, atomic_write, atomic_write_text

from .binning import equal_flop_table
from .compare_plot import plot_axis_effects, plot_equal_flop, plot_error_edf, plot_learning_curves
from .digests import (axis_effects_digest, best_dimension_text, clipped, equal_flop_digest, fits_digest,
                      front_digest, spread_along, trained_at, trial_columns, trial_digest)
from .dimensions import best_dimension, dimension_members, scaling_law_fits
from .distributions import axis_effects
from .devices_plot import device_time, plot_device_time
from .document import Document
from .pareto import pareto_configs
from .pareto_plot import COSTS, REFERENCE_MIN_EPOCHS, plot_pareto
from .reference import IMAGENET_NAMES, is_imagenet, load_reference
from .scaling_plot import plot_dimension_curves, plot_scaling_curves
from .style import save_figure
from .tables import aggregate_seeds, dataset_name, normalize_trials, regime_order, status_counts

__all__ = ["write_report", "Report", "SECTIONS"]

# ----- the report's fixed text ------------------------------------------------------------------
RUN_NOTE = (f"FLOPs everywhere are per image in fvcore's convention ({FLOP_CONVENTION}), as in the "
            "ResNeXt paper; the ResNet-RS paper's FLOPs are twice these. Accuracies are final top-1 "
            "on the validation split, in %, averaged over seeds where a configuration has several. "
            "Trials stopped early by ASHA are results with fewer epochs (drawn hollow); diverged "
            "and failed trials are listed at the end, never drawn.")
NO_FINISHED_NOTE = ("None of the {n} trials has finished with a result, so there is nothing to plot. "
                    "Run `archscale report` again when trials have finished.")
PARETO_INTRO = ("One panel per training regime. The Pareto-optimal configurations (no other configuration is "
                "both cheaper and more accurate) are joined and labelled; cost axes are logarithmic.")
PARETO_CAPTION = ("**Top-1 accuracy vs {cost}.** Seed means, bars from the worst to the best seed; "
                  "blue line: Pareto front.")
PARETO_FLOPS_NOTE = f" FLOPs per image, fvcore convention ({FLOP_CONVENTION})."
PARETO_REFERENCE_NOTE = (" Published ImageNet results (ResNet and ResNeXt from Xie et al. 2017, whose FLOPs are "
                         "multiply-adds; ResNet-RS from Bello et al. 2021, whose FLOPs are halved here to "
                         f"multiply-adds) are drawn on regimes of at least {REFERENCE_MIN_EPOCHS} epochs.")
PARETO_LATENCY_NOTE = " Latency: median batch-1 forward pass."
SCALING_CURVES_CAPTION = (
    "**Depth and width scaling per resolution and regime** (ResNet-RS study). One line per depth, one "
    "marker per width multiplier, seed means with min-max bars; columns: regimes, shortest training on "
    "the left; rows: input resolutions. Where a depth line lies above the points of another depth at "
    "equal FLOPs, depth is the better way to spend them.")
DIMENSION_CURVES_CAPTION = (
    "**One dimension at a time.** From the common base (star, the cheapest configuration, or the "
    "sweep's scaling strategies) along depth, width, cardinality or resolution only; top-1 error "
    "against FLOPs, with the fitted power law dashed.")
FITS_CAPTION = ("Fit of top-1 error = a · GFLOPs^-b + c to every trial (seeds as separate points) "
                "of each dimension; ± one standard error. The last column is the slope of the fitted "
                "curve at the regime's budget (the largest FLOPs every fitted dimension reaches): "
                "percentage points of error removed by doubling FLOPs there.")
EQUAL_FLOP_CAPTION = (
    "**Configurations at roughly equal FLOPs** (within {tolerance:.0%} of the cheapest in the "
    "group, or the equal-FLOP matcher's groups), ranked by top-1 as the ResNeXt paper compares "
    "cardinality at equal complexity. Bars: ±1 std over seeds.")
EQUAL_FLOP_DIGEST_CAPTION = ("Best configuration of each group and its nearest rival "
                             "(gap in percentage points; 'within spread' when the gap is below the two seed standard "
                             "deviations added):")
ERROR_EDF_CAPTION = "**Error EDF** (pycls): share of finished trials with top-1 error at most x, per regime."
AXIS_EFFECTS_CAPTION = ("**Per-axis effects**: mean top-1 error per value of each design axis, other axes "
                        "averaged over.")
AXIS_EFFECTS_TABLE_CAPTION = "Mean top-1 error (%) per axis value and regime:"
LEARNING_CURVES_CAPTION = ("**Validation top-1 per epoch** of up to six Pareto-optimal "
                           "configurations per regime (top-1 vs FLOPs front, cheapest to most expensive).")
REFERENCE_CAPTION = ("Published ImageNet top-1 (single 224 px crop for ResNet/ResNeXt; ResNet-RS at the "
                     "listed resolution after 350 epochs), converted to multiply-adds:")
NOT_DRAWN_NOTE = ("Diverged (loss went NaN) and failed trials are results to know about but not points to draw; "
                  "running and pending trials have no final result yet: ")

_PARETO_FIGURES = {"flops": "pareto_flops", "params": "pareto_params", "latency_ms": "pareto_latency",
                   "throughput": "pareto_throughput", "train_time_s": "pareto_train_time"}
_MISSING_COST = {
    "flops": "no trial has a FLOP count (`flops` is missing or empty)",
    "params": "no trial has a parameter count (`params` is missing or empty)",
    "latency_ms": "inference latency was not measured in this run (`latency_ms` is missing or empty)",
    "throughput": "inference throughput was not measured in this run (`throughput` is missing or empty)",
    "train_time_s": "no finished trial recorded its training time (`train_time_s` is missing or empty)",
}
#: What a report folder holds; ``write_report`` replaces a folder that holds nothing else.
REPORT_ENTRIES = ("report.md", "report.html", "summary.json", "figures", "tables")


@dataclass
class Report:
    """A report being written: the run it reads and the document and files it adds to.

    ``trials`` is the normalised trials table, ``configs`` its seed aggregate (``aggregate_seeds``,
    computed once and read by every section), ``manifest`` the sweep's manifest (or None),
    ``reference`` the published ImageNet points (None unless every trial ran on ImageNet). Files
    go to ``folder``, the temporary folder that replaces ``out`` at the end; ``summary`` names
    them at ``out``.
    """

    trials: pd.DataFrame
    configs: pd.DataFrame
    epochs: pd.DataFrame
    manifest: dict | None
    regimes: list[str]
    dataset: str | None
    reference: pd.DataFrame | None
    tolerance: float
    doc: Document
    folder: Path
    out: Path
    summary: dict = field(default_factory=dict)

    def add_table(self, frame: pd.DataFrame, name: str) -> str:
        """Write ``frame`` to tables/``name``.csv; returns its path relative to the report."""
        relative = f"tables/{name}.csv"
        atomic_write(self.folder / relative, lambda tmp: frame.to_csv(tmp, index=False))
        self.summary["tables"].append(str(self.out / relative))
        return relative

    def add_figure(self, fig, name: str, caption: str) -> None:
        """Save ``fig`` as figures/``name``.png and .svg and show it with ``caption`` (nothing when None)."""
        if fig is None:
            return
        png, svg = save_figure(fig, self.folder / "figures" / name)
        self.summary["figures"] += [str(self.out / p.relative_to(self.folder)) for p in (png, svg)]
        self.doc.figure(png, svg, caption, self.folder)

    def skip(self, what: str) -> None:
        """Record something the report could not draw, and why."""
        self.summary["skipped"].append(what)


def write_report(trials: pd.DataFrame, epochs: pd.DataFrame | None, out_dir, *, manifest: dict | None = None,
                 title: str | None = None, tolerance: float = 0.15) -> dict:
    """Write the report folder for a sweep's results and return a summary of it.

    ``trials``: one row per trial (the results store's trials table); ``epochs``: one row per
    trial per epoch (may be None or empty); ``manifest``: the sweep's manifest, shown in the
    report (its ``dataset`` is used when trials do not name one); ``tolerance``: relative FLOP
    width of an equal-FLOP bin. Raises ``ArchScaleError("run_dir", ...)`` when ``trials`` has no
    rows, and ``ArchScaleError("out", ...)`` when ``out_dir`` holds anything but a report (the
    report replaces the whole folder). When no trial has finished yet the report lists the
    trials and says so. The folder is replaced in one step: on any error the old report stays.

    Returns ``{"out_dir", "report_md", "report_html", "summary_json", "figures": [paths],
    "tables": [paths], "pareto": {regime: [config names on the top-1 vs FLOPs front, cheapest
    first]}, "status_counts": {status: n}, "n_trials", "n_finished", "dataset",
    "reference_drawn", "best_dimension": {regime: {...}}, "skipped": [what was not drawn and why]}``
    (paths as strings).
    """
    if trials is None or len(trials) == 0:
        raise ArchScaleError("run_dir", "holds no results yet (the trials table has no rows); run a sweep "
                                        "into it first, or pass the directory a sweep wrote")
    out = Path(out_dir)
    _check_replaceable(out)
    with atomic_dir(out) as folder:
        report = _start(trials, epochs, out, folder, manifest=manifest, title=title, tolerance=tolerance)
        for section in (SECTIONS if report.summary["n_finished"] else NO_RESULT_SECTIONS):
            section(report)
        return _finish(report)


def _check_replaceable(out: Path) -> None:
    """Refuse to replace a file, or a folder holding anything but a report."""
    if out.exists() and not out.is_dir():
        raise ArchScaleError("out", f"{out} is a file; name a folder for the report")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in REPORT_ENTRIES) if out.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ArchScaleError("out", f"{out} holds files that are not a report ({shown}) and the report replaces "
                                    "its whole folder; name a new or empty folder")


def _start(trials: pd.DataFrame, epochs: pd.DataFrame | None, out: Path, folder: Path, *,
           manifest: dict | None, title: str | None, tolerance: float) -> Report:
    """The run read once (trials normalised, seeds aggregated) and an empty report in ``folder``."""
    df = normalize_trials(trials)
    dataset = dataset_name(df, manifest)
    n_finished = int(df["finished"].sum())
    for sub in ("figures", "tables"):
        (folder / sub).mkdir()
    summary = {"out_dir": str(out), "figures": [], "tables": [], "pareto": {}, "status_counts": status_counts(df),
               "n_trials": len(df), "n_finished": n_finished, "dataset": dataset,
               "reference_drawn": False, "best_dimension": {}, "skipped": []}
    return Report(trials=df, configs=aggregate_seeds(df), epochs=pd.DataFrame() if epochs is None else epochs,
                  manifest=manifest, regimes=regime_order(df), dataset=dataset,
                  reference=load_reference() if is_imagenet(trials, manifest) else None, tolerance=tolerance,
                  doc=Document(title or (f"Scaling report: {dataset}" if dataset else "Scaling report")),
                  folder=folder, out=out, summary=summary)


def _finish(report: Report) -> dict:
    """Write report.md, report.html and summary.json; returns the summary."""
    folder, out, summary = report.folder, report.out, report.summary
    atomic_write_text(folder / "report.md", report.doc.to_markdown())
    atomic_write_text(folder / "report.html", report.doc.to_html())
    summary.update(report_md=str(out / "report.md"), report_html=str(out / "report.html"),
                   summary_json=str(out / "summary.json"))
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


# ----- sections, in report order ----------------------------------------------------------------
def run_section(report: Report) -> None:
    """What ran: trials per status, regimes, dataset, configurations, seeds, and the manifest."""
    df, doc = report.trials, report.doc
    doc.heading("Run")
    status_text = ", ".join(f"{n} {s}" for s, n in report.summary["status_counts"].items() if n)
    doc.paragraph(f"{len(df)} trials ({status_text}) over {len(report.regimes)} regime(s): "
                  + ", ".join(f"`{r}`" for r in report.regimes) + f"; dataset: {report.dataset or 'not recorded'}; "
                  f"{df['name'].nunique()} configurations, {df['seed'].nunique()} seed(s)." + trained_at(df))
    doc.paragraph(RUN_NOTE, note=True)
    if report.manifest:
        doc.bullets(f"{k}: `{clipped(v)}`" for k, v in report.manifest.items())


def no_result_section(report: Report) -> None:
    """When nothing has finished: says so and lists every trial."""
    report.doc.heading("No finished trials yet")
    report.doc.paragraph(NO_FINISHED_NOTE.format(n=len(report.trials)))
    _trial_list(report, report.trials, "Trials", "trials")


def pareto_section(report: Report) -> None:
    """Top-1 against each cost (FLOPs, params, latency, throughput, training time), and the fronts."""
    report.doc.heading("Pareto fronts: top-1 accuracy against each cost")
    report.doc.paragraph(PARETO_INTRO)
    skipped_before = len(report.summary["skipped"])
    drawn = [rows for rows in (_pareto_figure(report, cost) for cost in COSTS) if rows is not None]
    skipped = report.summary["skipped"][skipped_before:]
    if skipped:
        report.doc.paragraph("Not drawn: " + "; ".join(skipped) + ".", note=True)
    if not drawn:
        return
    rows = pd.concat(drawn)
    if (rows["cost"] == "flops").any():
        report.doc.heading("Pareto-optimal configurations (top-1 vs FLOPs)", 3)
        report.doc.table(front_digest(rows[(rows["cost"] == "flops") & rows["pareto"]]), csv=None)
    csv = report.add_table(rows, "pareto")
    report.doc.paragraph(f"All configurations with their Pareto flags per cost: `{csv}`.", note=True)


def scaling_curves_section(report: Report) -> None:
    """The ResNet-RS depth x width study per resolution and regime."""
    report.doc.heading("Scaling curves")
    fig = plot_scaling_curves(report.trials, configs=report.configs)
    if fig is None:
        report.doc.paragraph("No depth x width study to draw: it needs FLOP counts and more than one depth or "
                             "width.", note=True)
        report.skip("scaling curves: no FLOP counts, or a single depth and width")
    report.add_figure(fig, "scaling_curves", SCALING_CURVES_CAPTION)


def dimensions_section(report: Report) -> None:
    """One dimension at a time from a common base, its power-law fits and the best dimension."""
    members = dimension_members(report.trials, configs=report.configs)
    if members.empty:
        report.doc.paragraph("No configuration differs from a common base in one dimension only: no "
                             "per-dimension curves or scaling-law fits.", note=True)
        report.skip("per-dimension curves: no one-dimension steps from a common base")
        return
    fits = scaling_law_fits(report.trials, members)
    report.add_figure(plot_dimension_curves(report.trials, fits, members, configs=report.configs),
                      "dimension_curves", DIMENSION_CURVES_CAPTION)
    csv = report.add_table(fits, "scaling_law_fits")
    report.doc.heading("Scaling-law fits per dimension (an estimate)", 3)
    report.doc.table(fits_digest(fits, report.trials["flops"]), caption=FITS_CAPTION, csv=csv)
    best = best_dimension(fits)
    report.summary["best_dimension"] = best
    if best:
        report.doc.paragraph("Estimates from the fits, to be read with their uncertainty and point counts:")
        report.doc.bullets(best_dimension_text(regime, b) for regime, b in best.items())
    else:
        report.doc.paragraph("No dimension has enough points for a fit (it needs 4 configurations spanning at "
                             "least 1.5x in FLOPs).", note=True)


def equal_flop_section(report: Report) -> None:
    """Configurations at roughly equal FLOPs ranked by top-1 (the ResNeXt comparison)."""
    report.doc.heading("Equal-FLOP comparison")
    tolerance = report.tolerance
    table = equal_flop_table(report.trials, tolerance, configs=report.configs)
    if table.empty:
        report.doc.paragraph(f"No two configurations lie within {tolerance:.0%} of each other's FLOPs (or share "
                             "a matcher group): nothing to compare at equal cost.", note=True)
        report.skip("equal-FLOP comparison: no group with two configurations")
        return
    csv = report.add_table(table, "equal_flop")
    report.add_figure(plot_equal_flop(report.trials, tolerance, table=table), "equal_flop",
                      EQUAL_FLOP_CAPTION.format(tolerance=tolerance))
    report.doc.table(equal_flop_digest(table), caption=EQUAL_FLOP_DIGEST_CAPTION, csv=csv)


def distributions_section(report: Report) -> None:
    """The error EDF over the design space and the mean error per value of each design axis."""
    report.doc.heading("Distributions over the design space")
    report.add_figure(plot_error_edf(report.trials), "error_edf", ERROR_EDF_CAPTION)
    effects = axis_effects(report.trials)
    if effects.empty:
        return
    csv = report.add_table(effects, "axis_effects")
    report.add_figure(plot_axis_effects(report.trials, table=effects), "axis_effects", AXIS_EFFECTS_CAPTION)
    report.doc.table(axis_effects_digest(effects, report.regimes), caption=AXIS_EFFECTS_TABLE_CAPTION, csv=csv)


def learning_curves_section(report: Report) -> None:
    """Validation top-1 per epoch of up to six configurations on each regime's FLOP front."""
    if not len(report.epochs):
        return
    chosen = {r: spread_along(report.summary["pareto"].get(r, [])) for r in report.regimes}
    planned = report.trials.groupby("regime")["epochs"].max().to_dict()
    fig = plot_learning_curves(report.epochs, chosen, planned_epochs=planned)
    if fig is not None:
        report.doc.heading("Learning curves")
        report.add_figure(fig, "learning_curves", LEARNING_CURVES_CAPTION)


DEVICE_TIME_CAPTION = ("**Training time against the device time each trial used** (training time x devices: "
                       "GPUs, or CPU workers). Dotted lines: 1, 2, 4, ... devices. A trial on more workers waits "
                       "less; it lies to the right of the same training on fewer by what its workers spent "
                       "communicating. Images/s are the whole trial's.")


def devices_section(report: Report) -> None:
    """Training time against device-seconds of every finished trial, and the table of how each ran
    (workers, devices, device-seconds, images/s); nothing for runs that did not record it."""
    rows = device_time(report.trials)
    if rows is None:
        return
    report.doc.heading("Devices and time")
    report.add_figure(plot_device_time(rows), "device_time", DEVICE_TIME_CAPTION)
    report.add_table(rows, "device_time")


def reference_section(report: Report) -> None:
    """Published ImageNet results in this project's FLOP convention (ImageNet runs only)."""
    report.doc.heading("Published reference points")
    ref = report.reference
    if ref is None:
        report.doc.paragraph(f"Published ImageNet results are drawn only when every trial ran on ImageNet (dataset "
                             f"named one of {', '.join(sorted(IMAGENET_NAMES))}); this run's dataset is "
                             f"{report.dataset or 'not recorded'}, so none are drawn.", note=True)
        return
    ref = ref.assign(**{"GFLOPs (as published)": ref["flops_g"],
                        "GFLOPs (fvcore)": (ref["flops"] / 1e9).map(lambda v: f"{v:.3g}")})
    shown = ref[["model", "top1", "params_m", "GFLOPs (as published)", "flop_convention", "GFLOPs (fvcore)",
                 "resolution", "source"]].rename(columns={"top1": "top-1 (%)", "params_m": "params (M)"})
    report.doc.table(shown, caption=REFERENCE_CAPTION, csv=report.add_table(ref, "imagenet_reference"))


def not_drawn_section(report: Report) -> None:
    """Diverged, failed, running and pending trials: listed, never drawn."""
    rest = report.trials[~report.trials["finished"]]
    if rest.empty:
        return
    counts = rest["status"].value_counts()
    report.doc.heading("Trials not drawn")
    report.doc.paragraph(NOT_DRAWN_NOTE + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    _trial_list(report, rest, None, "trials_not_drawn")


def configs_section(report: Report) -> None:
    """The seed-averaged results of every finished configuration, as a table file."""
    csv = report.add_table(report.configs, "configs")
    report.doc.paragraph(f"Seed-averaged results of every finished configuration: `{csv}`.", note=True)


#: The sections of a report with finished trials, in order: adding a figure or table means adding a section here.
SECTIONS = (run_section, pareto_section, scaling_curves_section, dimensions_section, equal_flop_section,
            distributions_section, learning_curves_section, devices_section, reference_section, not_drawn_section,
            configs_section)
#: The sections of a report on which no trial has finished yet.
NO_RESULT_SECTIONS = (run_section, no_result_section)


# ----- pieces of the sections -------------------------------------------------------------------
def _pareto_figure(report: Report, cost: str) -> pd.DataFrame | None:
    """Draw the Pareto figure of one cost; returns its configurations with their Pareto flags
    (None when no trial has the cost). The FLOP front goes into the summary."""
    spec = COSTS[cost]
    configs = pareto_configs(report.trials, spec.column, minimize_cost=spec.minimize, configs=report.configs)
    if configs[spec.column].notna().sum() == 0:
        report.skip(f"Pareto vs {spec.title}: {_MISSING_COST[cost]}")
        return None
    fig = plot_pareto(report.trials, cost, reference=report.reference, configs=report.configs)
    if cost == "flops":
        for regime in report.regimes:
            front = configs[(configs["regime"] == regime) & configs["pareto"]].sort_values("flops")
            report.summary["pareto"][regime] = front["name"].tolist()
        report.summary["reference_drawn"] = report.reference is not None
    caption = PARETO_CAPTION.format(cost=spec.title)
    if cost == "flops":
        caption += PARETO_FLOPS_NOTE
    if report.reference is not None and cost in ("flops", "params"):
        caption += PARETO_REFERENCE_NOTE
    if cost == "latency_ms":
        caption += PARETO_LATENCY_NOTE
    report.add_figure(fig, _PARETO_FIGURES[cost], caption)
    keep = configs[configs[spec.column].notna()]
    return keep.assign(cost=cost, cost_value=keep[spec.column])[
        ["cost", "regime", "name", "cost_value", "flops", "params", "top1_mean", "top1_std", "n_seeds", "pareto"]]


def _trial_list(report: Report, rows: pd.DataFrame, heading: str | None, name: str) -> None:
    """List ``rows`` under ``heading`` and write them to tables/``name``.csv."""
    if rows.empty:
        return
    if heading:
        report.doc.heading(heading)
    csv = report.add_table(rows[trial_columns(rows)], name)
    report.doc.table(trial_digest(rows), csv=csv)
