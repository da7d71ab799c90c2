"""The Ray options of a sweep spec, typed: what each trial asks for and how trials are scheduled.

    resources: {cpus: auto, gpus: auto, max_concurrent: 4, custom: {}}
    scheduler: fifo                    # or {name: asha, grace_period: 1, reduction_factor: 2}

``Resources.from_spec`` and ``Scheduler.from_spec`` parse and validate these mappings (one-line
``ArchScaleError`` for anything wrong); experiments.sweep reads the fields. A new Ray option is a
field here and the line of sweep.py that hands it to Ray. This module imports no Ray.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

from scaling.errors import ArchScaleError
from scaling.validate import check_keys, is_number, is_whole, whole

RESOURCE_KEYS = ("cpus", "gpus", "max_concurrent", "custom")
SCHEDULER_KEYS = ("name", "grace_period", "reduction_factor", "metric", "mode")
SCHEDULERS = ("fifo", "asha")


@dataclass(frozen=True)
class Resources:
    """What each trial asks of Ray, and how many trials may run at once.

    ``cpus``: CPUs per trial (> 0; the trial's torch threads and data-loading workers), or "auto":
    1 for a CPU trial, the node's CPUs per GPU times its GPUs for a GPU trial (so a folder data
    set's workers can feed the GPU). ``gpus``: GPUs per trial, a number >= 0 (0.5 packs two
    trials per GPU) or "auto" (1 when the cluster has GPUs, else 0).
    ``max_concurrent``: at most this many trials at once (None: as many as fit).
    ``custom``: Ray custom resources per trial, {name: amount > 0}.
    """

    cpus: float | str = "auto"
    gpus: float | str = "auto"
    max_concurrent: int | None = None
    custom: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        cpus, gpus, custom = self.cpus, self.gpus, self.custom
        if cpus != "auto" and (not is_number(cpus) or cpus <= 0):
            raise ArchScaleError("resources.cpus", f"CPUs per trial must be auto or a positive number, got {cpus!r}")
        if gpus != "auto" and (not is_number(gpus) or gpus < 0):
            raise ArchScaleError("resources.gpus", f"GPUs per trial must be auto or a number >= 0 (0.5 packs two "
                                                   f"trials per GPU), got {gpus!r}")
        if is_number(gpus) and gpus > 1 and gpus != int(gpus):
            raise ArchScaleError("resources.gpus", "fractions are for sharing one GPU: use <= 1 or a whole number")
        if self.max_concurrent is not None:
            whole(self.max_concurrent, "resources.max_concurrent", low=1)
        if not isinstance(custom, Mapping) or not all(is_number(v) and v > 0 for v in custom.values()):
            raise ArchScaleError("resources.custom", "expected {resource_name: amount > 0}")
        object.__setattr__(self, "cpus", cpus if cpus == "auto" else float(cpus))
        object.__setattr__(self, "custom", dict(custom))

    @classmethod
    def from_spec(cls, value) -> "Resources":
        """Resources from a sweep spec's ``resources:`` mapping (missing keys take the defaults)."""
        if not isinstance(value, dict):
            raise ArchScaleError("resources", "expected a mapping: {cpus: 1, gpus: auto, max_concurrent: 4}")
        check_keys(value, RESOURCE_KEYS, "resources", "resource")
        return cls(**{**value, "custom": value.get("custom") or {}})

    def per_trial(self, cluster: Mapping[str, float]) -> dict:
        """Ray Tune's resource request of one trial, {"cpu", "gpu", **custom}, on a cluster with
        ``cluster`` resources (ray.cluster_resources()); "auto" GPUs resolved against it."""
        gpus = self.gpus
        if gpus == "auto":
            gpus = 1.0 if cluster.get("GPU", 0) >= 1 else 0.0
        if gpus > 0 and not cluster.get("GPU", 0):
            raise ArchScaleError("resources.gpus", f"trials ask for {gpus:g} GPU but the Ray cluster has none; "
                                                   f"use gpus: 0 or auto")
        cpus = self.cpus
        if cpus == "auto":  # a GPU trial gets its share of the CPUs that come with the GPUs
            per_gpu = cluster.get("CPU", 1) / cluster["GPU"] if gpus > 0 else 0
            cpus = float(max(1, int(per_gpu * gpus)))
        return {"cpu": cpus, "gpu": float(gpus), **self.custom}

    def concurrency(self, cluster: Mapping[str, float], n_trials: int) -> int:
        """How many trials run at once: as many as the cluster's CPUs and GPUs fit, capped by
        ``max_concurrent`` and the number of trials; at least 1."""
        request = self.per_trial(cluster)
        slots = cluster.get("CPU", 1) / request["cpu"]
        if request["gpu"] > 0:
            slots = min(slots, cluster["GPU"] / request["gpu"])
        return max(1, int(min(slots, self.max_concurrent or slots, n_trials)))

    def to_dict(self) -> dict:
        """The plain form recorded in manifest.json."""
        return dataclasses.asdict(self)


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
