"""The run-record schema: one typed record per kind, strict where written, tolerant where read.

``tests/data/run_flat_layout`` is a run directory written by the flat ``experiments/`` layout (commit
fe146dd, before the rooms and the schema): digits n=300, depth 11 and 20, seeds 0 and 1, rs-10 cut to
2 epochs, on CPU. Its ``trials.csv``/``epochs.csv`` are the tables that layout built, the independent
source the tables this layout builds from its plan and journal are checked against.
"""
import ast
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from experiments.results.schema import (
    EPOCH_COLUMNS, OUTCOME_COLUMNS, EpochReport, Manifest, SweepLaunch, TrialEnd, TrialInterrupted, TrialResult,
    TrialSummary, SweepInterrupted, as_event, parse_event, read_manifest,
)
from experiments.results.status import sweep_status
from experiments.results.store import Journal, load_results, read_events
from scaling.errors import ArchScaleError

OLD_RUN = Path(__file__).parent / "data" / "run_flat_layout"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def old_run(tmp_path):
    out = tmp_path / "old"
    shutil.copytree(OLD_RUN, out)
    return out


def test_a_run_directory_of_the_previous_layout_loads_into_the_same_tables(old_run):
    trials, epochs = (_as_csv_reads(df, old_run / f"{n}.now.csv") for df, n in zip(load_results(old_run), "te"))
    then_trials = pd.read_csv(OLD_RUN / "trials.csv")
    then_epochs = pd.read_csv(OLD_RUN / "epochs.csv")
    assert sorted(trials.trial_id) == sorted(then_trials.trial_id) and len(trials) == 4
    shared = [c for c in then_trials.columns if c in trials.columns and c not in ("widths", "gpu_ids", "error")]
    assert {"status", "final_top1", "best_top1", "epochs_done", "train_time_s", "flops", "params"} <= set(shared)
    now, then = trials.set_index("trial_id")[shared[1:]], then_trials.set_index("trial_id")[shared[1:]]
    pd.testing.assert_frame_equal(now.sort_index(), then.sort_index(), check_dtype=False, check_like=True)
    assert len(epochs) == len(then_epochs) == 8
    cols = [c for c in then_epochs.columns if c in epochs.columns]
    assert {"val_top1", "train_loss", "lr", "epoch"} <= set(cols)
    key = ["trial_id", "epoch"]
    pd.testing.assert_frame_equal(epochs[cols].sort_values(key).reset_index(drop=True),
                                  then_epochs[cols].sort_values(key).reset_index(drop=True), check_dtype=False)


def _as_csv_reads(df, path):
    """The table as its CSV reads back (the old tables are CSV: compare like with like)."""
    df.to_csv(path, index=False)
    return pd.read_csv(path)


def test_the_previous_layouts_journal_status_and_manifest_read_as_records(old_run):
    events = read_events(old_run)
    kinds = {type(e) for e in events}
    assert {SweepLaunch, EpochReport, TrialEnd} <= kinds
    assert all(e.status == "done" for e in events if isinstance(e, TrialEnd))
    st = sweep_status(old_run, now=2e9)
    assert st.counts.get("done") == 4
    m = read_manifest(old_run, required=True)
    assert isinstance(m, Manifest) and m.name == "old_layout_run" and m.n_trials == 4


def test_an_epoch_report_goes_to_the_journal_and_back_unchanged():
    rep = EpochReport(trial_id="t", name="n", regime="rs-10", seed=0, epoch=3, train_loss=1.5, val_loss=1.4,
                      val_top1=51.0, val_top5=90.0, lr=0.1, observed_images_per_s=1e3, time_s=4.0, params=10, flops=20)
    line = json.loads(json.dumps(as_event(rep)))
    assert line["event"] == "epoch" and "params" not in line  # the plan holds params; the journal does not repeat it
    back = parse_event(line)
    assert isinstance(back, EpochReport) and back == {k: v for k, v in rep.items() if k not in ("params", "flops")}
    assert list(line)[1:] == [c for c in EPOCH_COLUMNS if c in line]


def test_a_trial_result_holds_its_history_as_records_and_as_dicts():
    hist = [EpochReport(epoch=e, val_top1=10.0 * e, train_loss=2.0 / e, time_s=float(e)) for e in (1, 2)]
    res = TrialResult.summarise(hist, status="done", history=hist, epochs=2, lr=0.1)
    assert res.final_top1 == 20.0 and res.best_top1 == 20.0 and res.epochs_done == 2 and res.train_time_s == 2.0
    d = res.to_dict()
    assert d["history"] == [h.to_dict() for h in hist] and json.dumps(d)
    # the trainer and the trials table summarise with the same function
    assert TrialSummary.summarise([h.to_dict() for h in hist]).final_top1 == res.final_top1


@pytest.mark.parametrize("kind, good", [
    (EpochReport, {"trial_id": "t", "epoch": 1}),
    (TrialEnd, {"trial_id": "t", "status": "done"}),
    (TrialInterrupted, {"trial_id": "t", "reason": "SIGTERM"}),
    (SweepInterrupted, {"signal": "SIGINT", "running": ["t"]}),
    (Manifest, {"name": "s"}),
])
def test_a_key_that_is_not_a_field_fails_where_it_is_written(kind, good):
    assert kind.from_dict(good, strict=True) == good
    with pytest.raises(KeyError, match="val_top_1"):
        kind.from_dict({**good, "val_top_1": 3}, strict=True)
    rec = kind.from_dict(good)
    with pytest.raises(KeyError):
        rec["val_top_1"] = 3
    assert kind.from_dict({**good, "val_top_1": 3}) == good  # reading is tolerant


def test_the_journal_refuses_a_misspelt_event_and_keeps_nothing_of_it(tmp_path):
    j = Journal(tmp_path)
    j.append(TrialEnd(trial_id="t", status="done", time=1.0))
    with pytest.raises(KeyError, match="final_top_1"):
        j.append({"event": "end", "trial_id": "t", "status": "done", "final_top_1": 3})
    with pytest.raises(KeyError, match="unknown journal event"):
        j.append({"event": "ended", "trial_id": "t"})
    assert [type(e) for e in read_events(tmp_path)] == [TrialEnd]


def test_a_corrupt_manifest_is_one_line_naming_the_run_dir(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArchScaleError) as e:
        read_manifest(tmp_path)
    assert e.value.field == "run_dir" and "\n" not in str(e.value)
    assert read_manifest(tmp_path / "none") is None


def test_the_tables_columns_are_the_records_fields():
    assert OUTCOME_COLUMNS[:2] == ["status", "epochs_done"] and "error" in OUTCOME_COLUMNS
    assert "replayed" not in EPOCH_COLUMNS and "params" not in EPOCH_COLUMNS and "val_top1" in EPOCH_COLUMNS


WRITERS_AND_READERS = ["experiments/results/store.py", "experiments/results/status.py",
                       "experiments/results/train_history.py", "experiments/train/trial.py",
                       "experiments/sweep/callbacks.py", "experiments/sweep/stopping.py", "experiments/sweep/run.py",
                       "experiments/sweep/trainable.py", "experiments/sweep/data_parallel.py",
                       "experiments/sweep/spec.py", "experiments/sweep/suggest.py", "experiments/cli/report.py"]


@pytest.mark.parametrize("path", WRITERS_AND_READERS)
def test_every_writer_and_reader_imports_the_one_schema(path):
    tree = ast.parse((ROOT / path).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert any(m.endswith("results.schema") or m == "schema" for m in modules), f"{path} does not use the schema"


def test_a_run_directory_of_the_previous_layout_resumes_with_the_spec_that_made_it(old_run):
    import dataclasses

    from experiments.sweep.spec import check_rerun, load_sweep, make_plan

    spec = {"name": "old_layout_run",
            "space": {"base": {"block": "bottleneck", "depth": 11, "widths": [8, 16, 32], "stem": "cifar",
                               "stem_width": 8, "bottleneck_width": 8, "num_classes": 10, "resolution": 10},
                      "axes": {"depth": [11, 20]}},
            "regimes": [{"name": "rs-10", "epochs": 2}], "dataset": {"name": "digits", "options": {"n": 300}},
            "seeds": [0, 1], "resources": {"cpus": 1, "gpus": 0}, "scheduler": "fifo"}
    spec["dataset"].pop("options")  # (the flat layout ignored them for a built-in data set)
    sweep = load_sweep(spec, output_dir=old_run)
    trials, _ = make_plan(sweep)
    check_rerun(sweep, trials)  # fields added since (decode, on_bad_file, ...) are not changes
    longer = load_sweep({**spec, "regimes": [{"name": "rs-10", "epochs": 3}]}, output_dir=old_run)
    with pytest.raises(ArchScaleError, match="different sweep.*4 changed"):
        check_rerun(longer, make_plan(longer)[0])
    assert dataclasses.asdict(sweep.dataset)["decode"] and "decode" not in sweep.dataset.to_dict()
