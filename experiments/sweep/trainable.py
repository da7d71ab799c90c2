"""The trial as Ray Tune runs it, inside a Ray worker: resume from the newest checkpoint, train, report.

``archscale_trial`` is the sweep's Tune trainable: it hands the trial to ``train_trial``
(experiments.train.trial), or for a data-parallel trial to Ray Train (experiments.sweep.data_parallel),
and reports each epoch (with its checkpoint) to Tune, where the driver's callbacks
(experiments.sweep.callbacks) journal it.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import time
from pathlib import Path

import ray
from ray import tune

from ..results.schema import EpochReport
from .resources import Launch

#: Trials this process has entered: the first is a new worker's (its process start is reported).
_TRIALS_ENTERED = 0


def archscale_trial(config: dict, already_ended: frozenset = frozenset(), launch: Launch | None = None,
                    journaled: dict | None = None, data: dict | None = None) -> None:
    """Tune's entry point: the param space nests each trial's dict under 'trial'.

    ``already_ended`` holds the trials the journal says ended before this launch. Tune saves its
    experiment state only every few seconds, so after a kill it may restore a trial that had
    finished as still running; such a trial returns at once instead of training again.
    ``launch``: this launch's workers per trial; several run the trial through Ray Train
    (experiments.sweep.data_parallel). ``journaled``: the last epoch the journal holds of each trial.
    ``data``: {data_key: object ref} of the in-memory data sets the driver built and shared
    (experiments.data.resident); a trial whose data set is there reads it from the node's object store.
    """
    entered = _entered()
    tid = config["trial"]["trial_id"]
    if tid in already_ended:
        return
    journaled_epoch = (journaled or {}).get(tid, 0)
    if launch is not None and launch.workers > 1:
        from .data_parallel import tune_data_parallel

        return tune_data_parallel(config["trial"], launch, journaled_epoch)
    tune_trainable(config["trial"], launch, journaled_epoch, entered, data)


def _entered() -> dict:
    """When this process entered the trial (Unix time), and when the process started if this is
    its first trial (a new worker: its start counts in the trial's worker_start phase)."""
    global _TRIALS_ENTERED
    _TRIALS_ENTERED += 1
    now = time.time()
    if _TRIALS_ENTERED > 1:
        return {"entered_at": now}
    from .session_guard import psutil

    return {"entered_at": now, "process_started_at": min(psutil().Process().create_time(), now)}


def tune_trainable(config: dict, launch: Launch | None = None, journaled_epoch: int = 0,
                   entered: dict | None = None, data: dict | None = None) -> None:
    """One trial of train_trial, resumed from Tune's checkpoint when Tune restores it (or from
    its Ray Train checkpoint when it last ran on several workers: see ``launch``; the epochs of
    that checkpoint after ``journaled_epoch`` are reported first). ``entered``: when the worker
    entered the trial (see ``_entered``), added to every report; ``data``: the shared data sets
    (see ``archscale_trial``)."""
    from ..train.phases import PhaseClock

    phases = PhaseClock()
    with phases("worker_start"):  # a new worker's imports (torch, the trainer) and device set-up
        import torch

        from ..train.ranks import RankContext
        from ..data.resident import data_key
        from ..train.trial import TrialConfig, train_trial
        from .data_parallel import newest_state, train_run_checkpoint, unjournaled

    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    # The typed config goes in: a key Tune's dict carries that TrialConfig lacks fails here, at once.
    trial = dataclasses.replace(TrialConfig.from_dict(config["config"]),
                                device="cuda" if gpu_ids and torch.cuda.is_available() else "cpu",
                                cpus=max(1, int(launch.cpus if launch is not None else config.get("cpus", 1))))
    where = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
             "gpu_ids": ",".join(gpu_ids), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
             "trial_id": config["trial_id"], **(entered or {})}
    run = launch.run_path(config["trial_id"]) if launch is not None else None
    # on local storage Tune's checkpoint is one of those on disk, so the newest there is at least as new
    with phases("checkpoint"):  # the checkpoint it resumes from, loaded
        tune_state = persisted_state(launch, config["trial_id"]) or tune.get_checkpoint()
        resume = newest_state(tune_state, train_run_checkpoint(run))
    with phases("report"):
        for epoch in unjournaled(resume, journaled_epoch):
            tune.report(dataclasses.replace(epoch, trial_id=config["trial_id"]).to_dict())

    def report(epoch: EpochReport, checkpoint_dir: str | None) -> None:
        metrics = dataclasses.replace(epoch, **where).to_dict()  # a dict only at Ray's edge
        if checkpoint_dir:  # train_trial removes it once Tune has persisted its copy
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
        else:
            tune.report(metrics)

    ranks = RankContext(device_share=launch.device_share) if launch is not None else RankContext()
    ref = (data or {}).get(data_key(trial.dataset, trial.spec.resolution, trial.spec.in_channels, trial.seed))
    train_trial(trial, report=report, resume=resume, ranks=ranks, phases=phases,
                shared_data=(lambda: ray.get(ref)) if ref is not None else None)


def persisted_state(launch: Launch | None, trial_id: str) -> dict | None:
    """The newest checkpoint Tune has persisted for ``trial_id`` in a local storage path, loaded,
    or None. Tune's experiment state (and so ``tune.get_checkpoint()`` after a rerun) is saved only
    every few seconds and can name an older checkpoint after a stop or a kill; the trial then
    resumes from its last persisted epoch instead of training one again. Remote storage (a URI)
    and a checkpoint a kill left half-copied are passed over."""
    from ..train.trial import STATE_FILE, load_checkpoint

    if launch is None or not launch.storage_path or "://" in launch.storage_path:
        return None
    trial_dir = Path(launch.storage_path).parent / trial_id[:150]  # _dirname: the experiment's trial folder
    for folder in sorted(trial_dir.glob("checkpoint_*"), reverse=True):
        if (folder / STATE_FILE).is_file():
            try:
                return load_checkpoint(folder)
            except Exception:  # noqa: BLE001 - half-written by a kill: try the one before
                continue
    return None

