"""Joining a Ray cluster, token authentication included; the local Ray keeps authentication on.

The slow test starts a real cluster as the README says (``ray get-auth-token --generate``, then
``ray start --head``) with HOME and --temp-dir in temporary directories, so the user's ~/.ray
and other Ray instances on the machine are untouched; it stops that head by the process ids it
started, never with ``ray stop``.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sweep_helpers import ray_processes, ray_temp_dir, tiny_sweep

from experiments.results.store import load_results, read_events
from scaling.errors import ArchScaleError

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")

# A Ray client that only asks the GCS at argv[1] for a key: how a process without archscale
# fares against the cluster (token mode when RAY_AUTH_TOKEN is given, as Ray's docs say).
CLIENT = """
import os, sys
if os.environ.get("RAY_AUTH_TOKEN"):
    os.environ["RAY_AUTH_MODE"] = "token"
import ray
from ray._raylet import GcsClient
from ray.exceptions import AuthenticationError
try:
    GcsClient(address=sys.argv[1]).internal_kv_get(b"k", None, timeout=5)
    print("accepted")
except AuthenticationError:
    print("refused")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_without_token(home) -> dict:
    """This process's environment with no Ray token anywhere Ray looks (HOME is ``home``)."""
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS and k != "RAY_ADDRESS"}
    return {**env, "HOME": str(home), "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("address, words", [
    ("127.0.0.1:{port}", ["nothing is listening at 127.0.0.1:{port}", "ray start --head --port={port}"]),
    ("headnode", ["'headnode'", "HOST:PORT"]),
])
def test_an_address_that_cannot_be_joined_is_one_line_naming_the_fix(tmp_path, capsys, fresh_ray, address, words):
    from experiments.cli import main

    port = _free_port()
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(tiny_sweep(tmp_path / "out")))
    assert main(["sweep", str(f), "--quiet", "--address", address.format(port=port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archscale sweep: error: address: ")
    assert all(w.format(port=port) in err[0] for w in words), err[0]
    assert not ray.is_initialized()


def test_the_local_ray_keeps_token_auth_and_refuses_a_client_without_the_token(tmp_path, fresh_ray, monkeypatch):
    from ray._raylet import AuthenticationTokenLoader

    from experiments.sweep.ray_runtime import init_ray, probe_cluster

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # Ray's default, as a user has it
    assert init_ray(num_cpus=1) is True
    gcs = ray.get_runtime_context().gcs_address
    token = AuthenticationTokenLoader.instance().get_raw_token(ignore_auth_mode=True)
    client = _env_without_token(tmp_path)

    def ask(env) -> str:
        return subprocess.run([sys.executable, "-c", CLIENT, gcs], env=env, capture_output=True, text=True,
                              timeout=120).stdout.strip()

    assert ask(client) == "refused"
    assert ask({**client, "RAY_AUTH_TOKEN": token}) == "accepted"  # the same client with the token
    # archscale's own probe says what to do, in one line, in either case
    for env, words in ((client, "no token was found here"), ({**client, "RAY_AUTH_TOKEN": "0" * 64},
                                                              "refused the token from RAY_AUTH_TOKEN")):
        with monkeypatch.context() as m:
            for k in AUTH_VARS + ("HOME",):
                m.delenv(k, raising=False)
            for k, v in env.items():
                m.setenv(k, v)
            with pytest.raises(ArchScaleError, match=words) as e:
                probe_cluster(gcs)
        assert "~/.ray/auth_token" in str(e.value) and "\n" not in str(e.value)


def _end(pids, grace_s=10.0) -> None:
    """SIGTERM the processes ``pids``, then SIGKILL those still there after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace_s
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.2)


@pytest.mark.slow
def test_a_sweep_joins_a_token_cluster_started_as_the_readme_says(tmp_path):
    home, temp_dir, port = tmp_path / "home", ray_temp_dir(), _free_port()
    home.mkdir()
    env = {**_env_without_token(home), "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # the README's token step, then its head node
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=120)
    assert (home / ".ray" / "auth_token").is_file()
    try:
        subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false",
                        f"--temp-dir={temp_dir}", "--num-cpus=2"], env=env, check=True, capture_output=True,
                       timeout=300)
        assert ray_processes(temp_dir), "the head's processes are not where the test looks"
        out = tmp_path / "out"
        f = tmp_path / "sweep.yaml"
        f.write_text(yaml.safe_dump(tiny_sweep(out, widths=(0.5, 1.0))))
        sweep = [sys.executable, "-m", "experiments.cli", "sweep", str(f), "--quiet", "--address", f"127.0.0.1:{port}"]
        run = subprocess.run(sweep, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        trials, _ = load_results(out)
        assert len(trials) == 2 and (trials.status == "done").all() and (trials.epochs_done == 2).all()
        launch = next(e for e in read_events(out) if e["event"] == "sweep")
        assert launch["ray"].endswith(f":{port}")  # it ran on that cluster, not on a Ray of its own
        # the dry run joins the same cluster the same way (token included) to check placement there
        dry = subprocess.run(sweep + ["--dry-run", "--format", "json"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr[-3000:]
        assert json.loads(dry.stdout)["placement_warning"] is None, dry.stdout[-2000:]
        # without the token, or with another one: one line naming the fix, exit 2
        for extra, words in (({"HOME": str(tmp_path)}, "no token was found here"),
                             ({"RAY_AUTH_TOKEN": "0" * 64}, "refused the token from RAY_AUTH_TOKEN")):
            bad = subprocess.run(sweep + ["--output-dir", str(tmp_path / "bad")], cwd=ROOT, env={**env, **extra},
                                 capture_output=True, text=True, timeout=120)
            lines = bad.stderr.strip().splitlines()
            assert bad.returncode == 2 and len(lines) == 1 and words in lines[0], bad.stderr[-3000:]
    finally:
        _end(ray_processes(temp_dir))
    assert ray_processes(temp_dir) == []
