"""Local Ray binds to loopback only; `ssz cluster up|status|down` start, report and stop a head."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys

import psutil
import pytest
import ray

from cluster import raycluster
from tests.conftest import free_port_block


def _ray_listeners() -> list[tuple[str, str]]:
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "ray" not in cmd and "raylet" not in (p.info.get("name") or ""):
            continue
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    out.append((p.info["name"], c.laddr.ip))
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
    assert all(_loopback(ip) for _, ip in listeners), listeners
    st = raycluster.describe()
    assert st.running and st.resources["CPU"] == 2
    assert [n.address for n in st.nodes] == ["127.0.0.1"]


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
