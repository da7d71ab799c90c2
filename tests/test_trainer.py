import json
import math
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.trainer import TrialConfig, load_checkpoint, train_trial
from scaling import ArchSpec

TINY = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, num_classes=10,
                resolution=16)


def config(**kw):
    base = {"spec": TINY.to_dict(), "regime": {"name": "rs-10", "epochs": 3}, "dataset": "digits", "seed": 0,
            "max_steps_per_epoch": 6}
    base.update(kw)
    return base


TIMINGS = ("train_time_s", "images_per_s", "epoch_time_s", "time_s", "peak_memory_bytes", "latency_ms", "throughput")


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
        calls.append((m, ckpt, (Path(ckpt) / "state.pt").is_file()))

    result = train_trial(config(), report=report)
    assert [m["epoch"] for m, _, _ in calls] == [1, 2, 3]
    for m, ckpt, existed in calls:
        assert {"train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_s", "epoch_time_s"} <= set(m)
        assert existed and not Path(ckpt).exists()  # temporary: removed once reported
    assert result["status"] == "done" and result["epochs_done"] == 3
    assert {"best_top1", "final_top1", "train_time_s", "peak_memory_bytes", "device", "params", "flops"} <= set(result)
    assert calls[-1][0]["status"] == "done" and calls[-1][0]["latency_ms"] > 0 and calls[-1][0]["throughput"] > 0
    assert all(m["workers"] == 1 and m["devices"] == 1 for m, _, _ in calls) and result["workers"] == 1


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
        train_trial(config(regime={"name": "rs-10", "epochs": 4}), report=crash_after_two, checkpoint_dir=ckdir)
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


@pytest.mark.parametrize("field,value", [("compile", "yes"), ("amp", 1), ("measure_inference", None)])
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


def test_sync_bn_is_a_trial_option_that_one_worker_ignores():
    assert TrialConfig.from_dict(config(sync_bn=True)).sync_bn is True
    with pytest.raises(Exception, match="trial.sync_bn"):
        TrialConfig.from_dict(config(sync_bn="yes"))
    one = {**config(max_steps_per_epoch=2), "regime": {"name": "rs-10", "epochs": 1}, "measure_inference": False}
    assert strip(train_trial({**one, "sync_bn": True})) == strip(train_trial(one))
