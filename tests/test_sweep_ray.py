"""Sweeps on a real Ray: failures, ASHA, resume after SIGKILL, a stop by signal, GPU packing, two
nodes, a lost node.

Each test starts its own Ray (local, loopback, dashboard off). Only the first runs by default;
the others are slow and run in CI's slow pass. Tests that run a driver in a subprocess give its
Ray a temp directory of their own, so its processes can be counted among any others.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sweep_helpers import ray_processes, ray_temp_dir, tiny_sweep

from experiments.results.store import load_results, read_events

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


def test_failing_trial_is_recorded_while_the_others_finish(tmp_path, fresh_ray, capsys):
    from experiments.cli import main
    from experiments.sweep.run import run_sweep

    spec = tiny_sweep(tmp_path / "out", widths=(0.5, 1.0, 2.0), trial_overrides={"*-w2-*": {"fail_at_epoch": 2}})
    summary = run_sweep(spec, quiet=True, num_cpus=2)
    assert summary.counts == {"done": 2, "error": 1} and not summary.all_failed
    trials, epochs = load_results(tmp_path / "out")
    failed = trials[trials.status == "error"].iloc[0]
    assert failed["name"] == "d8-w2-r12" and "injected failure at epoch 2" in failed["error"]
    done = trials[trials.status == "done"]
    assert (done.epochs_done == 2).all() and done.final_top1.notna().all() and (done.params > 0).all()
    assert {"width_multiplier", "flops", "regime", "dataset", "seed", "device", "train_time_s"} <= set(trials.columns)
    assert len(epochs) == 2 * 2 + 1  # the failed trial reported its first epoch
    # where the time went: the phases add up to each finished trial's wall time (queued to end)
    phases = [c for c in trials.columns if c.startswith("phase_")]
    assert len(phases) == 9 and (done[phases].sum(axis=1) / done.wall_time_s).between(0.95, 1.05).all()
    assert (done.phase_train_s > 0).all() and (done.phase_eval_s > 0).all() and done.new_worker.any()
    assert summary.times.launch_to_first_step_s > 0 and 0 < summary.times.busy_share <= 1.0
    for name in ("trials.parquet", "epochs.parquet", "manifest.json", "plan.json"):
        assert (tmp_path / "out" / name).is_file()
    # the report works on a partly failed run
    assert main(["report", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "report written" in out and "1 error" in out
    assert (tmp_path / "out" / "report" / "report.html").is_file()


@pytest.mark.slow
def test_asha_stops_some_trials_early(tmp_path, fresh_ray):
    from experiments.sweep.run import run_sweep

    spec = tiny_sweep(tmp_path / "out", widths=(0.5, 1.0, 1.5, 2.0), depths=(8, 14), epochs=4, steps=3,
                      scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
                      resources={"cpus": 1, "gpus": 0, "max_concurrent": 2})
    summary = run_sweep(spec, quiet=True, num_cpus=2)
    trials, _ = load_results(tmp_path / "out")
    assert summary.counts.get("error", 0) == 0
    stopped = trials[trials.status == "stopped"]
    assert len(stopped) >= 1 and (stopped.epochs_done < 4).all()
    assert (trials[trials.status == "done"].epochs_done == 4).all()


def _sweep_command(tmp_path, spec: dict) -> tuple[list[str], dict]:
    """The CLI command of ``spec`` (written next to its output) and an environment whose Ray
    temp directory (RAY_TMPDIR) belongs to this test."""
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(f), "--quiet", "--num-cpus", "2"]
    return cmd, {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": ray_temp_dir()}


def _wait_for_epochs(driver, out, until, on_first_epoch=None) -> dict[str, int]:
    """Poll the journal until ``until(ended, reached)``: the trials that ended, and the last epoch
    reported by each trial still running. Returns ``reached``."""
    deadline = time.time() + 300
    while time.time() < deadline:
        events = read_events(out)
        ended = {e["trial_id"] for e in events if e.get("event") == "end"}
        reached = {}
        for e in events:
            if e.get("event") == "epoch" and e["trial_id"] not in ended:
                reached[e["trial_id"]] = e["epoch"]
        if on_first_epoch and reached:
            on_first_epoch(out)
            on_first_epoch = None
        if until(ended, reached):
            return reached
        assert driver.poll() is None, "the sweep ended before it could be stopped"
        time.sleep(0.5)
    raise AssertionError("the sweep did not get that far in 300 s")


def _kill_mid_sweep(tmp_path, on_first_epoch=None, kill_guard=False, **spec_extra):
    """Start an 8-trial sweep in a subprocess and SIGKILL it once two trials have ended while
    another has reported 3 or 4 of its 5 epochs (checkpoints are written in the background and
    reach Tune with the next epoch's report, and Tune saves its state after every second checkpoint,
    so that trial's checkpoint is on record); with ``kill_guard``, SIGKILL the
    process that ends the driver's Ray with it too. ``spec_extra``: more sweep-spec keys. Returns
    (command, env, output dir, trials that had ended, number of events so far, the killed
    driver's Ray session directory)."""
    out = tmp_path / "out"
    spec = tiny_sweep(out, widths=(0.5, 1.0, 1.5, 2.0), depths=(8, 14), epochs=5, steps=24,
                      trial={"max_steps_per_epoch": 24, "checkpoint_every": 1}, **spec_extra)
    cmd, env = _sweep_command(tmp_path, spec)
    driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_epochs(driver, out, lambda ended, reached: len(ended) >= 2 and any(3 <= n <= 4 for n in reached.values()),
                     on_first_epoch)
    time.sleep(0.3)  # let Tune save the state the second checkpoint asked for
    assert ray_processes(env["RAY_TMPDIR"]), "the driver's Ray processes are not where the test looks"
    if kill_guard:
        os.kill(json.loads((out / "ray_session.json").read_text())["guard_pid"], signal.SIGKILL)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    events = read_events(out)
    ended_before = {e["trial_id"] for e in events if e.get("event") == "end"}
    assert ended_before and len(ended_before) < 8
    time.sleep(2)
    killed_session = next((Path(env["RAY_TMPDIR"]) / "ray").glob(f"session_*_{driver.pid}"))  # Ray's naming
    return cmd, env, out, ended_before, len(events), killed_session


def _resume_and_check(cmd, env, out, ended_before, n_events_before, epochs=5, on_launch=None) -> list[dict]:
    """Rerun the sweep (calling ``on_launch()`` once it has journaled its launch, Ray up); check
    every trial finished once, nothing that had ended ran again, and no process of the test's Ray
    sessions is left. Returns the events the rerun added."""
    log = out.parent / "rerun.err"  # a file, not a pipe nobody reads while the test polls
    with open(log, "w") as err:
        rerun = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 300
        while on_launch and time.time() < deadline:
            if [e for e in read_events(out)[n_events_before:] if e.get("event") == "sweep"]:
                on_launch()
                break
            assert rerun.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
        rerun.wait(timeout=600)
    finally:
        if rerun.poll() is None:  # a failed check: stop the rerun (its Ray ends with it)
            rerun.terminate()
            rerun.wait(timeout=120)
    assert rerun.returncode == 0, log.read_text()[-2000:]
    trials, epoch_rows = load_results(out)
    assert (trials.status == "done").all() and (trials.epochs_done == epochs).all()
    assert epoch_rows.groupby(["trial_id", "epoch"]).size().max() == 1  # no duplicate rows
    after = read_events(out)[n_events_before:]
    for tid in ended_before:  # finished trials were not re-run
        assert not [e for e in after if e.get("trial_id") == tid and e["event"] in ("start", "epoch", "end")]
    assert set(after[0]["already_ended"]) == ended_before
    assert ray_processes(env["RAY_TMPDIR"]) == []
    return after


def _first_epochs(events) -> dict[str, int]:
    """Each trial's first reported epoch among ``events``."""
    first = {}
    for e in events:
        if e.get("event") == "epoch" and e["trial_id"] not in first:
            first[e["trial_id"]] = e["epoch"]
    return first


@pytest.mark.slow
def test_resume_after_sigkill_reruns_nothing_finished_and_duplicates_nothing(tmp_path):
    """The driver and the guard of its Ray are both killed: the rerun ends what is left of the
    killed run's Ray (Ray's agents outlive their driver for a minute or more) as it launches,
    then resumes."""
    cmd, env, out, ended_before, n, killed = _kill_mid_sweep(tmp_path, kill_guard=True)
    left = ray_processes(killed)

    def launched():
        assert ray_processes(killed) == [], f"{len(left)} processes of the killed run's Ray were left"

    after = _resume_and_check(cmd, env, out, ended_before, n, on_launch=launched)
    # a trial that was mid-run continued from its checkpoint instead of starting over
    resumed = _first_epochs(after)
    assert any(first > 1 for first in resumed.values()), resumed
    trials, epoch_rows = load_results(out)
    rerun_finished = {e["trial_id"] for e in after
                      if e.get("trial_id") in ended_before and e["event"] in ("start", "epoch", "end")}
    print(f"\nSIGKILL and rerun: {len(trials)} trials, {len(ended_before)} ended before the kill; "
          f"killed run's Ray processes left after the kill: {len(left)}, at the rerun's launch: "
          f"{len(ray_processes(killed))}; finished trials re-run: {len(rerun_finished)}; duplicate rows: "
          f"{int(epoch_rows.duplicated(['trial_id', 'epoch']).sum())}; Ray processes left after the rerun: "
          f"{len(ray_processes(env['RAY_TMPDIR']))}; resumed trials' first epochs: {resumed}")


def _gone(temp_dir, within_s=30.0) -> list[int]:
    """The processes left in ``temp_dir`` once they are gone or ``within_s`` has passed."""
    deadline = time.time() + within_s
    while (left := ray_processes(temp_dir)) and time.time() < deadline:
        time.sleep(0.5)
    return left


@pytest.mark.slow
@pytest.mark.parametrize("tune_state", ["lagging", "missing"])
def test_resume_trusts_the_journal_over_tunes_saved_state(tmp_path, tune_state):
    """Tune saves its experiment state every few seconds, so a kill can leave it saying that a
    trial which had ended (in the journal) is still running. Simulated deterministically: Tune's
    state files are put back to their copy from the first epoch, when no trial had ended; or
    Tune's whole experiment directory is gone (a fresh Tuner runs the sweep again)."""
    saved = {}

    def keep_early_state(out):
        for p in (out / "ray" / "tiny").glob("*.json"):
            saved[p] = p.read_bytes()

    cmd, env, out, ended_before, n, killed = _kill_mid_sweep(tmp_path, keep_early_state)
    assert _gone(killed) == []  # the guard ended the killed driver's Ray
    assert any(p.name.startswith("experiment_state") for p in saved), sorted(saved)
    if tune_state == "missing":
        shutil.rmtree(out / "ray")
    else:
        for p in (out / "ray" / "tiny").glob("experiment_state*.json"):
            p.unlink()
        for p, data in saved.items():
            p.write_bytes(data)
    after = _resume_and_check(cmd, env, out, ended_before, n)
    assert after[0]["resumed"] is (tune_state == "lagging")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_ends_the_sweep_gracefully_and_a_rerun_resumes(tmp_path, signum):
    """Ctrl-C in a terminal signals the driver's whole process group; a cluster scheduler sends
    the driver SIGTERM. Either way: exit 128 + the signal, running trials journaled as
    interrupted, no Ray process left, and the rerun continues them from their checkpoints."""
    out = tmp_path / "out"
    spec = tiny_sweep(out, widths=(0.5, 1.0, 1.5), epochs=5, steps=24,
                      trial={"max_steps_per_epoch": 24, "checkpoint_every": 1})
    cmd, env = _sweep_command(tmp_path, spec)
    driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    reached = _wait_for_epochs(driver, out, lambda ended, reached: any(2 <= n <= 3 for n in reached.values()))
    if signum == signal.SIGINT:
        os.killpg(driver.pid, signum)
    else:
        driver.send_signal(signum)
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr and "stopped by " + signal.Signals(signum).name in stdout
    events = read_events(out)
    stop = [e for e in events if e.get("event") == "interrupted" and "trial_id" not in e]
    mid = next(t for t, n in reached.items() if n >= 2)
    assert len(stop) == 1 and stop[0]["signal"] == signal.Signals(signum).name and mid in stop[0]["running"]
    trials, _ = load_results(out)
    assert set(trials.status) <= {"done", "interrupted", "pending"}
    assert trials.set_index("trial_id").status[mid] == "interrupted"
    assert ray_processes(env["RAY_TMPDIR"]) == []
    last_before = max(e["epoch"] for e in events if e.get("event") == "epoch" and e["trial_id"] == mid)
    ended = {e["trial_id"] for e in events if e.get("event") == "end"}
    after = _resume_and_check(cmd, env, out, ended, len(events))
    # it continued from its last checkpoint: written in the background, that checkpoint reached Tune
    # with the next epoch's report, so it is the last reported epoch's or the one before's
    assert 1 < last_before <= _first_epochs(after)[mid] <= last_before + 1


@pytest.mark.slow
def test_half_gpu_trials_are_packed_four_at_a_time_on_two_logical_gpus(tmp_path, fresh_ray):
    from experiments.sweep.run import run_sweep

    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    spec = tiny_sweep(tmp_path / "out", widths=(0.5, 1.0, 1.5, 2.0), epochs=3, steps=8,
                      resources={"cpus": 1, "gpus": 0.5})
    summary = run_sweep(spec, quiet=True)
    assert summary.counts == {"done": 4}
    trials, epochs = load_results(tmp_path / "out")
    assert set(trials.gpu_ids) <= {"0", "1"} and trials.gpu_ids.value_counts().tolist() == [2, 2]
    last = epochs.sort_values("epoch").groupby("trial_id").last()
    assert (last.cuda_visible_devices == last.gpu_ids).all()  # each trial sees only its own GPU
    events = read_events(tmp_path / "out")
    spans = {}
    for e in events:
        if e.get("event") == "start":
            spans.setdefault(e["trial_id"], [e["time"], None])
        elif e.get("event") == "end":
            spans[e["trial_id"]][1] = e["time"]
    overlap = max(sum(1 for s, t in spans.values() if s <= start < t) for start, _ in spans.values())
    assert overlap == 4


@pytest.mark.slow
def test_two_node_cluster_places_trials_on_both_nodes_into_one_store(tmp_path, fresh_ray):
    from ray.cluster_utils import Cluster

    from experiments.sweep.run import run_sweep

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={"node2": 1})
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        node2 = next(n["NodeID"] for n in ray.nodes() if n["Resources"].get("node2"))
        spec = tiny_sweep(tmp_path / "out", widths=(0.5, 1.0, 1.5, 2.0), epochs=2, steps=6)
        summary = run_sweep(spec, quiet=True)
        assert summary.counts == {"done": 4}
        trials, _ = load_results(tmp_path / "out")
        assert trials.node.nunique() == 2 and node2 in set(trials.node)
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_a_trial_whose_node_is_lost_continues_from_its_checkpoint_on_the_remaining_node(tmp_path, fresh_ray):
    """A head and a worker, one trial slot each (the custom resource "trainer"). The worker is
    removed while its trial is mid-way: Tune retries that trial (retries: 2) on the head from the
    checkpoint in the shared storage_path; every trial ends done, once."""
    import threading

    from ray.cluster_utils import Cluster

    from experiments.sweep.run import run_sweep

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"trainer": 1},
                                                            "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, resources={"trainer": 1})
    head_id = cluster.head_node.node_id
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        out = tmp_path / "out"
        spec = tiny_sweep(out, widths=(0.5, 1.0, 1.5), epochs=12, steps=24, retries=2,  # time to lose the node
                          storage_path=str(tmp_path / "shared"),
                          resources={"cpus": 1, "gpus": 0, "custom": {"trainer": 1}},
                          trial={"max_steps_per_epoch": 24, "checkpoint_every": 1})
        result = {}
        sweep = threading.Thread(target=lambda: result.update(summary=run_sweep(spec, quiet=True)), daemon=True)
        sweep.start()
        deadline, victim = time.time() + 300, None
        while victim is None and time.time() < deadline:
            on_worker = [e for e in read_events(out) if e.get("event") == "epoch" and e.get("node") == worker.node_id]
            victim = next((e["trial_id"] for e in on_worker if 2 <= e["epoch"] <= 3), None)
            assert sweep.is_alive(), "the sweep ended before the node could be removed"
            time.sleep(0.5)
        assert victim, "no trial reached its second epoch on the worker"
        cluster.remove_node(worker, allow_graceful=False)
        lost_at = len(read_events(out))
        sweep.join(600)
        assert not sweep.is_alive() and result["summary"].counts == {"done": 3}
    finally:
        ray.shutdown()
        cluster.shutdown()
    trials, epochs = load_results(out)
    assert (trials.epochs_done == 12).all() and epochs.groupby(["trial_id", "epoch"]).size().max() == 1
    events = read_events(out)
    # the retry begins at the interruption Tune reports (the lost node's worker may report an epoch
    # or two after remove_node returns)
    lost = [i for i, e in enumerate(events) if e.get("event") == "interrupted" and e.get("trial_id") == victim]
    assert lost and lost[0] >= lost_at
    before = [e for e in events[:lost[0]] if e.get("event") == "epoch" and e["trial_id"] == victim]
    after = [e for e in events[lost[0]:] if e.get("event") == "epoch" and e["trial_id"] == victim]
    # from its last checkpoint, not from the start: checkpoints are written in the background and
    # reach Tune with the next epoch's report, so the last one is that of the last or the one before
    assert after[0]["epoch"] > 1 and before[-1]["epoch"] <= after[0]["epoch"] <= before[-1]["epoch"] + 1
    assert {e["node"] for e in after} == {head_id}
    print(f"\nlost worker node: {int((trials.status == 'done').sum())}/{len(trials)} trials done; trial {victim} "
          f"reached epoch {before[-1]['epoch']} on the worker, its first epoch after the loss: {after[0]['epoch']} "
          f"(on the head); duplicate rows: {int(epochs.duplicated(['trial_id', 'epoch']).sum())}")


def test_replayed_epochs_are_journaled_only_where_the_journal_lacks_them(tmp_path):
    from types import SimpleNamespace

    from experiments.results.store import Journal
    from experiments.sweep.callbacks import StoreCallback

    Journal(tmp_path).append({"event": "sweep", "already_ended": []})
    for epoch in (1, 2):
        Journal(tmp_path).append({"event": "epoch", "trial_id": "t", "epoch": epoch})
    cb = StoreCallback(str(tmp_path), {"t": 5})
    cb.setup()
    trial = SimpleNamespace(config={"trial": {"trial_id": "t"}})
    for epoch in (1, 2, 3):  # a retried trial replays its checkpoint's epochs 1-3
        cb.on_trial_result(0, [], trial, {"epoch": epoch, "replayed": True})
    cb.on_trial_result(0, [], trial, {"epoch": 4, "val_top1": 50.0})
    epochs = [e["epoch"] for e in read_events(tmp_path) if e.get("event") == "epoch"]
    assert epochs == [1, 2, 3, 4]


def test_a_rerun_resumes_from_the_newest_checkpoint_on_disk(tmp_path):
    import torch

    from experiments.sweep.resources import Launch
    from experiments.sweep.trainable import persisted_state

    trial_dir = tmp_path / "exp" / "t"
    for epoch in (3, 4):
        (trial_dir / f"checkpoint_00000{epoch}").mkdir(parents=True)
        torch.save({"epoch": epoch}, trial_dir / f"checkpoint_00000{epoch}" / "state.pt")
    (trial_dir / "checkpoint_000005").mkdir()
    (trial_dir / "checkpoint_000005" / "state.pt").write_bytes(b"torn by a kill")
    launch = Launch(storage_path=str(tmp_path / "exp" / "runs"))
    assert persisted_state(launch, "t")["epoch"] == 4  # the torn newest is passed over
    assert persisted_state(Launch(storage_path="s3://bucket/exp/runs"), "t") is None
    assert persisted_state(launch, "other") is None and persisted_state(None, "t") is None


def test_progress_line_counts_down_the_work_left(monkeypatch):
    from types import SimpleNamespace

    from experiments.sweep.callbacks import ProgressCallback

    cb = ProgressCallback(total=5, concurrency=2)
    monkeypatch.setenv("ARCHSCALE_QUIET", "1")
    cb.setup()
    now = 1000.0
    monkeypatch.setattr("experiments.sweep.callbacks.time.time", lambda: now)
    trials = [SimpleNamespace(trial_id=i, status=s) for i, s in enumerate(["TERMINATED", "ERROR", "RUNNING"])]
    cb.durations, cb.starts = [10.0], {2: now - 4.0}
    # 2 pending x 10 s + the running trial's 6 s left, over 2 slots: 13 s
    assert cb.line(trials).endswith("2/5 finished (1 failed), 1 running, 2 pending | ETA 0:13")
    now += 20.0  # the running trial outlives the mean: its share is 0, not negative
    assert cb.line(trials).endswith("ETA 0:10")


def test_dashboard_is_refused_up_front_without_its_packages_or_on_a_cluster(tmp_path, monkeypatch, capsys):
    from experiments.cli import main
    from experiments.sweep.ray_runtime import check_dashboard

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out")))
    monkeypatch.setitem(sys.modules, "ray.dashboard.optional_deps", None)  # as without ray[default]
    assert main(["sweep", str(spec), "--dashboard"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archscale sweep: error: dashboard: Ray's dashboard needs the packages of ray[default]")
    assert err.rstrip().endswith("pip install 'ray[default]'") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything was written or started
    with pytest.raises(Exception, match="^dashboard: a cluster's dashboard runs on its head node"):
        check_dashboard("10.0.0.1:6379")


@pytest.mark.slow
def test_a_loaders_data_set_is_built_once_for_the_whole_sweep_and_kept_by_reused_workers(tmp_path, fresh_ray,
                                                                                          monkeypatch):
    from experiments.sweep.run import run_sweep

    here = str(Path(__file__).parent)
    monkeypatch.syspath_prepend(here)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    log = tmp_path / "loader_calls"
    spec = tiny_sweep(tmp_path / "out", depths=(8, 14), seeds=(0, 1),
                      dataset={"loader": "sweep_helpers:counted_loader", "options": {"log": str(log)}})
    summary = run_sweep(spec, quiet=True, num_cpus=2)
    assert summary.counts == {"done": 4}
    assert log.read_text().splitlines() == [str(os.getpid())]  # once, by the driver: not per trial
    trials, _ = load_results(tmp_path / "out")
    reused = trials[~trials.new_worker.astype(bool)]
    assert len(reused) >= 1 and (reused.phase_data_s < trials[trials.new_worker.astype(bool)].phase_data_s.max()).all()


@pytest.mark.slow
def test_a_sweep_names_a_truncated_image_in_one_line_and_skip_trains_without_it(tmp_path, fresh_ray, caplog):
    """The first trial to meet the image stops the sweep with its one line (the others share the
    data, so would fail on it too); once the image is fixed, the rerun trains the failed trial
    and the one that had not run."""
    import logging

    from test_folder import write_folder

    from experiments.sweep.run import run_sweep
    from scaling import ArchScaleError

    data = tmp_path / "data"
    write_folder(data, n=16, size=(24, 24))
    bad = data / "train" / "cat" / "3.jpg"
    good = bad.read_bytes()
    bad.write_bytes(good[:300])  # starts like a JPEG: planning passes it, decoding fails
    dataset = {"name": "imagefolder", "root": str(data), "workers": 0}
    spec = tiny_sweep(tmp_path / "out", dataset=dataset, epochs=1, steps=100, widths=(0.5, 0.75, 1.0))
    with caplog.at_level(logging.ERROR), pytest.raises(ArchScaleError) as e:
        run_sweep(spec, quiet=True, num_cpus=2)  # two trials at a time: the other one is stopped, or fails too
    assert str(e.value).startswith(f"dataset.root: cannot read image {bad} (OSError: Truncated")
    assert "\n" not in str(e.value) and "rerun it once fixed" in str(e.value)
    for noise in ("Traceback", "Trials did not complete", "Unhandled error"):
        assert noise not in caplog.text
    trials, _ = load_results(tmp_path / "out")
    assert "pending" in set(trials.status) and set(trials.status) <= {"error", "interrupted", "pending"}
    bad.write_bytes(good)
    summary = run_sweep(spec, quiet=True, num_cpus=2)
    assert summary.counts == {"done": 3}
    bad.write_bytes(good[:300])
    summary = run_sweep(tiny_sweep(tmp_path / "skip", dataset={**dataset, "on_bad_file": "skip"}, epochs=1,
                                   steps=100), quiet=True, num_cpus=2)
    trials, epochs = load_results(tmp_path / "skip")
    assert summary.counts == {"done": 1} and trials.bad_files_skipped.tolist() == [1]
    assert trials.decode.tolist() == ["workers"] and epochs.decode.tolist() == ["workers"]


def test_tunes_traceback_is_left_out_for_user_errors_only():
    import logging

    from experiments.sweep.run import _NoUserErrorTracebacks
    from scaling import ArchScaleError

    keep = _NoUserErrorTracebacks()

    def record(error):
        return logging.LogRecord("ray.tune", logging.ERROR, "", 0, "Trial task failed", None,
                                 (type(error), error, None) if error else None)

    wrapped = RuntimeError(f"ray::ImplicitFunc.train() ... {ArchScaleError('dataset.root', 'cannot read image x')!r}")
    assert not keep.filter(record(wrapped)) and keep.filter(record(RuntimeError("CUDA out of memory")))
    assert keep.filter(record(None))
    closing = logging.LogRecord("ray.tune.tune", logging.ERROR, "", 0, "Trials did not complete: %s", (["t"],), None)
    assert not keep.filter(closing)  # the sweep's summary or its user error's line says it

    def unhandled(error):
        text = f"Unhandled error (suppress with 'RAY_IGNORE_UNHANDLED_ERRORS=1'): {error}"
        return logging.LogRecord("ray._private.worker", logging.ERROR, "", 0, text, None, None)

    assert not keep.filter(unhandled(wrapped)) and keep.filter(unhandled(RuntimeError("CUDA out of memory")))
