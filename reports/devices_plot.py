"""How trials ran: training time against the device-seconds each used.

A data-parallel trial on N devices trains in about 1/N of the time, and uses N x its training
time in device-seconds (``device_seconds`` in the trials table: training time x devices). Each
finished trial is one point; the dotted lines are 1, 2, 4, ... devices (time = device-seconds /
devices). Moving a configuration to more devices moves its point down (less waiting) and, by
what the workers lose to communication, to the right (more device time for the same training).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import MARKERS, QUALITATIVE, log_axis, new_figure, styled, time_unit

__all__ = ["device_time", "plot_device_time", "DEVICE_TIME_COLUMNS"]

#: The columns of the device-time table, as the report's CSV holds them.
DEVICE_TIME_COLUMNS = ["name", "regime", "seed", "workers", "devices", "train_time_s", "device_seconds",
                       "observed_images_per_s", "images_per_device_s"]


def device_time(trials: pd.DataFrame) -> pd.DataFrame | None:
    """One row per finished trial that recorded how it ran (``DEVICE_TIME_COLUMNS``; images/s is
    the whole trial's, images_per_device_s per device), or None when none did (a results store
    from before data-parallel trials)."""
    if "device_seconds" not in trials or "finished" not in trials:
        return None
    df = trials[trials["finished"]].copy()
    for col in ("workers", "devices", "train_time_s", "device_seconds", "observed_images_per_s"):
        df[col] = pd.to_numeric(df.get(col), errors="coerce")
    df = df[(df["device_seconds"] > 0) & (df["train_time_s"] > 0)]
    if df.empty:
        return None
    df["images_per_device_s"] = df["observed_images_per_s"] / df["devices"]
    return df[DEVICE_TIME_COLUMNS].sort_values(["regime", "name", "workers", "seed"]).reset_index(drop=True)


@styled
def plot_device_time(rows: pd.DataFrame):
    """Training time (wall) against device-seconds, log-log, one colour and marker per worker count,
    with dotted lines for whole device counts. Returns a Figure."""
    fig, axes = new_figure(1, 1, (5.0, 3.6))
    ax = axes[0, 0]
    scale_x, unit_x = time_unit(rows["device_seconds"])
    scale_y, unit_y = time_unit(rows["train_time_s"])
    for i, (workers, group) in enumerate(rows.groupby("workers")):
        label = f"{workers:g} worker{'s' if workers != 1 else ''}"
        ax.scatter(group["device_seconds"] / scale_x, group["train_time_s"] / scale_y, s=22, label=label,
                   color=QUALITATIVE[i % len(QUALITATIVE)], marker=MARKERS[i % len(MARKERS)], zorder=3)
    lo, hi = rows["device_seconds"].min() / scale_x, rows["device_seconds"].max() / scale_x
    xs = np.geomspace(lo / 1.5, hi * 1.5, 20)
    top = max(1.0, float(rows["devices"].max()))
    for n in (2 ** k for k in range(int(np.log2(top)) + 1)):
        ax.plot(xs, xs * scale_x / n / scale_y, ls=":", lw=0.8, color="#8c8c8c", zorder=1)
        ax.annotate(f"{n} device{'s' if n > 1 else ''}", (xs[-1], xs[-1] * scale_x / n / scale_y), fontsize=7,
                    color="#8c8c8c", ha="right", va="bottom")
    ax.set_xlabel(f"device time used ({unit_x}, training time x devices)")
    ax.set_ylabel(f"training time ({unit_y}, wall clock)")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.legend(loc="upper left")
    return fig
