"""Scaling one dimension at a time: which configurations extend a common base along which axis.

With a ``strategy`` column (the sweep came from a scaling strategy) its label is the dimension.
Otherwise, per regime, the base is the cheapest configuration (lowest FLOPs) and a configuration
belongs to a dimension when it differs from the base in that dimension's fields only:

    depth        depth / depth_number
    width        width_multiplier, widen_factor
    cardinality  cardinality and bottleneck_width (ResNeXt's C x d)
    resolution   resolution

Dropout and stochastic-depth rates are ignored in the comparison: ResNet-RS grows them with
model size, so a deeper configuration may carry a larger rate and still be a depth step.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .powerlaw import fit_power_law
from .tables import ARCH_FIELDS, aggregate_seeds, finished_trials, regime_order

__all__ = ["DIMENSIONS", "dimension_members", "scaling_law_fits", "best_dimension"]

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "depth": ("depth", "depth_number"),
    "width": ("width_multiplier", "widen_factor"),
    "cardinality": ("cardinality", "bottleneck_width"),
    "resolution": ("resolution",),
}
_IGNORED = ("stochastic_depth", "dropout")


def _as_key(value) -> str:
    """A comparable text form of a field value (NaN, 1 and 1.0 compare sensibly)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def dimension_members(trials: pd.DataFrame, *, configs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Which configurations lie on which one-dimensional scaling path, per regime.

    One row per (regime, dimension, config): columns ``regime``, ``dimension``, ``name``,
    ``is_base`` (the common starting point; it appears under every dimension that has at least
    one other member) and ``flops``. Configurations without a FLOP count are left out. Empty when
    no configuration differs from a base in one dimension only.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    configs = aggregate_seeds(trials) if configs is None else configs
    configs = configs[configs["flops"].notna() & (configs["flops"] > 0)]  # curves and fits are against FLOPs
    rows = []
    if configs.empty:
        return pd.DataFrame(columns=["regime", "dimension", "name", "is_base", "flops"])
    if "strategy" in configs and configs["strategy"].notna().any():
        labelled = configs[configs["strategy"].notna()]
        for (regime, strategy), g in labelled.groupby(["regime", "strategy"], sort=False):
            base = g.sort_values(["flops", "name"]).iloc[0]["name"]
            if "flop_multiplier" in g and (g["flop_multiplier"] == 1).any():
                base = g[g["flop_multiplier"] == 1].sort_values("flops").iloc[0]["name"]
            for _, r in g.iterrows():
                rows.append((regime, str(strategy), r["name"], r["name"] == base, r["flops"]))
    else:
        fields = [f for f in ARCH_FIELDS if f in configs and f not in _IGNORED]
        for regime, g in configs.groupby("regime", sort=False):
            g = g.sort_values(["flops", "name"], na_position="last")
            base = g.iloc[0]
            base_keys = {f: _as_key(base[f]) for f in fields}
            found: dict[str, list] = {}
            for _, r in g.iloc[1:].iterrows():
                diff = {f for f in fields if _as_key(r[f]) != base_keys[f]}
                for dim, dim_fields in DIMENSIONS.items():
                    if diff and diff <= set(dim_fields):
                        found.setdefault(dim, []).append(r)
            for dim, members in found.items():
                rows.append((regime, dim, base["name"], True, base["flops"]))
                rows += [(regime, dim, r["name"], False, r["flops"]) for r in members]
    out = pd.DataFrame(rows, columns=["regime", "dimension", "name", "is_base", "flops"])
    return out.sort_values(["regime", "dimension", "flops"], kind="stable").reset_index(drop=True)


def scaling_law_fits(trials: pd.DataFrame, members: pd.DataFrame | None = None) -> pd.DataFrame:
    """Power-law fit of top-1 error against FLOPs for each regime and scaling dimension.

    One row per (regime, dimension) with: ``n_configs``, ``n_points`` (trials, seeds counted
    separately), ``gflops_min`` / ``gflops_max`` (fvcore: 1 multiply-add = 1 FLOP), the fit
    ``a``, ``b``, ``b_std``, ``c``, ``c_std``, ``rmse`` (error in %, see ``PowerLawFit``),
    ``budget_gflops``, ``gain_per_doubling`` and ``gain_std`` (percentage points of error removed
    by doubling FLOPs at the budget), ``ok`` and ``note``. The budget of a regime is the largest
    FLOPs every fitted dimension of that regime reaches (the smallest of their maxima), so no
    curve is read beyond its own points.
    """
    done = finished_trials(trials)
    members = dimension_members(trials) if members is None else members
    rows = []
    for (regime, dim), m in members.groupby(["regime", "dimension"], sort=False):
        pts = done[(done["regime"] == regime) & done["name"].isin(m["name"])]
        fit = fit_power_law(pts["flops"], pts["error_pct"])
        rows.append(dict(regime=regime, dimension=dim, n_configs=m["name"].nunique(),
                         n_points=fit.n_points, gflops_min=pts["flops"].min() / 1e9,
                         gflops_max=pts["flops"].max() / 1e9, a=fit.a, b=fit.b, b_std=fit.b_std,
                         c=fit.c, c_std=fit.c_std, rmse=fit.rmse, ok=fit.ok, note=fit.note,
                         _fit=fit))
    cols = ["regime", "dimension", "n_configs", "n_points", "gflops_min", "gflops_max", "a", "b",
            "b_std", "c", "c_std", "rmse", "budget_gflops", "gain_per_doubling", "gain_std", "ok", "note"]
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    budget = out[out["ok"]].groupby("regime")["gflops_max"].min()
    out["budget_gflops"] = out["regime"].map(budget)
    gains = [r["_fit"].gain_per_doubling(r["budget_gflops"] * 1e9) if r["ok"] and pd.notna(r["budget_gflops"])
             else (np.nan, np.nan) for _, r in out.iterrows()]
    out["gain_per_doubling"] = [g[0] for g in gains]
    out["gain_std"] = [g[1] for g in gains]
    order = {r: i for i, r in enumerate(regime_order(trials))}
    dim_order = {d: i for i, d in enumerate(DIMENSIONS)}
    out["_r"] = out["regime"].map(order)
    out["_d"] = out["dimension"].map(lambda d: dim_order.get(d, len(dim_order)))
    out = out.sort_values(["_r", "_d", "dimension"], kind="stable")
    return out[cols].reset_index(drop=True)


def best_dimension(fits: pd.DataFrame) -> dict[str, dict]:
    """Per regime, the dimension whose fitted curve removes the most error per doubling of FLOPs.

    Returns ``{regime: {"dimension", "gain", "gain_std", "budget_gflops", "n_points" (of the
    winning fit), "runner_up", "runner_up_gain", "runner_up_std", "clear"}}`` over the regimes
    with at least one successful fit;
    ``clear`` is True when the lead over the runner-up exceeds their combined standard error
    (False: within the uncertainty; None: nothing to compare against).
    """
    out = {}
    ok = fits[fits["ok"].astype(bool) & fits["gain_per_doubling"].notna()] if len(fits) else fits
    for regime, g in ok.groupby("regime", sort=False):
        g = g.sort_values("gain_per_doubling", ascending=False)
        top = g.iloc[0]
        entry = dict(dimension=top["dimension"], gain=float(top["gain_per_doubling"]),
                     gain_std=float(top["gain_std"]), budget_gflops=float(top["budget_gflops"]),
                     n_points=int(top["n_points"]), runner_up=None, runner_up_gain=None, runner_up_std=None, clear=None)
        if len(g) > 1:
            second = g.iloc[1]
            margin = top["gain_per_doubling"] - second["gain_per_doubling"]
            err = math.hypot(top["gain_std"], second["gain_std"])
            entry.update(runner_up=second["dimension"], runner_up_gain=float(second["gain_per_doubling"]),
                         runner_up_std=float(second["gain_std"]),
                         clear=bool(margin > err) if np.isfinite(err) else None)
        out[regime] = entry
    return out
