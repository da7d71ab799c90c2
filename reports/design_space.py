"""Distributions over a design space: the error EDF (pycls' way of comparing spaces) and per-axis effects."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import ARCH_FIELDS, finished_trials, regime_order

__all__ = ["edf", "error_edf", "design_axes", "axis_effects"]


def error_edf(errors) -> pd.DataFrame:
    """Empirical distribution function of top-1 error: columns ``error`` (%, sorted) and ``fraction``.

    ``fraction`` at row i is the share of models with error <= ``error`` (from 1/n to 1), the
    step function pycls plots to compare design spaces: a curve further left and higher means
    more good models. NaNs are dropped.
    """
    return edf(errors, "error")


def edf(values, column: str = "value") -> pd.DataFrame:
    """Empirical distribution function of ``values``: columns ``column`` (sorted) and ``fraction``
    (the share of values <= it, from 1/n to 1). NaNs are dropped. Of errors it compares design
    spaces (``error_edf``); of FLOPs or params, their complexity (pycls' complexity distributions)."""
    e = np.sort(pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float))
    return pd.DataFrame({column: e, "fraction": np.arange(1, len(e) + 1) / max(len(e), 1)})


def design_axes(trials: pd.DataFrame) -> dict[str, pd.Series]:
    """The design axes that vary among the finished trials: ``{axis: value per trial}``.

    Values are numbers where the axis is numeric (depth, width multiplier, resolution) and text
    otherwise; cardinality is ResNeXt's "C x d" (cardinality x bottleneck width). The named
    axes come first (depth, width, cardinality, resolution), then any other varying
    architecture field. Index: that of ``finished_trials(trials)``.
    """
    df = finished_trials(trials)
    axes: dict[str, pd.Series] = {}
    depth = df["depth_number"] if df["depth_number"].notna().any() else df["depth"]
    axes["depth"] = depth
    axes["width"] = df["width_multiplier"]
    if df["cardinality"].notna().any():
        bw = df["bottleneck_width"].map(lambda v: "" if pd.isna(v) else f"x{int(v)}d")
        axes["cardinality"] = df["cardinality"].map(lambda v: "" if pd.isna(v) else str(int(v))) + bw
    axes["resolution"] = df["resolution"]
    named = {"depth", "depth_number", "width_multiplier", "cardinality", "bottleneck_width", "resolution",
             "widths", "stem_width", "num_classes", "in_channels"}
    for f in ARCH_FIELDS:
        if f in df and f not in named:
            axes[f] = df[f]
    return {k: v for k, v in axes.items() if v.dropna().astype(str).nunique() > 1}


def axis_effects(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean top-1 error per value of each varying design axis, per regime (other axes averaged over).

    Columns: ``regime``, ``axis``, ``value`` (as text), ``order`` (sort key within the axis),
    ``n_trials``, ``error_mean``, ``error_std`` (over the trials with that value: spread from the
    other axes and the seeds together), ``error_min`` (the best model with that value), all in %.
    """
    df = finished_trials(trials)
    rows = []
    for axis, values in design_axes(trials).items():
        numeric = pd.to_numeric(values, errors="coerce")
        is_num = numeric.notna().all()
        for regime in regime_order(df):
            sel = df["regime"] == regime
            for v, g in df[sel].groupby(values[sel].astype(str), sort=False):
                order = float(numeric[g.index[0]]) if is_num else np.nan
                label = _label(numeric[g.index[0]]) if is_num else v
                rows.append(dict(regime=regime, axis=axis, value=label, order=order,
                                 n_trials=len(g), error_mean=g["error_pct"].mean(),
                                 error_std=g["error_pct"].std(), error_min=g["error_pct"].min()))
    out = pd.DataFrame(rows, columns=["regime", "axis", "value", "order", "n_trials", "error_mean",
                                      "error_std", "error_min"])
    if out.empty:
        return out
    out["_a"] = out["axis"].map({a: i for i, a in enumerate(dict.fromkeys(out["axis"]))})
    out["_o"] = out["order"].fillna(0)
    return out.sort_values(["_a", "regime", "_o", "value"]).drop(columns=["_a", "_o"]).reset_index(drop=True)


def _label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
