"""experiments.train: one trial, trained start to end, Ray-free.

Owns: ``TrialConfig`` and ``train_trial`` (trial), the parts of its loop: EMA, weight-decay
groups, seeding, evaluation, the small-data batch rule, compiling (loop), the regimes (regimes)
and where each of their values comes from (sources), the rank a data-parallel worker trains
as (ranks), and measuring what a network costs on a device (costs). May import experiments.data, experiments.results (the run-record schema its reports
and result follow) and scaling/; never Ray (experiments.sweep runs trials on Ray), never
experiments.sweep.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"train_trial": "experiments.train.trial", "TrialConfig": "experiments.train.trial",
            "get_regime": "experiments.train.regimes", "regime_from": "experiments.train.regimes",
            "REGIMES": "experiments.train.regimes"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'experiments.train' has no attribute {name!r}")
