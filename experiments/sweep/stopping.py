"""Stopping a sweep on a signal: SIGTERM (what cluster schedulers send) and the first Ctrl-C; and
on the first trial that fails on a user error.

Either signal stops a sweep gracefully: no new trial starts, running trials are stopped and keep
their last checkpoint, Tune saves its experiment state one last time, the journal records each
running trial as interrupted, and ``archscale sweep`` exits with 128 + the signal's number (130
for SIGINT, 143 for SIGTERM). Rerunning the same command resumes. A second signal stops at once.

How: ``stop_on_signals`` catches the signal and notes it in STOP; ``StopCallback``, one of the
sweep's Tune callbacks, passes it on to Tune at Tune's next step through the interrupt handler
that ``tuner.fit`` installs (the one its own Ctrl-C handling uses).

A trial that fails on a user error (an ArchScaleError, such as an image that cannot be read) stops
the sweep the same way (``note_user_error``): the other trials share its cause (the data, the
setup), so each would fail on it too. ``archscale sweep`` then prints that one line and exits
with 2; the rerun, once the user has fixed it, runs that trial again and resumes the others.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ray.tune import Callback

from ..results.schema import SweepInterrupted, TrialInterrupted
from ..results.store import Journal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop:
    """The stop signal this driver received (None until one comes). Module state, because the
    signal handler sets it and StopCallback, which Tune pickles with the experiment and restores
    on resume, reads it."""

    signal: int | None = None
    #: the first trial's user error ("field: message"), which stops the sweep
    user_error: str | None = None
    passed_on = False


STOP = _Stop()


@contextmanager
def stop_on_signals() -> Iterator[_Stop]:
    """Within the block, the first SIGINT or SIGTERM asks for a graceful stop (STOP.signal); a
    second one stops at once (KeyboardInterrupt for SIGINT, the default action for SIGTERM).
    Tune's own Ctrl-C handler is off meanwhile. Handlers belong to the main thread: elsewhere
    the block changes nothing. Yields STOP."""
    STOP.signal, STOP.user_error, STOP.passed_on = None, None, False
    if threading.current_thread() is not threading.main_thread():
        yield STOP
        return

    def handler(signum, frame):
        if STOP.signal is None:
            STOP.signal = signum
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    tune_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield STOP
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if tune_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_env


class StopCallback(Callback):
    """Passes a stop signal on to Tune at the start of Tune's next step: Tune's interrupt handler
    ends the run as its Ctrl-C handling does, saving Tune's state one last time."""

    def on_step_begin(self, iteration, trials, **info):
        if (STOP.signal is None and STOP.user_error is None) or STOP.passed_on:
            return
        STOP.passed_on = True
        if STOP.signal is not None:
            name = signal.Signals(STOP.signal).name
            print(f"archscale: {name}: stopping the sweep; running trials keep their last checkpoint "
                  f"(rerun the same command to resume; {name} again stops at once)", file=sys.stderr, flush=True)
        tune_interrupt = signal.getsignal(signal.SIGUSR1)  # installed by tuner.fit in the main thread
        if not callable(tune_interrupt):
            raise KeyboardInterrupt  # nothing to pass it on to: stop at once
        tune_interrupt(signal.SIGUSR1, None)


def note_user_error(line: str | None) -> None:
    """A trial failed on ``line``: when it is a user error (``TrialEnd.user_error``), the first one
    stops the sweep at Tune's next step."""
    if line and STOP.user_error is None:
        STOP.user_error = line


def journal_interruption(output_dir: str | Path, signum: int | None, running: list[str]) -> None:
    """Journal a stop: by signal ``signum``, a SweepInterrupted event; and a TrialInterrupted one
    for each trial it interrupted (a rerun continues them), with the signal's name as the reason,
    or "user error" (``signum`` None)."""
    now = time.time()
    name = signal.Signals(signum).name if signum is not None else "user error"
    journal = Journal(output_dir)
    if signum is not None:
        journal.append(SweepInterrupted(signal=name, running=list(running), time=now))
    for tid in running:
        journal.append(TrialInterrupted(trial_id=tid, reason=name, time=now))
