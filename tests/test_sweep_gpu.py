"""benchmarks/sweep_gpu.py: the smoke run (a real Ray Tune sweep, as a command, on CPU) prints
every figure, from the run's own records."""
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_the_smoke_run_measures_a_real_sweep(tmp_path, capsys):
    import sweep_gpu

    f = sweep_gpu.main(["--smoke", "--out", str(tmp_path / "run"), "--json", str(tmp_path / "f.json")])
    assert f["statuses"] == {"done": 4} and f["busy_source"] == "cpu"
    assert f["launch_to_first_step_s"] > 0 and 0 < f["busy_share"] <= 1
    assert f["phase_columns_sum_over_wall"] == pytest.approx(1.0, abs=0.05)
    assert not math.isnan(f["outside_first_on_worker_s"]) and f["eval_vs_inference"] > 0
    assert f["same_network_spread_max"] >= 1.0 and 0 < f["trained_share_of_slots"] <= 1
    out = capsys.readouterr().out
    for words in ("launch to first training step", "busy share", "outside training and evaluation",
                  "measured inference throughput", "same-network spread", "of the slots' time"):
        assert words in out
    assert (tmp_path / "f.json").is_file()


def test_the_learnable_set_is_the_same_every_call_and_classes_differ():
    import numpy as np
    import sweep_gpu

    a, b = sweep_gpu.learnable(40, 10, 8), sweep_gpu.learnable(40, 10, 8)
    assert np.array_equal(a["x_train"], b["x_train"]) and a["x_train"].dtype == np.uint8
    means = [a["x_train"][a["y_train"] == c].mean() for c in range(10)]
    assert len(set(np.round(means, 3))) > 1
