"""Ending a local Ray's processes: a leftover of a killed driver, and the guard.

Stand-ins play the Ray processes: one names its session's directory on its command line (as the
GCS and the raylet do), one only holds a file open there (as Ray's agents and workers do).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from experiments.sweep.session_guard import RECORD, end_leftover_session, psutil, session_processes

ROOT = Path(__file__).resolve().parents[1]
SLEEP = "import time; time.sleep(600)"


def _by_name(session_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLEEP, str(session_dir)])


def _by_open_file(session_dir: Path) -> subprocess.Popen:
    log = session_dir / "logs" / "agent.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", f"import os; f = open(os.environ['LOG'], 'w'); {SLEEP}"],
                         env={**os.environ, "LOG": str(log)})
    deadline = time.time() + 60
    while not log.exists() and time.time() < deadline:
        time.sleep(0.05)
    return p


def _record(out: Path, session_dir: Path, driver: int, started: float) -> None:
    out.mkdir(exist_ok=True)
    (out / RECORD).write_text(json.dumps({"session_dir": str(session_dir), "driver_pid": driver,
                                          "driver_started": started}))


def _gone_driver() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_next_launch_ends_what_a_killed_driver_left_and_nothing_else(tmp_path):
    session, other = tmp_path / "ray" / "session_1", tmp_path / "ray" / "session_10"
    leftovers = [_by_name(session), _by_open_file(session)]
    bystanders = [_by_name(other), _by_open_file(other)]
    try:
        assert sorted(p.pid for p in session_processes(str(session))) == sorted(p.pid for p in leftovers)
        _record(tmp_path / "out", session, _gone_driver(), 0.0)
        assert end_leftover_session(tmp_path / "out") == 2
        assert all(p.wait(timeout=30) is not None for p in leftovers)
        assert all(p.poll() is None for p in bystanders)
        assert not (tmp_path / "out" / RECORD).exists()
        assert end_leftover_session(tmp_path / "out") == 0  # nothing recorded any more
    finally:
        for p in leftovers + bystanders:
            p.kill()
            p.wait()


def test_a_session_whose_driver_still_runs_is_left_alone(tmp_path):
    session = tmp_path / "ray" / "session_1"
    driver, ray_process = _by_name(tmp_path / "elsewhere"), _by_name(session)
    try:
        _record(tmp_path / "out", session, driver.pid, psutil().Process(driver.pid).create_time())
        assert end_leftover_session(tmp_path / "out") == 0
        assert ray_process.poll() is None and (tmp_path / "out" / RECORD).exists()
    finally:
        for p in (driver, ray_process):
            p.kill()
            p.wait()


def test_the_guard_ends_the_session_when_its_driver_is_killed(tmp_path):
    session = tmp_path / "ray" / "session_1"
    ray_process = _by_open_file(session)
    driver = subprocess.Popen([sys.executable, "-c", "import sys, time; from experiments.sweep.session_guard import start_guard; "
                               "start_guard(sys.argv[1]); print('guarded', flush=True); time.sleep(600)", str(session)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "guarded"
        assert ray_process.poll() is None
        driver.kill()
        driver.wait()
        assert ray_process.wait(timeout=60) is not None
    finally:
        for p in (driver, ray_process):
            p.kill()
            p.wait()
