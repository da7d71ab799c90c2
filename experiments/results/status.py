"""Where a sweep stands, read from its output directory alone (plan.json and the journal).

Works from any terminal, on any machine that sees the output directory, while the sweep runs and
after it ended or was killed: it reads only what the driver writes (experiments.results), never
Ray. ``sweep_status`` gives one row per trial (status, epoch n/N, last and best top-1, time, health) and
the sweep's counts, health counts and flagged trials, best trial so far and ETA; ``archscale status`` prints it.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from scaling.errors import ArchScaleError

from .health import flagged, health_counts
from .lock import driver_running
from .schema import (EVENTS, FINAL_STATUSES, TRIAL_STATUSES, UNFINISHED_STATUSES, SweepLaunch, SweepTimes, TrialEnd,
                     TrialStart, read_manifest)
from .store import build_tables, failed_on_user_errors, health_rules, read_events, read_plan
from .timeline import load_utilisation, sweep_times

#: The order statuses are counted in.
STATUS_ORDER = TRIAL_STATUSES


@dataclass
class TrialStatus:
    """One trial as the journal tells it. Percentages; seconds."""

    trial_id: str
    name: str
    regime: str
    seed: int
    status: str
    epoch: int
    epochs: int
    top1: float
    best_top1: float
    #: Wall-clock seconds the trial has run (every launch's share, up to its end or now).
    time_s: float
    #: Its health verdict ("" until it has a result) and why it is flagged.
    health: str = ""
    health_reason: str = ""


@dataclass
class SweepStatus:
    """A sweep's trials, counts by status, best trial so far and estimated time left."""

    name: str
    trials: list[TrialStatus]
    counts: dict[str, int]
    best: TrialStatus | None
    #: Estimated seconds left (None: no trial has finished yet, or nothing is left).
    eta_s: float | None
    #: Seconds since the driver last wrote the journal (a stalled or killed sweep stops writing).
    idle_s: float | None
    launches: int = 0
    extra: dict = field(default_factory=dict)
    #: Trials with a result per health verdict (experiments.results.health).
    health: dict[str, int] = field(default_factory=dict)
    #: Where the last launch's time went (busy share, largest non-training phase, ...).
    times: SweepTimes | None = None
    #: Whether a live driver holds the output directory's lock (experiments.results.lock): when
    #: not, its pending and running trials wait for a rerun, not for Ray.
    driver_running: bool = False
    #: Failed trials a rerun runs again: their error was the user's to fix (TrialEnd.user_error).
    user_errors: int = 0

    @property
    def flagged(self) -> list[TrialStatus]:
        """The trials whose health verdict is not ok."""
        return [t for t in self.trials if flagged(t.health)]

    @property
    def finished(self) -> bool:
        """No trial is pending, running or interrupted, nor failed on a user error (a rerun continues
        those)."""
        return not any(self.counts.get(s) for s in UNFINISHED_STATUSES) and not self.user_errors

    def to_dict(self) -> dict:
        """JSON-able form (NaN as None)."""
        def clean(d):
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

        return {"name": self.name, "counts": self.counts, "health": self.health, "eta_s": self.eta_s,
                "idle_s": self.idle_s, "finished": self.finished, "driver_running": self.driver_running,
                "user_errors": self.user_errors,
                "launches": self.launches,
                "best": clean(vars(self.best)) if self.best else None,
                "times": clean(self.times.to_dict()) if self.times is not None else None,
                "trials": [clean(vars(t)) for t in self.trials]}


def sweep_status(output_dir: str | Path, now: float | None = None) -> SweepStatus:
    """The status of the sweep in ``output_dir`` at time ``now`` (default: the clock).

    Raises ArchScaleError("run_dir") when the folder holds no sweep.
    """
    out = Path(output_dir)
    now = time.time() if now is None else now
    plan = read_plan(out)
    events = read_events(out)
    table, _ = build_tables(plan, events, health_rules(out))
    walls = _wall_times(events, now)
    trials = [TrialStatus(trial_id=r["trial_id"], name=r["name"], regime=r["regime"], seed=int(r["seed"]),
                          status=r["status"], epoch=int(r["epochs_done"]), epochs=int(r["epochs"]),
                          top1=float(r["final_top1"]), best_top1=float(r["best_top1"]),
                          time_s=walls.get(r["trial_id"], 0.0), health=r["health"],
                          health_reason=r["health_reason"])
              for r in table.to_dict("records")]
    counts = {s: n for s in STATUS_ORDER if (n := sum(t.status == s for t in trials))}
    scored = [t for t in trials if not math.isnan(t.best_top1)]
    best = max(scored, key=lambda t: t.best_top1) if scored else None
    journal = out / EVENTS
    idle = now - os.path.getmtime(journal) if journal.is_file() else None
    launches = sum(isinstance(e, SweepLaunch) for e in events)
    return SweepStatus(name=_name(out), trials=trials, counts=counts, best=best,
                       eta_s=_eta(plan, trials), idle_s=idle, launches=launches,
                       health=health_counts(t.health for t in trials),
                       times=sweep_times(events, table, load_utilisation(out), now) if launches else None,
                       driver_running=driver_running(out), user_errors=len(failed_on_user_errors(events)))


def _name(out: Path) -> str:
    """The sweep's name, from its manifest (the folder's name without one)."""
    try:
        manifest = read_manifest(out)
    except ArchScaleError:
        return out.name
    return (manifest.name if manifest else None) or out.name


def _wall_times(events: list, now: float) -> dict[str, float]:
    """Seconds each trial has run: from each start to its end, or to the next launch of the sweep
    (the driver before it was killed), or to ``now`` while it runs."""
    wall: dict[str, float] = {}
    open_since: dict[str, float] = {}
    for e in events:
        t = getattr(e, "time", None)
        if t is None:
            continue
        if isinstance(e, SweepLaunch):  # a new launch: what the last one left running stopped with it
            for tid, t0 in open_since.items():
                wall[tid] = wall.get(tid, 0.0) + max(t - t0, 0.0)
            open_since.clear()
        elif isinstance(e, TrialStart):
            open_since[e.trial_id] = t
        elif isinstance(e, TrialEnd) and e.trial_id in open_since:
            wall[e.trial_id] = wall.get(e.trial_id, 0.0) + max(t - open_since.pop(e.trial_id), 0.0)
    for tid, t0 in open_since.items():
        wall[tid] = wall.get(tid, 0.0) + max(now - t0, 0.0)
    return wall


def _eta(plan: list[dict], trials: list[TrialStatus]) -> float | None:
    """Seconds left: the epochs each unfinished trial has left, at its own pace (wall seconds per
    epoch) while it runs, or, before it starts, at the pace a straight line through the finished
    trials (seconds per epoch against training FLOPs per epoch) gives its FLOPs; spread over the
    trials running at once. None before a trial has finished, or when nothing is left."""
    flops = {t["trial_id"]: t["train_flops"] / max(t["epochs"], 1) for t in plan}
    paces = [(flops[t.trial_id], t.time_s / t.epoch) for t in trials
             if t.status in FINAL_STATUSES and t.epoch > 0 and t.time_s > 0]
    if not paces:
        return None
    line = _line(paces)
    running = sum(t.status == "running" for t in trials)
    left = 0.0
    for t in trials:
        if t.status in FINAL_STATUSES:
            continue
        pace = t.time_s / t.epoch if t.status == "running" and t.epoch > 0 else line(flops[t.trial_id])
        left += max(t.epochs - t.epoch, 0) * pace
    return left / max(running, 1) if left > 0 else None


def _line(points: list[tuple[float, float]]):
    """y = a + b x by least squares over ``points`` (x: FLOPs, y: seconds), kept physical: no
    negative slope (then the mean; also for a single size) and no negative intercept (then
    through the origin)."""
    if not points:
        return lambda x: 0.0
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx > 0 else 0.0
    if b <= 0:
        return lambda x: my
    a = my - b * mx
    if a < 0:
        b0 = sum(x * y for x, y in points) / max(sum(x * x for x, _ in points), 1e-300)
        return lambda x: b0 * x
    return lambda x: a + b * x
