"""experiments/sweep/data_parallel.py: trials on two gloo workers through Ray Train, alone and in sweeps.

The Ray tests are slow (each starts Ray and Ray Train's workers); run this file alone. Waits
poll the journal.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sweep_helpers import TINY_BASE, tiny_sweep

from experiments.results.store import load_results, read_events

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]

#: One trial on data without random augmentation (synthetic: no crops, no flips), no dropout,
#: stochastic depth or RandAugment (rs-10 regularises nothing), batch 32 (16 per worker).
TRIAL = {"spec": dict(TINY_BASE), "regime": {"name": "rs-10", "epochs": 3, "batch_size": 32},
         "dataset": {"name": "synthetic", "train_size": 512, "val_size": 96}, "max_steps_per_epoch": 3,
         "cpus": 1, "checkpoint_interval_s": 0}  # a checkpoint every epoch
#: With sync_bn the workers' updates are the one worker's up to float rounding (the order of the
#: sums in the all-reduces): a tight tolerance. Without, each worker normalises with the statistics
#: of its 16 images instead of all 32, which moves the loss by about 1e-3 here.
SYNC_BN_RTOL, PER_WORKER_BN_RTOL = 1e-5, 3e-2


@pytest.fixture(scope="module")
def local_ray():
    from experiments.sweep.ray_runtime import init_ray

    if ray.is_initialized():
        ray.shutdown()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])  # Ray's workers
    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_a_resume_takes_the_newest_checkpoint_and_reports_the_epochs_the_journal_lacks(tmp_path):
    import torch

    from experiments.sweep.data_parallel import newest_state, train_run_checkpoint, unjournaled

    history = [{"epoch": e, "val_top1": 10.0 * e, "spec": {"depth": 8}} for e in (1, 2, 3)]
    for name, epoch in (("old", 1), ("new", 3)):
        (tmp_path / name).mkdir()
        torch.save({"epoch": epoch, "history": history[:epoch]}, tmp_path / name / "state.pt")
    state = newest_state(None, str(tmp_path / "new"), tmp_path / "old")
    assert state["epoch"] == 3 and newest_state(None, None) is None
    assert unjournaled(state, 1) == [{"epoch": 2, "val_top1": 20.0, "replayed": True},
                                     {"epoch": 3, "val_top1": 30.0, "replayed": True}]
    assert unjournaled(state, 3) == [] and unjournaled(None, 0) == []
    assert train_run_checkpoint(None) is None and train_run_checkpoint(str(tmp_path / "no_such_run")) is None


def _losses(result):
    return [(h["train_loss"], h["val_loss"]) for h in result["history"]]


@pytest.mark.slow
def test_two_workers_train_as_one_at_the_same_global_batch_and_resume_on_one(local_ray, tmp_path):
    from experiments.sweep.data_parallel import train_data_parallel
    from experiments.sweep.resources import Launch
    from experiments.train.trial import train_trial

    two_workers = Launch(workers=2, cpus=1)
    one = train_trial({**TRIAL, "sync_bn": True})
    synced = train_data_parallel({**TRIAL, "sync_bn": True}, two_workers)
    assert synced["workers"] == 2 and synced["devices"] == 2 and synced["batch_size"] == 32
    for (a, va), (b, vb) in zip(_losses(one), _losses(synced)):
        assert b == pytest.approx(a, rel=SYNC_BN_RTOL) and vb == pytest.approx(va, rel=SYNC_BN_RTOL)

    per_worker = train_data_parallel(TRIAL, two_workers)
    for (a, va), (b, vb) in zip(_losses(one), _losses(per_worker)):
        assert b == pytest.approx(a, rel=PER_WORKER_BN_RTOL) and vb == pytest.approx(va, rel=PER_WORKER_BN_RTOL)

    # two workers stop after epoch 2 (a failure), one worker resumes the checkpoint rank 0 wrote
    with pytest.raises(Exception, match="injected failure at epoch 3"):
        train_data_parallel({**TRIAL, "sync_bn": True, "fail_at_epoch": 3}, two_workers, checkpoint_dir=tmp_path)
    resumed = train_trial({**TRIAL, "sync_bn": True}, resume=tmp_path)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for (a, va), (b, vb) in zip(_losses(one), _losses(resumed)):
        assert b == pytest.approx(a, rel=SYNC_BN_RTOL) and vb == pytest.approx(va, rel=SYNC_BN_RTOL)


@pytest.mark.slow
def test_a_sweep_of_two_worker_trials_fills_the_store(local_ray, tmp_path):
    from experiments.sweep.run import run_sweep

    spec = tiny_sweep(tmp_path / "out", widths=(0.5, 1.0, 2.0), steps=3, resources={"workers": 2, "cpus": 1, "gpus": 0},
                      trial_overrides={"*-w2-*": {"fail_at_epoch": 2}})
    summary = run_sweep(spec, quiet=True)
    assert summary.counts == {"done": 2, "error": 1}
    trials, epochs = load_results(tmp_path / "out")
    failed = trials[trials.status == "error"].iloc[0]
    assert "injected failure at epoch 2" in failed["error"]
    done = trials[trials.status == "done"]
    assert (done.epochs_done == 2).all() and (done.workers == 2).all() and (done.devices == 2).all()
    assert (done.device_seconds == 2 * done.train_time_s).all() and (done.observed_images_per_s > 0).all()
    assert len(epochs) == 2 * 2 + 1 and (epochs.workers == 2).all() and epochs.node.notna().all()
    runs = tmp_path / "out" / "ray" / "tiny" / "data_parallel"
    assert sorted(p.name for p in runs.iterdir()) == sorted(trials.trial_id)  # Ray Train's runs, named by trial


@pytest.mark.slow
def test_sigkill_of_the_driver_then_rerun_resumes_the_two_worker_trial(tmp_path):
    out = tmp_path / "out"
    spec = tiny_sweep(out, widths=(0.5, 1.0, 1.5), epochs=4, steps=12, resources={"workers": 2, "cpus": 1, "gpus": 0},
                      trial={"max_steps_per_epoch": 12, "checkpoint_every": 1})
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(f), "--quiet", "--num-cpus", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, interrupted = time.time() + 900, None
    while time.time() < deadline and interrupted is None:
        events = read_events(out)
        ended = {e["trial_id"] for e in events if e.get("event") == "end"}
        for e in events:  # a trial past its second epoch, while another has ended
            if e.get("event") == "epoch" and e["trial_id"] not in ended and e["epoch"] == 2 and ended:
                interrupted = e["trial_id"]
        assert driver.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.5)
    assert interrupted, "no trial reached its second epoch in time"
    time.sleep(1.0)  # let Ray Train write its run's snapshot of that checkpoint
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = read_events(out)
    ended_before = {e["trial_id"] for e in before if e.get("event") == "end"}
    assert ended_before and interrupted not in ended_before

    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    trials, epochs = load_results(out)
    assert (trials.status == "done").all() and (trials.epochs_done == 4).all() and (trials.workers == 2).all()
    assert epochs.groupby(["trial_id", "epoch"]).size().max() == 1  # no duplicate rows
    after = read_events(out)[len(before):]
    for tid in ended_before:  # finished trials were not re-run
        assert not [e for e in after if e.get("trial_id") == tid and e["event"] in ("start", "epoch", "end")]
    resumed_at = [e["epoch"] for e in after if e.get("event") == "epoch" and e["trial_id"] == interrupted]
    assert resumed_at and resumed_at[0] > 1, resumed_at  # from its checkpoint, not from scratch


@pytest.mark.slow
def test_archscale_train_on_two_workers_prints_rank_zeros_epochs_and_one_worker_reads_its_checkpoint(
        local_ray, tmp_path, capsys):
    import json

    from experiments.cli import main

    args = ["train", "--block", "basic", "--depth", "8", "--widths", "8,16,32", "--stem", "cifar", "--stem-width", "8",
            "--resolution", "12", "--epochs", "2", "--max-steps-per-epoch", "2", "--checkpoint-dir", str(tmp_path)]
    assert main(args + ["--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "x 2 workers" in out
    assert (tmp_path / "state.pt").is_file()  # rank 0's
    top1 = float(out.split("done: final top-1 ")[1].split("%")[0])
    assert main(args + ["--resume", "--json"]) == 0  # one worker: nothing left to train
    result = json.loads(capsys.readouterr().out)
    assert result["epochs_done"] == 2 and round(result["final_top1"], 2) == top1
