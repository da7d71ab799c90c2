"""The Ray options of a sweep spec, typed: what each trial asks for and how trials are scheduled.

    resources: {cpus: auto, gpus: auto, max_concurrent: 4, custom: {}}
    resources: {gpus: auto, trials_per_gpu: auto}  # as many trials per GPU as measured to pay
    resources: {workers: 8, cpus: 8, gpus: 1}      # one trial on 8 GPUs (per worker: 8 CPUs, 1 GPU)
    scheduler: fifo                    # or {name: asha, grace_period: 1, reduction_factor: 2}

``Resources.from_spec`` and ``Scheduler.from_spec`` parse and validate these mappings (one-line
``ArchScaleError`` for anything wrong); experiments.sweep reads the fields. A new Ray option is a
field here and the line of sweep.py that hands it to Ray. This module imports no Ray.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from scaling.errors import ArchScaleError
from scaling.validate import check_keys, is_number, is_whole, whole

RESOURCE_KEYS = ("workers", "cpus", "gpus", "trials_per_gpu", "max_concurrent", "custom")
#: What the Tune trial of a data-parallel trial reserves. It only drives Ray Train's workers
#: (Ray's "Hyperparameter Tuning with Ray Tune" guide: the trial "acts as a driver process"), so
#: it takes no CPU or GPU a worker could use; Ray Tune needs some request: a token of memory.
DRIVER_REQUEST = {"cpu": 0.0, "gpu": 0.0, "memory": 2**20}
SCHEDULER_KEYS = ("name", "grace_period", "reduction_factor", "metric", "mode")
SCHEDULERS = ("fifo", "asha")


@dataclass(frozen=True)
class Resources:
    """What each trial asks of Ray, and how many trials may run at once.

    ``workers``: data-parallel workers per trial (experiments.sweep.data_parallel; 1: the trial trains
    in its Tune trial, as it always did). ``cpus``, ``gpus`` and ``custom`` are per worker.
    ``cpus``: CPUs per worker (> 0; its torch threads and data-loading workers), or "auto": 1 for
    a CPU worker, the node's CPUs per GPU times its GPUs for a GPU worker (so a folder data set's
    loaders can feed the GPU). ``gpus``: GPUs per worker, "auto" (1 when the cluster has GPUs,
    else 0), 0 or 1, or a fraction for one-worker trials (0.5 packs two trials per GPU): a worker
    trains on one GPU, so a trial on 8 GPUs is 8 workers.
    ``trials_per_gpu``: how many one-worker trials share each GPU (each takes 1/N of it, and with
    ``cpus: auto`` 1/N of the CPUs that come with it), or "auto": the sweep's cost step picks 1, 2,
    4 or 8 from the networks' peak memory and the measured training speed of that many copies at
    once (experiments.sweep.packing); on a cluster without GPUs, "auto" changes nothing (CPU trials
    take ``cpus`` each). None (the default): ``gpus`` decides alone.
    ``max_concurrent``: at most this many trials at once (None: as many as fit).
    ``custom``: Ray custom resources per worker, {name: amount > 0}.
    """

    workers: int = 1
    cpus: float | str = "auto"
    gpus: float | str = "auto"
    trials_per_gpu: int | str | None = None
    max_concurrent: int | None = None
    custom: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        cpus, gpus, custom = self.cpus, self.gpus, self.custom
        if cpus != "auto" and (not is_number(cpus) or cpus <= 0):
            raise ArchScaleError("resources.cpus", f"CPUs per trial must be auto or a positive number, got {cpus!r}")
        if gpus != "auto" and (not is_number(gpus) or gpus < 0):
            raise ArchScaleError("resources.gpus", f"GPUs per trial must be auto or a number >= 0 (0.5 packs two "
                                                   f"trials per GPU), got {gpus!r}")
        workers = whole(self.workers, "resources.workers", low=1)
        if is_number(gpus) and gpus > 1 and gpus != int(gpus):
            raise ArchScaleError("resources.gpus", "fractions are for sharing one GPU: use <= 1 (several GPUs per "
                                                   "trial: workers: N, gpus: 1)")
        if is_number(gpus) and gpus > 1:
            raise ArchScaleError("resources.gpus", f"a worker trains on one GPU: for a trial on {workers * gpus:g} "
                                                   f"GPUs use workers: {workers * gpus:g}, gpus: 1")
        if is_number(gpus) and 0 < gpus < 1 and workers > 1:
            raise ArchScaleError("resources.gpus", "data-parallel workers need a whole GPU each (NCCL runs one rank "
                                                   "per GPU); use gpus: 1, or workers: 1 to share a GPU")
        if self.max_concurrent is not None:
            whole(self.max_concurrent, "resources.max_concurrent", low=1)
        share = self.trials_per_gpu
        if share is not None:
            if share != "auto":
                whole(share, "resources.trials_per_gpu", low=1)
            if is_number(gpus) and gpus not in (0, 1):
                raise ArchScaleError("resources.trials_per_gpu", f"give either gpus: {gpus:g} or trials_per_gpu "
                                                                 f"(gpus: auto or 1 with it), not both")
            if workers > 1 and share != 1:
                raise ArchScaleError("resources.trials_per_gpu", "data-parallel workers need a whole GPU each; "
                                                                 "leave trials_per_gpu out, or use workers: 1")
        if not isinstance(custom, Mapping) or not all(is_number(v) and v > 0 for v in custom.values()):
            raise ArchScaleError("resources.custom", "expected {resource_name: amount > 0}")
        object.__setattr__(self, "cpus", cpus if cpus == "auto" else float(cpus))
        object.__setattr__(self, "custom", dict(custom))

    @classmethod
    def from_spec(cls, value) -> "Resources":
        """Resources from a sweep spec's ``resources:`` mapping (missing keys take the defaults)."""
        if not isinstance(value, dict):
            raise ArchScaleError("resources", "expected a mapping: {workers: 1, cpus: 1, gpus: auto, max_concurrent: 4}")
        check_keys(value, RESOURCE_KEYS, "resources", "resource")
        return cls(**{**value, "custom": value.get("custom") or {}})

    def per_worker(self, cluster: Mapping[str, float]) -> dict:
        """One worker's request, {"cpu", "gpu", **custom}, on a cluster with ``cluster`` resources
        (ray.cluster_resources()); "auto" GPUs resolved against it."""
        gpus = self.gpus
        if gpus == "auto":
            gpus = 1.0 if cluster.get("GPU", 0) >= 1 else 0.0
        if gpus > 0 and is_whole(self.trials_per_gpu):  # "auto" counts as 1 until the cost step chooses
            gpus = 1.0 / self.trials_per_gpu
        if gpus > 0 and not cluster.get("GPU", 0):
            raise ArchScaleError("resources.gpus", f"trials ask for {gpus:g} GPU but the Ray cluster has none; "
                                                   f"use gpus: 0 or auto")
        cpus = self.cpus
        if cpus == "auto":  # a GPU trial gets its share of the CPUs that come with the GPUs
            per_gpu = cluster.get("CPU", 1) / cluster["GPU"] if gpus > 0 else 0
            cpus = float(max(1, int(per_gpu * gpus)))
        return {"cpu": cpus, "gpu": float(gpus), **self.custom}

    def per_trial(self, cluster: Mapping[str, float]) -> dict:
        """Ray Tune's resource request of one trial: its one worker's, or for several workers the
        driver's (``DRIVER_REQUEST``; Ray Train requests the workers)."""
        worker = self.per_worker(cluster)
        return worker if self.workers == 1 else dict(DRIVER_REQUEST)

    def concurrency(self, cluster: Mapping[str, float], n_trials: int,
                    nodes: Sequence[Mapping[str, float]] | None = None) -> int:
        """How many trials run at once: as many as the cluster's CPUs and GPUs fit (for several
        workers, as many whole sets of workers as the ``nodes``' resources hold, default: the
        cluster as one node), capped by ``max_concurrent`` and the number of trials; at least 1."""
        if self.workers > 1:
            slots = self.worker_slots(cluster, nodes) // self.workers
        else:
            request = self.per_trial(cluster)
            slots = cluster.get("CPU", 1) / request["cpu"]
            if request["gpu"] > 0:
                slots = min(slots, cluster["GPU"] / request["gpu"])
        return max(1, int(min(slots, self.max_concurrent or slots, n_trials)))

    def worker_slots(self, cluster: Mapping[str, float], nodes: Sequence[Mapping[str, float]] | None = None) -> int:
        """How many workers fit on the ``nodes`` at once (each node's CPUs, GPUs and custom
        resources; default: the cluster as one node)."""
        worker = self.per_worker(cluster)
        need = {"CPU": worker.pop("cpu"), "GPU": worker.pop("gpu"), **worker}
        return sum(int(min(node.get(k, 0) // v for k, v in need.items() if v > 0)) for node in (nodes or [cluster]))

    def placement_problem(self, cluster: Mapping[str, float], nodes: Sequence[Mapping[str, float]] | None = None
                          ) -> str | None:
        """Why the cluster cannot place one trial's workers, or None when it can (workers of a
        trial may spread over nodes; each worker needs its resources on one node)."""
        worker = self.per_worker(cluster)
        slots = self.worker_slots(cluster, nodes)
        if slots >= self.workers:
            return None
        ask = ", ".join(f"{v:g} {k.upper() if k in ('cpu', 'gpu') else k}" for k, v in worker.items() if v > 0)
        have = "; ".join(", ".join(f"{v:g} {k}" for k, v in sorted(n.items()) if k in ("CPU", "GPU") or k in worker)
                         for n in (nodes or [cluster]))
        return (f"a trial needs {self.workers} worker{'s' if self.workers > 1 else ''} of {ask} each, but the "
                f"cluster's nodes ({have}) hold only {slots}; trials would wait forever: lower resources.workers "
                f"or the per-worker resources, or add nodes")

    def launch(self, cluster: Mapping[str, float], storage_path: str | None = None) -> "Launch":
        """The ``Launch`` of this sweep's trials on a cluster with ``cluster`` resources."""
        worker = self.per_worker(cluster)
        return Launch(workers=self.workers, cpus=worker.pop("cpu"), gpus=worker.pop("gpu"), custom=worker,
                      storage_path=storage_path)

    def describe(self, cluster: Mapping[str, float]) -> str:
        """What each trial takes, in words: "1 CPU, 0 GPU each" or "2 workers x (4 CPU, 1 GPU) each"."""
        worker = self.per_worker(cluster)
        each = f"{worker['cpu']:g} CPU, {worker['gpu']:g} GPU"
        return f"{each} each" if self.workers == 1 else f"{self.workers} workers x ({each}) each"

    def to_dict(self) -> dict:
        """The plain form recorded in manifest.json (``trials_per_gpu`` only when given, so the
        manifests of sweeps from before it was a field read the same)."""
        d = dataclasses.asdict(self)
        if d["trials_per_gpu"] is None:
            del d["trials_per_gpu"]
        return d

    def packed(self, trials_per_gpu: int) -> "Resources":
        """These resources with ``trials_per_gpu`` chosen (what ``auto`` became)."""
        return dataclasses.replace(self, trials_per_gpu=int(trials_per_gpu))


@dataclass(frozen=True)
class Launch:
    """How a trial's workers are requested from Ray: how many, each one's CPUs, GPUs and custom
    resources, and where Ray Train keeps the runs of data-parallel trials (experiments.sweep.data_parallel)."""

    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    custom: Mapping[str, float] = field(default_factory=dict)
    storage_path: str | None = None

    @property
    def device_share(self) -> float:
        """The part of a device each worker trains on (a GPU fraction, else 1)."""
        return self.gpus if self.gpus > 0 else 1.0

    def run_path(self, trial_id: str) -> str | None:
        """Where Ray Train keeps the run of ``trial_id`` (None without a storage path)."""
        return f"{self.storage_path}/{trial_id}" if self.storage_path else None


@dataclass(frozen=True)
class Scheduler:
    """How Ray Tune schedules a sweep's trials.

    ``name``: "fifo" (every trial runs to the end) or "asha" (one ASHA bracket per regime, which
    stops trials that trail after ``grace_period`` epochs, keeping 1 in ``reduction_factor`` at
    each rung). ``metric`` and ``mode``: what ASHA compares (default: validation top-1, max).
    """

    name: str = "fifo"
    metric: str = "val_top1"
    mode: str = "max"
    grace_period: int = 1
    reduction_factor: float = 2.0

    def __post_init__(self):
        if self.name not in SCHEDULERS:
            raise _not_a_scheduler(self.name)
        if self.mode not in ("max", "min"):
            raise ArchScaleError("scheduler.mode", "must be max or min")
        if self.name == "asha":
            gp, rf = self.grace_period, self.reduction_factor
            if not is_whole(gp) or gp < 1:
                raise ArchScaleError("scheduler.grace_period", f"epochs before a trial can be stopped: >= 1, "
                                                               f"got {gp!r}")
            if not is_number(rf) or rf <= 1:
                raise ArchScaleError("scheduler.reduction_factor", f"must be > 1, got {rf!r}")
            object.__setattr__(self, "reduction_factor", float(rf))

    @classmethod
    def from_spec(cls, value) -> "Scheduler":
        """A Scheduler from a sweep spec's ``scheduler:`` (a name, or a mapping with name:)."""
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict) or value.get("name") not in SCHEDULERS:
            raise _not_a_scheduler(value)
        check_keys(value, SCHEDULER_KEYS, "scheduler", "scheduler option")
        return cls(**value)

    def to_dict(self) -> dict:
        """The plain form recorded in manifest.json (the ASHA settings only for ASHA)."""
        d = {"name": self.name, "metric": self.metric, "mode": self.mode}
        if self.name == "asha":
            d.update(grace_period=self.grace_period, reduction_factor=self.reduction_factor)
        return d


def _not_a_scheduler(value) -> ArchScaleError:
    return ArchScaleError("scheduler", f"expected fifo or asha (or {{name: asha, grace_period: 1, "
                                       f"reduction_factor: 2}}), got {value!r}")
