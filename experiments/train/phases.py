"""Where one trial's time goes: seconds per phase (experiments.results.schema.PHASES), measured in
the process that trains it.

The trial measures what happens inside it (data, model, warm-up, training steps, evaluation,
checkpoints, reports); the sweep's worker adds the imports a new process pays (worker_start), and
the driver what happens before the trial runs (wait, and a new worker's start: see
experiments.results.timeline).
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from ..results.schema import PHASES, PhaseTimes, phase_column


class PhaseClock:
    """Seconds spent in each phase of one trial, and its process's CPU seconds since the clock
    started (all threads: the trial's share of the device when it trains on CPU)."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.cpu_started = time.process_time()

    @contextmanager
    def __call__(self, phase: str):
        """Time the block as ``phase`` (added to what that phase already holds)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - t0)

    def add(self, phase: str, seconds: float) -> None:
        """Add ``seconds`` to ``phase`` (KeyError for a name that is not one of PHASES)."""
        if phase not in self.seconds:
            raise KeyError(f"unknown phase {phase!r} (phases: {', '.join(PHASES)})")
        self.seconds[phase] += seconds

    def record(self) -> PhaseTimes:
        """The phases so far as a PhaseTimes record."""
        return PhaseTimes(**{phase_column(k): v for k, v in self.seconds.items()})

    def cpu_time_s(self) -> float:
        """CPU seconds of this process (every thread) since the clock started."""
        return time.process_time() - self.cpu_started
