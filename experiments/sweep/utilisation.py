"""Device utilisation over a sweep, sampled by its driver into OUTPUT_DIR/utilisation.csv.

With GPUs, NVML's utilisation of each (the share of time a kernel ran, per the driver's sample
period), read through pynvml: no CUDA context is created. Without, the host's CPU utilisation
(psutil; every process on the machine, so the sweep's own busy share comes from its trials' CPU
seconds instead, experiments.results.timeline). One line per device per sample, flushed, so a
kill loses at most the line being written.
"""
from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

from ..results.schema import UTILISATION
from ..results.timeline import UTILISATION_COLUMNS

#: Seconds between samples. Ours: fine enough to show a trial's start-up gaps (seconds long),
#: coarse enough to cost nothing (one NVML call per GPU).
SAMPLE_EVERY_S = 0.5


def _nvml():
    """(read, device names): a function giving each visible GPU's utilisation in percent, or None
    when there is no NVML or no GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no NVML library, no driver or no GPU: sample the CPU
        return None
    if not handles:
        return None
    names = [f"gpu{i}" for i in range(len(handles))]
    return (lambda: [float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in handles]), names


def _cpu():
    from .session_guard import psutil

    ps = psutil()
    ps.cpu_percent(None)  # the first call starts the interval
    return (lambda: [float(ps.cpu_percent(None))]), ["cpu"]


class UtilisationSampler:
    """Samples every ``every_s`` seconds in a daemon thread while in its ``with`` block."""

    def __init__(self, output_dir: str | Path, every_s: float = SAMPLE_EVERY_S):
        self.path, self.every_s = Path(output_dir) / UTILISATION, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "UtilisationSampler":
        nvml = _nvml()
        self.read, self.devices = nvml or _cpu()
        self.source = "nvml" if nvml else "cpu"
        self._thread = threading.Thread(target=self._run, name="archscale-utilisation", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as f:
            out = csv.writer(f)
            if new:
                out.writerow(UTILISATION_COLUMNS)
            while not self._stop.wait(self.every_s):
                try:
                    values = self.read()
                except Exception:  # noqa: BLE001 - a device gone mid-sweep: stop sampling, not the sweep
                    return
                now = time.time()
                out.writerows([now, d, v, self.source] for d, v in zip(self.devices, values))
                f.flush()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
