"""The audit log is keyed, mirrored to the COMPLIANCE-locked bucket, anchored, and names the first tampered event."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from minio.error import S3Error

from serve.audit import AuditError, AuditLog, AuditWriteError
from twin.objectstore import EVIDENCE_BUCKET, ObjectExists

KEY = b"k" * 32


def _log(tmp_path, store=None, name=None, **kw) -> AuditLog:
    return AuditLog(tmp_path / "a.jsonl", name=name or f"t-{uuid.uuid4().hex[:8]}", store=store, key=KEY, **kw)


def test_append_chain_and_reload(tmp_path):
    log = _log(tmp_path, name="t")
    e1 = log.append("officer:a", "enrol", "W-1", {"photos": 2})
    e2 = log.append("officer:b", "remove", "W-1")
    assert (e1.seq, e2.seq) == (1, 2)
    assert e2.prev_hash == e1.hash and e1.alg == "hmac-sha256"
    again = AuditLog(tmp_path / "a.jsonl", name="t", key=KEY)
    e3 = again.append("officer:c", "enrol", "W-2")
    assert e3.seq == 3 and e3.prev_hash == e2.hash
    assert again.verify() == 3
    assert [e.action for e in again.events("W-1")] == ["enrol", "remove"]
    assert oct((tmp_path / "a.jsonl").stat().st_mode & 0o777) == "0o600"


def test_the_mac_needs_the_key(tmp_path):
    log = _log(tmp_path)
    log.append("officer:a", "enrol", "W-1")
    other = AuditLog(log.path, name=log.name, key=b"x" * 32)
    rep = other.check()
    assert not rep.ok and rep.first_bad_seq == 1 and "MAC" in rep.problems[0]


def test_urls_with_credentials_are_redacted(tmp_path):
    log = _log(tmp_path)
    ev = log.append("system:watchdog", "camera.offline", "cam-1",
                    {"detail": "rtsp://admin:hunter2@10.0.0.7:554/ch1 timed out", "urls": ["http://u:p@x/y?token=qwerty"]})
    text = log.path.read_text()
    assert "hunter2" not in text and "qwerty" not in text and "u:p@" not in text
    assert ev.details["detail"] == "rtsp://***@10.0.0.7:554/ch1 timed out"


def _rewrite(path, lines):
    path.write_text("\n".join(lines) + "\n")


def test_local_tampering_is_named(tmp_path):
    log = _log(tmp_path)
    for i in range(4):
        log.append("officer:a", "enrol", f"W-{i}")
    good = log.path.read_text().splitlines()
    doc = json.loads(good[1])
    doc["actor"] = "officer:mallory"
    _rewrite(log.path, [good[0], json.dumps(doc), *good[2:]])
    rep = log.check()
    assert rep.first_bad_seq == 2 and "MAC" in rep.problems[0]
    with pytest.raises(AuditError, match="event 2"):
        log.verify()
    _rewrite(log.path, [good[0], *good[2:]])  # deleted
    assert log.check().first_bad_seq == 2
    _rewrite(log.path, [good[0], good[2], good[1], good[3]])  # reordered
    rep = log.check()
    assert rep.first_bad_seq == 2 and "reordered" in rep.problems[0]


def test_torn_tail_is_repaired_and_the_next_write_works(tmp_path):
    log = _log(tmp_path)
    for i in range(3):
        log.append("officer:a", "enrol", f"W-{i}")
    with open(log.path, "ab") as f:
        f.write(b'{"seq": 4, "ts": "2026-')  # a crash in the middle of a write
    assert len(log.events()) == 3  # readers skip the torn line
    ev = log.append("officer:a", "enrol", "W-3")  # the write repairs the tail first
    assert ev.seq == 4 and log.verify() == 4
    aside = list(tmp_path.glob("a.jsonl.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b'{"seq": 4, "ts": "2026-'


def test_a_failed_write_changes_nothing_and_raises_503_kind(tmp_path, s3_store):
    from twin.objectstore import S3Settings, connect

    log = _log(tmp_path, store=s3_store)
    log.append("officer:a", "enrol", "W-1")
    before = log.path.read_bytes()
    dead = connect(S3Settings(endpoint="127.0.0.1:1", access_key="a", secret_key="b", timeout_s=1), check=False)
    broken = AuditLog(log.path, name=log.name, store=dead, key=KEY)
    with pytest.raises(AuditWriteError, match="not made") as info:
        broken.append("officer:a", "enrol", "W-2")
    from serve.errors import UnavailableError

    assert isinstance(info.value, UnavailableError)
    assert log.path.read_bytes() == before  # rolled back
    assert log.verify() == 1


def test_events_are_locked_in_the_evidence_bucket(tmp_path, s3_store):
    log = _log(tmp_path, store=s3_store)
    ev = log.append("officer:a", "enrol", "W-9", {"court": "ศาลจังหวัดสงขลา"})
    key = f"audit/{log.name}/{ev.seq:012d}.json"
    stored = json.loads(s3_store.get_bytes(EVIDENCE_BUCKET, key))
    assert stored["hash"] == ev.hash and stored["details"]["court"] == "ศาลจังหวัดสงขลา"
    version = s3_store.client.stat_object(EVIDENCE_BUCKET, key).version_id
    for headers in ({}, {"x-amz-bypass-governance-retention": "true"}):
        with pytest.raises(S3Error) as info:
            s3_store.client._execute("DELETE", EVIDENCE_BUCKET, key, query_params={"versionId": version},
                                     headers=dict(headers))
        assert info.value.code == "AccessDenied"


def test_mirror_and_anchors_catch_what_the_key_holder_does(tmp_path, s3_store):
    """Someone with the key and the disk: truncation, an edit re-MAC'd, a rewritten mirror copy."""
    log = _log(tmp_path, store=s3_store, anchor_every=2)
    evs = [log.append("officer:a", "enrol", f"W-{i}") for i in range(5)]
    rep = log.check()
    assert rep.ok, rep.problems
    assert (rep.events, rep.mirrored, rep.anchors) == (5, 5, 2)
    good = log.path.read_text().splitlines()
    _rewrite(log.path, good[:3])  # the two newest events removed
    rep = log.check()
    assert rep.first_bad_seq == 4 and "truncated" in rep.problems[0]
    # Edit event 3 and re-compute the chain with the key: the locked copy and the anchor disagree.
    _rewrite(log.path, good[:2])
    forged = AuditLog(log.path, name=f"{log.name}-forge", key=KEY)  # same key, no mirror
    forged.append("officer:a", "enrol", "W-FORGED")
    rep = log.check()
    assert rep.first_bad_seq == 3 and "differs from its locked mirror copy" in rep.problems[0]
    # Rewriting the mirror copy adds a version that the check reports.
    _rewrite(log.path, good)
    s3_store.put_bytes(EVIDENCE_BUCKET, f"audit/{log.name}/{evs[1].seq:012d}.json", b"{}")
    rep = log.check()
    assert rep.first_bad_seq == 2 and "rewritten" in rep.problems[0]


def test_several_processes_keep_one_chain(tmp_path, monkeypatch):
    monkeypatch.setenv("SSZ_AUDIT_KEY", KEY.hex())
    p = str(tmp_path / "shared.jsonl")
    code = ("import sys; from serve.audit import AuditLog; log = AuditLog(sys.argv[1], name='concurrent')\n"
            "for i in range(25): log.append(sys.argv[2], 'enrol', f'{sys.argv[2]}-{i}')")
    procs = [subprocess.Popen([sys.executable, "-c", code, p, f"replica{i}"]) for i in range(3)]
    assert [pr.wait(120) for pr in procs] == [0, 0, 0]
    log = AuditLog(p, key=KEY)
    assert log.verify() == 75
    assert {e.actor for e in log.events()} == {"replica0", "replica1", "replica2"}


def test_write_ahead_audits_first_and_records_a_failed_change(tmp_path):
    from serve.audit import write_ahead

    log = _log(tmp_path)
    state = {"entries": 1}

    def undo() -> None:
        state["entries"] = 1

    with pytest.raises(OSError, match="disk full"), write_ahead(log, "api:a", "hotlist.add", "H-1", undo=undo):
        state["entries"] = 2
        raise OSError("disk full")
    assert state == {"entries": 1}
    assert [e.action for e in log.events()] == ["hotlist.add", "hotlist.add.failed"]
    assert log.events()[1].details["event"] == 1
    log.path.write_bytes(log.path.read_bytes() + b"garbage that is not an event\n")
    ran = []
    with pytest.raises(AuditWriteError), write_ahead(log, "api:a", "hotlist.add", "H-2"):
        ran.append(True)
    assert ran == []  # no audit, no change


def test_a_log_from_before_the_keyed_chain_is_named_not_called_tampered(tmp_path):
    import hashlib

    p = tmp_path / "old.jsonl"
    body = {"seq": 1, "ts": "2026-01-01T00:00:00Z", "actor": "a", "action": "enrol", "subject": "W-1", "details": {},
            "prev_hash": "0" * 64}
    body["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    p.write_text(json.dumps(body) + "\n")
    log = AuditLog(p, key=KEY)
    rep = log.check()
    assert not rep.ok and "older version" in rep.problems[0] and ".legacy" in rep.problems[0]
    with pytest.raises(AuditWriteError, match="move it aside"):
        log.append("a", "enrol", "W-2")
    assert len(log.events()) == 1


def test_a_rewritten_anchor_is_reported_and_its_first_version_checked(tmp_path, s3_store):
    log = _log(tmp_path, store=s3_store, anchor_every=2)
    for i in range(4):
        log.append("officer:a", "enrol", f"W-{i}")
    assert log.check().ok
    anchor = f"audit/{log.name}/anchors/{2:012d}.json"
    with pytest.raises(ObjectExists):  # the platform's own code never writes an anchor twice
        s3_store.put_new(EVIDENCE_BUCKET, anchor, b"{}", "application/json")
    s3_store.put_bytes(EVIDENCE_BUCKET, anchor, b'{"seq": 2, "hash": "forged"}')
    rep = log.check()
    assert rep.first_bad_seq == 2 and rep.problems == [
        "anchor 2: its locked copy was rewritten or deleted (2 versions); the first version is checked"]


def test_the_mirror_is_written_once_and_a_foreign_event_there_refuses_the_write(tmp_path, s3_store):
    log = _log(tmp_path, store=s3_store)
    log.append("officer:a", "enrol", "W-1")
    nxt = f"audit/{log.name}/{2:012d}.json"
    s3_store.put_bytes(EVIDENCE_BUCKET, nxt, b'{"seq": 2, "forged": true}\n')  # the platform user, first
    with pytest.raises(AuditWriteError, match="the locked mirror already holds a different event 2"):
        log.append("officer:a", "enrol", "W-2")
    assert [e.seq for e in log.events()] == [1]  # the change was not made
    assert len(s3_store.key_versions(EVIDENCE_BUCKET, nxt)) == 1  # and the mirror got no second version


def test_restore_takes_the_first_version_when_a_rewrite_has_the_same_second(tmp_path, s3_store):
    for _ in range(5):  # SeaweedFS times have a one-second resolution: the tie is the case to get right
        log = _log(tmp_path / uuid.uuid4().hex, store=s3_store)
        log.append("officer:a", "enrol", "W-1")
        key = f"audit/{log.name}/{1:012d}.json"
        s3_store.put_bytes(EVIDENCE_BUCKET, key, b'{"seq": 1, "forged": true}\n')
        if len({o.last_modified for o in s3_store.key_versions(EVIDENCE_BUCKET, key)}) == 1:
            break
    else:
        pytest.fail("could not rewrite a mirrored event within its second in 5 tries")
    log.path.write_text("")
    log.restore_from_mirror()
    assert [(e.seq, e.subject) for e in log.events()] == [(1, "W-1")] and log.check().first_bad_seq == 1


def test_check_lists_the_mirror_once_whatever_the_number_of_anchors(tmp_path, s3_store, monkeypatch):
    log = _log(tmp_path, store=s3_store, anchor_every=2)
    for i in range(6):
        log.append("officer:a", "enrol", f"W-{i}")
    listings = []
    real = s3_store.client.list_objects
    monkeypatch.setattr(s3_store.client, "list_objects", lambda *a, **kw: listings.append(a) or real(*a, **kw))
    rep = log.check()
    assert rep.ok and rep.anchors == 3 and len(listings) == 1


def test_catch_up_adds_the_mirrored_events_a_log_lacks_and_refuses_a_foreign_chain(tmp_path, s3_store, monkeypatch):
    a = _log(tmp_path / "a", store=s3_store)
    a.append("officer:a", "hotlist.add", "H-1")
    a.append("officer:a", "hotlist.add", "H-2")
    b = _log(tmp_path / "b", store=s3_store, name=a.name)  # a fresh node: no local log
    assert b.catch_up() == 2 and [e.hash for e in b.events()] == [e.hash for e in a.events()]
    a.append("officer:a", "hotlist.remove", "H-1")
    assert [e.seq for e in b.trail()] == [1, 2, 3] and len(b.events()) == 2  # trail() reads, writes nothing
    listed = []
    real = s3_store.client.list_objects
    monkeypatch.setattr(s3_store.client, "list_objects", lambda *args, **kw: listed.append(kw.get("start_after"))
                        or real(*args, **kw))
    assert b.catch_up() == 1 and b.catch_up() == 0 and b.check().ok
    # a log that is behind lists the mirror from its last event on, not from the first (a long log stays cheap)
    assert listed[:2] == [f"audit/{a.name}/{2:012d}.json", f"audit/{a.name}/{3:012d}.json"]
    monkeypatch.undo()
    b.append("officer:b", "hotlist.add", "H-3")  # b's next event follows the mirror's last one
    assert a.catch_up() == 1 and [e.seq for e in a.events()] == [1, 2, 3, 4]
    other = AuditLog(tmp_path / "c.jsonl", name=a.name, store=s3_store, key=b"x" * 32)
    with pytest.raises(AuditError, match="does not verify with this key"):
        other.catch_up()
    assert other.events() == []
    forked = _log(tmp_path / "e", name=a.name)  # same key, its own event 1: the mirror's event 2 does not follow it
    forked.append("officer:e", "hotlist.add", "H-9")
    forked.store = s3_store
    with pytest.raises(AuditError, match="mirrored event 2 does not follow event 1 of the local log"):
        forked.catch_up()
    assert _log(tmp_path / "d").catch_up() == 0  # no store: nothing to catch up from
