"""The audit log is append-only and tamper-evident, locally and in the object-locked evidence bucket."""

from __future__ import annotations

import json

import pytest
from minio.error import S3Error

from serve.audit import AuditError, AuditLog
from twin.objectstore import EVIDENCE_BUCKET


def test_append_chain_and_reload(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", name="t")
    e1 = log.append("officer:a", "enrol", "W-1", {"photos": 2})
    e2 = log.append("officer:b", "remove", "W-1")
    assert (e1.seq, e2.seq) == (1, 2)
    assert e2.prev_hash == e1.hash
    again = AuditLog(tmp_path / "a.jsonl", name="t")
    e3 = again.append("officer:c", "enrol", "W-2")
    assert e3.seq == 3 and e3.prev_hash == e2.hash
    assert again.verify() == 3
    assert [e.action for e in again.events("W-1")] == ["enrol", "remove"]


def test_tampering_is_detected(tmp_path):
    p = tmp_path / "a.jsonl"
    log = AuditLog(p)
    for i in range(3):
        log.append("officer:a", "enrol", f"W-{i}")
    lines = p.read_text().splitlines()
    doc = json.loads(lines[1])
    doc["actor"] = "officer:mallory"
    p.write_text("\n".join([lines[0], json.dumps(doc), lines[2]]) + "\n")
    with pytest.raises(AuditError, match="event 2"):
        AuditLog(p).verify()
    p.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(AuditError, match="removed"):
        AuditLog(p).verify()


def test_events_are_locked_in_the_evidence_bucket(tmp_path, s3_store):
    log = AuditLog(tmp_path / "w.jsonl", name="watchlist-test", store=s3_store)
    ev = log.append("officer:a", "enrol", "W-9", {"court": "ศาลจังหวัดสงขลา"})
    key = f"audit/watchlist-test/{ev.seq:012d}.json"
    stored = json.loads(s3_store.get_bytes(EVIDENCE_BUCKET, key))
    assert stored["hash"] == ev.hash and stored["details"]["court"] == "ศาลจังหวัดสงขลา"
    version = s3_store.client.stat_object(EVIDENCE_BUCKET, key).version_id
    with pytest.raises(S3Error) as info:
        s3_store.client.remove_object(EVIDENCE_BUCKET, key, version_id=version)
    assert info.value.code == "AccessDenied"



def test_several_processes_keep_one_chain(tmp_path):
    import subprocess
    import sys

    p = str(tmp_path / "shared.jsonl")
    code = ("import sys; from serve.audit import AuditLog; log = AuditLog(sys.argv[1], name='concurrent')\n"
            "for i in range(25): log.append(sys.argv[2], 'enrol', f'{sys.argv[2]}-{i}')")
    procs = [subprocess.Popen([sys.executable, "-c", code, p, f"replica{i}"]) for i in range(3)]
    assert [pr.wait(120) for pr in procs] == [0, 0, 0]
    log = AuditLog(p)
    assert log.verify() == 75
    assert {e.actor for e in log.events()} == {"replica0", "replica1", "replica2"}
