"""Pricing a space before launch: complexity per config and training cost per regime.

Training cost of one run = epochs x dataset size x training FLOPs per image, with training FLOPs
per image = ``TRAIN_FLOPS_PER_FORWARD`` x forward FLOPs and FLOPs counted as
``FLOP_CONVENTION`` says (both from ``scaling.conventions``). Given the training FLOP rate a device
actually achieved (see ``rate_from_measurements``), the cost becomes estimated hours.
"""
from __future__ import annotations

import json
import random
import statistics
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from scaling import ArchScaleError, analytic_counts
from scaling.conventions import TRAIN_FLOPS_PER_FORWARD

from .space import Config


def price(configs: Iterable[Config], *, regimes: Mapping[str, int] | None = None,
          dataset_size: int | None = None, train_flops_per_s: float | None = None) -> pd.DataFrame:
    """One row per config: architecture numbers, params, FLOPs, activations (closed form), tags,
    and for each regime ``train_flops_<regime>`` (and ``est_hours_<regime>`` given a FLOP rate);
    NaN for a regime the config is not made for (``trains_under``: the resnet_rs strategy's configs)."""
    configs = list(configs)
    specs = [c.spec for c in configs]
    counts = [analytic_counts(s) for s in specs]
    fields = {f: [getattr(s, f) for s in specs] for f in ARCH_COLUMNS}
    fields["depth_number"] = [s.depth_number for s in specs]
    df = price_columns([c.name for c in configs], fields, {"params": [cx.params for cx in counts],
                                                            "flops": [cx.flops for cx in counts],
                                                            "acts": [cx.acts for cx in counts]})
    tags = pd.DataFrame([c.tags for c in configs], index=df.index)
    df = pd.concat([df, tags], axis=1) if len(tags.columns) else df
    return add_training_cost(df, regimes, dataset_size, train_flops_per_s)


#: The architecture columns of a priced table (besides the name and the nominal ``depth_number``).
ARCH_COLUMNS = ("depth", "width_multiplier", "cardinality", "bottleneck_width", "resolution")


def price_columns(names, fields: Mapping, counts: Mapping) -> pd.DataFrame:
    """The priced table of configs given as columns: ``fields`` holds ``ARCH_COLUMNS`` and
    ``depth_number``, ``counts`` params, flops and acts (one value per config each)."""
    return pd.DataFrame({"name": list(names) if not hasattr(names, "dtype") else names,
                         "depth": [_depth_str(d) for d in fields["depth"]],
                         "depth_number": np.asarray(fields["depth_number"], dtype=np.int64),
                         **{f: fields[f] for f in ARCH_COLUMNS[1:]},
                         "params": np.asarray(counts["params"], dtype=np.int64),
                         "flops": np.asarray(counts["flops"], dtype=np.int64),
                         "activations": np.asarray(counts["acts"], dtype=np.int64)})


def add_training_cost(df: pd.DataFrame, regimes: Mapping[str, int] | None, dataset_size: int | None,
                      train_flops_per_s: float | None) -> pd.DataFrame:
    """``df`` with ``train_flops_<regime>`` = TRAIN_FLOPS_PER_FORWARD x FLOPs x images x epochs (exact
    integers) per regime, and ``est_hours_<regime>`` given a FLOP rate; NaN where a config is not
    made for the regime (its ``regime_epochs`` tag)."""
    if not dataset_size:
        return df
    for regime, epochs in (regimes or {}).items():
        trains = (df["regime_epochs"].map(lambda v: not isinstance(v, tuple) or int(epochs) in v)
                  if "regime_epochs" in df else pd.Series(True, index=df.index))
        total = df["flops"].astype(object) * (TRAIN_FLOPS_PER_FORWARD * int(dataset_size) * int(epochs))
        df[f"train_flops_{regime}"] = total.where(trains, np.nan)
        if train_flops_per_s:
            df[f"est_hours_{regime}"] = (df["flops"].astype(float) * (TRAIN_FLOPS_PER_FORWARD * dataset_size * epochs)
                                         / train_flops_per_s / 3600).where(trains, np.nan)
    return df


def exact_sum(values: Iterable) -> int:
    """The exact total of training-FLOP counts (NaN, a regime a config is not made for, left out). A
    sweep's can pass 2**63, where a pandas int64 sum silently wraps around; Python integers do not."""
    return sum(int(v) for v in values if v == v)


def _depth_str(depth) -> str:
    return "_".join(map(str, depth)) if isinstance(depth, tuple) else str(depth)


def verify_against_fvcore(configs: list[Config], n: int, seed: int = 0, progress=None) -> tuple[float, list[str]]:
    """Count ``n`` random configs with fvcore; return the largest relative difference from the
    closed form over params, FLOPs and activations, and the names checked.
    ``progress(configs, total=, desc=)`` wraps the configs as they are traced (a progress bar)."""
    from scaling.counting import fvcore_counts

    picked = random.Random(seed).sample(configs, min(n, len(configs)))
    worst = 0.0
    for c in progress(picked, total=len(picked), desc="fvcore") if progress else picked:
        cx = analytic_counts(c.spec)
        for ours, ref in zip((cx.params, cx.flops, cx.acts), fvcore_counts(c.spec)):
            worst = max(worst, abs(ours - ref) / max(ref, 1))
    return worst, [c.name for c in picked]


def rate_from_measurements(path: str | Path) -> tuple[float, str]:
    """(training FLOP/s, device) from the JSON lines of ``archscale count --measure --json``.

    Each line's rate is TRAIN_FLOPS_PER_FORWARD x forward FLOPs x training images/s; the median over
    lines is returned.
    """
    p = Path(path)
    if not p.is_file():
        raise ArchScaleError("throughput", f"no such file: {p}; make one with "
                                           f"'archscale count PRESET --measure --json > {p.name}'")
    rates, devices = [], set()
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rates.append(TRAIN_FLOPS_PER_FORWARD * row["flops"] * row["train_throughput"])
            devices.add(row.get("device", "?"))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ArchScaleError("throughput", f"{p}:{i} is not a line of 'archscale count --measure --json' "
                                               f"(needs flops and train_throughput)") from None
    if not rates:
        raise ArchScaleError("throughput", f"{p} holds no measurements")
    return statistics.median(rates), ", ".join(sorted(devices))
