"""scaling/batch.py: the closed form over arrays equals analytic_counts network by network, refuses
what ArchSpec and check_fits refuse (naming the same field), and equals fvcore on samples."""
import random

import numpy as np
import pytest
from conftest import random_spec

from scaling import ArchScaleError, ArchSpec, analytic_counts, check_fits, get_preset
from scaling.batch import LAYOUT_FIELDS, SpecBatch, count_batch
from scaling.counting import fvcore_counts

#: Values drawn for the numeric fields, valid and not (a basic block with cardinality 4, a
#: bottleneck width that rounds to 0 channels, a resolution too small, groups that do not divide).
DRAWS = {"width_multiplier": [0.1, 0.25, 0.5, 1.0, 1.5], "cardinality": [1, 2, 3, 4, 8],
         "bottleneck_width": [1, 4, 16, 64], "widen_factor": [0.5, 1.0, 2.0], "se_ratio": [0.0, 0.25, 1 / 16],
         "resolution": [4, 16, 33, 64], "stem_width": [2, 8, 16], "num_classes": [10, 1000], "in_channels": [1, 3]}


def _expected(layout: ArchSpec, numeric: dict):
    """(params, flops, acts, fault) the per-network path gives."""
    try:
        spec = ArchSpec(**{**layout.to_dict(), **numeric})
        check_fits(spec)
    except ArchScaleError as e:
        return None, e.field
    cx = analytic_counts(spec)
    return (cx.params, cx.flops, cx.acts), ""


def test_a_batch_equals_the_closed_form_network_by_network_valid_or_not():
    rng = random.Random(7)
    checked = faults = 0
    for _ in range(25):
        layout = random_spec(rng)
        names = [n for n in DRAWS if n != "cardinality" or layout.block_form == "grouped"]
        rows = [{n: rng.choice(DRAWS[n]) for n in names} for _ in range(40)]
        got = count_batch(SpecBatch(layout, {n: np.array([r[n] for r in rows]) for n in names}))
        for i, row in enumerate(rows):
            counts, fault = _expected(layout, row)
            assert got.fault[i] == fault, (layout, row)
            if counts:
                assert (got.params[i], got.flops[i], got.acts[i]) == counts, (layout, row)
            checked, faults = checked + 1, faults + bool(fault)
    assert checked == 1000 and 100 < faults < 900  # both kinds were exercised


def test_a_batch_equals_fvcore_on_samples():
    base = ArchSpec(block="bottleneck", depth=(1, 2, 1), widths=(16, 32, 64), stem="deep", stem_width=16,
                    downsample="d", se_ratio=0.25, num_classes=10, resolution=32)  # small: traced in a second
    values = {"width_multiplier": np.array([0.5, 1.0, 1.5]), "cardinality": np.array([2, 8, 4]),
              "bottleneck_width": np.array([8, 4, 16]), "resolution": np.array([24, 32, 40]),
              "se_ratio": np.array([0.0, 0.25, 0.125])}
    got = count_batch(SpecBatch(base, values))
    for i in range(3):
        spec = base.replace(**{k: v[i].item() for k, v in values.items()})
        assert (got.params[i], got.flops[i], got.acts[i]) == fvcore_counts(spec)


def test_layout_fields_are_the_rest_of_archspec_and_branch_forms_batch_by_cardinality():
    assert "depth" in LAYOUT_FIELDS and "width_multiplier" not in LAYOUT_FIELDS
    with pytest.raises(ArchScaleError, match="batch its networks by cardinality"):
        SpecBatch(get_preset("resnext50_32x4d").replace(block_form="branches"), {"cardinality": np.array([1, 2])})
