"""Local Ray binds to loopback only; `ssz cluster up|status|down` start, report and stop a head."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest
import ray

from cluster import raycluster
from tests.conftest import free_port_block


def _ray_listeners() -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening socket of this test session's Ray: the driver and its
    descendants (GCS, raylet, workers, Serve replicas), not other Ray instances on the machine."""
    me = psutil.Process(os.getpid())
    out = []
    for p in [me, *me.children(recursive=True)]:
        try:
            name = " ".join(p.cmdline()[:1]) or p.name()
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    out.append((name[:60], c.laddr.ip, c.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def test_local_ray_binds_loopback_only(ray_cluster):
    listeners = _ray_listeners()
    assert listeners, "expected Ray processes listening"
    assert all(_loopback(ip) for _, ip, _ in listeners), listeners
    st = raycluster.describe()
    assert st.running and st.resources["CPU"] == 2
    assert [n.address for n in st.nodes] == ["127.0.0.1"]


def test_serve_replicas_listen_on_loopback_only(ssz_api):
    """The face, plate and ingress replicas' inter-deployment gRPC servers bind 127.0.0.1 (serve.listeners), as do
    the HTTP proxy and every other Ray listener, while the application serves."""
    import httpx

    st, _ = ssz_api
    assert httpx.get(f"{st.url}/v1/health", timeout=60).status_code == 200
    listeners = _ray_listeners()
    replicas = [x for x in listeners if "ServeReplica" in x[0]]
    assert len({x[0] for x in replicas}) >= 3, listeners  # face, plate, ingress
    bad = [x for x in listeners if not _loopback(x[1])]
    assert not bad, bad


def test_ray_token_file_is_owner_only(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "ray" / "auth_token"))
    p = raycluster.secure_token_file()
    assert oct(p.stat().st_mode & 0o777) == "0o600" and len(p.read_text()) == 64
    p.chmod(0o644)  # as Ray itself leaves it
    token = p.read_text()
    assert raycluster.secure_token_file().read_text() == token
    assert oct(p.stat().st_mode & 0o777) == "0o600"


def test_admin_keys_never_reach_ray(monkeypatch):
    from cluster import store

    monkeypatch.setenv("SSZ_S3_ADMIN_ACCESS_KEY", "ROOT")
    monkeypatch.setenv("SSZ_S3_ADMIN_SECRET_KEY", "root-secret-0123456789")
    assert "SSZ_S3_ADMIN_SECRET_KEY" not in raycluster._env()  # what `ray start` gets
    store.stash_admin_env()  # what connect() does before Ray starts
    assert "SSZ_S3_ADMIN_SECRET_KEY" not in os.environ
    monkeypatch.setenv("SSZ_S3_ENDPOINT", "127.0.0.1:1")
    monkeypatch.setenv("SSZ_S3_ACCESS_KEY", "PLATFORM")
    monkeypatch.setenv("SSZ_S3_SECRET_KEY", "platform-secret-0123")
    adm = store.admin_settings()
    assert adm is not None and adm.access_key == "ROOT"  # still usable by `ssz store up` in this process
    store._stashed_admin.clear()


def test_ray_tasks_run(ray_cluster):
    @ray.remote
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]


@pytest.mark.slow
def test_cluster_up_status_down(tmp_path, monkeypatch, ray_cluster):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path))
    monkeypatch.delenv("SSZ_RAY_ADDRESS", raising=False)
    assert raycluster.status().running is False
    # The default port when it is free (a default inside Ray's worker port range once broke `ray start`).
    with socket.socket() as sock:
        default_free = sock.connect_ex(("127.0.0.1", raycluster.DEFAULT_GCS_PORT)) != 0
    port = raycluster.DEFAULT_GCS_PORT if default_free else free_port_block(size=2)
    try:
        st = raycluster.up(port=port, num_cpus=1)
        assert st.running, st.error
        assert st.address == f"127.0.0.1:{port}"
        assert len(st.nodes) == 1 and st.nodes[0].address == "127.0.0.1"
        assert st.resources["CPU"] == 1
        assert raycluster.up(port=port).address == st.address  # idempotent
        # A fresh CLI process (no Ray variables inherited from this test process) joins it: the package sets
        # loopback binding and token auth itself.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        res = subprocess.run([sys.executable, "-m", "cluster.cli", "cluster", "status", "--json"], env=env,
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout)["nodes"][0]["address"] == "127.0.0.1"
    finally:
        assert raycluster.down().running is False
    assert raycluster.status().running is False
    assert raycluster.down().running is False
    # The test session's own Ray is untouched by `down`.
    assert ray.is_initialized() and raycluster.describe().running


def test_a_failed_head_start_never_stops_a_head_that_was_already_on_the_port() -> None:
    """Another user's head on the same port (here a process with its GCS flags) survives our failed start."""
    port = free_port_block(1)
    # it sleeps far longer than the test can take (killed below): once, in a full suite run on the 2-core machine,
    # a 60 s sleep ended on its own (exit 0, not a signal) before the check, so the check could not tell
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", f"--gcs_server_port={port}"])
    try:
        t0 = time.monotonic()
        with pytest.raises(raycluster.RayError, match="ssz cluster up --port N"):
            raycluster._start_head([sys.executable, "-c", "raise SystemExit(1)"], port)
        assert other.poll() is None, (other.returncode, time.monotonic() - t0)  # still running, not stopped
    finally:
        other.kill()
        other.wait()


def test_a_private_ray_that_cannot_start_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's raylet missing its 30 s start-up deadline on a saturated machine: tried again, then a RayError that
    says what to do (every command reports it as an error line, never a traceback)."""
    from cluster.cli.common import USER_ERRORS

    calls = []

    def slow_init(**_: object) -> None:
        calls.append(1)
        raise Exception("The current node timed out during startup. This could happen because some of the raylet "
                        "failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(raycluster, "known_address", lambda: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", slow_init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)  # the session's own Ray stays up
    with pytest.raises(raycluster.RayError, match=r"missed Ray's 30 s start-up deadline 3 times \(load average"):
        raycluster.connect()
    assert len(calls) == raycluster.START_ATTEMPTS == 3
    monkeypatch.setattr(ray, "init", lambda **_: (_ for _ in ()).throw(OSError("port 6379 in use")))
    with pytest.raises(raycluster.RayError, match="a private local Ray did not start: port 6379 in use"):
        raycluster.connect()
    assert raycluster.RayError in USER_ERRORS
    import typer

    from cluster.cli.common import connect_ray

    with pytest.raises(typer.Exit) as ex:  # what a command does with it: an error line, exit code 2
        connect_ray()
    assert ex.value.exit_code == 2


@pytest.mark.parametrize(("host", "wildcard"), [
    ("", True), ("[::]", True), ("::", True), ("[0:0:0:0:0:0:0:0]", True), ("0.0.0.0", True),
    ("127.0.0.1", False), ("[::1]", False), ("10.0.3.7", False), ("localhost", False), ("[fe80::1]", False),
])
def test_replica_grpc_wildcard_hosts_are_told_from_specific_ones(host, wildcard):
    """serve.listeners.is_wildcard_host: every spelling of 'all interfaces' is rewritten to the node IP; a specific
    address or a name is left as Ray gave it."""
    from serve.listeners import is_wildcard_host

    assert is_wildcard_host(host) is wildcard
