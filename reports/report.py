"""``write_report``: a sweep's results tables -> a report folder (Markdown, HTML, figures, CSV tables).

    out_dir/report.md       every figure and table, figures linked
    out_dir/report.html     the same, self-contained (figures embedded as PNG)
    out_dir/summary.json    the dict ``write_report`` returns
    out_dir/figures/*.png, *.svg
    out_dir/tables/*.csv

Works on a sweep that is still running or partly failed: only finished trials (done, or stopped
early by ASHA) are drawn; diverged, failed, running and pending trials are listed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import ArchScaleError

from .binning import equal_flop_table, flop_unit
from .compare_plot import plot_axis_effects, plot_equal_flop, plot_error_edf, plot_learning_curves
from .dimensions import best_dimension, dimension_members, scaling_law_fits
from .distributions import axis_effects
from .document import Document
from .pareto import pareto_configs
from .pareto_plot import COSTS, REFERENCE_MIN_EPOCHS, plot_pareto
from .reference import IMAGENET_NAMES, is_imagenet, load_reference
from .tables import aggregate_seeds, dataset_name, normalize_trials, regime_order, status_counts
from .scaling_plot import plot_dimension_curves, plot_scaling_curves
from .style import FLOP_CONVENTION, save_figure

__all__ = ["write_report"]

_FIGURE_NAMES = {"flops": "pareto_flops", "params": "pareto_params", "latency_ms": "pareto_latency",
                 "throughput": "pareto_throughput", "train_time_s": "pareto_train_time"}
_MISSING_COST = {
    "flops": "no trial has a FLOP count (`flops` is missing or empty)",
    "params": "no trial has a parameter count (`params` is missing or empty)",
    "latency_ms": "inference latency was not measured in this run (`latency_ms` is missing or empty)",
    "throughput": "inference throughput was not measured in this run (`throughput` is missing or empty)",
    "train_time_s": "no finished trial recorded its training time (`train_time_s` is missing or empty)",
}


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def _num(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v):
        return "–"
    return f"{v:.{digits}f}"


def _sig(v, digits: int = 3) -> str:
    """``digits`` significant figures, so tiny networks do not print as 0.00."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v):
        return "–"
    return f"{v:.{digits}g}"


def _pm(mean, std, digits: int = 1) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{digits}f}")


def _spread_along(names: list[str], k: int = 6) -> list[str]:
    """Up to ``k`` names spread evenly along a list (cheapest, most expensive and between)."""
    if len(names) <= k:
        return list(names)
    idx = sorted(set(np.linspace(0, len(names) - 1, k).round().astype(int)))
    return [names[i] for i in idx]


def write_report(trials: pd.DataFrame, epochs: pd.DataFrame | None, out_dir, *, manifest: dict | None = None,
                 title: str | None = None, tolerance: float = 0.15) -> dict:
    """Write the report folder for a sweep's results and return a summary of it.

    ``trials``: one row per trial (the results store's trials table); ``epochs``: one row per
    trial per epoch (may be None or empty); ``manifest``: the sweep's manifest, shown in the
    report (its ``dataset`` is used when trials do not name one); ``tolerance``: relative FLOP
    width of an equal-FLOP bin. Raises ``ArchScaleError("run_dir", ...)`` when ``trials`` has no
    rows. When no trial has finished yet the report lists the trials and says so.

    Returns ``{"out_dir", "report_md", "report_html", "summary_json", "figures": [paths],
    "tables": [paths], "pareto": {regime: [config names on the top-1 vs FLOPs front, cheapest
    first]}, "status_counts": {status: n}, "n_trials", "n_finished", "dataset",
    "reference_drawn", "best_dimension": {regime: {...}}, "skipped": [what was not drawn and why]}``
    (paths as strings).
    """
    if trials is None or len(trials) == 0:
        raise ArchScaleError("run_dir", "holds no results yet (the trials table has no rows); run a sweep "
                                        "into it first, or pass the directory a sweep wrote")
    df = normalize_trials(trials)
    epochs = pd.DataFrame() if epochs is None else epochs
    out = Path(out_dir)
    fig_dir, tab_dir = out / "figures", out / "tables"
    for d in (out, fig_dir, tab_dir):
        d.mkdir(parents=True, exist_ok=True)
    counts = status_counts(df)
    dataset = dataset_name(df, manifest)
    regimes = regime_order(df)
    n_finished = int(df["finished"].sum())
    imagenet = is_imagenet(trials, manifest)
    summary: dict = {"out_dir": str(out), "figures": [], "tables": [], "pareto": {}, "status_counts": counts,
                     "n_trials": len(df), "n_finished": n_finished, "dataset": dataset,
                     "reference_drawn": False, "best_dimension": {}, "skipped": []}
    doc = Document(title or (f"Scaling report: {dataset}" if dataset else "Scaling report"))

    def add_table(frame: pd.DataFrame, name: str) -> str:
        path = _write_csv(frame, tab_dir / f"{name}.csv")
        summary["tables"].append(str(path))
        return path.relative_to(out).as_posix()

    def add_figure(fig, name: str, caption: str) -> None:
        if fig is None:
            return
        png, svg = save_figure(fig, fig_dir / name)
        summary["figures"] += [str(png), str(svg)]
        doc.figure(png, svg, caption, out)

    # ----- overview ----------------------------------------------------------------------
    doc.heading("Run")
    status_text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    doc.paragraph(f"{len(df)} trials ({status_text}) over {len(regimes)} regime(s): "
                  + ", ".join(f"`{r}`" for r in regimes) + f"; dataset: {dataset or 'not recorded'}; "
                  f"{df['name'].nunique()} configurations, {df['seed'].nunique()} seed(s)."
                  + _trained_at(df))
    doc.paragraph(f"FLOPs everywhere are per image in fvcore's convention ({FLOP_CONVENTION}), as in the "
                  "ResNeXt paper; the ResNet-RS paper's FLOPs are twice these. Accuracies are final top-1 "
                  "on the validation split, in %, averaged over seeds where a configuration has several. "
                  "Trials stopped early by ASHA are results with fewer epochs (drawn hollow); diverged "
                  "and failed trials are listed at the end, never drawn.", note=True)
    if manifest:
        items = []
        for k, v in manifest.items():
            text = v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, default=str)
            text = str(text)
            items.append(f"{k}: `{text[:200]}{'…' if len(text) > 200 else ''}`")
        doc.bullets(items)

    if n_finished == 0:
        doc.heading("No finished trials yet")
        doc.paragraph(f"None of the {len(df)} trials has finished with a result, so there is nothing to plot. "
                      "Run `archscale report` again when trials have finished.")
        _not_plotted_section(doc, df, add_table, title="Trials")
        return _finish(doc, out, summary)

    # ----- Pareto fronts -----------------------------------------------------------------
    reference = load_reference() if imagenet else None
    doc.heading("Pareto fronts: top-1 accuracy against each cost")
    doc.paragraph("One panel per training regime. The Pareto-optimal configurations (no other configuration is "
                  "both cheaper and more accurate) are joined and labelled; cost axes are logarithmic.")
    pareto_rows: dict[str, pd.DataFrame] = {}
    for cost, spec in COSTS.items():
        configs = pareto_configs(df, spec.column, minimize_cost=spec.minimize)
        if configs[spec.column].notna().sum() == 0:
            summary["skipped"].append(f"Pareto vs {spec.title}: {_MISSING_COST[cost]}")
            continue
        fig = plot_pareto(df, cost, reference=reference)
        if cost == "flops":
            for regime in regimes:
                front = configs[(configs["regime"] == regime) & configs["pareto"]].sort_values("flops")
                summary["pareto"][regime] = front["name"].tolist()
            summary["reference_drawn"] = reference is not None
        keep = configs[configs[spec.column].notna()]
        pareto_rows[cost] = keep.assign(cost=cost, cost_value=keep[spec.column])[
            ["cost", "regime", "name", "cost_value", "flops", "params", "top1_mean", "top1_std", "n_seeds",
             "pareto"]]
        caption = (f"**Top-1 accuracy vs {spec.title}.** Seed means, bars from the worst to the best seed; "
                   "blue line: Pareto front.")
        if cost == "flops":
            caption += f" FLOPs per image, fvcore convention ({FLOP_CONVENTION})."
        if reference is not None and cost in ("flops", "params"):
            caption += (" Published ImageNet results (ResNet and ResNeXt from Xie et al. 2017, whose FLOPs are "
                        "multiply-adds; ResNet-RS from Bello et al. 2021, whose FLOPs are halved here to "
                        f"multiply-adds) are drawn on regimes of at least {REFERENCE_MIN_EPOCHS} epochs.")
        if cost == "latency_ms":
            caption += " Latency: median batch-1 forward pass."
        add_figure(fig, _FIGURE_NAMES[cost], caption)
    if summary["skipped"]:
        doc.paragraph("Not drawn: " + "; ".join(summary["skipped"]) + ".", note=True)
    if "flops" in pareto_rows:
        doc.heading("Pareto-optimal configurations (top-1 vs FLOPs)", 3)
        front = pareto_rows["flops"][pareto_rows["flops"]["pareto"]]
        doc.table(pd.DataFrame({
            "regime": front["regime"], "config": front["name"],
            "GFLOPs": front["flops"].map(lambda v: _sig(v / 1e9)),
            "params (M)": front["params"].map(lambda v: _sig(v / 1e6)),
            "top-1 (%)": [_pm(m, s) for m, s in zip(front["top1_mean"], front["top1_std"])],
            "seeds": front["n_seeds"].astype(int)}), csv=None)
    if pareto_rows:
        csv = add_table(pd.concat(pareto_rows.values()), "pareto")
        doc.paragraph(f"All configurations with their Pareto flags per cost: `{csv}`.", note=True)

    # ----- scaling curves ----------------------------------------------------------------
    doc.heading("Scaling curves")
    fig = plot_scaling_curves(df)
    if fig is None:
        doc.paragraph("No depth x width study to draw: it needs FLOP counts and more than one depth or width.",
                      note=True)
        summary["skipped"].append("scaling curves: no FLOP counts, or a single depth and width")
    add_figure(fig, "scaling_curves",
               "**Depth and width scaling per resolution and regime** (ResNet-RS study). One line per depth, one "
               "marker per width multiplier, seed means with min-max bars; columns: regimes, shortest training on "
               "the left; rows: input resolutions. Where a depth line lies above the points of another depth at "
               "equal FLOPs, depth is the better way to spend them.")

    members = dimension_members(df)
    fits = scaling_law_fits(df, members)
    if members.empty:
        doc.paragraph("No configuration differs from a common base in one dimension only: no per-dimension "
                      "curves or scaling-law fits.", note=True)
        summary["skipped"].append("per-dimension curves: no one-dimension steps from a common base")
    else:
        add_figure(plot_dimension_curves(df, fits, members), "dimension_curves",
                   "**One dimension at a time.** From the common base (star, the cheapest configuration, or the "
                   "sweep's scaling strategies) along depth, width, cardinality or resolution only; top-1 error "
                   "against FLOPs, with the fitted power law dashed.")
        _fit_section(doc, fits, summary, add_table, df["flops"])

    # ----- equal-FLOP comparison ---------------------------------------------------------
    doc.heading("Equal-FLOP comparison")
    table = equal_flop_table(df, tolerance)
    if table.empty:
        doc.paragraph(f"No two configurations lie within {tolerance:.0%} of each other's FLOPs (or share a matcher "
                      "group): nothing to compare at equal cost.", note=True)
        summary["skipped"].append("equal-FLOP comparison: no group with two configurations")
    else:
        csv = add_table(table, "equal_flop")
        add_figure(plot_equal_flop(df, tolerance, table=table), "equal_flop",
                   f"**Configurations at roughly equal FLOPs** (within {tolerance:.0%} of the cheapest in the "
                   "group, or the equal-FLOP matcher's groups), ranked by top-1 as the ResNeXt paper compares "
                   "cardinality at equal complexity. Bars: ±1 std over seeds.")
        doc.table(_equal_flop_digest(table), caption="Best configuration of each group and its nearest rival "
                  "(gap in percentage points; 'within spread' when the gap is below the two seed standard "
                  "deviations added):", csv=csv)

    # ----- distributions -----------------------------------------------------------------
    doc.heading("Distributions over the design space")
    add_figure(plot_error_edf(df), "error_edf",
               "**Error EDF** (pycls): share of finished trials with top-1 error at most x, per regime.")
    effects = axis_effects(df)
    if not effects.empty:
        csv = add_table(effects, "axis_effects")
        add_figure(plot_axis_effects(df, table=effects), "axis_effects",
                   "**Per-axis effects**: mean top-1 error per value of each design axis, other axes averaged over.")
        cells = [f"{_num(m, 1)} (n={n})" for m, n in zip(effects["error_mean"], effects["n_trials"])]
        pivot = effects.assign(cell=cells, order=effects["order"].fillna(0))  # text axes: by value (NaN rows drop)
        pivot = pivot.pivot_table(index=["axis", "value", "order"], columns="regime", values="cell",
                                  aggfunc="first", sort=False).reset_index()
        pivot["_a"] = pivot["axis"].map({a: i for i, a in enumerate(dict.fromkeys(effects["axis"]))})
        pivot = pivot.sort_values(["_a", "order", "value"]).drop(columns=["_a", "order"])
        pivot = pivot[["axis", "value"] + [r for r in regimes if r in pivot.columns]].fillna("–")
        doc.table(pivot, caption="Mean top-1 error (%) per axis value and regime:", csv=csv)

    # ----- learning curves ---------------------------------------------------------------
    if len(epochs):
        chosen = {r: _spread_along(summary["pareto"].get(r, [])) for r in regimes}
        planned = df.groupby("regime")["epochs"].max().to_dict()
        fig = plot_learning_curves(epochs, chosen, planned_epochs=planned)
        if fig is not None:
            doc.heading("Learning curves")
            add_figure(fig, "learning_curves", "**Validation top-1 per epoch** of up to six Pareto-optimal "
                       "configurations per regime (top-1 vs FLOPs front, cheapest to most expensive).")

    # ----- reference points --------------------------------------------------------------
    doc.heading("Published reference points")
    if reference is not None:
        ref = reference.assign(**{"GFLOPs (as published)": reference["flops_g"],
                                  "GFLOPs (fvcore)": (reference["flops"] / 1e9).map(lambda v: f"{v:.3g}")})
        doc.table(ref[["model", "top1", "params_m", "GFLOPs (as published)", "flop_convention", "GFLOPs (fvcore)",
                       "resolution", "source"]].rename(columns={"top1": "top-1 (%)", "params_m": "params (M)"}),
                  caption="Published ImageNet top-1 (single 224 px crop for ResNet/ResNeXt; ResNet-RS at the "
                          "listed resolution after 350 epochs), converted to multiply-adds:",
                  csv=add_table(ref, "imagenet_reference"))
    else:
        doc.paragraph(f"Published ImageNet results are drawn only when every trial ran on ImageNet (dataset named "
                      f"one of {', '.join(sorted(IMAGENET_NAMES))}); this run's dataset is "
                      f"{dataset or 'not recorded'}, so none are drawn.", note=True)

    # ----- not plotted -------------------------------------------------------------------
    _not_plotted_section(doc, df, add_table)
    configs = aggregate_seeds(df)
    doc.paragraph(f"Seed-averaged results of every finished configuration: `{add_table(configs, 'configs')}`.",
                  note=True)
    return _finish(doc, out, summary)


def _trained_at(df: pd.DataFrame) -> str:
    """' Trained at batch 64 (peak learning rate 0.025).': what the trials used, which on small
    data sets is less than the regime's nominal batch."""
    parts = []
    for col, label in (("batch_size", "batch"), ("lr_peak", "peak learning rate")):
        if col in df:
            values = sorted(pd.to_numeric(df[col], errors="coerce").dropna().unique())
            if values:
                parts.append(f"{label} {', '.join(f'{v:g}' for v in values[:6])}{' ...' if len(values) > 6 else ''}")
    return f" Trained at {parts[0]}" + (f" ({parts[1]})" if len(parts) > 1 else "") + "." if parts else ""


def _fit_section(doc: Document, fits: pd.DataFrame, summary: dict, add_table, run_flops: pd.Series) -> None:
    csv = add_table(fits, "scaling_law_fits")
    doc.heading("Scaling-law fits per dimension (an estimate)", 3)
    div, unit = flop_unit(run_flops)  # the unit of the run's figures
    shown = pd.DataFrame({
        "regime": fits["regime"], "dimension": fits["dimension"], "configs": fits["n_configs"],
        "points": fits["n_points"], f"{unit} range": [f"{_num(a * 1e9 / div, 3)}-{_num(b * 1e9 / div, 3)}"
                                                      for a, b in zip(fits["gflops_min"], fits["gflops_max"])],
        "b": [_pm(b, s, 2) for b, s in zip(fits["b"], fits["b_std"])],
        "floor c (%)": [_pm(c, s, 1) for c, s in zip(fits["c"], fits["c_std"])],
        "pp per 2x FLOPs at budget": [_pm(g, s, 2) for g, s in zip(fits["gain_per_doubling"], fits["gain_std"])],
        "note": fits["note"].fillna("")})
    doc.table(shown, caption="Fit of top-1 error = a · GFLOPs^-b + c to every trial (seeds as separate points) "
                             "of each dimension; ± one standard error. The last column is the slope of the fitted "
                             "curve at the regime's budget (the largest FLOPs every fitted dimension reaches): "
                             "percentage points of error removed by doubling FLOPs there.", csv=csv)
    best = best_dimension(fits)
    summary["best_dimension"] = best
    lines = []
    for regime, b in best.items():
        text = (f"`{regime}`: at about {b['budget_gflops']:.3g} GFLOPs, **{b['dimension']}** gives the most accuracy "
                f"per added FLOP: about {b['gain']:.2f} ± {b['gain_std']:.2f} percentage points less top-1 error "
                f"per doubling of FLOPs (fit on {b['n_points']} points)")
        if b["runner_up"] is not None:
            text += (f", ahead of {b['runner_up']} ({b['runner_up_gain']:.2f} ± {b['runner_up_std']:.2f})"
                     + ("" if b["clear"] else ", but within the uncertainty"))
        lines.append(text + ".")
    if lines:
        doc.paragraph("Estimates from the fits, to be read with their uncertainty and point counts:")
        doc.bullets(lines)
    else:
        doc.paragraph("No dimension has enough points for a fit (it needs 4 configurations spanning at least 1.5x "
                      "in FLOPs).", note=True)


def _equal_flop_digest(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (regime, group), g in table.groupby(["regime", "group"], sort=False):
        best, rival = g.iloc[0], g.iloc[1]
        within = rival["within_spread"]
        rows.append({"regime": regime, "FLOP group": group, "configs": len(g), "best": best["name"],
                     "top-1 (%)": _pm(best["top1_mean"], best["top1_std"]), "runner-up": rival["name"],
                     "gap (pp)": _num(rival["delta_top1"]),
                     "within spread": "–" if pd.isna(within) else ("yes" if bool(within) else "no")})
    return pd.DataFrame(rows)


def _not_plotted_section(doc: Document, df: pd.DataFrame, add_table, title: str = "Trials not drawn") -> None:
    rest = df[~df["finished"]]
    if title == "Trials":
        rest = df
    if rest.empty:
        return
    doc.heading(title)
    if title != "Trials":
        counts = rest["status"].value_counts()
        doc.paragraph("Diverged (loss went NaN) and failed trials are results to know about but not points to draw; "
                      "running and pending trials have no final result yet: "
                      + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    cols = [c for c in ("trial_id", "name", "regime", "seed", "status", "epochs_done", "error") if c in rest]
    listed = rest[cols].copy()
    listed["epochs_done"] = listed["epochs_done"].map(lambda v: "–" if pd.isna(v) else str(int(v)))
    listed["error"] = listed["error"].map(lambda e: (e[:160] + "…") if len(e) > 160 else e)
    csv = add_table(rest[cols], "trials_not_drawn" if title != "Trials" else "trials")
    doc.table(listed.head(200), csv=csv)


def _finish(doc: Document, out: Path, summary: dict) -> dict:
    md = _write_text(out / "report.md", doc.to_markdown())
    page = _write_text(out / "report.html", doc.to_html())
    summary.update(report_md=str(md), report_html=str(page), summary_json=str(out / "summary.json"))
    _write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary
