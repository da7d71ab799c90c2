"""Many networks of one layout priced at once: the closed form of ``scaling.analytic`` over numpy arrays.

A ``SpecBatch`` is one layout (an ArchSpec whose fields shape the network: block, depth, stage
widths, stem, variant flags) and, for each of ``NUMERIC_FIELDS`` (width multiplier, cardinality,
bottleneck width, resolution, ...), an array with one value per network. ``count_batch`` runs the
very functions ``analytic_counts`` runs, with those arrays in place of numbers, and checks what
ArchSpec and ``check_fits`` would refuse; the networks that fail are named, not raised, so one bad
network does not stop a million good ones. Imports no torch.

    >>> import numpy as np
    >>> batch = SpecBatch(get_preset("resnet50"), {"width_multiplier": np.array([0.5, 1.0, 2.0])})
    >>> count_batch(batch).flops        # the same as analytic_counts of each of the three
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping

import numpy as np

from .analytic import resnet_cx
from .cx import Cx
from .errors import ArchScaleError
from .spec import NUMERIC_FIELDS, ArchSpec, normalise_value, numeric_faults, stage_planes, stem_channels

#: The ArchSpec fields that shape a network (one value per batch): all but ``NUMERIC_FIELDS``.
LAYOUT_FIELDS = tuple(f.name for f in fields(ArchSpec) if f.name not in NUMERIC_FIELDS)
#: ArchSpec's defaults of the numeric fields: a layout takes them, and with them every layout that
#: ArchSpec accepts is valid, so a layout's own faults are told apart from its networks'.
NEUTRAL = {f.name: f.default for f in fields(ArchSpec) if f.name in NUMERIC_FIELDS}


@dataclass
class SpecBatch:
    """Networks that share a layout: ``layout``'s fields, with ``values`` (numeric field -> array of
    one value per network) in place of its numeric fields. Reads like an ArchSpec whose numeric
    fields are arrays, which is all the closed form needs."""

    layout: ArchSpec
    values: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if self.layout.block_form != "grouped" and "cardinality" in self.values:
            raise ArchScaleError("cardinality", f"the {self.layout.block_form!r} block form builds one branch "
                                                f"per group: batch its networks by cardinality")
        sizes = {len(v) for v in self.values.values()}
        if len(sizes) > 1:
            raise ValueError(f"the value arrays of a batch differ in length: {sorted(sizes)}")
        self.n = sizes.pop() if sizes else 1

    def __getattr__(self, name):
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        return getattr(self.__dict__["layout"], name)

    stem_channels = property(stem_channels)
    stage_planes = property(stage_planes)


@dataclass
class BatchCounts:
    """Params, FLOPs (one multiply-add = one flop) and activations per network (int64 arrays), and
    ``fault``: per network, the ArchSpec field that makes it impossible ("" when it is valid;
    its counts are then meaningless); ``values``: the numeric fields as ArchSpec normalises them
    (whole floats to ints, ints to floats; a refused value replaced by the field's default)."""

    params: np.ndarray
    flops: np.ndarray
    acts: np.ndarray
    fault: np.ndarray
    values: dict = field(default_factory=dict)


def count_batch(batch: SpecBatch) -> BatchCounts:
    """Closed-form counts of every network of ``batch``, equal network by network to
    ``analytic_counts``, with the field at fault for those ArchSpec or ``check_fits`` refuse:
    a value out of its range, the numeric checks of ``numeric_faults``, groups that do not divide
    a convolution ("cardinality"), an input too small for the downsampling ("resolution")."""
    n = batch.n
    fault = np.full(n, "", dtype=object)
    values = dict(batch.values)
    for name in (f.name for f in fields(ArchSpec) if f.name in values):  # ArchSpec's order
        values[name], bad = _normalised(name, values[name])
        fault[bad & (fault == "")] = name
    batch = SpecBatch(batch.layout, values)
    for name, bad in numeric_faults(batch):
        fault[np.broadcast_to(bad, n) & (fault == "")] = name
    safe = SpecBatch(batch.layout, {k: np.where(fault == "", v, NEUTRAL[k]) for k, v in values.items()})
    resolution = np.broadcast_to(safe.resolution, n).astype(np.int64)
    cx = Cx(resolution, resolution, faults={})  # one object: square maps are sized once
    resnet_cx(cx, safe)
    for name in ("cardinality", "resolution"):
        bad = np.broadcast_to(cx.faults.get(name, False), n)
        fault[bad & (fault == "")] = name
    return BatchCounts(*(np.broadcast_to(np.asarray(v, dtype=np.int64), n).copy()
                         for v in (cx.params, cx.flops, cx.acts)), fault, values)


def _normalised(name: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` coerced as ArchSpec coerces the field (each distinct value checked once by
    ``normalise_value``), and the mask of those it refuses (replaced by the field's default)."""
    values = np.asarray(values)
    if values.dtype == object and all(type(v) in (int, float) for v in set(values.tolist())):
        values = values.astype(np.float64)  # numbers only: sorted as numbers (whole floats pass int fields)
    uniques, inverse = np.unique(values, return_inverse=True)
    coerced, refused = [], []
    for v in uniques:
        try:
            coerced.append(normalise_value(name, v.item() if hasattr(v, "item") else v))
            refused.append(False)
        except ArchScaleError:
            coerced.append(NEUTRAL[name])
            refused.append(True)
    dtype = np.float64 if isinstance(NEUTRAL[name], float) else np.int64
    return np.asarray(coerced, dtype=dtype)[inverse], np.asarray(refused, dtype=bool)[inverse]
