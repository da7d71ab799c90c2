"""Published results (ResNet, ResNeXt, ResNet-RS) to draw next to a run's own points.

The figures live in ``reports/data/imagenet_reference.csv`` and ``cifar_reference.csv`` (the
ResNeXt paper's CIFAR-10 and CIFAR-100 networks) with each paper's own FLOP convention and
source. ``load_reference`` converts them to this project's convention (fvcore: 1 multiply-add =
1 FLOP): the ResNeXt paper's FLOPs already are multiply-adds, the ResNet-RS paper's are twice the
multiply-adds, so they are halved. ``reference_for`` gives a run the points of its data set only:
ImageNet points on ImageNet runs, CIFAR-10 points on CIFAR-10 runs, CIFAR-100 on CIFAR-100.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["REFERENCE_CSV", "CIFAR_REFERENCE_CSV", "IMAGENET_NAMES", "DATASET_NAMES", "load_reference",
           "is_imagenet", "run_dataset", "reference_for"]

REFERENCE_CSV = Path(__file__).with_name("data") / "imagenet_reference.csv"
#: The ResNeXt paper's CIFAR results; its ``dataset`` column says cifar10 or cifar100.
CIFAR_REFERENCE_CSV = Path(__file__).with_name("data") / "cifar_reference.csv"
#: Dataset names (lower-cased) that mean ImageNet-1k.
IMAGENET_NAMES = frozenset({"imagenet", "imagenet-1k", "imagenet1k", "in1k"})
#: The data sets with published points, and the names (lower-cased) that mean each.
DATASET_NAMES = {"imagenet": IMAGENET_NAMES, "cifar10": frozenset({"cifar10", "cifar-10"}),
                 "cifar100": frozenset({"cifar100", "cifar-100"})}
#: Multiply-adds per FLOP of each convention in the data file.
_MACS_PER_FLOP = {"multiply-adds": 1.0, "2x multiply-adds": 0.5}


def load_reference(path: str | Path = REFERENCE_CSV) -> pd.DataFrame:
    """The published results, one row per model, with FLOPs in this project's convention.

    Columns of the file (``model``, ``family``, ``top1`` in %, ``params_m`` in millions,
    ``flops_g`` as published, ``flop_convention``, ``resolution`` px, ``epochs``, ``source``)
    plus ``flops`` (per image, fvcore convention: 1 multiply-add = 1 FLOP), ``params`` (count)
    and ``error_pct`` (100 - top1).
    """
    ref = pd.read_csv(path)
    unknown = set(ref["flop_convention"]) - set(_MACS_PER_FLOP)
    if unknown:
        raise ValueError(f"{path}: unknown flop_convention {sorted(unknown)}; use one of {sorted(_MACS_PER_FLOP)}")
    ref["flops"] = ref["flops_g"] * 1e9 * ref["flop_convention"].map(_MACS_PER_FLOP)
    ref["params"] = ref["params_m"] * 1e6
    ref["error_pct"] = 100.0 - ref["top1"]
    return ref


def run_dataset(trials: pd.DataFrame, manifest: dict | None = None) -> str | None:
    """The key of ``DATASET_NAMES`` every trial's ``dataset`` names (case-insensitive), else None.

    Without a ``dataset`` column (or with only NaN) the manifest's ``dataset`` decides; with
    neither the answer is None: published points are never drawn on other data.
    """
    names = trials["dataset"].dropna().astype(str) if "dataset" in trials else pd.Series(dtype=str)
    if len(names) and len(names) != len(trials):
        return None  # some trials do not say which dataset they ran on
    if not len(names):
        value = (manifest or {}).get("dataset")
        if isinstance(value, dict):
            value = value.get("name")
        names = pd.Series([value] if isinstance(value, str) else [], dtype=str)
    if not len(names):
        return None
    lower = set(names.str.strip().str.lower())
    return next((key for key, known in DATASET_NAMES.items() if lower <= known), None)


def is_imagenet(trials: pd.DataFrame, manifest: dict | None = None) -> bool:
    """True when every trial's ``dataset`` names ImageNet (see IMAGENET_NAMES and ``run_dataset``)."""
    return run_dataset(trials, manifest) == "imagenet"


def reference_for(trials: pd.DataFrame, manifest: dict | None = None) -> pd.DataFrame | None:
    """The published points of the run's data set (``run_dataset``), or None when it has none."""
    key = run_dataset(trials, manifest)
    if key == "imagenet":
        return load_reference()
    if key is None:
        return None
    ref = load_reference(CIFAR_REFERENCE_CSV)
    ref = ref[ref["dataset"] == key].reset_index(drop=True)
    return ref if len(ref) else None
