"""experiments/sweep/trackers.py: the sweep spec's callbacks: (MLflow, W&B, any Tune callback), checked before Ray."""
import socket

import pytest
from ray.tune import Callback
from sweep_helpers import tiny_sweep

from experiments.cli import main
from experiments.sweep.spec import load_sweep
from experiments.sweep.trackers import TRACKERS, CallbackSpec, build_callbacks, callbacks_from
from scaling import ArchScaleError


class Recorder(Callback):
    """A Tune callback defined in a test module, named as 'test_trackers:Recorder'."""

    def __init__(self, tag: str = "", every: int = 1):
        self.tag, self.every = tag, every


NOT_A_CALLBACK = object()


def test_entries_are_names_or_mappings_with_keyword_arguments():
    specs = callbacks_from(["mlflow", {"name": "wandb", "project": "p"}, {"name": "test_trackers:Recorder",
                                                                          "every": 5}])
    assert specs == (CallbackSpec("mlflow"), CallbackSpec("wandb", {"project": "p"}),
                     CallbackSpec("test_trackers:Recorder", {"every": 5}))
    assert specs[0].target == TRACKERS["mlflow"].callback and specs[2].target == "test_trackers:Recorder"
    assert callbacks_from(None) == () and callbacks_from("mlflow") == (CallbackSpec("mlflow"),)


@pytest.mark.parametrize("value,message", [
    (["mlfow"], "callbacks[0]: unknown callback 'mlfow' (did you mean 'mlflow'?); use mlflow, wandb, or "
                "'package.module:Class' for any Tune callback"),
    ([{"project": "p"}], "callbacks[0]: expected a tracker (mlflow, wandb), 'package.module:Class', or a mapping"),
    (["mlflow", 3], "callbacks[1]: expected a tracker"),
])
def test_malformed_entries_are_one_line_errors(value, message):
    with pytest.raises(ArchScaleError) as e:
        callbacks_from(value)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_module_class_callback_is_built_with_its_keywords():
    [cb] = build_callbacks([{"name": "test_trackers:Recorder", "tag": "x", "every": 3}])
    assert isinstance(cb, Recorder) and (cb.tag, cb.every) == ("x", 3)
    mine = Recorder()
    assert build_callbacks([mine]) == [mine]  # callback objects pass through


@pytest.mark.parametrize("entry,message", [
    ({"name": "test_trackers:Recorder", "evry": 3}, "callbacks[0]: test_trackers:Recorder does not take these "
                                                    "arguments (got an unexpected keyword argument 'evry')"),
    ("test_trackers:NOT_A_CALLBACK", "callbacks[0]: test_trackers:NOT_A_CALLBACK is not a ray.tune.Callback class"),
    ("test_trackers:Missing", "callbacks[0]: 'test_trackers' has no 'Missing'"),
    ("no_such_module_xyz:Cb", "callbacks[0]: cannot import 'no_such_module_xyz'"),
])
def test_bad_callbacks_are_refused_before_ray_starts(entry, message):
    with pytest.raises(ArchScaleError) as e:
        build_callbacks([entry])
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_tracker_without_its_package_names_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ArchScaleError, match=r"^callbacks\[0\]: the wandb callback needs the wandb package: "
                                             r"pip install wandb$"):
        build_callbacks(["wandb"])


def test_mlflow_experiment_defaults_to_the_sweep_name_and_its_store_to_the_output_dir(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from experiments.sweep import trackers

    opened = []
    monkeypatch.setattr(trackers, "check_mlflow_store", lambda uri, registry, setting, dry_run: opened.append(
        (uri, setting, dry_run)))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    [cb] = build_callbacks(["mlflow"], experiment="tiny", output_dir=tmp_path / "out", dry_run=True)
    [named] = build_callbacks([{"name": "mlflow", "experiment_name": "mine", "tracking_uri": "http://h:5000"}],
                              experiment="tiny", output_dir=tmp_path / "out")
    assert cb.experiment_name == "tiny" and (named.experiment_name, named.tracking_uri) == ("mine", "http://h:5000")
    # no environment variable needed: a database in the sweep's output directory
    assert cb.tracking_uri == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env-host:5000")
    [env] = build_callbacks(["mlflow"], experiment="tiny", output_dir=tmp_path / "out")
    assert env.tracking_uri == "http://env-host:5000"
    assert opened == [(cb.tracking_uri, "callbacks[0].tracking_uri", True),
                      ("http://h:5000", "callbacks[0].tracking_uri", False),
                      ("http://env-host:5000", "MLFLOW_TRACKING_URI", False)]


def test_mlflow_file_store_without_its_variable_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    import mlflow

    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("MLflow 2 keeps its file store without the variable")
    with pytest.raises(ArchScaleError) as e:
        build_callbacks([{"name": "mlflow", "tracking_uri": (tmp_path / "mlruns").as_uri()}], experiment="t")
    assert str(e.value).startswith("callbacks[0].tracking_uri: MLflow refuses its file store (file://")
    assert "MLFLOW_ALLOW_FILE_STORE=true" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "mlruns").exists()


def test_an_mlflow_server_that_does_not_answer_is_one_line_at_once(monkeypatch):
    pytest.importorskip("mlflow")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    with pytest.raises(ArchScaleError) as e:
        build_callbacks(["mlflow"], experiment="t", output_dir="/nonexistent")
    assert str(e.value).startswith(f"MLFLOW_TRACKING_URI: MLflow cannot use http://127.0.0.1:{port}: ")
    assert "\n" not in str(e.value)


def test_a_database_store_without_sqlalchemy_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    from experiments.sweep.trackers import check_mlflow_store

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "alembic" else real(name, *a))
    with pytest.raises(ArchScaleError, match=r"^callbacks\[0\]\.tracking_uri: MLflow's sqlite store \(sqlite:///.*"
                                             r"\) needs alembic: pip install -e '\.\[mlflow\]'"):
        check_mlflow_store(f"sqlite:///{tmp_path}/m.db", setting="callbacks[0].tracking_uri")


def test_sweep_spec_callbacks_and_the_dry_run_checks_them(tmp_path, capsys):
    spec = tiny_sweep(tmp_path / "out", callbacks=["test_trackers:Recorder"])
    assert load_sweep(spec).callbacks == (CallbackSpec("test_trackers:Recorder"),)
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out", callbacks=[{"name": "test_trackers:Recorder",
                                                                             "evry": 1}])))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert "callbacks[0]: test_trackers:Recorder does not take these arguments" in capsys.readouterr().err
    path.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out")))
    assert main(["sweep", str(path), "--dry-run", "--callback", "mlfow"]) == 2
    assert "callback[0]: unknown callback 'mlfow' (did you mean 'mlflow'?)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_logs_to_mlflow_and_tensorboard_read_back_through_their_own_apis(tmp_path, monkeypatch):
    """The README's tracker example as written: callbacks: [mlflow] with no tracking URI and no
    environment variable; MLflow's runs read back through MlflowClient, TensorBoard's event files
    through tensorboard's EventAccumulator."""
    mlflow = pytest.importorskip("mlflow")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    import ray

    from experiments.results.store import load_results
    from experiments.sweep.run import run_sweep

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    if ray.is_initialized():
        ray.shutdown()
    try:
        summary = run_sweep(tiny_sweep(tmp_path / "out", widths=(0.5, 1.0), callbacks=["mlflow"]), quiet=True,
                            num_cpus=2)
    finally:
        ray.shutdown()
    assert summary.counts == {"done": 2}
    trials, epochs = load_results(tmp_path / "out")
    journal = {(r.trial_id, int(r.epoch)): r.val_top1 for r in epochs.itertuples()}

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")  # the sweep's name
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    ids = sorted(r.data.params["trial/trial_id"] for r in runs)
    assert ids == sorted(trials.trial_id) == ["d8-w0.5-r12__rs-10__s0", "d8-w1-r12__rs-10__s0"]
    assert sorted(r.info.run_name for r in runs) == ids  # runs are named by the trial ids
    for run in runs:
        assert {"val_top1", "val_top5", "train_loss", "lr", "epoch"} <= set(run.data.metrics)
        assert run.data.params["trial/config/spec/block"] == "basic"
        history = client.get_metric_history(run.info.run_id, "val_top1")
        tid = run.data.params["trial/trial_id"]
        assert [(m.step, m.value) for m in history] == [(e, pytest.approx(journal[tid, e])) for e in (1, 2)]

    # TensorBoard needs no callback: Tune writes event files for every trial
    files = sorted((tmp_path / "out" / "ray" / "tiny").glob("*/events.out.tfevents.*"))
    assert len(files) == 2
    for f in files:
        acc = event_accumulator.EventAccumulator(str(f))
        acc.Reload()
        tid = f.parent.name
        points = [(e.step, e.value) for e in acc.Scalars("ray/tune/val_top1")]
        assert points == [(e, pytest.approx(journal[tid, e], abs=1e-4)) for e in (1, 2)]
