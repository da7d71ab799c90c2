"""Scaling sweeps on Ray Tune: launch, watch, resume after a crash, survive failed trials.

Ray Tune does the scheduling, checkpointing, retries and resuming (``Tuner.restore``); this module
is the driver. Before the trials, the cost step measures each network alone on the device
(experiments.sweep.costs). Each trial runs experiments.sweep.trainable inside a Ray worker; the driver keeps
the results store (experiments.results.store) through its callbacks
(experiments.sweep.callbacks) and shows progress. ASHA runs one bracket per regime
(experiments.sweep.asha). Specs and plans are experiments.sweep.spec.

Starting, joining (token authentication included) and ending Ray is experiments.sweep.ray_runtime;
SIGTERM and Ctrl-C stop a sweep gracefully (experiments.sweep.stopping).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from scaling.errors import ArchScaleError
from scaling.files import check_writable_dir, first_missing

from ..data.resident import build_shared
from ..results.lock import DriverLock
from ..results.schema import SweepLaunch, read_manifest
from ..results.store import Journal, ended_trials, failed_on_user_errors, journaled_epochs, read_events, write_tables
from ..results.timeline import load_utilisation, sweep_times
from .asha import RegimeASHA
from .callbacks import LaunchCallbacks, ProgressCallback, QuietTrialProgress, StoreCallback, trial_id_of
from .costs import cost_step
from .ray_runtime import DASHBOARD_HOST, DASHBOARD_PORT, LocalRay, check_dashboard, init_ray, live_nodes
from .resources import Launch
from .spec import SweepSpec, check_rerun, launch_order, load_sweep, make_plan, short_regimes, write_plan
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
              dashboard: bool = False, restart: bool = False) -> SweepSummary:
    """Run a sweep, or resume it when its output directory holds an unfinished one.

    Ray is started locally (all this machine's CPUs/GPUs unless ``num_cpus``/``num_gpus``) unless
    ``address`` or RAY_ADDRESS names a cluster; an already-initialised Ray is used as it is.
    ``callbacks``: Tune callbacks added to the spec's ``callbacks:`` (callback objects, or entries
    as in the spec: "mlflow", {"name": "wandb", "project": ...}, "package.module:Class"; see
    experiments.sweep.trackers); a resumed sweep runs the callbacks of this call and its spec,
    never those it was started with (experiments.sweep.callbacks.LaunchCallbacks).
    ``restart``: keep the trials the journal says ended and drop Tune's saved state (its
    checkpoints too), so the others start afresh; the way out when that state cannot be restored
    or the spec changed what it keeps (scheduler, resources, retries).
    ``dashboard``: start Ray's dashboard on DASHBOARD_HOST:DASHBOARD_PORT (a local Ray only;
    needs ``ray[default]``).
    One driver at a time per output directory (experiments.results.lock); a user error before
    Tune starts leaves no folder it created behind.
    All processes of a local Ray end with the sweep, or with its driver (experiments.sweep.session_guard).
    SIGTERM and Ctrl-C stop it gracefully (experiments.sweep.stopping; ``stopped_by`` says which).
    """
    if not isinstance(sweep, SweepSpec):
        sweep = load_sweep(sweep)
    if dashboard:
        check_dashboard(address or os.environ.get("RAY_ADDRESS"))
    check_writable_dir(sweep.output_dir, "output_dir")
    created = first_missing(sweep.output_dir)
    sweep.output_dir.mkdir(parents=True, exist_ok=True)
    lock = DriverLock(sweep.output_dir)
    try:
        try:  # until Tune starts, a user error takes back the folders this call made
            lock.acquire()
            tune_callbacks = build_callbacks([*sweep.callbacks, *(callbacks or [])], experiment=sweep.name,
                                             output_dir=sweep.output_dir)
            os.environ["ARCHSCALE_QUIET"] = "1" if quiet else "0"
            # Ray starts while the plan is made and the in-memory data set built (once, for every trial)
            with ThreadPoolExecutor(1, thread_name_prefix="archscale-plan") as pool:
                planned = pool.submit(_plan_and_data, sweep)
                started_here = init_ray(address, num_cpus, num_gpus, dashboard=dashboard)
                try:
                    trials, expansion, arrays = planned.result()
                    resume = tune_state(sweep, restart)  # once the plan is known to be this folder's
                except BaseException:  # a user error: the Ray started for it ends
                    if started_here:
                        ray.shutdown()
                    raise
        except BaseException:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        if not quiet:
            for line in short_regimes(sweep).values():
                print(f"warning: {line}", file=sys.stderr, flush=True)
        if dashboard and started_here and not quiet:
            print(f"Ray dashboard: http://{DASHBOARD_HOST}:{DASHBOARD_PORT} (from another machine: "
                  f"ssh -L {DASHBOARD_PORT}:{DASHBOARD_HOST}:{DASHBOARD_PORT} THIS_HOST)", flush=True)
        t0 = time.time()
        local_ray = LocalRay(sweep.output_dir, started_here)
        with _user_errors_in_one_line():  # until Ray is shut down: a stopped trial's error comes late
            try:
                write_plan(sweep, trials, expansion)
                data = {key: ray.put(a) for key, a in arrays.items()}  # read by a node's workers without copies
                del arrays
                return _fit(sweep, trials, quiet, t0, tune_callbacks, resume, data)
            finally:
                local_ray.shutdown()
    finally:
        lock.release()


def tune_state(sweep: SweepSpec, restart: bool) -> bool:
    """Whether this launch restores Tune's saved state of the sweep (False: Tune starts afresh and
    the trials the journal says ended return at once). ``restart`` drops that state. Raises
    ArchScaleError, naming the cause and ``--restart`` as the way out, when the state cannot be
    read or the spec changed what it keeps (Tune restores its scheduler, resources and retries,
    whatever the spec now says)."""
    exp_path = sweep.experiment_path
    if restart:
        _drop(exp_path)
        return False
    if not tune.Tuner.can_restore(exp_path):
        return False
    states = _experiment_states(exp_path)
    if not states:  # killed after Tune wrote tuner.pkl and before its first state: nothing to restore
        _drop(exp_path)
        return False
    way_out = _restart_hint(sweep)
    old = read_manifest(sweep.output_dir)
    if old is not None:
        now = json.loads(json.dumps({"scheduler": sweep.scheduler.to_dict(), "resources": sweep.resources.to_dict(),
                                     "retries": sweep.retries}, default=str))
        was = {"scheduler": old.scheduler, "resources": old.resources, "retries": (old.spec or {}).get("retries", 0)}
        for key in now:
            if was[key] is not None and was[key] != now[key]:
                raise ArchScaleError(key, f"changed since the sweep started ({was[key]} -> {now[key]}), and Tune's "
                                          f"saved state keeps the old value; {way_out}, or put the old value back "
                                          f"to resume")
    if "://" not in exp_path:
        try:
            json.loads(Path(states[-1]).read_text())
        except (OSError, ValueError) as e:
            raise ArchScaleError("output_dir", f"Tune's saved state {states[-1]} cannot be read "
                                               f"({type(e).__name__}); {way_out}") from None
    return True


def _experiment_states(exp_path: str) -> list[str]:
    """Tune's saved experiment states in its experiment folder, local or at a storage URI, oldest
    first by name (Tune's restore reads them; tuner.pkl alone does not hold the trials)."""
    if "://" not in exp_path:
        return [str(p) for p in sorted(Path(exp_path).glob("experiment_state-*.json"))]
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(exp_path)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return sorted(i.path for i in infos
                  if i.base_name.startswith("experiment_state-") and i.base_name.endswith(".json"))


def _restart_hint(sweep: SweepSpec) -> str:
    """The way out when Tune's state cannot serve this launch: --restart, and what it keeps."""
    ended = ended_trials(read_events(sweep.output_dir), errored=not sweep.retry_errored_on_resume)
    return f"rerun with --restart to keep the {len(ended)} ended trials and start the others afresh"


def _drop(exp_path: str) -> None:
    """Remove Tune's experiment folder (its state and checkpoints), local or at a storage URI."""
    if "://" in exp_path:
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(exp_path)
        if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
            fs.delete_dir(path)
    else:
        shutil.rmtree(exp_path, ignore_errors=True)


def _plan_and_data(sweep: SweepSpec) -> tuple[list[dict], Any, dict]:
    """The sweep's trials and space expansion (checked against the folder's plan.json; nothing is
    written, so a launch that fails leaves the folder as it was), and the arrays of each in-memory
    data set its trials train on (experiments.data.resident.build_shared; {} for folders)."""
    trials, expansion = make_plan(sweep)
    trials = check_rerun(sweep, trials)
    shapes = {(t["resolution"], t["in_channels"], t["seed"]) for t in trials}
    return trials, expansion, build_shared(sweep.dataset, shapes)


def _fit(sweep: SweepSpec, trials: list[dict], quiet: bool, t0: float, extra_callbacks: list, resumed: bool,
         data: dict | None = None) -> SweepSummary:
    cluster = ray.cluster_resources()
    # before any trial, so the device is quiet; it also settles trials_per_gpu: auto
    packing = cost_step(sweep, trials, sweep.resources.launch(cluster), live_nodes(), quiet=quiet).packing
    if packing is not None:
        sweep = dataclasses.replace(sweep, resources=sweep.resources.packed(packing.trials_per_gpu))
    res = sweep.resources.per_trial(cluster)
    launch, concurrency = _launch(sweep, cluster, len(trials), quiet)
    exp_path = sweep.experiment_path
    # The journal, written as each trial ends, is the record of what finished; Tune's experiment
    # state is saved only every few seconds and may lag behind it after a kill, or be missing.
    events = read_events(sweep.output_dir)
    ended = ended_trials(events, errored=not sweep.retry_errored_on_resume)
    trainable = tune.with_resources(tune.with_parameters(archscale_trial, already_ended=frozenset(ended),
                                                         launch=launch, journaled=journaled_epochs(events),
                                                         data=data or {}), res)
    callbacks = [StoreCallback(str(sweep.output_dir), {t["trial_id"]: t["epochs"] for t in trials}, concurrency),
                 ProgressCallback(len(trials), concurrency), StopCallback(), *extra_callbacks]
    with LaunchCallbacks.installed(callbacks) as launch_callbacks:
        if resumed:
            try:
                # Tune resumes errored trials only when asked: those that failed on a user error are
                # run again (the journal keeps the other failures ended, and they return at once)
                retry = sweep.retry_errored_on_resume or bool(failed_on_user_errors(events))
                tuner = tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=retry,
                                           restart_errored=False)
            except Exception as e:  # noqa: BLE001 - any failure to unpickle or read Tune's state
                raise ArchScaleError("output_dir", f"Tune's saved state in {exp_path} cannot be restored "
                                                   f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                                                   f"); {_restart_hint(sweep)}") from None
        else:
            s = sweep.scheduler
            scheduler = (RegimeASHA({r.name: r.epochs for r in sweep.regimes}, s.metric, s.mode, s.grace_period,
                                    s.reduction_factor) if s.name == "asha" else None)
            run_config = tune.RunConfig(
                name=sweep.name, storage_path=sweep.storage_base, verbose=0,
                failure_config=tune.FailureConfig(max_failures=sweep.retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                callbacks=[launch_callbacks, QuietTrialProgress()])
            param_space = {"trial": tune.grid_search([{"trial_id": t["trial_id"], "config": t["config"],
                                                        "cpus": res["cpu"]} for t in launch_order(trials)])}
            tuner = tune.Tuner(trainable, param_space=param_space, run_config=run_config,
                               tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=concurrency,
                                                           reuse_actors=True, trial_dirname_creator=_dirname,
                                                           trial_name_creator=_dirname))  # trackers' run names
        Journal(sweep.output_dir).append(SweepLaunch(time=time.time(), resumed=resumed, already_ended=sorted(ended),
                                                     ray=ray.get_runtime_context().gcs_address,
                                                     command_started_at=command_started_at(),
                                                     cpus=concurrency * launch.workers * launch.cpus,
                                                     gpus=concurrency * launch.workers * launch.gpus))
        if ended and not quiet:
            print(f"resuming {sweep.name}: {len(ended)} of {len(trials)} trials already ended", flush=True)
        if not quiet:
            print(f"sweep {sweep.name}: {len(trials)} trials, up to {concurrency} at a time "
                  f"({sweep.resources.describe(cluster)}); results in {sweep.output_dir}", flush=True)
        with stop_on_signals(), UtilisationSampler(sweep.output_dir, cpus=concurrency * launch.workers * launch.cpus):
            tuner.fit()
    trial_df, _ = write_tables(sweep.output_dir)
    if STOP.signal is not None or STOP.user_error is not None:
        journal_interruption(sweep.output_dir, STOP.signal, sorted(trial_df.trial_id[trial_df.status == "running"]))
        trial_df, _ = write_tables(sweep.output_dir)
    if STOP.signal is None and STOP.user_error is not None:
        field, _, message = STOP.user_error.partition(": ")
        stopped = "the sweep stopped; rerun it once fixed to run that trial again and go on"
        raise ArchScaleError(field, f"{message} ({stopped})") if message else ArchScaleError("", f"{field} ({stopped})")
    counts = {k: int(v) for k, v in trial_df["status"].value_counts().items()}
    errors = [(r.trial_id, r.error) for r in trial_df.itertuples() if r.status == "error"]
    times = sweep_times(read_events(sweep.output_dir), trial_df, load_utilisation(sweep.output_dir))
    return SweepSummary(sweep.output_dir, counts, errors, time.time() - t0, trial_df, STOP.signal, times)


class _NoUserErrorTracebacks(logging.Filter):
    """Drops Tune's traceback of a trial that failed on a user error (an ArchScaleError, such as an
    image that cannot be read), Ray's "Unhandled error" of one (a trial stopped while it failed,
    whose result nobody fetched), and Tune's closing "Trials did not complete: [...]": the
    sweep's summary, or its user error's one line, and the journal say it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "ray.tune.tune":
            return not str(record.msg).startswith("Trials did not complete")
        error = record.exc_info[1] if record.exc_info else None
        text = str(error) if error is not None else record.getMessage() if record.name == RAY_WORKER_LOG else ""
        return "ArchScaleError" not in text


#: The logger of Ray's "Unhandled error" lines (ray/_private/worker.py).
RAY_WORKER_LOG = "ray._private.worker"


@contextlib.contextmanager
def _user_errors_in_one_line():
    """Tune's controller and Ray keep logging other trial failures with their tracebacks."""
    keep = _NoUserErrorTracebacks()
    loggers = [logging.getLogger(name) for name in ("ray.tune.execution.tune_controller", "ray.tune.tune",
                                                    RAY_WORKER_LOG)]
    for logger in loggers:
        logger.addFilter(keep)
    try:
        yield
    finally:
        for logger in loggers:
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
