"""Which device a trial or a measurement runs on, how it computes, and waiting for it.

``resolve_device`` turns a user's choice ("auto", "cpu", "cuda:1") into a ``torch.device`` (a
one-line ArchScaleError when it is unusable); ``sync`` waits for the device's queued work, so
wall-clock timings are real; ``device_name`` says what it is (GPU model, CPU threads).
``amp_dtype`` is the mixed-precision type of a device (the trainer and ``measure`` both use it),
``cudnn_autotune`` turns cuDNN's algorithm search on for fixed-shape work, and
``peak_bf16_flops`` is a GPU's dense bf16 peak, for model-FLOPs utilisation.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from .errors import ArchScaleError

__all__ = ["amp_dtype", "cudnn_autotune", "device_name", "native_bf16", "peak_bf16_flops", "resolve_device",
           "sync"]

#: Dense bf16 tensor-core peaks (FLOP/s, a multiply-add counted as two), by device-name fragment, most
#: specific first. NVIDIA's data sheets, without sparsity: H100 and H200 SXM 989 T, H100 PCIe 756 T,
#: A100 312 T, L40S 362 T, A10G 125 T.
PEAK_BF16_FLOPS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12),
                   ("L40S", 362e12), ("A10G", 125e12))


def device_name(device: torch.device) -> str:
    """A human-readable device name, including the GPU model or the CPU thread count."""
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None picks CUDA when available, else CPU; an unusable device is a user error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ArchScaleError("device", f"{device!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ArchScaleError("device", "CUDA was asked for but no GPU is visible; use --device cpu")
    return dev


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU), so wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def native_bf16(device: torch.device) -> bool:
    """True when ``device`` computes in bf16 natively: NVIDIA GPUs of compute capability 8.0 and
    later (Ampere on), ROCm GPUs, and CPUs (whose autocast type is bf16).

    ``torch.cuda.is_bf16_supported()`` also says True on older GPUs (V100, T4) that only emulate
    bf16, slowly; this asks the device's compute capability instead.
    """
    if device.type != "cuda":
        return True
    if torch.version.hip:
        return True
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast type of ``device``: bf16 where it is native (see ``native_bf16``), else fp16,
    which needs a gradient scaler in training (``torch.amp.GradScaler``)."""
    return torch.bfloat16 if native_bf16(device) else torch.float16


@contextlib.contextmanager
def cudnn_autotune(enabled: bool = True) -> Iterator[None]:
    """Inside the block, cuDNN times its convolution algorithms once per new input shape and keeps
    the fastest (``torch.backends.cudnn.benchmark``); the previous setting comes back afterwards.
    Worth it where shapes are fixed (a trial's batch and resolution); no effect on CPU."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def peak_bf16_flops(device: torch.device) -> float | None:
    """The dense bf16 peak of ``device`` in FLOP/s (a multiply-add counted as two), or None for
    CPUs and GPUs not in ``PEAK_BF16_FLOPS``."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in PEAK_BF16_FLOPS if fragment in name), None)
