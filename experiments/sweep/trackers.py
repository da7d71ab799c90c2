"""Experiment trackers: Ray Tune logger callbacks named in a sweep spec's ``callbacks:`` list.

    callbacks:
      - mlflow                                             # MLflow: one run per trial
      - {name: mlflow, tracking_uri: "sqlite:///mlflow.db", experiment_name: resnext}
      - {name: wandb, project: archscale}                  # Weights & Biases: one run per trial
      - {name: "mypkg.tune:MyCallback", every: 5}          # any ray.tune.Callback, with its keywords

Each entry is a tracker's name or a ``package.module:Class``, alone or as ``name:`` in a mapping
whose other keys are the class's keyword arguments. ``mlflow`` is Ray's ``MLflowLoggerCallback``
and ``wandb`` its ``WandbLoggerCallback``; their experiment (project) defaults to the sweep's name.
Every entry is checked before Ray starts: the name, the package it needs, the class and its
keyword arguments (one-line errors). TensorBoard needs no callback: Tune writes event files for
every trial under OUTPUT_DIR/ray (``tensorboard --logdir OUTPUT_DIR/ray``).
"""
from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field

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


def build_callbacks(specs, experiment: str | None = None, where: str = "callbacks") -> list:
    """The Tune callback objects of ``specs`` (CallbackSpecs, entries as in a spec, or callback
    objects, passed through). ``experiment`` is the default MLflow experiment / W&B project.
    Raises ArchScaleError naming the entry: a missing package (and what to install), a class that
    is not a ``ray.tune.Callback``, keyword arguments it does not take."""
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
