"""What a run records: one typed record per kind, one field list each, used by every writer and reader.

    EpochReport       one trial's epoch: what the trial reports to Tune, the journal's "epoch" event,
                      a row of the epochs table and of a single trial's history files
    TrialSummary      a trial's outcome from its epochs (final and best top-1, time, images/s, ...):
                      computed once, by ``TrialSummary.summarise``, for the trainer and the trials table
    TrialResult       what ``train_trial`` returns: the summary, the trial's facts, spec and history
    TrialOutcome      the trials table's columns after the plan's (status, summary, where it ran)
    SweepLaunch, TrialStart, TrialEnd, TrialInterrupted, SweepInterrupted
                      the journal's other events (events.jsonl, one JSON object a line)
    Manifest          manifest.json: the spec, versions, host and devices of a sweep
    PhaseTimes        where a trial's time went (``phase_<name>_s``, PHASES), in epoch and end events
                      and the trials table; SweepTimes: the sweep's own figures (launch to first
                      training step, device-busy share), computed by experiments.results.timeline
    CostRecord        a row of the cost store (costs.parquet): one network's measured cost on one
                      device at stated settings (experiments.results.costs)

Records are dataclasses that also read as mappings of their set fields (``rec["val_top1"]``,
``rec.get("lr")``, ``{**rec}``): a field that is None is absent, as in the dicts they replace.
Setting a key that is not a field raises KeyError, and ``from_dict(strict=True)`` rejects unknown
keys, so a renamed key fails where it is written, not in a report later. Reading a run directory
is tolerant (``strict=False``): keys an older or newer layout wrote and this one lacks are dropped,
and fields it lacks are None, so old run directories still load.

Statuses come from ``scaling.conventions`` (one list, shared with reports/).
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from scaling.conventions import FINAL_STATUSES, RESULT_STATUSES, TRIAL_STATUSES, UNFINISHED_STATUSES
from scaling.errors import ArchScaleError

__all__ = ["Record", "PhaseTimes", "PHASES", "phase_column", "SweepTimes", "UTILISATION", "TrialFacts",
           "EpochReport", "TrialSummary", "TrialResult", "TrialOutcome", "SweepLaunch",
           "TrialStart", "TrialEnd", "TrialInterrupted", "SweepInterrupted", "Manifest", "CostRecord",
           "COST_COLUMNS", "COST_KEY", "EVENT_TYPES",
           "EPOCH_COLUMNS", "OUTCOME_COLUMNS", "as_event", "parse_event", "read_manifest", "clean_value",
           "PLAN", "EVENTS", "MANIFEST", "TRIAL_STATUSES", "FINAL_STATUSES", "RESULT_STATUSES",
           "UNFINISHED_STATUSES"]

PLAN, EVENTS, MANIFEST = "plan.json", "events.jsonl", "manifest.json"
#: Device utilisation samples of a sweep (time, device, utilisation_pct, source), appended by its driver.
UTILISATION = "utilisation.csv"


def clean_value(value):
    """A value as JSON stores it: NaN as None, infinities as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


class Record(Mapping):
    """A dataclass that reads as the mapping of its set (not None) fields."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: Mapping, *, strict: bool = False):
        """The record of a mapping. ``strict``: a key that is not a field raises KeyError naming it."""
        names = cls.field_names()
        if strict:
            unknown = sorted(set(d) - set(names) - {"event"})
            if unknown:
                raise KeyError(f"{cls.__name__} has no field {', '.join(unknown)} (fields: {', '.join(names)})")
        return cls(**{k: d[k] for k in names if k in d})

    def to_dict(self) -> dict:
        """The set fields as a plain dict (what crosses Ray's edge and what JSON stores)."""
        return dict(self.items())

    def __getitem__(self, key: str):
        if key == "event" and isinstance(getattr(type(self), "event", None), str):
            return type(self).event  # an event record answers its kind, as the journal's line does
        if key not in self.field_names():
            raise KeyError(key)
        value = getattr(self, key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value) -> None:
        if key not in self.field_names():
            raise KeyError(f"{type(self).__name__} has no field {key}")
        setattr(self, key, value)

    def __iter__(self):
        return (k for k in self.field_names() if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other) -> bool:
        """Equal to a record of the same kind with the same fields, or to the dict of its set fields."""
        if isinstance(other, Record):
            return type(other) is type(self) and self.to_dict() == other.to_dict()
        return isinstance(other, Mapping) and self.to_dict() == dict(other)

    __hash__ = None  # mutable


@dataclass(eq=False)
class PhaseTimes(Record):
    """Where a trial's time went, in seconds, from when it was queued (a slot was free for it) to
    its end. They add up to the trial's wall time (within a few percent: the rest is bookkeeping
    between them). In an epoch event they run up to that epoch's report; in the end event and the
    trials table they cover the whole run (of its last launch, when it was resumed).

    wait: queued until its worker began starting (Tune's scheduling; a reused worker's reset);
    worker_start: a new worker process starting (Ray, imports, the device's context);
    data: loading the data set and putting it on the device; model: building the network, its
    optimiser and EMA; warmup: what the run's first training step took beyond an ordinary step
    (compilation, cuDNN's autotuning, lazy set-up); train: the training steps (the first one's
    ordinary part included); eval: evaluation; checkpoint: copying state for the background writer
    and waiting for it (experiments.train.checkpoints); report: handing each epoch to Tune and the
    driver, and the trial's end.
    """

    phase_wait_s: float | None = None
    phase_worker_start_s: float | None = None
    phase_data_s: float | None = None
    phase_model_s: float | None = None
    phase_warmup_s: float | None = None
    phase_train_s: float | None = None
    phase_eval_s: float | None = None
    phase_checkpoint_s: float | None = None
    phase_report_s: float | None = None


def phase_column(name: str) -> str:
    """The column of phase ``name``: phase_<name>_s."""
    return f"phase_{name}_s"


#: The phases, in the order a trial goes through them (PhaseTimes' fields).
PHASES = tuple(f.name[len("phase_"):-len("_s")] for f in dataclasses.fields(PhaseTimes))


def _plan(**kw):
    """A field that the plan already holds: kept in memory and in history files, not journaled."""
    return field(default=None, metadata={"journal": False}, **kw)


@dataclass(eq=False)
class TrialFacts(Record):
    """What a trial is and how it runs: the same in every epoch it reports."""

    trial_id: str | None = None
    name: str | None = None
    regime: str | None = None
    dataset: str | None = _plan()
    seed: int | None = None
    device: str | None = None
    params: int | None = _plan()
    flops: int | None = _plan()
    activations: int | None = _plan()
    batch_size: int | None = None
    lr_peak: float | None = None
    #: The warm-up the trial trained with (epochs; the regime's, scaled with a shortened length).
    warmup_epochs: float | None = None
    epochs_planned: int | None = _plan()
    #: Classes of the data set the trial trained on (chance top-1 is 100 / classes %).
    classes: int | None = None
    #: The regularization the regime gave this network (its values, after the regime's scaling).
    effective_dropout: float | None = None
    effective_stochastic_depth: float | None = None
    effective_randaugment_magnitude: float | None = None
    effective_randaugment_layers: int | None = None
    #: Data-parallel processes, and the devices they held (GPUs, or one per CPU worker).
    workers: int | None = None
    devices: int | None = None
    #: A folder data set's JPEGs: where they were decoded ("workers" or "device"; what
    #: ``decode: auto`` chose).
    decode: str | None = None
    #: Images one epoch trains on (its steps x the global batch).
    images_per_epoch: int | None = None


@dataclass(eq=False)
class EpochReport(PhaseTimes, TrialFacts):
    """One epoch of one trial. Percentages; seconds; bytes. A diverged epoch has no evaluation
    (val_* None). ``replayed``: reported again from a checkpoint's history on a resume (the journal
    takes it only when it lacks that epoch)."""

    epoch: int | None = None
    status: str | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_top1: float | None = None
    val_top5: float | None = None
    lr: float | None = None
    #: Training images/s this trial saw (all workers, first step left out), under whatever shared
    #: its device: what it observed, not the network's cost (experiments.results.costs holds that).
    observed_images_per_s: float | None = None
    epoch_time_s: float | None = None
    #: Training time so far (every epoch, compilation included).
    time_s: float | None = None
    compile_time_s: float | None = None
    peak_memory_bytes: int | None = None
    #: Where it ran (set by the sweep's Ray worker).
    node: str | None = None
    hostname: str | None = None
    gpu_ids: str | None = None
    cuda_visible_devices: str | None = None
    #: Image files left out so far (a folder data set with ``on_bad_file: skip``).
    bad_files_skipped: int | None = None
    replayed: bool | None = None
    #: When (Unix time) the worker entered the trial, and when its process started when this
    #: trial is the process's first (a new worker); set by the sweep's Ray worker.
    entered_at: float | None = None
    process_started_at: float | None = None
    #: When the run's first training step ended (on the epoch that took it), and this report was sent.
    first_step_at: float | None = None
    reported_at: float | None = None
    #: CPU seconds the trial's process has spent so far (all its threads).
    cpu_time_s: float | None = None

    event: ClassVar[str] = "epoch"

    @property
    def evaluated(self) -> bool:
        return self.val_top1 is not None

    @classmethod
    def journal_fields(cls) -> tuple[str, ...]:
        """The fields an epoch event keeps (those the plan holds are left out)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("journal", True) and f.name != "replayed")

    def to_event(self) -> dict:
        """The journal's "epoch" event."""
        return {"event": self.event, **{k: v for k, v in self.items() if k in self.journal_fields()}}


#: The epochs table's columns (what an epoch event holds), in order.
EPOCH_COLUMNS = list(EpochReport.journal_fields())


def _nan(v) -> float:
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


@dataclass(eq=False)
class TrialSummary(Record):
    """A trial's outcome, from its epochs. Percentages; seconds; bytes; NaN where no epoch tells."""

    status: str | None = None
    epochs_done: int | None = None
    final_top1: float | None = None
    final_top5: float | None = None
    best_top1: float | None = None
    best_top5: float | None = None
    final_val_loss: float | None = None
    final_train_loss: float | None = None
    #: Training time (compilation included), the last epoch's ``time_s``.
    train_time_s: float | None = None
    compile_time_s: float | None = None
    #: Mean observed training images/s over the evaluated epochs (all workers).
    observed_images_per_s: float | None = None
    peak_memory_bytes: int | float | None = None
    #: Image files left out (a folder data set with ``on_bad_file: skip``).
    bad_files_skipped: int | None = None

    @classmethod
    def summarise(cls, reports: Iterable[Mapping], /, status: str | None = None, **extra):
        """The record of ``reports`` (EpochReports or their dicts, in epoch order); ``extra``: the
        other fields of a record that extends this one."""
        hist = list(reports)
        evals = [h for h in hist if h.get("val_top1") is not None]
        last, final = (hist[-1] if hist else {}), (evals[-1] if evals else {})
        peaks = [h.get("peak_memory_bytes") for h in hist if h.get("peak_memory_bytes")]
        return cls(status=status, epochs_done=len(evals), final_top1=_nan(final.get("val_top1")),
                   final_top5=_nan(final.get("val_top5")),
                   best_top1=max((h["val_top1"] for h in evals), default=math.nan),
                   best_top5=max((_nan(h.get("val_top5")) for h in evals), default=math.nan),
                   final_val_loss=_nan(final.get("val_loss")), final_train_loss=_nan(last.get("train_loss")),
                   train_time_s=_nan(last.get("time_s")),
                   compile_time_s=sum(h.get("compile_time_s") or 0.0 for h in hist),
                   observed_images_per_s=(sum(h.get("observed_images_per_s") or 0 for h in evals) / len(evals))
                   if evals else math.nan,
                   peak_memory_bytes=max(peaks) if peaks else math.nan,
                   bad_files_skipped=last.get("bad_files_skipped"), **extra)


@dataclass(eq=False)
class TrialResult(TrialSummary, TrialFacts):
    """What ``train_trial`` returns: the summary, the trial's facts, its planned epochs, peak lr
    (``lr``), the effective spec and every epoch's report."""

    epochs: int | None = None
    lr: float | None = None
    spec: dict | None = None
    history: list[EpochReport] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["history"] = [h.to_dict() for h in self.history]
        return d


@dataclass(eq=False)
class TrialOutcome(PhaseTimes, TrialSummary):
    """The trials table's columns after the plan's: status, the summary, where and how it ran.

    ``device_seconds`` = training time x devices, what the trial cost; ``starts``: launches that
    started it; ``started_at``/``finished_at``: Unix times of its first start and its end."""

    error: str | None = None
    device: str | None = None
    node: str | None = None
    gpu_ids: str | None = None
    batch_size: int | None = None
    lr_peak: float | None = None
    warmup_epochs: float | None = None
    classes: int | None = None
    #: Chance top-1 (%): 100 / the classes the trial trained on (the spec's num_classes before it ran).
    chance_top1: float | None = None
    workers: float | None = None
    devices: float | None = None
    device_seconds: float | None = None
    effective_dropout: float | None = None
    effective_stochastic_depth: float | None = None
    effective_randaugment_magnitude: float | None = None
    effective_randaugment_layers: int | None = None
    #: Where a folder data set's JPEGs were decoded ("workers" or "device").
    decode: str | None = None
    starts: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: The trial's health verdict (experiments.results.health): ok, at_chance, not_converged, diverged,
    #: seeds_disagree; "" while it has no result (pending, running, failed, interrupted).
    health: str | None = None
    #: Why a flagged trial is flagged, in words ("" when ok).
    health_reason: str | None = None
    #: Unix time it was queued (its last launch), seconds from then to its end (what the phases add
    #: up to), when its first training step ended, and its process's CPU seconds.
    queued_at: float | None = None
    wall_time_s: float | None = None
    first_step_at: float | None = None
    cpu_time_s: float | None = None
    #: Whether it was the first trial of its worker process (which started for it).
    new_worker: bool | None = None
    #: Images one epoch trains on; the network's fingerprint (experiments.results.costs: the key of
    #: its row in the cost store).
    images_per_epoch: int | None = None
    fingerprint: str | None = None

    def row(self) -> dict:
        """Every column, unset ones as None (a table row keeps its columns)."""
        return {k: getattr(self, k) for k in self.field_names()}


#: The trials table's columns after the plan's, in order.
OUTCOME_COLUMNS = list(TrialOutcome.field_names())


# ----- the journal's other events ---------------------------------------------------------------
@dataclass(eq=False)
class SweepLaunch(Record):
    """A launch of the sweep's driver: whether Tune's state was restored, the trials the journal
    said had ended (not trained again), and the Ray cluster's address."""

    time: float | None = None
    resumed: bool | None = None
    already_ended: list[str] = field(default_factory=list)
    ray: str | None = None
    #: When the command that launched it started (Unix time), and the CPUs and GPUs its trials
    #: can keep busy at once (trials at a time x each trial's): the busy share's denominator.
    command_started_at: float | None = None
    cpus: float | None = None
    gpus: float | None = None
    event: ClassVar[str] = "sweep"


@dataclass(eq=False)
class TrialStart(Record):
    """Tune started the trial on a worker (``time``); ``queued_at``: when a slot was free for it."""

    trial_id: str | None = None
    time: float | None = None
    queued_at: float | None = None
    event: ClassVar[str] = "start"


@dataclass(eq=False)
class TrialEnd(PhaseTimes):
    """A trial's end: a status of FINAL_STATUSES, the error's last line when it failed, and where
    its time went (the phases, its wall time from being queued to ``time``, its CPU seconds)."""

    trial_id: str | None = None
    status: str | None = None
    error: str | None = None
    time: float | None = None
    wall_time_s: float | None = None
    cpu_time_s: float | None = None
    event: ClassVar[str] = "end"

    @property
    def user_error(self) -> str | None:
        """The one line of the user error the trial failed on ("field: message"), or None: an
        ArchScaleError (an image that cannot be read, ...) is the user's to fix, and the trials
        share what caused it."""
        return user_error(self.error) if self.status == "error" else None


#: How a trial's error line starts when it failed on an ArchScaleError (Ray copies it whole).
USER_ERROR_PREFIX = "scaling.errors.ArchScaleError: "


def user_error(line: str | None) -> str | None:
    """The "field: message" of a trial's error line that is a user error, else None."""
    return line[len(USER_ERROR_PREFIX):] if line and line.startswith(USER_ERROR_PREFIX) else None


@dataclass(eq=False)
class TrialInterrupted(Record):
    """A stop signal or a lost node interrupted the trial (``reason``); a rerun continues it."""

    trial_id: str | None = None
    reason: str | None = None
    time: float | None = None
    event: ClassVar[str] = "interrupted"


@dataclass(eq=False)
class SweepInterrupted(Record):
    """A stop signal ended the launch, with the trials it was running."""

    signal: str | None = None
    running: list[str] = field(default_factory=list)
    time: float | None = None
    event: ClassVar[str] = "interrupted"


EVENT_TYPES = (SweepLaunch, TrialStart, EpochReport, TrialEnd, TrialInterrupted, SweepInterrupted)


def to_event(record: Record) -> dict:
    """The journal line's object of an event record."""
    if isinstance(record, EpochReport):
        return record.to_event()
    return {"event": record.event, **record.to_dict()}


def _event_type(d: Mapping):
    kind = d.get("event")
    if kind == "interrupted":
        return TrialInterrupted if d.get("trial_id") is not None else SweepInterrupted
    for t in EVENT_TYPES:
        if t.event == kind:
            return t
    return None


def as_event(event: Record | Mapping) -> dict:
    """A journal line's object, checked: a record's own, or a dict whose ``event`` names a kind and
    whose keys are that kind's fields (KeyError otherwise)."""
    if isinstance(event, Record):
        return to_event(event)
    kind = _event_type(event)
    if kind is None:
        raise KeyError(f"unknown journal event {event.get('event')!r}")
    return to_event(kind.from_dict(event, strict=True))


def parse_event(d: Mapping) -> Record | None:
    """The record of a journal line's object, tolerant of keys another layout wrote; None for a
    kind this layout does not know."""
    kind = _event_type(d)
    return kind.from_dict(d) if kind is not None else None


@dataclass(eq=False)
class SweepTimes(Record):
    """A sweep's own time figures (experiments.results.timeline computes them from the journal).

    ``launch_to_first_step_s``: from the launching command's start to the end of the first
    training step of any trial; ``busy_share``: the share of the command's wall time the devices
    were busy (``busy_source`` "nvml": the GPUs' sampled utilisation; "cpu": the trials'
    CPU seconds over the CPUs they could use); ``overhead_s``: mean seconds per trial outside
    training and evaluation (``overhead_warm_s``: the same without each worker's first trial);
    ``largest_overhead_phase``: the phase other than train and eval that took the most time in
    all, and its seconds (``largest_overhead_s``)."""

    wall_s: float | None = None
    launch_to_first_step_s: float | None = None
    busy_share: float | None = None
    busy_source: str | None = None
    overhead_s: float | None = None
    overhead_warm_s: float | None = None
    largest_overhead_phase: str | None = None
    largest_overhead_s: float | None = None
    trials: int | None = None


# ----- manifest.json -----------------------------------------------------------------------------
@dataclass(eq=False)
class Manifest(Record):
    """What ran, with what, where (manifest.json): the spec as written, the space, regimes, data
    set, seeds, resources, scheduler, package versions, git commit, host and devices."""

    name: str | None = None
    description: str | None = None
    spec: dict | None = None
    space: dict | None = None
    regimes: dict | None = None
    dataset: dict | None = None
    seeds: list | None = None
    n_trials: int | None = None
    resources: dict | None = None
    scheduler: dict | None = None
    output_dir: str | None = None
    experiment_path: str | None = None
    versions: dict | None = None
    git_commit: str | None = None
    host: dict | None = None
    devices: list | None = None
    flop_convention: str | None = None
    regime_sources: dict | None = None
    #: The health rules the trials are judged by (experiments.results.health.HealthRules, every value).
    health: dict | None = None
    #: What planning found in a folder data set's files (experiments.data.datasets.dataset_check):
    #: training images, on_bad_file, and the files skipped with why.
    data_check: dict | None = None
    #: {regime: the one-line warning} of each regime shortened more than 4x from its named regime
    #: (experiments.train.regimes.shortening_warning); the report prints it.
    short_regimes: dict | None = None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str)


def read_manifest(output_dir: str | Path, *, required: bool = False) -> Manifest | None:
    """The manifest of a sweep's output directory; None when it has none (or ArchScaleError("run_dir")
    when ``required``), and ArchScaleError("run_dir") when it is not valid JSON."""
    path = Path(output_dir) / MANIFEST
    if not path.is_file():
        if required:
            raise ArchScaleError("run_dir", f"{output_dir} has no {MANIFEST}; pass the output directory of a sweep")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ArchScaleError("run_dir", f"{path} is not readable JSON ({type(e).__name__}); restore it, or "
                                        f"rerun the sweep to write it again") from None
    if not isinstance(data, dict):
        raise ArchScaleError("run_dir", f"{path} does not hold a manifest (a JSON object)")
    return Manifest.from_dict(data)


# ----- costs.parquet -----------------------------------------------------------------------------
@dataclass(eq=False)
class CostRecord(Record):
    """One network's cost on one device, measured alone on it at stated settings (a row of
    costs.parquet and of the cost cache; experiments.train.costs measures it).

    Milliseconds; images/s; bytes. ``spread``: the largest (max - min) / median of the timed
    blocks over the three timed figures. ``aggregate_images_per_s_N``: training images/s of N
    copies training at once on the device, summed (measured for packing, else None)."""

    #: The network (experiments.results.costs.network_fingerprint) and a config name it has.
    fingerprint: str | None = None
    name: str | None = None
    #: The device kind: a GPU's model name, or "cpu MODEL (N threads)".
    device: str | None = None
    #: Training batch (the trial's) and inference-throughput batch (sized for the device).
    batch_size: int | None = None
    infer_batch_size: int | None = None
    #: Autocast type ("bfloat16", "float16") or "float32"; and whether channels-last.
    precision: str | None = None
    channels_last: bool | None = None
    resolution: int | None = None
    torch_version: str | None = None
    latency_ms: float | None = None
    throughput: float | None = None
    train_images_per_s: float | None = None
    peak_memory_bytes: int | None = None
    device_memory_bytes: int | None = None
    aggregate_images_per_s_1: float | None = None
    aggregate_images_per_s_2: float | None = None
    aggregate_images_per_s_4: float | None = None
    aggregate_images_per_s_8: float | None = None
    repeats: int | None = None
    spread: float | None = None
    #: How it was measured, in words; Unix time; the host that measured it.
    method: str | None = None
    measured_at: float | None = None
    host: str | None = None

    def row(self) -> dict:
        """Every column, unset ones as None."""
        return {k: getattr(self, k) for k in self.field_names()}


#: The cost store's columns, in order; and what a cached row is looked up by.
COST_COLUMNS = list(CostRecord.field_names())
COST_KEY = ("fingerprint", "device", "batch_size", "precision", "channels_last", "torch_version")
