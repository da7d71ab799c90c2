"""A sweep folder always recovers: Tune's callbacks come from the current spec, never from its
pickle; a folder whose Tune state cannot serve the rerun says why and what to do (--restart),
and --restart keeps the ended trials. The slow tests kill a real sweep and recover it."""
import dataclasses
import pickle
import subprocess
import sys

import pytest
import yaml
from ray.tune import Callback
from sweep_helpers import tiny_sweep

from experiments.results.schema import EVENTS, MANIFEST
from experiments.results.store import Journal, load_results, read_events
from experiments.sweep.callbacks import HOOKS, LaunchCallbacks
from experiments.sweep.run import tune_state
from experiments.sweep.spec import load_sweep, prepare
from scaling import ArchScaleError


class Seen(Callback):
    def __init__(self):
        self.calls = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.calls.append(result["epoch"])


def test_tune_pickles_no_callback_and_a_restored_one_runs_the_current_launchs():
    started_with = Seen()
    with LaunchCallbacks.installed([started_with]) as proxy:
        pickled = pickle.dumps(proxy)
        proxy.on_trial_result(iteration=1, trials=[], trial=None, result={"epoch": 1})
    assert started_with.calls == [1] and b"Seen" not in pickled  # the pickle holds no callback
    current = Seen()
    with LaunchCallbacks.installed([current]):
        restored = pickle.loads(pickled)  # as Tuner.restore unpickles tuner.pkl
        restored.on_trial_result(iteration=2, trials=[], trial=None, result={"epoch": 2})
        assert restored.get_state() is None
    assert current.calls == [2] and started_with.calls == [1]
    restored.on_trial_result(iteration=3, trials=[], trial=None, result={"epoch": 3})  # no launch: nothing
    assert current.calls == [2]
    assert set(HOOKS) == {n for n in vars(Callback) if n == "setup" or n.startswith("on_")}


def sweep_with_tune_state(tmp_path, **extra):
    """A prepared sweep whose folder holds a Tune experiment Tuner.can_restore accepts, and one ended trial."""
    sweep = load_sweep(tiny_sweep(tmp_path / "out", widths=(0.5, 1.0), **extra))
    trials, _ = prepare(sweep)
    exp = tmp_path / "out" / "ray" / "tiny"
    exp.mkdir(parents=True)
    (exp / "tuner.pkl").write_bytes(b"tune's pickle")
    (exp / "experiment_state-2026.json").write_text("{}")
    Journal(sweep.output_dir).append({"event": "end", "trial_id": trials[0]["trial_id"], "status": "done",
                                      "time": 1.0})
    return sweep, exp


def test_tune_state_is_restored_when_nothing_it_keeps_changed(tmp_path):
    sweep, _ = sweep_with_tune_state(tmp_path)
    assert tune_state(sweep, restart=False) is True
    assert tune_state(load_sweep(tiny_sweep(tmp_path / "fresh")), restart=False) is False


@pytest.mark.parametrize("change,message", [
    ({"scheduler": {"name": "asha", "grace_period": 1}}, "scheduler: changed since the sweep started ({'name': 'fifo'"),
    ({"resources": {"cpus": 2, "gpus": 0}}, "resources: changed since the sweep started ("),
    ({"retries": 2}, "retries: changed since the sweep started (0 -> 2), and Tune's saved state keeps the old value; "
                     "rerun with --restart to keep the 1 ended trials and start the others afresh, or put the old "
                     "value back to resume"),
])
def test_a_spec_change_tune_cannot_resume_is_one_line_naming_the_way_out(tmp_path, change, message):
    sweep_with_tune_state(tmp_path)
    changed = load_sweep(tiny_sweep(tmp_path / "out", widths=(0.5, 1.0), **change))
    with pytest.raises(ArchScaleError) as e:
        tune_state(changed, restart=False)
    assert str(e.value).startswith(message) and "--restart" in str(e.value) and "\n" not in str(e.value)


def test_unreadable_tune_state_is_one_line_and_restart_drops_it_keeping_the_journal(tmp_path):
    sweep, exp = sweep_with_tune_state(tmp_path)
    (exp / "experiment_state-2026.json").write_text('{"trial_data": [')
    with pytest.raises(ArchScaleError) as e:
        tune_state(sweep, restart=False)
    assert str(e.value) == (f"output_dir: Tune's saved state {exp / 'experiment_state-2026.json'} cannot be read "
                            f"(JSONDecodeError); rerun with --restart to keep the 1 ended trials and start the "
                            f"others afresh")
    events = read_events(sweep.output_dir)
    assert tune_state(sweep, restart=True) is False
    assert not exp.exists() and read_events(sweep.output_dir) == events  # the ended trial is kept
    assert (sweep.output_dir / EVENTS).is_file() and (sweep.output_dir / MANIFEST).is_file()


@pytest.mark.parametrize("uri", [False, True])
def test_a_tune_folder_killed_before_its_first_state_starts_afresh_keeping_the_journal(tmp_path, uri):
    """A driver killed after Tune pickled tuner.pkl and before its first experiment state: Tune's
    restore would start trials from no param space (a KeyError traceback in the rerun), so the
    folder is dropped and the launch starts Tune afresh; the journal's ended trials stay ended.
    Also at a storage URI (pyarrow's file:// here)."""
    sweep, exp = sweep_with_tune_state(tmp_path)
    (exp / "experiment_state-2026.json").unlink()
    (exp / "trial_folder").mkdir()
    if uri:
        sweep = dataclasses.replace(sweep, storage_path=f"file://{tmp_path / 'out' / 'ray'}")
        assert sweep.experiment_path.startswith("file://")
    events = read_events(sweep.output_dir)
    assert tune_state(sweep, restart=False) is False
    assert not exp.exists() and read_events(sweep.output_dir) == events


def _status_lines(out, env) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "experiments.cli", "status", str(out)], env=env, capture_output=True,
                         text=True, check=True)
    return run.stdout.splitlines()


def _mlflow_runs(out) -> int:
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    return len(client.search_runs([client.get_experiment_by_name("tiny").experiment_id]))


@pytest.mark.slow
def test_a_killed_sweep_started_with_mlflow_resumes_without_it(tmp_path):
    """The crash of the issue: a sweep with callbacks: [mlflow] dies; the rerun drops callbacks:.
    Tune restores its state (the trials continue from their checkpoints) but not the MLflow
    callback it pickled: with MLflow pointed at a server that is not there, a restored one would
    fail the rerun, and the database gains no run."""
    pytest.importorskip("mlflow")
    from test_sweep_ray import _kill_mid_sweep, _resume_and_check

    cmd, env, out, ended_before, n, _ = _kill_mid_sweep(tmp_path, callbacks=["mlflow"])
    lines = _status_lines(out, env)
    assert any(ln.startswith("driver not running: ") for ln in lines)
    rows = lines[1:9]  # the 8 trials
    assert not [r for r in rows if r.split()[3] in ("pending", "running")]
    assert sum("driver not running" in r for r in rows) == 8 - len(ended_before)
    runs = _mlflow_runs(out)
    assert runs >= len(ended_before)
    spec_file = tmp_path / "sweep.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    del spec["callbacks"]
    spec_file.write_text(yaml.safe_dump(spec))
    env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"  # nothing there
    after = _resume_and_check(cmd, env, out, ended_before, n)
    assert after[0]["resumed"] is True and _mlflow_runs(out) == runs


@pytest.mark.slow
def test_a_folder_whose_tune_state_cannot_be_restored_says_so_and_restart_recovers_it(tmp_path):
    from test_sweep_ray import _kill_mid_sweep

    cmd, env, out, ended_before, n, _ = _kill_mid_sweep(tmp_path)
    (out / "ray" / "tiny" / "tuner.pkl").write_bytes(b"not a pickle")
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and rerun.stderr.count("\n") == 1, rerun.stderr[-2000:]
    assert rerun.stderr.startswith(f"archscale sweep: error: output_dir: Tune's saved state in {out / 'ray' / 'tiny'} "
                                   f"cannot be restored (UnpicklingError: ")
    assert rerun.stderr.endswith(f"rerun with --restart to keep the {len(ended_before)} ended trials and start the "
                                 f"others afresh\n")
    n = len(read_events(out))
    restarted = subprocess.run(cmd + ["--restart"], env=env, capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert "Last result" not in restarted.stdout + restarted.stderr  # Tune's own per-trial lines stay out
    trials, _ = load_results(out)
    assert (trials.status == "done").all()
    after = read_events(out)[n:]
    assert after[0]["resumed"] is False and set(after[0]["already_ended"]) == ended_before
    for tid in ended_before:  # the ended trials were kept, not run again
        assert not [e for e in after if e.get("trial_id") == tid and e["event"] in ("start", "epoch", "end")]
    first = {}
    for e in after:
        if e.get("event") == "epoch":
            first.setdefault(e["trial_id"], e["epoch"])
    assert set(first) == set(trials.trial_id) - ended_before
    assert set(first.values()) == {1}  # Tune's checkpoints went with its state: the others started afresh


@pytest.mark.slow
def test_a_sweep_killed_before_tune_saved_its_first_state_reruns_to_the_end(tmp_path):
    """Killed as it launched: Tune's folder holds tuner.pkl and no experiment state (any state the
    kill let through is removed, to hold the folder at that moment). The rerun starts Tune afresh
    and every trial ends done; status, meanwhile, reads the folder without a traceback."""
    import signal
    import time

    from test_sweep_ray import ROOT, _sweep_command

    out = tmp_path / "out"
    cmd, env = _sweep_command(tmp_path, tiny_sweep(out, widths=(0.5, 1.0), epochs=2))
    driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not [e for e in read_events(out) if e.get("event") == "sweep"]:
        assert driver.poll() is None and time.time() < deadline, "the sweep did not launch"
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    exp = out / "ray" / "tiny"
    assert (exp / "tuner.pkl").is_file()
    for state in exp.glob("experiment_state-*.json"):
        state.unlink()
    time.sleep(2)
    lines = _status_lines(out, env)
    assert any(ln.startswith("driver not running: ") for ln in lines), lines
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Failed to restore" not in rerun.stderr
    trials, _ = load_results(out)
    assert len(trials) == 2 and (trials.status == "done").all()
