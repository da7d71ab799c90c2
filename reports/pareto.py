"""Pareto fronts: which configurations no other configuration beats on both axes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import aggregate_seeds

__all__ = ["pareto_front", "pareto_configs"]


def pareto_front(df: pd.DataFrame, x: str, y: str, minimize_x: bool = True,
                 maximize_y: bool = True) -> pd.Series:
    """Boolean Series (index of ``df``): True for the rows on the Pareto front of ``x`` and ``y``.

    A row is dominated when another row is at least as good on both axes and strictly better on
    one. So two rows equal on both axes do not dominate each other (both stay on the front), and
    a row with the same ``x`` as another but a worse ``y`` (or the same ``y`` and a worse ``x``)
    is dominated. "Better" is lower ``x`` when ``minimize_x`` (a cost: FLOPs, latency) or higher
    ``x`` otherwise (throughput), and higher ``y`` when ``maximize_y`` (accuracy) or lower ``y``
    otherwise (error). Rows with NaN or infinite ``x`` or ``y`` are never on the front and
    dominate nothing.
    """
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    on_front = np.zeros(len(df), dtype=bool)
    valid = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    # Turn both axes into "lower is better", sort by x then y, and sweep keeping the best y seen
    # at strictly lower x: a row is on the front when its y beats it and it is the best (or tied
    # best) y among the rows with its x.
    sx = xs[valid] if minimize_x else -xs[valid]
    sy = -ys[valid] if maximize_y else ys[valid]
    order = np.lexsort((sy, sx))
    best = np.inf
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and sx[order[j]] == sx[order[i]]:
            j += 1
        group = order[i:j]  # rows with equal x, best y first
        group_best = sy[group[0]]
        if group_best < best:
            on_front[valid[group[sy[group] == group_best]]] = True
            best = group_best
        i = j
    return pd.Series(on_front, index=df.index, name="pareto")


def pareto_configs(trials: pd.DataFrame, cost: str = "flops", *, minimize_cost: bool = True,
                   metric: str = "top1_mean", configs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Seed-averaged configurations (``aggregate_seeds``) with a ``pareto`` column, front taken per regime.

    ``pareto`` is True for the configurations on the front of ``metric`` (maximised; default the
    mean top-1 over seeds, in %) against ``cost`` (minimised unless ``minimize_cost`` is False,
    as for throughput) within their regime. Rows missing the cost or metric are never on it.
    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    configs = aggregate_seeds(trials) if configs is None else configs.copy()
    configs["pareto"] = False
    for _, g in configs.groupby("regime", sort=False):
        configs.loc[g.index, "pareto"] = pareto_front(g, cost, metric, minimize_x=minimize_cost)
    configs["pareto"] = configs["pareto"].astype(bool)
    return configs
