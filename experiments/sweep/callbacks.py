"""The sweep driver's Tune callbacks: the results store (journal and tables) and the live progress line.

Tune pickles a run's callbacks with the experiment (``ray/NAME/tuner.pkl``) and, on resume, runs
the unpickled ones: a tracker since removed from the spec would come back, and one that cannot be
built any more would break the resume. So Tune is handed only ``LaunchCallbacks``, which holds no
callback: it forwards every hook to the callbacks this launch's driver built from the current
spec (``LaunchCallbacks.installed``).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from contextlib import contextmanager

from ray.tune import Callback
from ray.tune.progress_reporter import TrialProgressCallback

from ..results.health import flagged
from ..results.schema import (PLAN, EpochReport, PhaseTimes, SweepLaunch, TrialEnd, TrialInterrupted, TrialStart,
                              user_error)
from ..results.store import Journal, journaled_epochs, load_results, read_events, write_tables
from .stopping import note_user_error

#: The hooks of ray.tune.Callback that LaunchCallbacks forwards.
HOOKS = ("setup", "on_step_begin", "on_step_end", "on_trial_start", "on_trial_restore", "on_trial_save",
         "on_trial_result", "on_trial_complete", "on_trial_recover", "on_trial_error", "on_checkpoint",
         "on_experiment_end")


class LaunchCallbacks(Callback):
    """The one callback Tune is given and pickles: it forwards each hook to the callbacks the
    driver installed for this launch, so a restored experiment runs the current spec's callbacks,
    never those it was started with. It keeps no state across launches (``get_state`` is None)."""

    _live: list = []

    @classmethod
    @contextmanager
    def installed(cls, callbacks: list):
        """Forward to ``callbacks`` while the block runs (one sweep per driver process at a time)."""
        cls._live = list(callbacks)
        try:
            yield cls()
        finally:
            cls._live = []


class QuietTrialProgress(TrialProgressCallback):
    """Tune's per-trial printer, silenced: given to Tune so it adds no printer of its own (which
    prints "Trial ... completed. Last result:" for a trial that ended in an earlier launch and
    returns at once); ProgressCallback is the sweep's progress display."""

    def _print(self, msg: str) -> None:
        pass


def _forward(hook: str):
    def forward(self, *args, **kwargs):
        for callback in LaunchCallbacks._live:
            getattr(callback, hook)(*args, **kwargs)
    forward.__name__ = hook
    return forward


for _hook in HOOKS:
    setattr(LaunchCallbacks, _hook, _forward(_hook))


def trial_id_of(trial) -> str:
    """Our trial id (config__regime__s<seed>) of a Tune trial."""
    return trial.config["trial"]["trial_id"]


class StoreCallback(Callback):
    """Keeps the results store: journal events for trial start, each epoch and the end, with where
    each trial's time went (experiments.results.schema.PhaseTimes); the trials/epochs tables are
    rewritten every ``write_every_s`` seconds and at the end, never while Tune waits on a trial's
    end. Holds only paths and numbers (picklable).

    When a rewrite flags a trial's health (experiments.results.health: the trial itself, or a
    seed of the same network once the seeds disagree), one warning line says so (nothing in quiet
    mode, ARCHSCALE_QUIET=1)."""

    def __init__(self, output_dir: str, planned_epochs: dict[str, int], concurrency: int | None = None,
                 write_every_s: float = 30.0):
        self.output_dir, self.planned_epochs = output_dir, planned_epochs
        self.concurrency, self.write_every_s = concurrency, write_every_s

    def setup(self, **info):
        # The trials this launch's driver found ended in the journal (its last "sweep" event):
        # Tune may still run them after a resume (archscale_trial returns at once); they are not
        # journaled again.
        events = read_events(self.output_dir)
        launches = [e for e in events if isinstance(e, SweepLaunch)]
        self.skip = frozenset(launches[-1].already_ended) if launches else frozenset()
        # The last epoch journaled per trial: a trial Tune retries within this launch (its node
        # was lost, say) replays its checkpoint's epochs from the launch's count (see
        # experiments.sweep.data_parallel.unjournaled), and those the journal holds are not added again.
        self.journaled = journaled_epochs(events)
        # Trials flagged before this launch were warned about then.
        planned = os.path.isfile(os.path.join(self.output_dir, PLAN))
        self.warned = set(_flagged_trials(load_results(self.output_dir)[0])) if planned else set()
        # When each trial slot fell free (the launch frees all of them): a trial started takes the
        # oldest, and from then it counts as queued (its "wait" phase starts).
        launched = launches[-1].time if launches and launches[-1].time else time.time()
        self.free_since = [launched] * (self.concurrency or 0)
        self.queued: dict[str, float] = {}
        self.last: dict[str, EpochReport] = {}
        self.dirty, self.written = False, time.monotonic()

    def _append(self, event) -> None:
        if event.trial_id not in self.skip:
            Journal(self.output_dir).append(event)
            self.dirty = True

    def _free_slot(self, trial) -> None:
        if trial_id_of(trial) in self.queued:
            self.free_since.append(time.time())

    def on_trial_start(self, iteration, trials, trial, **info):
        now, tid = time.time(), trial_id_of(trial)
        self.free_since.sort()
        self.queued[tid] = min(self.free_since.pop(0), now) if self.free_since else now
        self._append(TrialStart(trial_id=tid, time=now, queued_at=self.queued[tid]))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        report = EpochReport.from_dict(result)  # Tune's own keys (training_iteration, ...) are left out
        report.trial_id, epoch = trial_id_of(trial), report.epoch or 0
        if report.replayed and epoch <= self.journaled.get(report.trial_id, 0):
            return
        self.journaled[report.trial_id] = max(self.journaled.get(report.trial_id, 0), epoch)
        if not report.replayed:
            before_entry(report, self.queued.get(report.trial_id))
            self.last[report.trial_id] = report
        self._append(report)

    def _end(self, trial, status: str, error: str | None = None) -> None:
        tid, now = trial_id_of(trial), time.time()
        self._free_slot(trial)
        if tid in self.skip:
            return
        last, queued = self.last.pop(tid, None), self.queued.pop(tid, None)
        end = TrialEnd(trial_id=tid, status=status, error=error, time=now,
                       wall_time_s=now - queued if queued is not None else None)
        if last is not None:
            phases = {k: last.get(k) for k in PhaseTimes.field_names()}
            if status != "error" and last.reported_at is not None and last.phase_report_s is not None:
                phases["phase_report_s"] = last.phase_report_s + max(now - last.reported_at, 0.0)  # the end
            end = dataclasses.replace(end, **phases, cpu_time_s=last.cpu_time_s)
        self._append(end)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        if last.get("status") == "diverged":
            status = "diverged"
        elif last.get("epoch", 0) < self.planned_epochs.get(trial_id_of(trial), 0):
            status = "stopped"  # the scheduler stopped it early: a result with fewer epochs
        else:
            status = "done"
        self._end(trial, status)

    def on_trial_error(self, iteration, trials, trial, **info):
        line = error_line(_error_text(trial))
        self._end(trial, "error", line)
        note_user_error(user_error(line))

    def _warn_health(self, table) -> None:
        """One line for each trial newly flagged by its health verdict."""
        warned = getattr(self, "warned", set())  # a callback restored from an older pickle has none yet
        for tid, line in _flagged_trials(table).items():
            if tid not in warned:
                warned.add(tid)
                if os.environ.get("ARCHSCALE_QUIET") != "1":
                    say(f"warning: {line}")
        self.warned = warned

    def on_trial_recover(self, iteration, trials, trial, **info):
        # The trial failed (its node was lost, say) and Tune retries it from its last checkpoint.
        self._free_slot(trial)
        self.queued.pop(trial_id_of(trial), None)
        self._append(TrialInterrupted(trial_id=trial_id_of(trial), reason=error_line(_error_text(trial)),
                                      time=time.time()))

    def on_step_end(self, iteration, trials, **info):
        # The tables on a timer: rewriting them (CSV and Parquet) costs more as the sweep grows,
        # and the journal already holds every event (it is what a resume and status read).
        if self.dirty and time.monotonic() - self.written >= self.write_every_s:
            self.write()

    def write(self) -> None:
        """Rewrite the trials/epochs tables from the plan and journal now."""
        self._warn_health(write_tables(self.output_dir)[0])
        self.dirty, self.written = False, time.monotonic()

    def on_experiment_end(self, trials, **info):
        self.write()


def before_entry(report: EpochReport, queued_at: float | None) -> None:
    """Set the phases a trial spends before its worker enters it, from when it was ``queued_at``
    (driver's clock) and the worker's ``entered_at`` and ``process_started_at`` (a new worker's):
    wait, until its worker process started (none for a reused worker); worker_start, from then to
    the trial's entry, added to the imports the worker timed. A process started before the trial
    was queued (Ray starts idle workers ahead) counts from the queueing on."""
    if queued_at is None or report.entered_at is None:
        return
    entered = max(report.entered_at, queued_at)
    started = report.process_started_at
    begun = entered if started is None else min(max(started, queued_at), entered)
    report.phase_wait_s = begun - queued_at
    report.phase_worker_start_s = (report.phase_worker_start_s or 0.0) + (entered - begun)


def _flagged_trials(table) -> dict[str, str]:
    """{trial id: "NAME (REGIME, seed S) is HEALTH: REASON"} of the trials the table flags."""
    rows = table[flagged(table["health"])] if "health" in table else table.iloc[:0]
    return {r.trial_id: f"{r.name} ({r.regime}, seed {r.seed}) is {r.health}: {r.health_reason}"
            for r in rows.itertuples()}


def say(text: str) -> None:
    """Print ``text`` on a line of its own, clearing a progress line rewritten in place on a terminal."""
    print(("\r\033[K" if sys.stdout.isatty() else "") + text, flush=True)


def _error_text(trial) -> str | None:
    """The trial's error trace: Tune writes it on the driver first, then syncs it to storage."""
    local = trial.error_file
    if local and os.path.isfile(local):
        with open(local) as f:
            return f.read()
    return trial.get_error()


def error_line(error) -> str:
    """The meaningful last line of a trial's exception (Tune wraps it in a traceback)."""
    if error is None:
        return "unknown error"
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if not ln.startswith(("File ", "^", "~")) and ("Error" in ln or "Exception" in ln or "error" in ln):
            return ln[:500]
    return (lines[-1] if lines else type(error).__name__)[:500]


class ProgressCallback(Callback):
    """A live view that fits one terminal line: trials finished / running / pending, the best
    top-1 so far and an ETA. Rewritten in place on a terminal, a line every few seconds otherwise;
    nothing in quiet mode (ARCHSCALE_QUIET=1)."""

    def __init__(self, total: int, concurrency: int, every_s: float = 5.0):
        self.total, self.concurrency, self.every_s = total, max(1, concurrency), every_s

    def setup(self, **info):
        self.quiet = os.environ.get("ARCHSCALE_QUIET") == "1"
        self.tty = sys.stdout.isatty()
        self.t0, self.last_print, self.best = time.time(), 0.0, None
        self.durations: list[float] = []
        self.starts: dict[str, float] = {}
        self.reported: set[str] = set()

    def line(self, trials) -> str:
        states = [t.status for t in trials]
        done, failed = states.count("TERMINATED"), states.count("ERROR")
        running = states.count("RUNNING") + states.count("PAUSED")
        pending = max(self.total - done - failed - running, 0)
        eta = ""
        if self.durations:  # the work left (pending trials, the rest of running ones) over the slots
            mean, now = sum(self.durations) / len(self.durations), time.time()
            left = pending * mean + sum(max(mean - (now - self.starts[t.trial_id]), 0.0) for t in trials
                                        if t.status == "RUNNING" and t.trial_id in self.starts)
            eta = f" | ETA {_fmt_s(left / self.concurrency)}"
        best = f" | best top-1 {self.best[0]:.2f}% {self.best[1]}" if self.best else ""
        return (f"[{_fmt_s(time.time() - self.t0)}] {done + failed}/{self.total} finished ({failed} failed), "
                f"{running} running, {pending} pending{best}{eta}")

    def _print(self, trials, force: bool = False) -> None:
        if self.quiet or (not force and time.time() - self.last_print < self.every_s):
            return
        self.last_print = time.time()
        text = self.line(trials)
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns
            print("\r" + text[: width - 1].ljust(width - 1), end="", flush=True)
        else:
            print(text, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.starts[trial.trial_id] = time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.reported.add(trial.trial_id)
        top1 = result.get("val_top1")
        if top1 is not None and (self.best is None or top1 > self.best[0]):
            self.best = (top1, f"{result.get('name')} ({result.get('regime')}, seed {result.get('seed')})")
        self._print(trials)

    def _ended(self, trials, trial) -> None:
        started = self.starts.pop(trial.trial_id, None)
        if started is not None and trial.trial_id in self.reported:  # a skipped trial reports nothing
            self.durations.append(time.time() - started)
        self._print(trials, force=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._ended(trials, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trials, trial)

    def on_experiment_end(self, trials, **info):
        if not self.quiet and self.tty:
            print(flush=True)


def _fmt_s(s: float) -> str:
    """h:mm:ss or m:ss."""
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
