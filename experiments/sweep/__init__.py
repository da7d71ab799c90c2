"""experiments.sweep: everything that talks to Ray.

Owns: the sweep spec and its plan (spec; Ray-free, so a dry run starts no Ray), the Ray options
(resources), the driver (run), the cost step before the trials and ``trials_per_gpu: auto``
(costs, packing), the trial inside a Ray worker (trainable), the driver's Tune
callbacks (callbacks), ASHA per regime (asha), data-parallel trials through Ray Train
(data_parallel), starting, joining and ending Ray (ray_runtime, with session_guard for a killed
driver's leftovers), stopping on signals (stopping), trackers (trackers) and the next sweep
(suggest). May import experiments.train, experiments.data, experiments.results, and the layers
below; the only room that imports Ray.

``run_sweep`` and ``SweepSummary`` are importable from here; Ray loads when they are used.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"run_sweep": "experiments.sweep.run", "SweepSummary": "experiments.sweep.run",
            "load_sweep": "experiments.sweep.spec", "make_plan": "experiments.sweep.spec"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'experiments.sweep' has no attribute {name!r}")
