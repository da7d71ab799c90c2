"""experiments: training and sweeping the networks of scaling/, in rooms by job.

    cli/      the ``archscale`` command line: one module per command
    sweep/    everything that talks to Ray: specs and plans, Tune, Ray Train, clusters, trackers
    train/    one trial: the trainer, its recipe (regimes and their sources), a worker's rank; no Ray
    data/     data sets, loaders and augmentation; no Ray
    results/  the run records: their schema, the results store, status; no torch, no Ray

Imports run one way: cli -> sweep -> train -> data, and cli, sweep, train -> results (the
run-record schema every writer uses); each room may also import scaling/, search_spaces/ and
reports/ (the layers below). ``import ray`` appears
only under sweep/ (tests/test_layout.py checks both).

The main entry points, importable from here without loading Ray until they are used:
``train_trial`` (experiments.train.trial), ``run_sweep`` (experiments.sweep.run),
``load_results`` (experiments.results.store) and ``read_costs`` (experiments.results.costs).
"""
from __future__ import annotations

import importlib

_EXPORTS = {"train_trial": "experiments.train.trial", "run_sweep": "experiments.sweep.run",
            "load_results": "experiments.results.store", "read_costs": "experiments.results.costs"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")
