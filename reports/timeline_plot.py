"""Where a sweep's time went: each trial's phases on the sweep's clock, and the devices' utilisation.

Every trial is one row: a bar from when it was queued (``queued_at``) split into its phases
(``phase_<name>_s`` columns of the trials table, in the table's order: wait, worker start, data,
model, warm-up, train, eval, checkpoint, report), laid end to end. Training and evaluation
interleave epoch by epoch in reality; the bar adds them up, so its length is the trial's wall
time and each colour's share is that phase's. Below, the devices' utilisation over the same
clock (the driver's samples: NVML for GPUs, otherwise its Ray processes' CPU use over the CPUs
the trials may use).
"""
from __future__ import annotations

import pandas as pd

from .style import GREY, OKABE_ITO, QUALITATIVE, new_figure, styled

__all__ = ["phase_columns", "timeline", "plot_timeline"]

#: Colours of the phases: the work (train, eval) strong, what is not training in lighter tones.
PHASE_COLORS = {"train": OKABE_ITO["blue"], "eval": OKABE_ITO["sky_blue"], "warmup": OKABE_ITO["orange"],
                "data": OKABE_ITO["green"], "model": OKABE_ITO["yellow"], "worker_start": OKABE_ITO["vermillion"],
                "wait": "#d9d9d9", "checkpoint": OKABE_ITO["purple"], "report": OKABE_ITO["black"]}


def phase_columns(trials: pd.DataFrame) -> list[str]:
    """The trials table's phase columns (phase_<name>_s), in its order."""
    return [c for c in trials.columns if c.startswith("phase_") and c.endswith("_s")]


def timeline(trials: pd.DataFrame) -> pd.DataFrame | None:
    """The trials that recorded their phases and when they were queued: trial_id, name, seed,
    queued_at, the phase columns; ordered by queueing. None when no trial did (an older run)."""
    cols = phase_columns(trials)
    if not cols or "queued_at" not in trials:
        return None
    df = trials[["trial_id", "name", "seed", "queued_at", *cols]].copy()
    for c in ("queued_at", *cols):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df = df.dropna(subset=["queued_at", *cols], how="any")
    if df.empty:
        return None
    return df.sort_values(["queued_at", "trial_id"]).reset_index(drop=True)


@styled
def plot_timeline(rows: pd.DataFrame, utilisation: pd.DataFrame | None = None, start: float | None = None):
    """Each trial's phases as a bar along the sweep's clock (seconds from ``start``, default the
    first queueing), and below it the devices' utilisation (percent) when there are samples.
    Returns a Figure."""
    cols = phase_columns(rows)
    t0 = float(rows["queued_at"].min()) if start is None else start
    samples = utilisation if utilisation is not None and len(utilisation) else None
    height, below = max(2.2, 0.18 * len(rows) + 1.0), 1.8  # inches: the trials' rows, the utilisation panel
    if samples is None:
        fig, axes = new_figure(1, 1, (7.0, height))
    else:
        fig, axes = new_figure(2, 1, (7.0, (height + below) / 2), gridspec_kw={"height_ratios": [height, below]})
    ax = axes[0, 0]
    for i, row in enumerate(rows.itertuples(index=False)):
        left = row.queued_at - t0
        for col in cols:
            width = getattr(row, col)
            name = col[len("phase_"):-len("_s")]
            ax.barh(i, width, left=left, height=0.8, color=PHASE_COLORS.get(name, GREY), linewidth=0,
                    label=name if i == 0 else None)
            left += width
    ax.set_yticks(range(len(rows)), [f"{n} s{s}" for n, s in zip(rows["name"], rows["seed"])], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first trial was queued" if start is None else "seconds since the launch")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    if samples is not None:
        low = axes[1, 0]
        for k, (device, group) in enumerate(samples.sort_values("time").groupby("device", sort=False)):
            low.plot(group["time"] - t0, group["utilisation_pct"], lw=0.9, color=QUALITATIVE[k % len(QUALITATIVE)],
                     label=f"{device} ({group['source'].iloc[0]})")
        low.set_ylim(0, max(105.0, float(samples["utilisation_pct"].max()) * 1.05))
        low.set_xlim(ax.get_xlim())
        low.set_ylabel("utilisation (%)")
        low.set_xlabel(ax.get_xlabel())
        low.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig
