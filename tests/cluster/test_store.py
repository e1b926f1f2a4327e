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
    assert info[EVIDENCE_BUCKET].object_lock == "GOVERNANCE"
    assert info[EVIDENCE_BUCKET].retention_days == 30
    assert st.endpoint.startswith("127.0.0.1:")


def test_twin_bucket_keeps_versions(s3_store):
    v1 = s3_store.put_bytes(TWIN_BUCKET, "tests/versioned.txt", b"first")
    v2 = s3_store.put_bytes(TWIN_BUCKET, "tests/versioned.txt", b"second")
    assert v1 and v2 and v1 != v2
    assert s3_store.get_bytes(TWIN_BUCKET, "tests/versioned.txt") == b"second"
    assert s3_store.get_bytes(TWIN_BUCKET, "tests/versioned.txt", version_id=v1) == b"first"


def test_locked_evidence_cannot_be_deleted(s3_store):
    vid = s3_store.put_bytes(EVIDENCE_BUCKET, "tests/crop.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
    with pytest.raises(S3Error) as info:
        s3_store.client.remove_object(EVIDENCE_BUCKET, "tests/crop.jpg", version_id=vid)
    assert info.value.code == "AccessDenied"
    assert s3_store.get_bytes(EVIDENCE_BUCKET, "tests/crop.jpg", version_id=vid) == b"\xff\xd8jpeg"


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


def test_up_down_status_are_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    assert store.status().running is False
    assert store.down().running is False  # down when nothing runs is a no-op
    first = store.up(port=free_port_block())
    assert first.running and first.pid
    again = store.up()
    assert again.pid == first.pid and again.running
    assert {b.name for b in again.buckets} >= {TWIN_BUCKET, EVIDENCE_BUCKET, MODELS_BUCKET}
    creds = (tmp_path / "home" / "store" / "credentials.json")
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    assert store.down().running is False
    assert store.down().running is False
    assert store.status().pid is None


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
