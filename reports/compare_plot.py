"""Comparison figures: equal-FLOP rankings, error distributions, per-axis effects, learning curves."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.lines import Line2D

from .binning import equal_flop_table
from .binning import flop_unit
from .design_space import axis_effects, design_axes, edf, error_edf
from .style import (OKABE_ITO, QUALITATIVE, WIDE_TITLE, chance_line, flop_axis_label, log_axis, name_labels,
                    new_figure, regime_colors, regime_title, styled)
from .tables import chance_levels, dataset_name, finished_trials, regime_order

__all__ = ["plot_equal_flop", "plot_error_edf", "plot_complexity_edf", "plot_axis_effects", "plot_learning_curves"]

BEST = OKABE_ITO["vermillion"]
OTHER = OKABE_ITO["blue"]


@styled
def plot_equal_flop(trials: pd.DataFrame, tolerance: float = 0.15, *, table: pd.DataFrame | None = None,
                    max_groups: int = 14, max_per_group: int = 8):
    """Configurations at roughly equal FLOPs ranked by top-1 (%), a column per regime.

    Rows are grouped under a bold header naming the FLOP range (or the matcher's group); within a
    group they are sorted by accuracy in the longest regime. The group's best is a vermillion
    diamond; filled blue dots are within the seed spread of the best (gap below the two standard
    deviations added), hollow ones are behind it by more; bars are +-1 std over seeds. At most
    ``max_groups`` groups (those with the most configurations) and ``max_per_group``
    configurations per group (the best) are drawn: the CSV table has them all. Returns the
    Figure, or None when no group holds two configurations.
    """
    table = equal_flop_table(trials, tolerance) if table is None else table
    if table.empty:
        return None
    regimes = [r for r in regime_order(trials) if r in set(table["regime"])]
    order_regime = table.groupby("name")["regime"].agg(lambda s: max(s, key=regimes.index))
    key = table[table["regime"] == table["name"].map(order_regime)].set_index("name")["top1_mean"]
    groups = table.drop_duplicates("group")[["group"]].copy()
    groups["size"] = groups["group"].map(table.groupby("group")["name"].nunique())
    groups = groups.reset_index(drop=True)
    n_groups = len(groups)
    if len(groups) > max_groups:
        keep = groups.sort_values("size", ascending=False, kind="stable").head(max_groups).index
        groups = groups.loc[sorted(keep)]
    rows: list[tuple[str, str | None]] = []  # (group, name or None for the header)
    cut = n_groups > len(groups)
    for grp in groups["group"]:
        names = table.loc[table["group"] == grp, "name"].unique()
        cut |= len(names) > max_per_group
        names = sorted(names, key=lambda n: -key.get(n, -np.inf))[:max_per_group]
        rows.append((grp, None))
        rows += [(grp, n) for n in names]
    short, omitted = name_labels(finished_trials(trials)["name"])
    ypos = {r: i for i, r in enumerate(rows)}
    height = 0.19 * len(rows) + 1.6
    fig, axes = new_figure(1, len(regimes), (3.4, height), min_width=WIDE_TITLE, sharey=True)
    epochs_of = finished_trials(trials).groupby("regime")["epochs"].max()
    for ax, regime in zip(axes.flat, regimes):
        t = table[table["regime"] == regime]
        for _, r in t.iterrows():
            y = ypos.get((r["group"], r["name"]))
            if y is None:
                continue
            best = r["rank"] == 1
            close = r["within_spread"] is True or r["within_spread"] == 1
            colour = BEST if best else OTHER
            ax.errorbar([r["top1_mean"]], [y], xerr=[[0 if pd.isna(r["top1_std"]) else r["top1_std"]]],
                        fmt="D" if best else "o", ms=5 if best else 4, color=colour, elinewidth=0.8,
                        mfc=colour if (best or close) else "white", zorder=3)
        for (grp, name), y in ypos.items():
            if name is None and y > 0:
                ax.axhline(y - 0.5, color="#bbbbbb", lw=0.6, zorder=1)
        ax.set_title(regime_title(regime, epochs_of.get(regime)))
        ax.set_xlabel("top-1 accuracy (%)")
        ax.grid(axis="y", visible=False)
        ax.margins(x=0.1)
        chance_line(ax, chance_levels(trials), axis="x")
    ax0 = axes[0, 0]
    ax0.set_yticks(range(len(rows)))
    ax0.set_yticklabels([f"{g}" if n is None else short[n] for g, n in rows])
    for tick, (_, n) in zip(ax0.get_yticklabels(), rows):
        if n is None:
            tick.set_fontweight("bold")
    ax0.set_ylim(len(rows) - 0.5, -0.7)
    dataset = dataset_name(trials)
    fig.suptitle("Equal-FLOP comparison (FLOPs within {:.0%} in a group)".format(tolerance)
                 + (f", {dataset}" if dataset else "") + (f"\n{omitted}" if omitted else "")
                 + (f"\nshowing {len(groups)} of {n_groups} groups, at most {max_per_group} configurations each; "
                    "the CSV table has all" if cut else ""))
    handles = [Line2D([], [], color=BEST, marker="D", lw=0, label="best in group"),
               Line2D([], [], color=OTHER, marker="o", lw=0, label="within seed spread of the best"),
               Line2D([], [], color=OTHER, marker="o", mfc="white", lw=0, label="behind by more than the spread"),
               Line2D([], [], color="#555555", lw=0.8, label="±1 std over seeds")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    return fig


@styled
def plot_error_edf(trials: pd.DataFrame):
    """Empirical distribution of top-1 error (%) over all finished trials, one step curve per regime.

    The share of trials with error at most x (pycls' EDF): a curve to the left and above another
    means that regime (or design space) yields more good models. Returns the Figure, or None
    without finished trials.
    """
    done = finished_trials(trials)
    if done.empty:
        return None
    regimes = regime_order(done)
    colours = regime_colors(regimes)
    fig, axes = new_figure(1, 1, (6.0, 3.8))
    ax = axes[0, 0]
    epochs_of = done.groupby("regime")["epochs"].max()
    for regime in regimes:
        curve = error_edf(done.loc[done["regime"] == regime, "error_pct"])
        _step(ax, curve, "error", color=colours[regime],
              label=f"{regime_title(regime, epochs_of.get(regime))}, n = {len(curve)}")
    ax.set_xlabel("top-1 error (%)")
    ax.set_ylabel("share of trials with error ≤ x")
    ax.set_ylim(0, 1.02)
    chance_line(ax, chance_levels(trials), error=True, axis="x")
    ax.legend(loc="lower right")
    dataset = dataset_name(trials)
    ax.set_title("Error distribution over the whole space" + (f" ({dataset})" if dataset else ""))
    return fig


def _step(ax, curve: pd.DataFrame, column: str, **style) -> None:
    """An EDF (``design_space.edf``) as the step function it is, rising from 0 at its first value."""
    x = np.concatenate([[curve[column].iloc[0]], curve[column].to_numpy()])
    y = np.concatenate([[0.0], curve["fraction"].to_numpy()])
    ax.step(x, y, where="post", lw=1.6, **style)


@styled
def plot_complexity_edf(spaces: dict, *, band: tuple[float, float] | None = None):
    """The FLOP distribution of design spaces (pycls' complexity EDF), one step curve per space.

    ``spaces``: {name: FLOPs per image of every config sampled from it}; ``band``: (low, high)
    FLOPs, shaded, the complexity regime whose configs would be trained and compared. The share of
    a space's configs at or below x FLOPs: a space whose curve rises in the band has many configs
    there. Returns the Figure, or None without any config.
    """
    spaces = {k: v for k, v in spaces.items() if len(v)}
    if not spaces:
        return None
    fig, axes = new_figure(1, 1, (6.0, 3.8))
    ax = axes[0, 0]
    div, unit = flop_unit(pd.concat([pd.Series(v, dtype=float) for v in spaces.values()]))
    for i, (name, flops) in enumerate(spaces.items()):
        curve = edf(np.asarray(flops, dtype=float) / div, "flops")
        _step(ax, curve, "flops", color=QUALITATIVE[i % len(QUALITATIVE)], label=f"{name}, n = {len(curve):,}")
    if band:
        ax.axvspan(band[0] / div, band[1] / div, color="#dddddd", zorder=0, label="complexity band")
    log_axis(ax, "x")
    ax.set_xlabel(flop_axis_label(unit))
    ax.set_ylabel("share of configs with FLOPs ≤ x")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    ax.set_title("Complexity of each design space (sampled configs)")
    return fig


@styled
def plot_axis_effects(trials: pd.DataFrame, *, table: pd.DataFrame | None = None, max_axes: int = 8):
    """Mean top-1 error (%) per value of each varying design axis, one line per regime.

    A panel per axis (depth, width, cardinality, resolution, then other varying fields); each
    point averages every finished trial with that value (the other axes and the seeds vary
    underneath, so the bars, +-1 std, are wide); small dots are the single trials. Returns the
    Figure, or None when no axis varies.
    """
    table = axis_effects(trials) if table is None else table
    if table.empty:
        return None
    axes_names = list(dict.fromkeys(table["axis"]))[:max_axes]
    regimes = [r for r in regime_order(trials) if r in set(table["regime"])]
    colours = regime_colors(regimes)
    ncols = min(len(axes_names), 4)
    nrows = -(-len(axes_names) // ncols)
    fig, axes = new_figure(nrows, ncols, (3.0, 2.8), extra_height=0.5)
    for ax in axes.flat[len(axes_names):]:
        ax.set_visible(False)
    done = finished_trials(trials)
    values_of = design_axes(trials)
    shift = np.linspace(-0.12, 0.12, len(regimes)) if len(regimes) > 1 else [0.0]
    for ax, name in zip(axes.flat, axes_names):
        t = table[table["axis"] == name]
        labels = list(dict.fromkeys(t.sort_values(["order", "value"])["value"]))
        pos = {v: i for i, v in enumerate(labels)}
        for k, regime in enumerate(regimes):
            r = t[t["regime"] == regime]
            x = r["value"].map(pos).to_numpy(float) + shift[k]
            ax.errorbar(x, r["error_mean"], yerr=r["error_std"].fillna(0), color=colours[regime], marker="o",
                        ms=4, lw=1.2, elinewidth=0.7, zorder=3)
            sel = done["regime"] == regime
            vals = values_of[name][sel]
            text = vals.map(lambda v: (str(int(v)) if isinstance(v, (int, float, np.number)) and float(v).is_integer()
                                       else (f"{v:g}" if isinstance(v, (float, np.floating)) else str(v))))
            px = text.map(pos).to_numpy(float) + shift[k]
            ax.scatter(px, done.loc[sel, "error_pct"], s=4, color=colours[regime], alpha=0.25, lw=0, zorder=2)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=0 if len(labels) < 6 else 45, ha="center" if len(labels) < 6 else "right")
        ax.set_xlabel(_axis_label(name))
        ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.grid(axis="x", visible=False)
        chance_line(ax, chance_levels(trials), error=True)
    for row in axes:
        row[0].set_ylabel("top-1 error (%)")
    epochs_of = done.groupby("regime")["epochs"].max()
    handles = [Line2D([], [], color=colours[r], marker="o", lw=1.2, label=regime_title(r, epochs_of.get(r)))
               for r in regimes]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    dataset = dataset_name(trials)
    fig.suptitle("Effect of each design axis (mean ± std over all trials with that value)"
                 + (f", {dataset}" if dataset else ""))
    return fig


def _axis_label(axis: str) -> str:
    return {"depth": "depth (layers)", "width": "width multiplier", "cardinality": "cardinality x bottleneck width",
            "resolution": "resolution (px)"}.get(axis, axis.replace("_", " "))


@styled
def plot_learning_curves(epochs: pd.DataFrame, configs: dict[str, list[str]], *, metric: str = "val_top1",
                         planned_epochs: dict | None = None, chances=()):
    """Validation top-1 (%) against epoch for chosen configurations, a panel per regime.

    ``configs`` maps a regime to config names (e.g. its Pareto-optimal ones); each line is the
    mean over that config's seeds at each epoch. ``planned_epochs`` ({regime: epochs}) goes into
    the panel titles; ``chances``: chance top-1 levels (%), marked. Returns the Figure, or None when
    ``epochs`` holds none of them.
    """
    epochs_of = planned_epochs
    if epochs is None or epochs.empty or metric not in epochs or "epoch" not in epochs:
        return None
    ep = epochs.copy()
    ep[metric] = pd.to_numeric(ep[metric], errors="coerce")
    ep = ep[ep[metric].notna()]
    regimes = [r for r, names in configs.items() if names and ((ep["regime"] == r) & ep["name"].isin(names)).any()]
    if not regimes:
        return None
    fig, axes = new_figure(1, len(regimes), (4.0, 3.2), extra_height=0.9, min_width=WIDE_TITLE)
    short, omitted = name_labels(ep["name"])
    for ax, regime in zip(axes.flat, regimes):
        for i, name in enumerate(configs[regime][:len(QUALITATIVE)]):
            e = ep[(ep["regime"] == regime) & (ep["name"] == name)]
            if e.empty:
                continue
            curve = e.groupby("epoch")[metric].mean()
            ax.plot(curve.index, curve.to_numpy(), color=QUALITATIVE[i], lw=1.3, label=short.get(name, name))
        ax.set_title(regime_title(regime, pd.to_numeric(ep.loc[ep["regime"] == regime, "epoch"]).max()
                                  if epochs_of is None else epochs_of.get(regime)))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # epochs are whole: no 1.5 tick
        ax.set_ylabel("validation top-1 accuracy (%)")
        chance_line(ax, chances)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncols=2)
    fig.suptitle("Learning curves of Pareto-optimal configurations (mean over seeds)"
                 + (f"\n{omitted}" if omitted else ""))
    return fig
