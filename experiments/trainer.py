"""train_trial: train one ArchSpec under one regime on one data set with one seed.

The trial reports once per epoch through a callback, ``report(metrics, checkpoint_dir)``, which is
where the sweep plugs Ray Tune in; ``checkpoint_dir`` is a directory holding ``state.pt`` on the
epochs a checkpoint is due, else None.

Determinism: every epoch reseeds the global and data generators from (seed, epoch), so a run
resumed from a checkpoint draws the same dropout masks, shuffles and augmentations as one that
never stopped; on CPU the same seed gives identical metrics, resumed or not.

Speed: on CUDA, bf16 autocast (fp16 with a grad scaler where bf16 is missing), channels-last and
optional ``torch.compile``; in-memory data sets live on the device; the loss is checked for NaN
every 50 steps and at the end of the epoch, so the loop never waits on the host otherwise.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from scaling import ArchScaleError, ArchSpec, build_model, complexity, get_preset, spec_from_dict
from scaling.device import device_name, resolve_device, sync
from scaling.files import atomic_write
from scaling.timing import peak_rss_bytes, reset_peak_rss, time_inference

from .datasets import DatasetConfig, dataset_from, load_dataset
from .regimes import Regime, regime_from

NAN_CHECK_EVERY = 50
STATE_FILE = "state.pt"


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
    #: Write a checkpoint every N epochs (0 = never); the last epoch always gets one when N > 0.
    checkpoint_every: int = 1
    #: Cap on training steps per epoch (tests and benchmarks); None = the whole data set.
    max_steps_per_epoch: int | None = None
    #: Time batch-1 latency and inference throughput of the trained model at the end.
    measure_inference: bool = True
    #: Fault injection for testing failure handling: raise RuntimeError during this epoch.
    fail_at_epoch: int | None = None
    #: Print one line per epoch.
    verbose: bool = False

    def __post_init__(self):
        for key, low, optional in (("seed", 0, False), ("cpus", 1, True), ("checkpoint_every", 0, False),
                                   ("max_steps_per_epoch", 1, True), ("fail_at_epoch", 1, True)):
            v = getattr(self, key)
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ArchScaleError(f"trial.{key}", f"must be a whole number >= {low}"
                                                     f"{' (or left out)' if optional else ''}, got {v!r}")

    @classmethod
    def from_dict(cls, d: dict | "TrialConfig") -> "TrialConfig":
        if isinstance(d, TrialConfig):
            return d
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ArchScaleError(f"trial.{key}", f"unknown trial field; known: {', '.join(sorted(known))}")
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


class Ema:
    """Exponential moving average of a model's parameters and buffers.

    Decay warms up as min(decay, (1 + step) / (10 + step)) (TensorFlow's ExponentialMovingAverage
    with num_updates), so short runs are not dominated by the initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.steps = decay, 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs = None

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        if self._pairs is None:
            ema_p = list(self.module.parameters())
            src_p = list(model.parameters())
            ema_b = [b for b in self.module.buffers() if b.dtype.is_floating_point]
            src_b = [b for b in model.buffers() if b.dtype.is_floating_point]
            self._pairs = (ema_p + ema_b, src_p + src_b)
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        self.steps += 1
        torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - d)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.steps = state["steps"]


def param_groups(model: torch.nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """Weight decay on conv/linear weights only (ResNet-RS), or on everything (classic)."""
    if decay_norm_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _seed_epoch(seed: int, epoch: int) -> torch.Generator:
    s = (seed * 1_000_003 + epoch * 7919) % (2**63)
    torch.manual_seed(s)
    random.seed(s)
    return torch.Generator().manual_seed(s + 1)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by train_trial (a directory holding state.pt, or the file itself)."""
    p = Path(path)
    p = p / STATE_FILE if p.is_dir() else p
    if not p.is_file():
        raise ArchScaleError("resume", f"no checkpoint at {path} (expected {STATE_FILE})")
    return torch.load(p, map_location="cpu", weights_only=True)


def _check_same_run(saved: dict, cfg: "TrialConfig", where) -> None:
    """A checkpoint resumes only the network and regime it was written for."""
    now = cfg.to_dict()
    for key in ("spec", "regime"):
        if key in saved and saved[key] != now[key]:
            diff = sorted(k for k in set(saved[key]) | set(now[key]) if saved[key].get(k) != now[key].get(k))
            src = "the checkpoint" if isinstance(where, dict) else f"the checkpoint at {where}"
            raise ArchScaleError("resume", f"{src} was written for another {key} (differs in {', '.join(diff)}); "
                                           f"use another checkpoint directory, or drop --resume to start over")


def _topk(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == y[:, None]).any(1).sum()


@torch.no_grad()
def evaluate(model, data, batch_size: int, device, autocast) -> dict:
    """Validation loss (plain cross-entropy), top-1 and top-5 in percent."""
    model.eval()
    loss = torch.zeros((), device=device)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in data.val_batches(batch_size):
        with autocast():
            out = model(x)
        out = out.float()
        loss += F.cross_entropy(out, y, reduction="sum")
        top1 += _topk(out, y, 1)
        top5 += _topk(out, y, 5)
        n += len(y)
    return {"val_loss": loss.item() / n, "val_top1": 100.0 * top1.item() / n, "val_top5": 100.0 * top5.item() / n}


def effective_batch_size(regime: Regime, train_size: int) -> int:
    """The regime's batch, capped for small data at 1/16 of the training set (at least 16 steps an
    epoch), rounded down to a power of two; the learning rate follows it (linear scaling rule)."""
    cap = max(train_size // 16, 1)
    if regime.batch_size <= cap:
        return regime.batch_size
    return 2 ** int(math.log2(cap))


def train_trial(config: dict | TrialConfig, report: Callable[[dict, str | None], None] | None = None, *,
                checkpoint_dir: str | Path | None = None, resume: str | Path | dict | None = None) -> dict:
    """Train one trial; return its final metrics (see the module docstring for the callback).

    ``checkpoint_dir``: where standalone runs keep their checkpoint (written atomically); without
    it, checkpoints go to fresh temporary directories handed to ``report`` (Ray Tune copies them).
    ``resume``: a checkpoint (directory, file or loaded dict) to continue from.
    Returns a dict with status "done" or "diverged", per-epoch ``history``, best and final top-1,
    training time, peak memory, the device and the model's complexity record.
    """
    cfg = TrialConfig.from_dict(config)
    device = resolve_device(cfg.device)
    if cfg.cpus:
        torch.set_num_threads(int(cfg.cpus))
    cuda = device.type == "cuda"
    amp = cuda if cfg.amp is None else cfg.amp
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    amp_dtype = torch.bfloat16 if (not cuda or torch.cuda.is_bf16_supported()) else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp)

    regime = cfg.regime
    data = load_dataset(cfg.dataset, cfg.spec.resolution, cfg.spec.in_channels, cfg.seed,
                        workers=cfg.cpus or 2).to(device)
    reg = regime.regularization(cfg.spec)
    spec = cfg.spec.replace(num_classes=data.num_classes, dropout=reg["dropout"],
                            stochastic_depth=reg["stochastic_depth"])
    data.set_randaugment(reg["randaugment_layers"], reg["randaugment_magnitude"])
    batch = effective_batch_size(regime, data.train_size)
    if batch != regime.batch_size:
        regime = regime.replace(batch_size=batch)
    steps_per_epoch = data.train_size // batch
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)

    torch.manual_seed(cfg.seed)
    model = build_model(spec).to(device, memory_format=fmt)
    cx = complexity(spec, counter="analytic")
    opt = torch.optim.SGD(param_groups(model, regime.weight_decay, regime.decay_norm_and_bias), lr=regime.lr,
                          momentum=regime.momentum, nesterov=regime.nesterov)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: regime.lr_at(step, steps_per_epoch) / regime.lr)
    ema = Ema(model, regime.ema_decay) if regime.ema_decay > 0 else None
    step_model = torch.compile(model) if cfg.compile else model

    history: list[dict] = []
    train_time, start_epoch = 0.0, 0
    if resume is not None:
        state = resume if isinstance(resume, dict) else load_checkpoint(resume)
        _check_same_run(state.get("config") or {}, cfg, resume)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, train_time, start_epoch = state["history"], state["train_time"], state["epoch"]
        torch.set_rng_state(state["rng"]["torch"])
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()
    base = {"name": cfg.name or spec.slug(), "regime": regime.name, "dataset": data.name, "seed": cfg.seed}
    static = {"device": device_name(device), "params": cx.params, "flops": cx.flops, "activations": cx.activations,
              "batch_size": batch, "lr_peak": regime.lr, "epochs_planned": regime.epochs,
              **{f"effective_{k}": v for k, v in reg.items()}}

    def peak_memory():
        return torch.cuda.max_memory_allocated(device) if cuda else peak_rss_bytes()

    def inference(final: bool) -> dict:
        if not (final and cfg.measure_inference):
            return {}
        eval_model = ema.module if ema is not None else model
        shape = (spec.in_channels, spec.resolution, spec.resolution)
        lat, tput = time_inference(eval_model, shape, device, min(batch, 256), 2, 5, autocast, fmt)
        return {"latency_ms": lat, "throughput": tput}

    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=regime.label_smoothing)
    status = "done"
    for epoch in range(start_epoch, regime.epochs):
        gen = _seed_epoch(cfg.seed, epoch)
        step_model.train()
        total = torch.zeros((), device=device)
        steps, finite = 0, True
        sync(device)
        t0 = time.perf_counter()
        if cfg.fail_at_epoch == epoch + 1:
            raise RuntimeError(f"injected failure at epoch {epoch + 1} (fail_at_epoch)")
        for x, y in data.train_batches(batch, gen, steps_per_epoch):
            x = x.contiguous(memory_format=fmt)
            with autocast():
                loss = loss_fn(step_model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            if ema is not None:
                ema.update(model)
            total += loss.detach()
            steps += 1
            if steps % NAN_CHECK_EVERY == 0 and not torch.isfinite(total):
                finite = False
                break
        sync(device)
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time
        train_loss = (total / max(steps, 1)).item()
        if not finite or not math.isfinite(train_loss):
            status = "diverged"
            metrics = {**base, "epoch": epoch + 1, "train_loss": train_loss, "status": status,
                       "lr": opt.param_groups[0]["lr"], "epoch_time_s": epoch_time, "time_s": train_time,
                       **static, "peak_memory_bytes": peak_memory()}
            history.append(metrics)
            if report:
                report(metrics, None)
            if cfg.verbose:
                print(f"epoch {epoch + 1}: loss is not finite ({train_loss}); stopping: diverged", flush=True)
            break
        val = evaluate(ema.module if ema is not None else model, data, max(batch, 256), device, autocast)
        last_epoch = epoch + 1 == regime.epochs
        metrics = {**base, "epoch": epoch + 1, "train_loss": train_loss, **val, "lr": opt.param_groups[0]["lr"],
                   "images_per_s": steps * batch / epoch_time, "epoch_time_s": epoch_time, "time_s": train_time,
                   "status": "done" if last_epoch else "running", **static, "peak_memory_bytes": peak_memory(),
                   **inference(last_epoch)}
        history.append(metrics)
        ckpt = None
        due = (checkpoint_dir is not None or report is not None) and cfg.checkpoint_every and (
            (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == regime.epochs)
        if due:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "ema": ema.state_dict() if ema is not None else None,
                     "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                     "epoch": epoch + 1, "history": history, "train_time": train_time,
                     "rng": {"torch": torch.get_rng_state()}, "config": cfg.to_dict()}
            ckpt = str(checkpoint_dir) if checkpoint_dir else tempfile.mkdtemp(prefix="archscale-ckpt-")
            atomic_write(Path(ckpt) / STATE_FILE, lambda tmp: torch.save(state, tmp))
        if cfg.verbose:
            print(f"epoch {epoch + 1:>3}/{regime.epochs}  loss {train_loss:.4f}  val loss {val['val_loss']:.4f}  "
                  f"top-1 {val['val_top1']:5.2f}%  top-5 {val['val_top5']:5.2f}%  lr {metrics['lr']:.4g}  "
                  f"{metrics['images_per_s']:.0f} img/s  {epoch_time:.1f}s", flush=True)
        if report:
            try:
                report(metrics, ckpt)
            finally:  # the reporter (Ray Tune) has copied what it keeps of a temporary checkpoint
                if ckpt and not checkpoint_dir:
                    shutil.rmtree(ckpt, ignore_errors=True)
    evals = [h for h in history if "val_top1" in h]
    last = evals[-1] if evals else {}
    timing = {k: last[k] for k in ("latency_ms", "throughput") if k in last}
    if status == "done" and not timing:  # resumed after the last epoch, or a run without report
        timing = inference(True)
    return {
        **base, "status": status, "epochs": regime.epochs, "epochs_done": len(evals),
        "final_top1": last.get("val_top1", float("nan")), "final_top5": last.get("val_top5", float("nan")),
        "best_top1": max((h["val_top1"] for h in evals), default=float("nan")),
        "best_top5": max((h["val_top5"] for h in evals), default=float("nan")),
        "final_val_loss": last.get("val_loss", float("nan")),
        "final_train_loss": history[-1]["train_loss"] if history else float("nan"),
        "train_time_s": train_time,
        "images_per_s": (sum(h.get("images_per_s", 0) for h in evals) / len(evals)) if evals else float("nan"),
        **static, "peak_memory_bytes": peak_memory(), **timing, "lr": regime.lr,
        "spec": spec.to_dict(), "history": history,
    }
