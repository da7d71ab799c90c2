"""Scaling sweeps on Ray Tune: launch, watch, resume after a crash, survive failed trials.

Ray Tune does the scheduling, checkpointing, retries and resuming (``Tuner.restore``); this module
is the driver. Each trial runs experiments.sweep.trainable inside a Ray worker; the driver keeps
the results store (experiments.results.store) through its callbacks
(experiments.sweep.callbacks) and shows progress. ASHA runs one bracket per regime
(experiments.sweep.asha). Specs and plans are experiments.sweep.spec.

Starting, joining (token authentication included) and ending Ray is experiments.sweep.ray_runtime;
SIGTERM and Ctrl-C stop a sweep gracefully (experiments.sweep.stopping).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from ..data.resident import build_shared
from ..results.schema import SweepLaunch
from ..results.store import Journal, ended_trials, journaled_epochs, read_events, write_tables
from ..results.timeline import load_utilisation, sweep_times
from .asha import RegimeASHA
from .callbacks import ProgressCallback, StoreCallback, trial_id_of
from .ray_runtime import DASHBOARD_HOST, DASHBOARD_PORT, LocalRay, check_dashboard, init_ray, live_nodes
from .resources import Launch
from .spec import SweepSpec, launch_order, load_sweep, prepare, short_regimes
from .stopping import STOP, StopCallback, journal_interruption, stop_on_signals
from .trackers import build_callbacks
from .trainable import archscale_trial
from .utilisation import UtilisationSampler


@dataclass
class SweepSummary:
    """How a sweep ended: status counts, the errors, wall time, the trials table, and the signal
    that stopped it (experiments.sweep.stopping; None when it ran to the end)."""

    output_dir: Path
    counts: dict
    errors: list[tuple[str, str]]
    wall_time_s: float
    trials: Any = None
    stopped_by: int | None = None
    #: Where the launch's time went (experiments.results.schema.SweepTimes).
    times: Any = None

    @property
    def all_failed(self) -> bool:
        n = sum(self.counts.values())
        return n > 0 and self.counts.get("error", 0) == n


def run_sweep(sweep: SweepSpec | str | dict, *, address: str | None = None, quiet: bool = False,
              num_cpus: int | None = None, num_gpus: float | None = None, callbacks: list | None = None,
              dashboard: bool = False) -> SweepSummary:
    """Run a sweep, or resume it when its output directory holds an unfinished one.

    Ray is started locally (all this machine's CPUs/GPUs unless ``num_cpus``/``num_gpus``) unless
    ``address`` or RAY_ADDRESS names a cluster; an already-initialised Ray is used as it is.
    ``callbacks``: Tune callbacks added to the spec's ``callbacks:`` (callback objects, or entries
    as in the spec: "mlflow", {"name": "wandb", "project": ...}, "package.module:Class"; see
    experiments.sweep.trackers); a resumed sweep keeps the callbacks it was started with.
    ``dashboard``: start Ray's dashboard on DASHBOARD_HOST:DASHBOARD_PORT (a local Ray only;
    needs ``ray[default]``).
    All processes of a local Ray end with the sweep, or with its driver (experiments.sweep.session_guard).
    SIGTERM and Ctrl-C stop it gracefully (experiments.sweep.stopping; ``stopped_by`` says which).
    """
    if not isinstance(sweep, SweepSpec):
        sweep = load_sweep(sweep)
    tune_callbacks = build_callbacks([*sweep.callbacks, *(callbacks or [])], experiment=sweep.name)
    if dashboard:
        check_dashboard(address or os.environ.get("RAY_ADDRESS"))
    os.environ["ARCHSCALE_QUIET"] = "1" if quiet else "0"
    # Ray starts while the plan is made and the in-memory data set built (once, for every trial)
    with ThreadPoolExecutor(1, thread_name_prefix="archscale-plan") as pool:
        planned = pool.submit(_plan_and_data, sweep)
        started_here = init_ray(address, num_cpus, num_gpus, dashboard=dashboard)
        try:
            trials, arrays = planned.result()
        except BaseException:  # a user error in the plan: the Ray started for it ends, nothing is left
            if started_here:
                ray.shutdown()
            raise
    if not quiet:
        for line in short_regimes(sweep).values():
            print(f"warning: {line}", file=sys.stderr, flush=True)
    if dashboard and started_here and not quiet:
        print(f"Ray dashboard: http://{DASHBOARD_HOST}:{DASHBOARD_PORT} (from another machine: "
              f"ssh -L {DASHBOARD_PORT}:{DASHBOARD_HOST}:{DASHBOARD_PORT} THIS_HOST)", flush=True)
    t0 = time.time()
    local_ray = LocalRay(sweep.output_dir, started_here)
    try:
        data = {key: ray.put(a) for key, a in arrays.items()}  # read by a node's workers without copies
        del arrays
        return _fit(sweep, trials, quiet, t0, tune_callbacks, data)
    finally:
        local_ray.shutdown()


def _plan_and_data(sweep: SweepSpec) -> tuple[list[dict], dict]:
    """The sweep's trials (plan.json and manifest.json written), and the arrays of each in-memory
    data set its trials train on (experiments.data.resident.build_shared; {} for folders)."""
    trials, _ = prepare(sweep)
    shapes = {(t["resolution"], t["in_channels"], t["seed"]) for t in trials}
    return trials, build_shared(sweep.dataset, shapes)


def _fit(sweep: SweepSpec, trials: list[dict], quiet: bool, t0: float, extra_callbacks: list,
         data: dict | None = None) -> SweepSummary:
    cluster = ray.cluster_resources()
    res = sweep.resources.per_trial(cluster)
    launch, concurrency = _launch(sweep, cluster, len(trials), quiet)
    exp_path = sweep.experiment_path
    resumed = tune.Tuner.can_restore(exp_path)
    # The journal, written as each trial ends, is the record of what finished; Tune's experiment
    # state is saved only every few seconds and may lag behind it after a kill, or be missing.
    events = read_events(sweep.output_dir)
    ended = ended_trials(events, errored=not sweep.retry_errored_on_resume)
    trainable = tune.with_resources(tune.with_parameters(archscale_trial, already_ended=frozenset(ended),
                                                         launch=launch, journaled=journaled_epochs(events),
                                                         data=data or {}), res)
    Journal(sweep.output_dir).append(SweepLaunch(time=time.time(), resumed=resumed, already_ended=sorted(ended),
                                                 ray=ray.get_runtime_context().gcs_address,
                                                 command_started_at=command_started_at(),
                                                 cpus=concurrency * launch.workers * launch.cpus,
                                                 gpus=concurrency * launch.workers * launch.gpus))
    if ended and not quiet:
        print(f"resuming {sweep.name}: {len(ended)} of {len(trials)} trials already ended", flush=True)
    if resumed:
        tuner = tune.Tuner.restore(exp_path, trainable, resume_unfinished=True,
                                   resume_errored=sweep.retry_errored_on_resume, restart_errored=False)
    else:
        s = sweep.scheduler
        scheduler = (RegimeASHA({r.name: r.epochs for r in sweep.regimes}, s.metric, s.mode, s.grace_period,
                                s.reduction_factor) if s.name == "asha" else None)
        run_config = tune.RunConfig(
            name=sweep.name, storage_path=sweep.storage_base, verbose=0,
            failure_config=tune.FailureConfig(max_failures=sweep.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[StoreCallback(str(sweep.output_dir), {t["trial_id"]: t["epochs"] for t in trials},
                                     concurrency),
                       ProgressCallback(len(trials), concurrency), StopCallback(), *extra_callbacks])
        param_space = {"trial": tune.grid_search([{"trial_id": t["trial_id"], "config": t["config"],
                                                    "cpus": res["cpu"]} for t in launch_order(trials)])}
        tuner = tune.Tuner(trainable, param_space=param_space, run_config=run_config,
                           tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=concurrency,
                                                       reuse_actors=True, trial_dirname_creator=_dirname,
                                                       trial_name_creator=_dirname))  # trackers' run names
    if not quiet:
        print(f"sweep {sweep.name}: {len(trials)} trials, up to {concurrency} at a time "
              f"({sweep.resources.describe(cluster)}); results in {sweep.output_dir}", flush=True)
    with stop_on_signals(), UtilisationSampler(sweep.output_dir, cpus=concurrency * launch.workers * launch.cpus), \
            _user_errors_in_one_line():
        tuner.fit()
    trial_df, _ = write_tables(sweep.output_dir)
    if STOP.signal is not None:
        journal_interruption(sweep.output_dir, STOP.signal, sorted(trial_df.trial_id[trial_df.status == "running"]))
        trial_df, _ = write_tables(sweep.output_dir)
    counts = {k: int(v) for k, v in trial_df["status"].value_counts().items()}
    errors = [(r.trial_id, r.error) for r in trial_df.itertuples() if r.status == "error"]
    times = sweep_times(read_events(sweep.output_dir), trial_df, load_utilisation(sweep.output_dir))
    return SweepSummary(sweep.output_dir, counts, errors, time.time() - t0, trial_df, STOP.signal, times)


class _NoUserErrorTracebacks(logging.Filter):
    """Drops Tune's traceback of a trial that failed on a user error (an ArchScaleError, such as an
    image that cannot be read): the sweep's summary and journal already give its one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or "ArchScaleError" not in str(error)


@contextlib.contextmanager
def _user_errors_in_one_line():
    """Tune's controller keeps logging other trial failures with their tracebacks."""
    logger, keep = logging.getLogger("ray.tune.execution.tune_controller"), _NoUserErrorTracebacks()
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _launch(sweep: SweepSpec, cluster: dict, n_trials: int, quiet: bool) -> tuple[Launch, int]:
    """(the workers of each trial, how many trials run at once) on this cluster; warns when its
    nodes cannot hold one trial's workers (they wait until an autoscaler adds nodes)."""
    from .data_parallel import RUNS_DIR

    nodes = live_nodes()
    problem = sweep.resources.placement_problem(cluster, nodes)
    if problem and not quiet:
        print(f"warning: {problem}", file=sys.stderr, flush=True)
    launch = sweep.resources.launch(cluster, f"{sweep.experiment_path}/{RUNS_DIR}")
    return launch, sweep.resources.concurrency(cluster, n_trials, nodes)


def command_started_at() -> float:
    """When this process (the command that runs the sweep) started, Unix time."""
    from .session_guard import psutil

    return psutil().Process().create_time()


def _dirname(trial) -> str:
    return trial_id_of(trial)[:150]
