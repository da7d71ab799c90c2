"""reports/digests.py: the report's tables as display text."""
import numpy as np
import pandas as pd

from reports.digests import axis_effects_digest, pm, sig, spread_along, trial_digest


def test_numbers_keep_their_spread_and_small_values_their_digits():
    assert pm(71.234, 0.456) == "71.2 ± 0.5" and pm(71.234, np.nan) == "71.2" and pm(np.nan, 1.0) == "–"
    assert sig(0.000456896) == "0.000457" and sig(np.nan) == "–"


def test_spread_along_keeps_both_ends():
    names = [f"c{i}" for i in range(20)]
    picked = spread_along(names, 6)
    assert len(picked) == 6 and picked[0] == "c0" and picked[-1] == "c19"
    assert spread_along(names[:3], 6) == names[:3]


def test_axis_effects_digest_keeps_axes_with_text_values():
    effects = pd.DataFrame({
        "regime": ["rs-10"] * 4, "axis": ["depth", "depth", "block_form", "block_form"],
        "value": ["26", "50", "grouped", "branches"], "order": [26.0, 50.0, np.nan, np.nan],
        "n_trials": [2, 2, 2, 2], "error_mean": [30.0, 28.0, 29.5, 28.5]})
    table = axis_effects_digest(effects, ["rs-10"])
    assert table["axis"].tolist() == ["depth", "depth", "block_form", "block_form"]
    assert table["value"].tolist() == ["26", "50", "branches", "grouped"]  # text values by name
    assert table["rs-10"].tolist()[2] == "28.5 (n=2)"


def test_trial_digest_cuts_long_errors_and_shows_missing_epochs():
    rows = pd.DataFrame({"trial_id": ["a", "b"], "name": ["n", "n"], "status": ["error", "pending"],
                         "epochs_done": [3.0, np.nan], "error": ["x" * 300, ""]})
    table = trial_digest(rows)
    assert table["epochs_done"].tolist() == ["3", "–"] and len(table["error"][0]) == 161
