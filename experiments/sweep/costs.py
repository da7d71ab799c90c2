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

import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import ray

from ..results.costs import COSTS, add_to_cache, cache_path, cached_rows, cost_key, cost_rows, read_costs, write_costs
from ..results.schema import CostRecord
from ..train.costs import CostRequest, kind_here, known_costs, measure_costs, plan_requests
from .resources import Launch

__all__ = ["CostStep", "cost_step", "cost_task_resources"]


@dataclass
class CostStep:
    """What the cost step did: its rows (one per network), how many it measured, on which device,
    in how many seconds, and whether it ran as a Ray task."""

    rows: list[CostRecord]
    measured: int
    device: str | None
    seconds: float
    task: bool

    def line(self) -> str:
        """One line for the sweep's output."""
        how = "as a Ray task holding the whole device" if self.task else "none measured: all known"
        return (f"costs: {len(self.rows)} networks on {self.device}: {self.measured} measured, "
                f"{len(self.rows) - self.measured} from the cost cache or store, {self.seconds:.1f}s ({how})")


def cost_task_resources(launch: Launch, nodes: Sequence[Mapping[str, float]]) -> dict:
    """The cost task's Ray request: a whole GPU when the trials train on GPUs, and all the CPUs of
    the smallest node that has the trials' kind of device (so it is the only work on that node)."""
    gpu = launch.gpus > 0
    fit = [n for n in nodes if not gpu or n.get("GPU", 0) >= 1] or list(nodes)
    cpus = min((n.get("CPU", 1.0) for n in fit), default=1.0)
    return {"num_cpus": float(cpus), "num_gpus": 1.0 if gpu else 0.0}


def _measure_task(requests: list[CostRequest], known: dict, dev_type: str, threads: int | None, where: str):
    """Inside the Ray task: measure what ``known`` lacks on this node's device."""
    return measure_costs(requests, dev_type, cached=known, threads=threads, where=where)


def cost_step(sweep, trials: list[dict], launch: Launch, nodes: Sequence[Mapping[str, float]], *,
              quiet: bool = False, submit: Callable | None = None) -> CostStep:
    """Measure the sweep's networks that its cost store and the cost cache lack, as a Ray task
    holding the whole device (see the module docstring); write OUTPUT_DIR/costs.parquet and add the
    new rows to the cache. ``submit(fn, resources, *args)`` runs ``fn`` where Ray places it and
    returns its value (default: a Ray task; tests run it in process)."""
    t0 = time.perf_counter()
    requests = plan_requests(trials, launch.workers)
    dev_type = "cuda" if launch.gpus > 0 else "cpu"
    threads = max(1, int(launch.cpus)) if dev_type == "cpu" else None
    store = sweep.output_dir / COSTS
    cache = cache_path(sweep.cost_cache)
    known = {**cached_rows(cache), **{cost_key(r): r for r in cost_rows(read_costs(store))}}
    kind = kind_here(dev_type, threads)
    rows = known_costs(requests, kind, dev_type, known) if kind else [None] * len(requests)
    measured: list[CostRecord] = []
    task = not all(rows)
    if task:
        resources = cost_task_resources(launch, nodes)
        where = (f"alone on the device: a Ray task holding {resources['num_cpus']:g} CPUs"
                 + (" and a whole GPU" if resources["num_gpus"] else "") + " before any trial started")
        rows, measured = (submit or _ray_submit)(_measure_task, resources, requests, known, dev_type, threads, where)
        add_to_cache(cache, measured)
    write_costs(store, rows)
    step = CostStep(rows=list(rows), measured=len(measured), device=rows[0].device if rows else kind,
                    seconds=time.perf_counter() - t0, task=task)
    if not quiet:
        print(step.line(), flush=True)
    return step


def _ray_submit(fn, resources: dict, *args):
    return ray.get(ray.remote(fn).options(**resources).remote(*args))
