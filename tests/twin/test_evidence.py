"""Evidence on the real embedded store: written once, served as first written, every rewrite named.

The platform's S3 user (what every actor and replica holds) can still put a newer version or a delete marker
over an evidence key (the server cannot refuse a write without ``If-None-Match``): these tests do exactly
that and check that the product serves the original and the check names the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid

import numpy as np
import pytest

from actors.alerts import AlertSinkConfig, AlertSinkCore, CameraPlace
from serve.alerts_api import original_evidence
from serve.imaging import encode_jpeg
from twin.evidence import read_original, rewritten
from twin.objectstore import EVIDENCE_BUCKET, TWIN_BUCKET, ObjectExists, StoreError

CROP = np.random.default_rng(1).integers(0, 255, (40, 32, 3), dtype=np.uint8)


def _crop_alert(tmp_path, store, forge: bytes | None = None) -> tuple[AlertSinkCore, str, bytes]:
    """One alert through the sink (the product path); returns the sink, its crop's key and the stored bytes.
    ``forge``: the platform user writes these bytes under the alert's (predictable) crop key first."""
    from twin.schemas import alert_id

    city = f"e{uuid.uuid4().hex[:8]}"
    cfg = AlertSinkConfig(city=city, audit_path=str(tmp_path / "alerts-audit.jsonl"),
                          cameras={"cam-1": CameraPlace(lon=100.47, lat=7.0, edge_u=1, edge_v=2, edge_key=0)})
    sink = AlertSinkCore(cfg, store=store)
    ts = time.time()
    aid = alert_id("cam-1", "face", "W-1", "t1")
    if forge is not None:
        store.put_bytes(EVIDENCE_BUCKET, f"alerts/{city}/{dt.datetime.fromtimestamp(ts, dt.UTC):%Y-%m-%d}/{aid}.jpg",
                        forge, content_type="image/jpeg")
    ev = {"type": "alert-decision", "shard_id": "s0", "alert_id": aid,
          "decision": "alert", "camera_id": "cam-1", "track_id": "t1", "subject_id": "W-1", "label": "face",
          "ts": ts, "first_ts": ts - 1, "score": 0.9, "n_matches": 3, "reason": "3 matching frames", "crop": CROP}
    assert sink.submit([ev]) == {"new": 1, "duplicates": 0}
    [rec] = sink.alerts()
    key = rec["evidence_key"]
    return sink, key, store.get_bytes(EVIDENCE_BUCKET, key)


def _versions(store, key: str) -> list:
    return store.key_versions(EVIDENCE_BUCKET, key)


def test_put_new_refuses_a_second_write_and_keeps_the_first(s3_store):
    key = f"test-evidence/{uuid.uuid4().hex}.jpg"
    vid = s3_store.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg")
    with pytest.raises(ObjectExists, match=f"{EVIDENCE_BUCKET}/{key} already holds other bytes"):
        s3_store.put_new(EVIDENCE_BUCKET, key, b"forged", "image/jpeg")
    # the same bytes again (a retry whose first reply was lost: the client retries on 5xx) is the same write
    assert s3_store.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg") == vid
    assert [o.version_id for o in _versions(s3_store, key)] == [vid]
    assert s3_store.get_bytes(EVIDENCE_BUCKET, key) == b"original"
    assert list(rewritten(s3_store, prefix=key)) == []


def test_a_redelivered_alert_adds_no_version_over_its_crop(tmp_path, s3_store):
    sink, key, original = _crop_alert(tmp_path, s3_store)
    rec = sink.get(sink.alerts()[0]["alert_id"])
    again = sink._evidence(rec["alert_id"], sink.alerts()[0]["ts"], CROP)
    assert again == {"evidence_key": key, "evidence_version": rec["evidence_version"],
                     "evidence_sha256": hashlib.sha256(original).hexdigest()}
    assert [o.version_id for o in _versions(s3_store, key)] == [rec["evidence_version"]]
    assert rec["evidence_sha256"] == hashlib.sha256(original).hexdigest()
    assert sink.stats.evidence_conflicts == 0


def test_a_crop_key_written_first_by_someone_else_is_not_taken_as_the_crop(tmp_path, s3_store, caplog):
    sink, key, original = _crop_alert(tmp_path, s3_store, forge=b"\xff\xd8forged-first")
    rec = sink.get(sink.alerts()[0]["alert_id"])
    forged_key = rec["evidence_conflict"]
    assert forged_key.endswith(f"/{rec['alert_id']}.jpg") and key != forged_key
    assert key == f"{forged_key.removesuffix('.jpg')}.{hashlib.sha256(original).hexdigest()[:16]}.jpg"
    assert original == encode_jpeg(CROP, sink.cfg.jpeg_quality) and rec["evidence_sha256"] == hashlib.sha256(
        original).hexdigest()
    assert original_evidence(s3_store, key, rec["evidence_version"]) == original
    assert sink.stats.evidence_conflicts == 1
    assert any(r.levelname == "ERROR" and forged_key in r.getMessage() for r in caplog.records)
    [raised] = [e for e in sink.audit.events() if e.action == "alert.raised"]
    assert raised.details["evidence_conflict"] == forged_key


def test_a_forged_version_over_a_crop_is_not_served_and_is_named(tmp_path, s3_store):
    _, key, original = _crop_alert(tmp_path, s3_store)
    first = _versions(s3_store, key)[0].version_id
    # The hole: the platform user's plain PUT (no If-None-Match) is accepted; a plain GET returns the forgery.
    s3_store.put_bytes(EVIDENCE_BUCKET, key, b"\xff\xd8forged", content_type="image/jpeg")
    assert s3_store.get_bytes(EVIDENCE_BUCKET, key) == b"\xff\xd8forged"
    # (a) the product serves the original bytes
    assert original_evidence(s3_store, key) == original == read_original(s3_store, key)
    # (b) the check names the key, its two versions (the original first) and their times
    city_prefix = key.rsplit("/", 2)[0] + "/"
    [found] = list(rewritten(s3_store, prefix=city_prefix))
    assert found.key == key and len(found.versions) == 2
    assert found.versions[0].version_id == first and found.versions[0].size == len(original)
    assert found.versions[1].size == len(b"\xff\xd8forged") and not found.versions[1].delete_marker
    line = found.describe()
    assert line.startswith(f"{key}: 2 versions: {first} {len(original)} B at ") and "(original)" in line


def test_a_delete_marker_over_a_crop_is_not_served_and_is_named(tmp_path, s3_store):
    _, key, original = _crop_alert(tmp_path, s3_store)
    s3_store.client.remove_object(EVIDENCE_BUCKET, key)  # no version id: a delete marker, which the lock allows
    assert original_evidence(s3_store, key) == original
    [found] = list(rewritten(s3_store, prefix=key))
    assert [v.delete_marker for v in found.versions] == [False, True]
    assert found.versions[1].size is None and "delete marker" in found.describe()


def test_the_hotlist_copy_is_rewritten_by_design_and_not_listed(s3_store):
    key = f"hotlist/test-{uuid.uuid4().hex}.json"
    for body in (b'{"entries": []}', b'{"entries": [1]}'):
        s3_store.put_bytes(EVIDENCE_BUCKET, key, body, content_type="application/json")
    assert len(_versions(s3_store, key)) == 2
    assert list(rewritten(s3_store, prefix=key)) == []
    other = f"hotlist/test-{uuid.uuid4().hex}/crop.jpg"  # only the copies themselves are left out
    s3_store.put_new(EVIDENCE_BUCKET, other, b"original", "image/jpeg")
    s3_store.put_bytes(EVIDENCE_BUCKET, other, b"forged", content_type="image/jpeg")
    assert [r.key for r in rewritten(s3_store, prefix=other)] == [other]


def test_a_missing_crop_is_a_clear_404(s3_store):
    from fastapi import HTTPException

    with pytest.raises(HTTPException) as info:
        original_evidence(s3_store, f"alerts/none/{uuid.uuid4().hex}.jpg")
    assert info.value.status_code == 404 and "is not in the evidence bucket" in info.value.detail


def _same_second(write, tries: int = 5) -> list:
    """Run ``write()`` (which returns a key's versions) until they all carry one time: SeaweedFS times have a
    one-second resolution, and a tie is what the ordering must get right."""
    for _ in range(tries):
        objs = write()
        if len({o.last_modified for o in objs}) == 1:
            return objs
    pytest.fail(f"could not write {len(objs)} versions within one second in {tries} tries")


def test_within_one_second_the_original_is_first_not_a_delete_marker(s3_store):
    from twin.objectstore import oldest_first

    def write() -> list:
        key = f"alerts/tie/{uuid.uuid4().hex}.jpg"
        s3_store.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg")
        s3_store.client.remove_object(EVIDENCE_BUCKET, key)  # a delete marker
        s3_store.put_bytes(EVIDENCE_BUCKET, key, b"forged", content_type="image/jpeg")
        return list(s3_store.client.list_objects(EVIDENCE_BUCKET, prefix=key, include_version=True))

    listed = _same_second(write)
    key = listed[0].object_name
    # minio-py lists the page's versions (newest first) before its delete markers: order alone would rank the
    # delete marker oldest
    assert [o.is_delete_marker for o in listed] == [False, False, True]
    assert [o.is_delete_marker for o in oldest_first(listed)] == [False, True, False]
    [found] = list(rewritten(s3_store, prefix=key))
    assert [(v.delete_marker, v.size) for v in found.versions] == [(False, 8), (True, None), (False, 6)]
    assert f"{found.versions[0].version_id} 8 B at " in found.describe() and "(original)" in found.describe()
    assert read_original(s3_store, key) == b"original"


def test_the_crop_is_fetched_by_the_version_the_record_keeps_without_a_listing(tmp_path, s3_store, monkeypatch):
    sink, key, original = _crop_alert(tmp_path, s3_store)
    rec = sink.get(sink.alerts()[0]["alert_id"])
    s3_store.put_bytes(EVIDENCE_BUCKET, key, b"\xff\xd8forged", content_type="image/jpeg")
    listings = []
    real = s3_store.client.list_objects
    monkeypatch.setattr(s3_store.client, "list_objects", lambda *a, **kw: listings.append(a) or real(*a, **kw))
    assert original_evidence(s3_store, key, rec["evidence_version"]) == original and listings == []
    assert original_evidence(s3_store, key) == original and len(listings) == 1  # a record from before: one listing


def test_put_new_refuses_to_write_on_a_server_that_ignores_if_none_match(s3_store, monkeypatch):
    from twin import objectstore

    real = s3_store.client._put_object

    def ignoring(bucket, key, data, headers):  # what an old server does: the header has no effect
        return real(bucket, key, data, {k: v for k, v in headers.items() if k != "If-None-Match"})

    monkeypatch.setattr(objectstore, "_HONOURS_IF_NONE_MATCH", {})  # probe again, for this test only
    monkeypatch.setattr(s3_store.client, "_put_object", ignoring)
    key = f"test-evidence/{uuid.uuid4().hex}.jpg"
    with pytest.raises(StoreError, match=f"object store at {s3_store.settings.endpoint} ignores If-None-Match.*"
                                         "upgrade it"):
        s3_store.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg")
    assert _versions(s3_store, key) == []  # nothing written
    assert list(s3_store.versions(TWIN_BUCKET, ".probe/")) == []  # the probe cleaned up after itself
    with pytest.raises(StoreError, match="ignores If-None-Match"):  # the answer is kept: no second probe
        s3_store.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg")


def test_put_new_is_one_put_and_refuses_more_than_one_put_can_hold(s3_store, monkeypatch):
    import inspect

    from minio import Minio

    from twin import objectstore

    # put_new calls minio's private single-part PUT (pyproject pins minio <7.3): fail loudly if it changes
    assert list(inspect.signature(Minio._put_object).parameters)[:5] == [
        "self", "bucket_name", "object_name", "data", "headers"]
    monkeypatch.setattr(objectstore, "MAX_PUT_NEW_BYTES", 4)
    key = f"test-evidence/{uuid.uuid4().hex}.jpg"
    with pytest.raises(StoreError, match=f"{EVIDENCE_BUCKET}/{key}: 5 bytes is over the 5 GiB of one"):
        s3_store.put_new(EVIDENCE_BUCKET, key, b"12345", "image/jpeg")
    assert _versions(s3_store, key) == []


def test_a_delete_marker_listed_after_later_keys_stays_with_its_key(s3_store):
    prefix = f"alerts/g{uuid.uuid4().hex[:8]}/"
    for k in "abc":
        s3_store.put_new(EVIDENCE_BUCKET, f"{prefix}{k}.jpg", b"original", "image/jpeg")
    s3_store.client.remove_object(EVIDENCE_BUCKET, f"{prefix}a.jpg")  # listed after b's and c's versions
    s3_store.put_bytes(EVIDENCE_BUCKET, f"{prefix}c.jpg", b"forged", content_type="image/jpeg")
    grouped = dict(s3_store.versions(EVIDENCE_BUCKET, prefix))
    assert {k: [o.is_delete_marker for o in v] for k, v in grouped.items()} == {
        f"{prefix}a.jpg": [False, True], f"{prefix}b.jpg": [False], f"{prefix}c.jpg": [False, False]}
    assert sorted((r.key, len(r.versions)) for r in rewritten(s3_store, prefix)) == [(f"{prefix}a.jpg", 2),
                                                                                      (f"{prefix}c.jpg", 2)]
