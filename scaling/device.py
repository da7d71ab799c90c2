"""Which device a trial or a measurement runs on, and waiting for it.

``resolve_device`` turns a user's choice ("auto", "cpu", "cuda:1") into a ``torch.device`` (a
one-line ArchScaleError when it is unusable); ``sync`` waits for the device's queued work, so
wall-clock timings are real; ``device_name`` says what it is (GPU model, CPU threads).
"""
from __future__ import annotations

import torch

from .errors import ArchScaleError

__all__ = ["device_name", "resolve_device", "sync"]


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
