"""Scaling sweeps on Ray Tune: launch, watch, resume after a crash, survive failed trials.

Ray Tune does the scheduling, checkpointing, retries and resuming (``Tuner.restore``); this module
runs the trainer inside Tune trials, keeps the results store (experiments.results) through a
driver-side callback, and shows progress. ASHA runs one bracket per regime, so a trial only ever
competes with trials of the same training length. Specs and plans are experiments.sweep_spec.

Joining a cluster (token authentication included) is experiments.ray_cluster; ending a local
Ray's processes, however the driver ends, experiments.ray_session; SIGTERM and Ctrl-C stop a
sweep gracefully (experiments.stopping).
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from scaling.errors import ArchScaleError

from .ray_cluster import join_ray
from .ray_options import Launch
from .ray_session import LocalRay
from .results import REPLAYED, Journal, ended_trials, journaled_epochs, read_events, write_tables
from .stopping import STOP, StopCallback, journal_interruption, stop_on_signals
from .sweep_spec import SweepSpec, load_sweep, prepare
from .trackers import build_callbacks

#: Where ``run_sweep(dashboard=True)`` serves Ray's dashboard (loopback only: reach it over SSH).
DASHBOARD_HOST, DASHBOARD_PORT = "127.0.0.1", 8265

EPOCH_FIELDS = ("trial_id", "name", "regime", "seed", "epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr",
                "images_per_s", "epoch_time_s", "time_s", "status", "device", "node", "hostname", "gpu_ids",
                "cuda_visible_devices", "peak_memory_bytes", "latency_ms", "throughput", "batch_size", "lr_peak",
                "compile_time_s", "effective_dropout", "effective_stochastic_depth",
                "effective_randaugment_magnitude", "workers", "devices")


def _tid(trial) -> str:
    """Our trial id (config__regime__s<seed>) of a Tune trial."""
    return trial.config["trial"]["trial_id"]


# ----- inside a trial (a Ray worker) ------------------------------------------------------------
def archscale_trial(config: dict, already_ended: frozenset = frozenset(), launch: Launch | None = None,
                    journaled: dict | None = None) -> None:
    """Tune's entry point: the param space nests each trial's dict under 'trial'.

    ``already_ended`` holds the trials the journal says ended before this launch. Tune saves its
    experiment state only every few seconds, so after a kill it may restore a trial that had
    finished as still running; such a trial returns at once instead of training again.
    ``launch``: this launch's workers per trial; several run the trial through Ray Train
    (experiments.data_parallel). ``journaled``: the last epoch the journal holds of each trial.
    """
    tid = config["trial"]["trial_id"]
    if tid in already_ended:
        return
    journaled_epoch = (journaled or {}).get(tid, 0)
    if launch is not None and launch.workers > 1:
        from .data_parallel import tune_data_parallel

        return tune_data_parallel(config["trial"], launch, journaled_epoch)
    tune_trainable(config["trial"], launch, journaled_epoch)


def tune_trainable(config: dict, launch: Launch | None = None, journaled_epoch: int = 0) -> None:
    """One trial of train_trial, resumed from Tune's checkpoint when Tune restores it (or from
    its Ray Train checkpoint when it last ran on several workers: see ``launch``; the epochs of
    that checkpoint after ``journaled_epoch`` are reported first)."""
    import torch

    from .data_parallel import newest_state, train_run_checkpoint, unjournaled
    from .distributed import RankContext
    from .trainer import train_trial

    trial = dict(config["config"])
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    trial["device"] = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
    trial["cpus"] = max(1, int(launch.cpus if launch is not None else config.get("cpus", 1)))
    where = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
             "gpu_ids": ",".join(gpu_ids), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    run = launch.run_path(config["trial_id"]) if launch is not None else None
    # on local storage Tune's checkpoint is one of those on disk, so the newest there is at least as new
    tune_state = persisted_state(launch, config["trial_id"]) or tune.get_checkpoint()
    resume = newest_state(tune_state, train_run_checkpoint(run))
    for metrics in unjournaled(resume, journaled_epoch):
        tune.report({**metrics, "trial_id": config["trial_id"]})

    def report(metrics: dict, checkpoint_dir: str | None) -> None:
        metrics = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        metrics.update(where, trial_id=config["trial_id"])
        if checkpoint_dir:  # train_trial removes it once Tune has persisted its copy
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
        else:
            tune.report(metrics)

    ranks = RankContext(device_share=launch.device_share) if launch is not None else RankContext()
    train_trial(trial, report=report, resume=resume, ranks=ranks)


# ----- driver-side callbacks (pickled with the experiment, restored on resume) -------------------
class StoreCallback(Callback):
    """Keeps the results store: journal events for trial start, each epoch and the end; the
    trials/epochs tables are rewritten whenever a trial ends. Holds only paths (picklable)."""

    def __init__(self, output_dir: str, planned_epochs: dict[str, int]):
        self.output_dir, self.planned_epochs = output_dir, planned_epochs

    def setup(self, **info):
        # The trials this launch's driver found ended in the journal (its last "sweep" event):
        # Tune may still run them after a resume (archscale_trial returns at once); they are not
        # journaled again.
        events = read_events(self.output_dir)
        launches = [e for e in events if e.get("event") == "sweep"]
        self.skip = frozenset(launches[-1].get("already_ended", ())) if launches else frozenset()
        # The last epoch journaled per trial: a trial Tune retries within this launch (its node
        # was lost, say) replays its checkpoint's epochs from the launch's count (see
        # experiments.data_parallel.unjournaled), and those the journal holds are not added again.
        self.journaled = journaled_epochs(events)

    def _append(self, event: dict) -> None:
        if event["trial_id"] not in self.skip:
            Journal(self.output_dir).append(event)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._append({"event": "start", "trial_id": _tid(trial), "time": time.time()})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        tid, epoch = _tid(trial), result.get("epoch", 0)
        if result.get(REPLAYED) and epoch <= self.journaled.get(tid, 0):
            return
        self.journaled[tid] = max(self.journaled.get(tid, 0), epoch)
        event = {"event": "epoch", **{k: result[k] for k in EPOCH_FIELDS if k in result}}
        event["trial_id"] = tid
        self._append(event)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if _tid(trial) in self.skip:
            return
        last = trial.last_result or {}
        if last.get("status") == "diverged":
            status = "diverged"
        elif last.get("epoch", 0) < self.planned_epochs.get(_tid(trial), 0):
            status = "stopped"  # the scheduler stopped it early: a result with fewer epochs
        else:
            status = "done"
        self._append({"event": "end", "trial_id": _tid(trial), "status": status, "time": time.time()})
        write_tables(self.output_dir)

    def on_trial_error(self, iteration, trials, trial, **info):
        if _tid(trial) in self.skip:
            return
        self._append({"event": "end", "trial_id": _tid(trial), "status": "error",
                      "error": error_line(_error_text(trial)), "time": time.time()})
        write_tables(self.output_dir)

    def on_trial_recover(self, iteration, trials, trial, **info):
        # The trial failed (its node was lost, say) and Tune retries it from its last checkpoint.
        self._append({"event": "interrupted", "trial_id": _tid(trial), "reason": error_line(_error_text(trial)),
                      "time": time.time()})

    def on_experiment_end(self, trials, **info):
        write_tables(self.output_dir)


def _error_text(trial) -> str | None:
    """The trial's error trace: Tune writes it on the driver first, then syncs it to storage."""
    local = trial.error_file
    if local and os.path.isfile(local):
        with open(local) as f:
            return f.read()
    return trial.get_error()


def error_line(error) -> str:
    """The meaningful last line of a trial's exception (Tune wraps it in a traceback)."""
    if error is None:
        return "unknown error"
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if not ln.startswith(("File ", "^", "~")) and ("Error" in ln or "Exception" in ln or "error" in ln):
            return ln[:500]
    return (lines[-1] if lines else type(error).__name__)[:500]


class ProgressCallback(Callback):
    """A live view that fits one terminal line: trials finished / running / pending, the best
    top-1 so far and an ETA. Rewritten in place on a terminal, a line every few seconds otherwise;
    nothing in quiet mode (ARCHSCALE_QUIET=1)."""

    def __init__(self, total: int, concurrency: int, every_s: float = 5.0):
        self.total, self.concurrency, self.every_s = total, max(1, concurrency), every_s

    def setup(self, **info):
        self.quiet = os.environ.get("ARCHSCALE_QUIET") == "1"
        self.tty = sys.stdout.isatty()
        self.t0, self.last_print, self.best = time.time(), 0.0, None
        self.durations: list[float] = []
        self.starts: dict[str, float] = {}
        self.reported: set[str] = set()

    def line(self, trials) -> str:
        states = [t.status for t in trials]
        done, failed = states.count("TERMINATED"), states.count("ERROR")
        running = states.count("RUNNING") + states.count("PAUSED")
        pending = max(self.total - done - failed - running, 0)
        eta = ""
        if self.durations:  # the work left (pending trials, the rest of running ones) over the slots
            mean, now = sum(self.durations) / len(self.durations), time.time()
            left = pending * mean + sum(max(mean - (now - self.starts[t.trial_id]), 0.0) for t in trials
                                        if t.status == "RUNNING" and t.trial_id in self.starts)
            eta = f" | ETA {_fmt_s(left / self.concurrency)}"
        best = f" | best top-1 {self.best[0]:.2f}% {self.best[1]}" if self.best else ""
        return (f"[{_fmt_s(time.time() - self.t0)}] {done + failed}/{self.total} finished ({failed} failed), "
                f"{running} running, {pending} pending{best}{eta}")

    def _print(self, trials, force: bool = False) -> None:
        if self.quiet or (not force and time.time() - self.last_print < self.every_s):
            return
        self.last_print = time.time()
        text = self.line(trials)
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns
            print("\r" + text[: width - 1].ljust(width - 1), end="", flush=True)
        else:
            print(text, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.starts[trial.trial_id] = time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.reported.add(trial.trial_id)
        top1 = result.get("val_top1")
        if top1 is not None and (self.best is None or top1 > self.best[0]):
            self.best = (top1, f"{result.get('name')} ({result.get('regime')}, seed {result.get('seed')})")
        self._print(trials)

    def _ended(self, trials, trial) -> None:
        started = self.starts.pop(trial.trial_id, None)
        if started is not None and trial.trial_id in self.reported:  # a skipped trial reports nothing
            self.durations.append(time.time() - started)
        self._print(trials, force=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._ended(trials, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trials, trial)

    def on_experiment_end(self, trials, **info):
        if not self.quiet and self.tty:
            print(flush=True)


def _fmt_s(s: float) -> str:
    """h:mm:ss or m:ss."""
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class RegimeASHA(FIFOScheduler):
    """ASHA with one bracket per regime: a trial only competes with trials of its own length.

    Each regime gets Ray's own ASHAScheduler (time attribute: the epoch, max_t: the regime's
    epochs); this class only routes each trial to its regime's scheduler.
    """

    def __init__(self, regimes: dict[str, int], metric: str, mode: str, grace_period: int,
                 reduction_factor: float):
        super().__init__()
        self.by_regime = {name: ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=epochs,
                                              grace_period=min(grace_period, epochs),
                                              reduction_factor=reduction_factor)
                          for name, epochs in regimes.items()}

    def _of(self, trial) -> ASHAScheduler:
        return self.by_regime[trial.config["trial"]["config"]["regime"]["name"]]

    def set_search_properties(self, metric, mode, **spec):
        return all(a.set_search_properties(metric, mode, **spec) for a in self.by_regime.values())

    def on_trial_add(self, tune_controller, trial):
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "; ".join(f"{k}: {v.debug_string()}" for k, v in self.by_regime.items())


# ----- the driver ---------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    """How a sweep ended: status counts, the errors, wall time, the trials table, and the signal
    that stopped it (experiments.stopping; None when it ran to the end)."""

    output_dir: Path
    counts: dict
    errors: list[tuple[str, str]]
    wall_time_s: float
    trials: Any = None
    stopped_by: int | None = None

    @property
    def all_failed(self) -> bool:
        n = sum(self.counts.values())
        return n > 0 and self.counts.get("error", 0) == n


def persisted_state(launch: Launch | None, trial_id: str) -> dict | None:
    """The newest checkpoint Tune has persisted for ``trial_id`` in a local storage path, loaded,
    or None. Tune's experiment state (and so ``tune.get_checkpoint()`` after a rerun) is saved only
    every few seconds and can name an older checkpoint after a stop or a kill; the trial then
    resumes from its last persisted epoch instead of training one again. Remote storage (a URI)
    and a checkpoint a kill left half-copied are passed over."""
    from .trainer import STATE_FILE, load_checkpoint

    if launch is None or not launch.storage_path or "://" in launch.storage_path:
        return None
    trial_dir = Path(launch.storage_path).parent / trial_id[:150]  # _dirname: the experiment's trial folder
    for folder in sorted(trial_dir.glob("checkpoint_*"), reverse=True):
        if (folder / STATE_FILE).is_file():
            try:
                return load_checkpoint(folder)
            except Exception:  # noqa: BLE001 - half-written by a kill: try the one before
                continue
    return None


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None,
             dashboard: bool = False) -> bool:
    """Join ``address`` (or RAY_ADDRESS; with the cluster's token when it asks for one, see
    experiments.ray_cluster.join_ray), or start a local Ray bound to loopback with Ray's token
    authentication on and the dashboard off (on, at DASHBOARD_HOST:DASHBOARD_PORT, with
    ``dashboard``). Returns True when this call initialised Ray (started it, or connected to the
    cluster), which the caller then shuts down."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's legacy output is silent at verbose=0
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = dict(include_dashboard=dashboard, log_to_driver=False, logging_level=logging.ERROR)
    if address:
        join_ray(address, **kwargs)
    else:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, _node_ip_address="127.0.0.1",
                 dashboard_host=DASHBOARD_HOST, **({"dashboard_port": DASHBOARD_PORT} if dashboard else {}), **kwargs)
    return True


def run_sweep(sweep: SweepSpec | str | dict, *, address: str | None = None, quiet: bool = False,
              num_cpus: int | None = None, num_gpus: float | None = None, callbacks: list | None = None,
              dashboard: bool = False) -> SweepSummary:
    """Run a sweep, or resume it when its output directory holds an unfinished one.

    Ray is started locally (all this machine's CPUs/GPUs unless ``num_cpus``/``num_gpus``) unless
    ``address`` or RAY_ADDRESS names a cluster; an already-initialised Ray is used as it is.
    ``callbacks``: Tune callbacks added to the spec's ``callbacks:`` (callback objects, or entries
    as in the spec: "mlflow", {"name": "wandb", "project": ...}, "package.module:Class"; see
    experiments.trackers); a resumed sweep keeps the callbacks it was started with.
    ``dashboard``: start Ray's dashboard on DASHBOARD_HOST:DASHBOARD_PORT (a local Ray only;
    needs ``ray[default]``).
    All processes of a local Ray end with the sweep, or with its driver (experiments.ray_session).
    SIGTERM and Ctrl-C stop it gracefully (experiments.stopping; ``stopped_by`` says which).
    """
    if not isinstance(sweep, SweepSpec):
        sweep = load_sweep(sweep)
    tune_callbacks = build_callbacks([*sweep.callbacks, *(callbacks or [])], experiment=sweep.name)
    if dashboard:
        check_dashboard(address or os.environ.get("RAY_ADDRESS"))
    trials, _ = prepare(sweep)
    os.environ["ARCHSCALE_QUIET"] = "1" if quiet else "0"
    started_here = init_ray(address, num_cpus, num_gpus, dashboard=dashboard)
    if dashboard and started_here and not quiet:
        print(f"Ray dashboard: http://{DASHBOARD_HOST}:{DASHBOARD_PORT} (from another machine: "
              f"ssh -L {DASHBOARD_PORT}:{DASHBOARD_HOST}:{DASHBOARD_PORT} THIS_HOST)", flush=True)
    t0 = time.time()
    local_ray = LocalRay(sweep.output_dir, started_here)
    try:
        return _fit(sweep, trials, quiet, t0, tune_callbacks)
    finally:
        local_ray.shutdown()


def check_dashboard(address: str | None) -> None:
    """Refuse ``--dashboard`` where it cannot start: joining a cluster (the head node runs the
    dashboard) or without Ray's dashboard packages (``ray[default]``). One-line ArchScaleError."""
    if address:
        raise ArchScaleError("dashboard", "a cluster's dashboard runs on its head node: start it there with "
                                          "'ray start --head --include-dashboard=true --dashboard-host=127.0.0.1'")
    try:
        import ray.dashboard.optional_deps  # noqa: F401 - what Ray itself checks before starting it
    except ImportError as e:
        raise ArchScaleError("dashboard", f"Ray's dashboard needs the packages of ray[default] ({e}): "
                                          f"pip install 'ray[default]'") from None


def _fit(sweep: SweepSpec, trials: list[dict], quiet: bool, t0: float, extra_callbacks: list) -> SweepSummary:
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
                                                         launch=launch, journaled=journaled_epochs(events)), res)
    Journal(sweep.output_dir).append({"event": "sweep", "time": time.time(), "resumed": resumed,
                                      "already_ended": sorted(ended), "ray": ray.get_runtime_context().gcs_address})
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
            callbacks=[StoreCallback(str(sweep.output_dir), {t["trial_id"]: t["epochs"] for t in trials}),
                       ProgressCallback(len(trials), concurrency), StopCallback(), *extra_callbacks])
        param_space = {"trial": tune.grid_search([{"trial_id": t["trial_id"], "config": t["config"],
                                                    "cpus": res["cpu"]} for t in trials])}
        tuner = tune.Tuner(trainable, param_space=param_space, run_config=run_config,
                           tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=concurrency,
                                                       reuse_actors=True, trial_dirname_creator=_dirname,
                                                       trial_name_creator=_dirname))  # trackers' run names
    if not quiet:
        print(f"sweep {sweep.name}: {len(trials)} trials, up to {concurrency} at a time "
              f"({sweep.resources.describe(cluster)}); results in {sweep.output_dir}", flush=True)
    with stop_on_signals():
        tuner.fit()
    trial_df, _ = write_tables(sweep.output_dir)
    if STOP.signal is not None:
        journal_interruption(sweep.output_dir, STOP.signal, sorted(trial_df.trial_id[trial_df.status == "running"]))
        trial_df, _ = write_tables(sweep.output_dir)
    counts = {k: int(v) for k, v in trial_df["status"].value_counts().items()}
    errors = [(r.trial_id, r.error) for r in trial_df.itertuples() if r.status == "error"]
    return SweepSummary(sweep.output_dir, counts, errors, time.time() - t0, trial_df, STOP.signal)


def _launch(sweep: SweepSpec, cluster: dict, n_trials: int, quiet: bool) -> tuple[Launch, int]:
    """(the workers of each trial, how many trials run at once) on this cluster; warns when its
    nodes cannot hold one trial's workers (they wait until an autoscaler adds nodes)."""
    from .data_parallel import RUNS_DIR

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    problem = sweep.resources.placement_problem(cluster, nodes)
    if problem and not quiet:
        print(f"warning: {problem}", file=sys.stderr, flush=True)
    launch = sweep.resources.launch(cluster, f"{sweep.experiment_path}/{RUNS_DIR}")
    return launch, sweep.resources.concurrency(cluster, n_trials, nodes)


def _dirname(trial) -> str:
    return _tid(trial)[:150]
