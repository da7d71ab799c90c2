import math

import pytest

from experiments.results.store import (
    EVENTS,
    Journal,
    build_tables,
    ended_trials,
    journaled_epochs,
    load_results,
    write_tables,
)
from scaling import ArchScaleError

PLAN = [{"trial_id": f"t{i}", "name": f"c{i}", "regime": "rs-10", "epochs": 3, "seed": 0, "params": 10 * (i + 1),
         "flops": 100 * (i + 1), "config": {"x": 1}} for i in range(4)]


def ep(tid, epoch, top1, **kw):
    return {"event": "epoch", "trial_id": tid, "epoch": epoch, "val_top1": top1, "val_top5": 99.0, "val_loss": 1.0,
            "train_loss": 1.0, "time_s": float(epoch), "observed_images_per_s": 100.0, **kw}


def test_tables_replay_the_journal_without_duplicate_epochs():
    events = [
        {"event": "start", "trial_id": "t0"}, ep("t0", 1, 50), ep("t0", 2, 60),
        # t0 resumed from its epoch-1 checkpoint: epoch 2 reported again, then 3
        {"event": "start", "trial_id": "t0"}, ep("t0", 2, 61), ep("t0", 3, 70, images_per_epoch=640),
        {"event": "end", "trial_id": "t0", "status": "done"},
        {"event": "start", "trial_id": "t1"}, ep("t1", 1, 40), {"event": "end", "trial_id": "t1", "status": "stopped"},
        {"event": "start", "trial_id": "t2"}, {"event": "end", "trial_id": "t2", "status": "error", "error": "boom"},
    ]
    trials, epochs = build_tables(PLAN, events)
    assert len(epochs) == 4 and epochs.groupby(["trial_id", "epoch"]).size().max() == 1
    assert float(epochs[(epochs.trial_id == "t0") & (epochs.epoch == 2)].val_top1.iloc[0]) == 61
    t = trials.set_index("trial_id")
    assert list(t.status) == ["done", "stopped", "error", "pending"]
    assert t.loc["t0", "final_top1"] == 70 and t.loc["t0", "best_top1"] == 70 and t.loc["t0", "epochs_done"] == 3
    assert t.loc["t0", "starts"] == 2 and t.loc["t0", "images_per_epoch"] == 640
    assert t.loc["t2", "error"] == "boom" and math.isnan(t.loc["t2", "final_top1"])
    assert "config" not in trials.columns and "event" not in epochs.columns


def test_an_interrupted_trial_is_interrupted_until_it_reports_again_and_never_ended():
    events = [
        {"event": "start", "trial_id": "t0"}, ep("t0", 1, 50),
        {"event": "interrupted", "trial_id": "t0", "reason": "SIGTERM"},  # stopped by a signal
        {"event": "start", "trial_id": "t1"}, ep("t1", 1, 50),
        {"event": "interrupted", "trial_id": "t1", "reason": "node lost"}, ep("t1", 2, 55),  # retried elsewhere
        {"event": "start", "trial_id": "t2"}, {"event": "end", "trial_id": "t2", "status": "done"},
        {"event": "interrupted", "signal": "SIGTERM", "running": ["t0"]},  # the sweep's own event
    ]
    trials, _ = build_tables(PLAN, events)
    assert list(trials.set_index("trial_id").status) == ["interrupted", "running", "done", "pending"]
    assert ended_trials(events) == {"t2"}


def test_ended_trials_are_those_whose_latest_word_is_an_end():
    events = [
        {"event": "sweep", "resumed": False},
        {"event": "start", "trial_id": "t0"}, ep("t0", 1, 50), {"event": "end", "trial_id": "t0", "status": "done"},
        {"event": "start", "trial_id": "t1"}, {"event": "end", "trial_id": "t1", "status": "stopped"},
        {"event": "start", "trial_id": "t2"}, {"event": "end", "trial_id": "t2", "status": "error", "error": "x"},
        {"event": "start", "trial_id": "t3"}, ep("t3", 1, 40),  # mid-run when killed
        # t4 failed, was retried on a resume and is running again
        {"event": "start", "trial_id": "t4"}, {"event": "end", "trial_id": "t4", "status": "error"},
        {"event": "start", "trial_id": "t4"},
    ]
    assert ended_trials(events) == {"t0", "t1", "t2"}
    assert ended_trials(events, errored=False) == {"t0", "t1"}
    assert ended_trials([]) == set()


def test_journal_survives_a_torn_last_line_and_tables_are_written(tmp_path):
    import json

    (tmp_path / "plan.json").write_text(json.dumps({"name": "x", "trials": PLAN}))
    j = Journal(tmp_path)
    j.append({"event": "start", "trial_id": "t0"})
    j.append(ep("t0", 1, float("nan")))
    with open(tmp_path / EVENTS, "a") as f:
        f.write('{"event": "epoch", "trial_id": "t0", "ep')  # a kill mid-write
    trials, epochs = load_results(tmp_path)
    assert len(epochs) == 1 and trials.set_index("trial_id").loc["t0", "status"] == "running"
    j.append(ep("t0", 2, 60.0))  # the resumed sweep's next event is not glued to the torn line
    trials, epochs = load_results(tmp_path)
    assert list(epochs.epoch) == [1, 2] and trials.set_index("trial_id").loc["t0", "final_top1"] == 60.0
    write_tables(tmp_path)
    for name in ("trials.csv", "trials.parquet", "epochs.csv", "epochs.parquet"):
        assert (tmp_path / name).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    for name in ("trials.csv", "trials.parquet", "epochs.parquet"):  # as readable as a plain new file
        assert (tmp_path / name).stat().st_mode & 0o777 == (tmp_path / EVENTS).stat().st_mode & 0o777
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "trials.parquet")) == 4


def test_load_results_errors(tmp_path):
    with pytest.raises(ArchScaleError, match="no such directory"):
        load_results(tmp_path / "missing")
    with pytest.raises(ArchScaleError, match="holds no sweep"):
        load_results(tmp_path)


def test_trials_say_how_they_ran_workers_devices_and_device_seconds():
    events = [{"event": "start", "trial_id": "t0"}, ep("t0", 1, 50, workers=4, devices=4.0),
              ep("t0", 2, 60, workers=4, devices=4.0), {"event": "end", "trial_id": "t0", "status": "done"},
              {"event": "start", "trial_id": "t1"}, ep("t1", 1, 40, workers=1, devices=0.5)]
    trials, epochs = build_tables(PLAN, events)
    t = trials.set_index("trial_id")
    assert (t.loc["t0", "workers"], t.loc["t0", "devices"], t.loc["t0", "device_seconds"]) == (4, 4, 8.0)
    assert t.loc["t1", "device_seconds"] == 0.5  # half a GPU for one second
    assert math.isnan(t.loc["t3", "workers"]) and math.isnan(t.loc["t3", "device_seconds"])  # not started
    assert list(epochs.workers) == [4, 4, 1]


def test_journaled_epochs_are_the_last_each_trial_reported():
    events = [{"event": "sweep"}, ep("t0", 1, 50), ep("t0", 2, 60), {"event": "start", "trial_id": "t1"},
              ep("t0", 1, 51), ep("t1", 1, 40)]  # t0 resumed from epoch 1 after its epoch 2 was journaled
    assert journaled_epochs(events) == {"t0": 2, "t1": 1} and journaled_epochs([]) == {}
