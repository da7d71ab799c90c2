"""reports/devices_plot.py: training time against device-seconds, and its report section."""
import numpy as np
import pandas as pd
from test_reports import synthetic_trials

from reports import write_report
from reports.devices_plot import DEVICE_TIME_COLUMNS, device_time, plot_device_time
from reports.tables import normalize_trials


def _with_workers(trials: pd.DataFrame) -> pd.DataFrame:
    """The synthetic run as if its odd seeds had trained on 4 workers (a quarter of the time)."""
    t = trials.copy()
    t["workers"] = np.where(t["seed"] % 2 == 1, 4, 1)
    t["devices"] = t["workers"].astype(float)
    t["train_time_s"] = 400.0 / t["workers"] * 1.1 ** (t["workers"] > 1)
    t["device_seconds"] = t["train_time_s"] * t["devices"]
    t["observed_images_per_s"] = 1000.0 * t["workers"]
    return t


def test_device_time_rows_are_finished_trials_that_recorded_their_devices():
    trials, _ = synthetic_trials()
    assert device_time(normalize_trials(trials)) is None  # a store from before data-parallel trials
    rows = device_time(normalize_trials(_with_workers(trials)))
    assert list(rows.columns) == DEVICE_TIME_COLUMNS and len(rows) > 0
    assert set(rows["workers"]) == {1, 4} and (rows["images_per_device_s"] == 1000.0).all()
    four = rows[rows.workers == 4].iloc[0]
    assert four["device_seconds"] == 4 * four["train_time_s"]
    fig = plot_device_time(rows)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].collections) == 2  # one scatter per count


def test_report_draws_device_time_when_the_run_recorded_it(tmp_path):
    trials, epochs = synthetic_trials()
    summary = write_report(_with_workers(trials), epochs, tmp_path / "report")
    assert (tmp_path / "report" / "figures" / "device_time.png").stat().st_size > 5_000
    assert len(pd.read_csv(tmp_path / "report" / "tables" / "device_time.csv")) == summary["n_finished"]
    assert "Devices and time" in (tmp_path / "report" / "report.md").read_text()
