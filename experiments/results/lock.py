"""One live sweep driver per output directory: ``OUTPUT_DIR/driver.lock``.

The driver holds an exclusive ``flock`` on the file while it runs and writes who it is into it
(host, pid, start time). The kernel drops the lock when the driver's process ends, however it
ends (``kill -9`` included), so a lock left by a killed driver is stale by construction and the
next driver takes it over; a second driver while the first lives is refused with one line.
``archscale status`` asks the same lock whether a driver is running (``driver_running``).
The file descriptor is not inherited by the processes the driver starts (Python's default), so
Ray's processes never keep a dead driver's lock.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from scaling.errors import ArchScaleError

LOCK = "driver.lock"


class DriverLock:
    """The lock of one sweep launch on ``output_dir`` (which must exist): ``acquire`` it before
    anything else touches the folder, ``release`` it when the launch ends."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> DriverLock:
        """Take the lock, or raise ArchScaleError("output_dir") naming the live driver that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = lock_holder(self.path.parent)
            who = (f"driver pid {holder.get('pid')} on {holder.get('host')}, started "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('started', 0)))}"
                   if holder else "another driver")
            raise ArchScaleError("output_dir", f"{self.path.parent} is in use by a running sweep ({who}); wait for "
                                               f"it to end, stop it (Ctrl-C, or kill -TERM its pid), or use "
                                               f"another output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}).encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (the file stays: a lock nobody holds means no driver is running)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> DriverLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(output_dir: str | Path) -> dict:
    """What the last driver wrote into the lock (host, pid, started); {} when unreadable."""
    try:
        data = json.loads((Path(output_dir) / LOCK).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def driver_running(output_dir: str | Path) -> bool:
    """Whether a live driver holds the lock of ``output_dir`` (False when there is no lock file:
    every driver takes it before it writes anything else)."""
    try:
        fd = os.open(Path(output_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
