"""Where a trial's time goes: phase times measured in the trial, completed by the driver's
callback, summed into the trials table, and the sweep's own figures (experiments.results.timeline)."""
import math
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from experiments.cli import main
from experiments.results.schema import PHASES, EpochReport, SweepLaunch, phase_column
from experiments.results.store import Journal, load_results, read_events
from experiments.results.timeline import overhead_phases, sweep_times
from experiments.train.phases import PhaseClock
from experiments.train.trial import train_trial, warmup_seconds
from test_status import TRIALS, write_run
from test_trainer import config

COLUMNS = [phase_column(p) for p in PHASES]


def test_a_trials_phases_add_up_to_its_wall_time():
    clock, reports = PhaseClock(), []

    def report(m, ckpt):
        time.sleep(0.02)  # the reporter's time is the report phase's
        reports.append(m)

    t0 = time.perf_counter()
    train_trial(config(checkpoint_interval_s=0, max_steps_per_epoch=1, regime={"name": "rs-10", "epochs": 2},
                       dataset={"name": "synthetic", "train_size": 64, "val_size": 32}),
                report=report, phases=clock)
    wall = time.perf_counter() - t0
    measured = sum(clock.seconds.values())
    # within 5 %, and a few ms: in a warm test process the whole trial takes under 0.1 s, and the call's
    # own set-up before the first phase (config checks) is a fixed few ms that no phase owns
    assert measured == pytest.approx(wall, rel=0.05, abs=0.01)
    assert clock.seconds["report"] >= 2 * 0.02 and clock.seconds["checkpoint"] > 0
    assert all(clock.seconds[p] > 0 for p in ("data", "model", "warmup", "train", "eval"))
    # every report carries the phases so far (the report phase lags by its own call), growing
    trained = [r.phase_train_s for r in reports]
    assert trained == sorted(trained) and reports[-1].phase_eval_s == pytest.approx(clock.seconds["eval"])
    assert [r.first_step_at is not None for r in reports] == [True, False]
    assert all(r.reported_at and r.cpu_time_s > 0 for r in reports)


def test_warmup_is_what_the_first_step_took_beyond_an_ordinary_one():
    assert warmup_seconds(0.0, 10, 1.0) == 0.0  # an epoch that did not take the run's first step
    # 10 steps in 1.4 s, the first 0.5 s: the others took 0.1 s each, so 0.4 s was warm-up
    assert warmup_seconds(0.5, 10, 1.4) == pytest.approx(0.4)
    assert warmup_seconds(0.05, 10, 1.4) == 0.0  # a first step no slower than the rest
    assert warmup_seconds(0.5, 1, 0.5) == 0.5  # one step: nothing to compare it with


def test_an_unknown_phase_is_refused():
    with pytest.raises(KeyError, match="unknown phase 'lunch'"):
        PhaseClock().add("lunch", 1.0)


def _callback(tmp_path, monkeypatch, concurrency=1):
    from experiments.sweep import callbacks

    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(callbacks.time, "time", lambda: clock.now)
    writes = []
    monkeypatch.setattr(callbacks, "write_tables", lambda out: writes.append(clock.now) or (pd.DataFrame(), None))
    Journal(tmp_path).append(SweepLaunch(time=100.0, already_ended=[], command_started_at=90.0, cpus=1))
    cb = callbacks.StoreCallback(str(tmp_path), {"a": 1, "b": 1}, concurrency=concurrency, write_every_s=30)
    cb.setup()
    return cb, clock, writes


def _trial(tid):
    return SimpleNamespace(config={"trial": {"trial_id": tid}}, last_result={"epoch": 1}, trial_id=tid)


def _epoch(tid, **kw):
    worker = {"phase_worker_start_s": 0.5, "phase_data_s": 1.0, "phase_model_s": 0.25, "phase_warmup_s": 0.25,
              "phase_train_s": 5.0, "phase_eval_s": 1.0, "phase_checkpoint_s": 0.0, "phase_report_s": 0.0}
    return {"trial_id": tid, "epoch": 1, "val_top1": 50.0, **worker, **kw}


def test_the_driver_completes_the_phases_so_they_add_up_to_the_wall_time(tmp_path, monkeypatch):
    cb, clock, _ = _callback(tmp_path, monkeypatch)
    a, b = _trial("a"), _trial("b")
    clock.now = 103.0  # a new worker: its process started at 101 (2 s of the launch were Tune's)
    cb.on_trial_start(0, [], a)
    cb.on_trial_result(0, [], a, _epoch("a", entered_at=103.5, process_started_at=101.0, reported_at=111.5,
                                        cpu_time_s=8.0))
    clock.now = 113.0
    cb.on_trial_complete(0, [], a)
    clock.now = 113.25  # b takes a's slot on the reused worker: queued from a's end
    cb.on_trial_start(0, [], b)
    cb.on_trial_result(0, [], b, _epoch("b", entered_at=113.5, phase_worker_start_s=0.0, reported_at=121.0))
    clock.now = 122.0
    cb.on_trial_complete(0, [], b)
    ends = {e.trial_id: e for e in read_events(tmp_path) if e.event == "end"}
    ea, eb = ends["a"], ends["b"]
    assert (ea.phase_wait_s, ea.phase_worker_start_s) == (1.0, 0.5 + 2.5)  # queued 100, process 101, in 103.5
    assert (eb.phase_wait_s, eb.phase_worker_start_s) == (0.5, 0.0)  # queued at a's end, 113
    assert (ea.phase_report_s, eb.phase_report_s) == (1.5, 1.0) and ea.wall_time_s == 13.0 and eb.wall_time_s == 9.0
    assert sum(ea[c] for c in COLUMNS) == pytest.approx(ea.wall_time_s)
    assert sum(eb[c] for c in COLUMNS) == pytest.approx(eb.wall_time_s)


def test_a_process_started_before_the_trial_was_queued_counts_from_the_queueing(tmp_path, monkeypatch):
    cb, clock, _ = _callback(tmp_path, monkeypatch)
    clock.now = 104.0
    cb.on_trial_start(0, [], _trial("a"))
    cb.on_trial_result(0, [], _trial("a"), _epoch("a", entered_at=104.0, process_started_at=20.0, reported_at=113))
    epoch = next(e for e in read_events(tmp_path) if e.event == "epoch")
    assert epoch.phase_wait_s == 0.0 and epoch.phase_worker_start_s == 0.5 + 4.0


def test_the_tables_are_written_on_a_timer_and_at_the_end_not_at_each_trial_end(tmp_path, monkeypatch):
    from experiments.sweep import callbacks

    cb, _, writes = _callback(tmp_path, monkeypatch, concurrency=2)
    mono = SimpleNamespace(now=0.0)
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: mono.now)
    cb.setup()
    for i, tid in enumerate(["a", "b"]):
        cb.on_trial_start(0, [], _trial(tid))
        cb.on_trial_complete(0, [], _trial(tid))
        mono.now = 10.0 * (i + 1)
        cb.on_step_end(0, [])
    assert writes == []  # two trials ended within 30 s: the journal has them, the tables wait
    mono.now = 31.0
    cb.on_step_end(0, [])
    cb.on_step_end(0, [])  # nothing new since: no rewrite
    assert len(writes) == 1
    cb.on_experiment_end([])
    assert len(writes) == 2


def test_trials_table_holds_the_phases_and_wall_time(tmp_path):
    tid = TRIALS[0]["trial_id"]
    phases = {c: 1.0 for c in COLUMNS}
    write_run(tmp_path, [{"event": "sweep", "time": 1000.0, "command_started_at": 990.0, "cpus": 2.0},
                         {"event": "start", "trial_id": tid, "time": 1001.0, "queued_at": 1000.0},
                         {"event": "epoch", "trial_id": tid, "epoch": 1, "val_top1": 50.0, "first_step_at": 1004.0,
                          "process_started_at": 999.0, **phases},
                         {"event": "end", "trial_id": tid, "status": "done", "time": 1009.0, "wall_time_s": 9.0,
                          "cpu_time_s": 9.0, **{c: 2.0 if c == phase_column("report") else 1.0 for c in COLUMNS}}])
    trials, _ = load_results(tmp_path)
    row = trials.set_index("trial_id").loc[tid]
    assert row[phase_column("report")] == 2.0 and row["wall_time_s"] == 9.0 and bool(row["new_worker"])
    assert row[COLUMNS].sum() == pytest.approx(10.0)
    assert row["queued_at"] == 1000.0 and row["first_step_at"] == 1004.0


def _table(rows):
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        df[c] = df.get(c, 0.0)
    return df


def test_sweep_times_from_the_journal_the_table_and_the_samples():
    launch = SweepLaunch(time=100.0, command_started_at=90.0, cpus=2.0)
    trials = _table([
        {"trial_id": "a", "status": "done", "finished_at": 120.0, "first_step_at": 105.0, "cpu_time_s": 20.0,
         "new_worker": True, phase_column("worker_start"): 4.0, phase_column("data"): 2.0, phase_column("train"): 9.0},
        {"trial_id": "b", "status": "done", "finished_at": 130.0, "first_step_at": 111.0, "cpu_time_s": 10.0,
         "new_worker": False, phase_column("report"): 1.0, phase_column("train"): 9.0},
    ])
    t = sweep_times([launch], trials)
    assert t.wall_s == 40.0 and t.launch_to_first_step_s == 15.0
    assert t.busy_share == pytest.approx(30.0 / (2 * 40.0)) and t.busy_source == "cpu"
    assert t.overhead_s == pytest.approx((6.0 + 1.0) / 2) and t.overhead_warm_s == pytest.approx(1.0)
    assert (t.largest_overhead_phase, t.largest_overhead_s) == ("worker_start", 4.0)
    # GPU samples: idle until the first at 110, 100 % to 120, 50 % to the end at 130 -> 15/40
    samples = pd.DataFrame({"time": [110.0, 120.0], "device": "gpu0", "utilisation_pct": [100.0, 50.0],
                            "source": "nvml"})
    t = sweep_times([launch], trials, samples)
    assert t.busy_share == pytest.approx((10 * 1.0 + 10 * 0.5) / 40) and t.busy_source == "nvml"
    assert "train" not in {p.removeprefix("phase_").removesuffix("_s") for p in overhead_phases()}
    # a trial this launch resumed: its first step was in an earlier launch, its first step in this one
    # is in the journal; launch to first step never comes out negative
    resumed = _table([{"trial_id": "c", "status": "done", "finished_at": 130.0, "first_step_at": 50.0,
                       phase_column("train"): 9.0}])
    assert sweep_times([launch, EpochReport(trial_id="c", epoch=3, first_step_at=112.0)],
                       resumed).launch_to_first_step_s == 22.0
    assert math.isnan(sweep_times([launch], resumed).launch_to_first_step_s)


def test_status_shows_the_busy_share_and_the_largest_non_training_phase(tmp_path, capsys):
    tid = TRIALS[0]["trial_id"]
    write_run(tmp_path, [{"event": "sweep", "time": 1000.0, "command_started_at": 990.0, "cpus": 1.0},
                         {"event": "start", "trial_id": tid, "time": 1000.0, "queued_at": 1000.0},
                         {"event": "epoch", "trial_id": tid, "epoch": 4, "val_top1": 50.0, "first_step_at": 1002.0},
                         {"event": "end", "trial_id": tid, "status": "done", "time": 1010.0, "wall_time_s": 10.0,
                          "cpu_time_s": 5.0, phase_column("train"): 6.0, phase_column("data"): 3.0,
                          phase_column("eval"): 1.0}])
    assert main(["status", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "launch to first training step 12.00s" in line and "devices busy 25% of 20.00s" in line
    assert "largest non-training phase: data (3.00s over 1 trials)" in line


def test_an_epoch_report_round_trips_its_phases():
    r = EpochReport(trial_id="t", epoch=1, phase_train_s=2.0, entered_at=5.0)
    assert EpochReport.from_dict(r.to_dict(), strict=True) == r and r.to_event()["phase_train_s"] == 2.0


def test_the_driver_samples_its_ray_processes_cpu_use_on_a_cpu_machine(tmp_path):
    import subprocess
    import sys

    from experiments.results.timeline import load_utilisation
    from experiments.sweep.utilisation import UtilisationSampler

    with UtilisationSampler(tmp_path, cpus=1, every_s=0.1) as sampler:
        busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 0.8: pass"])
        busy.wait()
        time.sleep(0.15)
    samples = load_utilisation(tmp_path)
    assert sampler.source == "cpu" and set(samples["device"]) == {"cpu"} and len(samples) >= 5
    assert samples["utilisation_pct"].max() > 5  # the child's CPU seconds (a local Ray's workers are children)


@pytest.mark.parametrize("content", ["", "time,dev", "time,device,utilisation_pct,source\n1.0,cpu,50"])
def test_a_utilisation_file_a_kill_cut_short_loads_what_it_holds(tmp_path, content):
    """A driver killed as it opened utilisation.csv leaves it empty or with half its header
    (archscale status read it with a pandas traceback); a torn last line is dropped."""
    from experiments.results.schema import UTILISATION
    from experiments.results.timeline import UTILISATION_COLUMNS, load_utilisation

    (tmp_path / UTILISATION).write_text(content)
    samples = load_utilisation(tmp_path)
    assert list(samples.columns) == UTILISATION_COLUMNS and samples.empty


@pytest.mark.parametrize("left", ["", "time,device,utilisation_pct,source\n1.0,cpu,5"])
def test_a_relaunch_samples_after_what_a_killed_launch_left(tmp_path, left):
    """The next launch of the sweep appends its samples readably: a header where the file was left
    empty, and a torn last line kept apart from its first sample."""
    from experiments.results.schema import UTILISATION
    from experiments.results.timeline import load_utilisation
    from experiments.sweep.utilisation import UtilisationSampler

    (tmp_path / UTILISATION).write_text(left)
    with UtilisationSampler(tmp_path, cpus=1, every_s=0.05):
        time.sleep(0.3)
    samples = load_utilisation(tmp_path)
    assert len(samples) >= 2 and set(samples["device"]) == {"cpu"} and (samples["time"] > 1.0).all()
