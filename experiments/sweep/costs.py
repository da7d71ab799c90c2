"""The sweep's cost step: every network of the sweep measured once on the trials' kind of device,
alone on it, before the trials start.

Where it goes, and why there: before the first trial, as one Ray task.
- Nothing else runs on the device yet, so the device is quiet without stopping any trial: the
  task holds the whole device (one whole GPU and all CPUs of a node for GPU trials; all CPUs of a
  node for CPU trials) so Ray places no other work beside it. Between trials the device would
  have to be drained first, idling it while the last trials finish; after the trials, packing
  (``trials_per_gpu: auto``) could not use what it measures.
- One process measures every network: it pays its imports and CUDA context once.
- A network the cost cache or the output directory's cost store already holds on this device kind
  is not measured again; when the driver's machine has the trials' kind of device and everything
  is known, no task starts at all.

Heterogeneous clusters: the task runs on one node Ray picks; its device kind is the one measured.
The rows go to OUTPUT_DIR/costs.parquet and the cache (experiments.results.costs).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from scaling.errors import ArchScaleError

from ..results.costs import COSTS, add_to_cache, cache_path, cached_rows, cost_key, cost_rows, read_costs, write_costs
from ..results.schema import CostRecord
from ..train.costs import CostRequest, aggregate_train_rates, kind_here, known_costs, measure_costs, plan_requests
from .packing import COPIES, NO_GPU, Packing, choose_trials_per_gpu
from .resources import Launch

__all__ = ["CostStep", "cost_step", "cost_task_resources", "planned_packing"]


@dataclass
class CostStep:
    """What the cost step did: its rows (one per network), how many it measured, on which device,
    in how many seconds, and whether it ran as a Ray task."""

    rows: list[CostRecord]
    measured: int
    device: str | None
    seconds: float
    task: bool
    #: What ``trials_per_gpu: auto`` became (None when the spec does not ask for it).
    packing: Packing | None = None

    def line(self) -> str:
        """What the sweep prints: the networks measured and, with ``trials_per_gpu: auto``, the choice and why."""
        how = "as a Ray task holding the whole device" if self.task else "none measured: all known"
        line = (f"costs: {len(self.rows)} networks on {self.device}: {self.measured} measured, "
                f"{len(self.rows) - self.measured} from the cost cache or store, {self.seconds:.1f}s ({how})")
        if self.packing is not None:
            line += f"\ntrials_per_gpu: auto -> {self.packing.trials_per_gpu}: {self.packing.why}"
        return line


def cost_task_resources(launch: Launch, nodes: Sequence[Mapping[str, float]]) -> dict:
    """The cost task's Ray request: a whole GPU when the trials train on GPUs, and all the CPUs of
    the smallest node that has the trials' kind of device (so it is the only work on that node)."""
    gpu = launch.gpus > 0
    fit = [n for n in nodes if not gpu or n.get("GPU", 0) >= 1] or list(nodes)
    cpus = min((n.get("CPU", 1.0) for n in fit), default=1.0)
    return {"num_cpus": float(cpus), "num_gpus": 1.0 if gpu else 0.0}


def _measure_task(requests: list[CostRequest], known: dict, dev_type: str, threads: int | None, where: str,
                  pack: int | None = None):
    """Inside the Ray task: measure what ``known`` lacks on this node's device, and with ``pack``
    (an index of ``requests``) that network's training speed as 1, 2, 4 and 8 copies at once. GPUs
    Ray was told of but torch cannot see (a test's logical GPUs) mean CPU trials, measured as such."""
    import torch

    if dev_type == "cuda" and not torch.cuda.is_available():
        dev_type, pack = "cpu", None
    rows, measured = measure_costs(requests, dev_type, cached=known, threads=threads, where=where)
    if pack is not None and rows[pack].aggregate_images_per_s_1 is None:
        try:
            rates = aggregate_train_rates(requests[pack], dev_type, COPIES, threads=threads)
        except Exception:  # noqa: BLE001 - a copy hung or died: packing falls back to one trial per GPU
            rates = {}
        rows[pack] = dataclasses.replace(rows[pack], **{f"aggregate_images_per_s_{k}": rates.get(k) for k in COPIES})
        measured = [r for r in measured if r.fingerprint != rows[pack].fingerprint] + [rows[pack]]
    return rows, measured


@dataclass
class _Known:
    """What the sweep's cost step starts from: its requests, the rows known of each on this
    machine's kind of device (None where unknown), and where rows are kept."""

    requests: list[CostRequest]
    known: dict
    rows: list
    dev_type: str
    threads: int | None
    kind: str | None
    pack: int | None
    store: object
    cache: object

    def complete(self) -> bool:
        """Every network known here, with its packing rates when packing needs them."""
        return all(self.rows) and (self.pack is None or self.rows[self.pack].aggregate_images_per_s_1 is not None)


def _known(sweep, trials: list[dict], launch: Launch) -> _Known:
    requests = plan_requests(trials, launch.workers)
    dev_type = "cuda" if launch.gpus > 0 else "cpu"
    threads = max(1, int(launch.cpus))  # a CPU trial computes with its CPUs' threads
    store, cache = sweep.output_dir / COSTS, cache_path(sweep.cost_cache)
    known = {**cached_rows(cache), **{cost_key(r): r for r in cost_rows(read_costs(store))}}
    kind = kind_here(dev_type, threads)
    rows = known_costs(requests, kind, dev_type, known) if kind else [None] * len(requests)
    auto = sweep.resources.trials_per_gpu == "auto"
    pack = _costliest(requests, trials) if auto and dev_type == "cuda" and requests else None
    return _Known(requests, known, rows, dev_type, threads, kind, pack, store, cache)


def _packing(sweep, k: _Known) -> Packing | None:
    """What ``trials_per_gpu: auto`` becomes with the rows of ``k`` (None when not asked for)."""
    if sweep.resources.trials_per_gpu != "auto":
        return None
    if k.pack is None:
        return Packing(1, NO_GPU)
    rep = k.rows[k.pack]
    return choose_trials_per_gpu(max((r.peak_memory_bytes for r in k.rows if r.peak_memory_bytes is not None),
                                     default=None), rep.device_memory_bytes,
                                 {n: getattr(rep, f"aggregate_images_per_s_{n}") for n in COPIES}, rep.name)


def cost_step(sweep, trials: list[dict], launch: Launch, nodes: Sequence[Mapping[str, float]], *,
              quiet: bool = False, submit: Callable | None = None) -> CostStep:
    """Measure the sweep's networks that its cost store and the cost cache lack, as a Ray task
    holding the whole device (see the module docstring); write OUTPUT_DIR/costs.parquet, add the
    new rows to the cache, and settle ``trials_per_gpu: auto``. ``submit(fn, resources, *args)``
    runs ``fn`` where Ray places it and returns its value (default: a Ray task; tests run it in
    process)."""
    t0 = time.perf_counter()
    k = _known(sweep, trials, launch)
    measured: list[CostRecord] = []
    task = not k.complete()
    if task:
        resources = cost_task_resources(launch, nodes)
        where = (f"alone on the device: a Ray task holding {resources['num_cpus']:g} CPUs"
                 + (" and a whole GPU" if resources["num_gpus"] else "") + " before any trial started")
        k.rows, measured = (submit or _ray_submit)(_measure_task, resources, k.requests, k.known, k.dev_type,
                                                   k.threads, where, k.pack)
        add_to_cache(k.cache, measured)
    write_costs(k.store, k.rows)
    step = CostStep(rows=list(k.rows), measured=len(measured), device=k.rows[0].device if k.rows else k.kind,
                    seconds=time.perf_counter() - t0, task=task, packing=_packing(sweep, k))
    if not quiet:
        print(step.line(), flush=True)
    return step


def planned_packing(sweep, trials: list[dict], cluster: Mapping[str, float]) -> str | None:
    """What the dry run says of ``trials_per_gpu: auto`` on a cluster with ``cluster`` resources:
    the choice when this machine's GPU kind has every measurement cached, else when and from what
    the sweep will choose (None when the spec does not ask for it)."""
    if sweep.resources.trials_per_gpu != "auto":
        return None
    launch = sweep.resources.launch(cluster)
    if launch.gpus == 0:
        return f"trials_per_gpu: auto -> 1: {NO_GPU}"
    how = ("chosen at launch by the cost step, alone on a GPU: the networks' peak training memory and the training "
           "images/s of 1, 2, 4 and 8 copies of the costliest network at once")
    try:
        k = _known(sweep, trials, launch)
    except ArchScaleError as e:  # the data set is not here: its size sets the trials' batch
        return f"trials_per_gpu: auto: {how} ({e.message})"
    if k.kind is None or not k.complete():
        return f"trials_per_gpu: auto: {how}; not all measured on {k.kind or 'a GPU here'} yet"
    packing = _packing(sweep, k)
    return f"trials_per_gpu: auto -> {packing.trials_per_gpu} (measurements cached for {k.kind}): {packing.why}"


def _costliest(requests: list[CostRequest], trials: list[dict]) -> int:
    """The index of the request whose network has the most FLOPs per image (its plan rows say)."""
    flops = {t["name"]: t.get("flops") or 0 for t in trials}
    return max(range(len(requests)), key=lambda i: flops.get(requests[i].name, 0))


def _ray_submit(fn, resources: dict, *args):
    import ray  # here: the dry run (planned_packing) needs no Ray

    return ray.get(ray.remote(fn).options(**resources).remote(*args))
