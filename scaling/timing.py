"""Measured cost of a network on a real device: latency, throughput, training speed, peak memory."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, replace

import torch

from .device import device_name, resolve_device, sync
from .errors import ArchScaleError
from .model import build_model
from .spec import ArchSpec


@dataclass(frozen=True)
class Measurement:
    """What ``measure`` found, with the device it ran on."""

    #: Device description, e.g. "cpu (2 threads)" or "cuda:0 NVIDIA H100 80GB HBM3".
    device: str
    batch_size: int
    resolution: int
    #: Median wall time of one batch-1 forward pass, in milliseconds.
    latency_ms: float
    #: Inference images per second at ``batch_size``.
    throughput: float
    #: Training images per second at ``batch_size`` (forward, backward, SGD step); None if skipped.
    train_throughput: float | None
    #: Peak memory of the training step in bytes (model, gradients, optimizer state, activations):
    #: CUDA allocator peak on GPUs, resident-set growth on Linux CPUs; None where unmeasurable.
    peak_memory_bytes: int | None
    dtype: str = "float32"
    channels_last: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _timed(fn, device, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _rss_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process since the last reset_peak_rss() (Linux), else None."""
    return _rss_bytes("VmHWM")


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory to the current one (Linux); False if unsupported."""
    try:  # Linux: writing 5 to clear_refs resets the VmHWM peak to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def time_inference(model: torch.nn.Module, shape: tuple, device: torch.device, batch_size: int,
                   warmup: int = 3, iters: int = 10, autocast=None, memory_format=torch.contiguous_format
                   ) -> tuple[float, float]:
    """(median batch-1 latency in ms, inference images/s at ``batch_size``) of ``model`` in eval mode."""
    import contextlib

    autocast = autocast or contextlib.nullcontext
    was_training = model.training
    model.eval()
    x1 = torch.randn(1, *shape, device=device).to(memory_format=memory_format)
    xb = torch.randn(batch_size, *shape, device=device).to(memory_format=memory_format)
    with torch.inference_mode(), autocast():
        lat = statistics.median(_timed(lambda: model(x1), device, warmup, iters))
        tput = batch_size / statistics.median(_timed(lambda: model(xb), device, warmup, iters))
    model.train(was_training)
    return lat * 1e3, tput


def measure(spec: ArchSpec, device: str | torch.device | None = "auto", batch_size: int = 32,
            resolution: int | None = None, warmup: int = 3, iters: int = 10, train: bool = True,
            amp: bool | None = None, channels_last: bool | None = None) -> Measurement:
    """Measure ``spec`` on ``device``: batch-1 latency, inference and training throughput, peak memory.

    Each timing runs ``warmup`` untimed iterations first and reports the median of ``iters``.
    On CUDA, ``amp`` (bf16 autocast) and ``channels_last`` default to on; on CPU to off.
    """
    if batch_size < 1:
        raise ArchScaleError("batch_size", f"must be positive, got {batch_size}")
    if iters < 1 or warmup < 0:
        raise ArchScaleError("iters", f"need at least 1 timed iteration and no negative warm-up, got iters={iters}, "
                                      f"warmup={warmup}")
    if resolution is not None:
        spec = replace(spec, resolution=int(resolution))
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    amp = cuda if amp is None else amp
    channels_last = cuda if channels_last is None else channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16

    def autocast():
        return torch.autocast(dev.type, dtype=dtype, enabled=amp)

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        base_mem = torch.cuda.memory_allocated(dev)
    else:
        peak_ok = reset_peak_rss()
        base_mem = _rss_bytes("VmRSS")
    model = build_model(spec).to(dev, memory_format=fmt)
    shape = (spec.in_channels, spec.resolution, spec.resolution)
    xb = torch.randn(batch_size, *shape, device=dev).to(memory_format=fmt)

    train_ips = None
    if train:
        model.train()
        y = torch.randint(0, spec.num_classes, (batch_size,), device=dev)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = torch.nn.functional.cross_entropy(model(xb), y)
            loss.backward()
            opt.step()

        try:
            times = _timed(step, dev, warmup, iters)
        except ValueError as e:  # batch norm in training mode over a single value per channel
            if "more than 1 value per channel" not in str(e):
                raise
            raise ArchScaleError("batch_size", f"{batch_size} is too small to train {spec.slug()} at "
                                               f"{spec.resolution} px: a batch-norm layer sees 1 value per channel "
                                               f"(a 1x1 feature map or a pooled attention branch); use 2 or more"
                                 ) from None
        train_ips = batch_size / statistics.median(times)
    if cuda:
        peak = torch.cuda.max_memory_allocated(dev) - base_mem
    else:
        hwm = peak_rss_bytes()
        # RSS counters are approximate by a few pages: a tiny model's growth can read slightly negative
        peak = max(0, hwm - base_mem) if (peak_ok and hwm is not None and base_mem is not None and train) else None

    lat, tput = time_inference(model, shape, dev, batch_size, warmup, iters, autocast, fmt)
    return Measurement(device=device_name(dev), batch_size=batch_size, resolution=spec.resolution,
                       latency_ms=lat, throughput=tput, train_throughput=train_ips,
                       peak_memory_bytes=peak, dtype=str(dtype).replace("torch.", "") if amp else "float32",
                       channels_last=channels_last)
