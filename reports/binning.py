"""Equal-FLOP comparison: configurations grouped at roughly equal complexity, ranked by accuracy.

The ResNeXt paper compares cardinality "at roughly constant complexity"; here a group is either
the equal-FLOP matcher's ``group`` label (when the sweep came from the matcher) or a FLOP bin:
configurations whose FLOPs lie within a relative ``tolerance`` of the cheapest one in the bin.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import ARCH_FIELDS, aggregate_seeds, regime_order

__all__ = ["flop_bins", "flop_bin_labels", "equal_flop_groups", "equal_flop_table", "format_flops", "flop_unit"]

#: Architecture columns that can tell an equal-FLOP group's members apart: the scaling dimensions
#: first, then every other ArchSpec field except the depth as text, the base widths, the data's
#: shape and the per-size regularisation.
_DIMENSION_COLUMNS = ("block", "depth_number", "width_multiplier", "cardinality", "bottleneck_width",
                      "widen_factor", "resolution")
_NOT_TELLING = ("depth", "widths", "stem_width", "num_classes", "in_channels", "stochastic_depth", "dropout")
_GROUP_COLUMNS = _DIMENSION_COLUMNS + tuple(f for f in ARCH_FIELDS if f not in _DIMENSION_COLUMNS + _NOT_TELLING)


def flop_bins(flops, tolerance: float = 0.15) -> pd.Series:
    """Bin number (0, 1, ... by increasing FLOPs; nullable Int64, NA for NaN) of each value.

    Greedy on the sorted values: a bin starts at its cheapest value and takes every value up to
    ``(1 + tolerance)`` times it; the next value opens a new bin. So every member of a bin is
    within ``tolerance`` (relative) of the bin's cheapest member, and equal values share a bin.
    """
    s = pd.Series(flops, dtype=float) if not isinstance(flops, pd.Series) else pd.to_numeric(flops)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    values = np.unique(s.dropna().to_numpy(dtype=float))
    bin_of: dict[float, int] = {}
    start, b = None, -1
    for v in values:
        if start is None or v > start * (1.0 + tolerance):
            start, b = v, b + 1
        bin_of[v] = b
    return s.map(bin_of).astype("Int64").rename("flop_bin")


def flop_unit(flops) -> tuple[float, str]:
    """(divisor, unit) to show these FLOPs with: GFLOPs when the largest is 0.5 G or more, else
    MFLOPs from 0.5 M, else kFLOPs. Figures of one report pass all its FLOPs, so they agree."""
    values = np.asarray(pd.Series(flops, dtype=float).dropna(), dtype=float)
    top = values.max() if values.size else 1e9
    if top >= 5e8:
        return 1e9, "GFLOPs"
    if top >= 5e5:
        return 1e6, "MFLOPs"
    return 1e3, "kFLOPs"


def _plain_number(v: float, digits: int) -> str:
    text = f"{v:.{digits}g}"
    return f"{v:.0f}" if "e" in text else text


def format_flops(flops: float, digits: int = 2) -> str:
    """FLOPs (fvcore convention) as text with a unit: '4.1 GFLOPs', '0.23 GFLOPs', '35 MFLOPs'."""
    for scale, unit in ((1e12, "TFLOPs"), (1e8, "GFLOPs"), (1e5, "MFLOPs"), (1e2, "kFLOPs")):
        if abs(flops) >= scale:
            div = 1e9 if unit == "GFLOPs" else (1e6 if unit == "MFLOPs" else (1e3 if unit == "kFLOPs" else scale))
            return f"{_plain_number(flops / div, digits)} {unit}"
    return f"{_plain_number(flops, digits)} FLOPs"


def flop_bin_labels(flops, bins: pd.Series) -> pd.Series:
    """A label per row naming its bin's FLOP range in one unit for all rows, e.g. '3.9-4.3 GFLOPs'
    ('~4.1 GFLOPs' when the range rounds to one number; NA where no bin)."""
    s = pd.Series(flops, index=bins.index, dtype=float)
    div, unit = flop_unit(s)
    lo = s.groupby(bins).transform("min") / div
    hi = s.groupby(bins).transform("max") / div
    labels = pd.Series(pd.NA, index=bins.index, dtype=object)
    for i in bins.index[bins.notna()]:
        a, b = _plain_number(lo[i], 2), _plain_number(hi[i], 2)
        labels[i] = f"~{a} {unit}" if a == b else f"{a}-{b} {unit}"
    return labels


def equal_flop_groups(configs: pd.DataFrame, tolerance: float = 0.15) -> pd.DataFrame:
    """``group`` label and ``group_order`` (sort key, by FLOPs) for each configuration row.

    Rows with the matcher's ``group`` label keep it; the others are binned by ``flops`` with
    ``flop_bins``. Binning is done on the distinct configurations of all regimes together, so a
    configuration falls in the same bin in every regime.
    """
    out = pd.DataFrame(index=configs.index)
    matcher = configs["group"] if "group" in configs else pd.Series(np.nan, index=configs.index)
    matcher = matcher.where(matcher.astype(str).str.strip().ne("") & matcher.notna())
    binned = matcher.isna()
    flops = pd.to_numeric(configs["flops"], errors="coerce")
    bins = flop_bins(flops[binned], tolerance)
    out["group"] = matcher.astype(object)
    out.loc[binned, "group"] = flop_bin_labels(flops[binned], bins)
    out["group_order"] = flops.groupby(out["group"]).transform("min")
    return out


def equal_flop_table(trials: pd.DataFrame, tolerance: float = 0.15, min_size: int = 2, *,
                     configs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Configurations at roughly equal FLOPs, ranked by top-1 within each regime and group.

    One row per (regime, configuration) over finished trials, seeds averaged. Columns:
    ``regime``, ``group`` (the matcher's label or a FLOP range), ``rank`` (1 = best top-1 in
    the group), ``name``, ``gflops`` (fvcore: 1 multiply-add = 1 FLOP), ``params_m`` (millions),
    ``top1_mean`` / ``top1_std`` (%, std over seeds), ``n_seeds``, ``delta_top1`` (percentage
    points behind the group's best), ``within_spread`` (True when that gap is smaller than the
    two configurations' seed standard deviations added; NaN with one seed), and the architecture
    columns that tell the group's members apart. Groups with fewer than ``min_size``
    configurations in a regime are left out.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    configs = aggregate_seeds(trials) if configs is None else configs.copy()
    if configs.empty:
        return pd.DataFrame(columns=["regime", "group", "rank", "name", "gflops", "params_m",
                                     "top1_mean", "top1_std", "n_seeds", "delta_top1", "within_spread"])
    distinct = configs.drop_duplicates("name")
    by_name = equal_flop_groups(distinct, tolerance).set_index(pd.Index(distinct["name"].to_numpy()))
    configs["group"] = configs["name"].map(by_name["group"])
    configs["group_order"] = configs["name"].map(by_name["group_order"])
    configs["gflops"] = configs["flops"] / 1e9
    configs["params_m"] = configs["params"] / 1e6
    size = configs.groupby(["regime", "group"])["name"].transform("count")
    t = configs[size >= min_size].copy()
    t = t.sort_values(["regime", "group_order", "group", "top1_mean"], ascending=[True, True, True, False])
    t["rank"] = t.groupby(["regime", "group"]).cumcount() + 1
    best = t.groupby(["regime", "group"])["top1_mean"].transform("max")
    best_std = t.loc[t["rank"] == 1].set_index(["regime", "group"])["top1_std"]
    t["delta_top1"] = best - t["top1_mean"]
    spread = t["top1_std"] + pd.Series(list(zip(t["regime"], t["group"])), index=t.index).map(best_std)
    t["within_spread"] = (t["delta_top1"] <= spread).astype(object).where(spread.notna(), np.nan)
    order = {r: i for i, r in enumerate(regime_order(trials))}
    t["_r"] = t["regime"].map(order)
    t = t.sort_values(["_r", "group_order", "group", "rank"]).drop(columns="_r")
    arch = [c for c in _GROUP_COLUMNS if c in t and t[c].nunique(dropna=True) > 1]
    cols = ["regime", "group", "rank", "name", "gflops", "params_m", "top1_mean", "top1_std",
            "n_seeds", "delta_top1", "within_spread"] + arch
    return t[cols].reset_index(drop=True)
