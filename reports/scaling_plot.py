"""Scaling curves: the ResNet-RS study grid (depth x width per resolution and regime) and one
dimension at a time from a common base, with the fitted power laws."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .dimension_steps import DIMENSIONS, dimension_members, scaling_law_fits
from .style import (
    MARKERS,
    OKABE_ITO,
    WIDE_TITLE,
    chance_line,
    dimension_color,
    flop_axis_label,
    flop_unit,
    log_axis,
    name_labels,
    new_figure,
    regime_title,
    sequential_colors,
    styled,
)
from .tables import ARCH_FIELDS, aggregate_seeds, chance_levels, dataset_name, finished_trials, regime_order

__all__ = ["plot_scaling_curves", "plot_dimension_curves", "study_grid"]

# Fields that do not tell a depth line apart: the plotted axes and per-size regularisation.
_NOT_LINE_KEY = {"width_multiplier", "resolution", "depth", "depth_number", "stem_width", "widths",
                 "stochastic_depth", "dropout", "num_classes", "in_channels"}


def _fmt(v) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def study_grid(trials: pd.DataFrame, *, configs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The seed-averaged configurations of the depth x width x resolution study.

    Other architecture fields (cardinality, block, SE, ...) are held at their most common
    combination, so every depth line compares widths of one network family; configurations with
    other values are left out (the equal-FLOP and per-dimension figures show them). Adds
    ``depth_key`` (nominal depth, or the depth text when not numeric); ``attrs["held"]`` names the
    fields held and their values.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    configs = aggregate_seeds(trials) if configs is None else configs
    configs = configs[configs["flops"].notna() & (configs["flops"] > 0)].copy()
    if configs.empty:
        return configs
    others = [f for f in ARCH_FIELDS if f in configs and f not in _NOT_LINE_KEY
              and configs[f].astype(str).nunique() > 1]
    if others:
        key = configs[others].astype(str).agg("|".join, axis=1)
        configs = configs[key == key.value_counts().index[0]].copy()
    configs.attrs["held"] = {f: configs[f].iloc[0] for f in others}
    dn = configs["depth_number"]
    configs["depth_key"] = dn.where(dn.notna(), configs["depth"])
    return configs


@styled
def plot_scaling_curves(trials: pd.DataFrame, *, configs: pd.DataFrame | None = None):
    """Top-1 accuracy (%) against FLOPs: one line per depth, one point (marker) per width multiplier.

    A grid of panels: one row per input resolution, one column per regime (shortest training on
    the left), as in the ResNet-RS scaling study, so one sees at each resolution whether adding
    depth or width buys more accuracy and how that flips with the training length. Points are
    seed means with min-max bars. Returns the Figure, or None when neither depth nor width varies.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    grid = study_grid(trials, configs=configs)
    if grid.empty or (grid["depth_key"].nunique() < 2 and grid["width_multiplier"].nunique() < 2):
        return None
    regimes = [r for r in regime_order(trials) if r in set(grid["regime"])]
    has_res = grid["resolution"].notna().any()
    resolutions = sorted(grid["resolution"].dropna().unique()) if has_res else [None]
    depths = sorted(grid["depth_key"].dropna().unique(), key=lambda d: (isinstance(d, str), d))
    widths = sorted(grid["width_multiplier"].dropna().unique())
    depth_colour = dict(zip(depths, sequential_colors(len(depths), "viridis", 0.0, 0.85)))
    width_marker = dict(zip(widths, MARKERS))
    div, unit = flop_unit(finished_trials(trials)["flops"])
    fig, axes = new_figure(len(resolutions), len(regimes), (3.7, 2.9), extra_height=0.9, min_width=WIDE_TITLE,
                           sharex=True)
    epochs_of = grid.groupby("regime")["epochs"].max()
    for i, res in enumerate(resolutions):
        for j, regime in enumerate(regimes):
            ax = axes[i, j]
            g = grid[grid["regime"] == regime]
            if res is not None:
                g = g[g["resolution"] == res]
            for depth in depths:
                line = g[g["depth_key"] == depth].sort_values("width_multiplier")
                if line.empty:
                    continue
                x = line["flops"].to_numpy(float) / div
                y = line["top1_mean"].to_numpy(float)
                err = np.vstack([y - line["top1_min"], line["top1_max"] - y])
                ax.errorbar(x, y, yerr=err, color=depth_colour[depth], lw=1.3, elinewidth=0.7, zorder=2)
                for w, xx, yy in zip(line["width_multiplier"], x, y):
                    ax.scatter([xx], [yy], marker=width_marker.get(w, "o"), s=26, color=depth_colour[depth],
                               edgecolors="white", linewidths=0.5, zorder=3)
            if g.empty:
                ax.text(0.5, 0.5, "no finished trials", transform=ax.transAxes, ha="center", color="#777777")
            title = regime_title(regime, epochs_of.get(regime))
            ax.set_title(f"{title}, {int(res)} px" if res is not None else title)
            if j == 0:
                ax.set_ylabel("top-1 accuracy (%)")
            ax.margins(x=0.08, y=0.1)
            chance_line(ax, chance_levels(trials))
    for ax in axes.flat:
        log_axis(ax, "x")
        ax.tick_params(labelbottom=True)
    for ax in axes[-1]:
        ax.set_xlabel(flop_axis_label(unit))
    dataset = dataset_name(trials)
    held = ", ".join(f"{f} {_fmt(v) if isinstance(v, (int, float)) else v}"
                     for f, v in grid.attrs.get("held", {}).items())
    fig.suptitle("Scaling depth and width at each resolution and training length"
                 + (f" ({dataset})" if dataset else "") + (f"\nwith {held} (the most common)" if held else ""))
    handles = [Line2D([], [], color=depth_colour[d], lw=2, label=f"depth {d}") for d in depths]
    handles += [Line2D([], [], color="#555555", marker=width_marker[w], lw=0, label=f"width x{_fmt(w)}")
                for w in widths]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), max(len(depths), len(widths), 4)))
    return fig


def _why(fit: pd.Series) -> str:
    note = str(fit.get("note", ""))
    if note.startswith("FLOPs span only"):
        return note.split(" (")[0].replace("FLOPs span only ", "FLOPs span ")
    return f"{int(fit['n_configs'])} configs, needs 4"


@styled
def plot_dimension_curves(trials: pd.DataFrame, fits: pd.DataFrame | None = None,
                          members: pd.DataFrame | None = None, *,
                          configs: pd.DataFrame | None = None):
    """Top-1 error (%) against FLOPs when scaling one dimension from a common base, a panel per regime.

    Each dimension (depth, width, cardinality, resolution, or the sweep's strategy labels) has
    its fixed colour; points are seed means with min-max bars, joined in FLOP order; the dashed
    curve is the fitted power law error = a * GFLOPs^-b + c (``scaling_law_fits``), with b, its
    standard error and the number of points in the legend; the dotted vertical line is the
    budget at which the dimensions are compared. Returns the Figure, or None when no
    configuration differs from a base in one dimension only.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    members = dimension_members(trials, configs=configs) if members is None else members
    if members.empty:
        return None
    fits = scaling_law_fits(trials, members) if fits is None else fits
    configs = (aggregate_seeds(trials) if configs is None else configs).set_index(["regime", "name"])
    regimes = [r for r in regime_order(trials) if r in set(members["regime"])]
    done = finished_trials(trials)
    div, unit = flop_unit(done["flops"])
    short, omitted = name_labels(done["name"])
    fitted = False
    fig, axes = new_figure(1, len(regimes), (4.2, 3.6), extra_height=1.1, min_width=WIDE_TITLE, sharex=True)
    epochs_of = configs.groupby(level="regime")["epochs"].max()
    for ax, regime in zip(axes.flat, regimes):
        m = members[members["regime"] == regime]
        base_names = set(m.loc[m["is_base"], "name"])
        dims = sorted(m["dimension"].unique(), key=lambda d: (list(DIMENSIONS).index(d) if d in DIMENSIONS else 9, d))
        for dim in dims:
            dm = m[m["dimension"] == dim]
            rows = configs.loc[[(regime, n) for n in dm["name"]]].sort_values("flops")
            x = rows["flops"].to_numpy(float) / div
            y = rows["error_mean"].to_numpy(float)
            err = np.vstack([rows["top1_max"] - rows["top1_mean"], rows["top1_mean"] - rows["top1_min"]])
            colour = dimension_color(dim)
            fit = fits[(fits["regime"] == regime) & (fits["dimension"] == dim)]
            label = str(dim)
            if len(fit) and bool(fit["ok"].iloc[0]):
                f = fit.iloc[0]
                label += f": b = {f['b']:.2f} ± {f['b_std']:.2f} (n = {int(f['n_points'])})"
                if "edge" in str(f.get("note", "")):
                    label += ", b at its search limit"
                xs = np.geomspace(x.min(), x.max(), 60)
                ax.plot(xs, f["a"] * (xs * div / 1e9) ** (-f["b"]) + f["c"], color=colour, ls="--", lw=1.1, zorder=2)
                fitted = True
            elif len(fit):
                label += f": no fit ({_why(fit.iloc[0])})"
            # every dimension's steps joined from the base, however short (only the fit needs a span)
            ax.errorbar(x, y, yerr=err, color=colour, lw=1.0, alpha=0.9, marker="o", ms=4,
                        elinewidth=0.7, label=label, zorder=3)
        for name in base_names:
            b = configs.loc[(regime, name)]
            ax.scatter([b["flops"] / div], [b["error_mean"]], marker="*", s=90, color=OKABE_ITO["black"], zorder=5,
                       label=f"common base {short.get(name, name)}")
        budget = fits.loc[fits["regime"] == regime, "budget_gflops"].dropna()
        if len(budget):
            ax.axvline(budget.iloc[0] * 1e9 / div, color="#777777", ls=":", lw=1.0, zorder=1,
                       label=f"budget the dimensions are compared at: {budget.iloc[0] * 1e9 / div:.3g} {unit}")
        ax.set_title(regime_title(regime, epochs_of.get(regime)))
        ax.set_ylabel("top-1 error (%)")
        ax.margins(x=0.08, y=0.1)
        chance_line(ax, chance_levels(trials), error=True)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncols=1)
    for ax in axes.flat:
        log_axis(ax, "x")
        ax.set_xlabel(flop_axis_label(unit))
        ax.tick_params(labelbottom=True)
    dataset = dataset_name(trials)
    title = "One dimension at a time from a common base" + (f" ({dataset})" if dataset else "")
    title += ("\ndashed: fitted $\\mathrm{error} = a\\,\\mathrm{GFLOPs}^{-b} + c$" if fitted else
              "\nno power-law fit: a dimension needs 4 configurations spanning 1.5x in FLOPs")
    if omitted:
        title += f"\n{omitted}"
    fig.suptitle(title)
    return fig
