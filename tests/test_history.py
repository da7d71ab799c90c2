"""experiments/results/train_history.py: a single trial's history.csv and history.json."""
import csv
import json
import math

from experiments.results.train_history import HISTORY_CSV, HISTORY_JSON, write_history

ROWS = [{"epoch": 1, "train_loss": 2.0, "val_top1": 40.0, "status": "running"},
        {"epoch": 2, "train_loss": 1.5, "val_top1": 55.0, "status": "done", "latency_ms": 1.2, "spec": {"x": 1}}]


def test_csv_has_one_row_per_epoch_and_every_scalar_column(tmp_path):
    csv_path, json_path = write_history(tmp_path / "run", ROWS, config={"seed": 0})
    assert (csv_path.name, json_path.name) == (HISTORY_CSV, HISTORY_JSON)
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[0]["latency_ms"] == "" and rows[1]["latency_ms"] == "1.2"
    assert list(rows[0]) == ["epoch", "train_loss", "val_top1", "status", "latency_ms"]  # nested values left out
    doc = json.loads(json_path.read_text())
    assert doc["config"] == {"seed": 0} and doc["summary"] is None and len(doc["epochs"]) == 2


def test_the_summary_marks_the_end_and_json_stays_strict(tmp_path):
    rows = [{"epoch": 1, "train_loss": math.nan}]
    _, json_path = write_history(tmp_path, rows, summary={"status": "diverged", "final_top1": math.nan,
                                                          "history": rows})
    doc = json.loads(json_path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert doc["summary"] == {"status": "diverged", "final_top1": None} and doc["epochs"][0]["train_loss"] is None


def test_files_are_rewritten_whole(tmp_path):
    write_history(tmp_path, ROWS)
    write_history(tmp_path, ROWS[:1])
    assert len((tmp_path / HISTORY_CSV).read_text().splitlines()) == 2
    assert not list(tmp_path.glob("*.tmp"))
