"""Local Ray: start a head node bound to 127.0.0.1, connect to a cluster, report nodes and resources.

``ssz cluster up`` runs ``ray start --head`` on loopback and remembers its address in the state folder;
``ssz cluster down`` stops it; ``status`` lists nodes and resources. Other commands call
:func:`connect`, which joins (in order) an explicit address, ``SSZ_RAY_ADDRESS``, the cluster started by
``ssz cluster up``, or else starts a private local Ray for the life of the process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tenacity
from pydantic import BaseModel

from cluster.state import state_dir
from serve.keys import write_private

# Outside Ray's default worker port range (10002-19999), which a GCS port inside would collide with.
DEFAULT_GCS_PORT = 26379
# Ray binds every listener to 127.0.0.1 when this is set to 0 and the node IP is loopback.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# `ray start` turns on Ray's token authentication (~/.ray/auth_token); a driver joining that head by
# address must say so before Ray is imported, or it sends no token and is refused. (Set for a private
# `ray.init()` instead, the same variable makes its GCS refuse its own driver, so it is only set to join.)
JOIN_ENV = {"RAY_AUTH_MODE": "token"}


class RayError(RuntimeError):
    """Ray could not be started or reached; the message says what to do."""


class NodeInfo(BaseModel):
    """One Ray node as ``ssz cluster status`` prints it."""

    node_id: str
    address: str
    alive: bool
    resources: dict[str, float]


class ClusterStatus(BaseModel):
    """Nodes and total resources of the cluster in use."""

    address: str | None
    running: bool
    nodes: list[NodeInfo] = []
    resources: dict[str, float] = {}
    error: str | None = None


def _addr_file() -> Path:
    return state_dir("ray") / "address"


def _ray_bin() -> str:
    cand = Path(sys.executable).with_name("ray")
    return str(cand) if cand.exists() else (shutil.which("ray") or "ray")


def _env() -> dict[str, str]:
    """The environment of `ray start`: Ray's loopback settings, and never the store's admin keys."""
    from cluster.store import ADMIN_ENV

    env = {k: v for k, v in os.environ.items() if k not in ADMIN_ENV}
    env.update(RAY_ENV)
    return env


def token_path() -> Path:
    """Ray's auth token file (``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``)."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def secure_token_file() -> Path:
    """Make sure Ray's auth token file exists and is owner-only (0600, folder 0700) before Ray writes or reads
    it: Ray itself writes it with the default umask (0644), readable by every local user."""
    import secrets

    from serve.keys import write_private

    p = token_path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if p.parent == Path.home() / ".ray":
        os.chmod(p.parent, 0o700)
    if not p.exists() or not p.read_text().strip():
        with contextlib.suppress(FileExistsError):
            write_private(p, secrets.token_hex(32).encode(), exclusive=not p.exists())
    os.chmod(p, 0o600)
    return p


def apply_env() -> None:
    """Set the Ray environment variables (loopback binding, no usage stats) in this process."""
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)


def known_address() -> str | None:
    """The address to join: ``SSZ_RAY_ADDRESS`` or the one ``ssz cluster up`` recorded."""
    env = os.environ.get("SSZ_RAY_ADDRESS")
    if env:
        return env
    f = _addr_file()
    return f.read_text().strip() if f.exists() else None


def up(port: int = DEFAULT_GCS_PORT, num_cpus: int | None = None, num_gpus: int | None = None) -> ClusterStatus:
    """Start a local Ray head on 127.0.0.1 (no-op when the recorded one still answers)."""
    addr = known_address()
    if addr:
        st = status(addr)
        if st.running:
            return st
    secure_token_file()
    cmd = [_ray_bin(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
           "--include-dashboard=false", "--disable-usage-stats"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        cmd.append(f"--num-gpus={num_gpus}")
    # Ray gives a starting raylet a fixed 30 s; a saturated machine can miss it: only that failure is tried again.
    for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(3), reraise=True,
                                     retry=tenacity.retry_if_exception(_slow_start)):
        with attempt:
            _start_head(cmd, port)
    address = f"127.0.0.1:{port}"
    secure_token_file()
    write_private(_addr_file(), address.encode())
    return status(address)


def _start_head(cmd: list[str], port: int) -> None:
    """Run ``ray start --head``; raises :class:`RayError` with Ray's own message when it fails."""
    before = {p.pid for p in _head_processes(f"127.0.0.1:{port}")}
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        # a head that timed out while starting leaves its GCS and agents behind, holding the port: stop them,
        # so that trying again works; never a head that was there before (another user's, on the same port)
        _stop([p for p in _head_processes(f"127.0.0.1:{port}") if p.pid not in before], 10.0)
        raise RayError(f"`ray start` failed (exit {res.returncode}): {res.stderr.strip()[-800:]}\n"
                       f"If port {port} is taken, start the head on another one with `ssz cluster up --port N` "
                       "(`ssz api up` and `ssz run` then join it).")


def _head_processes(address: str) -> list[Any]:
    import psutil

    port = address.rsplit(":", 1)[-1]
    marks = (address, f"--gcs_server_port={port}", f"--gcs-address={address}")
    procs = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if p.pid != os.getpid() and any(m in cmd for m in marks):
            procs.append(p)
    return procs


def _stop(procs: list[Any], timeout_s: float) -> None:
    """Terminate ``procs``, then kill the ones still alive after ``timeout_s``."""
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def down(timeout_s: float = 30.0) -> ClusterStatus:
    """Stop the local Ray head started by ``ssz cluster up`` and its workers (no-op when none).

    Only the processes of that head (found by its GCS address) are stopped, so another Ray on the same
    machine, such as a notebook's private instance, keeps running.
    """

    f = _addr_file()
    if f.exists():
        _stop(_head_processes(f.read_text().strip()), timeout_s)
        # `ray start` records the head for plain `ray.init()` calls; forget it as `ray stop` would.
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip() == f.read_text().strip():
            current.unlink(missing_ok=True)
        f.unlink(missing_ok=True)
    return ClusterStatus(address=None, running=False)


START_ATTEMPTS = 3
"""Tries to start a private Ray before giving up (each waits up to Ray's fixed 30 s for the raylet)."""


def _slow_start(e: BaseException) -> bool:
    """Whether ``ray.init`` failed only because its raylet registered too slowly (a loaded machine)."""
    return "timed out during startup" in str(e)


def connect(address: str | None = None, num_cpus: int | None = None, **kw: Any) -> str:
    """Join a Ray cluster (explicit, ``SSZ_RAY_ADDRESS``, or ``ssz cluster up``'s) or start a private one.

    Returns a short description of what was joined. Idempotent within a process. The store's admin keys
    (``SSZ_S3_ADMIN_*``) are moved out of this process's environment first, so no Ray process inherits them.
    """
    from cluster.store import stash_admin_env

    stash_admin_env()
    apply_env()
    addr = address or known_address()
    if addr:
        for k, v in JOIN_ENV.items():
            os.environ.setdefault(k, v)
    import ray

    if ray.is_initialized():
        return "already connected"
    if addr:
        try:
            ray.init(address=addr, logging_level="WARNING", log_to_driver=False, **kw)
        except Exception as e:
            raise RayError(f"cannot reach the Ray cluster at {addr}: {e}. Start one with `ssz cluster up` "
                           "or unset SSZ_RAY_ADDRESS to run a private local Ray.") from e
        return f"joined Ray at {addr}"
    # address="local" forces a new instance even when `ray start` left a cluster file behind. Ray gives its
    # raylet a fixed 30 s to register; on a machine whose cores are saturated that can pass, so the private
    # start is tried again (after a shutdown that removes the half-started processes).
    try:
        for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(START_ATTEMPTS), reraise=True,
                                         retry=tenacity.retry_if_exception(_slow_start),
                                         before_sleep=lambda _: ray.shutdown()):
            with attempt:
                ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                         num_cpus=num_cpus, logging_level="WARNING", log_to_driver=False, **kw)
    except Exception as e:
        ray.shutdown()
        if _slow_start(e):
            raise RayError(f"a private local Ray did not start: its raylet missed Ray's 30 s start-up deadline "
                           f"{START_ATTEMPTS} times (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
                           "cores). Let other jobs finish or stop them, then run again; or start a cluster once "
                           "with `ssz cluster up` and commands will join it.") from e
        raise RayError(f"a private local Ray did not start: {e}") from e
    if token_path().exists():
        os.chmod(token_path(), 0o600)  # a private Ray with token auth writes it world-readable
    return "started a private local Ray on 127.0.0.1"


def describe() -> ClusterStatus:
    """Nodes and resources of the cluster this process is connected to."""
    import ray

    nodes = [
        NodeInfo(node_id=n["NodeID"][:12], address=n["NodeManagerAddress"], alive=bool(n["Alive"]),
                 resources={k: float(v) for k, v in n["Resources"].items() if not k.startswith("node:")})
        for n in ray.nodes()
    ]
    total = {k: float(v) for k, v in ray.cluster_resources().items() if not k.startswith("node:")}
    return ClusterStatus(address=ray.get_runtime_context().gcs_address, running=True, nodes=nodes,
                         resources=total)


def status(address: str | None = None) -> ClusterStatus:
    """Connect briefly to the recorded (or given) cluster and describe it."""
    addr = address or known_address()
    if not addr:
        return ClusterStatus(address=None, running=False,
                             error="no cluster recorded: run `ssz cluster up` or set SSZ_RAY_ADDRESS")
    code = (
        "import ray,sys;from cluster.raycluster import describe;"
        f"ray.init(address={addr!r},logging_level='ERROR',log_to_driver=False);"
        "sys.stdout.write(describe().model_dump_json())"
    )
    res = subprocess.run([sys.executable, "-c", code], env={**_env(), **JOIN_ENV}, capture_output=True, text=True,
                         timeout=120)
    if res.returncode != 0:
        return ClusterStatus(address=addr, running=False, error=res.stderr.strip().splitlines()[-1:][0]
                             if res.stderr.strip() else f"exit {res.returncode}")
    return ClusterStatus.model_validate_json(res.stdout.strip().splitlines()[-1])
