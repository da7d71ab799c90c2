"""Measure what networks cost on a device: once per network and device, at stated settings.

A network's cost is four figures (``scaling.timing.measure``):

    latency_ms            one batch-1 forward pass, eval mode
    throughput            inference images/s at a batch sized for the device (``infer_batch_size``)
    train_images_per_s    forward, backward and SGD step at the trial's batch and precision
    peak_memory_bytes     what that training step holds at most (``scaling.timing.PeakMemory``; GPUs only:
                          on a CPU the store records none, see measure_request)

How (``SETTINGS``, our choice): warm-up calls first (cuDNN's algorithm search and lazy set-up
stay out), then ``repeats`` timed blocks, each long enough that the clock's resolution and one
stray interruption do not count (``min_block_s``); the figure is the median block, and ``spread``
((max - min) / median over the blocks) is recorded with it. On a GPU nothing else runs: the sweep
schedules this as a Ray task holding the whole device (experiments.sweep.costs).

Trials do not time inference; what they saw training beside other trials is their
``observed_images_per_s``. The rows go to the cost store (experiments.results.costs). Ray-free.
"""
from __future__ import annotations

import contextlib
import math
import platform
import socket
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch

from scaling import spec_from_dict
from scaling.conventions import TRAIN_FLOPS_PER_FORWARD
from scaling.device import amp_dtype, cudnn_autotune, resolve_device, sync
from scaling.timing import measure, training_step

from ..data.datasets import dataset_train_size
from ..results.costs import cost_key, network_fingerprint
from ..results.schema import CostRecord
from .loop import effective_batch_size
from .regimes import regime_from

__all__ = ["CostRequest", "SETTINGS", "cost_requests", "plan_requests", "device_kind", "infer_batch_size",
           "known_costs", "kind_here", "measure_costs", "measure_request", "aggregate_train_rates", "COPY_SECONDS"]

#: Timing settings per device type (our choice): GPU blocks of 50 ms or more hold thousands of
#: small kernels, so launch jitter averages out, and 5 blocks give a median with a spread to check;
#: CPU blocks are shorter (10 ms) so the 16-network CPU demo's cost step takes seconds.
SETTINGS = {"cuda": {"warmup": 5, "repeats": 5, "min_block_s": 0.05, "iters": 10},
            "cpu": {"warmup": 2, "repeats": 5, "min_block_s": 0.01, "iters": 5}}


@dataclass(frozen=True)
class CostRequest:
    """One network to measure, at one trial's settings: its ArchSpec fields, its training batch
    (per worker), and the trial's precision choices (None: the device's default)."""

    fingerprint: str
    name: str
    spec: Mapping
    batch_size: int
    amp: bool | None = None
    channels_last: bool | None = None

    def key(self, device: str, torch_version: str, dev_type: str) -> dict:
        """The cache key's fields of this request measured on ``device``."""
        return {"fingerprint": self.fingerprint, "device": device, "batch_size": self.batch_size,
                "precision": self.precision(dev_type), "channels_last": self.uses_channels_last(dev_type),
                "torch_version": torch_version}

    def uses_amp(self, dev_type: str) -> bool:
        return dev_type == "cuda" if self.amp is None else bool(self.amp)

    def uses_channels_last(self, dev_type: str) -> bool:
        return dev_type == "cuda" if self.channels_last is None else bool(self.channels_last)

    def precision(self, dev_type: str) -> str:
        """"bfloat16" or "float16" (autocast) or "float32", as the trial trains on that device type."""
        if not self.uses_amp(dev_type):
            return "float32"
        return str(amp_dtype(torch.device(dev_type))).replace("torch.", "")


def cost_requests(trials: Iterable[Mapping], train_images: int, workers: int = 1) -> list[CostRequest]:
    """The networks of a sweep's plan (its trial rows), one request per network and training
    settings: the trial's batch as capped for ``train_images`` (``effective_batch_size``), split
    over ``workers`` (a data-parallel worker trains on its part), and its precision options."""
    found: dict[tuple, CostRequest] = {}
    for t in trials:
        config = t["config"]
        regime = regime_from(config["regime"])
        batch = effective_batch_size(regime, train_images) // max(1, workers)
        req = CostRequest(fingerprint=network_fingerprint(config["spec"]), name=t.get("name") or config.get("name"),
                          spec=config["spec"], batch_size=batch, amp=config.get("amp"),
                          channels_last=config.get("channels_last"))
        found.setdefault((req.fingerprint, req.batch_size, req.amp, req.channels_last), req)
    return list(found.values())


def plan_requests(trials: list[Mapping], workers: int = 1) -> list[CostRequest]:
    """``cost_requests`` of a sweep's plan, sized by its data set's training images: read back from
    a plan row's training FLOPs (TRAIN_FLOPS_PER_FORWARD x FLOPs x images x epochs, so the data set
    is not opened again), else counted on disk."""
    if not trials:
        return []
    t = trials[0]
    per_image = TRAIN_FLOPS_PER_FORWARD * int(t.get("flops") or 0) * int(t.get("epochs") or 0)
    images = int(t["train_flops"]) // per_image if per_image and t.get("train_flops") else None
    return cost_requests(trials, images or dataset_train_size(t["config"]["dataset"]), workers)


def device_kind(device: torch.device) -> str:
    """What a cost row's ``device`` says: the GPU's model name (any GPU of that model measures the
    same), or "cpu MODEL (N threads)" (the threads torch computes with now)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {_cpu_model()} ({torch.get_num_threads()} threads)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def infer_batch_size(dev_type: str, resolution: int) -> int:
    """The inference-throughput batch for a device (our choice): as many pixels as ImageNet's usual
    evaluation batch, 256 images of 224 px, on a GPU (capped at 4096 images: 1024 at 112 px, 4096
    at 32 px), and a 16th of that on a CPU (capped at 256); a power of two, at least 1."""
    pixels, cap = (256 * 224 ** 2, 4096) if dev_type == "cuda" else (16 * 224 ** 2, 256)
    n = max(1, pixels // (resolution ** 2))
    return min(cap, 2 ** int(math.log2(n)))


def measure_request(req: CostRequest, device: torch.device, where: str) -> CostRecord:
    """Measure one request on ``device`` (``SETTINGS`` of its type); ``where`` says, in the row's
    ``method``, what kept the device to itself."""
    s = SETTINGS["cuda" if device.type == "cuda" else "cpu"]
    spec = spec_from_dict(dict(req.spec))
    infer = infer_batch_size(device.type, spec.resolution)
    m = measure(spec, device, batch_size=req.batch_size, infer_batch_size=infer, warmup=s["warmup"],
                iters=s["iters"], repeats=s["repeats"], min_block_s=s["min_block_s"],
                amp=req.uses_amp(device.type), channels_last=req.uses_channels_last(device.type))
    cuda = device.type == "cuda"
    memory = torch.cuda.get_device_properties(device).total_memory if cuda else None
    method = (f"{where}; {s['warmup']} warm-up calls, then the median of {s['repeats']} timed blocks of "
              f">= {s['min_block_s'] * 1e3:g} ms; latency at batch 1, inference throughput at batch {infer}, "
              f"training (forward, backward, SGD step) at batch {req.batch_size} in {m.dtype}"
              + ("" if cuda else "; no peak memory on a CPU: a warm process's resident-set growth does not show "
                                 "what one network needs (it reuses memory freed by the networks measured before)"))
    return CostRecord(**req.key(device_kind(device), torch.__version__, device.type), name=req.name,
                      infer_batch_size=infer, resolution=spec.resolution, latency_ms=m.latency_ms,
                      throughput=m.throughput, train_images_per_s=m.train_throughput,
                      peak_memory_bytes=m.peak_memory_bytes if cuda else None, device_memory_bytes=memory,
                      repeats=m.repeats, spread=m.spread, method=method, measured_at=time.time(),
                      host=socket.gethostname())


@contextlib.contextmanager
def _threads(threads: int | None):
    """torch computes with ``threads`` CPU threads inside the block (None: as it is)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def known_costs(requests: Iterable[CostRequest], kind: str, dev_type: str, cached: Mapping[tuple, CostRecord] | None
                ) -> list[CostRecord | None]:
    """The row ``cached`` holds of each request on device ``kind`` with this torch (named as the
    request), or None where it holds none."""
    rows = []
    for req in requests:
        hit = (cached or {}).get(cost_key(req.key(kind, torch.__version__, dev_type)))
        rows.append(None if hit is None else CostRecord.from_dict({**hit.to_dict(), "name": req.name}))
    return rows


def measure_costs(requests: Iterable[CostRequest], device: str | torch.device = "auto", *,
                  cached: Mapping[tuple, CostRecord] | None = None, threads: int | None = None,
                  where: str = "measured on this machine", progress=None) -> tuple[list[CostRecord], list[CostRecord]]:
    """(a row per request, the rows measured now): a request whose key (on this device, this torch)
    is in ``cached`` takes that row, the others are measured in turn. ``threads``: torch's CPU
    threads while measuring (a CPU trial's count), restored after. ``progress(request)`` is called
    before each measurement."""
    dev = resolve_device(device)
    requests = list(requests)
    with _threads(threads):
        rows = known_costs(requests, device_kind(dev), dev.type, cached)
        measured = []
        for i, req in enumerate(requests):
            if rows[i] is None:
                if progress is not None:
                    progress(req)
                rows[i] = measure_request(req, dev, where)
                measured.append(rows[i])
    return rows, measured


def kind_here(dev_type: str, threads: int | None = None) -> str | None:
    """The device kind this machine would measure ``dev_type`` trials on (None: it has no GPU)."""
    if dev_type == "cuda" and not torch.cuda.is_available():
        return None
    with _threads(threads):
        return device_kind(torch.device(dev_type))


#: Seconds each copy count trains for in ``aggregate_train_rates`` (our choice: on a GPU, hundreds of
#: steps of a small network, tens of a large one; all copies start together at a barrier).
COPY_SECONDS = {"cuda": 1.0, "cpu": 0.5}


def aggregate_train_rates(req: CostRequest, device: str | torch.device = "auto", copies=(1, 2, 4, 8),
                          seconds: float | None = None, threads: int | None = None, timeout_s: float = 600.0
                          ) -> dict[int, float | None]:
    """{n: training images/s of n copies of ``req``'s network training at once on ``device``, summed},
    for each n of ``copies``; None for a count where a copy failed (out of memory, say).

    Each copy is its own process (as trials sharing a GPU are): max(copies) processes start, build
    and warm up their model (cuDNN's autotuning included), then for each n the first n train for
    ``seconds`` (default ``COPY_SECONDS``) while the others wait, all starting at a barrier."""
    dev = resolve_device(device)
    seconds = COPY_SECONDS["cuda" if dev.type == "cuda" else "cpu"] if seconds is None else seconds
    ctx = torch.multiprocessing.get_context("spawn")
    n, copies = max(copies), tuple(sorted(copies))
    barrier, out = ctx.Barrier(n), ctx.Queue()
    args = (dict(req.spec), req.batch_size, req.uses_amp(dev.type), req.uses_channels_last(dev.type), str(dev),
            copies, seconds, threads, barrier, out)
    procs = [ctx.Process(target=_copy, args=(i, *args), daemon=True) for i in range(n)]
    for proc in procs:
        proc.start()
    rates: dict[int, list] = {k: [] for k in copies}
    try:
        for _ in range(sum(min(k, n) for k in copies)):
            k, rate = out.get(timeout=timeout_s)
            rates[k].append(rate)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return {k: (sum(v) if len(v) == k and all(r is not None for r in v) else None) for k, v in rates.items()}


def _copy(index: int, spec: dict, batch: int, amp: bool, channels_last: bool, device: str, copies: tuple,
          seconds: float, threads: int | None, barrier, out) -> None:
    """One copy of ``aggregate_train_rates``: warm up, then train in every round it takes part in."""
    dev = torch.device(device)
    if threads:
        torch.set_num_threads(int(threads))
    step = None
    with cudnn_autotune():
        try:
            step = training_step(spec_from_dict(spec), dev, batch, amp, channels_last)
            for _ in range(3):  # warm-up: cuDNN's algorithm search and lazy set-up
                step()
            sync(dev)
        except Exception:  # noqa: BLE001 - out of memory and the like: this copy reports None
            step = None
        for k in copies:
            barrier.wait()
            if index < k:
                out.put((k, _train_for(step, dev, batch, seconds) if step is not None else None))
            barrier.wait()  # the next round starts when this one has ended on every copy


def _train_for(step, dev: torch.device, batch: int, seconds: float) -> float | None:
    """Training images/s of ``step`` run for about ``seconds`` (None when a step fails)."""
    try:
        sync(dev)
        t0 = time.perf_counter()
        steps = 0
        while time.perf_counter() - t0 < seconds:
            step()
            steps += 1
        sync(dev)
        return steps * batch / (time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - out of memory when more copies share the device
        return None
