"""Stopping a sweep on a signal: the handlers, the journal, the exit status.

A real sweep stopped by Ctrl-C or SIGTERM, and resumed, is in test_sweep_ray.py (slow).
"""
import os
import signal
import time

import pytest

from experiments.results.store import load_results, read_events

pytest.importorskip("ray")


def _deliver(signum) -> None:
    """Send ``signum`` to this process and give Python the moment it needs to run the handler."""
    os.kill(os.getpid(), signum)
    time.sleep(0.2)


def test_a_first_signal_asks_for_a_stop_and_a_second_ctrl_c_stops_at_once():
    from experiments.sweep.stopping import STOP, stop_on_signals

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signals():
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # Tune leaves Ctrl-C to us
        _deliver(signal.SIGTERM)
        assert STOP.signal == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before
    with stop_on_signals():
        assert STOP.signal is None  # each sweep starts afresh
        _deliver(signal.SIGINT)
        assert STOP.signal == signal.SIGINT


def test_the_stop_is_passed_on_to_tune_once(monkeypatch, capsys):
    from experiments.sweep.stopping import STOP, StopCallback, stop_on_signals

    calls = []
    monkeypatch.setattr(signal, "getsignal", lambda s: (lambda *a: calls.append(a)) if s == signal.SIGUSR1 else None)
    cb = StopCallback()
    with stop_on_signals():
        cb.on_step_begin(0, [])
        assert calls == []  # no signal yet
        STOP.signal = signal.SIGTERM
        cb.on_step_begin(1, [])
        cb.on_step_begin(2, [])
    assert calls == [(signal.SIGUSR1, None)]
    assert "SIGTERM: stopping the sweep" in capsys.readouterr().err


def test_a_trials_user_error_stops_the_sweep_once_and_quietly(monkeypatch, capsys):
    from experiments.sweep.stopping import STOP, StopCallback, note_user_error, stop_on_signals

    calls = []
    monkeypatch.setattr(signal, "getsignal", lambda s: (lambda *a: calls.append(a)) if s == signal.SIGUSR1 else None)
    cb = StopCallback()
    with stop_on_signals():
        note_user_error(None)  # not a user error: the sweep goes on
        cb.on_step_begin(0, [])
        assert calls == [] and STOP.user_error is None
        note_user_error("dataset.root: cannot read image a.jpg")
        note_user_error("dataset.root: cannot read image b.jpg")  # the first one is the one said
        cb.on_step_begin(1, [])
        cb.on_step_begin(2, [])
        assert STOP.user_error == "dataset.root: cannot read image a.jpg" and STOP.signal is None
    assert calls == [(signal.SIGUSR1, None)] and capsys.readouterr().err == ""
    with stop_on_signals():
        assert STOP.user_error is None  # each sweep starts afresh


def test_a_trial_that_failed_on_a_user_error_has_not_ended_for_the_rerun():
    from experiments.results.schema import TrialEnd
    from experiments.results.store import ended_trials, failed_on_user_errors

    user = "scaling.errors.ArchScaleError: dataset.root: cannot read image a.jpg (OSError: Truncated File Read)"
    events = [{"event": "start", "trial_id": t} for t in "abcd"] + [
        {"event": "end", "trial_id": "a", "status": "done"},
        {"event": "end", "trial_id": "b", "status": "error", "error": "RuntimeError: CUDA out of memory"},
        {"event": "end", "trial_id": "c", "status": "error", "error": user}]
    assert TrialEnd(status="error", error=user).user_error == ("dataset.root: cannot read image a.jpg (OSError: "
                                                               "Truncated File Read)")
    assert TrialEnd(status="done", error=user).user_error is None
    assert ended_trials(events) == {"a", "b"} and ended_trials(events, errored=False) == {"a"}
    assert failed_on_user_errors(events) == {"c"}
    assert failed_on_user_errors(events + [{"event": "start", "trial_id": "c"}]) == set()  # running again


def test_the_journal_marks_running_trials_interrupted(tmp_path):
    from experiments.results.store import PLAN, Journal
    from experiments.sweep.stopping import journal_interruption

    (tmp_path / PLAN).write_text('{"trials": [{"trial_id": "a"}, {"trial_id": "b"}, {"trial_id": "c"}]}')
    for e in ({"event": "start", "trial_id": "a"}, {"event": "epoch", "trial_id": "a", "epoch": 1},
              {"event": "start", "trial_id": "b"}, {"event": "end", "trial_id": "b", "status": "done"}):
        Journal(tmp_path).append(e)
    journal_interruption(tmp_path, signal.SIGTERM, ["a"])
    trials, _ = load_results(tmp_path)
    assert trials.set_index("trial_id").status.to_dict() == {"a": "interrupted", "b": "done", "c": "pending"}
    stop = read_events(tmp_path)[-2]
    assert stop["event"] == "interrupted" and stop["signal"] == "SIGTERM" and stop["running"] == ["a"]


def test_a_stopped_sweep_exits_128_plus_the_signal(tmp_path, monkeypatch, capsys):
    import yaml
    from sweep_helpers import tiny_sweep

    import experiments.sweep.run
    from experiments.cli import main
    from experiments.sweep.run import SweepSummary

    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out")))
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        monkeypatch.setattr(experiments.sweep.run, "run_sweep", lambda *a, signum=signum, **k: SweepSummary(
            tmp_path / "out", {"done": 1, "interrupted": 1}, [], 5.0, None, signum))
        assert main(["sweep", str(f), "--quiet"]) == code
        out = capsys.readouterr().out
        assert f"stopped by {signal.Signals(signum).name}" in out and "1 interrupted" in out and "resume" in out
