"""``write_report``: a sweep's results tables -> a report folder (Markdown, HTML, figures, CSV tables).

    out_dir/report.md       every figure and table, figures linked
    out_dir/report.html     the same, self-contained (figures embedded as PNG)
    out_dir/summary.json    the dict ``write_report`` returns
    out_dir/figures/*.png, *.svg
    out_dir/tables/*.csv

Works on a sweep that is still running or partly failed: only finished trials (done, or stopped
early by ASHA) are drawn; diverged, failed, running and pending trials are listed. Trials flagged by
their health verdict (the trials table's ``health``: at chance, not converged, diverged, seeds that
disagree) are drawn hollow and left out of fronts, fits, equal-FLOP winners and findings, each
place saying what was left out.

It reads top-down: the verdict (health counts and the sweep's answer, and first of all a warning
when most trials are flagged), the findings, the figures, the Run section and provenance, the
claims the sweep cannot test (once each, with the regimes they would need), and the next sweep.

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

from scaling.conventions import FLOP_CONVENTION, HEALTH_VALUES
from scaling.errors import ArchScaleError
from scaling.files import atomic_dir, atomic_write, atomic_write_text

from .binning import equal_flop_table, format_flops
from .compare_plot import plot_axis_effects, plot_equal_flop, plot_error_edf, plot_learning_curves
from .costs import attach_costs, cost_note
from .design_space import axis_effects
from .devices_plot import device_time, plot_device_time
from .digests import (
    axis_effects_digest,
    best_dimension_text,
    equal_flop_digest,
    finding_text,
    findings_digest,
    fits_digest,
    front_digest,
    run_digest,
    spread_along,
    trained_at,
    trial_columns,
    trial_digest,
)
from .dimension_steps import best_dimension, dimension_members, scaling_law_fits
from .document import Document
from .findings import CLAIMS, assess_claims
from .findings_plot import plot_finding
from .next_sweep import DEFAULT_BUDGET, plan_next_sweep
from .pareto import pareto_configs
from .pareto_plot import COSTS, REFERENCE_MIN_EPOCHS, plot_pareto
from .reference import DATASET_NAMES, reference_for
from .scaling_plot import plot_dimension_curves, plot_scaling_curves
from .style import save_figure
from .tables import chance_levels, dataset_name, flagged_summary, regime_order, status_counts, tables_of
from .timeline_plot import phase_columns, plot_timeline, timeline

__all__ = ["write_report", "Report", "SECTIONS"]

# ----- the report's fixed text ------------------------------------------------------------------
RUN_NOTE = (f"FLOPs everywhere are per image in fvcore's convention ({FLOP_CONVENTION}), as in the "
            "ResNeXt paper; the ResNet-RS paper's FLOPs are twice these. Accuracies are final top-1 "
            "on the validation split, in %{seeds}. "
            "Trials stopped early by ASHA are results with fewer epochs (drawn hollow); trials flagged by "
            "their health verdict are drawn hollow too, and left out of fronts, fits and findings; diverged "
            "and failed trials are listed under 'Trials not drawn', never drawn.")
MANIFEST_NOTE = "The full record (the spec as written, every regime field, package versions, host): `{path}`."
NO_FINISHED_NOTE = ("None of the {n} trials has finished with a result, so there is nothing to plot. "
                    "Run `archscale report` again when trials have finished.")
PARETO_INTRO = ("One panel per training regime. The Pareto-optimal configurations (no other configuration is "
                "both cheaper and more accurate) are joined and labelled; cost axes are logarithmic.")
PARETO_CAPTION = "**Top-1 accuracy vs {cost}.** {seeds}: Pareto front."
PARETO_FLOPS_NOTE = f" FLOPs per image, fvcore convention ({FLOP_CONVENTION})."
PARETO_REFERENCE_NOTE = (" Published ImageNet results (ResNet and ResNeXt from Xie et al. 2017, whose FLOPs are "
                         "multiply-adds; ResNet-RS from Bello et al. 2021, whose FLOPs are halved here to "
                         f"multiply-adds) are drawn on regimes of at least {REFERENCE_MIN_EPOCHS} epochs.")
PARETO_LATENCY_NOTE = " Latency: median batch-1 forward pass."
PARETO_TRAIN_TIME_NOTE = (" Training time: epochs trained x images per epoch / training images/s measured alone on "
                          "the device (the training steps only; evaluation and start-up left out).")
SCALING_CURVES_CAPTION = (
    "**Depth and width scaling per resolution and regime** (ResNet-RS study). One line per depth, one "
    "marker per width multiplier{seeds}; columns: regimes, shortest training on "
    "the left; rows: input resolutions. Where a depth line lies above the points of another depth at "
    "equal FLOPs, depth is the better way to spend them.")
DIMENSION_CURVES_CAPTION = (
    "**One dimension at a time.** From the common base (star, the cheapest configuration, or the "
    "sweep's scaling strategies) along depth, width, cardinality or resolution only; top-1 error "
    "against FLOPs, with the fitted power law dashed.")
FITS_CAPTION = ("Fit of top-1 error = a · GFLOPs^-b + c to every trial{seeds} "
                "of each dimension; ± one standard error. The last column is the slope of the fitted "
                "curve at the regime's budget (the largest FLOPs every fitted dimension reaches): "
                "percentage points of error removed by doubling FLOPs there.")
EQUAL_FLOP_CAPTION = (
    "**Configurations at roughly equal FLOPs** (within {tolerance:.0%} of the cheapest in the "
    "group, or the equal-FLOP matcher's groups), ranked by top-1 as the ResNeXt paper compares "
    "cardinality at equal complexity.{seeds}")
EQUAL_FLOP_DIGEST_CAPTION = "Best configuration of each group and its nearest rival (gap in percentage points{seeds}):"
#: What the captions say about seeds: {caption: (words when some configuration has several seeds, words
#: when every configuration has one)}.
SEED_WORDS = {"run": (", averaged over seeds where a configuration has several", ""),
              "pareto": ("Seed means, bars from the worst to the best seed; blue line", "Blue line"),
              "scaling": (", seed means with min-max bars", ""), "fits": (" (seeds as separate points)", ""),
              "equal_flop": (" Bars: ±1 std over seeds.", ""),
              "equal_flop_digest": ("; 'within spread' when the gap is below the two seed standard deviations "
                                    "added", ""),
              "configs": ("Seed-averaged results", "Results")}
ERROR_EDF_CAPTION = "**Error EDF** (pycls): share of finished trials with top-1 error at most x, per regime."
AXIS_EFFECTS_CAPTION = ("**Per-axis effects**: mean top-1 error per value of each design axis, other axes "
                        "averaged over.")
AXIS_EFFECTS_TABLE_CAPTION = "Mean top-1 error (%) per axis value and regime:"
LEARNING_CURVES_CAPTION = ("**Validation top-1 per epoch** of up to six Pareto-optimal "
                           "configurations per regime (top-1 vs FLOPs front, cheapest to most expensive).")
REFERENCE_CAPTION = ("Published ImageNet top-1 (single 224 px crop for ResNet/ResNeXt; ResNet-RS at the "
                     "listed resolution after 350 epochs), converted to multiply-adds:")
CIFAR_REFERENCE_CAPTION = "Published CIFAR top-1 (100 - the ResNeXt paper's test error, mean of 10 runs):"
REGIME_SOURCES_CAPTION = ("Regime `{regime}`: every value and where it comes from (paper, official config, "
                          "project choice with its reason, or override of the named regime):")
FINDINGS_INTRO = (
    "Each published claim this sweep can test, measured on comparisons between its configurations: pairs at "
    "equal FLOPs that spend them differently, or one-dimension steps (two configurations that differ in one "
    "dimension only). Every effect is signed so that a positive value is what the claim predicts; the verdict "
    "is supported when its 95 % interval lies above zero, contradicted when it lies below, inconclusive when it "
    "holds zero. How each interval was made is said with it.")
FINDING_CAPTION = {
    "pairs": ("**The equal-FLOP pairs behind the {claim} claim ({source}).** Left: top-1 against FLOPs, each pair's "
              "two configurations joined (filled: the side the claim favours). Right: each pair's difference "
              "(seed means), the effect (line) and its 95 % interval (band); dashed: zero."),
    "steps": ("**The one-dimension steps behind the {claim} claim ({source}).** Left: top-1 against FLOPs, each "
              "step an arrow from the cheaper configuration to the costlier. Right: each step's top-1 gain per "
              "doubling of FLOPs (seed means) and each dimension's mean (line); dashed: zero.")}
UNTESTABLE_NOTE = "The papers' claims this sweep cannot test, each once, with what it would need in each regime:"
LEFT_OUT_NOTE = ("Left out of {what}: {configs}, whose trials are flagged by their health verdicts (see Verdict); "
                 "drawn hollow where the figure shows them.")
#: What each verdict but ok means, said under the health counts for the verdicts a run has.
HEALTH_WORDS = {"at_chance": "final top-1 near chance (100 / classes)",
                "not_converged": "still improving fast at the end",
                "diverged": "the loss went NaN or climbed far above its lowest",
                "seeds_disagree": "the network's seeds end far apart"}
HEALTH_NOTE = ("The thresholds are the sweep's `health:` rules (manifest.json); each trial's reason is in the trials "
               "table's `health_reason`.")
#: The likely cause of a run whose trials are mostly flagged, by the most common verdict, and what to run instead.
LIKELY_CAUSE = {
    "at_chance": ("the networks did not learn (their loss stayed at chance)",
                  "a lower learning rate (`lr_per_256`) or a longer warm-up, and check the data's labels"),
    "not_converged": ("training ended while the networks still improved fast", "more epochs"),
    "diverged": ("the learning rate is too high for these networks", "a lower `lr_per_256` or a longer warm-up"),
    "seeds_disagree": ("the results depend on the seed more than on the network",
                       "more epochs or a longer warm-up, and more seeds"),
}
NOT_DRAWN_NOTE = ("Diverged (loss went NaN) and failed trials are results to know about but not points to draw; "
                  "running and pending trials have no final result yet: ")

_PARETO_FIGURES = {"flops": "pareto_flops", "params": "pareto_params", "latency_ms": "pareto_latency",
                   "throughput": "pareto_throughput", "train_time_s": "pareto_train_time"}
_MISSING_COST = {
    "flops": "no trial has a FLOP count (`flops` is missing or empty)",
    "params": "no trial has a parameter count (`params` is missing or empty)",
    "latency_ms": "inference latency was not measured: the cost store (costs.parquet) has no row of these networks; "
                  "`archscale costs RUN_DIR` measures them",
    "throughput": "inference throughput was not measured: the cost store (costs.parquet) has no row of these "
                  "networks; `archscale costs RUN_DIR` measures them",
    "train_time_s": "training speed was not measured: the cost store (costs.parquet) has no row of these networks "
                    "(or no finished trial recorded its images per epoch); `archscale costs RUN_DIR` measures them",
}
#: What a report folder holds; ``write_report`` replaces a folder that holds nothing else.
REPORT_ENTRIES = ("report.md", "report.html", "summary.json", "figures", "tables")


@dataclass
class Report:
    """A report being written: the run it reads and the document and files it adds to.

    ``trials`` is the normalised trials table, ``configs`` its seed aggregate (``aggregate_seeds``,
    computed once and read by every section), ``manifest`` the sweep's manifest (or None),
    ``reference`` the published points of the run's data set (``reference_for``; None if it has none),
    ``cost_source`` where the cost axes' figures come from (``reports.costs.attach_costs``). Files
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
    cost_source: dict | None = None
    #: The configurations a flagged seed keeps out of every analysis (``aggregate_seeds(flagged=True)``).
    flagged_configs: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The devices' utilisation samples of the sweep (time, device, utilisation_pct, source), or None.
    utilisation: pd.DataFrame | None = None
    _findings: list | None = None

    def findings(self) -> list:
        """The claims assessed on this run (``assess_claims``), computed once."""
        if self._findings is None:
            self._findings = assess_claims(self.trials, tolerance=self.tolerance)
        return self._findings

    def left_out(self, what: str) -> None:
        """Say, under a section, which flagged configurations it left out (nothing when none)."""
        configs = flagged_summary(self.trials)
        if configs:
            self.doc.paragraph(LEFT_OUT_NOTE.format(what=what, configs=configs), note=True)

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

    def seed_words(self, caption: str) -> str:
        """What ``caption`` says about seeds (``SEED_WORDS``): seed wording only when some configuration has several."""
        several = bool(len(self.configs)) and self.configs["n_seeds"].max() > 1
        return SEED_WORDS[caption][0 if several else 1]

    def skip(self, what: str) -> None:
        """Record something the report could not draw, and why."""
        self.summary["skipped"].append(what)


def write_report(trials: pd.DataFrame, epochs: pd.DataFrame | None, out_dir, *, manifest: dict | None = None,
                 title: str | None = None, tolerance: float = 0.15, progress=None,
                 utilisation: pd.DataFrame | None = None, costs: pd.DataFrame | None = None) -> dict:
    """Write the report folder for a sweep's results and return a summary of it.

    ``trials``: one row per trial (the results store's trials table); ``epochs``: one row per
    trial per epoch (may be None or empty); ``manifest``: the sweep's manifest, shown in the
    report (its ``dataset`` is used when trials do not name one); ``tolerance``: relative FLOP
    width of an equal-FLOP bin; ``costs``: the run's cost store (costs.parquet), which the latency,
    throughput and training-time axes read (``reports.costs.attach_costs``; without it they are
    not drawn); ``progress(sections, total=, desc=)`` wraps the sections as they
    are written (a progress bar); ``utilisation``: the devices' samples over the sweep (time,
    device, utilisation_pct, source), drawn under its timeline. Raises ``ArchScaleError("run_dir", ...)`` when ``trials`` has no
    rows, and ``ArchScaleError("out", ...)`` when ``out_dir`` holds anything but a report (the
    report replaces the whole folder). When no trial has finished yet the report lists the
    trials and says so. The folder is replaced in one step: on any error the old report stays.

    Returns ``{"out_dir", "report_md", "report_html", "summary_json", "figures": [paths],
    "tables": [paths], "pareto": {regime: [config names on the top-1 vs FLOPs front, cheapest
    first]}, "status_counts": {status: n}, "n_trials", "n_finished", "dataset",
    "reference_drawn", "best_dimension": {regime: {...}}, "findings": [{claim, regime, verdict, effect, low,
    high, unit, method, configs, needs}], "next_sweep": {base, regime, strategies, ranking},
    "skipped": [what was not drawn and why]}``
    (paths as strings).
    """
    if trials is None or len(trials) == 0:
        raise ArchScaleError("run_dir", "holds no results yet (the trials table has no rows); run a sweep "
                                        "into it first, or pass the directory a sweep wrote")
    out = Path(out_dir)
    _check_replaceable(out)
    with atomic_dir(out) as folder:
        report = _start(trials, epochs, out, folder, manifest=manifest, title=title, tolerance=tolerance,
                        costs=costs)
        report.utilisation = utilisation
        sections = SECTIONS if report.summary["n_finished"] else NO_RESULT_SECTIONS
        for section in progress(sections, total=len(sections), desc="report") if progress else sections:
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
           manifest: dict | None, title: str | None, tolerance: float, costs: pd.DataFrame | None = None
           ) -> Report:
    """The run read once (``tables_of``: trials normalised with their costs, seeds aggregated) and an empty
    report in ``folder``."""
    with_costs, cost_source = attach_costs(trials, costs)
    run = tables_of(with_costs, epochs)
    df = run.trials
    dataset = dataset_name(df, manifest)
    one_class = [c for c in chance_levels(df) if c > 50]
    if one_class:
        raise ArchScaleError("dataset", f"the trials trained on {100 / max(one_class):.0f} class (chance top-1 "
                                        f"{max(one_class):.0f} %): a classification data set needs at least 2 "
                                        f"classes; give one with 2 or more")
    n_finished = int(df["finished"].sum())
    for sub in ("figures", "tables"):
        (folder / sub).mkdir()
    summary = {"out_dir": str(out), "figures": [], "tables": [], "pareto": {}, "status_counts": status_counts(df),
               "n_trials": len(df), "n_finished": n_finished, "dataset": dataset,
               "reference_drawn": False, "best_dimension": {}, "findings": [], "next_sweep": None, "skipped": [],
               "health": {h: int((df["health"] == h).sum()) for h in HEALTH_VALUES if (df["health"] == h).any()},
               "flagged": df.loc[df["health"].isin(HEALTH_VALUES[1:]),
                                 ["trial_id", "name", "regime", "seed", "health", "health_reason"]].to_dict("records"),
               "left_out": flagged_summary(df)}
    return Report(trials=df, configs=run.configs, epochs=run.epochs,
                  manifest=manifest, regimes=regime_order(df), dataset=dataset,
                  reference=reference_for(trials, manifest), tolerance=tolerance,
                  doc=Document(title or (f"Scaling report: {dataset}" if dataset else "Scaling report")),
                  folder=folder, out=out, summary=summary, flagged_configs=run.flagged_configs,
                  cost_source=cost_source)


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
def verdict_section(report: Report) -> None:
    """The report's first word: whether the trials can be trusted (health counts, the flagged trials,
    and first of all a warning when most are flagged, with the likely cause and what to run instead),
    any shortened regime, and the sweep's answer (the tested findings and the best configuration)."""
    df, doc = report.trials, report.doc
    doc.heading("Verdict")
    doc.box()
    counts = report.summary["health"]
    judged = sum(counts.values())
    flagged = judged - counts.get("ok", 0)
    short = {r: line for r, line in ((report.manifest or {}).get("short_regimes") or {}).items()
             if r in report.regimes}
    if judged and 2 * flagged > judged:
        doc.paragraph(f"**Most trials are flagged ({flagged} of {judged} with a result): " + _likely_cause(report)
                      + "**")
    for line in short.values():
        doc.paragraph(f"Shortened regime: {line}")
    if judged:
        meanings = "; ".join(f"`{h}`: {HEALTH_WORDS[h]}" for h in counts if h in HEALTH_WORDS)
        doc.paragraph(f"**Health** of the {judged} trials with a result (of {len(df)}): "
                      + ", ".join(f"{n} {h}" for h, n in counts.items()) + "."
                      + (f" {meanings}. {HEALTH_NOTE}" if meanings else ""))
    else:
        doc.paragraph(f"No trial of {len(df)} has a result yet, so none has a health verdict.")
    rows = df[df["health"].isin(HEALTH_VALUES[1:])]
    if len(rows):
        shown = rows[["name", "regime", "seed", "health", "top1", "health_reason"]].rename(
            columns={"top1": "top-1 (%)", "health_reason": "why"}).assign(**{"top-1 (%)": lambda t: t["top-1 (%)"].map(
                lambda v: "–" if pd.isna(v) else f"{v:.1f}")})
        doc.table(shown.head(40), caption="Flagged trials (drawn hollow, left out of fronts, fits and findings):",
                  csv=report.add_table(rows[["trial_id", "name", "regime", "seed", "status", "health", "top1",
                                             "health_reason"]], "flagged_trials"))
    answer = [_finding_line(f) for f in report.findings() if f.tested]
    best = _best_lines(report)
    if answer or best:
        doc.paragraph("**The sweep's answer** (details under Findings):")
        doc.bullets(answer + best)
    doc.box(start=False)


def _likely_cause(report: Report) -> str:
    """The likely cause of a mostly flagged run, and what to run instead, in one sentence."""
    short = (report.manifest or {}).get("short_regimes") or {}
    shortened = [line for r, line in short.items() if r in report.regimes]
    if shortened:
        return f"the likely cause is the shortened regime: {shortened[0]}"
    health = report.trials["health"]
    worst = health[health.isin(HEALTH_VALUES[1:])].value_counts().index[0]
    cause, instead = LIKELY_CAUSE[worst]
    return f"most are {worst}, so likely {cause}; run again with {instead}."


def _finding_line(f) -> str:
    """A tested finding in one line: claim, regime, verdict, effect with its interval."""
    e = f.estimate
    where = f" in `{f.regime}`" if f.regime else " across regimes"
    effect = f", {e.effect:+.2f} {f.unit} [{e.low:+.2f}, {e.high:+.2f}]" if e else ""
    why = " (it would rest on flagged trials)" if f.flagged else ""
    return f"{f.claim.source.split(' (')[0]}, {f.claim.key.replace('_', ' ')}{where}: **{f.verdict}**{effect}{why}."


def _best_lines(report: Report) -> list[str]:
    """The most accurate healthy configuration of each regime, in one line each."""
    lines = []
    for regime in report.regimes:
        g = report.configs[report.configs["regime"] == regime]
        if g.empty:
            continue
        b = g.sort_values(["top1_mean", "flops"], ascending=[False, True]).iloc[0]
        lines.append(f"Most accurate healthy configuration in `{regime}`: {b['name']}, {b['top1_mean']:.1f} % top-1"
                     + ("" if pd.isna(b["flops"]) else f" at {format_flops(b['flops'])}") + ".")
    return lines


def run_section(report: Report) -> None:
    """What ran and its provenance: trials per status, regimes as trained, dataset, configurations,
    seeds, the manifest and every regime value with its source."""
    df, doc = report.trials, report.doc
    doc.heading("Run")
    status_text = ", ".join(f"{n} {s}" for s, n in report.summary["status_counts"].items() if n)
    n_regimes, n_seeds = len(report.regimes), df["seed"].nunique()
    doc.paragraph(f"{len(df)} trials ({status_text}) over {n_regimes} regime{'s' if n_regimes > 1 else ''}: "
                  + ", ".join(f"`{r}`" for r in report.regimes) + f"; dataset: {report.dataset or 'not recorded'}; "
                  f"{df['name'].nunique()} configurations, {n_seeds} seed{'s' if n_seeds > 1 else ''}."
                  + trained_at(df))
    if report.manifest:
        doc.table(run_digest(report.manifest, df), csv=None)
        doc.paragraph(MANIFEST_NOTE.format(path=_manifest_path(report.manifest)), note=True)
        for regime, rows in (report.manifest.get("regime_sources") or {}).items():
            table = pd.DataFrame(rows)
            doc.table(table, caption=REGIME_SOURCES_CAPTION.format(regime=regime),
                      csv=report.add_table(table, f"regime_sources_{regime}"))
    doc.paragraph(RUN_NOTE.format(seeds=report.seed_words("run")), note=True)


def findings_section(report: Report) -> None:
    """The papers' claims tested on this sweep: verdicts, effects with intervals and the comparisons behind
    them (a figure per tested claim). The claims it cannot test come later (``untestable_section``)."""
    report.doc.heading("Findings: the papers' claims on this sweep")
    findings = report.findings()
    tested = [f for f in findings if f.tested]
    report.summary["findings"] = [_finding_summary(f) for f in findings]
    report.doc.paragraph(FINDINGS_INTRO)
    report.left_out("the findings' comparisons")
    measured = [f for f in tested if f.estimate is not None]
    if measured:
        table = pd.concat([f.comparisons.assign(claim=f.claim.key, verdict=f.verdict) for f in measured],
                          ignore_index=True)
        csv = report.add_table(table[["claim", "verdict"] + [c for c in table if c not in ("claim", "verdict")]],
                               "findings_comparisons")
    else:
        csv = None
    if tested:
        report.doc.table(findings_digest(tested), csv=csv)
        for key in CLAIMS:
            of_claim = [f for f in tested if f.claim.key == key]
            if not of_claim:
                continue
            fig = plot_finding(of_claim, report.trials["flops"], chance_levels(report.trials))
            figure = f"figures/finding_{key}.png" if fig is not None else None
            for f in of_claim:
                report.doc.paragraph(finding_text(f, figure, csv, _n_trials(report, f)))
            source = of_claim[0].claim.source.split(" (")[0]
            caption = FINDING_CAPTION["steps" if key == "resolution" else "pairs"]
            report.add_figure(fig, f"finding_{key}", caption.format(claim=key.replace("_", " "), source=source))
    else:
        report.doc.paragraph("No claim can be tested on this sweep yet (see the claims it cannot test, below).",
                             note=True)


def untestable_section(report: Report) -> None:
    """The claims this sweep cannot test, each once, with what it would need in each regime."""
    untestable = [f for f in report.findings() if not f.tested]
    if not untestable:
        return
    report.doc.heading("Claims this sweep cannot test")
    report.doc.paragraph(UNTESTABLE_NOTE)
    items = []
    for key in CLAIMS:
        of_claim = [f for f in untestable if f.claim.key == key]
        if not of_claim:
            continue
        needs: dict[str, list[str]] = {}
        for f in of_claim:
            needs.setdefault(f.needs, []).append(f"`{f.regime}`" if f.regime else "")
        parts = [(f"in {', '.join(r for r in regimes if r)}: " if any(regimes) and len(needs) > 1 else "") + need
                 for need, regimes in needs.items()]
        regimes = [f.regime for f in of_claim if f.regime]
        where = f" (regime{'s' if len(regimes) > 1 else ''} {', '.join(f'`{r}`' for r in regimes)})" if regimes else ""
        claim = of_claim[0].claim
        items.append(f"**{claim.source}: {claim.statement}**{where} It needs " + "; ".join(parts) + ".")
    report.doc.bullets(items)


def next_sweep_section(report: Report) -> None:
    """The report's last word: where the next budget buys the most accuracy (``archscale suggest``)."""
    plan = plan_next_sweep(report.trials, configs=report.configs)
    if plan is None:
        return
    run_dir = (report.manifest or {}).get("output_dir") or "RUN_DIR"
    report.doc.heading("Next sweep")
    report.doc.paragraph(plan.paragraph(run_dir, DEFAULT_BUDGET))
    report.summary["next_sweep"] = {"base": plan.base, "regime": plan.regime, "strategies": list(plan.strategies),
                                    "ranking": [r.text() for r in plan.ranking]}


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
    report.left_out("the Pareto fronts")
    if not drawn:
        return
    rows = pd.concat(drawn)
    if (rows["cost"] == "flops").any():
        report.doc.heading("Pareto-optimal configurations (top-1 vs FLOPs)", 3)
        report.doc.table(front_digest(rows[(rows["cost"] == "flops") & rows["pareto"]], report.trials["flops"]),
                         csv=None)
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
    report.add_figure(fig, "scaling_curves", SCALING_CURVES_CAPTION.format(seeds=report.seed_words("scaling")))
    report.left_out("the scaling curves")


def dimensions_section(report: Report) -> None:
    """One dimension at a time from a common base, its power-law fits and the best dimension."""
    members = dimension_members(report.trials, configs=report.configs)
    if members.empty:
        report.doc.paragraph("No configuration differs from a common base in one dimension only: no "
                             "per-dimension curves or scaling-law fits.", note=True)
        report.skip("per-dimension curves: no one-dimension steps from a common base")
        return
    fits = scaling_law_fits(report.trials, members)
    report.left_out("the per-dimension curves and scaling-law fits")
    report.add_figure(plot_dimension_curves(report.trials, fits, members, configs=report.configs),
                      "dimension_curves", DIMENSION_CURVES_CAPTION)
    csv = report.add_table(fits, "scaling_law_fits")
    report.doc.heading("Scaling-law fits per dimension (an estimate)", 3)
    report.doc.table(fits_digest(fits, report.trials["flops"]), caption=FITS_CAPTION.format(
        seeds=report.seed_words("fits")), csv=csv)
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
    report.left_out("the equal-FLOP groups and their winners")
    tolerance = report.tolerance
    table = equal_flop_table(report.trials, tolerance, configs=report.configs)
    if table.empty:
        report.doc.paragraph(f"No two configurations lie within {tolerance:.0%} of each other's FLOPs (or share "
                             "a matcher group): nothing to compare at equal cost.", note=True)
        report.skip("equal-FLOP comparison: no group with two configurations")
        return
    csv = report.add_table(table, "equal_flop")
    report.add_figure(plot_equal_flop(report.trials, tolerance, table=table), "equal_flop",
                      EQUAL_FLOP_CAPTION.format(tolerance=tolerance, seeds=report.seed_words("equal_flop")))
    report.doc.table(equal_flop_digest(table), csv=csv,
                     caption=EQUAL_FLOP_DIGEST_CAPTION.format(seeds=report.seed_words("equal_flop_digest")))


def distributions_section(report: Report) -> None:
    """The error EDF over the design space and the mean error per value of each design axis."""
    report.doc.heading("Distributions over the design space")
    report.left_out("the distributions")
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
    fig = plot_learning_curves(report.epochs, chosen, planned_epochs=planned, chances=chance_levels(report.trials))
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


TIMELINE_CAPTION = ("**Where the time went.** Each trial's phases, laid end to end from when it was queued: "
                    "{phases}. Training and evaluation alternate epoch by epoch; the bar adds each phase up, so "
                    "its length is the trial's wall time. Per trial, {outside:.2f} s went outside training and "
                    "evaluation ({share:.0%} of its wall time){largest}.{samples}")


def timeline_section(report: Report) -> None:
    """Each trial's phases on the sweep's clock, with the devices' utilisation below; nothing for
    runs that did not record phases."""
    rows = timeline(report.trials)
    if rows is None:
        return
    cols = phase_columns(rows)
    names = [c[len("phase_"):-len("_s")] for c in cols]
    work = [c for c, n in zip(cols, names) if n in ("train", "eval")]
    outside = rows[[c for c in cols if c not in work]]
    totals = outside.sum()
    wall = rows[cols].sum(axis=1).sum()
    largest = (f"; the largest part: {totals.idxmax()[len('phase_'):-len('_s')].replace('_', ' ')} "
               f"({totals.max() / len(rows):.2f} s per trial)") if len(totals) and totals.max() > 0 else ""
    samples = report.utilisation
    note = ""
    if samples is not None and len(samples):
        source = "NVML's GPU utilisation" if (samples["source"] == "nvml").any() else \
            "the CPU use of the sweep's Ray processes, in percent of the CPUs its trials may use"
        note = f" Below: {source}, sampled by the sweep's driver."
    report.doc.heading("Where the time went")
    report.add_figure(plot_timeline(rows, samples), "timeline", TIMELINE_CAPTION.format(
        phases=", ".join(n.replace("_", " ") for n in names), outside=outside.sum(axis=1).mean(),
        share=outside.sum().sum() / wall if wall else 0.0, largest=largest, samples=note))
    report.add_table(rows, "timeline")


def reference_section(report: Report) -> None:
    """Published results in this project's FLOP convention (runs on ImageNet, CIFAR-10 or CIFAR-100 only)."""
    report.doc.heading("Published reference points")
    ref = report.reference
    if ref is None:
        known = "; ".join(f"{key}: {', '.join(sorted(names))}" for key, names in DATASET_NAMES.items())
        report.doc.paragraph(f"Published results are drawn only when every trial ran on a data set they were "
                             f"measured on (dataset named as one of {known}); this run's dataset is "
                             f"{report.dataset or 'not recorded'}, so none are drawn.", note=True)
        return
    ref = ref.assign(**{"GFLOPs (as published)": ref["flops_g"],
                        "GFLOPs (fvcore)": (ref["flops"] / 1e9).map(lambda v: f"{v:.3g}")})
    shown = ref[["model", "top1", "params_m", "GFLOPs (as published)", "flop_convention", "GFLOPs (fvcore)",
                 "resolution", "source"]].rename(columns={"top1": "top-1 (%)", "params_m": "params (M)"})
    caption = REFERENCE_CAPTION if "dataset" not in ref else CIFAR_REFERENCE_CAPTION
    report.doc.table(shown, caption=caption, csv=report.add_table(ref, "imagenet_reference" if "dataset" not in ref
                                                                  else "cifar_reference"))


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
    report.doc.paragraph(f"{report.seed_words('configs')} of every finished configuration: `{csv}`.", note=True)


#: The sections of a report with finished trials, in order: adding a figure or table means adding a section here.
SECTIONS = (verdict_section, findings_section, pareto_section, scaling_curves_section, dimensions_section,
            equal_flop_section, distributions_section, learning_curves_section, devices_section, timeline_section,
            reference_section,
            not_drawn_section, run_section, configs_section, untestable_section, next_sweep_section)
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
    fig = plot_pareto(report.trials, cost, reference=report.reference, configs=report.configs,
                      flagged_configs=report.flagged_configs)
    if cost == "flops":
        for regime in report.regimes:
            front = configs[(configs["regime"] == regime) & configs["pareto"]].sort_values("flops")
            report.summary["pareto"][regime] = front["name"].tolist()
        report.summary["reference_drawn"] = report.reference is not None
    caption = PARETO_CAPTION.format(cost=spec.title, seeds=report.seed_words("pareto"))
    if cost == "flops":
        caption += PARETO_FLOPS_NOTE
    if report.reference is not None and cost in ("flops", "params"):
        caption += PARETO_REFERENCE_NOTE
    if cost == "latency_ms":
        caption += PARETO_LATENCY_NOTE
    if cost == "train_time_s":
        caption += PARETO_TRAIN_TIME_NOTE
    if cost in ("latency_ms", "throughput", "train_time_s"):
        caption += cost_note(report.cost_source)
    report.add_figure(fig, _PARETO_FIGURES[cost], caption)
    keep = configs[configs[spec.column].notna()]
    return keep.assign(cost=cost, cost_value=keep[spec.column])[
        ["cost", "regime", "name", "cost_value", "flops", "params", "top1_mean", "top1_std", "n_seeds", "pareto"]]


def _manifest_path(manifest: dict) -> str:
    """Where the run's manifest.json is (its output folder's), or its name alone when not recorded."""
    out = manifest.get("output_dir")
    return f"{str(out).rstrip('/')}/manifest.json" if out else "manifest.json"


def _finding_summary(f) -> dict:
    """A finding as summary.json holds it."""
    e = f.estimate
    return {"claim": f.claim.key, "source": f.claim.source, "regime": f.regime, "verdict": f.verdict,
            "effect": e.effect if e else None, "low": e.low if e else None, "high": e.high if e else None,
            "unit": f.unit, "method": e.method if e else None, "configs": f.configs(), "needs": f.needs,
            "flagged": f.flagged}


def _n_trials(report: Report, f) -> int:
    """The finished trials of the configurations a finding rests on (in its regime, or all regimes)."""
    t = report.trials
    rows = t["finished"] & t["name"].isin(f.configs())
    return int((rows & (t["regime"] == f.regime)).sum() if f.regime else rows.sum())


def _trial_list(report: Report, rows: pd.DataFrame, heading: str | None, name: str) -> None:
    """List ``rows`` under ``heading`` and write them to tables/``name``.csv."""
    if rows.empty:
        return
    if heading:
        report.doc.heading(heading)
    csv = report.add_table(rows[trial_columns(rows)], name)
    report.doc.table(trial_digest(rows), csv=csv)
