"""Where a process sits in a data-parallel trial, and the few collective steps the trainer takes.

A trial on N workers (experiments.sweep.data_parallel launches them through Ray Train) runs the
same ``train_trial`` in every worker; ``RankContext`` tells it which worker it is. Ray Train sets
up the process group (NCCL on GPUs, gloo on CPUs); this module wraps the model in torch's
DistributedDataParallel and takes the few collective steps, with torch alone:

- Batches: the global batch is the regime's; each worker takes its contiguous 1/N of every
  global batch (``experiments.data.shards.shard_bounds``), so N workers see exactly the
  images one worker would.
- Gradients: DDP averages them, which makes the update the one of the global batch.
- Batch norm: each worker normalises with its own batch's statistics (as ResNet-RS did on TPU:
  the official ``tf.layers.batch_normalization`` under TPUEstimator is per replica, and TF Model
  Garden's ResNet-RS configs say ``use_sync_bn: false``), or with the whole global batch's when
  the trial asks for ``sync_bn`` (torch's SyncBatchNorm on GPUs; ``CpuSyncBatchNorm`` on CPUs,
  where torch's has no kernel). The running statistics are averaged over workers before every
  evaluation and checkpoint (``average_buffers_``), so every rank evaluates the same model.
- EMA: the weights are identical on every rank after each step (DDP), so is their EMA; its
  batch-norm buffers are averaged with the model's.
- Dropout and stochastic depth: every rank draws its own masks for its own images, from a seed
  of (seed, epoch, rank), so a resumed trial draws what an unbroken one would; rank 0 draws
  what a one-worker trial draws.
- Evaluation: each rank scores its 1/N of the validation set, and the sums are added up.

``SINGLE`` is the one-worker context: every method is the identity, so a one-worker trial runs
the code it always ran. This module imports no Ray.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

#: Ranks other than 0 draw dropout and stochastic-depth masks from the epoch seed plus rank x this.
RANK_SEED_STRIDE = 104_729


@dataclass(frozen=True)
class RankContext:
    """This worker's rank among ``world_size`` workers of one trial.

    ``device_share``: the part of an accelerator each worker holds (0.5 for half a GPU; 1 for a
    whole GPU or a CPU worker), so a trial's ``devices`` is ``world_size * device_share``.
    """

    rank: int = 0
    world_size: int = 1
    device_share: float = 1.0

    @property
    def is_main(self) -> bool:
        """Rank 0 reports, checkpoints and measures inference."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, world size), the form data sets take."""
        return self.rank, self.world_size

    @property
    def devices(self) -> float:
        """The devices the whole trial trains on."""
        return self.world_size * self.device_share

    def worker_batch(self, global_batch: int) -> int:
        """Images per worker of a ``global_batch``; it must split evenly."""
        from .loop import split_batch

        return split_batch(global_batch, self.world_size, "resources.workers")

    # ----- the model --------------------------------------------------------------------------
    def sync_norm(self, model: nn.Module, sync_bn: bool) -> nn.Module:
        """``model`` with batch norm synchronised over the workers when ``sync_bn`` (and there is
        more than one); the layers keep their names and state."""
        if not sync_bn or self.world_size == 1:
            return model
        if next(model.parameters()).device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return CpuSyncBatchNorm.convert(model)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module a training step calls: torch's DistributedDataParallel over the process group
        Ray Train set up, for several workers (as ``ray.train.torch.prepare_model`` wraps it: on
        the model's GPU, or on the CPU with gloo; batch-norm buffers stay per worker until
        ``average_buffers_``), ``model`` itself for one."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        ids = {"device_ids": [device], "output_device": device} if device.type == "cuda" else {}
        return DistributedDataParallel(model, **ids, **_rank_local_buffers())

    # ----- collectives ------------------------------------------------------------------------
    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over workers, in place; returns ``t``."""
        if self.world_size > 1:
            torch.distributed.all_reduce(t)
        return t

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over workers (a new tensor for several, ``t`` for one)."""
        if self.world_size == 1:
            return t
        return self.sum_(t.detach().clone()) / self.world_size

    def all_finite(self, t: torch.Tensor) -> bool:
        """Whether ``t`` is finite on every worker (all ranks get the same answer, so they stop
        together: a rank that stopped alone would leave the others waiting in DDP)."""
        return bool(torch.isfinite(self.sum_(t.detach().clone()) if self.world_size > 1 else t).all())

    @torch.no_grad()
    def average_buffers_(self, module: nn.Module) -> None:
        """Average ``module``'s floating-point buffers (batch-norm running statistics) over the
        workers, in place."""
        if self.world_size == 1:
            return
        buffers = [b for b in module.buffers() if b.dtype.is_floating_point]
        if buffers:
            flat = torch.cat([b.reshape(-1) for b in buffers])
            self.sum_(flat).div_(self.world_size)
            torch._foreach_copy_(buffers, list(flat.split([b.numel() for b in buffers])))

    def seed_masks(self, epoch_seed: int) -> None:
        """Seed torch's global generator (dropout, stochastic depth) for this rank from the
        epoch's seed; rank 0 keeps the seed a one-worker trial uses."""
        if self.rank:
            torch.manual_seed((epoch_seed + self.rank * RANK_SEED_STRIDE) % 2**63)


SINGLE = RankContext()


def _rank_local_buffers() -> dict:
    """DDP's keyword that leaves buffers alone in forward (newer torch renames broadcast_buffers)."""
    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


class _SumOverWorkers(torch.autograd.Function):
    """All-reduce (sum) with its gradient: the sum over workers of the output's gradients."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        torch.distributed.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverWorkers.apply(grad)


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole global batch, on CPU workers
    (gloo), where ``nn.SyncBatchNorm`` has no kernel. Two all-reduces per layer and step (the sum,
    then the squared deviations from the global mean), differentiable; in eval mode it is plain
    batch norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not torch.distributed.is_initialized():
            return super().forward(x)
        all_reduce = _SumOverWorkers.apply
        c = x.shape[1]
        count = all_reduce(x.new_tensor([x.numel() / c]))
        mean = all_reduce(x.sum((0, 2, 3))) / count
        centred = x - mean.view(1, c, 1, 1)
        var = all_reduce(centred.pow(2).sum((0, 2, 3))) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / (count - 1).clamp_min(1), m)
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        return y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1) if self.affine else y

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with every BatchNorm2d replaced by this class (same parameters and buffers)."""
        if isinstance(module, nn.BatchNorm2d) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            sync.load_state_dict(module.state_dict())
            if module.affine:
                sync.weight, sync.bias = module.weight, module.bias
            sync.train(module.training)
            return sync
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module

