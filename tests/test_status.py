"""experiments/results/status.py and `archscale status`: a sweep's state read from its output directory alone."""
import json

import pytest

from experiments.cli import main
from experiments.cli.status import render
from experiments.results.status import sweep_status
from experiments.results.store import EVENTS, MANIFEST, PLAN, Journal
from scaling import ArchScaleError

# three trials of 4 epochs; t1 costs twice t0 and t2 per epoch
TRIALS = [{"trial_id": f"c{i}__rs-10__s0", "name": f"c{i}", "regime": "rs-10", "epochs": 4, "seed": 0,
           "params": 1, "flops": f, "train_flops": 4 * f, "config": {}} for i, f in enumerate((100, 200, 100))]


def ep(tid, epoch, top1, seconds=1.0):
    return {"event": "epoch", "trial_id": tid, "epoch": epoch, "val_top1": top1, "val_top5": 99.0,
            "epoch_time_s": seconds, "time_s": epoch * seconds}


def write_run(tmp_path, events):
    (tmp_path / PLAN).write_text(json.dumps({"name": "tiny", "trials": TRIALS}))
    (tmp_path / MANIFEST).write_text(json.dumps({"name": "tiny"}))
    journal = Journal(tmp_path)
    for e in events:
        journal.append(e)
    return tmp_path


MID_SWEEP = [
    {"event": "sweep", "time": 1000.0},
    {"event": "start", "trial_id": "c0__rs-10__s0", "time": 1000.0},
    ep("c0__rs-10__s0", 1, 40.0), ep("c0__rs-10__s0", 2, 60.0), ep("c0__rs-10__s0", 3, 55.0),
    ep("c0__rs-10__s0", 4, 70.0),
    {"event": "end", "trial_id": "c0__rs-10__s0", "status": "done", "time": 1040.0},
    {"event": "start", "trial_id": "c1__rs-10__s0", "time": 1040.0},
    ep("c1__rs-10__s0", 1, 30.0, seconds=2.0),
]


def test_per_trial_status_epoch_top1_and_time(tmp_path):
    s = sweep_status(write_run(tmp_path, MID_SWEEP), now=1060.0)
    c0, c1, c2 = s.trials
    assert (c0.status, c0.epoch, c0.epochs, c0.top1, c0.best_top1, c0.time_s) == ("done", 4, 4, 70.0, 70.0, 40.0)
    assert (c1.status, c1.epoch, c1.top1, c1.time_s) == ("running", 1, 30.0, 20.0)  # running: until now
    assert c2.status == "pending" and c2.epoch == 0 and c2.time_s == 0.0
    assert s.counts == {"done": 1, "running": 1, "pending": 1} and not s.finished
    assert s.best.name == "c0" and s.best.best_top1 == 70.0


def test_eta_is_the_epochs_left_at_each_trials_pace_over_the_running_trials(tmp_path):
    s = sweep_status(write_run(tmp_path, MID_SWEEP), now=1060.0)
    # c0 finished: 4 epochs in 40 s = 10 s an epoch (one size: every unstarted trial's pace)
    # c1 runs at its own pace, 20 s for 1 epoch: 3 left = 60 s; c2 (pending): 4 x 10 = 40 s; 1 running
    assert s.eta_s == pytest.approx(100.0)


def test_an_unstarted_trial_is_paced_by_the_line_through_the_finished_ones(tmp_path):
    # finished: c0 (100 FLOPs an epoch) 4 epochs in 24 s, c1 (200) in 28 s: 5 s + 0.01 s/FLOP an epoch
    events = [{"event": "sweep", "time": 0.0}]
    for tid, wall in (("c0__rs-10__s0", 24.0), ("c1__rs-10__s0", 28.0)):
        events += [{"event": "start", "trial_id": tid, "time": 0.0}, *(ep(tid, k, 10.0) for k in range(1, 5)),
                   {"event": "end", "trial_id": tid, "status": "done", "time": wall}]
    s = sweep_status(write_run(tmp_path, events), now=30.0)
    assert s.eta_s == pytest.approx(4 * 6.0)  # c2: 100 FLOPs -> 6 s an epoch, 4 epochs, nothing running


def test_a_killed_launch_ends_its_trials_time_at_the_next_launch(tmp_path):
    events = [{"event": "sweep", "time": 0.0}, {"event": "start", "trial_id": "c0__rs-10__s0", "time": 0.0},
              ep("c0__rs-10__s0", 1, 40.0),
              {"event": "sweep", "time": 500.0},  # the driver was killed at some point; relaunched at 500
              {"event": "start", "trial_id": "c0__rs-10__s0", "time": 510.0}]
    s = sweep_status(write_run(tmp_path, events), now=520.0)
    assert s.trials[0].time_s == pytest.approx(510.0) and s.launches == 2
    assert s.eta_s is None  # no trial has finished yet


def test_a_finished_sweep_has_no_eta(tmp_path):
    events = [{"event": "sweep", "time": 0.0}]
    for i, t in enumerate(TRIALS):
        events += [{"event": "start", "trial_id": t["trial_id"], "time": 10.0 * i}, ep(t["trial_id"], 1, 50.0 + i),
                   {"event": "end", "trial_id": t["trial_id"], "status": "stopped" if i else "done",
                    "time": 10.0 * i + 5}]
    s = sweep_status(write_run(tmp_path, events), now=100.0)
    assert s.finished and s.eta_s is None and s.best.name == "c2"
    assert "finished: no trial pending or running" in render(s)


def test_a_sweep_stopped_by_a_signal_counts_its_interrupted_trials_and_is_not_finished(tmp_path):
    events = MID_SWEEP + [{"event": "interrupted", "signal": "SIGINT", "running": ["c1__rs-10__s0"], "time": 1050.0},
                          {"event": "interrupted", "trial_id": "c1__rs-10__s0", "reason": "SIGINT", "time": 1050.0}]
    s = sweep_status(write_run(tmp_path, events), now=1060.0)
    assert s.counts == {"done": 1, "interrupted": 1, "pending": 1} and not s.finished
    assert "interrupted 1" in render(s)


def test_archscale_status_prints_trials_then_counts_best_and_eta(tmp_path, capsys):
    from experiments.results.lock import DriverLock

    write_run(tmp_path, MID_SWEEP)
    with DriverLock(tmp_path):  # its driver runs
        assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["trial", "regime", "seed", "status", "epoch", "top-1", "best", "time", "health"]
    assert out[1].split()[:7] == ["c0", "rs-10", "0", "done", "4/4", "70.00", "70.00"]
    assert out[1].split()[-1] == "ok" and out[2].split()[-1] == "-"  # running: no verdict yet
    assert out[3].split()[3:7] == ["pending", "0/4", "-", "-"]
    assert out[4] == "sweep tiny: 3 trials: done 1, running 1, pending 1"
    assert out[5] == "health: ok 1"
    assert out[6] == "best top-1 so far: 70.00% c0 (rs-10, seed 0)"
    assert out[7].startswith("ETA ") and "journal last written" in out[7]


def test_archscale_status_json_and_watch_stop_when_the_sweep_has_ended(tmp_path, capsys):
    events = MID_SWEEP + [ep("c1__rs-10__s0", 4, 80.0), {"event": "end", "trial_id": "c1__rs-10__s0",
                                                          "status": "done", "time": 1100.0},
                          {"event": "start", "trial_id": "c2__rs-10__s0", "time": 1100.0},
                          {"event": "end", "trial_id": "c2__rs-10__s0", "status": "error", "error": "boom",
                           "time": 1101.0}]
    write_run(tmp_path, events)
    assert main(["status", str(tmp_path), "--json", "--watch", "0.01"]) == 0  # returns: nothing left to wait for
    doc = json.loads(capsys.readouterr().out)
    assert doc["finished"] and doc["counts"] == {"done": 2, "error": 1} and doc["best"]["name"] == "c1"
    assert doc["trials"][2]["top1"] is None  # NaN as null: strict JSON


def test_status_of_a_folder_without_a_sweep_is_a_one_line_error(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archscale status: error: run_dir:") and err.count("\n") == 1
    assert main(["status", str(write_run(tmp_path, [])), "--watch", "0"]) == 2
    assert "watch: seconds between refreshes must be > 0" in capsys.readouterr().err


def test_status_reads_nothing_but_the_folder(tmp_path):
    assert not (tmp_path / EVENTS).exists()
    write_run(tmp_path, [])
    s = sweep_status(tmp_path)
    assert s.counts == {"pending": 3} and s.eta_s is None and s.best is None
    with pytest.raises(ArchScaleError):
        sweep_status(tmp_path / "missing")


def test_a_sweep_whose_driver_is_gone_says_driver_not_running_not_pending(tmp_path, capsys):
    from experiments.results.lock import DriverLock

    write_run(tmp_path, MID_SWEEP)
    with DriverLock(tmp_path):  # a live driver: the trials run or wait for Ray
        status = sweep_status(tmp_path, now=1060.0)
        assert status.driver_running and status.to_dict()["driver_running"] is True
        rows = render(status).splitlines()[1:4]
        assert "driver not running" not in render(status) and [r.split()[3] for r in rows] == ["done", "running",
                                                                                               "pending"]
    status = sweep_status(tmp_path, now=1060.0)  # the driver was killed: its lock is free
    assert not status.driver_running and status.counts == {"done": 1, "running": 1, "pending": 1}
    lines = render(status).splitlines()
    assert [ln.split()[3:6] for ln in lines[2:4]] == [["driver", "not", "running"]] * 2
    assert lines[4] == "sweep tiny: 3 trials: done 1, driver not running 2"  # not "running 1, pending 1"
    assert ("driver not running: 2 trials wait; rerun 'archscale sweep SPEC' to resume them (with --restart when "
            "Tune's saved state cannot be restored)") in lines
    assert main(["status", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["driver_running"] is False


def test_a_trial_that_failed_on_a_user_error_waits_for_the_rerun_with_the_others(tmp_path):
    user = "scaling.errors.ArchScaleError: dataset.root: cannot read image a.jpg (OSError: Truncated File Read)"
    events = MID_SWEEP[:-2] + [{"event": "start", "trial_id": "c1__rs-10__s0", "time": 1040.0},
                               {"event": "end", "trial_id": "c1__rs-10__s0", "status": "error", "error": user,
                                "time": 1041.0},
                               {"event": "start", "trial_id": "c2__rs-10__s0", "time": 1040.0},
                               {"event": "interrupted", "trial_id": "c2__rs-10__s0", "reason": "user error",
                                "time": 1041.0}]
    status = sweep_status(write_run(tmp_path, events), now=1060.0)
    assert status.user_errors == 1 and not status.finished and status.to_dict()["user_errors"] == 1
    assert ("driver not running: 2 trials wait (1 failed on a user error); rerun 'archscale sweep SPEC' to "
            "resume them") in render(status)
    (tmp_path / EVENTS).unlink()
    status = sweep_status(write_run(tmp_path, events[:-2]), now=1060.0)
    assert status.counts == {"done": 1, "error": 1, "pending": 1}
    assert "driver not running: 2 trials wait (1 failed on a user error)" in render(status)
    (tmp_path / EVENTS).unlink()
    status = sweep_status(write_run(tmp_path, events[:-2] + [{"event": "start", "trial_id": "c2__rs-10__s0"},
                                                             {"event": "end", "trial_id": "c2__rs-10__s0",
                                                              "status": "done"}]), now=1060.0)
    assert "driver not running: 1 trial waits (1 failed on a user error)" in render(status)


def test_watch_off_a_terminal_prints_the_status_once_then_a_line_per_change(tmp_path, capsys, monkeypatch):
    from experiments.cli import status as status_cli

    write_run(tmp_path, MID_SWEEP)
    from experiments.results.lock import DriverLock

    with DriverLock(tmp_path):
        first = len(render(sweep_status(tmp_path)).splitlines())
    journal = Journal(tmp_path)
    steps = iter([[],  # a refresh where nothing changed: no output
                  [ep("c1__rs-10__s0", 2, 50.0, seconds=2.0)],
                  [ep("c1__rs-10__s0", 3, 60.0, seconds=2.0), ep("c1__rs-10__s0", 4, 80.0, seconds=2.0),
                   {"event": "end", "trial_id": "c1__rs-10__s0", "status": "done", "time": 1100.0},
                   {"event": "start", "trial_id": "c2__rs-10__s0", "time": 1100.0},
                   {"event": "end", "trial_id": "c2__rs-10__s0", "status": "error", "error": "boom", "time": 1101.0}]])

    def next_step(seconds):
        for event in next(steps):
            journal.append(event)

    monkeypatch.setattr(status_cli.time, "sleep", next_step)
    from experiments.results.lock import DriverLock

    with DriverLock(tmp_path):  # a live driver
        assert main(["status", str(tmp_path), "--watch", "5"]) == 0  # capsys' stdout is not a terminal
    out = capsys.readouterr().out.splitlines()
    assert sum(line.split()[:2] == ["trial", "regime"] for line in out) == 1  # the table once, no redraw
    assert out[first:] == ["c1 rs-10 seed 0: running, epoch 2/4, top-1 50.00",
                     "sweep tiny: done 1, running 1, pending 1",
                     "c1 rs-10 seed 0: done, epoch 4/4, top-1 80.00, ok",
                     "c2 rs-10 seed 0: error, epoch 0/4, top-1 -",
                     "sweep tiny: done 2, error 1; finished: no trial pending or running"]


def test_json_watch_off_a_terminal_prints_an_object_per_change_only(tmp_path, capsys, monkeypatch):
    from experiments.cli import status as status_cli
    from experiments.results.lock import DriverLock

    write_run(tmp_path, MID_SWEEP)
    journal = Journal(tmp_path)
    steps = iter([[], [], [ep("c1__rs-10__s0", 2, 50.0, seconds=2.0)],
                  [{"event": "end", "trial_id": t, "status": "error", "error": "boom", "time": 1101.0}
                   for t in ("c1__rs-10__s0", "c2__rs-10__s0")]])
    monkeypatch.setattr(status_cli.time, "sleep", lambda s: [journal.append(e) for e in next(steps)])
    with DriverLock(tmp_path):
        assert main(["status", str(tmp_path), "--json", "--watch", "5"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["counts"] for d in docs] == [{"done": 1, "running": 1, "pending": 1}] * 2 + [{"done": 1, "error": 2}]
    assert [t["epoch"] for t in docs[1]["trials"]][1] == 2 and docs[-1]["finished"]
