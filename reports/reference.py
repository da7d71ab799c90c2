"""Published ImageNet results (ResNet, ResNeXt, ResNet-RS) to draw next to a run's own points.

The figures live in ``reports/data/imagenet_reference.csv`` with each paper's own FLOP
convention and source. ``load_reference`` converts them to this project's convention (fvcore:
1 multiply-add = 1 FLOP): the ResNeXt paper's FLOPs already are multiply-adds, the ResNet-RS
paper's are twice the multiply-adds, so they are halved. They are drawn only on ImageNet runs.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["REFERENCE_CSV", "IMAGENET_NAMES", "load_reference", "is_imagenet"]

REFERENCE_CSV = Path(__file__).with_name("data") / "imagenet_reference.csv"
#: Dataset names (lower-cased) that mean ImageNet-1k.
IMAGENET_NAMES = frozenset({"imagenet", "imagenet-1k", "imagenet1k", "in1k"})
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


def is_imagenet(trials: pd.DataFrame, manifest: dict | None = None) -> bool:
    """True when every trial's ``dataset`` names ImageNet (see IMAGENET_NAMES, case-insensitive).

    Without a ``dataset`` column (or with only NaN) the manifest's ``dataset`` decides; with
    neither the answer is False: published ImageNet numbers are never drawn on other data.
    """
    names = trials["dataset"].dropna().astype(str) if "dataset" in trials else pd.Series(dtype=str)
    if len(names) and len(names) == len(trials):
        return bool(names.str.strip().str.lower().isin(IMAGENET_NAMES).all())
    if len(names):
        return False  # some trials do not say which dataset they ran on
    value = (manifest or {}).get("dataset")
    if isinstance(value, dict):
        value = value.get("name")
    return isinstance(value, str) and value.strip().lower() in IMAGENET_NAMES
