"""Measured cost of a network on a real device: latency, throughput, training speed, peak memory.

Every timing runs explicit warm-up calls first, which take the first-call costs (cuDNN's
algorithm search, lazy initialisation, compilation) out of the figures, then ``repeats`` timed
blocks of calls on ``torch.utils.benchmark``'s clock (it synchronises the accelerator); the
figure is the median block, and ``spread`` says how far the blocks disagree ((max - min) / median),
so a figure taken on a device that something else was using says so.

Peak memory has one definition, ``PeakMemory``, used both here and by the trial trainer: the most
memory in use while the work ran, less what was in use when the meter started. Both start it
after any data set is resident and before the model is built, so it counts the model's weights,
gradients, optimiser state (and a trial's EMA copy), activations and the batches in flight, and
leaves out the data set, the CUDA context and the loaded libraries.
"""
from __future__ import annotations

import contextlib
import logging
import math
import statistics
from dataclasses import asdict, dataclass, replace

import torch

from .device import amp_dtype, cudnn_autotune, device_name, resolve_device
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
    #: Peak memory of the training step in bytes, as ``PeakMemory`` defines it (model, gradients,
    #: optimizer state, activations): CUDA allocator peak on GPUs, resident-set growth on Linux
    #: CPUs; None where unmeasurable or when training was skipped.
    peak_memory_bytes: int | None
    dtype: str = "float32"
    channels_last: bool = False
    #: The batch of the inference throughput (``batch_size`` unless given apart).
    infer_batch_size: int | None = None
    #: Timed blocks per figure, and the largest (max - min) / median of the blocks over the figures.
    repeats: int = 1
    spread: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _on(device: torch.device):
    """Make ``device`` the current CUDA device (the timing clock synchronises the current one)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _benchmark_timer():
    """(torch.utils.benchmark.Timer, its clock, which synchronises the accelerator), imported here:
    torch.utils.benchmark loads torch's C++ extension tooling, which commands that time nothing
    need not pay for. That tooling warns "No CUDA runtime is found, using CUDA_HOME=..." when it
    finds a CUDA toolkit without a CUDA runtime; a CPU run compiles nothing, so the warning is
    kept out of its output (it still shows when a CUDA runtime exists)."""
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    if not torch.cuda.is_available():
        log.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
        from torch.utils.benchmark.utils.timer import timer as clock
    finally:
        log.setLevel(level)
    return Timer, clock


def _timed(fn, warmup: int, iters: int, repeats: int = 1, min_block_s: float = 0.0) -> tuple[float, float]:
    """(median seconds of one call of ``fn``, spread of the blocks). ``warmup`` untimed calls (at
    least one, whose time sizes the blocks), then ``repeats`` blocks, each of ``iters / repeats``
    calls (at least one) or as many as take ``min_block_s``; spread: (max - min) / median block."""
    _, clock = _benchmark_timer()  # its clock synchronises the accelerator

    once = 0.0
    for _ in range(max(warmup, 1)):
        t0 = clock()
        fn()
        once = clock() - t0
    calls = max(math.ceil(iters / repeats), math.ceil(min_block_s / once) if once > 0 else 1, 1)
    blocks = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(calls):
            fn()
        blocks.append((clock() - t0) / calls)
    median = statistics.median(blocks)
    return median, (max(blocks) - min(blocks)) / median if median > 0 else 0.0


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


class PeakMemory:
    """Peak memory that work adds on a device, in bytes: the high-water mark since ``start()`` less
    what was in use at ``start()``.

    CUDA: the caching allocator's ``max_memory_allocated`` (tensors only; not the CUDA context or
    the allocator's cached free blocks). CPU: the process's resident set (VmHWM over VmRSS, Linux
    only), a coarser figure: it also holds library code first paged in by the work (tens of MB)
    and can miss memory freed earlier and reused; None where it cannot be read.
    """

    def __init__(self, device: torch.device):
        self.device, self.base, self.ok = device, None, False

    def start(self) -> None:
        """Take what is in use now as the baseline and reset the high-water mark to it."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base, self.ok = torch.cuda.memory_allocated(self.device), True
        else:
            self.ok = reset_peak_rss()
            self.base = _rss_bytes("VmRSS")

    def reset_peak(self) -> None:
        """Reset the high-water mark to what is in use now, keeping the baseline (e.g. after a
        checkpoint was loaded and dropped)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.ok = self.ok and reset_peak_rss()

    def peak(self) -> int | None:
        """Bytes above the baseline at the high-water mark (never negative), or None."""
        if self.device.type == "cuda":
            return max(0, torch.cuda.max_memory_allocated(self.device) - self.base)
        hwm = peak_rss_bytes()
        if not self.ok or hwm is None or self.base is None:
            return None
        return max(0, hwm - self.base)  # RSS counters are approximate by a few pages


def time_inference(model: torch.nn.Module, shape: tuple, device: torch.device, batch_size: int,
                   warmup: int = 3, iters: int = 10, autocast=None, memory_format=torch.contiguous_format,
                   repeats: int = 1, min_block_s: float = 0.0) -> tuple[float, float, float]:
    """(median batch-1 latency in ms, inference images/s at ``batch_size``, the larger spread of
    the two) of ``model`` in eval mode (see ``_timed`` for ``repeats`` and ``min_block_s``)."""
    autocast = autocast or contextlib.nullcontext
    was_training = model.training
    model.eval()
    x1 = torch.randn(1, *shape, device=device).to(memory_format=memory_format)
    xb = torch.randn(batch_size, *shape, device=device).to(memory_format=memory_format)
    with torch.inference_mode(), autocast(), _on(device):
        lat, lat_spread = _timed(lambda: model(x1), warmup, iters, repeats, min_block_s)
        per_batch, tput_spread = _timed(lambda: model(xb), warmup, iters, repeats, min_block_s)
    model.train(was_training)
    return lat * 1e3, batch_size / per_batch, max(lat_spread, tput_spread)


def measure(spec: ArchSpec, device: str | torch.device | None = "auto", batch_size: int = 32,
            resolution: int | None = None, warmup: int = 3, iters: int = 10, train: bool = True,
            amp: bool | None = None, channels_last: bool | None = None, infer_batch_size: int | None = None,
            repeats: int = 5, min_block_s: float = 0.0) -> Measurement:
    """Measure ``spec`` on ``device``: batch-1 latency, inference throughput (at ``infer_batch_size``,
    default ``batch_size``), training throughput at ``batch_size``, and peak memory.

    Each timing runs ``warmup`` untimed iterations first, then ``repeats`` blocks of about
    ``iters / repeats`` calls (or as many as take ``min_block_s`` seconds) and reports the median
    block; ``spread`` is the largest (max - min) / median of the blocks over the three figures.
    On CUDA, ``amp`` (autocast in the device's ``amp_dtype``: bf16, or fp16 with a gradient
    scaler) and ``channels_last`` default to on, with cuDNN's autotuning as in training; on CPU to off.
    """
    if batch_size < 1:
        raise ArchScaleError("batch_size", f"must be positive, got {batch_size}")
    if iters < 1 or warmup < 0 or repeats < 1:
        raise ArchScaleError("iters", f"need at least 1 timed iteration and block and no negative warm-up, got "
                                      f"iters={iters}, repeats={repeats}, warmup={warmup}")
    infer_batch_size = batch_size if infer_batch_size is None else infer_batch_size
    if infer_batch_size < 1:
        raise ArchScaleError("infer_batch_size", f"must be positive, got {infer_batch_size}")
    if resolution is not None:
        spec = replace(spec, resolution=int(resolution))
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    amp = cuda if amp is None else amp
    channels_last = cuda if channels_last is None else channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dtype = amp_dtype(dev)

    def autocast():
        return torch.autocast(dev.type, dtype=dtype, enabled=amp)

    if cuda:
        torch.cuda.empty_cache()
    memory = PeakMemory(dev)
    with cudnn_autotune(), _on(dev):
        memory.start()
        model = build_model(spec).to(dev, memory_format=fmt)
        shape = (spec.in_channels, spec.resolution, spec.resolution)
        train_ips = peak = None
        train_spread = 0.0
        if train:
            step, train_spread = _time_training(model, spec, shape, dev, batch_size, fmt, autocast,
                                                amp and dtype == torch.float16, warmup, iters, repeats, min_block_s)
            train_ips = batch_size / step
            peak = memory.peak()
        lat, tput, infer_spread = time_inference(model, shape, dev, infer_batch_size, warmup, iters, autocast, fmt,
                                                 repeats, min_block_s)
    return Measurement(device=device_name(dev), batch_size=batch_size, resolution=spec.resolution,
                       latency_ms=lat, throughput=tput, train_throughput=train_ips,
                       peak_memory_bytes=peak, dtype=str(dtype).replace("torch.", "") if amp else "float32",
                       channels_last=channels_last, infer_batch_size=infer_batch_size, repeats=repeats,
                       spread=max(train_spread, infer_spread))


def _time_training(model, spec: ArchSpec, shape: tuple, dev: torch.device, batch_size: int, fmt, autocast,
                   scaled: bool, warmup: int, iters: int, repeats: int = 1, min_block_s: float = 0.0
                   ) -> tuple[float, float]:
    """(median seconds of one training step (``_step``), spread of the blocks)."""
    return _timed(_step(model, spec, shape, dev, batch_size, fmt, autocast, scaled), warmup, iters, repeats,
                  min_block_s)


def _step(model, spec: ArchSpec, shape: tuple, dev: torch.device, batch_size: int, fmt, autocast, scaled: bool):
    """One training step of ``model`` on a fixed random batch: forward, backward, SGD with momentum
    (a gradient scaler when ``scaled``, as the trainer has for fp16). A batch batch norm cannot
    train on is a user error, raised on the call."""
    model.train()
    xb = torch.randn(batch_size, *shape, device=dev).to(memory_format=fmt)
    y = torch.randint(0, spec.num_classes, (batch_size,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(dev.type, enabled=scaled)

    def step():
        opt.zero_grad(set_to_none=True)
        try:
            with autocast():
                loss = torch.nn.functional.cross_entropy(model(xb), y)
        except ValueError as e:  # batch norm in training mode over a single value per channel
            if "more than 1 value per channel" not in str(e):
                raise
            raise ArchScaleError("batch_size", f"{batch_size} is too small to train {spec.slug()} at "
                                               f"{spec.resolution} px: a batch-norm layer sees 1 value per channel "
                                               f"(a 1x1 feature map or a pooled attention branch); use 2 or more"
                                 ) from None
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def training_step(spec: ArchSpec, device: str | torch.device | None = "auto", batch_size: int = 32,
                  amp: bool | None = None, channels_last: bool | None = None):
    """A training step of ``spec`` on ``device`` as ``measure`` times it (same precision defaults),
    its model built and on the device: call it to run one step (the caller times and synchronises)."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    amp = cuda if amp is None else amp
    fmt = torch.channels_last if (cuda if channels_last is None else channels_last) else torch.contiguous_format
    dtype = amp_dtype(dev)
    model = build_model(spec).to(dev, memory_format=fmt)
    return _step(model, spec, (spec.in_channels, spec.resolution, spec.resolution), dev, batch_size, fmt,
                 lambda: torch.autocast(dev.type, dtype=dtype, enabled=amp), amp and dtype == torch.float16)
