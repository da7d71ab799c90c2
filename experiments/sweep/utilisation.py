"""Device utilisation over a sweep, sampled by its driver into OUTPUT_DIR/utilisation.csv.

With GPUs, NVML's utilisation of each (the share of time a kernel ran, per the driver's sample
period), read through pynvml: no CUDA context is created. Without, the CPU utilisation of the
driver's descendants (a local Ray's processes, whose workers train the trials) over the CPUs the
trials may use (psutil; a driver joined to a cluster sees none of them there: the busy share
comes from the trials' own CPU seconds, experiments.results.timeline). One line per device per
sample, flushed, so a kill loses at most the line being written.
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


def _cpu(cpus: float | None):
    """(read, device names): the CPU utilisation of this process's descendants (a local Ray's
    processes: its workers train the trials), in percent of the ``cpus`` the sweep's trials may
    use; each process's CPU seconds since the last sample over the seconds between them."""
    from .session_guard import psutil

    ps, me = psutil(), psutil().Process()
    seen: dict[int, float] = {}
    last = [time.monotonic()]

    def read() -> list[float]:
        now, used = time.monotonic(), 0.0
        for p in me.children(recursive=True):
            try:
                t = p.cpu_times()
            except ps.Error:  # ended meanwhile
                continue
            total = t.user + t.system
            used += max(total - seen.get(p.pid, 0.0), 0.0)
            seen[p.pid] = total
        elapsed, last[0] = now - last[0], now
        return [100.0 * used / elapsed / max(cpus or ps.cpu_count() or 1, 1e-9)] if elapsed > 0 else [0.0]

    read()  # the CPU seconds so far are not this interval's
    return read, ["cpu"]


class UtilisationSampler:
    """Samples every ``every_s`` seconds in a daemon thread while in its ``with`` block."""

    def __init__(self, output_dir: str | Path, cpus: float | None = None, every_s: float = SAMPLE_EVERY_S):
        self.path, self.cpus, self.every_s = Path(output_dir) / UTILISATION, cpus, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "UtilisationSampler":
        nvml = _nvml()
        self.read, self.devices = nvml or _cpu(self.cpus)
        self.source = "nvml" if nvml else "cpu"
        self._thread = threading.Thread(target=self._run, name="archscale-utilisation", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        size = self.path.stat().st_size if self.path.is_file() else 0
        torn = False
        if size:
            with open(self.path, "rb") as f:
                f.seek(-1, 2)
                torn = f.read(1) != b"\n"  # a killed launch's last line
        with open(self.path, "a", newline="") as f:
            out = csv.writer(f)
            if torn:
                f.write("\n")  # the torn line stays on its own, and the reader drops it
            if size == 0:  # new, or left empty by a launch killed as it opened it
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
