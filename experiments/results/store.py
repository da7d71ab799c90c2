"""The results store of a sweep's output directory, readable while the sweep runs.

    OUTPUT_DIR/
      manifest.json     the sweep spec, package versions, git commit, host and devices
      plan.json         every trial (config x regime x seed) with its spec and complexity
      events.jsonl      append-only journal: start / epoch / end events, one JSON object a line
      trials.parquet    one row per trial (also trials.csv)       } rewritten atomically
      epochs.parquet    one row per trial per epoch (epochs.csv)  } from plan + journal
      ray/NAME/         Ray Tune's experiment (trial directories, checkpoints)

Both tables say how each trial ran: ``workers`` (data-parallel processes), ``devices`` and, in
the trials table, ``device_seconds``; ``images_per_s`` is the whole trial's (all workers).

The journal is the source of truth: a line is appended (and flushed) for every event, so a
killed driver loses nothing already reported, and ``load_results`` replays it: an epoch reported
twice (a trial resumed from an earlier checkpoint) keeps its last row, so there are no duplicate
rows. Statuses: pending, running, done, stopped (early-stopped by the scheduler: a result),
diverged (the loss went NaN: a result, not an error), error (failed; see ``error``), interrupted
(a stop signal or a lost node interrupted it; a rerun or Tune's retry continues it).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from scaling.errors import ArchScaleError
from scaling.files import atomic_write

PLAN, EVENTS, MANIFEST = "plan.json", "events.jsonl", "manifest.json"
FINAL_STATUSES = ("done", "stopped", "diverged", "error")
EPOCH_COLUMNS = ["trial_id", "name", "regime", "seed", "epoch", "train_loss", "val_loss", "val_top1", "val_top5",
                 "lr", "images_per_s", "epoch_time_s", "time_s"]


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


class Journal:
    """Appends events to OUTPUT_DIR/events.jsonl, one flushed line each."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / EVENTS

    def append(self, event: dict) -> None:
        line = (json.dumps({k: _clean(v) for k, v in event.items()}, default=str) + "\n").encode()
        with open(self.path, "ab+") as f:
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a kill tore the last line: end it, so this event stays whole
                    line = b"\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def read_events(output_dir: str | Path) -> list[dict]:
    """Every complete event of the journal (a torn last line from a kill is skipped)."""
    path = Path(output_dir) / EVENTS
    if not path.is_file():
        return []
    events = []
    with open(path) as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def ended_trials(events: Iterable[dict], *, errored: bool = True) -> set[str]:
    """Trials whose latest journal word is an end (done, stopped early, diverged; failed too when
    ``errored``): on a resume these are skipped, whatever Ray Tune's own, periodically saved
    experiment state says about them."""
    last: dict[str, dict] = {}
    for e in events:
        if e.get("trial_id") is not None and e.get("event") in ("start", "end"):
            last[e["trial_id"]] = e
    return {tid for tid, e in last.items()
            if e["event"] == "end" and (errored or e.get("status") != "error")}


#: The key that marks a report as an epoch replayed from a checkpoint's history
#: (experiments.sweep.data_parallel.unjournaled): the journal takes it only when it lacks that epoch.
REPLAYED = "replayed"


def journaled_epochs(events: Iterable[dict]) -> dict[str, int]:
    """The last epoch the journal holds of each trial that reported one. A data-parallel trial's
    checkpoint can be ahead of it (Ray Train records checkpoints apart from the driver that
    journals): its resume reports the epochs in between from the checkpoint's history."""
    last: dict[str, int] = {}
    for e in events:
        if e.get("event") == "epoch" and e.get("trial_id") is not None:
            last[e["trial_id"]] = max(last.get(e["trial_id"], 0), int(e["epoch"]))
    return last


def read_plan(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / PLAN
    if not path.is_file():
        raise ArchScaleError("run_dir", f"{output_dir} holds no sweep (no {PLAN}); run 'archscale sweep SPEC' "
                                        f"with output_dir: {output_dir}")
    return json.loads(path.read_text())["trials"]


def build_tables(plan: list[dict], events: Iterable[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, epochs) tables from the plan and the journal's events."""
    epochs: dict[tuple[str, int], dict] = {}
    state: dict[str, dict] = {}
    for e in events:
        tid, kind = e.get("trial_id"), e.get("event")
        if tid is None:
            continue
        s = state.setdefault(tid, {"starts": 0})
        if kind == "start":
            s["starts"] += 1
            s["status"], s["started_at"] = "running", s.get("started_at", e.get("time"))
            s.pop("error", None)
        elif kind == "epoch":
            epochs[(tid, int(e["epoch"]))] = e
            if s.get("status") not in FINAL_STATUSES:
                s["status"] = "running"
        elif kind == "end":
            s["status"], s["finished_at"] = e["status"], e.get("time")
            if e.get("error"):
                s["error"] = e["error"]
        elif kind == "interrupted" and s.get("status") not in FINAL_STATUSES:
            s["status"] = "interrupted"
    epoch_rows = [{k: v for k, v in r.items() if k != "event"}
                  for r in sorted(epochs.values(), key=lambda r: (r["trial_id"], r["epoch"]))]
    epochs_df = pd.DataFrame(epoch_rows)
    if epochs_df.empty:
        epochs_df = pd.DataFrame(columns=EPOCH_COLUMNS)
    by_trial: dict[str, list[dict]] = {}
    for r in epoch_rows:
        by_trial.setdefault(r["trial_id"], []).append(r)
    rows = []
    for p in plan:
        tid = p["trial_id"]
        s = state.get(tid, {})
        hist = by_trial.get(tid, [])
        evals = [h for h in hist if h.get("val_top1") is not None]
        last = hist[-1] if hist else {}
        row = {k: v for k, v in p.items() if k != "config"}
        row.update({
            "status": s.get("status", "pending"), "error": s.get("error", ""),
            "epochs_done": len(evals),
            "final_top1": evals[-1]["val_top1"] if evals else math.nan,
            "final_top5": evals[-1].get("val_top5", math.nan) if evals else math.nan,
            "best_top1": max(h["val_top1"] for h in evals) if evals else math.nan,
            "best_top5": max(h.get("val_top5", math.nan) for h in evals) if evals else math.nan,
            "final_val_loss": evals[-1].get("val_loss", math.nan) if evals else math.nan,
            "final_train_loss": _num(last.get("train_loss")),
            "train_time_s": _num(last.get("time_s")),
            "images_per_s": (sum(h.get("images_per_s") or 0 for h in evals) / len(evals)) if evals else math.nan,
            "compile_time_s": sum(h.get("compile_time_s") or 0 for h in hist),
            "peak_memory_bytes": max((h.get("peak_memory_bytes") or 0 for h in hist), default=math.nan) or math.nan,
            "device": last.get("device", ""), "node": last.get("node", ""), "gpu_ids": last.get("gpu_ids", ""),
            "latency_ms": _num(last.get("latency_ms")), "throughput": _num(last.get("throughput")),
            "batch_size": last.get("batch_size"), "lr_peak": _num(last.get("lr_peak")), **_scale_out(last),
            "starts": s.get("starts", 0),
            "started_at": s.get("started_at"), "finished_at": s.get("finished_at"),
        })
        for key in ("effective_dropout", "effective_stochastic_depth", "effective_randaugment_magnitude"):
            if key in last:
                row[key] = last[key]
        rows.append(row)
    return pd.DataFrame(rows), epochs_df


def _scale_out(last: dict) -> dict:
    """How a trial ran, from its last epoch: ``workers`` (data-parallel processes), ``devices``
    (the devices they held: GPUs, or one per CPU worker) and ``device_seconds`` (training time x
    devices, what the trial cost); NaN for trials that have not reported."""
    workers, devices = _num(last.get("workers")), _num(last.get("devices"))
    return {"workers": workers, "devices": devices, "device_seconds": _num(last.get("time_s")) * devices}


def _num(v) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def load_results(output_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials_df, epochs_df) of a sweep's output directory, complete up to the last event.

    Works while the sweep runs, after a crash, and after it finished.
    """
    out = Path(output_dir)
    if not out.is_dir():
        raise ArchScaleError("run_dir", f"no such directory: {out}")
    return build_tables(read_plan(out), read_events(out))


def write_tables(output_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rewrite trials/epochs as Parquet and CSV (atomically) from the plan and journal."""
    out = Path(output_dir)
    trials, epochs = load_results(out)
    for df, stem in ((trials, "trials"), (epochs, "epochs")):
        atomic_write(out / f"{stem}.csv", lambda tmp: df.to_csv(tmp, index=False))
        try:
            safe = _parquet_safe(df)
            atomic_write(out / f"{stem}.parquet", lambda tmp: safe.to_parquet(tmp, index=False))
        except (ImportError, ValueError):  # no pyarrow, or a column pyarrow cannot type: CSV stands
            pass
    return trials, epochs


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed types become strings so Parquet can store them."""
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col].dropna()}
            if len(kinds) > 1 or (kinds and not kinds <= {str, bool}):
                df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return df
