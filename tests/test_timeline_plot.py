"""reports/timeline_plot.py and the report's "Where the time went" section: each trial's phases
drawn from the trials table, the devices' samples below."""
import pandas as pd
import pytest
from test_reports import synthetic_trials

from reports import write_report
from reports.timeline_plot import phase_columns, plot_timeline, timeline

PHASES = ["wait", "worker_start", "data", "model", "warmup", "train", "eval", "checkpoint", "report"]


def _with_phases(trials: pd.DataFrame) -> pd.DataFrame:
    trials = trials.copy()
    n = len(trials)
    trials["queued_at"] = [1000.0 + 3 * i for i in range(n)]
    for k, p in enumerate(PHASES):
        trials[f"phase_{p}_s"] = [0.5 * (k + 1) + 0.1 * i for i in range(n)]
    return trials


def test_each_trials_bar_is_its_phases_end_to_end_from_its_queueing():
    trials = _with_phases(synthetic_trials()[0].head(4))
    rows = timeline(trials)
    samples = pd.DataFrame({"time": [1000.0, 1001.0, 1002.0], "device": "gpu0", "utilisation_pct": [0.0, 80.0, 95.0],
                            "source": "nvml"})
    fig = plot_timeline(rows, samples)
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 4 * len(PHASES)
    for i, row in enumerate(rows.itertuples(index=False)):
        mine = bars[i * len(PHASES):(i + 1) * len(PHASES)]
        assert [b.get_width() for b in mine] == pytest.approx([getattr(row, f"phase_{p}_s") for p in PHASES])
        assert mine[0].get_x() == pytest.approx(row.queued_at - 1000.0)  # the first queueing is 0
        assert mine[-1].get_x() + mine[-1].get_width() == pytest.approx(
            row.queued_at - 1000.0 + sum(getattr(row, f"phase_{p}_s") for p in PHASES))
    line = fig.axes[1].lines[0]
    assert list(line.get_xdata()) == [0.0, 1.0, 2.0] and list(line.get_ydata()) == [0.0, 80.0, 95.0]


def test_a_table_without_phases_draws_no_timeline():
    trials = synthetic_trials()[0]
    assert phase_columns(trials) == [] and timeline(trials) is None


class _Report:
    """The part of reports.report.Report a section uses."""

    def __init__(self, trials, utilisation=None):
        from reports.document import Document

        self.trials, self.utilisation, self.doc = trials, utilisation, Document("t")
        self.figures, self.tables = [], []

    def add_figure(self, fig, name, caption):
        self.figures.append((name, caption))

    def add_table(self, table, name):
        self.tables.append((name, table))


def test_the_reports_section_says_what_went_outside_training():
    from reports.report import timeline_section

    trials = _with_phases(synthetic_trials()[0])
    report = _Report(trials)
    timeline_section(report)
    assert "## Where the time went" in report.doc.to_markdown()
    (name, caption), = report.figures
    rows = timeline(trials)
    outside = rows[[f"phase_{p}_s" for p in PHASES if p not in ("train", "eval")]].sum(axis=1).mean()
    assert name == "timeline" and f"Per trial, {outside:.2f} s went outside training and evaluation" in caption
    assert "largest part: report" in caption  # the report phase has the largest values here
    assert report.tables[0][1][phase_columns(rows)].equals(rows[phase_columns(rows)])
    empty = _Report(synthetic_trials()[0])
    timeline_section(empty)
    assert empty.figures == [] and "Where the time went" not in empty.doc.to_markdown()


@pytest.mark.slow
def test_the_report_has_where_the_time_went_with_its_figures(tmp_path):
    trials, epochs = synthetic_trials()
    summary = write_report(_with_phases(trials), epochs, tmp_path / "r")
    assert "## Where the time went" in (tmp_path / "r" / "report.md").read_text()
    assert any(f.endswith("timeline.png") for f in summary["figures"])
