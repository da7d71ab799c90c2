"""A guard that records everything that would make the host wait for the device, on any device.

On CUDA the host waits when it reads a value (``.item()``, ``bool(t)``, ``.tolist()``), when an
op's output size depends on data (``nonzero``, boolean-mask indexing, ``unique``), and when it
copies host memory to the device without ``non_blocking`` (a pageable copy synchronises). On CPU
none of these waits, so the guard watches the calls themselves: a TorchDispatchMode sees every
aten op (whatever Python API reached it), and ``Tensor.to``/``cuda``/``cpu``/``numpy`` are wrapped
to catch device copies that are no-ops on CPU but blocking copies on a GPU.
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: aten ops whose result the host must read, or whose output shape depends on tensor values.
SYNC_OPS = {"_local_scalar_dense", "nonzero", "nonzero_static", "masked_select", "_unique", "_unique2",
            "unique_dim", "unique_consecutive", "is_nonzero", "equal", "_assert_async"}


def _device_arg(args, kwargs) -> bool:
    if "device" in kwargs or "other" in kwargs:
        return True
    return any(isinstance(a, (torch.device, str, torch.Tensor)) for a in args)


class HostSyncGuard(TorchDispatchMode):
    """Use as a context manager; ``events`` lists what would have waited on the host."""

    def __init__(self):
        super().__init__()
        self.events: list[str] = []
        self.ops = 0  # aten ops seen: proof that the guard watched real work
        self._saved = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        name = func.overloadpacket.__name__
        if name in SYNC_OPS:
            self.events.append(f"aten.{name}")
        elif name == "index" and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i
                                     is not None):
            self.events.append("boolean-mask indexing")
        return func(*args, **kwargs)

    def __enter__(self):
        guard = self
        for method in ("to", "cuda", "cpu", "numpy", "tolist", "item"):
            original = getattr(torch.Tensor, method)
            self._saved[method] = original

            def wrapped(t, *args, _name=method, _original=original, **kwargs):
                blocking = not kwargs.get("non_blocking", False)
                if _name in ("numpy", "tolist", "item", "cpu"):
                    guard.events.append(f"Tensor.{_name}()")
                elif blocking and (_name == "cuda" or _device_arg(args, kwargs)):
                    guard.events.append(f"Tensor.{_name}(device) without non_blocking")
                return _original(t, *args, **kwargs)

            setattr(torch.Tensor, method, wrapped)
        return super().__enter__()

    def __exit__(self, *exc):
        for method, original in self._saved.items():
            setattr(torch.Tensor, method, original)
        return super().__exit__(*exc)


def guard_training_steps(data, guard: HostSyncGuard) -> None:
    """Make ``data.train_batches`` run every step after the epoch's first batch under ``guard``.

    The first ``next()`` prepares the epoch (drawing and copying its randomness once, which may
    move data); from then on the guard covers each step's forward, backward and optimiser update
    and the production of every later batch, until the epoch's batches run out."""
    original = data.train_batches

    def train_batches(*args, **kwargs):
        batches = original(*args, **kwargs)
        first = next(batches, None)
        if first is None:
            return
        with guard:
            yield first
            yield from batches

    data.train_batches = train_batches
