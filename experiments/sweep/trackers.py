"""Experiment trackers: Ray Tune logger callbacks named in a sweep spec's ``callbacks:`` list.

    callbacks:
      - mlflow                                             # MLflow: one run per trial
      - {name: mlflow, tracking_uri: "sqlite:///mlflow.db", experiment_name: resnext}
      - {name: wandb, project: archscale}                  # Weights & Biases: one run per trial
      - {name: "mypkg.tune:MyCallback", every: 5}          # any ray.tune.Callback, with its keywords

Each entry is a tracker's name or a ``package.module:Class``, alone or as ``name:`` in a mapping
whose other keys are the class's keyword arguments. ``mlflow`` is Ray's ``MLflowLoggerCallback``
and ``wandb`` its ``WandbLoggerCallback``; their experiment (project) defaults to the sweep's name.
MLflow's store defaults to ``sqlite:///OUTPUT_DIR/mlflow.db`` (MLFLOW_TRACKING_URI, when set,
wins; MLflow 3 refuses its old file store without MLFLOW_ALLOW_FILE_STORE=true), and whatever
store is named is opened before Ray starts, as the callback will open it (``check_mlflow_store``).
Every entry is checked before Ray starts: the name, the package it needs, the class and its
keyword arguments, the tracker's store (one-line errors). TensorBoard needs no callback: Tune writes event files for
every trial under OUTPUT_DIR/ray (``tensorboard --logdir OUTPUT_DIR/ray``).
"""
from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from scaling.errors import ArchScaleError, did_you_mean
from scaling.plugins import import_object, is_object_path


@dataclass(frozen=True)
class Tracker:
    """A tracker known by name: its Tune callback, the module it needs, what to pip-install, and
    the keyword that takes the sweep's name by default."""

    callback: str
    module: str
    install: str
    experiment_keyword: str


TRACKERS = {
    "mlflow": Tracker("ray.air.integrations.mlflow:MLflowLoggerCallback", "mlflow", "mlflow-skinny (or mlflow)",
                      "experiment_name"),
    "wandb": Tracker("ray.air.integrations.wandb:WandbLoggerCallback", "wandb", "wandb", "project"),
}


@dataclass(frozen=True)
class CallbackSpec:
    """One ``callbacks:`` entry: a tracker name or ``package.module:Class``, and keyword arguments."""

    name: str
    kwargs: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The ``package.module:Class`` of the callback."""
        return TRACKERS[self.name].callback if self.name in TRACKERS else self.name

    def to_dict(self) -> dict:
        return {"name": self.name, **self.kwargs}


def callbacks_from(value, where: str = "callbacks") -> tuple[CallbackSpec, ...]:
    """The ``callbacks:`` entries of a spec, checked for shape (no imports: see ``build_callbacks``)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    out = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if isinstance(entry, str):
            name, kwargs = entry, {}
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name, kwargs = entry["name"], {k: v for k, v in entry.items() if k != "name"}
        else:
            raise ArchScaleError(at, f"expected a tracker ({', '.join(TRACKERS)}), 'package.module:Class', or a "
                                     f"mapping with name: and the callback's keyword arguments; got {entry!r}")
        if name not in TRACKERS and not is_object_path(name):
            raise ArchScaleError(at, f"unknown callback {name!r}{did_you_mean(name, TRACKERS)}; use "
                                     f"{', '.join(TRACKERS)}, or 'package.module:Class' for any Tune callback")
        out.append(CallbackSpec(name, kwargs))
    return tuple(out)


def build_callbacks(specs, experiment: str | None = None, where: str = "callbacks",
                    output_dir: str | Path | None = None, dry_run: bool = False) -> list:
    """The Tune callback objects of ``specs`` (CallbackSpecs, entries as in a spec, or callback
    objects, passed through). ``experiment`` is the default MLflow experiment / W&B project;
    ``output_dir`` holds MLflow's default store (``MLFLOW_DB``). A tracker's store is opened to
    check it (``dry_run``: without creating a database that does not exist yet).
    Raises ArchScaleError naming the entry: a missing package (and what to install), a class that
    is not a ``ray.tune.Callback``, keyword arguments it does not take, a store that cannot be used."""
    if not specs:
        return []
    from ray.tune import Callback

    objects = []
    for i, spec in enumerate(specs):
        at = f"{where}[{i}]"
        if isinstance(spec, Callback):
            objects.append(spec)
            continue
        if not isinstance(spec, CallbackSpec):
            spec = callbacks_from([spec], where)[0]
        kwargs = dict(spec.kwargs)
        tracker = TRACKERS.get(spec.name)
        if tracker is not None:
            if importlib.util.find_spec(tracker.module) is None:
                raise ArchScaleError(at, f"the {spec.name} callback needs the {tracker.module} package: "
                                         f"pip install {tracker.install}")
            if experiment and tracker.experiment_keyword not in kwargs:
                kwargs[tracker.experiment_keyword] = experiment
            if spec.name == "mlflow":
                kwargs = _mlflow_store(kwargs, at, output_dir, dry_run)
        cls = import_object(spec.target, at, "Tune callback class")
        if not (inspect.isclass(cls) and issubclass(cls, Callback)):
            raise ArchScaleError(at, f"{spec.target} is not a ray.tune.Callback class")
        try:
            inspect.signature(cls).bind(**kwargs)
        except TypeError as e:
            raise ArchScaleError(at, f"{spec.target} does not take these arguments ({e})") from None
        try:
            objects.append(cls(**kwargs))
        except (TypeError, ValueError, ImportError) as e:
            raise ArchScaleError(at, f"{spec.target}({', '.join(kwargs)}) failed: {e}") from None
    return objects


# ----- MLflow's store -----------------------------------------------------------------------------
#: MLflow's default store, a SQLite database in the sweep's output directory (mlflow-skinny needs
#: sqlalchemy and alembic for it: the mlflow extra installs them).
MLFLOW_DB = "mlflow.db"
#: URI schemes MLflow keeps in a database through SQLAlchemy (its ``DATABASE_ENGINES``).
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def _mlflow_store(kwargs: dict, at: str, output_dir, dry_run: bool) -> dict:
    """``kwargs`` with the tracking URI made explicit (the entry's, MLFLOW_TRACKING_URI, or the
    database in ``output_dir``), after ``check_mlflow_store`` opened it."""
    if kwargs.get("tracking_uri"):
        uri, setting = str(kwargs["tracking_uri"]), f"{at}.tracking_uri"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        uri, setting = os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI"
    elif output_dir is not None:
        uri, setting = f"sqlite:///{Path(output_dir).resolve() / MLFLOW_DB}", f"{at}.tracking_uri"
    else:
        return kwargs  # MLflow's own default, as Ray's callback would use it
    registry = kwargs.get("registry_uri") or os.environ.get("MLFLOW_REGISTRY_URI")
    check_mlflow_store(uri, registry, setting, dry_run=dry_run)
    return {**kwargs, "tracking_uri": uri}


def check_mlflow_store(uri: str, registry_uri: str | None = None, setting: str = "tracking_uri",
                       dry_run: bool = False) -> None:
    """Open MLflow's tracking store and model registry at ``uri`` as Ray's MLflow callback will
    (a database is created and migrated; a server is asked, without retries, within 10 s).
    ``dry_run``: a SQLite file that does not exist yet is tried as a fresh database in a temporary
    folder, so nothing is written. Raises ArchScaleError(``setting``) on one line saying why and
    what to do."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in SQL_SCHEMES:
        missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
        if missing:
            raise ArchScaleError(setting, f"MLflow's {scheme} store ({uri}) needs {' and '.join(missing)}: "
                                          f"pip install -e '.[mlflow]' (or pip install {' '.join(missing)})")
    with tempfile.TemporaryDirectory(prefix="archscale-mlflow-") as scratch:
        tried = uri
        if dry_run and scheme == "sqlite" and not Path(uri.split(":///", 1)[-1]).is_file():
            tried = f"sqlite:///{Path(scratch) / MLFLOW_DB}"  # MLflow creates the file and its folders
        try:
            with _mlflow_quietly():
                from mlflow import MlflowClient

                client = MlflowClient(tried, registry_uri)
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
        except Exception as e:  # noqa: BLE001 - whatever MLflow raises, it is this store's problem
            if "MLFLOW_ALLOW_FILE_STORE" in str(e):  # MLflow 3 keeps its file store only on request
                raise ArchScaleError(setting, f"MLflow refuses its file store ({uri}) unless "
                                              f"MLFLOW_ALLOW_FILE_STORE=true; leave tracking_uri out for its database "
                                              f"in the output directory (sqlite:///OUTPUT_DIR/{MLFLOW_DB}), or set "
                                              f"MLFLOW_ALLOW_FILE_STORE=true") from None
            raise ArchScaleError(setting, f"MLflow cannot use {uri}: {_first_line(e)}; fix the URI (or start its "
                                          f"server), or leave tracking_uri out for sqlite:///OUTPUT_DIR/"
                                          f"{MLFLOW_DB}") from None


@contextmanager
def _mlflow_quietly():
    """MLflow's database set-up logs and HTTP retries kept out of the check (restored after)."""
    env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    quiet_mlflow_logs()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def quiet_mlflow_logs() -> None:
    """MLflow's and alembic's INFO lines on creating and migrating a database (every new store)
    go unprinted; warnings still print."""
    for name in ("mlflow.store.db.utils", "mlflow.store.tracking.sqlalchemy_store", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _first_line(error: Exception) -> str:
    """The first line of an exception's message, with its type, at most 300 characters."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
