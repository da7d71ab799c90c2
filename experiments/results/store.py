"""The results store of a sweep's output directory, readable while the sweep runs.

    OUTPUT_DIR/
      manifest.json     the sweep spec, package versions, git commit, host and devices
      plan.json         every trial (config x regime x seed) with its spec and complexity
      events.jsonl      append-only journal: start / epoch / end events, one JSON object a line
      trials.parquet    one row per trial (also trials.csv)       } rewritten atomically from plan +
      epochs.parquet    one row per trial per epoch (epochs.csv)  } journal, on a timer and at the end
      costs.parquet     what each network costs on the device, measured alone on it (experiments.results.costs)
      utilisation.csv   the devices' utilisation, sampled by the driver (experiments.results.timeline)
      ray/NAME/         Ray Tune's experiment (trial directories, checkpoints)

Each trial has a health verdict (``health``, ``health_reason``: experiments.results.health), judged
from the journal with the sweep's rules each time the tables are built.

Both tables say how each trial ran: ``workers`` (data-parallel processes), ``devices`` and, in
the trials table, ``device_seconds``; ``observed_images_per_s`` is the whole trial's (all workers),
as it trained beside whatever shared its device. A network's cost (latency, throughput, training
images/s, memory) is not a trial's: it is measured once, alone on the device, into costs.parquet;
``fingerprint`` joins a trial to its row.

The journal is the source of truth: a line is appended (and flushed) for every event, so a
killed driver loses nothing already reported, and ``load_results`` replays it: an epoch reported
twice (a trial resumed from an earlier checkpoint) keeps its last row, so there are no duplicate
rows. Statuses: pending, running, done, stopped (early-stopped by the scheduler: a result),
diverged (the loss went NaN: a result, not an error), error (failed; see ``error``), interrupted
(a stop signal or a lost node interrupted it; a rerun or Tune's retry continues it).

What every event, row and file holds is declared once, in experiments.results.schema.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from scaling.errors import ArchScaleError
from scaling.files import atomic_write

from .health import HealthRules, chance_top1, judge
from .costs import network_fingerprint
from .schema import (EPOCH_COLUMNS, EVENTS, FINAL_STATUSES, MANIFEST, OUTCOME_COLUMNS, PLAN, EpochReport,
                     PhaseTimes, Record, TrialEnd, TrialInterrupted, TrialOutcome, TrialStart, TrialSummary, as_event,
                     clean_value, parse_event, read_manifest)

__all__ = ["PLAN", "EVENTS", "MANIFEST", "FINAL_STATUSES", "EPOCH_COLUMNS", "OUTCOME_COLUMNS", "Journal",
           "journal_lines", "read_events", "ended_trials", "journaled_epochs", "read_plan", "read_plan_file",
           "build_tables", "load_results", "write_tables", "health_rules"]


class Journal:
    """Appends events to OUTPUT_DIR/events.jsonl, one flushed line each."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / EVENTS

    def append(self, event: Record | Mapping) -> None:
        """Append one event: a record of experiments.results.schema, or a dict whose ``event`` key names
        a kind and whose other keys are that kind's fields (KeyError otherwise: a misspelt key fails here)."""
        line = (json.dumps({k: clean_value(v) for k, v in as_event(event).items()}, default=str) + "\n").encode()
        with open(self.path, "ab+") as f:
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a kill tore the last line: end it, so this event stays whole
                    line = b"\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def journal_lines(output_dir: str | Path) -> list[dict]:
    """Every complete line of the journal as the JSON object it holds (a torn last line from a kill
    is skipped)."""
    path = Path(output_dir) / EVENTS
    if not path.is_file():
        return []
    lines = []
    with open(path) as f:
        for line in f:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                lines.append(obj)
    return lines


def read_events(output_dir: str | Path) -> list[Record]:
    """Every complete event of the journal as its schema record (keys another layout wrote and this
    one lacks are dropped; kinds it does not know are skipped)."""
    return [r for r in map(parse_event, journal_lines(output_dir)) if r is not None]


def _events(events: Iterable[Record | Mapping]) -> Iterable[Record]:
    for e in events:
        r = e if isinstance(e, Record) else parse_event(e)
        if r is not None:
            yield r


def _last_ends(events: Iterable[Record | Mapping]) -> dict[str, TrialEnd]:
    """Each trial whose latest start or end in the journal is an end, with that end."""
    last: dict[str, Record] = {}
    for e in _events(events):
        if isinstance(e, (TrialStart, TrialEnd)) and e.trial_id is not None:
            last[e.trial_id] = e
    return {tid: e for tid, e in last.items() if isinstance(e, TrialEnd)}


def ended_trials(events: Iterable[Record | Mapping], *, errored: bool = True) -> set[str]:
    """Trials whose latest journal word is an end (done, stopped early, diverged; failed too when
    ``errored``, unless on a user error, which the user fixes before the rerun): on a resume these
    are skipped, whatever Ray Tune's own, periodically saved experiment state says about them."""
    return {tid for tid, e in _last_ends(events).items()
            if e.status != "error" or (errored and e.user_error is None)}


def failed_on_user_errors(events: Iterable[Record | Mapping]) -> set[str]:
    """Trials whose latest journal word is a failure on a user error: a rerun runs them again."""
    return {tid for tid, e in _last_ends(events).items() if e.user_error is not None}


def journaled_epochs(events: Iterable[Record | Mapping]) -> dict[str, int]:
    """The last epoch the journal holds of each trial that reported one. A data-parallel trial's
    checkpoint can be ahead of it (Ray Train records checkpoints apart from the driver that
    journals): its resume reports the epochs in between from the checkpoint's history."""
    last: dict[str, int] = {}
    for e in _events(events):
        if isinstance(e, EpochReport) and e.trial_id is not None and e.epoch is not None:
            last[e.trial_id] = max(last.get(e.trial_id, 0), int(e.epoch))
    return last


def read_plan(output_dir: str | Path) -> list[dict]:
    """The planned trials of the sweep in ``output_dir`` (see ``read_plan_file``)."""
    path = Path(output_dir) / PLAN
    if not path.is_file():
        raise ArchScaleError("run_dir", f"{output_dir} holds no sweep (no {PLAN}); run 'archscale sweep SPEC' "
                                        f"with output_dir: {output_dir}")
    return read_plan_file(path)["trials"]


def read_plan_file(path: str | Path, field: str = "run_dir") -> dict:
    """plan.json as written by the sweep ({"name", "trials"}); ArchScaleError(``field``) on one
    line when it is not that (a half-copied or hand-edited file)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ArchScaleError(field, f"{path} is not readable JSON ({type(e).__name__}); restore it, or delete it "
                                    f"and rerun the sweep (archscale sweep SPEC) to write it again") from None
    if not isinstance(data, dict) or not isinstance(data.get("trials"), list):
        raise ArchScaleError(field, f"{path} does not hold a sweep plan (a JSON object with trials:); restore it, or "
                                    f"delete it and rerun the sweep to write it again")
    return data


def build_tables(plan: list[dict], events: Iterable[Record | Mapping],
                 rules: HealthRules | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, epochs) tables from the plan and the journal's events (records, or their dicts).

    The trials table holds the plan's columns (its ``config`` left out) then OUTCOME_COLUMNS, its
    ``health`` and ``health_reason`` judged by ``rules`` (experiments.results.health; default
    thresholds when None); the epochs table, EPOCH_COLUMNS."""
    epochs: dict[tuple[str, int], EpochReport] = {}
    state: dict[str, dict] = {}
    for e in _events(events):
        tid = getattr(e, "trial_id", None)
        if tid is None:
            continue
        s = state.setdefault(tid, {"starts": 0})
        if isinstance(e, TrialStart):
            s["starts"] += 1
            s["status"], s["started_at"] = "running", s.get("started_at", e.time)
            s["queued_at"] = e.queued_at
            s.pop("error", None)
            s.pop("end", None)
        elif isinstance(e, EpochReport) and e.epoch is not None:
            epochs[(tid, int(e.epoch))] = e
            if s.get("status") not in FINAL_STATUSES:
                s["status"] = "running"
        elif isinstance(e, TrialEnd):
            s["status"], s["finished_at"], s["end"] = e.status, e.time, e
            if e.error:
                s["error"] = e.error
        elif isinstance(e, TrialInterrupted) and s.get("status") not in FINAL_STATUSES:
            s["status"] = "interrupted"
    ordered = sorted(epochs.values(), key=lambda r: (r.trial_id, r.epoch))
    epochs_df = pd.DataFrame([{k: r.get(k) for k in EPOCH_COLUMNS} for r in ordered], columns=EPOCH_COLUMNS)
    by_trial: dict[str, list[EpochReport]] = {}
    for r in ordered:
        by_trial.setdefault(r.trial_id, []).append(r)
    rows = []
    for p in plan:
        tid = p["trial_id"]
        s = state.get(tid, {})
        hist = by_trial.get(tid, [])
        last = hist[-1] if hist else EpochReport()
        summary = TrialSummary.summarise(hist)
        workers, devices = _num(last.workers), _num(last.devices)
        outcome = TrialOutcome(**summary.to_dict(), status=s.get("status", "pending"), error=s.get("error", ""),
                               device=last.device or "", node=last.node or "", gpu_ids=last.gpu_ids or "",
                               batch_size=last.batch_size, lr_peak=_num(last.lr_peak), workers=workers,
                               devices=devices, device_seconds=_num(last.time_s) * devices,
                               effective_dropout=last.effective_dropout,
                               effective_stochastic_depth=last.effective_stochastic_depth,
                               effective_randaugment_magnitude=last.effective_randaugment_magnitude,
                               effective_randaugment_layers=last.effective_randaugment_layers, decode=last.decode,
                               warmup_epochs=_num(last.warmup_epochs), classes=last.classes,
                               starts=s.get("starts", 0), started_at=s.get("started_at"),
                               finished_at=s.get("finished_at"), images_per_epoch=last.images_per_epoch,
                               fingerprint=_fingerprint(p), **_timing(s, hist))
        row = {k: v for k, v in p.items() if k != "config"}
        row.update(outcome.row())
        rows.append(row)
    trials_df = pd.DataFrame(rows)
    if trials_df.empty:
        return pd.DataFrame(columns=["trial_id", "name", "regime", "seed", *OUTCOME_COLUMNS]), epochs_df
    trials_df["chance_top1"] = chance_top1(trials_df)
    trials_df[["health", "health_reason"]] = judge(trials_df, epochs_df, rules)
    return trials_df, epochs_df


def health_rules(output_dir: str | Path) -> HealthRules:
    """The health rules of a sweep's output directory: its manifest's (the spec's ``health:``), else
    the defaults."""
    manifest = read_manifest(output_dir)
    return HealthRules.from_spec(manifest.health if manifest else None, "manifest.health")


def _timing(state: dict, hist: list[EpochReport]) -> dict:
    """A trial's phases, wall time, CPU seconds, when it was queued and when its first step ended:
    from its end event, or while it runs from its last epoch's report (the phases so far)."""
    end, last = state.get("end"), (hist[-1] if hist else None)
    source = end if end is not None and end.phase_train_s is not None else last
    timing = {k: source.get(k) for k in PhaseTimes.field_names()} if source is not None else {}
    firsts = [h.first_step_at for h in hist if h.first_step_at is not None]
    timing.update(queued_at=state.get("queued_at"), first_step_at=min(firsts) if firsts else None,
                  wall_time_s=end.wall_time_s if end is not None else None,
                  cpu_time_s=source.get("cpu_time_s") if source is not None else None,
                  new_worker=any(h.process_started_at is not None for h in hist) if hist else None)
    return timing


def _fingerprint(plan_row: Mapping) -> str | None:
    """The network fingerprint of a plan row's trial (None for a row without its spec)."""
    config = plan_row.get("config")
    return network_fingerprint(config["spec"]) if isinstance(config, Mapping) and "spec" in config else None


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
    return build_tables(read_plan(out), read_events(out), health_rules(out))


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
