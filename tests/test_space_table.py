"""search_spaces/table.py: a space as one table equals Space.expand + price, config by config:
the same names in the same order, the same counts, drops (with their messages) and duplicates."""
import pandas as pd
import pytest

from search_spaces import parse_space, price
from search_spaces.table import space_table

TINY = {"block": "bottleneck", "depth": [1, 1, 1], "widths": [8, 16, 32], "stem": "cifar", "stem_width": 8,
        "resolution": 16, "num_classes": 10}


def _same(spec: dict, epochs=None):
    space = parse_space(spec)
    expansion = space.expand(epochs)
    table = space_table(space, epochs)
    expected = price(expansion.configs, regimes={"a": 10}, dataset_size=1000)
    from search_spaces.pricing import add_training_cost

    got = add_training_cost(table.rows.copy(), {"a": 10}, 1000, None)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    assert table.dropped == expansion.dropped and table.duplicates == expansion.duplicates
    assert table.summary() == expansion.summary()
    assert [(c.name, c.spec) for c in table.configs] == [(c.name, c.spec) for c in expansion.configs]
    return table


def test_a_grid_with_faults_duplicates_and_constraints_equals_its_expansion():
    table = _same({"base": TINY, "axes": {
        "block": ["bottleneck", "basic"], "cardinality": [1, 2, 3, 4], "bottleneck_width": [1, 4, 64],
        "width_multiplier": [0.1, 0.5, 1.0, 2], "resolution": [2, 16, 24],
        "stem_pool": ["none", "auto"], "depth": [[1, 1, 1], [2, 1, 1]]},
        "constraints": {"max_flops": "3M", "min_params": "2k"}})
    assert {"cardinality", "bottleneck_width", "resolution", "width_multiplier"} <= set(table.dropped)
    assert table.duplicates > 0 and len(table.rows) > 20


def test_basic_blocks_and_refused_layouts_are_checked_one_by_one_the_same_way():
    _same({"base": TINY, "axes": {"preact": [False, True], "radix": [0, 2], "cardinality": [1, 2],
                                  "width_multiplier": [0.5, 1.0], "block_form": ["grouped", "branches"]}})


def test_a_random_space_draws_the_same_configs():
    _same({"kind": "random", "samples": 60, "seed": 3, "base": TINY, "axes": {
        "width_multiplier": {"low": 0.25, "high": 2.0, "dist": "log_uniform"},
        "cardinality": {"low": 1, "high": 8, "dist": "pow2"}, "bottleneck_width": [4, 8, 16],
        "resolution": {"low": 8, "high": 40, "dist": "uniform", "step": 8}, "stem_width": [4, 8, 16], "depth": [11, 20]},
        "constraints": {"max_flops": "2M"}})  # whole numbers next to real ones: each keeps its type


def test_paired_axes_and_match_spaces():
    _same({"base": TINY, "axes": {"depth": [[1, 1, 1], [1, 2, 1]]},
           "paired": [{"cardinality": [1, 2, 4], "bottleneck_width": [64, 40, 24]}]})
    table = _same({"base": TINY, "axes": {"cardinality": [1, 2]},
                   "match": {"solve": "bottleneck_width", "target_from": {"cardinality": 1}}})
    assert "group" in table.rows


def test_an_empty_space_is_refused():
    from scaling import ArchScaleError

    with pytest.raises(ArchScaleError, match="empty after validation"):
        space_table(parse_space({"base": TINY, "axes": {"resolution": [1, 2]}}))
