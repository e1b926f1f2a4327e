"""The embedded S3 store: real SeaweedFS server, buckets, versioning, object lock, clear errors."""

from __future__ import annotations

import io
import socket
import time

import pytest
from minio.error import S3Error
from pydantic import SecretStr

from cluster import store
from tests.conftest import free_port_block
from twin.objectstore import EVIDENCE_BUCKET, MODELS_BUCKET, TWIN_BUCKET, S3Settings, StoreError, connect


def test_buckets_versioning_and_lock(s3_store):
    st = store.status()
    assert st.running and st.kind == "embedded-seaweedfs"
    info = {b.name: b for b in st.buckets}
    assert {TWIN_BUCKET, EVIDENCE_BUCKET, MODELS_BUCKET} <= set(info)
    assert info[TWIN_BUCKET].versioning == "Enabled"
    assert info[EVIDENCE_BUCKET].object_lock == "COMPLIANCE"
    assert info[EVIDENCE_BUCKET].retention_days == store.DEFAULT_RETENTION_DAYS
    assert st.endpoint.startswith("127.0.0.1:")
    assert st.access_key == store.credentials().access_key != store.admin_credentials().access_key


def test_twin_bucket_keeps_versions(s3_store):
    v1 = s3_store.put_bytes(TWIN_BUCKET, "tests/versioned.txt", b"first")
    v2 = s3_store.put_bytes(TWIN_BUCKET, "tests/versioned.txt", b"second")
    assert v1 and v2 and v1 != v2
    assert s3_store.get_bytes(TWIN_BUCKET, "tests/versioned.txt") == b"second"
    assert s3_store.get_bytes(TWIN_BUCKET, "tests/versioned.txt", version_id=v1) == b"first"


def _delete_version(store_: object, key: str, version: str, bypass: bool) -> None:
    headers = {"x-amz-bypass-governance-retention": "true"} if bypass else {}
    store_.client._execute("DELETE", EVIDENCE_BUCKET, key, query_params={"versionId": version}, headers=headers)


@pytest.mark.parametrize("bypass", [False, True])
def test_locked_evidence_cannot_be_deleted_by_anyone(s3_store, bypass):
    """COMPLIANCE: neither the platform user nor the admin deletes a locked version, with or without the bypass."""
    vid = s3_store.put_bytes(EVIDENCE_BUCKET, "tests/crop.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
    admin = connect(store.local_admin_settings())
    for who in (s3_store, admin):
        with pytest.raises(S3Error) as info:
            _delete_version(who, "tests/crop.jpg", vid, bypass)
        assert info.value.code == "AccessDenied"
    assert s3_store.get_bytes(EVIDENCE_BUCKET, "tests/crop.jpg", version_id=vid) == b"\xff\xd8jpeg"


def test_the_platform_user_cannot_touch_bucket_settings(s3_store):
    from minio.commonconfig import GOVERNANCE
    from minio.objectlockconfig import DAYS, ObjectLockConfig
    from minio.versioningconfig import SUSPENDED, VersioningConfig

    c = s3_store.client
    for call in (lambda: c.make_bucket("ssz-intruder"), lambda: c.remove_bucket(MODELS_BUCKET),
                 lambda: c.set_object_lock_config(EVIDENCE_BUCKET, ObjectLockConfig(GOVERNANCE, 1, DAYS)),
                 lambda: c.set_bucket_versioning(EVIDENCE_BUCKET, VersioningConfig(SUSPENDED))):
        with pytest.raises(S3Error) as info:
            call()
        assert info.value.code in {"AccessDenied", "InvalidBucketState"}
    info = {b.name: b for b in store.status().buckets}
    assert info[EVIDENCE_BUCKET].object_lock == "COMPLIANCE" and info[EVIDENCE_BUCKET].versioning == "Enabled"
    # SeaweedFS maps PutBucketVersioning to its Write action, so the platform user can suspend versioning of an
    # unlocked bucket (MinIO's policy in infra/terraform denies it): `ssz store up` turns it back on.
    c.set_bucket_versioning(TWIN_BUCKET, VersioningConfig(SUSPENDED))
    store.up()
    assert c.get_bucket_versioning(TWIN_BUCKET).status == "Enabled"


def test_wrong_credentials_are_refused_clearly(s3_store):
    good = s3_store.settings
    bad = good.model_copy(update={"secret_key": SecretStr("not-the-secret")})
    with pytest.raises(StoreError, match="refused the credentials"):
        connect(bad)
    stranger = good.model_copy(update={"access_key": "NOBODY"})
    with pytest.raises(StoreError, match="SSZ_S3_ACCESS_KEY"):
        connect(stranger).client.put_object(TWIN_BUCKET, "x", io.BytesIO(b"x"), 1)


def test_unreachable_store_fails_fast_with_advice():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=r"unreachable.*ssz store up"):
        connect(S3Settings(endpoint=f"127.0.0.1:{port}", access_key="a", secret_key=SecretStr("b"), timeout_s=2))
    assert time.monotonic() - t0 < 15


def test_up_down_status_are_idempotent_and_never_lower_retention(tmp_path, monkeypatch):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    assert store.status().running is False
    assert store.down().running is False  # down when nothing runs is a no-op
    port = free_port_block()
    first = store.up(port=port, evidence_retention_days=40)
    assert first.running and first.pid
    # another port while it runs is refused, and the recorded port (where it really listens) stays
    with pytest.raises(StoreError, match=rf"already runs on port {port}, not {port + 20}.*ssz store down"):
        store.up(port=port + 20)
    monkeypatch.setenv("SSZ_STORE_PORT", str(port + 20))
    with pytest.raises(StoreError, match=rf"already runs on port {port}, not {port + 20}"):
        store.up()
    monkeypatch.delenv("SSZ_STORE_PORT")
    assert store.credentials().port == port and store.status().running
    assert first.notes == ["evidence retention set to COMPLIANCE 40 days (was none)"]
    again = store.up(evidence_retention_days=7)  # a later, shorter setting never lowers the lock
    assert again.pid == first.pid and again.running
    assert "kept at COMPLIANCE 40 days" in again.notes[0]
    monkeypatch.setenv("SSZ_EVIDENCE_RETENTION_DAYS", "1")
    assert "kept at COMPLIANCE 40 days" in store.up().notes[0]
    info = {b.name: b for b in store.status().buckets}
    assert (info[EVIDENCE_BUCKET].object_lock, info[EVIDENCE_BUCKET].retention_days) == ("COMPLIANCE", 40)
    assert "set to COMPLIANCE 60 days (was COMPLIANCE 40 days)" in store.up(evidence_retention_days=60).notes[0]
    assert {b.name for b in again.buckets} >= {TWIN_BUCKET, EVIDENCE_BUCKET, MODELS_BUCKET}
    for f in ("credentials.json", "admin.json", "s3.json", "weed.pid", "weed.log"):
        assert oct((tmp_path / "home" / "store" / f).stat().st_mode & 0o777) == "0o600", f
    assert store.down().running is False
    assert store.down().running is False
    assert store.status().pid is None


def test_a_legacy_single_identity_store_gets_a_platform_user(tmp_path, monkeypatch):
    """A state folder from before the split: its only key becomes the admin, the platform gets its own."""
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    d = tmp_path / "home" / "store"
    d.mkdir(parents=True)
    legacy = store.StoreCredentials(access_key="SSZOLD", secret_key="old-secret-0123456789", port=free_port_block())
    (d / "credentials.json").write_text(legacy.model_dump_json())
    assert store.admin_credentials().access_key == "SSZOLD"
    assert store.credentials().access_key != "SSZOLD" and store.credentials().port == legacy.port
    try:
        st = store.up(evidence_retention_days=3)
        assert st.running and st.access_key == store.credentials().access_key
    finally:
        store.down()


def test_bad_retention_setting_is_refused(monkeypatch):
    monkeypatch.setenv("SSZ_EVIDENCE_RETENTION_DAYS", "a year")
    with pytest.raises(StoreError, match="whole number of days"):
        store.StoreConfig.from_env()


def test_external_store_from_environment(s3_store, monkeypatch):
    s = s3_store.settings
    monkeypatch.setenv("SSZ_S3_ENDPOINT", f"http://{s.endpoint}")
    monkeypatch.setenv("SSZ_S3_ACCESS_KEY", s.access_key)
    monkeypatch.setenv("SSZ_S3_SECRET_KEY", s.secret_key.get_secret_value())
    st = store.status()
    assert st.kind == "external" and st.running and st.endpoint == s.endpoint
    monkeypatch.delenv("SSZ_S3_SECRET_KEY")
    with pytest.raises(StoreError, match="SSZ_S3_SECRET_KEY"):
        store.settings()


@pytest.mark.parametrize("days", [0, -3, 36501])
def test_retention_days_out_of_range_are_refused_clearly(days, monkeypatch):
    with pytest.raises(StoreError, match=rf"--retention-days {days} is out of range: .* 1 to 36500 days"):
        store.StoreConfig.from_env(days)
    monkeypatch.setenv("SSZ_EVIDENCE_RETENTION_DAYS", "0")
    with pytest.raises(StoreError, match="SSZ_EVIDENCE_RETENTION_DAYS 0 is out of range"):
        store.StoreConfig.from_env()


@pytest.mark.parametrize(("env", "port", "message"), [
    ("abc", None, "SSZ_STORE_PORT='abc' is not a port number"),
    ("70000", None, "SSZ_STORE_PORT 70000 is not a usable store port: give a port from 1 to 65521"),
    (None, 0, "--port 0 is not a usable store port"),
    (None, 65530, "--port 65530 is not a usable store port"),
])
def test_bad_store_port_is_refused_and_never_recorded(env, port, message, tmp_path, monkeypatch):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    if env is not None:
        monkeypatch.setenv("SSZ_STORE_PORT", env)
    with pytest.raises(StoreError, match=message):
        store.up(port=port)
    monkeypatch.delenv("SSZ_STORE_PORT", raising=False)
    assert store.credentials().port == store.DEFAULT_PORT  # nothing bad was written down
