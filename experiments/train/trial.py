"""train_trial: train one ArchSpec under one regime on one data set with one seed.

The trial reports once per epoch through a callback, ``report(epoch_report, checkpoint_dir)``, which
is where the sweep plugs Ray Tune in (an ``EpochReport`` of experiments.results.schema; it returns a
``TrialResult``, and the sweep turns both into dicts only at Ray's edge); ``checkpoint_dir`` is a directory holding ``state.pt`` on the
epochs a checkpoint reaches it, else None. Checkpoints go by time: one starts at the end of the first
epoch that ends ``checkpoint_interval_s`` (default 60 s) or more after the last one, and after the
last epoch when there is a ``checkpoint_dir`` (a sweep's trial, which nothing resumes once it has
ended, starts none in its last two epochs), so that fast epochs do not each write the weights,
momentum and EMA; ``checkpoint_every``, when given, checkpoints every N epochs instead. They are
written in the background while the next epoch trains (experiments.train.checkpoints), so one
started at epoch n reaches the reporter with epoch n + 1's report.

Determinism: every epoch reseeds the global and data generators from (seed, epoch), so a run
resumed from a checkpoint draws the same dropout masks, shuffles and augmentations as one that
never stopped; on CPU the same seed gives identical metrics, resumed or not.

Data-parallel: the same function runs in each of a trial's workers (experiments.sweep.data_parallel),
given its ``RankContext`` (experiments.train.ranks): each trains on its shard of every global
batch through DDP, evaluates its shard of the validation set, and only rank 0 checkpoints.

Speed: on CUDA, autocast in the device's ``amp_dtype`` (bf16 where it is native, else fp16 with a
grad scaler), channels-last, cuDNN's autotuning (the batch and resolution are fixed; set for the
trial by ``train_trial`` and restored when it returns) and optional ``torch.compile``; in-memory
data sets live on the device; the loss is checked for NaN every 50 steps and at the end of the
epoch, so the loop never waits on the host otherwise.

Compilation: each trial starts from a fresh compiler state (``training.fresh_compiler``), so a
process that runs many trials (a reused Ray actor) compiles every network it trains; the next
trial of the same network and batch (another seed) reuses the graphs and compiles nothing. The first training
step of a run, which compiles (and runs cuDNN's algorithm search and lazy set-up), is timed apart:
``compile_time_s`` (when compiling) and not in ``observed_images_per_s``. Evaluation runs the compiled
model when the trial evaluates enough images for compiling to pay (``EVAL_COMPILE_MIN_IMAGES``).

Peak memory is ``scaling.timing.PeakMemory`` started once the data set is resident, as in
``measure()``: the model, gradients, optimiser state, EMA, activations and batches in flight.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from scaling import ArchScaleError, ArchSpec, build_model, complexity, get_preset, spec_from_dict
from scaling.blocks import import_block_libraries
from scaling.device import amp_dtype, cudnn_autotune, device_name, resolve_device, sync
from scaling.timing import PeakMemory
from scaling.validate import boolean, check_keys, is_whole, number

from ..data.datasets import DatasetConfig, dataset_from
from ..data.resident import resident_dataset
from ..results.schema import EpochReport, TrialResult
from . import loop as training
from .checkpoints import STATE_FILE, CheckpointWriter
from .loop import (Ema, batch_cut_note, compile_model, effective_batch_size, evaluate, fresh_compiler, param_groups,
                   seed_epoch)
from .phases import PhaseClock
from .ranks import SINGLE, RankContext
from .regimes import Regime, regime_from

NAN_CHECK_EVERY = 50


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs. ``from_dict`` accepts the JSON-able form the sweep passes."""

    spec: ArchSpec
    regime: Regime
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    seed: int = 0
    name: str = ""
    device: str = "auto"
    #: CPU threads for this trial (its CPU allotment); None leaves torch's default.
    cpus: int | None = None
    #: None = on for CUDA, off for CPU.
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    #: Data-parallel trials: normalise with the whole global batch's statistics instead of each
    #: worker's (experiments.train.ranks); no effect on one worker.
    sync_bn: bool = False
    #: Checkpoint at the end of the first epoch that ends this many seconds (wall time) or more
    #: after the last checkpoint (0: every epoch), and after the last epoch (in a sweep, not then: see train_trial).
    checkpoint_interval_s: float = 60.0
    #: When given, replaces the time rule: a checkpoint every N epochs and after the last (0 = never).
    checkpoint_every: int | None = None
    #: Cap on training steps per epoch (tests and benchmarks); None = the whole data set.
    max_steps_per_epoch: int | None = None
    #: Fault injection for testing failure handling: raise RuntimeError during this epoch.
    fail_at_epoch: int | None = None
    #: Print one line per epoch.
    verbose: bool = False

    def __post_init__(self):
        for key, low, optional in (("seed", 0, False), ("cpus", 1, True), ("checkpoint_every", 0, True),
                                   ("max_steps_per_epoch", 1, True), ("fail_at_epoch", 1, True)):
            v = getattr(self, key)
            if v is None and optional:
                continue
            if not is_whole(v) or v < low:
                raise ArchScaleError(f"trial.{key}", f"must be a whole number >= {low}"
                                                     f"{' (or left out)' if optional else ''}, got {v!r}")
        number(self.checkpoint_interval_s, "trial.checkpoint_interval_s", low=0)
        for key in ("amp", "channels_last", "compile", "sync_bn", "verbose"):
            v = getattr(self, key)
            if v is not None or key not in ("amp", "channels_last"):
                boolean(v, f"trial.{key}")

    @classmethod
    def from_dict(cls, d: dict | "TrialConfig") -> "TrialConfig":
        """A TrialConfig from its JSON-able form; ``spec`` may be a preset name or ArchSpec fields."""
        if isinstance(d, TrialConfig):
            return d
        d = dict(d)
        check_keys(d, sorted(f.name for f in dataclasses.fields(cls)), "trial", "trial field")
        if "spec" not in d or "regime" not in d:
            raise ArchScaleError("trial", "a trial needs spec: (ArchSpec fields or a preset) and regime:")
        spec = d.pop("spec")
        if isinstance(spec, str):
            spec = get_preset(spec)
        elif isinstance(spec, dict):
            spec = spec_from_dict(spec)
        return cls(spec=spec, regime=regime_from(d.pop("regime")), dataset=dataset_from(d.pop("dataset", "digits")),
                   **d)

    def to_dict(self) -> dict:
        """JSON-able form (what the sweep hands to Ray Tune)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(spec=self.spec.to_dict(), regime={k: v for k, v in self.regime.to_dict().items() if k != "lr"},
                 dataset=self.dataset.to_dict())
        return d


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by train_trial (a directory holding state.pt, or the file itself)."""
    p = Path(path)
    p = p / STATE_FILE if p.is_dir() else p
    if not p.is_file():
        raise ArchScaleError("resume", f"no checkpoint at {path} (expected {STATE_FILE})")
    return torch.load(p, map_location="cpu", weights_only=True)


def check_same_run(saved: dict, cfg: "TrialConfig", where) -> None:
    """A checkpoint resumes only the network and regime it was written for (``saved``: its config).
    A field only one of them records (one a later version added) is not a difference."""
    now = cfg.to_dict()
    for key in ("spec", "regime"):
        diff = sorted(k for k in set(saved.get(key) or {}) & set(now[key]) if saved[key][k] != now[key][k])
        if diff:
            src = "the checkpoint" if isinstance(where, dict) else f"the checkpoint at {where}"
            raise ArchScaleError("resume", f"{src} was written for another {key} (differs in {', '.join(diff)}); "
                                           f"use another checkpoint directory, or drop --resume to start over")


def train_trial(config: dict | TrialConfig, report: Callable[[EpochReport, str | None], None] | None = None, *,
                checkpoint_dir: str | Path | None = None, resume: str | Path | dict | None = None,
                on_epoch: Callable[[list[EpochReport]], None] | None = None, progress: Callable | None = None,
                ranks: RankContext = SINGLE, phases: PhaseClock | None = None,
                shared_data: Callable[[], dict] | None = None) -> TrialResult:
    """Train one trial; return its final metrics (see the module docstring for the callback).

    ``checkpoint_dir``: where standalone runs keep their checkpoint (written atomically); without
    it, checkpoints go to fresh temporary directories handed to ``report`` (Ray Tune copies them).
    ``resume``: a checkpoint (directory, file or loaded dict) to continue from.
    ``on_epoch(history)``: called after each epoch (and its checkpoint) with every epoch's metrics
    so far (``archscale train`` writes its history files there).
    ``progress(batches, total=, desc=)``: wraps each epoch's training batches (a progress bar).
    ``ranks``: this worker's place in a data-parallel trial (experiments.train.ranks); only rank 0
    writes checkpoints, every rank calls ``report`` (with None for the checkpoint).
    ``phases``: the clock that times where the trial's time goes (a new one without it); each
    report carries its phases so far, its CPU seconds and when it was sent (experiments.train.phases).
    ``shared_data()``: the data set's arrays as a sweep shares them (experiments.data.resident); the
    data set is kept on the device for the process's next trial either way.
    Returns a ``TrialResult`` (it reads as a dict too) with status "done" or "diverged", per-epoch
    ``history``, best and final top-1, training time, peak memory, the device and the model's complexity.
    """
    with cudnn_autotune():  # fixed shapes: the trial's batch and resolution (restored on return)
        trial = TrialRun(TrialConfig.from_dict(config), ranks, phases, shared_data)
        trial.progress = progress
        return _train(trial, report, checkpoint_dir, resume, on_epoch)


def _train(trial: "TrialRun", report, checkpoint_dir, resume, on_epoch) -> TrialResult:
    """train_trial's epochs: resume, then train, report and checkpoint each epoch. Checkpoints are
    written in the background (experiments.train.checkpoints): one started at epoch n reaches the
    reporter with epoch n + 1's report, and a run that ends or fails waits for the write in flight."""
    if resume is not None:
        trial.resume(resume)
        trial.memory.reset_peak()
    writer = CheckpointWriter(checkpoint_dir)
    try:
        for epoch in range(trial.epoch, trial.regime.epochs):
            metrics = trial.train_epoch(epoch)
            if trial.status == "diverged":
                metrics = trial.stamp(metrics)
                if report:
                    with trial.phases("report"):
                        report(metrics, None)
                trial.say(f"epoch {epoch + 1}: loss is not finite ({metrics['train_loss']}); stopping: diverged")
                if on_epoch:
                    on_epoch(trial.history)
                break
            _checkpoint_and_report(trial, writer, report, checkpoint_dir, metrics)
            if on_epoch:
                on_epoch(trial.history)
    except BaseException:  # the write in flight ends first; the run's own error is the one raised
        with contextlib.suppress(Exception):
            writer.close()
        raise
    writer.close()
    return trial.final_metrics()


def _checkpoint_and_report(trial: "TrialRun", writer: CheckpointWriter, report, checkpoint_dir,
                           metrics: EpochReport) -> None:
    """One evaluated epoch's checkpoint (started in the background when due) and report, which
    carries the checkpoint an earlier epoch started. A standalone run (``checkpoint_dir``) keeps
    its final weights: its last checkpoint is waited for and reported with the last epoch. A
    sweep's trial (Tune keeps its checkpoints, and nothing resumes a finished trial) starts none
    in its last two epochs: the one reported with the last epoch's report would never be used."""
    last = trial.epoch == trial.regime.epochs
    keep = checkpoint_dir is not None or (report is not None and trial.epoch < trial.regime.epochs - 1)
    with trial.phases("checkpoint"):
        ckpt = writer.take() if report else None
        if keep and trial.checkpoint_due() and trial.ranks.is_main:
            writer.start(trial.state())
            trial.last_checkpoint = _clock()
            if last and checkpoint_dir is not None:
                ckpt = writer.take()
    trial.say(_epoch_line(metrics, trial.regime.epochs))
    metrics = trial.stamp(metrics)
    if report:
        try:
            with trial.phases("report"):
                report(metrics, ckpt)
        finally:  # the reporter (Ray Tune) has copied what it keeps of a temporary checkpoint
            writer.release(ckpt)


class TrialRun:
    """One trial as it trains: what set-up built (device, precision, data, model, optimiser) and
    its progress (epochs done, per-epoch history, training time, status).

    Read top to bottom: set-up, resume, one epoch, checkpoint state, final metrics.
    """

    #: Wraps each epoch's training batches, e.g. in a progress bar (see ``train_trial``).
    progress: Callable | None = None

    # ----- set-up ---------------------------------------------------------------------------
    def __init__(self, cfg: TrialConfig, ranks: RankContext = SINGLE, phases: PhaseClock | None = None,
                 shared_data: Callable[[], dict] | None = None):
        self.cfg, self.ranks, self.shared_data = cfg, ranks, shared_data
        self.phases = phases or PhaseClock()
        self.first_step_at = None  # Unix time the run's first training step ended
        with self.phases("data"):
            self._set_up_device()
            self._set_up_data()
        with self.phases("model"):
            import_block_libraries()  # library code paged in is no training memory
            self.memory = PeakMemory(self.device)
            self.memory.start()  # with the data set resident, before the model: as measure() counts
            self._set_up_model()
        self.epoch, self.history, self.train_time, self.status = 0, [], 0.0, "done"
        self.warm = False  # whether this run has taken its first (compiling, autotuning) step
        self.last_checkpoint = _clock()
        self.base = {"name": cfg.name or self.spec.slug(), "regime": self.regime.name, "dataset": self.data.name,
                     "seed": cfg.seed}
        self.static = {"device": device_name(self.device), "params": self.cx.params, "flops": self.cx.flops,
                       "activations": self.cx.activations, "batch_size": self.batch, "lr_peak": self.regime.lr,
                       "warmup_epochs": self.regime.warmup_epochs, "epochs_planned": self.regime.epochs,
                       "classes": self.data.num_classes, **{f"effective_{k}": v for k, v in self.reg.items()},
                       "workers": ranks.world_size, "devices": ranks.devices,
                       "decode": getattr(self.data, "decode_choice", None),
                       "images_per_epoch": self.steps_per_epoch * self.batch}

    def _set_up_device(self) -> None:
        """Device, CPU threads, and precision: autocast in the device's ``amp_dtype`` (bf16, or fp16
        with a grad scaler) and channels-last, by default on CUDA only."""
        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        if cfg.cpus:
            torch.set_num_threads(int(cfg.cpus))
        self.cuda = self.device.type == "cuda"
        self.amp = self.cuda if cfg.amp is None else cfg.amp
        channels_last = self.cuda if cfg.channels_last is None else cfg.channels_last
        self.amp_dtype = amp_dtype(self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format

    def autocast(self):
        """The autocast context of this trial's precision."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _set_up_data(self) -> None:
        """The data set on the device, the regime's regularisation for the spec, and the batch
        (capped for small data, see ``effective_batch_size``) and steps per epoch."""
        cfg = self.cfg
        self.data = resident_dataset(cfg.dataset, cfg.spec.resolution, cfg.spec.in_channels, cfg.seed, self.device,
                                     cpus=cfg.cpus, shared=self.shared_data)
        if self.data.main_threads:  # DataLoader workers take the rest of the trial's CPUs
            torch.set_num_threads(self.data.main_threads)
        if getattr(self.data, "decode_note", "") and self.ranks.is_main:  # decode: auto says what it chose
            print(f"{self.data.name}: {self.data.decode_note}", flush=True)
        self.reg = cfg.regime.regularization(cfg.spec)
        self.spec = cfg.spec.replace(num_classes=self.data.num_classes, dropout=self.reg["dropout"],
                                     stochastic_depth=self.reg["stochastic_depth"])
        self.data.set_randaugment(self.reg["randaugment_layers"], self.reg["randaugment_magnitude"])
        self.batch = effective_batch_size(cfg.regime, self.data.train_size)
        if self.batch != cfg.regime.batch_size and self.ranks.rank == 0:
            self.say(batch_cut_note(cfg.regime, self.data.train_size))
        self.ranks.worker_batch(self.batch)  # the global batch must split over the workers
        self.regime = cfg.regime if self.batch == cfg.regime.batch_size else cfg.regime.replace(batch_size=self.batch)
        self.steps_per_epoch = self.data.train_size // self.batch
        if cfg.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.max_steps_per_epoch)

    def _set_up_model(self) -> None:
        """The model (seeded), its complexity, SGD, the learning-rate schedule, the EMA, the loss,
        and with ``compile`` the compiled training model (and evaluation model, when it pays)."""
        regime, steps = self.regime, self.steps_per_epoch
        torch.manual_seed(self.cfg.seed)
        self.model = build_model(self.spec).to(self.device, memory_format=self.fmt)
        self.model = self.ranks.sync_norm(self.model, self.cfg.sync_bn)
        self.cx = complexity(self.spec, counter="analytic")
        self.opt = torch.optim.SGD(param_groups(self.model, regime.weight_decay, regime.weight_decay_on),
                                   lr=regime.lr, momentum=regime.momentum, nesterov=regime.nesterov)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: regime.lr_at(step, steps) / regime.lr)
        decay = regime.effective_ema_decay
        self.ema = Ema(self.model, decay) if decay > 0 else None
        self.step_model, self.eval_step_model = self.ranks.wrap(self.model), self.eval_model
        if self.cfg.compile:  # the graphs of this network and batch, if the process holds them, are reused
            fresh_compiler(json.dumps([self.spec.to_dict(), self.batch, self.amp, str(self.fmt)], sort_keys=True,
                                      default=str))
            self.step_model = compile_model(self.step_model)
            evaluated = self.regime.epochs * self.data.val_size
            if evaluated >= training.EVAL_COMPILE_MIN_IMAGES and self.ranks.world_size == 1:  # shards vary in shape
                self.eval_step_model = compile_model(self.ema.module) if self.ema is not None else self.step_model
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=regime.label_smoothing)

    @property
    def eval_model(self) -> torch.nn.Module:
        """The model evaluated (uncompiled): the EMA of the weights when the regime keeps one."""
        return self.ema.module if self.ema is not None else self.model

    # ----- resume ---------------------------------------------------------------------------
    def resume(self, checkpoint: str | Path | dict) -> None:
        """Continue from a checkpoint (a directory, file or loaded dict) of the same spec and regime."""
        state = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        check_same_run(state.get("config") or {}, self.cfg, checkpoint)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.history = [EpochReport.from_dict(h) for h in state["history"]]
        self.train_time, self.epoch = state["train_time"], state["epoch"]
        torch.set_rng_state(state["rng"]["torch"])

    def peak_memory(self) -> int | None:
        """Peak training memory in bytes, as ``scaling.timing.PeakMemory`` defines it (the data set
        not included); None where it cannot be read."""
        return self.memory.peak()

    # ----- one epoch ------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> EpochReport:
        """Train epoch ``epoch`` (0-based) and evaluate; returns its metrics, also added to the
        history. A loss that is not finite ends the trial: status "diverged", no evaluation."""
        train_loss, steps, epoch_time, first_step = self._train_steps(epoch)
        warmup = warmup_seconds(first_step, steps, epoch_time)
        self.phases.add("warmup", warmup)
        self.phases.add("train", epoch_time - warmup)
        self._agree_on_buffers()
        self.train_time += epoch_time
        self.epoch = epoch + 1
        timed_steps, timed_time = (steps - 1, epoch_time - first_step) if first_step and steps > 1 else \
            (steps, epoch_time)
        metrics = EpochReport(**self.base, **self.static, epoch=epoch + 1, train_loss=train_loss,
                              compile_time_s=first_step if self.cfg.compile else 0.0,
                              lr=self.opt.param_groups[0]["lr"], epoch_time_s=epoch_time, time_s=self.train_time,
                              peak_memory_bytes=self.peak_memory(),
                              bad_files_skipped=len(self.data.skipped) if getattr(self.data, "skipped", None) else None)
        if not math.isfinite(train_loss):
            self.status = metrics.status = "diverged"
        else:
            last = self.epoch == self.regime.epochs
            with self.phases("eval"):
                # one batch shape on CUDA too: the odd last batch would run cuDNN's autotuning again
                val = evaluate(self.eval_step_model, self.data, max(self.batch, 256), self.device, self.autocast,
                               self.fmt, fixed_shape=self.cuda or self.eval_step_model is not self.eval_model,
                               ranks=self.ranks)
            metrics = dataclasses.replace(metrics, **val, observed_images_per_s=timed_steps * self.batch / timed_time,
                                          status="done" if last else "running")
        self.history.append(metrics)
        return metrics

    def _train_steps(self, epoch: int) -> tuple[float, int, float, float]:
        """(mean training loss, steps, seconds, seconds of the run's first step if this epoch took
        it, else 0) of one epoch's optimiser steps. The data order, augmentation and dropout are
        seeded from (seed, epoch); the loss is checked for NaN every ``NAN_CHECK_EVERY`` steps (the
        loss is then NaN) and read once at the end. The run's first step, which compiles (and runs
        cuDNN's algorithm search and lazy set-up), is waited for and timed apart."""
        gen = seed_epoch(self.cfg.seed, epoch)
        self.ranks.seed_masks(torch.initial_seed())
        self.step_model.train()
        total = torch.zeros((), device=self.device)
        steps, first_step = 0, 0.0
        sync(self.device)
        t0 = time.perf_counter()
        if self.cfg.fail_at_epoch == epoch + 1:
            raise RuntimeError(f"injected failure at epoch {epoch + 1} (fail_at_epoch)")
        shard = {"shard": self.ranks.shard} if self.ranks.world_size > 1 else {}
        batches = self.data.train_batches(self.batch, gen, self.steps_per_epoch, **shard)
        if self.progress is not None:
            batches = self.progress(batches, total=self.steps_per_epoch,
                                    desc=f"epoch {epoch + 1}/{self.regime.epochs}")
        for x, y in batches:
            x = x.contiguous(memory_format=self.fmt)
            with self.autocast():
                loss = self.loss_fn(self.step_model(x), y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sched.step()
            if self.ema is not None:
                self.ema.update(self.model)
            total += loss.detach()
            steps += 1
            if not self.warm:
                sync(self.device)
                first_step, self.warm = time.perf_counter() - t0, True
                self.first_step_at = time.time()
            if steps % NAN_CHECK_EVERY == 0 and not self.ranks.all_finite(total):
                break
        sync(self.device)
        epoch_time = time.perf_counter() - t0
        if self.progress is not None:
            batches.close()
        return self.ranks.mean(total / max(steps, 1)).item(), steps, epoch_time, first_step

    def stamp(self, metrics: EpochReport) -> EpochReport:
        """``metrics`` as reported now: with the phases so far, the CPU seconds, when the run's first
        step ended (on the epoch that took it) and when it is sent (also kept in the history)."""
        first = {"first_step_at": self.first_step_at} if self.first_step_at else {}
        self.first_step_at = None  # reported once
        stamped = dataclasses.replace(metrics, **self.phases.record().to_dict(), **first,
                                      cpu_time_s=self.phases.cpu_time_s(), reported_at=time.time())
        if self.history and self.history[-1] is metrics:
            self.history[-1] = stamped
        return stamped

    def _agree_on_buffers(self) -> None:
        """Several workers: average batch-norm running statistics (the model's and the EMA's)
        over them, so every rank evaluates and checkpoints the same model."""
        self.ranks.average_buffers_(self.model)
        if self.ema is not None:
            self.ranks.average_buffers_(self.ema.module)

    def say(self, line: str) -> None:
        """Print a progress line when the trial is verbose."""
        if self.cfg.verbose:
            print(line, flush=True)

    # ----- checkpoint state -----------------------------------------------------------------
    def checkpoint_due(self) -> bool:
        """Whether the epoch just trained ends with a checkpoint: the last epoch always does;
        otherwise ``checkpoint_interval_s`` or more since the last checkpoint (or the start), or,
        when ``checkpoint_every`` is given, every that many epochs (none at all when it is 0)."""
        every, last = self.cfg.checkpoint_every, self.epoch == self.regime.epochs
        if every is not None:
            return bool(every) and (self.epoch % every == 0 or last)
        return last or _clock() - self.last_checkpoint >= self.cfg.checkpoint_interval_s

    def state(self) -> dict:
        """Everything a resumed run needs to continue exactly: weights, optimiser, schedule, EMA,
        scaler, epochs done, history, training time, RNG state, and the config (checked on resume)."""
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "ema": self.ema.state_dict() if self.ema is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "epoch": self.epoch, "history": [h.to_dict() for h in self.history], "train_time": self.train_time,
                "rng": {"torch": torch.get_rng_state()}, "config": self.cfg.to_dict()}

    # ----- final metrics --------------------------------------------------------------------
    def final_metrics(self) -> TrialResult:
        """The trial's result: status, final and best top-1/top-5 (percent), losses, training time
        (s, compilation included), compile time (s), mean observed images/s, peak memory (bytes),
        complexity, the effective spec, and the per-epoch history. A trial times no inference:
        a network's latency and throughput are its cost (experiments.train.costs), measured apart."""
        result = TrialResult.summarise(self.history, status=self.status, **self.base, **self.static,
                                       epochs=self.regime.epochs, lr=self.regime.lr, spec=self.spec.to_dict(),
                                       history=list(self.history))
        return dataclasses.replace(result, train_time_s=self.train_time, peak_memory_bytes=self.peak_memory())


def warmup_seconds(first_step: float, steps: int, epoch_time: float) -> float:
    """The warm-up phase of an epoch that took the run's first step (``first_step`` seconds, 0 if
    it did not): what that step took beyond an ordinary step of the epoch (compilation, cuDNN's
    algorithm search, lazy set-up). The step itself trains like the others, so its ordinary part is
    training time. With one step in the epoch there is nothing to compare it with: all of it."""
    if not first_step:
        return 0.0
    if steps < 2:
        return first_step
    ordinary = (epoch_time - first_step) / (steps - 1)
    return min(first_step, max(0.0, first_step - ordinary))


def _clock() -> float:
    """Seconds on a monotonic clock (what checkpoint intervals are measured with)."""
    return time.monotonic()


def _epoch_line(m: dict, epochs: int) -> str:
    """The verbose progress line of an evaluated epoch."""
    return (f"epoch {m['epoch']:>3}/{epochs}  loss {m['train_loss']:.4f}  val loss {m['val_loss']:.4f}  "
            f"top-1 {m['val_top1']:5.2f}%  top-5 {m['val_top5']:5.2f}%  lr {m['lr']:.4g}  "
            f"{m['observed_images_per_s']:.0f} img/s  {m['epoch_time_s']:.1f}s"
            + (f" (compiling {m['compile_time_s']:.1f}s)" if m.get("compile_time_s") else ""))
