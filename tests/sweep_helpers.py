"""Small sweep specs for the tests (tiny nets on digits, a few steps an epoch)."""

TINY_BASE = {"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar", "stem_width": 8,
             "num_classes": 10, "resolution": 12}


def tiny_sweep(output_dir, *, widths=(1.0,), depths=(8,), resolutions=(12,), epochs=2, seeds=(0,), steps=4,
               **extra) -> dict:
    spec = {
        "name": "tiny",
        "space": {"base": dict(TINY_BASE),
                  "axes": {"width_multiplier": list(widths), "depth": list(depths), "resolution": list(resolutions)}},
        "regimes": [{"name": "rs-10", "epochs": epochs}],
        "dataset": "digits",
        "seeds": list(seeds),
        "resources": {"cpus": 1, "gpus": 0},
        "output_dir": str(output_dir),
        "trial": {"max_steps_per_epoch": steps},
    }
    spec.update(extra)
    return spec


def ray_temp_dir() -> str:
    """A fresh, short Ray temp directory (RAY_TMPDIR or ``ray start --temp-dir``) for one test's
    Ray: its sockets' paths must stay under the OS's 107-character limit."""
    import tempfile

    return tempfile.mkdtemp(prefix="rt", dir="/tmp")


def ray_processes(temp_dir) -> list[int]:
    """Pids of the live processes whose command line or open files lie in ``temp_dir``: the Ray
    processes of the sessions a test started there, whatever else runs on the machine. Read
    straight from /proc, independently of the code under test."""
    import os
    import re

    root = str(temp_dir).rstrip("/")
    named = re.compile(re.escape(root) + r"(?![\w.-])")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if named.search(cmdline) or any(link.startswith(root + "/") for link in links):
            found.append(int(pid))
    return found


def counted_loader(log, n=64, classes=4):
    """A loader (as a user writes one) that appends its process id to the file ``log`` at each call."""
    import os

    import numpy as np

    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    y = np.arange(n) % classes
    return {"x_train": x, "y_train": y, "x_val": x[: n // 4], "y_val": y[: n // 4]}
