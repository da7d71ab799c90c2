"""ResNet-RS-style Pareto figures: top-1 accuracy against one cost, one panel per training regime."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .pareto import pareto_configs
from .style import (
    FLAGGED,
    GREY,
    chance_line,
    OKABE_ITO,
    flop_axis_label,
    flop_unit,
    freeze_layout,
    log_axis,
    name_labels,
    new_figure,
    place_labels,
    regime_title,
    styled,
    time_unit,
)
from .tables import aggregate_seeds, chance_levels, dataset_name, finished_trials, regime_order

__all__ = ["COSTS", "Cost", "cost_axis", "plot_pareto"]


@dataclass(frozen=True)
class Cost:
    """A cost axis: the trials column, its name in titles, and whether lower is better."""

    column: str
    title: str
    minimize: bool = True


COSTS: dict[str, Cost] = {
    "flops": Cost("flops", "FLOPs"),
    "params": Cost("params", "parameters"),
    "latency_ms": Cost("latency_ms", "inference latency"),
    "throughput": Cost("throughput", "inference throughput", minimize=False),
    "train_time_s": Cost("measured_train_time_s", "training time"),
}

_REF_STYLE = {"ResNet": ("s", OKABE_ITO["black"]), "ResNeXt": ("D", OKABE_ITO["green"]),
              "ResNet-RS": ("*", OKABE_ITO["purple"])}
_REF_SOURCE = {"ResNet": "ResNeXt paper, Xie et al. 2017", "ResNeXt": "Xie et al. 2017",
               "ResNet-RS": "Bello et al. 2021, 350 epochs"}
FRONT = OKABE_ITO["blue"]
#: Published points are drawn on regimes this long or longer (they come from 90-350 epoch training);
#: on every regime when none is.
REFERENCE_MIN_EPOCHS = 90
OTHER = "#9db9d3"


def cost_axis(cost: str, values) -> tuple[float, str]:
    """(divisor, axis label with unit) for a cost column's values."""
    if cost == "flops":
        div, unit = flop_unit(values)
        return div, flop_axis_label(unit)
    if cost == "params":
        return 1e6, "parameters (millions)"
    if cost == "latency_ms":
        return 1.0, "inference latency (ms per image, batch 1)"
    if cost == "throughput":
        return 1.0, "inference throughput (images/s; higher is better)"
    if cost == "train_time_s":
        div, unit = time_unit(values)
        return div, f"training time per trial ({unit}, at the measured training speed)"
    return 1.0, cost


@styled
def plot_pareto(trials: pd.DataFrame, cost: str = "flops", *, reference: pd.DataFrame | None = None,
                regimes: list[str] | None = None, label_front: bool = True, configs: pd.DataFrame | None = None,
                flagged_configs: pd.DataFrame | None = None):
    """Top-1 accuracy (%, mean over seeds, bars: min-max over seeds) against ``cost``, a panel per regime.

    ``cost`` is a key of ``COSTS`` (FLOPs, params, latency, throughput, training time), drawn on a
    log axis. The Pareto-optimal configurations of each regime (highest accuracy for their cost)
    are joined by a line and labelled with their config names (minus the name parts common to all
    configurations, given in the title). Configurations whose seeds were all stopped early by
    ASHA are drawn hollow; configurations with a seed flagged by its health verdict are drawn hollow in
    vermillion, left out of the front; a dash-dotted line marks chance. ``reference``
    (``load_reference()``) adds published ImageNet points on
    FLOP and parameter panels of regimes of at least ``REFERENCE_MIN_EPOCHS`` epochs (all panels
    when no regime is that long): pass it only for ImageNet runs. Returns the Figure, or None when
    no finished trial has this cost.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed), and
    ``flagged_configs``: ``aggregate_seeds(trials, flagged=True)``.
    """
    spec = COSTS[cost]
    configs = pareto_configs(trials, spec.column, minimize_cost=spec.minimize, configs=configs)
    configs = configs[configs[spec.column].notna() & (configs[spec.column] > 0)]
    bad = aggregate_seeds(trials, flagged=True) if flagged_configs is None else flagged_configs
    bad = bad[pd.to_numeric(bad[spec.column], errors="coerce") > 0]
    if configs.empty and bad.empty:
        return None
    regimes = [r for r in (regimes or regime_order(trials)) if r in set(configs["regime"]) | set(bad["regime"])]
    use_ref = reference is not None and cost in ("flops", "params") and len(reference)
    ref_col = {"flops": "flops", "params": "params"}.get(cost)
    all_costs = np.concatenate([configs[spec.column].to_numpy(float), bad[spec.column].to_numpy(float)])
    if use_ref:
        all_costs = np.concatenate([all_costs, reference[ref_col].to_numpy(float)])
    div, xlabel = cost_axis(cost, all_costs)
    short, omitted = name_labels(finished_trials(trials)["name"])
    epochs_of = pd.concat([configs, bad]).groupby("regime")["epochs"].max()
    chances = chance_levels(trials)
    ref_regimes = [r for r in regimes if not (epochs_of.get(r, np.nan) < REFERENCE_MIN_EPOCHS)] or regimes
    # Training time scales with the regime's length: each panel gets its own time axis.
    fig, axes = new_figure(len(regimes), 1, (9.0, 3.7), extra_height=0.9, sharex=cost != "train_time_s")
    any_stopped = False
    labels_todo = []
    for ax, regime in zip(axes.flat, regimes):
        g = configs[configs["regime"] == regime].sort_values(spec.column)
        x = g[spec.column].to_numpy(float) / div
        y = g["top1_mean"].to_numpy(float)
        spread = np.vstack([y - g["top1_min"].to_numpy(float), g["top1_max"].to_numpy(float) - y])
        front = g["pareto"].to_numpy(bool)
        hollow = g["all_stopped"].to_numpy(bool)
        any_stopped |= bool(hollow.any())
        ax.errorbar(x, y, yerr=np.where(np.isfinite(spread), spread, 0), fmt="none", ecolor="#c8c8c8",
                    elinewidth=0.8, zorder=1)
        for mask, colour, z in ((~front, OTHER, 2), (front, FRONT, 4)):
            for hol in (False, True):
                sel = mask & (hollow == hol)
                ax.scatter(x[sel], y[sel], s=22, zorder=z, linewidths=1.0, edgecolors=colour,
                           facecolors="white" if hol else colour)
        order = np.argsort(x[front] * (1 if spec.minimize else -1))
        ax.plot(x[front][order], y[front][order], color=FRONT, lw=1.2, zorder=3)
        b = bad[bad["regime"] == regime]
        xb, yb = b[spec.column].to_numpy(float) / div, b["top1_mean"].to_numpy(float)
        ax.scatter(xb, yb, s=26, zorder=3, linewidths=1.2, edgecolors=FLAGGED, facecolors="white", gid="flagged")
        with_ref = use_ref and regime in ref_regimes
        if with_ref:
            for fam, ref in reference.groupby("family", sort=False):
                marker, colour = _REF_STYLE.get(fam, ("x", GREY))
                ax.scatter(ref[ref_col] / div, ref["top1"], marker=marker, s=40 if marker == "*" else 22,
                           facecolors="none" if marker != "*" else colour, edgecolors=colour, zorder=5,
                           linewidths=1.0)
        ax.set_title(regime_title(regime, epochs_of.get(regime)), loc="left")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.margins(x=0.12, y=0.12)
        chance_line(ax, chances)
        avoid = np.vstack([np.column_stack([x, y]), np.column_stack([xb, yb])])
        if with_ref:
            avoid = np.vstack([avoid, np.column_stack([reference[ref_col] / div, reference["top1"]])])
        labels_todo.append((ax, x[front], y[front], [short[n] for n in g["name"][front]], avoid))
    axes[-1, 0].set_xlabel(xlabel)
    for ax in axes.flat:
        log_axis(ax, "x")
        ax.tick_params(labelbottom=True)
    dataset = dataset_name(trials)
    title = f"Top-1 accuracy vs {spec.title}" + (f" ({dataset})" if dataset else "")
    if omitted:
        title += f"\n{omitted}"
    fig.suptitle(title)
    handles = [Line2D([], [], color=FRONT, marker="o", lw=1.2, label="Pareto-optimal (labelled)"),
               Line2D([], [], color=OTHER, marker="o", lw=0, label="other configurations")]
    if (configs["n_seeds"] > 1).any():
        handles.append(Line2D([], [], color="#c8c8c8", lw=0.8, label="seed min-max"))
    if any_stopped:
        handles.append(Line2D([], [], color=FRONT, marker="o", mfc="white", lw=0,
                              label="all seeds stopped early (ASHA)"))
    if len(bad):
        handles.append(Line2D([], [], color=FLAGGED, marker="o", mfc="white", lw=0,
                              label="flagged by its health verdict (left out of the front)"))
    if chances:
        handles.append(Line2D([], [], color="#555555", ls="-.", lw=0.9, label="chance (100 / classes)"))
    if use_ref:
        for fam in reference["family"].unique():
            marker, colour = _REF_STYLE.get(fam, ("x", GREY))
            handles.append(Line2D([], [], color=colour, marker=marker, mfc="none" if marker != "*" else colour,
                                  lw=0, ms=7 if marker == "*" else 5,
                                  label=f"{fam} published ({_REF_SOURCE.get(fam, 'see table')}"
                                        + ("; their FLOPs / 2" if fam == "ResNet-RS" and cost == "flops" else "")
                                        + ")"))
        if len(ref_regimes) < len(regimes):
            handles.append(Line2D([], [], lw=0, label=f"(published points on regimes of ≥ {REFERENCE_MIN_EPOCHS} "
                                                      "epochs only)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    if label_front:
        freeze_layout(fig)
        for ax, fx, fy, names, avoid in labels_todo:
            place_labels(ax, fx, fy, names, avoid=avoid,
                         prefer="upper left" if spec.minimize else "upper right")
    return fig
