"""The parts of a training loop that trainer.py puts together into a trial.

An EMA of the weights, the weight-decay parameter groups, the batch-size rule for small data,
per-epoch seeding, and evaluation (loss, top-1, top-5).
"""
from __future__ import annotations

import copy
import math
import random

import torch
import torch.nn.functional as F

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
