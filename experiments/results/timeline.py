"""Where a sweep's time went: its own figures from the journal and the trials table.

``sweep_times`` gives a ``SweepTimes`` (experiments.results.schema): launch to the first training
step, the share of the command's wall time the devices were busy, and the time trials spent outside
training and evaluation. The device samples the driver appends to OUTPUT_DIR/utilisation.csv
(experiments.sweep.utilisation) are read by ``load_utilisation``; the report draws them with each
trial's phases (reports.timeline_plot).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .schema import PHASES, UTILISATION, EpochReport, SweepLaunch, SweepTimes, phase_column

#: The phases that are the trial's real work; every other phase is overhead.
WORK_PHASES = ("train", "eval")
UTILISATION_COLUMNS = ["time", "device", "utilisation_pct", "source"]


def load_utilisation(output_dir: str | Path) -> pd.DataFrame:
    """The device samples of a sweep's output directory (UTILISATION_COLUMNS; empty without any).
    A torn last line from a kill is dropped; a file a kill left empty or without its whole header
    holds no samples."""
    path = Path(output_dir) / UTILISATION
    try:
        df = pd.read_csv(path, on_bad_lines="skip")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        df = pd.DataFrame()
    if not set(UTILISATION_COLUMNS) <= set(df.columns):
        return pd.DataFrame(columns=UTILISATION_COLUMNS)
    df = df[UTILISATION_COLUMNS]
    df["time"] = pd.to_numeric(df["time"], errors="coerce")
    df["utilisation_pct"] = pd.to_numeric(df["utilisation_pct"], errors="coerce")
    # every row names its source, so a row without it is a line cut short
    return df.dropna(subset=["time", "utilisation_pct", "source"]).reset_index(drop=True)


def overhead_phases() -> list[str]:
    """The phase columns outside training and evaluation."""
    return [phase_column(p) for p in PHASES if p not in WORK_PHASES]


def sweep_times(events: list, trials: pd.DataFrame, utilisation: pd.DataFrame | None = None,
                now: float | None = None) -> SweepTimes:
    """The sweep's time figures from its journal ``events`` (records), its ``trials`` table and the
    device samples (see ``SweepTimes``). The last launch counts: from its command's start to the
    last trial's end (or ``now`` while trials run). The busy share comes from the GPUs' samples
    when there are some, else from the trials' CPU seconds over the CPUs the launch could keep
    busy. NaN where the run did not record what a figure needs."""
    launches = [e for e in events if isinstance(e, SweepLaunch)]
    launch = launches[-1] if launches else SweepLaunch()
    start = launch.command_started_at or launch.time
    ran = trials[_num(trials, "finished_at").ge(launch.time or 0) | trials["status"].eq("running")] \
        if len(trials) and "finished_at" in trials else trials.iloc[0:0]
    ends = _num(ran, "finished_at").dropna()
    end = now if (now is not None and (ran["status"] == "running").any()) else (ends.max() if len(ends) else now)
    wall = (end - start) if start is not None and end is not None and not pd.isna(end) else math.nan
    # this launch's first step: a trial it resumed took its first step in an earlier launch (the table's
    # first_step_at), and its first step in this one is in the journal's epoch events
    firsts = [*_num(ran, "first_step_at").dropna(),
              *(e.first_step_at for e in events if isinstance(e, EpochReport) and e.first_step_at is not None)]
    firsts = [f for f in firsts if start is not None and f >= start]
    first = float(min(firsts) - start) if firsts else math.nan
    busy, source = _busy(ran, launch, wall, start, end, utilisation)
    outside = sum((_num(ran, col).fillna(0) for col in overhead_phases()), pd.Series(0.0, index=ran.index))
    measured = _num(ran, phase_column("train")).notna()
    totals = {p: float(_num(ran, phase_column(p)).sum()) for p in PHASES if p not in WORK_PHASES}
    largest = max(totals, key=totals.get) if measured.any() else None
    new_worker = ran["new_worker"].fillna(False).astype(bool) if "new_worker" in ran else False
    warm = outside[measured & ~new_worker]
    return SweepTimes(wall_s=float(wall), launch_to_first_step_s=first, busy_share=busy, busy_source=source,
                      overhead_s=float(outside[measured].mean()) if measured.any() else math.nan,
                      overhead_warm_s=float(warm.mean()) if len(warm) else math.nan,
                      largest_overhead_phase=largest, largest_overhead_s=totals.get(largest, math.nan)
                      if largest else math.nan, trials=int(measured.sum()))


def _busy(trials, launch: SweepLaunch, wall: float, start, end, utilisation) -> tuple[float, str | None]:
    if utilisation is not None and len(utilisation) and start is not None and end is not None \
            and (utilisation["source"] == "nvml").any():
        gpu = utilisation[(utilisation["source"] == "nvml") & utilisation["time"].between(start, end)]
        per_device = [_time_mean(g, start, end) for _, g in gpu.groupby("device")]
        return (float(sum(per_device) / len(per_device)) / 100 if per_device else math.nan), "nvml"
    cpu = _num(trials, "cpu_time_s").dropna()
    if not len(cpu) or not launch.cpus or not wall or math.isnan(wall):
        return math.nan, None
    return float(cpu.sum() / (launch.cpus * wall)), "cpu"


def _time_mean(samples: pd.DataFrame, start: float, end: float) -> float:
    """Mean utilisation (percent) over [start, end], each sample holding until the next; time
    before the first sample counts as idle (the device was not yet used)."""
    s = samples.sort_values("time")
    t = list(s["time"]) + [end]
    area = sum(u * (t[i + 1] - t[i]) for i, u in enumerate(s["utilisation_pct"]))
    return area / (end - start) if end > start else math.nan


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df:
        return pd.Series(math.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce")


def times_line(t: SweepTimes) -> str:
    """The sweep's time figures on one line (what ``archscale sweep`` and ``archscale status`` print)."""
    def sec(v) -> str:
        return "-" if v is None or math.isnan(v) else f"{v:.2f}s"

    parts = [f"launch to first training step {sec(t.launch_to_first_step_s)}"]
    if t.busy_share is not None and not math.isnan(t.busy_share):
        how = "GPU utilisation, NVML" if t.busy_source == "nvml" else "the trials' CPU time over their CPUs"
        parts.append(f"devices busy {100 * t.busy_share:.0f}% of {sec(t.wall_s)} ({how})")
    if t.trials:
        parts.append(f"per trial outside training and evaluation {sec(t.overhead_s)} "
                     f"({sec(t.overhead_warm_s)} after each worker's first)")
        parts.append(f"largest non-training phase: {t.largest_overhead_phase} "
                     f"({sec(t.largest_overhead_s)} over {t.trials} trials)")
    return "time: " + "; ".join(parts)
