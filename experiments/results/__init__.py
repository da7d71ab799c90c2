"""experiments.results: what a run records, and reading it back.

Owns: the results store of a sweep's output directory (store: journal, plan, manifest, the trials
and epochs tables, ``load_results``), the cost store and cache of measured network costs (costs),
where a sweep stands (status) and a single trial's history files (train_history). May import
scaling/ only: it reads and writes files, with no torch and no Ray, and imports nothing else of
experiments/, so status and reports work on any machine that sees the output directory.
"""
from __future__ import annotations

from .store import load_results

__all__ = ["load_results"]
