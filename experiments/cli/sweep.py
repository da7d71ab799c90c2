"""archscale sweep: run (or resume) a scaling sweep on Ray Tune, or price it with --dry-run.

    archscale sweep SPEC.yaml [--dry-run] [--address HOST:PORT | auto | ray://...] [--quiet] [--dashboard]
    archscale sweep SPEC.yaml --restart           # keep the ended trials, drop Tune's saved state
    archscale status OUTPUT_DIR [--watch]         # from any terminal, while it runs or after

A dry run prices the sweep (with --throughput: device-hours, and for data-parallel trials wall
time and GPU-hours = workers x wall time) and warns when the cluster (--address, RAY_ADDRESS, or
this machine) cannot place a trial's workers.

Running the same sweep command again on the same output directory resumes it: finished trials
are kept, unfinished ones continue from their last checkpoint. When Tune's saved state cannot be
restored, or the spec changed what it keeps (scheduler, resources, retries), the rerun says so;
--restart then keeps the ended trials and starts the others afresh. One sweep at a time runs on
an output directory (OUTPUT_DIR/driver.lock). Ctrl-C or SIGTERM stops a sweep
gracefully (exit status 130 or 143); a second one stops it at once. Tune writes TensorBoard
files for every trial: tensorboard --logdir OUTPUT_DIR/ray. Trackers: callbacks: [mlflow] in
the spec, or --callback mlflow.
"""
from __future__ import annotations

import argparse
import json
import signal

from scaling.conventions import FLOP_CONVENTION, TRAIN_FLOPS_PER_FORWARD
from scaling.wording import plural


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run (or resume) a scaling sweep on Ray Tune",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC.yaml", help="a sweep spec (see experiments/configs/)")
    p.add_argument("--dry-run", action="store_true", help="validate, expand and price the sweep, print the plan, stop")
    p.add_argument("--output-dir", help="override the spec's output_dir")
    p.add_argument("--restart", action="store_true",
                   help="keep the trials that ended and drop Tune's saved state (and its checkpoints): the others "
                        "start afresh; for a folder whose Tune state cannot be restored or whose spec changed "
                        "scheduler, resources or retries")
    p.add_argument("--data-root", help="override the data set's root (cifar10/cifar100/imagefolder)")
    p.add_argument("--address", help="join the Ray cluster whose head runs at HOST:PORT, with the cluster's token "
                                     "when it uses one (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--num-gpus", type=float, help="GPUs of the local Ray (default: all visible)")
    p.add_argument("--quiet", action="store_true", help="no live progress (CI logs); the summary still prints")
    p.add_argument("--strict", action="store_true", help="exit 1 when any trial failed (default: only when all did)")
    p.add_argument("--throughput", metavar="FILE",
                   help="for --dry-run: 'archscale count --measure --json' lines of the target device, for hours")
    p.add_argument("--format", choices=("table", "json"), default="table", help="--dry-run output")
    p.add_argument("--all", action="store_true",
                   help="--dry-run: list every config and trial even above the size where a summary is printed")
    p.add_argument("--callback", action="append", default=[], metavar="NAME",
                   help="a tracker (mlflow, wandb) or 'package.module:Class' Tune callback, added to the spec's "
                        "callbacks: (repeatable)")
    p.add_argument("--dashboard", action="store_true",
                   help="start Ray's dashboard on 127.0.0.1:8265 (local Ray only; needs ray[default]); from "
                        "another machine: ssh -L 8265:127.0.0.1:8265 HOST")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the sweep, or print its plan with --dry-run; returns the exit status (1: trials failed,
    128 + the signal's number when SIGINT or SIGTERM stopped it)."""
    from scaling.files import check_writable_dir

    from ..sweep.spec import load_sweep, make_plan
    from ..sweep.trackers import build_callbacks, callbacks_from

    sweep = load_sweep(args.spec, output_dir=args.output_dir, data_root=args.data_root)
    extra = callbacks_from(args.callback, "callback")
    if args.dry_run:
        from ..sweep.spec import plan_table
        from .space import SUMMARY_ABOVE, big_space_note

        check_writable_dir(sweep.output_dir, "output_dir")  # as the run checks it
        build_callbacks([*sweep.callbacks, *extra], experiment=sweep.name, output_dir=sweep.output_dir,
                        dry_run=True)  # checked, not run
        table = plan_table(sweep, progress=big_space_note(sweep.space))
        if len(table.rows) > SUMMARY_ABOVE and not args.all:
            return _print_plan_summary(sweep, table, args)
        trials, expansion = make_plan(sweep, strict_data=False, table=table)
        return _print_plan(sweep, trials, expansion, args)
    from ..sweep.run import run_sweep

    summary = run_sweep(sweep, address=args.address, quiet=args.quiet, num_cpus=args.num_cpus,
                        num_gpus=args.num_gpus, callbacks=list(extra), dashboard=args.dashboard,
                        restart=args.restart)
    counts = summary.counts
    from scaling.conventions import TRIAL_STATUSES

    line = ", ".join(f"{counts.get(k, 0)} {k}" for k in TRIAL_STATUSES if counts.get(k, 0) or k in ("done", "error"))
    if summary.stopped_by:
        print(f"sweep {sweep.name} stopped by {signal.Signals(summary.stopped_by).name} after "
              f"{summary.wall_time_s:.0f}s: {line}; rerun the same command to resume")
    else:
        print(f"sweep {sweep.name} finished in {summary.wall_time_s:.0f}s: {line}")
    if summary.times is not None:
        from ..results.timeline import times_line

        print(times_line(summary.times))
    for tid, err in summary.errors:
        print(f"  error in {tid}: {err}")
    if summary.trials is not None and "health" in summary.trials:
        from ..results.health import health_counts

        verdicts = health_counts(summary.trials["health"])
        if verdicts:
            flagged = "" if set(verdicts) == {"ok"} else f" (the flagged trials: archscale status {summary.output_dir})"
            print("health: " + ", ".join(f"{n} {h}" for h, n in verdicts.items()) + flagged)
    print(f"results: {summary.output_dir}/trials.parquet (and .csv), epochs.parquet; "
          f"report: archscale report {summary.output_dir}; TensorBoard: tensorboard --logdir {sweep.experiment_path}")
    if summary.stopped_by:
        return 128 + summary.stopped_by
    if summary.all_failed or (args.strict and summary.errors):
        return 1
    return 0


def _print_plan(sweep, trials, expansion, args) -> int:
    import pandas as pd

    from search_spaces.pricing import exact_sum, rate_from_measurements

    from ..sweep.spec import short_regimes, train_size
    from ..train.loop import batch_cut_note

    df = pd.DataFrame([{k: t[k] for k in ("trial_id", "name", "regime", "epochs", "seed", "params", "flops",
                                          "train_flops")} for t in trials])
    rate, device = rate_from_measurements(args.throughput) if args.throughput else (None, None)
    workers = sweep.resources.workers
    if rate:
        df["est_hours"] = df["train_flops"] / rate / 3600
        df["wall_hours"] = df["est_hours"] / workers  # at linear scaling over the workers
        df["gpu_hours"] = workers * df["wall_hours"]
    placement = _placement_warning(sweep, args)
    shortened = short_regimes(sweep)
    packing = _packing_line(sweep, trials, args)
    if args.format == "json":
        print(json.dumps({"name": sweep.name, "space": expansion.summary(), "n_trials": len(df),
                          "data_note": train_size(sweep.dataset, strict=False)[1],
                          "train_flops_total": exact_sum(df["train_flops"]),
                          "est_hours_total": float(df["est_hours"].sum()) if rate else None,
                          "workers": workers, "gpu_hours_total": float(df["gpu_hours"].sum()) if rate else None,
                          "placement_warning": placement, "short_regimes": shortened, "packing": packing,
                          "trials": json.loads(df.to_json(orient="records"))}, indent=1))
        return 0
    per_config = df.groupby("name", sort=False).agg(params=("params", "first"), flops=("flops", "first"),
                                                     trials=("trial_id", "count"),
                                                     train_flops=("train_flops", exact_sum))
    unit, scale = _unit(per_config["train_flops"].max())
    table = pd.DataFrame({"params (M)": (per_config["params"] / 1e6).map("{:.3f}".format),
                          "GFLOPs": (per_config["flops"] / 1e9).map("{:.4f}".format),
                          "trials": per_config["trials"],
                          f"train {unit}": (per_config["train_flops"] / scale).map("{:.4g}".format)})
    print(f"sweep {sweep.name} (dry run): space {sweep.space.name}: {expansion.summary()}")
    print(f"  {len(df)} trials = {len(per_config)} configs x {len(sweep.regimes)} regime(s) "
          f"({_lengths(sweep)}) x {len(sweep.seeds)} seed(s); "
          f"dataset {sweep.dataset.display_name}; output {sweep.output_dir}")
    print(f"  FLOPs per image, {FLOP_CONVENTION}; training cost = {TRAIN_FLOPS_PER_FORWARD} x FLOPs x images x epochs")
    images, note = train_size(sweep.dataset, strict=False)
    if note:
        print(f"  note: {note}")
    for regime in sweep.regimes:
        cut = batch_cut_note(regime, images)
        if cut:
            print(f"  {cut}")
    print(table.to_string())
    total_flops = exact_sum(df["train_flops"])
    unit, scale = _unit(total_flops)
    total = f"total training compute {total_flops / scale:.4g} {unit}"
    if rate:
        total += f", about {df['est_hours'].sum():.3g} device-hours at {rate / 1e12:.3g} TFLOP/s measured on {device}"
    print(total)
    if rate and workers > 1:
        kind = "GPU" if sweep.resources.gpus not in (0, 0.0) else "device"
        print(f"  {workers} workers per trial: about {df['wall_hours'].max():.3g} h wall for the longest trial at "
              f"linear scaling; {kind}-hours = {workers} workers x wall time = {df['gpu_hours'].sum():.3g} in all")
    if packing:
        print(packing)
    if placement:
        print(f"warning: {placement}")
    for line in shortened.values():
        print(f"warning: {line}")
    return 0


def _print_plan_summary(sweep, table, args) -> int:
    """The plan of a sweep of many configs: its counts, totals and a summary of its configs (the
    cheapest and dearest, FLOP ranges and budgets) instead of a row per config."""
    import pandas as pd

    from search_spaces.pricing import exact_sum, rate_from_measurements

    from ..sweep.spec import check_data, train_size
    from ..train.loop import batch_cut_note
    from .space import SUMMARY_ABOVE, budget_counts, summarise

    images = check_data(sweep, strict_data=False)
    rows = table.rows
    seeds = len(sweep.seeds)
    trials = pd.Series(0, index=rows.index)
    train_flops = pd.Series(0, index=rows.index, dtype=object)
    for regime in sweep.regimes:
        trains = (rows["regime_epochs"].map(lambda v: not isinstance(v, tuple) or regime.epochs in v)
                  if "regime_epochs" in rows else pd.Series(True, index=rows.index))
        trials += trains.astype(int) * seeds
        cost = rows["flops"].astype(object) * (TRAIN_FLOPS_PER_FORWARD * images * regime.epochs * seeds)
        train_flops += cost.where(trains, 0)
    per_config = pd.DataFrame({"name": rows["name"], "params": rows["params"], "flops": rows["flops"],
                               "trials": trials, "train_flops": train_flops})
    total_flops = exact_sum(per_config["train_flops"])
    rate, device = rate_from_measurements(args.throughput) if args.throughput else (None, None)
    placement = _placement_warning(sweep, args)
    note = train_size(sweep.dataset, strict=False)[1]
    cuts = [c for c in (batch_cut_note(r, images) for r in sweep.regimes) if c]
    if args.format == "json":
        ends = per_config.sort_values("flops", kind="stable")
        print(json.dumps({"name": sweep.name, "space": table.summary(), "n_trials": int(trials.sum()),
                          "n_configs": len(per_config), "data_note": note, "train_flops_total": total_flops,
                          "est_hours_total": total_flops / rate / 3600 if rate else None,
                          "workers": sweep.resources.workers, "placement_warning": placement,
                          "cheapest": json.loads(ends.head(5).to_json(orient="records")),
                          "dearest": json.loads(ends.tail(5).iloc[::-1].to_json(orient="records")),
                          "configs_within_flops": dict(budget_counts(per_config["flops"])),
                          "trials": None}, indent=1))
        return 0
    unit, scale = _unit(per_config["train_flops"].max())

    def render(part):
        return pd.DataFrame({"name": part["name"], "params (M)": (part["params"] / 1e6).map("{:.3f}".format),
                             "GFLOPs": (part["flops"] / 1e9).map("{:.4f}".format), "trials": part["trials"],
                             f"train {unit}": part["train_flops"].map(lambda v: f"{v / scale:.4g}")}).to_string(index=False)

    print(f"sweep {sweep.name} (dry run): space {sweep.space.name}: {table.summary()}")
    print(f"  {int(trials.sum()):,} trials over {len(per_config):,} configs x {len(sweep.regimes)} regime(s) "
          f"({_lengths(sweep)}) x {seeds} seed(s); "
          f"dataset {sweep.dataset.display_name}; output {sweep.output_dir}")
    print(f"  FLOPs per image, {FLOP_CONVENTION}; training cost = {TRAIN_FLOPS_PER_FORWARD} x FLOPs x images x epochs")
    if note:
        print(f"  note: {note}")
    for cut in cuts:
        print(f"  {cut}")
    print(summarise(per_config, render, f"more than {SUMMARY_ABOVE}: --all lists every config"))
    unit, scale = _unit(total_flops)
    total = f"total training compute {total_flops / scale:.4g} {unit}"
    if rate:
        total += f", about {total_flops / rate / 3600:.3g} device-hours at {rate / 1e12:.3g} TFLOP/s measured on {device}"
    print(total)
    if placement:
        print(f"warning: {placement}")
    return 0


def _lengths(sweep) -> str:
    """Each regime and its length: 'rs-10: 10 epochs, short: 1 epoch'."""
    return ", ".join(f"{r.name}: {plural(r.epochs, 'epoch')}" for r in sweep.regimes)


def _packing_line(sweep, trials, args) -> str | None:
    """What ``trials_per_gpu: auto`` becomes, or how the sweep will choose it (None without it), on
    the cluster as ``_placement_warning`` sees it."""
    if sweep.resources.trials_per_gpu != "auto":
        return None
    import os

    from scaling.errors import ArchScaleError

    from ..sweep.costs import planned_packing

    try:
        cluster, _ = _cluster_nodes(args.address or os.environ.get("RAY_ADDRESS"), args)
        return planned_packing(sweep, trials, cluster)
    except ArchScaleError as e:
        return f"trials_per_gpu: auto: {e.field}: {e.message}"
    except (ConnectionError, RuntimeError) as e:
        return f"trials_per_gpu: auto: chosen at launch (could not reach the Ray cluster: {e})"


def _placement_warning(sweep, args) -> str | None:
    """Why the cluster cannot place a trial's workers (or None): the Ray cluster at --address or
    RAY_ADDRESS, else this machine as a local Ray would have it (--num-cpus, --num-gpus)."""
    import os

    from scaling.errors import ArchScaleError

    address = args.address or os.environ.get("RAY_ADDRESS")
    where = "" if address else " (checked on this machine: --address checks a cluster)"
    try:
        cluster, nodes = _cluster_nodes(address, args)
        problem = sweep.resources.placement_problem(cluster, nodes)
    except ArchScaleError as e:
        problem = f"{e.field}: {e.message}"
    except (ConnectionError, RuntimeError) as e:
        return f"could not reach the Ray cluster at {address} to check placement ({e})"
    return problem + where if problem else None


def _cluster_nodes(address, args) -> tuple[dict, list[dict]]:
    """(total resources, each node's) of the Ray cluster at ``address`` (joined as the sweep joins
    it, token authentication included), or of this machine."""
    if address:
        from ..sweep.ray_runtime import cluster_nodes

        return cluster_nodes(address)
    import os

    import torch

    gpus = args.num_gpus if args.num_gpus is not None else torch.cuda.device_count()
    node = {"CPU": float(args.num_cpus or os.cpu_count() or 1), **({"GPU": float(gpus)} if gpus else {})}
    return node, [node]


def _unit(flops: float) -> tuple[str, float]:
    """The largest of GFLOPs..EFLOPs that keeps ``flops`` at 1 or more."""
    for unit, scale in (("EFLOPs", 1e18), ("PFLOPs", 1e15), ("TFLOPs", 1e12)):
        if flops >= scale:
            return unit, scale
    return "GFLOPs", 1e9
