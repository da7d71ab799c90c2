"""archscale costs: measure the networks of a sweep that its cost store lacks.

    archscale costs RUN_DIR [--device cpu | cuda | cuda:N]

Reads RUN_DIR's plan, finds each network's row for this device in RUN_DIR/costs.parquet, then
in the cost cache (experiments.results.costs), and measures the rest here, one after another,
at the trials' batch and precision (experiments.train.costs). Nothing here keeps other work off
the device: run it on an idle one. The sweep does the same by itself, as a Ray task that holds
the whole device.
"""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("costs", help="measure the networks a sweep's cost store (costs.parquet) lacks",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's output directory")
    p.add_argument("--device", default="auto", help="where to measure: auto (a GPU when there is one), cpu, cuda, "
                                                    "cuda:N (default: auto)")
    p.add_argument("--threads", type=int, help="CPU threads to measure with (default: torch's; the sweep uses "
                                               "a CPU trial's resources.cpus)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Measure what RUN_DIR/costs.parquet lacks for --device, write it and the cache; print the rows."""
    from pathlib import Path

    from ..results.costs import (COSTS, add_to_cache, cache_path, cached_rows, cost_key, cost_rows, read_costs,
                                 write_costs)
    from ..results.schema import read_manifest
    from ..results.store import read_plan
    from ..train.costs import measure_costs, plan_requests

    run_dir = Path(args.run_dir)
    trials = read_plan(run_dir)
    manifest = read_manifest(run_dir)
    spec = (manifest.spec if manifest else None) or {}
    workers = int(((manifest.resources if manifest else None) or {}).get("workers") or 1)
    requests = plan_requests(trials, workers)
    store = run_dir / COSTS
    cache = cache_path(spec.get("cost_cache"))
    known = {**cached_rows(cache), **{cost_key(r): r for r in cost_rows(read_costs(store))}}
    rows, measured = measure_costs(requests, args.device, cached=known, threads=args.threads,
                                   where="measured by 'archscale costs' (nothing kept other work off the device)",
                                   progress=lambda r: print(f"measuring {r.name} (batch {r.batch_size}) ...",
                                                            flush=True))
    write_costs(store, rows)
    add_to_cache(cache, measured)
    device = rows[0].device if rows else "-"
    print(f"{len(rows)} networks on {device}: {len(measured)} measured, {len(rows) - len(measured)} already known; "
          f"written to {store}")
    for r in rows:
        print(f"  {r.name}: {r.latency_ms:.3g} ms latency, {r.throughput:,.0f} img/s inference (batch "
              f"{r.infer_batch_size}), {r.train_images_per_s:,.0f} img/s training (batch {r.batch_size}, "
              f"{r.precision}), spread {r.spread:.1%}")
    return 0
