"""Sweep specs and plans: what a sweep will run, validated and priced before Ray starts.

Every config x regime x seed of a sweep spec is one trial (experiments.sweep runs them on Ray Tune).

A sweep spec (YAML, validated entirely before Ray starts)::

    name: digits_demo
    space: {base: ..., axes: ...}     # a space spec (see search_spaces.space), a preset name or a file
    regimes: [{name: rs-10, epochs: 4}, rs-100]
    dataset: digits                    # or {name: cifar10, root: /data/cifar10}
    seeds: [0, 1]                      # or a count: 2
    resources: {cpus: auto, gpus: auto, max_concurrent: 4, custom: {}}    # see experiments.sweep.resources
    resources: {workers: 8, cpus: 8, gpus: 1}       # each trial data-parallel on 8 GPUs
    scheduler: fifo                    # or {name: asha, grace_period: 1, reduction_factor: 2}
    output_dir: runs/digits_demo
    storage_path: null                 # default OUTPUT_DIR/ray; a shared path or s3://... on clusters
    retries: 0                         # retries of a failed trial, from its last checkpoint
    trial: {checkpoint_interval_s: 60, amp: null, compile: false, sync_bn: false}
    trial_overrides: {"d50-*": {checkpoint_every: 5}}   # per config-name pattern
    callbacks: [mlflow]                # trackers / Tune callbacks (see experiments.sweep.trackers)
    health: {chance_factor: 1.5, seed_margin_pp: 10}   # health thresholds (see experiments.results.health)
    cost_cache: ~/.cache/archscale/costs.parquet   # or false; see experiments.results.costs

This module imports no Ray: a dry run needs none.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import getpass
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.conventions import DATASET_TRAIN_SIZES, FLOP_CONVENTION, TRAIN_FLOPS_PER_FORWARD
from scaling.errors import ArchScaleError
from scaling.files import atomic_write_text
from scaling.spec import legacy_name
from scaling.validate import boolean, check_keys, is_whole, whole
from scaling.yamlio import read_mapping
from search_spaces import load_space, parse_space, trains_under
from search_spaces.table import SpaceTable, space_table

from ..data.datasets import DatasetConfig, dataset_check, dataset_from, dataset_train_size
from ..results.health import HealthRules
from ..results.schema import MANIFEST, PLAN, Manifest
from ..results.store import read_plan_file
from ..train.loop import effective_batch_size, split_batch
from ..train.regimes import Regime, regime_from, shortening_warning
from ..train.sources import regime_sources
from ..train.trial import TrialConfig
from .resources import Resources, Scheduler
from .trackers import CallbackSpec, callbacks_from

KEYS = ("name", "description", "space", "regimes", "dataset", "seeds", "resources", "scheduler", "output_dir",
        "storage_path", "retries", "trial", "trial_overrides", "retry_errored_on_resume", "callbacks", "health",
        "cost_cache")
TRIAL_OPTIONS = ("checkpoint_interval_s", "checkpoint_every", "amp", "channels_last", "compile", "sync_bn",
                 "max_steps_per_epoch", "fail_at_epoch")
#: Trial options older specs and plans may hold that trials no longer take, accepted and left out:
#: measure_inference (a network's latency and throughput are measured by the sweep's cost step).
RETIRED_TRIAL_OPTIONS = ("measure_inference",)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring)."""

    name: str
    space: Any  # search_spaces.Space
    regimes: tuple[Regime, ...]
    dataset: DatasetConfig
    seeds: tuple[int, ...]
    output_dir: Path
    resources: Resources = field(default_factory=Resources)
    scheduler: Scheduler = field(default_factory=Scheduler)
    storage_path: str | None = None
    retries: int = 0
    retry_errored_on_resume: bool = False
    trial: dict = field(default_factory=dict)
    trial_overrides: dict = field(default_factory=dict)
    description: str = ""
    #: Trackers and other Tune callbacks (``callbacks:``), checked and built by experiments.sweep.trackers.
    callbacks: tuple[CallbackSpec, ...] = ()
    #: The thresholds of the trials' health verdicts (``health:``, experiments.results.health).
    health: HealthRules = field(default_factory=HealthRules)
    #: Where measured network costs are cached (experiments.results.costs.cache_path): None, the default
    #: place; a path; or False, no cache.
    cost_cache: str | bool | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def storage_base(self) -> str:
        """Ray Tune's storage_path: a shared path or URI on clusters, else OUTPUT_DIR/ray."""
        return (self.storage_path or str(self.output_dir / "ray")).rstrip("/")

    @property
    def experiment_path(self) -> str:
        """Where Ray Tune keeps this sweep's experiment (a local path or a URI)."""
        return f"{self.storage_base}/{self.name}"


def load_sweep(source: str | Path | dict, output_dir: str | Path | None = None,
               data_root: str | None = None) -> SweepSpec:
    """Parse and validate a sweep spec from a YAML file or a dict; ``output_dir`` and ``data_root``
    override the spec's. The data set's files are checked when the plan is made."""
    data, where = _read(source)
    check_keys(data, KEYS, what="sweep-spec key")
    for key in ("space", "regimes"):
        if key not in data:
            raise ArchScaleError(key, f"a sweep spec needs {key}:")
    name = str(data.get("name") or (Path(source).stem if where else "sweep"))
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ArchScaleError("name", f"{name!r}: use letters, digits, '-', '_' or '.' (it names directories)")
    space = _space(data["space"], name, where)
    regimes = _regimes(data["regimes"])
    _check_pinned_length(space, regimes)
    seeds = _seeds(data.get("seeds", [0]))
    out = _output_dir(output_dir, data.get("output_dir"), where)
    retries = whole(data.get("retries", 0), "retries", low=0)
    dataset = dataset_from(data.get("dataset", "digits"))
    if data_root:
        dataset = dataclasses.replace(dataset, root=str(data_root))
    return SweepSpec(name=name, space=space, regimes=regimes, dataset=dataset, seeds=seeds, output_dir=out,
                     resources=Resources.from_spec(data.get("resources", {})),
                     scheduler=Scheduler.from_spec(data.get("scheduler", "fifo")),
                     storage_path=data.get("storage_path"), retries=retries,
                     retry_errored_on_resume=boolean(data.get("retry_errored_on_resume", False),
                                                     "retry_errored_on_resume"),
                     trial=_trial_options(data.get("trial", {}), "trial"),
                     trial_overrides={k: _trial_options(v, f"trial_overrides.{k}")
                                      for k, v in (data.get("trial_overrides") or {}).items()},
                     description=str(data.get("description", "")), callbacks=callbacks_from(data.get("callbacks")),
                     health=HealthRules.from_spec(data.get("health")),
                     cost_cache=_cost_cache(data.get("cost_cache")), raw=data)


def _read(source: str | Path | dict) -> tuple[dict, Path | None]:
    """(the spec's mapping, the folder of its file: relative paths start there; None for a dict)."""
    if isinstance(source, dict):
        return dict(source), None
    path = Path(source)
    if not path.is_file():
        raise ArchScaleError("sweep", f"no such file: {path}")
    return read_mapping(path, "sweep", "space, regimes, dataset, output_dir"), path.parent


def _space(value, name: str, where: Path | None):
    """The space: an inline mapping, a preset name, or a file (relative to the sweep spec's folder)."""
    if isinstance(value, str) and where is not None and (where / value).is_file():
        value = str(where / value)
    return parse_space(value, default_name=name) if isinstance(value, dict) else load_space(value)


def _regimes(value) -> tuple[Regime, ...]:
    regimes = tuple(regime_from(r) for r in (value if isinstance(value, list) else [value]))
    if not regimes:
        raise ArchScaleError("regimes", "give at least one regime, e.g. [rs-10]")
    labels = [r.name for r in regimes]
    if len(set(labels)) != len(labels):
        raise ArchScaleError("regimes", f"regime names must differ ({labels}); rename one, e.g. "
                                        f"{{name: rs-10, epochs: 5}} and {{name: rs-100}}")
    return regimes


def _check_pinned_length(space, regimes: tuple[Regime, ...]) -> None:
    """A space that pins the resnet_rs strategy's training length must train for that length."""
    pinned = getattr(space, "regime_epochs", None)
    other = [r for r in regimes if pinned and r.epochs != pinned]
    if other:
        raise ArchScaleError("regime_epochs", f"the space pins regime_epochs: {pinned} but regime {other[0].name} "
                                              f"trains {other[0].epochs} epochs; drop regime_epochs from the space "
                                              f"(the resnet_rs strategy follows the sweep's regimes)")


def _cost_cache(value) -> str | bool | None:
    """The spec's cost_cache: a file path, false (no cache), or left out (the default place)."""
    if value is None or value is False or isinstance(value, str) and value:
        return value
    raise ArchScaleError("cost_cache", f"expected a file path for the cost cache, or false for none, got {value!r}")


def _seeds(value) -> tuple[int, ...]:
    """A list of distinct whole seeds, or a count N meaning 0..N-1."""
    if is_whole(value):
        if value < 1:
            raise ArchScaleError("seeds", "a count of seeds must be >= 1")
        value = list(range(value))
    if not isinstance(value, list) or not value or not all(is_whole(s) for s in value):
        raise ArchScaleError("seeds", f"expected a list of integer seeds or a count, got {value!r}")
    if len(set(value)) != len(value):
        raise ArchScaleError("seeds", f"seeds repeat: {value}")
    return tuple(value)


def _output_dir(given, in_spec, where: Path | None) -> Path:
    """The output folder, absolute: ``given`` (--output-dir) wins over the spec's output_dir."""
    out = given or in_spec
    if not out:
        raise ArchScaleError("output_dir", "a sweep spec needs output_dir: (or pass --output-dir)")
    out = Path(out)
    if not out.is_absolute() and where is not None and given is None:
        out = Path.cwd() / out
    return out.resolve()


def train_size(dataset: DatasetConfig, strict: bool = True) -> tuple[int, str]:
    """(training images, note). Checks the data set's files; with ``strict=False`` (dry runs on a
    machine without the data) falls back to the nominal size of CIFAR or ImageNet and says so."""
    try:
        return dataset_train_size(dataset), ""
    except ArchScaleError as e:
        nominal = DATASET_TRAIN_SIZES.get(dataset.name) or DATASET_TRAIN_SIZES.get((dataset.label or "").lower())
        if strict or nominal is None:
            raise
        return nominal, f"{e.message} (not here: priced at the nominal {nominal:,} images; the sweep itself will " \
                        f"refuse to start until the data is there)"


def _trial_options(t, where: str) -> dict:
    if not isinstance(t, dict):
        raise ArchScaleError(where, f"expected a mapping of trial options ({', '.join(TRIAL_OPTIONS)})")
    t = {k: v for k, v in t.items() if k not in RETIRED_TRIAL_OPTIONS}
    check_keys(t, TRIAL_OPTIONS, where, "trial option")
    return t


# ----- the plan ---------------------------------------------------------------------------------
def flatten_spec(spec_dict: dict) -> dict:
    """ArchSpec fields as table columns: lists become strings ('3_4_6_3')."""
    return {k: "_".join(map(str, v)) if isinstance(v, list) else (str(v) if k == "depth" else v)
            for k, v in spec_dict.items()}


def plan_table(sweep: SweepSpec, progress=None) -> SpaceTable:
    """The sweep's configs as one priced table (``search_spaces.table``), for its regimes;
    ``progress(line)`` as ``space_table``'s."""
    return space_table(sweep.space, epochs=[r.epochs for r in sweep.regimes], progress=progress)


def check_data(sweep: SweepSpec, strict_data: bool = True) -> int:
    """The training images per epoch, after checking the data set's files (see ``train_size``;
    ``strict_data=False`` for dry runs) and that every regime's batch splits over the workers."""
    images, _ = train_size(sweep.dataset, strict_data)
    _check_batches_split(sweep, images)
    return images


def make_plan(sweep: SweepSpec, strict_data: bool = True, table: SpaceTable | None = None) -> tuple[list[dict], Any]:
    """Every trial of the sweep with its complexity and training cost, and the space's table
    (``plan_table``, made unless given).

    Checks the data set's files (see ``train_size``; ``strict_data=False`` for dry runs).
    """
    expansion = plan_table(sweep) if table is None else table
    priced = expansion.rows.set_index("name")
    images = check_data(sweep, strict_data)
    trials = []
    for config in expansion.configs:
        cx = priced.loc[config.name]
        tags = {k: v for k, v in config.tags.items() if k != "regime_epochs"}
        for regime in (r for r in sweep.regimes if trains_under(config, r.epochs)):
            for seed in sweep.seeds:
                options = dict(sweep.trial)
                for pattern, extra in sweep.trial_overrides.items():
                    if fnmatch.fnmatch(config.name, pattern):
                        options.update(extra)
                trial = TrialConfig(spec=config.spec, regime=regime, dataset=sweep.dataset, seed=seed,
                                    name=config.name, **options)
                row = {"trial_id": trial_id(config.name, regime.name, seed), "name": config.name,
                       "regime": regime.name, "epochs": regime.epochs, "dataset": sweep.dataset.display_name,
                       "seed": seed, **flatten_spec(config.spec.to_dict()), "depth_number": config.spec.depth_number,
                       "params": int(cx["params"]), "flops": int(cx["flops"]), "activations": int(cx["activations"]),
                       "train_flops": TRAIN_FLOPS_PER_FORWARD * int(cx["flops"]) * images * regime.epochs,
                       **tags, "config": trial.to_dict()}
                trials.append(row)
    return trials, expansion


def launch_order(trials: list[dict]) -> list[dict]:
    """The order a sweep starts its trials in: the longest network first (by planned training
    FLOPs), so the last to start are short and the sweep does not end waiting on one long trial;
    the seeds of one network (and regime) back to back, so a worker that ends one starts the next
    with the same shapes (its data set resident and its kernels warm). Ties keep the plan's order."""
    groups: dict[tuple, list[dict]] = {}
    for t in trials:
        groups.setdefault((t["name"], t["regime"]), []).append(t)
    ordered = sorted(groups.values(), key=lambda g: -max(t["train_flops"] for t in g))
    return [t for g in ordered for t in g]


def _check_batches_split(sweep: SweepSpec, images: int) -> None:
    """Every regime's global batch (as capped for the data set) splits over the trial's workers."""
    workers = sweep.resources.workers
    for regime in sweep.regimes:
        split_batch(effective_batch_size(regime, images), workers, "resources.workers", f"regime {regime.name}'s")


# ----- manifest ---------------------------------------------------------------------------------
def manifest(sweep: SweepSpec, expansion, n_trials: int) -> Manifest:
    """What ran, with what, where: the spec, package versions, git commit, host and devices."""
    versions = {}
    for pkg in ("archscale", "torch", "torchvision", "ray", "fvcore", "pandas", "numpy", "matplotlib", "pyarrow"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing package is recorded as such
            versions[pkg] = None
    return Manifest(
        name=sweep.name, description=sweep.description, spec=sweep.raw,
        space={"name": sweep.space.name, "summary": expansion.summary(), "configs": len(expansion.configs)},
        regimes={r.name: r.to_dict() for r in sweep.regimes}, dataset=sweep.dataset.to_dict(),
        seeds=list(sweep.seeds), n_trials=n_trials, resources=sweep.resources.to_dict(),
        scheduler=sweep.scheduler.to_dict(), output_dir=str(sweep.output_dir), experiment_path=sweep.experiment_path,
        versions=versions, git_commit=_git_commit(),
        host={"hostname": socket.gethostname(), "platform": platform.platform(), "python": sys.version.split()[0],
              "user": _user(), "cpus": os.cpu_count()},
        devices=_devices(), flop_convention=FLOP_CONVENTION,
        regime_sources={r.name: regime_sources(r) for r in sweep.regimes}, health=sweep.health.to_dict(),
        data_check=dataset_check(sweep.dataset),
        short_regimes=short_regimes(sweep))


def short_regimes(sweep: SweepSpec) -> dict[str, str]:
    """{regime name: warning line} of the sweep's regimes shortened more than 4x (``shortening_warning``)."""
    return {r.name: line for r in sweep.regimes if (line := shortening_warning(r))}


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return None


def _devices() -> list[str]:
    """This machine's CPU and GPUs, the GPUs named by NVML: the driver creates no CUDA context
    (seconds, and device memory, for nothing), falling back to torch where NVML is missing."""
    devs = [f"cpu ({os.cpu_count()} cores)"]
    try:
        import pynvml

        pynvml.nvmlInit()
        names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                 for i in range(pynvml.nvmlDeviceGetCount())]
        return devs + [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except Exception:  # noqa: BLE001 - no NVML library or driver: ask torch
        import torch

        if torch.cuda.is_available():
            devs += [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return devs


def _without_retired_options(trial: dict) -> dict:
    """A plan row as this version writes it: ``RETIRED_TRIAL_OPTIONS`` left out of its config."""
    config = trial.get("config")
    if not isinstance(config, dict) or not set(RETIRED_TRIAL_OPTIONS) & set(config):
        return trial
    return {**trial, "config": {k: v for k, v in config.items() if k not in RETIRED_TRIAL_OPTIONS}}


def prepare(sweep: SweepSpec, planned: tuple[list[dict], Any] | None = None) -> tuple[list[dict], Any]:
    """Plan the sweep (or take ``planned``, make_plan's answer) and write manifest.json and
    plan.json; refuse an output dir of another sweep."""
    trials, expansion = planned or make_plan(sweep)
    trials = check_rerun(sweep, trials)
    write_plan(sweep, trials, expansion)
    return trials, expansion


def check_rerun(sweep: SweepSpec, trials: list[dict]) -> list[dict]:
    """Refuse an output dir whose plan.json holds another sweep (another name, or trials that
    were added or changed); the same trials in another order are fine, and so is a plan an earlier
    version wrote with fewer or more fields (``_agrees``). Writes nothing. Returns the trials to
    run: ``trials``, or them under the folder's old names (``legacy_named``) when it was planned
    before basic blocks' names dropped ``c1x64``."""
    out = sweep.output_dir
    plan_file = out / PLAN
    if plan_file.is_file():
        old = read_plan_file(plan_file, "output_dir")
        by_id = {t["trial_id"]: t for t in json.loads(json.dumps(trials, default=str))}
        old_by_id = {t["trial_id"]: _without_retired_options(t) for t in old["trials"]}
        if not _same_plan(old_by_id, by_id):
            legacy = legacy_named(trials)
            legacy_by_id = {t["trial_id"]: t for t in json.loads(json.dumps(legacy, default=str))}
            if _same_plan(old_by_id, legacy_by_id):
                trials, by_id = legacy, legacy_by_id
        if old.get("name") != sweep.name or not _same_plan(old_by_id, by_id):
            changed = sum(1 for k in by_id if k in old_by_id and not _agrees(old_by_id[k], by_id[k]))
            raise ArchScaleError("output_dir", f"{out} holds a different sweep ({old.get('name')!r}, "
                                               f"{len(old_by_id)} trials; this spec: {sweep.name!r}, {len(by_id)} "
                                               f"trials, {len(by_id.keys() - old_by_id.keys())} new, {changed} "
                                               f"changed); use another output_dir, or delete it to start over")
    return trials


def trial_id(name: str, regime: str, seed: int) -> str:
    """A trial's id: its config's name, regime and seed (``d26-w1-c1x64-r224__rs-10__s0``)."""
    return f"{name}__{regime}__s{seed}"


def legacy_named(trials: list[dict]) -> list[dict]:
    """``trials`` under the names configs had before basic blocks' names dropped ``c1x64``
    (``scaling.spec.legacy_name``): trial ids, names and the trials' own configs."""
    out = []
    for t in trials:
        name = legacy_name(t["name"], t["block"], t["cardinality"], t["bottleneck_width"])
        out.append({**t, "trial_id": trial_id(name, t["regime"], t["seed"]), "name": name,
                    "config": {**t["config"], "name": name}})
    return out


def _same_plan(old_by_id: dict, by_id: dict) -> bool:
    return old_by_id.keys() == by_id.keys() and all(_agrees(old_by_id[k], by_id[k]) for k in by_id)


def _agrees(old, new) -> bool:
    """Whether a trial an earlier launch planned is this one: every value both record agrees. A field
    only one of them has (one this version added, or one it no longer records) is not a change, so
    an output dir of an earlier version resumes."""
    if isinstance(old, dict) and isinstance(new, dict):
        return all(_agrees(old[k], new[k]) for k in old.keys() & new.keys())
    return old == new


def write_plan(sweep: SweepSpec, trials: list[dict], expansion) -> None:
    """Write plan.json and manifest.json into the output dir (made if missing)."""
    out = sweep.output_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / PLAN, json.dumps({"name": sweep.name, "trials": trials}, default=str))
    atomic_write_text(out / MANIFEST, manifest(sweep, expansion, len(trials)).to_json())
