"""experiments/results/lock.py: one live driver per output directory; a killed driver's lock is taken over."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.results.lock import LOCK, DriverLock, driver_running, lock_holder
from scaling import ArchScaleError

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_driver_is_refused_with_one_line_naming_the_first(tmp_path):
    first = DriverLock(tmp_path).acquire()
    assert driver_running(tmp_path) and lock_holder(tmp_path)["pid"] == os.getpid()
    with pytest.raises(ArchScaleError) as e:
        DriverLock(tmp_path).acquire()
    message = str(e.value)
    assert message.startswith(f"output_dir: {tmp_path} is in use by a running sweep (driver pid {os.getpid()} on ")
    assert "\n" not in message
    first.release()
    assert not driver_running(tmp_path)
    with DriverLock(tmp_path):  # free again
        assert driver_running(tmp_path)


def test_no_lock_file_means_no_driver(tmp_path):
    assert not driver_running(tmp_path) and lock_holder(tmp_path) == {}


def test_the_lock_of_a_killed_driver_is_taken_over(tmp_path):
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from experiments.results.lock import DriverLock; "
            f"DriverLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        assert driver_running(tmp_path) and lock_holder(tmp_path)["pid"] == child.pid
        with pytest.raises(ArchScaleError, match=f"driver pid {child.pid} on "):
            DriverLock(tmp_path).acquire()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait()
    # the file stays, naming the dead driver, but nobody holds it
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == child.pid and not driver_running(tmp_path)
    t0 = time.time()
    with DriverLock(tmp_path):
        assert lock_holder(tmp_path)["pid"] == os.getpid()
    assert time.time() - t0 < 1
