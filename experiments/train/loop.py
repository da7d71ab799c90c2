"""The parts of a training loop that trainer.py puts together into a trial.

An EMA of the weights, the weight-decay parameter groups, the batch-size rule for small data,
per-epoch seeding, evaluation (loss, top-1, top-5), and compiling a model.
"""
from __future__ import annotations

import copy
import math
import os
import random

import torch
import torch.nn.functional as F

from scaling.errors import ArchScaleError

from .regimes import Regime

#: Normalisation layers, whose parameters "all_but_bn" and "weights" leave undecayed.
NORM_LAYERS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)


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


def param_groups(model: torch.nn.Module, weight_decay: float, weight_decay_on: str = "all_but_bn") -> list[dict]:
    """SGD parameter groups: (decayed, not decayed) by ``weight_decay_on`` (``regimes.WEIGHT_DECAY_ON``).

    "all": every parameter (torchvision's reference recipe); "all_but_bn": every parameter but the
    batch norms' scale and shift (tensorflow/tpu resnet_main.py skips the variables named
    'batch_normalization', so biases, e.g. the SE convs' and the classifier's, decay); "weights":
    conv and linear weights only (no norm parameters, no biases).
    """
    norm = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False)}
    decays = {"all": lambda p: True, "all_but_bn": lambda p: id(p) not in norm,
              "weights": lambda p: p.ndim > 1 and id(p) not in norm}[weight_decay_on]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if decays(p) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def seed_epoch(seed: int, epoch: int) -> torch.Generator:
    """Seed torch and Python for epoch ``epoch`` of a run with ``seed``; returns the epoch's data
    generator (shuffling and augmentation). A resumed run draws what an unbroken one would."""
    s = (seed * 1_000_003 + epoch * 7919) % (2**63)
    torch.manual_seed(s)
    random.seed(s)
    return torch.Generator().manual_seed(s + 1)


def _topk(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == y[:, None]).any(1).sum()


@torch.no_grad()
def evaluate(model, data, batch_size: int, device, autocast, memory_format=torch.contiguous_format,
             fixed_shape: bool = False, ranks=None) -> dict:
    """Validation loss (plain cross-entropy), top-1 and top-5 in percent.

    ``fixed_shape``: the model sees one batch shape only (for a compiled model, which would compile
    again for the last, smaller batch): that batch is padded with copies of its first image, whose
    outputs are dropped. Evaluation runs in eval mode, so the padding changes no other output.
    With ``ranks`` (an experiments.train.ranks.RankContext of several workers) each worker scores
    its shard of the validation set and the sums are added up over workers.
    """
    model.eval()
    if ranks is not None and ranks.world_size > 1:
        return _evaluate_sharded(model, data, batch_size, device, autocast, ranks, memory_format)
    loss = torch.zeros((), device=device)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    if fixed_shape:
        batch_size = min(batch_size, data.val_size)
    for x, y in data.val_batches(batch_size):
        x = x.contiguous(memory_format=memory_format)
        pad = batch_size - len(y) if fixed_shape else 0
        if pad:
            x = torch.cat([x, x[:1].expand(pad, *x.shape[1:])]).contiguous(memory_format=memory_format)
        with autocast():
            out = model(x)
        out = out[:len(y)].float()
        loss += F.cross_entropy(out, y, reduction="sum")
        top1 += _topk(out, y, 1)
        top5 += _topk(out, y, 5)
        n += len(y)
    return {"val_loss": loss.item() / n, "val_top1": 100.0 * top1.item() / n, "val_top5": 100.0 * top5.item() / n}


def _evaluate_sharded(model, data, batch_size: int, device, autocast, ranks, memory_format) -> dict:
    """``evaluate`` over this worker's shard, the sums (loss, top-1, top-5, images) added up over workers."""
    sums = torch.zeros(4, device=device, dtype=torch.float64)
    for x, y in data.val_batches(batch_size, shard=ranks.shard):
        x = x.contiguous(memory_format=memory_format)
        with autocast():
            out = model(x)
        out = out.float()
        sums += torch.stack([F.cross_entropy(out, y, reduction="sum").double(), _topk(out, y, 1).double(),
                             _topk(out, y, 5).double(), torch.tensor(float(len(y)), device=device,
                                                                     dtype=torch.float64)])
    loss, top1, top5, n = ranks.sum_(sums).tolist()
    return {"val_loss": loss / n, "val_top1": 100.0 * top1 / n, "val_top5": 100.0 * top5 / n}


def effective_batch_size(regime: Regime, train_size: int) -> int:
    """The regime's batch, capped for small data at 1/16 of the training set (at least 16 steps an
    epoch), rounded down to a power of two, and never below 2 (batch norm cannot normalise one
    image); the learning rate follows it (linear scaling rule). Fewer than 2 training images:
    ArchScaleError."""
    if train_size < 2:
        raise ArchScaleError("dataset", f"{train_size} training image{'' if train_size == 1 else 's'}: a batch "
                                        f"needs at least 2 (batch norm cannot normalise one); add images")
    cap = max(train_size // 16, 2)
    if regime.batch_size <= cap:
        return regime.batch_size
    return 2 ** int(math.log2(cap))


def batch_cut_note(regime: Regime, train_size: int) -> str | None:
    """One line saying that ``effective_batch_size`` cut the regime's batch, and what the learning
    rate became; None when the batch stands."""
    batch = effective_batch_size(regime, train_size)
    if batch == regime.batch_size:
        return None
    return (f"note: {regime.name}'s batch {regime.batch_size} cut to {batch} for {train_size} training images (at "
            f"most 1/16 of them, a power of two); lr follows it: {regime.lr:g} -> "
            f"{regime.replace(batch_size=batch).lr:g}")


def split_batch(batch: int, workers: int, field: str, whose: str = "the") -> int:
    """Images per worker of a global ``batch`` split over ``workers``; ArchScaleError(field) when
    it does not split evenly or leaves a worker one image (``whose``: the batch's owner in the
    message, e.g. "regime rs-10's")."""
    if batch % workers:
        raise ArchScaleError(field, f"{whose} global batch of {batch} does not split over {workers} workers; "
                                    f"use a worker count that divides it")
    if workers > 1 and batch // workers < 2:
        most = batch // 2
        raise ArchScaleError(field, f"{whose} global batch of {batch} gives each of {workers} workers one image, "
                                    f"and batch norm cannot normalise one; use at most {most} "
                                    f"worker{'' if most == 1 else 's'}")
    return batch // workers


#: Evaluation compiles the model too when a trial evaluates at least this many images (validation
#: images x epochs). Ours, an estimate: compiling a ResNet-50 for inference takes tens of seconds,
#: and compiled inference on a GPU is about 1.2-1.5x as fast as eager, so it pays for itself after
#: roughly a million images (20 ImageNet or 100 CIFAR validation passes).
EVAL_COMPILE_MIN_IMAGES = 1_000_000


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile(model)`` with the backend ARCHSCALE_COMPILE_BACKEND names (default inductor;
    eager or aot_eager check dynamo's capture without code generation: tests, CPUs without a C++
    compiler). Compilation happens at the first call, not here."""
    return torch.compile(model, backend=os.environ.get("ARCHSCALE_COMPILE_BACKEND") or "inductor")


#: What this process's compiled graphs are of (see ``fresh_compiler``), or None.
_COMPILED_FOR: list = [None]


def fresh_compiler(network: str | None = None) -> bool:
    """Forget every compiled graph of this process (``torch._dynamo.reset``), unless they are of
    ``network`` (what identifies the trial's network and shapes, e.g. its ArchSpec and batch as
    JSON); returns whether it reset.

    A trial calls it before compiling: a Ray actor that runs trial after trial (reuse_actors)
    would otherwise keep each earlier network's graphs on the same ``forward`` code, and from the
    9th architecture on dynamo's recompile limit makes it run uncompiled, with only a log warning.
    The graphs of another network are of no use to this one; those of the same network (the next
    seed, which a sweep runs back to back) are reused as they are: dynamo guards on the parameters
    as inputs, not on the module object, so a fresh model of the same network compiles nothing.
    """
    if network is not None and _COMPILED_FOR[0] == network:
        return False
    torch._dynamo.reset()
    _COMPILED_FOR[0] = network
    return True
