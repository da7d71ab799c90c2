"""Checkpoints written in the background (experiments.train.checkpoints): training goes on while
the state is written, what is written is the state of the epoch that started it, and a run that
ends or fails leaves its last checkpoint on disk."""
import threading
import time
from pathlib import Path

import pytest
import torch

from experiments.train import checkpoints
from experiments.train.checkpoints import CheckpointWriter, host_copy
from experiments.train.phases import PhaseClock
from experiments.train.trial import load_checkpoint, train_trial
from test_trainer import config, strip

SLOW = 0.4  # seconds each write takes in these tests


@pytest.fixture
def slow_disk(monkeypatch):
    """Every checkpoint write takes SLOW seconds more; returns when each write began and ended
    (perf_counter) and on which thread."""
    writes = []
    save = checkpoints.save_state

    def slow_save(state, path):
        began = time.perf_counter()
        time.sleep(SLOW)
        save(state, path)
        writes.append((began, time.perf_counter(), threading.current_thread().name))

    monkeypatch.setattr(checkpoints, "save_state", slow_save)
    return writes


def test_training_goes_on_while_a_checkpoint_is_written(slow_disk, tmp_path):
    clock, epochs_ended = PhaseClock(), []
    train_trial(config(regime={"name": "rs-10", "epochs": 3}, checkpoint_interval_s=0), checkpoint_dir=tmp_path,
                phases=clock, on_epoch=lambda history: epochs_ended.append(time.perf_counter()))
    assert len(slow_disk) == 3 and all(name.startswith("archscale-checkpoint") for *_, name in slow_disk)
    # epoch 2 started training (right after epoch 1's on_epoch) while epoch 1's checkpoint was written
    assert epochs_ended[0] < slow_disk[0][1] - SLOW / 2
    # the trial waited less than the writes took: it waited only where a checkpoint was due while
    # the one before was still being written, and at its end for the last
    assert clock.seconds["checkpoint"] < sum(ended - began for began, ended, _ in slow_disk)
    assert load_checkpoint(tmp_path)["epoch"] == 3


def test_a_checkpoint_holds_its_epochs_state_though_training_went_on(slow_disk, tmp_path):
    """The weights go on changing while the write sleeps; the resumed run still matches one that
    never stopped, so the written state is the copy taken at the end of its epoch."""
    full = train_trial(config(regime={"name": "rs-10", "epochs": 4}))

    class Crash(Exception):
        pass

    def crash_after_three(metrics, ckpt):
        if metrics["epoch"] == 3:
            raise Crash()

    with pytest.raises(Crash):
        train_trial(config(regime={"name": "rs-10", "epochs": 4}, checkpoint_every=2), report=crash_after_three,
                    checkpoint_dir=tmp_path)
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 2 and [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    resumed = train_trial(config(regime={"name": "rs-10", "epochs": 4}), checkpoint_dir=tmp_path, resume=tmp_path)
    assert strip(resumed) == strip(full)


def test_a_failed_run_waits_for_its_write_in_flight(slow_disk, tmp_path):
    class Crash(Exception):
        pass

    def crash(metrics, ckpt):
        raise Crash()

    with pytest.raises(Crash):  # the report of epoch 1 fails while epoch 1's checkpoint is written
        train_trial(config(checkpoint_interval_s=0), report=crash, checkpoint_dir=tmp_path)
    assert load_checkpoint(tmp_path)["epoch"] == 1


def test_a_sweeps_temporary_checkpoints_are_all_removed(slow_disk, monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoints.tempfile, "tempdir", str(tmp_path))
    reported = []

    def report(m, ckpt):
        if ckpt:
            reported.append((Path(ckpt), load_checkpoint(ckpt)["epoch"]))

    train_trial(config(regime={"name": "rs-10", "epochs": 5}, checkpoint_interval_s=0), report=report)
    assert [epoch for _, epoch in reported] == [1, 2, 3]
    assert not any(tmp_path.iterdir())  # taken ones by the trial once reported, none left behind


def test_a_write_that_fails_fails_the_run(monkeypatch, tmp_path):
    def full_disk(state, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_state", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train_trial(config(checkpoint_interval_s=0), checkpoint_dir=tmp_path)
    assert not (tmp_path / "state.pt").exists() and not list(tmp_path.glob(".state.pt.*"))


def test_a_failed_write_does_not_hide_the_runs_own_error(monkeypatch, tmp_path):
    def full_disk(state, path):
        raise OSError(28, "No space left on device")

    class Crash(Exception):
        pass

    def crash(metrics, ckpt):
        raise Crash()

    monkeypatch.setattr(checkpoints, "save_state", full_disk)
    with pytest.raises(Crash):
        train_trial(config(checkpoint_interval_s=0), report=crash, checkpoint_dir=tmp_path)


def test_host_copy_is_detached_from_the_live_tensors():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "history": [{"epoch": 1}], "pair": (1, 2)}
    copy = host_copy(state)
    before = copy["model"]["weight"].clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    opt.state[model.weight]["momentum_buffer"].add_(1.0)
    assert torch.equal(copy["model"]["weight"], before)
    assert not torch.equal(copy["optimizer"]["state"][0]["momentum_buffer"],
                           opt.state[model.weight]["momentum_buffer"])
    assert copy["history"] == [{"epoch": 1}] and copy["history"] is not state["history"] and copy["pair"] == (1, 2)


def test_take_gives_each_checkpoint_once_and_close_removes_an_untaken_one(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints.tempfile, "tempdir", str(tmp_path))
    writer = CheckpointWriter()
    assert writer.take() is None
    writer.start({"epoch": 1, "w": torch.ones(2)})
    folder = writer.take()
    assert load_checkpoint(folder)["epoch"] == 1 and writer.take() is None
    writer.start({"epoch": 2})
    writer.close()
    assert [p for p in tmp_path.iterdir()] == [Path(folder)]  # only the taken one, which its taker removes
