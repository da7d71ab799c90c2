import json
import math
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.results.schema import PhaseTimes
from experiments.train.trial import TrialConfig, load_checkpoint, train_trial
from scaling import ArchSpec

TINY = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, num_classes=10,
                resolution=16)


def config(**kw):
    base = {"spec": TINY.to_dict(), "regime": {"name": "rs-10", "epochs": 3}, "dataset": "digits", "seed": 0,
            "max_steps_per_epoch": 6}
    base.update(kw)
    return base


TIMINGS = ("train_time_s", "observed_images_per_s", "epoch_time_s", "time_s", "compile_time_s", "peak_memory_bytes",
           "first_step_at", "reported_at", "cpu_time_s", *PhaseTimes.field_names())


def strip(result):
    """A trial's metrics without wall-clock measurements (those differ between identical runs)."""
    out = {k: v for k, v in result.items() if k not in TIMINGS + ("history",)}
    out["history"] = [{k: v for k, v in h.items() if k not in TIMINGS} for h in result["history"]]
    return out


def test_same_seed_gives_identical_metrics_on_cpu():
    a, b = train_trial(config()), train_trial(config())
    assert strip(a) == strip(b)
    c = train_trial(config(seed=1))
    assert strip(c)["history"] != strip(a)["history"]


def test_report_is_called_every_epoch_with_checkpoints(tmp_path):
    calls = []

    def report(m, ckpt):  # the checkpoint exists while the reporter runs (Tune copies it then)
        calls.append((m, ckpt, load_checkpoint(ckpt)["epoch"] if ckpt is not None else None))

    result = train_trial(config(regime={"name": "rs-10", "epochs": 4}, checkpoint_interval_s=0), report=report)
    assert [m["epoch"] for m, _, _ in calls] == [1, 2, 3, 4]
    # written in the background while the next epoch trains, a checkpoint comes with the next
    # epoch's report; nothing resumes a finished trial, so none starts in the last two epochs
    assert [saved for _, _, saved in calls] == [None, 1, 2, None]
    for m, ckpt, _ in calls[1:3]:
        assert {"train_loss", "val_loss", "val_top1", "val_top5", "lr", "observed_images_per_s", "epoch_time_s"} <= set(m)
        assert not Path(ckpt).exists()  # temporary: removed once reported
    assert result["status"] == "done" and result["epochs_done"] == 4
    assert {"best_top1", "final_top1", "train_time_s", "peak_memory_bytes", "device", "params", "flops"} <= set(result)
    # a trial times no inference (a network's cost is measured apart, alone on the device)
    assert calls[-1][0]["status"] == "done" and not {"latency_ms", "throughput"} & set(result)
    assert all(m["images_per_epoch"] == 6 * m["batch_size"] for m, _, _ in calls)
    assert all(m["workers"] == 1 and m["devices"] == 1 for m, _, _ in calls) and result["workers"] == 1


def _checkpointed_epochs(monkeypatch, epoch_s: float, checkpoint_dir=None, **kw) -> list[int]:
    """The epochs that end with a checkpoint when each epoch takes ``epoch_s`` on the trainer's clock."""
    from experiments.train import trial as trainer

    now = [0.0]
    monkeypatch.setattr(trainer, "_clock", lambda: now[0])
    saved = []

    def report(m, ckpt):
        now[0] += epoch_s
        if ckpt is not None:  # the epoch it holds (a background write reaches the next epoch's report)
            saved.append(load_checkpoint(ckpt)["epoch"])

    # the clock moves in the report, after the epoch's checkpoint decision: the decision at epoch
    # n sees (n - 1) * epoch_s
    train_trial(config(regime={"name": "rs-10", "epochs": 7}, max_steps_per_epoch=1, **kw),
                report=report, checkpoint_dir=checkpoint_dir)
    return saved


def test_checkpoints_go_by_time_and_a_sweeps_trial_starts_none_in_its_last_two_epochs(monkeypatch, tmp_path):
    # 25 s epochs, at most one checkpoint a minute: the clock reads 0, 25, 50, 75 (save), 100, 125,
    # 150 at the ends of epochs 1-7. A checkpoint reaches the reporter with the next epoch's report,
    # so a sweep's trial (a reporter, no checkpoint_dir) starts none in its last two epochs: nothing
    # resumes a finished trial. A standalone run keeps its final weights, reported with its last epoch.
    assert _checkpointed_epochs(monkeypatch, 25.0) == [4]
    assert _checkpointed_epochs(monkeypatch, 25.0, checkpoint_interval_s=30) == [3, 5]
    assert _checkpointed_epochs(monkeypatch, 25.0, checkpoint_interval_s=0) == [1, 2, 3, 4, 5]
    assert _checkpointed_epochs(monkeypatch, 0.5) == []  # fast epochs: nothing to resume from
    assert _checkpointed_epochs(monkeypatch, 25.0, checkpoint_dir=tmp_path / "c") == [4, 7]
    assert _checkpointed_epochs(monkeypatch, 0.5, checkpoint_dir=tmp_path / "d") == [7]


def test_checkpoint_every_replaces_the_time_rule(monkeypatch, tmp_path):
    assert _checkpointed_epochs(monkeypatch, 25.0, checkpoint_every=3) == [3]  # 6 is second to last
    # the folder holds epoch 6's checkpoint until epoch 7's replaces it, reported with the last epoch
    assert _checkpointed_epochs(monkeypatch, 25.0, checkpoint_every=3, checkpoint_dir=tmp_path) == [3, 7]
    assert _checkpointed_epochs(monkeypatch, 0.5, checkpoint_every=1) == [1, 2, 3, 4, 5]
    assert _checkpointed_epochs(monkeypatch, 100.0, checkpoint_every=0) == []


def test_checkpoint_interval_is_validated(capsys):
    from scaling import ArchScaleError

    with pytest.raises(ArchScaleError, match=r"^trial\.checkpoint_interval_s: "):
        TrialConfig.from_dict(config(checkpoint_interval_s=-1))
    assert TrialConfig.from_dict(config()).checkpoint_interval_s == 60.0
    assert main(["train", "--preset", "resnet18", "--resolution", "32", "--checkpoint-interval-s", "-5"]) == 2
    assert "trial.checkpoint_interval_s" in capsys.readouterr().err


def test_cudnn_autotuning_is_on_for_the_trial_and_restored_after(monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    seen = []
    train_trial(config(regime={"name": "rs-10", "epochs": 1}),
                report=lambda m, c: seen.append(torch.backends.cudnn.benchmark))
    assert seen == [True] and torch.backends.cudnn.benchmark is False
    with pytest.raises(RuntimeError, match="injected failure"):
        train_trial(config(fail_at_epoch=1))
    assert torch.backends.cudnn.benchmark is False


def test_peak_memory_leaves_out_the_resident_data_set_as_measure_does():
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("peak RSS is read from /proc")
    # a fresh process (freed memory of other tests would hide growth); 302 MB of uint8 images, a
    # tiny network at batch 8: the data set alone is far above the training step's peak (on CPU the
    # resident-set growth also holds library code paged in on first use, tens of MB)
    code = ("from experiments.train.trial import train_trial; from tests.test_trainer import TINY; "
            "r = train_trial({'spec': TINY.replace(resolution=64).to_dict(), 'regime': {'name': 'rs-10', 'epochs': 1, "
            "'batch_size': 8}, 'dataset': {'name': 'synthetic', 'train_size': 24576, 'val_size': 8, "
            "'num_classes': 10}, 'max_steps_per_epoch': 2}); "
            "print(r['peak_memory_bytes'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    data_bytes = 24576 * 3 * 64 * 64
    peak = int(out.split()[-1])
    assert 0 < peak < data_bytes / 2


def _compiled_trials(monkeypatch, widths: list[int], **kw) -> list[bool]:
    """Train one tiny network per last-stage width in this process, compiled (dynamo with the eager
    backend, the evaluation model too); for each, whether every frame dynamo met was compiled."""
    from torch._dynamo.utils import counters

    from experiments.train import loop as training

    monkeypatch.setenv("ARCHSCALE_COMPILE_BACKEND", "eager")
    monkeypatch.setattr(training, "EVAL_COMPILE_MIN_IMAGES", 0)
    ok = []
    for w in widths:
        counters.clear()
        train_trial(config(spec=TINY.replace(widths=(8, 16, w)).to_dict(), regime={"name": "rs-10", "epochs": 1},
                           compile=True, max_steps_per_epoch=2, **kw))
        frames = counters["frames"]
        ok.append(frames["ok"] >= 2 and frames["ok"] == frames["total"])  # training and evaluation
    return ok


def test_every_trial_in_one_process_runs_compiled(monkeypatch):
    # a reused Ray actor trains trial after trial; each trial uses 2 of dynamo's entries for the
    # network's forward (training, evaluation), so with the limit at 2 a second architecture in
    # the same process would run uncompiled unless each trial starts afresh
    import torch._dynamo

    with torch._dynamo.config.patch(recompile_limit=2):
        assert _compiled_trials(monkeypatch, [32, 40, 48]) == [True, True, True]


def test_the_next_seed_of_a_network_reuses_its_compiled_graphs(monkeypatch):
    # a sweep runs a network's seeds back to back on a warm worker: the second compiles nothing,
    # and another network after it compiles afresh
    from torch._dynamo.utils import counters

    from experiments.train.loop import fresh_compiler

    monkeypatch.setenv("ARCHSCALE_COMPILE_BACKEND", "eager")
    fresh_compiler()  # whatever an earlier test compiled in this process
    compiled = []
    for seed, width in ((0, 32), (1, 32), (0, 40)):
        counters.clear()
        train_trial(config(spec=TINY.replace(widths=(8, 16, width)).to_dict(), regime={"name": "rs-10", "epochs": 1},
                           seed=seed, compile=True, max_steps_per_epoch=2))
        compiled.append(counters["frames"]["total"])
    assert compiled[0] >= 1 and compiled[1] == 0 and compiled[2] >= 1


@pytest.mark.slow
def test_nine_architectures_in_one_process_all_run_compiled(monkeypatch):
    # dynamo's own limit (8 entries per code object): the 9th network used to run uncompiled
    assert _compiled_trials(monkeypatch, [8 * i for i in range(2, 11)]) == [True] * 9


def test_compile_time_is_reported_apart_from_observed_images_per_s(monkeypatch):
    monkeypatch.setenv("ARCHSCALE_COMPILE_BACKEND", "eager")
    r = train_trial(config(compile=True, max_steps_per_epoch=3))
    first, *rest = r["history"]
    assert first["compile_time_s"] > 0 and [h["compile_time_s"] for h in rest] == [0.0, 0.0]
    assert r["compile_time_s"] == first["compile_time_s"]
    # epoch 1's images/s counts the steps after the compiling one; its epoch time holds all three
    batch = r["batch_size"]
    assert first["observed_images_per_s"] == pytest.approx(2 * batch / (first["epoch_time_s"] - first["compile_time_s"]))
    assert rest[0]["observed_images_per_s"] == pytest.approx(3 * batch / rest[0]["epoch_time_s"])
    assert r["train_time_s"] == pytest.approx(sum(h["epoch_time_s"] for h in r["history"]))
    assert train_trial(config())["compile_time_s"] == 0.0


def test_compiled_evaluation_gives_the_metrics_of_eager_evaluation(monkeypatch):
    from experiments.train import loop as training

    monkeypatch.setenv("ARCHSCALE_COMPILE_BACKEND", "eager")
    calls = []
    evaluate = training.evaluate

    def spy(model, *a, **kw):
        calls.append((type(model).__name__, kw.get("fixed_shape")))
        return evaluate(model, *a, **kw)

    monkeypatch.setattr("experiments.train.trial.evaluate", spy)
    plain = train_trial(config(regime={"name": "rs-10", "epochs": 1}, compile=True))
    monkeypatch.setattr(training, "EVAL_COMPILE_MIN_IMAGES", 0)
    compiled = train_trial(config(regime={"name": "rs-10", "epochs": 1}, compile=True))
    assert calls == [("ResNet", False), ("OptimizedModule", True)]  # digits: 360 validation images, 2 batches
    for key in ("val_top1", "val_top5"):
        assert compiled["history"][0][key] == plain["history"][0][key]
    assert compiled["final_val_loss"] == pytest.approx(plain["final_val_loss"], rel=1e-5)


def test_injected_failure_raises():
    with pytest.raises(RuntimeError, match="injected failure at epoch 2"):
        train_trial(config(fail_at_epoch=2))


def test_checkpoint_resume_gives_the_same_final_metrics(tmp_path):
    full = train_trial(config(regime={"name": "rs-10", "epochs": 4}))

    class Crash(Exception):
        pass

    def crash_after_two(metrics, ckpt):
        if metrics["epoch"] == 2:
            raise Crash()

    ckdir = tmp_path / "ck"
    with pytest.raises(Crash):
        train_trial(config(regime={"name": "rs-10", "epochs": 4}, checkpoint_every=1), report=crash_after_two,
                    checkpoint_dir=ckdir)
    state = load_checkpoint(ckdir)  # torch.load(weights_only=True)
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "ema", "rng"} <= set(state)
    assert [p.name for p in ckdir.iterdir()] == ["state.pt"]  # atomic: no temp files left
    resumed = train_trial(config(regime={"name": "rs-10", "epochs": 4}), checkpoint_dir=ckdir, resume=ckdir)
    assert strip(resumed) == strip(full)


def test_nan_loss_stops_the_trial_as_diverged():
    calls = []
    result = train_trial(config(regime={"name": "rs-10", "epochs": 3, "lr_per_256": 1e12, "warmup_epochs": 0},
                                max_steps_per_epoch=None), report=lambda m, c: calls.append(m))
    assert result["status"] == "diverged"
    assert calls and calls[-1]["status"] == "diverged" and not math.isfinite(calls[-1]["train_loss"])
    assert result["epochs_done"] < 3


def test_trial_config_round_trips_and_rejects_unknown_fields():
    cfg = TrialConfig.from_dict(config())
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg
    from scaling import ArchScaleError

    with pytest.raises(ArchScaleError, match="unknown trial field"):
        TrialConfig.from_dict(config(epochs=3))


def test_unknown_trial_field_suggests_the_closest_one():
    from scaling import ArchScaleError

    with pytest.raises(ArchScaleError) as e:
        TrialConfig.from_dict(config(max_step_per_epoch=3))
    assert e.value.field == "trial.max_step_per_epoch"
    assert "unknown trial field (did you mean 'max_steps_per_epoch'?); known: amp, channels_last" in str(e.value)


@pytest.mark.parametrize("field,value", [("compile", "yes"), ("amp", 1), ("sync_bn", None)])
def test_trial_switches_must_be_true_or_false(field, value):
    from scaling import ArchScaleError

    with pytest.raises(ArchScaleError, match=rf"^trial\.{field}: expected true or false, got {value!r}$"):
        TrialConfig.from_dict(config(**{field: value}))


def test_archscale_train_learns_a_small_resnext_on_digits(capsys):
    # the check: a small ResNeXt on digits, on CPU, in well under a minute, far above chance
    assert main(["train", "--preset", "resnext29_8x64d", "--width-multiplier", "0.25", "--bottleneck-width", "16",
                 "--resolution", "16", "--regime", "rs-10", "--epochs", "4", "--dataset", "digits", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "done" and result["final_top1"] > 50.0  # chance is 10 %
    assert result["spec"]["cardinality"] == 8 and result["dataset"] == "digits"


def test_train_cli_prints_progress_and_resumes(tmp_path, capsys):
    args = ["train", "--block", "basic", "--depth", "8", "--widths", "8,16,32", "--stem", "cifar", "--stem-width", "8",
            "--resolution", "16", "--epochs", "2", "--max-steps-per-epoch", "3", "--checkpoint-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "done: final top-1" in out
    assert main(args + ["--resume"]) == 0
    assert "epoch" not in capsys.readouterr().out.split("\n", 1)[1].split("done:")[0]  # nothing left to train
    other = [a if a != "8,16,32" else "8,16,64" for a in args]
    assert main(other + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "resume: the checkpoint at" in err and "another spec (differs in widths)" in err and err.count("\n") == 1


def test_train_cli_errors(capsys):
    assert main(["train", "--dataset", "cifar10", "--preset", "resnet18"]) == 2
    assert "give root: PATH" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert main(["train", "--preset", "resnet18", "--set", "weight_decay"]) == 2
    assert main(["train", "--show-regime", "rs-35"]) == 2
    capsys.readouterr()
    assert main(["train", "--preset", "resnet18", "--resolution", "32", "--workers", "0"]) == 2
    assert "workers: a trial needs at least one worker, got 0" in capsys.readouterr().err
    assert main(["train", "--preset", "resnet18", "--resolution", "32", "--workers", "3"]) == 2  # batch 64 on digits
    assert "workers: the global batch of 64 does not split over 3 workers" in capsys.readouterr().err
    for flag, value, field in (("--checkpoint-every", "-1", "trial.checkpoint_every"), ("--cpus", "0", "trial.cpus"),
                               ("--max-steps-per-epoch", "0", "trial.max_steps_per_epoch")):
        assert main(["train", "--preset", "resnet18", "--resolution", "32", flag, value]) == 2
        err = capsys.readouterr().err
        assert f"{field}: must be a whole number" in err and err.count("\n") == 1


def test_train_json_of_a_diverged_trial_is_strict_json(capsys):
    from experiments.cli import main

    assert main(["train", "--block", "basic", "--depth", "8", "--widths", "8,16,32", "--stem", "cifar",
                 "--stem-width", "8", "--resolution", "16", "--epochs", "2", "--max-steps-per-epoch", "3",
                 "--set", "lr_per_256=1e12", "--set", "warmup_epochs=0", "--json"]) == 0

    def no_nan(name):
        raise AssertionError(f"{name} is not JSON")

    result = json.loads(capsys.readouterr().out, parse_constant=no_nan)
    assert result["status"] == "diverged" and result["final_top1"] is None


def _guarded_trial(monkeypatch, **kw):
    """Run a trial with every training step after each epoch's first batch under a HostSyncGuard."""
    from sync_guard import HostSyncGuard, guard_training_steps

    from experiments.train.trial import TrialRun

    guards = []
    set_up_data = TrialRun._set_up_data

    def guarded(self):
        set_up_data(self)
        guards.append(HostSyncGuard())
        guard_training_steps(self.data, guards[-1])

    monkeypatch.setattr(TrialRun, "_set_up_data", guarded)
    result = train_trial(config(**kw))
    return result, guards[0]


def test_training_steps_never_wait_on_the_host(monkeypatch):
    # the full ResNet-RS recipe on in-memory data: crop, RandAugment (magnitude 10), EMA, dropout
    result, guard = _guarded_trial(monkeypatch, regime={"name": "rs-350", "epochs": 2}, max_steps_per_epoch=4)
    assert result["status"] == "done" and result["effective_randaugment_magnitude"] == 10
    assert guard.ops > 1000 and guard.events == []  # no .item(), host read or blocking copy in a step


def test_the_step_guard_catches_a_host_read(monkeypatch):
    import torch

    loss = torch.nn.CrossEntropyLoss.forward

    def loss_and_read(self, x, y):
        out = loss(self, x, y)
        out.item()  # a deliberate host read inside the step
        return out

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", loss_and_read)
    _, guard = _guarded_trial(monkeypatch, regime={"name": "rs-10", "epochs": 1}, max_steps_per_epoch=3)
    assert "aten._local_scalar_dense" in guard.events and "Tensor.item()" in guard.events


def test_randaugment_runs_are_identical_for_a_seed_and_when_resumed(tmp_path):
    regime = {"name": "rs-10", "epochs": 3, "randaugment_magnitude": 15}
    full = train_trial(config(regime=regime))
    assert full["effective_randaugment_layers"] == 2 and strip(train_trial(config(regime=regime))) == strip(full)

    class Crash(Exception):
        pass

    def crash_after_one(metrics, ckpt):
        if metrics["epoch"] == 1:
            raise Crash()

    with pytest.raises(Crash):  # checkpoint every epoch, so the first is on disk
        train_trial(config(regime=regime, checkpoint_interval_s=0), report=crash_after_one, checkpoint_dir=tmp_path)
    assert strip(train_trial(config(regime=regime), checkpoint_dir=tmp_path, resume=tmp_path)) == strip(full)


def test_sync_bn_is_a_trial_option_that_one_worker_ignores():
    assert TrialConfig.from_dict(config(sync_bn=True)).sync_bn is True
    with pytest.raises(Exception, match="trial.sync_bn"):
        TrialConfig.from_dict(config(sync_bn="yes"))
    one = {**config(max_steps_per_epoch=2), "regime": {"name": "rs-10", "epochs": 1}}
    assert strip(train_trial({**one, "sync_bn": True})) == strip(train_trial(one))
