"""The warrant watchlist end to end on real weights: enrol, identify, reject, expire, remove, persist, audit."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np
import pytest

from serve.face.schemas import WarrantRecord
from serve.face.service import EnrolmentError, FaceService, FaceServiceConfig
from serve.face.watchlist import Watchlist, WatchlistError
from twin.objectstore import EVIDENCE_BUCKET, MODELS_BUCKET, TWIN_BUCKET

TODAY = date.today()


def _record(no: str = "W-2026-0001", expires: date | None = None) -> WarrantRecord:
    return WarrantRecord(warrant_no=no, name="Eileen C.", court="Hat Yai Provincial Court", offence="fraud",
                         expires=expires or TODAY + timedelta(days=90))


@pytest.fixture()
def make_service(tmp_path, s3_store, face_detector, dlib_embedder):
    """A FaceService with a private watchlist file, audit log and store key; shares the session's models."""
    name = f"test-{uuid.uuid4().hex[:8]}"

    def make(in_store: bool = True) -> FaceService:
        cfg = FaceServiceConfig(watchlist_name=name, watchlist_path=str(tmp_path / "watchlist.json"),
                                watchlist_in_store=in_store, audit_path=str(tmp_path / "audit.jsonl"),
                                audit_in_store=in_store)
        return FaceService(cfg, store=s3_store, embedder=dlib_embedder, detector=face_detector)

    return make


def _store_snapshot(store) -> dict[str, str]:
    out = {}
    for b in (TWIN_BUCKET, EVIDENCE_BUCKET, MODELS_BUCKET):
        for o in store.client.list_objects(b, recursive=True, include_version=True):
            out[f"{b}/{o.object_name}@{o.version_id}"] = o.etag
    return out


def test_enrol_identify_round_trip_and_restart(make_service, astronaut, astronaut_mirror, deepface_people, tmp_path,
                                               s3_store):
    svc = make_service()
    rec = svc.enrol(_record(), {"front.png": astronaut}, actor="officer:somchai")
    assert rec.photos == 1 and svc.warrants() == [rec]
    res = svc.identify([astronaut_mirror, deepface_people["id02"][0]])
    assert len(res) == 2
    [face] = res[0].faces
    assert face.detection.prob > 0.99
    best = face.candidates[0]
    assert best.warrant_no == "W-2026-0001" and best.match and best.score > 0.6 and best.court.startswith("Hat Yai")
    [other] = res[1].faces
    assert not any(c.match for c in other.candidates)
    # a restarted service reloads the watchlist from the store, and from the local file without a store
    for in_store in (True, False):
        again = make_service(in_store=in_store)
        assert [r.warrant_no for r in again.warrants()] == ["W-2026-0001"]
        [[f]] = [r.faces for r in again.identify([astronaut_mirror])]
        assert f.candidates[0].match
    key = f"watchlist/{svc.config.watchlist_name}-dlib.json"
    assert b"W-2026-0001" in s3_store.get_bytes(MODELS_BUCKET, key)


def test_enrol_rejects_no_face_and_several_faces(make_service, astronaut, two_faces):
    svc = make_service(in_store=False)
    [r] = svc.detect([two_faces])
    assert len(r.faces) == 2
    blank = np.full((300, 300, 3), 200, np.uint8)
    with pytest.raises(EnrolmentError, match=r"photo 'blank\.jpg' shows no face"):
        svc.enrol(_record(), {"ok.jpg": astronaut, "blank.jpg": blank}, actor="officer:a")
    with pytest.raises(EnrolmentError, match=r"photo 'group\.jpg' shows 2 faces"):
        svc.enrol(_record(), {"group.jpg": two_faces}, actor="officer:a")
    with pytest.raises(EnrolmentError, match=r"photo\[0\].*uint8"):
        svc.enrol(_record(), [astronaut.astype(np.float32)], actor="officer:a")
    with pytest.raises(EnrolmentError, match="at least one photo"):
        svc.enrol(_record(), {}, actor="officer:a")
    assert len(svc.watchlist) == 0 and svc.audit.events() == []


def test_expired_warrant_stops_matching(make_service, astronaut, astronaut_mirror):
    svc = make_service(in_store=False)
    svc.enrol(_record("W-EXP", expires=TODAY + timedelta(days=1)), [astronaut], actor="officer:a")
    assert svc.identify([astronaut_mirror])[0].faces[0].candidates[0].warrant_no == "W-EXP"
    dets = svc.detector.detect([astronaut_mirror])
    probe = svc._embed_all([astronaut_mirror], dets)
    assert svc.watchlist.search(probe, on=TODAY + timedelta(days=1))[0][0].match  # the last valid day
    assert svc.watchlist.search(probe, on=TODAY + timedelta(days=2)) == [[]]
    svc.update("W-EXP", actor="officer:b", expires=TODAY - timedelta(days=1))
    assert svc.identify([astronaut_mirror])[0].faces[0].candidates == []
    assert svc.watchlist.purge_expired() == ["W-EXP"]
    assert len(svc.watchlist) == 0 and svc.watchlist.purge_expired() == []
    actions = [(e.actor, e.action) for e in svc.audit.events(subject="W-EXP")]
    assert actions == [("officer:a", "enrol"), ("officer:b", "update"), ("system:expiry", "remove")]


def test_restarted_service_purges_expired_warrants(make_service, astronaut, tmp_path):
    svc = make_service(in_store=False)
    svc.enrol(_record("W-OLD", expires=TODAY + timedelta(days=3)), [astronaut], actor="officer:a")
    svc.update("W-OLD", actor="officer:a", expires=TODAY - timedelta(days=1))
    assert b"W-OLD" in (tmp_path / "watchlist.json").read_bytes()
    again = make_service(in_store=False)  # the constructor purges expired warrants' data
    assert len(again.watchlist) == 0 and b"W-OLD" not in (tmp_path / "watchlist.json").read_bytes()
    assert [(e.action, e.actor) for e in again.audit.events()][-1] == ("remove", "system:expiry")


def test_removal_is_real_and_audited(make_service, astronaut, astronaut_mirror, deepface_people, tmp_path, s3_store):
    svc = make_service()
    svc.enrol(_record("W-DEL"), [astronaut], actor="officer:a")
    svc.enrol(_record("W-KEEP"), [deepface_people["id00"][0]], actor="officer:a")
    enrolled = svc.watchlist._emb["W-DEL"].copy()
    key = f"watchlist/{svc.config.watchlist_name}-dlib.json"
    assert b"W-DEL" in (tmp_path / "watchlist.json").read_bytes()
    svc.remove("W-DEL", actor="officer:b", reason="arrested")
    assert "W-DEL" not in svc.watchlist and "W-DEL" not in svc.watchlist._emb
    assert not any(np.allclose(row, enrolled[0]) for row in svc.watchlist._matrix)
    assert all(c.warrant_no != "W-DEL" for f in svc.identify([astronaut_mirror])[0].faces for c in f.candidates)
    assert b"W-DEL" not in (tmp_path / "watchlist.json").read_bytes()
    assert b"W-DEL" not in s3_store.get_bytes(MODELS_BUCKET, key)
    versions = [o for o in s3_store.client.list_objects(MODELS_BUCKET, prefix=key, include_version=True)]
    assert len(versions) == 1
    assert [r.warrant_no for r in make_service().warrants()] == ["W-KEEP"]
    with pytest.raises(WatchlistError, match="not on the watchlist"):
        svc.remove("W-DEL", actor="officer:b")
    # audit: who did what, chained, mirrored to the object-locked evidence bucket, no embeddings in it
    evs = svc.audit.events()
    assert [(e.action, e.subject, e.actor) for e in evs] == [
        ("enrol", "W-DEL", "officer:a"), ("enrol", "W-KEEP", "officer:a"), ("remove", "W-DEL", "officer:b")]
    assert evs[2].details["reason"] == "arrested" and svc.audit.verify() == 3
    name = svc.config.watchlist_name
    mirrored = list(s3_store.client.list_objects(EVIDENCE_BUCKET, prefix=f"audit/{name}/", recursive=True))
    assert len(mirrored) == 3
    assert "embedding" not in (tmp_path / "audit.jsonl").read_text()


def test_a_removed_person_lingers_in_no_version_of_a_versioned_bucket(s3_store, dlib_embedder, tmp_path):
    """Production may version the watchlist's bucket: every earlier version (which holds the removed person's
    embeddings) is deleted on each save, leaving the current one only (minio lists IsLatest as 'true'/'false')."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    wl = Watchlist(dlib_embedder, store=s3_store, name=name, bucket=TWIN_BUCKET)  # TWIN_BUCKET is versioned
    rng = np.random.default_rng(0)
    wl.add(_record("W-GONE"), rng.normal(size=(1, dlib_embedder.dim)), actor="officer:a")
    wl.add(_record("W-STAY"), rng.normal(size=(1, dlib_embedder.dim)), actor="officer:a")
    wl.remove("W-GONE", actor="officer:b")
    versions = list(s3_store.client.list_objects(TWIN_BUCKET, prefix=wl.key, include_version=True))
    assert len(versions) == 1 and versions[0].is_latest == "true"
    assert b"W-GONE" not in s3_store.get_bytes(TWIN_BUCKET, wl.key) and b"W-STAY" in s3_store.get_bytes(
        TWIN_BUCKET, wl.key)


def test_duplicate_enrolment_and_engine_mismatch(make_service, astronaut, tmp_path):
    svc = make_service(in_store=False)
    svc.enrol(_record("W-1"), [astronaut], actor="officer:a")
    with pytest.raises(WatchlistError, match="already enrolled"):
        svc.enrol(_record("W-1"), [astronaut], actor="officer:a")

    class Other:
        name, dim = "facenet", 512

    with pytest.raises(WatchlistError, match="holds dlib embeddings"):
        Watchlist(Other(), path=tmp_path / "watchlist.json")  # type: ignore[arg-type]


def test_non_matching_probe_leaves_no_trace(make_service, astronaut, deepface_people, tmp_path, s3_store):
    svc = make_service()
    svc.enrol(_record("W-ONLY"), [astronaut], actor="officer:a")
    before_file = (tmp_path / "watchlist.json").read_bytes()
    before_store = _store_snapshot(s3_store)
    before_audit = (tmp_path / "audit.jsonl").read_bytes()
    files_before = sorted(p.name for p in tmp_path.iterdir())
    probes = [deepface_people["id03"][0], deepface_people["id01"][1]]
    res = svc.identify(probes)
    assert all(f.candidates == [] or not f.candidates[0].match for r in res for f in r.faces)
    assert sum(len(r.faces) for r in res) == 2
    assert (tmp_path / "watchlist.json").read_bytes() == before_file
    assert _store_snapshot(s3_store) == before_store
    assert (tmp_path / "audit.jsonl").read_bytes() == before_audit
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    assert svc.watchlist._matrix.shape == (1, 128)
    # results carry detections and candidates only: no image, no embedding
    dumped = res[0].model_dump()
    assert set(dumped) == {"width", "height", "faces"} and set(dumped["faces"][0]) == {"detection", "candidates"}


@pytest.mark.parametrize("in_store", [False, True])
def test_two_replicas_share_changes(tmp_path, s3_store, dlib_embedder, in_store):
    """Two watchlist instances on the same persisted copy (as two Serve replicas): changes on one reach the other."""
    name = f"replicas-{uuid.uuid4().hex[:8]}"
    path = None if in_store else tmp_path / "w.json"
    store = s3_store if in_store else None
    a = Watchlist(dlib_embedder, path=path, store=store, name=name, refresh_s=0.0)
    b = Watchlist(dlib_embedder, path=path, store=store, name=name, refresh_s=0.0)
    rng = np.random.default_rng(1)
    v1, v2 = rng.normal(0, 0.1, (2, 128)).astype(np.float32)
    a.add(_record("W-A"), v1[None], actor="officer:a")
    b.add(_record("W-B"), v2[None], actor="officer:b")  # b first reloads a's enrolment, so nothing is lost
    assert [r.warrant_no for r in a.records()] == ["W-A", "W-B"]  # a picks up b's change
    [[hit]] = b.search(v1[None], top_k=1)
    assert hit.warrant_no == "W-A" and hit.match and hit.distance < 1e-3
    b.remove("W-A", actor="officer:b")
    assert [c.warrant_no for c in a.search(v1[None])[0] if c.match] == []
    assert [r.warrant_no for r in Watchlist(dlib_embedder, path=path, store=store, name=name).records()] == ["W-B"]


def test_changes_are_audited_even_without_an_audit_path(tmp_path, monkeypatch, face_detector, dlib_embedder,
                                                        astronaut):
    monkeypatch.setenv("SSZ_HOME", str(tmp_path))
    svc = FaceService(FaceServiceConfig(watchlist_name="mem"), embedder=dlib_embedder, detector=face_detector)
    svc.enrol(_record("W-MEM"), [astronaut], actor="officer:a")
    log = tmp_path / "audit" / "watchlist-mem.jsonl"
    assert svc.audit.path == log and [e.action for e in svc.audit.events()] == ["enrol"]
    assert list(tmp_path.glob("**/*.json")) == []  # no watchlist file configured: embeddings stay in memory


def _sealed_replica(tmp_path, node, name, store, embedder, clock=None):
    """A watchlist replica with its own file and audit log, sharing the store copy and the log's locked mirror."""
    from serve.audit import AuditLog

    audit = AuditLog(tmp_path / node / "audit.jsonl", name=name, store=store)
    kw = {"clock": clock} if clock else {}
    return Watchlist(embedder, path=tmp_path / node / "w.json", store=store, audit=audit, name=name, refresh_s=0.0,
                     **kw)


def test_a_forged_store_copy_is_refused_by_fresh_and_running_replicas(tmp_path, s3_store, dlib_embedder):
    import base64
    import json

    from serve.listdigest import UnauditedListCopy

    name = f"seal-{uuid.uuid4().hex[:8]}"
    a = _sealed_replica(tmp_path, "a", name, s3_store, dlib_embedder)
    rng = np.random.default_rng(2)
    a.add(_record("W-A"), rng.normal(size=(1, 128)), actor="officer:a")
    b = _sealed_replica(tmp_path, "b", name, s3_store, dlib_embedder)  # fresh: its log catches up from the mirror
    assert [r.warrant_no for r in b.records()] == ["W-A"]
    b.add(_record("W-B"), rng.normal(size=(1, 128)), actor="officer:b")
    assert [r.warrant_no for r in a.records()] == ["W-A", "W-B"]  # a's log learns b's change from the mirror
    doc = json.loads(s3_store.get_bytes(MODELS_BUCKET, a.key))
    face = rng.normal(size=(1, 128)).astype("<f4")
    doc["records"].append({"record": _record("W-FORGED").model_dump(mode="json"), "n": 1,
                           "embeddings": base64.b64encode(face.tobytes()).decode()})
    s3_store.put_bytes(MODELS_BUCKET, a.key, json.dumps(doc).encode())  # a face added with the S3 credentials
    with pytest.raises(UnauditedListCopy, match=f"s3://{MODELS_BUCKET}/{a.key} .*ssz audit lists"):
        _sealed_replica(tmp_path, "c", name, s3_store, dlib_embedder)
    with pytest.raises(UnauditedListCopy):  # a running replica refuses it too, and keeps its audited list
        a.search(face)
    assert sorted(a._records) == ["W-A", "W-B"]
    with pytest.raises(UnauditedListCopy):  # and makes no change on top of it
        a.remove("W-A", actor="officer:a")


def test_audited_watchlist_changes_record_the_state_they_write(tmp_path, s3_store, dlib_embedder, monkeypatch):
    import json

    from serve.face.watchlist import list_state
    from serve.listdigest import state_digest

    name = f"seal-{uuid.uuid4().hex[:8]}"
    today = [TODAY]
    a = _sealed_replica(tmp_path, "a", name, s3_store, dlib_embedder, clock=lambda: today[0])
    rng = np.random.default_rng(3)

    def stored() -> str:
        return state_digest(list_state(json.loads(s3_store.get_bytes(MODELS_BUCKET, a.key))))

    written = []
    a.add(_record("W-1"), rng.normal(size=(2, 128)), actor="officer:a")
    written.append(stored())
    a.add(_record("W-2", expires=TODAY + timedelta(days=1)), rng.normal(size=(1, 128)), actor="officer:a")
    written.append(stored())
    a.update("W-1", actor="officer:a", offence="theft")
    written.append(stored())
    today[0] = TODAY + timedelta(days=3)
    assert a.purge_expired() == ["W-2"]
    written.append(stored())
    before = stored()
    real = type(s3_store).put_bytes
    calls = []

    def fails_once(self, *args, **kw):  # the change's store write fails; the undo's goes through
        calls.append(1)
        if len(calls) == 1:
            raise OSError("store down")
        return real(self, *args, **kw)

    monkeypatch.setattr(type(s3_store), "put_bytes", fails_once)
    with pytest.raises(OSError):
        a.remove("W-1", actor="officer:a")
    monkeypatch.undo()
    assert len(set(written)) == 4 and stored() == before and sorted(a._records) == ["W-1"]
    events = a.audit.events()
    assert [e.action for e in events] == ["enrol", "enrol", "update", "remove", "remove", "remove.failed"]
    assert [e.details["list_sha256"] for e in events[:4]] == written
    assert "embeddings" not in json.dumps([e.details for e in events])  # a digest only
    fresh = _sealed_replica(tmp_path, "b", name, s3_store, dlib_embedder)
    assert [r.warrant_no for r in fresh.records()] == ["W-1"] and fresh.get("W-1").offence == "theft"


def test_a_store_copy_without_a_mirrored_audit_log_is_refused_in_the_config():
    """Other replicas could not check the copy (their logs never learn the change): a config error, not a
    refusal of every honest copy later."""
    with pytest.raises(ValueError, match="watchlist_in_store needs audit_in_store"):
        FaceServiceConfig(watchlist_in_store=True)
    assert FaceServiceConfig(watchlist_in_store=True, audit_in_store=True).watchlist_in_store
