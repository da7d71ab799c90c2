"""Checkpoints written in the background, so that training does not wait for the disk.

``CheckpointWriter.start(state)`` copies a trial's state to host memory (the only part the
training thread waits for: a device-to-host copy of the weights, optimiser state and EMA) and
hands the copy to one writer thread, which saves it atomically (``scaling.files.atomic_write``),
while the next epoch trains. At most one write is in flight: a checkpoint due while the previous
one is still being written waits for it (the disk is then the bottleneck, and queueing copies
would only hold more memory).

A reporter (Ray Tune) is handed a checkpoint once its write has ended: ``take()`` returns the
folder of the write started at an earlier epoch, waiting for it if needed, and the trial passes
it with the next epoch's report (see experiments.train.trial._train). The state inside carries
its own epoch, so a trial resumed from it trains the following epochs exactly as one that never
stopped. ``close()`` waits for a write in flight, so that a run that ends or fails keeps its last
checkpoint on disk, and removes temporary folders no reporter took.
"""
from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from scaling.files import atomic_write

__all__ = ["STATE_FILE", "CheckpointWriter", "host_copy", "save_state"]

#: The file a checkpoint folder holds.
STATE_FILE = "state.pt"


def host_copy(obj):
    """``obj`` (a state dict: nested dicts, lists and tuples) with every tensor copied to the CPU, so
    that training on, which updates the weights and optimiser state in place, does not change it."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: host_copy(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(host_copy(v) for v in obj)
    return obj


def save_state(state: dict, path: str) -> None:
    """Serialise a checkpoint's state to ``path`` (what the writer thread spends its time on)."""
    torch.save(state, path)


class CheckpointWriter:
    """One trial's checkpoint writes, on a background thread (see the module docstring).

    ``directory``: the folder every checkpoint replaces (a standalone run's ``checkpoint_dir``,
    written with fsync); None: each checkpoint goes to a fresh temporary folder, for a reporter that
    copies it (Ray Tune), not synced, and removed once released (``release``) or by ``close``.
    """

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def start(self, state: dict) -> None:
        """Copy ``state`` to host memory and write it in the background (after the write in flight,
        if any, ends; its error, if it failed, is raised here)."""
        self._finish()
        snapshot = host_copy(state)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archscale-checkpoint")
        self._pending = self._pool.submit(self._write, snapshot)

    def take(self) -> str | None:
        """The folder of the checkpoint started before (waiting for its write to end), or None when
        none was started since the last take. Hand it to ``release`` once its reporter has copied it."""
        return self._finish()

    def release(self, folder: str | None) -> None:
        """A taken ``folder`` is no longer needed: removed if temporary (``directory`` stays)."""
        if folder and self.directory is None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Wait for the write in flight (so the last checkpoint is on disk), remove a temporary
        folder nobody took, and stop the thread. A failed write's error is raised."""
        try:
            self.release(self._finish())
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _finish(self) -> str | None:
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def _write(self, state: dict) -> str:
        folder = str(self.directory) if self.directory is not None else tempfile.mkdtemp(prefix="archscale-ckpt-")
        try:  # a temporary checkpoint is copied by its reporter (Ray Tune) and deleted: no fsync of it
            atomic_write(Path(folder) / STATE_FILE, lambda tmp: save_state(state, tmp),
                         fsync=self.directory is not None)
        except BaseException:
            if self.directory is None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder
