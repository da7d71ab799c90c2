"""Every contact with Ray itself: start a local Ray or join a cluster (token authentication
included), read its nodes, check placement, and shut it down with whatever it leaves behind.

``init_ray`` starts a local Ray or joins ``--address``/RAY_ADDRESS (``join_ray``); ``LocalRay``
ends a launch's Ray however the driver ends (with experiments.sweep.session_guard);
``cluster_nodes`` reads a cluster's resources for the dry run through the same join.


Joining (``--address HOST:PORT`` or RAY_ADDRESS): ``ray start --head`` turns Ray's token
authentication on when the head has a token (``ray get-auth-token --generate`` writes one to
~/.ray/auth_token, and so does every local Ray). A driver then joins only in token mode
(RAY_AUTH_MODE=token) with the same token, which Ray looks for in RAY_AUTH_TOKEN, the file named
by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token, in that order. ``join_ray`` sets the mode itself
when the cluster asks for a token and one is there. Before ``ray.init`` it probes the address
from a child process (so Ray's retry warnings stay out of sight): nothing listening, no token, a
wrong token or no answer is one ``ArchScaleError`` line naming the fix, within about ten seconds.

A local Ray (experiments.sweep.init_ray without an address) keeps Ray's default for a new
cluster: token authentication on.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

from scaling.errors import ArchScaleError

from .session_guard import PROJECT_ROOT, RECORD, end_leftover_session, end_session, record_session, start_guard

PROBE_TIMEOUT_S = 10.0  # the whole probe: connect, ask the GCS, maybe again with the token
CONNECT_TIMEOUT_S = 3.0


def join_ray(address: str, **init_kwargs) -> None:
    """Connect this driver to the cluster at ``address`` after ``probe_cluster`` found it answers,
    in token mode when the cluster asked for the token."""
    import ray

    if "://" not in address:  # ray:// is Ray Client, with its own server and checks
        if probe_cluster(address)["token"]:
            enable_token_mode()
    ray.init(address=address, **init_kwargs)


def enable_token_mode() -> None:
    """RAY_AUTH_MODE=token for this process and the processes it starts (as ``ray start`` does
    when it finds a token); Ray reads its configuration again so the change takes effect."""
    try:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
        _enable_token_auth()
    except ImportError:  # the helper moved: do what it does
        from ray._raylet import Config
        os.environ["RAY_AUTH_MODE"] = "token"
        Config.initialize("")


def token_source() -> str | None:
    """Where Ray would read this machine's cluster token from, in Ray's order of precedence, or
    None when there is none."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        path = os.environ["RAY_AUTH_TOKEN_PATH"]
        return f"RAY_AUTH_TOKEN_PATH={path}" if os.path.isfile(path) else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def probe_cluster(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
    """Check that a Ray cluster answers at ``address`` (HOST:PORT or auto) and accepts this
    machine's credentials, before ``ray.init`` would retry for a minute. Returns
    {"address", "token": whether the cluster asked for the token}; raises ArchScaleError("address",
    ...) naming the fix otherwise."""
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError:
            raise ArchScaleError("address", f"nothing is listening at {address}: start the cluster's head with "
                                            f"'ray start --head --port={port}', or give its address as "
                                            f"--address HOST:PORT (or RAY_ADDRESS)") from None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(PROJECT_ROOT),
                                                                      os.environ.get("PYTHONPATH"))))}
    try:
        done = subprocess.run([sys.executable, "-m", "experiments.sweep.ray_runtime", address], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        answer = {"problem": "no answer"}
    except (ValueError, IndexError):  # the child died before answering
        answer = {"problem": "error", "detail": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    if "problem" in answer:
        raise ArchScaleError("address", _fix(answer, address, timeout_s))
    return answer


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ArchScaleError("address", f"{address!r}: give the head node's HOST:PORT (e.g. 10.0.0.1:6379), "
                                        f"auto, or a ray:// address")
    return host.strip("[]"), int(port)


def _fix(answer: dict, address: str, timeout_s: float) -> str:
    """The one line for a failed probe: what is wrong and what to do."""
    copy = ("copy the head node's ~/.ray/auth_token to ~/.ray/auth_token on this machine (or set "
            "RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to a file holding it)")
    problem = answer["problem"]
    if problem == "no token":
        return f"the Ray cluster at {address} uses token authentication and no token was found here: {copy}"
    if problem == "auth disabled":
        return (f"the Ray cluster at {address} uses token authentication but RAY_AUTH_MODE is "
                f"{os.environ.get('RAY_AUTH_MODE')!r} here: unset RAY_AUTH_MODE so the cluster's token is sent")
    if problem == "wrong token":
        return (f"the Ray cluster at {address} refused the token from {token_source() or 'this machine'}: "
                f"{copy}; 'ray get-auth-token' on the head prints it")
    if problem == "no answer":
        return (f"no Ray cluster answered at {address} within {timeout_s:.0f} s: give the GCS port of "
                f"'ray start --head' (6379 unless its --port said otherwise)")
    return f"could not join the Ray cluster at {address}: {answer.get('detail', problem)}"


def _probe_child(address: str) -> dict:
    """In a child process: ask the GCS at ``address`` for its cluster id, without the token first
    (unless RAY_AUTH_MODE says otherwise), then with it if the cluster refused. Returns
    {"address", "token"} or {"problem", "detail"}."""
    import ray  # noqa: F401  (sets up Ray's import paths)
    from ray._private.services import canonicalize_bootstrap_address
    from ray._raylet import AuthenticationTokenLoader, GcsClient
    from ray.exceptions import AuthenticationError

    gcs = canonicalize_bootstrap_address(address)
    if gcs is None:
        return {"problem": "error", "detail": "no local Ray cluster found (address auto): start one with "
                                              "'ray start --head', or give HOST:PORT"}

    def refused() -> bool:
        try:
            GcsClient(address=gcs).internal_kv_get(b"archscale-probe", None, timeout=CONNECT_TIMEOUT_S)
        except AuthenticationError:
            return True
        return False

    mode = (os.environ.get("RAY_AUTH_MODE") or "").lower()
    has_token = AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True)
    if mode != "token":
        if not refused():
            return {"address": gcs, "token": False}
        if mode:
            return {"problem": "auth disabled"}
        if not has_token:
            return {"problem": "no token"}
        enable_token_mode()
    elif not has_token:
        return {"problem": "no token"}
    return {"problem": "wrong token"} if refused() else {"address": gcs, "token": True}


#: Where ``run_sweep(dashboard=True)`` serves Ray's dashboard (loopback only: reach it over SSH).
DASHBOARD_HOST, DASHBOARD_PORT = "127.0.0.1", 8265


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None,
             dashboard: bool = False) -> bool:
    """Join ``address`` (or RAY_ADDRESS; with the cluster's token when it asks for one, see
    experiments.sweep.ray_runtime.join_ray), or start a local Ray bound to loopback with Ray's token
    authentication on and the dashboard off (on, at DASHBOARD_HOST:DASHBOARD_PORT, with
    ``dashboard``). Returns True when this call initialised Ray (started it, or connected to the
    cluster), which the caller then shuts down."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's legacy output is silent at verbose=0
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = dict(include_dashboard=dashboard, log_to_driver=False, logging_level=logging.ERROR)
    if address:
        join_ray(address, **kwargs)
    else:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, _node_ip_address="127.0.0.1",
                 dashboard_host=DASHBOARD_HOST, **({"dashboard_port": DASHBOARD_PORT} if dashboard else {}), **kwargs)
    return True



def cluster_nodes(address: str | None) -> tuple[dict, list[dict]]:
    """(total resources, each live node's) of the Ray cluster at ``address``, joined as a sweep
    joins it (``join_ray``: token authentication included) and left again; this process's Ray
    when one is initialised."""
    import ray

    if ray.is_initialized():
        return ray.cluster_resources(), live_nodes()
    join_ray(address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        return ray.cluster_resources(), live_nodes()
    finally:
        ray.shutdown()


def live_nodes() -> list[dict]:
    """Each live node's resources in this process's Ray."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def check_dashboard(address: str | None) -> None:
    """Refuse ``--dashboard`` where it cannot start: joining a cluster (the head node runs the
    dashboard) or without Ray's dashboard packages (``ray[default]``). One-line ArchScaleError."""
    if address:
        raise ArchScaleError("dashboard", "a cluster's dashboard runs on its head node: start it there with "
                                          "'ray start --head --include-dashboard=true --dashboard-host=127.0.0.1'")
    try:
        import ray.dashboard.optional_deps  # noqa: F401 - what Ray itself checks before starting it
    except ImportError as e:
        raise ArchScaleError("dashboard", f"Ray's dashboard needs the packages of ray[default] ({e}): "
                                          f"pip install 'ray[default]'") from None



class LocalRay:
    """The Ray of one sweep launch, as far as ending its processes goes (see the module docstring)."""

    def __init__(self, output_dir: str | Path, started: bool):
        """End a leftover of an earlier launch on ``output_dir``. ``started``: this launch
        initialised Ray (and so shuts it down); when it started a local Ray rather than joining a
        cluster, record that Ray and start its guard."""
        self.output_dir, self.started, self.session_dir, self.guard = Path(output_dir), started, None, None
        end_leftover_session(output_dir)
        if started and _local_head() is not None:
            try:
                self.session_dir = _local_head().get_session_dir_path()
                self.guard = start_guard(self.session_dir)
                record_session(output_dir, self.session_dir, self.guard.pid)
            except BaseException:
                self.shutdown()
                raise

    def shutdown(self) -> None:
        """Shut down (or disconnect from) the Ray this launch initialised, and end whatever a local
        one leaves behind; nothing when the launch found Ray running."""
        if not self.started:
            return
        import ray

        ray.shutdown()
        if self.session_dir is not None:
            end_session(self.session_dir)
        if self.guard is not None:
            self.guard.stdin.close()  # the guard finds nothing left and exits
            self.guard.wait()
        (self.output_dir / RECORD).unlink(missing_ok=True)


def _local_head():
    """The Ray node this driver started itself (ray.init without an address: the head of a local
    Ray), or None when it joined a cluster, whose processes are not this launch's to end."""
    import ray

    node = ray._private.worker._global_node
    return node if node is not None and node.head else None


if __name__ == "__main__":  # the probe's child process: one JSON line on stdout
    try:
        result = _probe_child(sys.argv[1])
    except Exception as e:  # noqa: BLE001  (whatever Ray raised, as one line for the parent)
        result = {"problem": "error", "detail": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    print(json.dumps(result), flush=True)
