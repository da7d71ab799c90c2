"""Data-parallel trials: one trial trained by N workers through Ray Train, inside a sweep or alone.

Ray Train's documented pattern for Tune ("Hyperparameter Tuning with Ray Tune", Train V2): the
Tune trial is only the driver of a ``TorchTrainer`` run; the run's workers hold the CPUs and GPUs
(``ScalingConfig(num_workers=N, resources_per_worker=..., placement_strategy="PACK")``: on one
node when they fit, spread over nodes otherwise), Ray Train sets up torch's process group (NCCL
on GPUs, gloo on CPUs) and DDP, and ``TuneReportCallback`` forwards rank 0's report of every epoch
to Tune, where the sweep's callbacks journal it as for any trial. Each worker runs
``train_trial`` with its ``RankContext`` (experiments.train.ranks). What each worker asks for is
an experiments.sweep.resources ``Launch``.

Checkpoints: rank 0 reports its checkpoint with each epoch to Ray Train, which keeps the run's
state and its last checkpoints under STORAGE/NAME/data_parallel/TRIAL_ID (a run is named after
the trial, so it is found again). When Tune restarts the trial (after a crash, a retry or a
killed driver), Ray Train restores that run and every rank resumes from its last checkpoint.

A trial resumes whatever the worker count it had: the global batch is the regime's either way,
and the state is the same. ``newest_state`` picks the later of a trial's Tune checkpoint (written
while it ran on one worker) and its Ray Train checkpoint (several workers).
"""
from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import ray
import torch

from scaling.errors import ArchScaleError

from ..results.schema import EpochReport, TrialResult
from ..train.ranks import RankContext
from ..train.trial import STATE_FILE, TrialConfig, _epoch_line, load_checkpoint, train_trial
from .resources import Launch

#: Where Ray Train keeps the runs of a sweep's data-parallel trials, under its experiment path.
RUNS_DIR = "data_parallel"
#: Checkpoints Ray Train keeps per run (as Tune keeps for one-worker trials).
KEEP_CHECKPOINTS = 2


def scaling_config(launch: Launch):
    """Ray Train's request for ``launch``: N workers of its resources each, packed on as few nodes
    as fit them (PACK), spread over nodes otherwise."""
    import ray.train

    per_worker = {"CPU": launch.cpus, **launch.custom}
    if launch.gpus > 0:
        per_worker["GPU"] = launch.gpus
    return ray.train.ScalingConfig(num_workers=launch.workers, use_gpu=launch.gpus > 0,
                                   resources_per_worker=per_worker, placement_strategy="PACK")


# ----- inside each worker ---------------------------------------------------------------------------
def train_worker(loop: dict) -> TrialResult | None:
    """Ray Train's per-worker function: ``train_trial`` on this worker's rank. Returns rank 0's
    final metrics (``Result.return_value``), None on the other ranks.

    ``loop``: {"trial": TrialConfig dict, "trial_id", "cpus", "device_share", "resume_from"
    (a checkpoint or folder to start from unless the run has a later checkpoint of its own),
    "checkpoint_dir" (a standalone run's folder, written by rank 0), "report_to_train" (report
    each epoch, with rank 0's checkpoint, to Ray Train), "progress" (a queue for rank 0's epoch
    lines)}.
    """
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    ranks = RankContext(ctx.get_world_rank(), ctx.get_world_size(), loop.get("device_share", 1.0))
    device = ray.train.torch.get_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    trial = dataclasses.replace(TrialConfig.from_dict(loop["trial"]), device=str(device),
                                cpus=max(1, int(loop.get("cpus") or 1)), verbose=False)
    where = _where(ranks, loop.get("trial_id"))
    resume = newest_state(ray.train.get_checkpoint(), loop.get("resume_from"))
    progress, epochs = loop.get("progress"), trial.regime.epochs

    def report(epoch: EpochReport, checkpoint_dir: str | None) -> None:
        if progress is not None and ranks.is_main and epoch.evaluated:
            progress.put(_epoch_line(epoch, epochs))
        if loop.get("report_to_train"):  # a dict only at Ray's edge
            checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
            ray.train.report(dataclasses.replace(epoch, **where).to_dict(), checkpoint=checkpoint)

    wants_report = loop.get("report_to_train") or progress is not None
    result = train_trial(trial, report=report if wants_report else None, checkpoint_dir=loop.get("checkpoint_dir"),
                         resume=resume, ranks=ranks)
    return result if ranks.is_main else None


def _where(ranks: RankContext, trial_id: str | None) -> dict:
    """Where the trial runs, for the results store: rank 0's node and host, every worker's GPUs."""
    gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids())
    every = [gpu_ids] * ranks.world_size
    if ranks.world_size > 1:
        torch.distributed.all_gather_object(every, gpu_ids)
    where = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
             "gpu_ids": ",".join(g for g in every if g),
             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    return {**where, "trial_id": trial_id} if trial_id is not None else where


def newest_state(*checkpoints) -> dict | None:
    """The loaded state (see experiments.train.trial.load_checkpoint) with the most epochs among
    ``checkpoints`` (Ray Tune or Ray Train Checkpoints, folders, loaded states, or None), or None."""
    best = None
    for checkpoint in checkpoints:
        if checkpoint is None:
            continue
        if isinstance(checkpoint, dict):  # already loaded
            state = checkpoint
        elif isinstance(checkpoint, (str, Path)):
            state = load_checkpoint(checkpoint)
        else:
            with checkpoint.as_directory() as d:
                state = load_checkpoint(d)
        if best is None or state["epoch"] > best["epoch"]:
            best = state
    return best


def unjournaled(state: dict | None, journaled_epoch: int) -> list[EpochReport]:
    """The epochs of a resumed trial's history (``state`` from ``newest_state``) that the journal
    does not hold (after ``journaled_epoch``), marked ``replayed``."""
    if state is None:
        return []
    return [dataclasses.replace(EpochReport.from_dict(h), replayed=True)
            for h in state.get("history", []) if h["epoch"] > journaled_epoch]


def train_run_checkpoint(run_path: str | None):
    """The last checkpoint of the Ray Train run at ``run_path`` (a trial that ran on several
    workers), or None when there is no such run or it has no checkpoint yet."""
    if not run_path or not _exists(run_path):
        return None
    import ray.train

    try:
        return ray.train.Result.from_path(run_path).checkpoint
    except RuntimeError:  # no such run, or one killed before its first checkpoint
        return None


def _exists(path: str) -> bool:
    """Whether a local path or storage URI (s3://...) exists."""
    import pyarrow.fs

    try:
        fs, fs_path = pyarrow.fs.FileSystem.from_uri(path)
    except (pyarrow.ArrowInvalid, ValueError):
        return os.path.exists(path)
    return fs.get_file_info(fs_path).type != pyarrow.fs.FileType.NotFound


# ----- in a sweep: the Tune trial drives the run -------------------------------------------------
def tune_data_parallel(config: dict, launch: Launch, journaled_epoch: int = 0) -> None:
    """A sweep trial (Tune's param dict: trial_id, config) trained by ``launch.workers`` workers;
    Tune's restart of the trial resumes Ray Train's run of the same name (or a checkpoint Tune
    kept while it ran on one worker). Epochs of the checkpoint the journal lacks (it holds up to
    ``journaled_epoch``) are reported first."""
    import ray.train
    import ray.train.torch
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    tid = config["trial_id"]
    tune_checkpoint = tune.get_checkpoint()
    for epoch in unjournaled(newest_state(tune_checkpoint, train_run_checkpoint(launch.run_path(tid))),
                             journaled_epoch):
        tune.report(dataclasses.replace(epoch, trial_id=tid).to_dict())
    loop = {"trial": config["config"], "trial_id": tid, "cpus": launch.cpus, "device_share": launch.device_share,
            "resume_from": tune_checkpoint, "report_to_train": True}
    trainer = ray.train.torch.TorchTrainer(
        train_worker, train_loop_config=loop, scaling_config=scaling_config(launch),
        run_config=ray.train.RunConfig(
            name=tid, storage_path=launch.storage_path, callbacks=[TuneReportCallback()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
            failure_config=ray.train.FailureConfig(max_failures=0),  # Tune retries the trial
            logging_config=ray.train.LoggingConfig(log_level="WARNING")))
    trainer.fit()


# ----- alone: archscale train --workers N --------------------------------------------------------
def train_data_parallel(config: TrialConfig | dict, launch: Launch, *, checkpoint_dir: str | Path | None = None,
                        resume: bool = False, progress: bool = False) -> TrialResult:
    """Train one trial on ``launch.workers`` workers of a running Ray; returns rank 0's final
    metrics (as ``train_trial`` does). ``checkpoint_dir``: rank 0 keeps the checkpoint there
    (any worker count resumes from it with ``resume``); ``progress``: print rank 0's epoch lines."""
    import ray.train
    import ray.train.torch
    from ray.util.queue import Queue

    cfg = TrialConfig.from_dict(config)
    if not checkpoint_dir:  # nothing would keep them
        cfg = dataclasses.replace(cfg, checkpoint_every=0)
    lines = Queue(actor_options={"num_cpus": 0}) if progress else None
    storage = tempfile.mkdtemp(prefix="archscale-train-")
    folder = str(Path(checkpoint_dir).resolve()) if checkpoint_dir else None
    saved = resume and folder and (Path(folder) / STATE_FILE).is_file()
    loop = {"trial": cfg.to_dict(), "cpus": launch.cpus, "device_share": launch.device_share, "progress": lines,
            "checkpoint_dir": folder, "resume_from": folder if saved else None}
    trainer = ray.train.torch.TorchTrainer(
        train_worker, train_loop_config=loop, scaling_config=scaling_config(launch),
        run_config=ray.train.RunConfig(name=f"train-{uuid.uuid4().hex[:8]}", storage_path=storage,
                                       failure_config=ray.train.FailureConfig(max_failures=0),
                                       logging_config=ray.train.LoggingConfig(log_level="WARNING")))
    try:
        result = _fit_printing(trainer, lines)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return result.return_value


def train_on_workers(config: TrialConfig | dict, workers: int, *, cpus: float = 1, gpu: bool = True,
                     address: str | None = None, checkpoint_dir: str | Path | None = None, resume: bool = False,
                     progress: bool = False) -> TrialResult:
    """``archscale train --workers N``: one trial on ``workers`` workers of ``cpus`` CPUs (and a GPU
    each when ``gpu`` and there are GPUs), on a local Ray with enough CPUs for them unless
    ``address`` or RAY_ADDRESS names a cluster; ArchScaleError("workers") when the cluster cannot
    place them. Returns rank 0's final metrics (see ``train_data_parallel``)."""
    from .ray_runtime import cluster_nodes, init_ray
    from .resources import Resources

    resources = Resources(workers=workers, cpus=cpus, gpus=1 if gpu and torch.cuda.is_available() else 0)
    local = not (address or os.environ.get("RAY_ADDRESS"))
    started = init_ray(address, num_cpus=max(os.cpu_count() or 1, int(workers * cpus)) if local else None)
    try:
        cluster, nodes = cluster_nodes(address)
        problem = resources.placement_problem(cluster, nodes)
        if problem:
            raise ArchScaleError("workers", problem)
        return train_data_parallel(config, resources.launch(cluster), checkpoint_dir=checkpoint_dir, resume=resume,
                                   progress=progress)
    finally:
        if started:
            ray.shutdown()


def _fit_printing(trainer, lines) -> Any:
    """``trainer.fit()``, printing the lines rank 0 puts on ``lines`` (a Ray queue) meanwhile."""
    from ray.util.queue import Empty

    if lines is None:
        return trainer.fit()
    outcome: dict = {}

    def fit():
        try:
            outcome["result"] = trainer.fit()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    while thread.is_alive() or not lines.empty():
        try:
            print(lines.get(timeout=0.5), flush=True)
        except (queue.Empty, Empty):
            continue
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
