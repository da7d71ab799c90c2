"""A single trial's history files, as ``archscale train`` writes them after every epoch.

    DIR/history.csv    one row per epoch: epoch, train_loss, val_loss, val_top1, val_top5 (percent),
                       lr, observed_images_per_s, epoch_time_s, time_s (s), peak_memory_bytes, ...
    DIR/history.json   {"config": the trial's config, "epochs": the same rows,
                        "summary": the final metrics once the trial has ended, else null}

Both are rewritten whole (atomically) each epoch, so they always hold every epoch so far, and a
resumed run's files hold the epochs before the resume too. pandas reads them directly:
``pd.read_csv("DIR/history.csv")``.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from scaling.files import atomic_write_text

from .schema import EpochReport, TrialResult

HISTORY_CSV, HISTORY_JSON = "history.csv", "history.json"


def write_history(folder: str | Path, history: Iterable[EpochReport | Mapping], *, config: dict | None = None,
                  summary: TrialResult | Mapping | None = None) -> tuple[Path, Path]:
    """Write DIR/history.csv and DIR/history.json; returns their paths. ``history``: the trial's
    EpochReports (experiments.results.schema) so far; ``summary`` (its TrialResult; the result's own
    ``history`` is left out) marks the trial as ended."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in row.items() if not isinstance(v, (dict, list, tuple))} for row in history]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, json_path = folder / HISTORY_CSV, folder / HISTORY_JSON
    atomic_write_text(csv_path, text.getvalue())
    if summary is not None:
        summary = {k: v for k, v in summary.items() if k != "history"}
    doc = {"config": config, "epochs": rows, "summary": summary}
    atomic_write_text(json_path, json.dumps(strict_json(doc), indent=1, default=str) + "\n")
    return csv_path, json_path


def strict_json(o):
    """``o`` with NaN and infinities as None: strict JSON has no NaN (a diverged trial's metrics)."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: strict_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict_json(v) for v in o]
    return o
