"""Ending a local Ray's processes when its driver is gone; this module imports no Ray.

experiments.sweep.ray_runtime.LocalRay is the local Ray of a sweep launch, recorded in the output
directory and ended with its driver.

A driver killed with SIGKILL cannot shut its Ray down. Most of Ray's processes die with it (the
kernel ends them with their parent), but Ray's agents (DashboardAgent, RuntimeEnvAgent) live on,
about 190 MB a crash. So a launch that starts a local Ray:

- writes OUTPUT_DIR/ray_session.json: the Ray session's directory, the driver's pid and start
  time, and the guard's pid;
- starts a guard, a small process that waits for the driver to end, however it ends, and then
  ends every process left of that session;
- ends the session itself when the sweep returns, stops or fails;
- and, on the next launch on the same output directory, ends what is left of a recorded session
  whose driver is gone (in case the guard was killed too).

A process belongs to a session when its command line or one of its open files lies in the
session's directory: every Ray process of a session writes its logs there, and the directory's
name (a timestamp and the driver's pid) is unique, so no other Ray on the machine is touched.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from scaling.files import atomic_write_text

RECORD = "ray_session.json"
#: The folder holding the packages (put on the guard's PYTHONPATH, so it imports this module).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 5.0  # SIGTERM first; SIGKILL for what is still there after this long


def record_session(output_dir: str | Path, session_dir: str, guard_pid: int | None = None) -> None:
    """Write OUTPUT_DIR/ray_session.json for the local Ray this process started (and its guard)."""
    me = psutil().Process()
    atomic_write_text(Path(output_dir) / RECORD, json.dumps(
        {"session_dir": session_dir, "driver_pid": me.pid, "driver_started": me.create_time(),
         "guard_pid": guard_pid, "time": time.time()}, indent=1) + "\n")


def end_leftover_session(output_dir: str | Path) -> int:
    """End what is left of the Ray session recorded in ``output_dir`` when its driver is gone (a
    driver still running keeps its Ray); returns the number of processes ended."""
    path = Path(output_dir) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    if record.get("driver_pid") != os.getpid() and _alive(record.get("driver_pid"), record.get("driver_started")):
        return 0
    ended = end_session(record["session_dir"])
    path.unlink(missing_ok=True)
    return ended


def _alive(pid, started) -> bool:
    """Whether process ``pid`` runs and is the one that started at ``started`` (not a reused pid)."""
    ps = psutil()
    try:
        return abs(ps.Process(int(pid)).create_time() - float(started)) < 1.0
    except (ps.Error, TypeError, ValueError):
        return False


def session_processes(session_dir: str) -> list:
    """The live processes of a Ray session (psutil.Process): those whose command line or open
    files lie in ``session_dir``; never this process."""
    ps = psutil()
    root = str(session_dir).rstrip("/")
    named = re.compile(re.escape(root) + r"(?![\w.-])")  # not session_1 within session_12
    found = []
    for p in ps.process_iter(["pid", "cmdline"]):
        if p.pid == os.getpid():
            continue
        try:
            if any(named.search(arg) for arg in p.info["cmdline"] or ()) or any(
                    f.path == root or f.path.startswith(root + "/") for f in p.open_files()):
                found.append(p)
        except ps.Error:  # gone meanwhile, or not ours to look at
            continue
    return found


def end_session(session_dir: str, grace_s: float = GRACE_S) -> int:
    """End every process of a Ray session: SIGTERM, then SIGKILL after ``grace_s`` seconds.
    Returns how many there were."""
    ps = psutil()
    procs = session_processes(session_dir)
    for p in procs:
        try:
            p.terminate()
        except ps.Error:
            pass
    _, alive = ps.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except ps.Error:
            pass
    ps.wait_procs(alive, timeout=grace_s)
    return len(procs)


def start_guard(session_dir: str) -> subprocess.Popen:
    """Start the process that ends the session once this driver is gone. It waits for the end of
    its stdin, a pipe only this process writes to: the kernel closes it however the driver ends.
    It runs in its own session, so a Ctrl-C or a signal to the driver's process group spares it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(PROJECT_ROOT),
                                                                      os.environ.get("PYTHONPATH"))))}
    return subprocess.Popen([sys.executable, "-m", "experiments.sweep.session_guard", session_dir],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def psutil():
    """psutil: installed, or the copy Ray ships in ray/thirdparty_files (found without importing Ray)."""
    try:
        import psutil as ps
    except ImportError:
        spec = importlib.util.find_spec("ray")
        sys.path.append(os.path.join(list(spec.submodule_search_locations)[0], "thirdparty_files"))
        import psutil as ps
    return ps


if __name__ == "__main__":  # the guard: wait for the driver to end, then end its Ray session
    for ignored in (signal.SIGINT, getattr(signal, "SIGHUP", None)):  # a terminal's Ctrl-C or hang-up
        if ignored is not None:
            signal.signal(ignored, signal.SIG_IGN)
    while sys.stdin.buffer.read(1 << 16):
        pass
    end_session(sys.argv[1])
