"""`ssz audit verify` names every kind of tampering (edit, delete, reorder, truncate); `restore` undoes it."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
from typer.testing import CliRunner

from cluster.cli import app


@pytest.fixture
def home(tmp_path, monkeypatch, s3_store):
    """A fresh state folder that reaches the session's store (its credential files copied over)."""
    from cluster.state import ssz_home

    src = ssz_home() / "store"
    dst = tmp_path / "home" / "store"
    dst.mkdir(parents=True)
    for f in ("credentials.json", "admin.json", "weed.pid"):
        shutil.copy(src / f, dst / f)
    monkeypatch.setenv("SSZ_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _verify() -> tuple[int, list[dict]]:
    res = CliRunner().invoke(app, ["audit", "verify", "--json"])
    return res.exit_code, json.loads(res.stdout[res.stdout.index("["):])


def _log(home):
    from cluster import store
    from cluster.state import state_dir
    from serve.audit import AuditLog

    city = f"c{uuid.uuid4().hex[:8]}"
    log = AuditLog(state_dir("alerts") / f"{city}-audit.jsonl", name=f"alerts-{city}", store=store.open_store(),
                   anchor_every=3)
    for i in range(6):
        log.append("system:alert-sink", "alert.raised", f"A-{i}", {"camera_id": "cam-1"})
    return log


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "truncate", "edit-and-remac"])
def test_verify_reports_each_kind_of_tampering(home, tamper):
    log = _log(home)
    code, reports = _verify()
    assert code == 0 and [r["ok"] for r in reports] == [True]
    assert reports[0]["events"] == reports[0]["mirrored"] == 6 and reports[0]["anchors"] == 2
    lines = log.path.read_text().splitlines()
    if tamper == "edit":
        doc = json.loads(lines[2])
        doc["subject"] = "A-X"
        lines[2] = json.dumps(doc)
    elif tamper == "delete":
        del lines[2]
    elif tamper == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif tamper == "truncate":
        lines = lines[:4]
    else:  # someone with the key rewrites event 3 and re-chains the rest
        from serve.audit import AuditEvent

        prev = json.loads(lines[1])["hash"]
        for i in range(2, 6):
            ev = AuditEvent.model_validate_json(lines[i])
            ev.prev_hash = prev
            if i == 2:
                ev.subject = "A-X"
            ev.hash = ev.digest(log.key)
            lines[i] = ev.model_dump_json()
            prev = ev.hash
    log.path.write_text("\n".join(lines) + "\n")
    code, reports = _verify()
    assert code == 1
    (rep,) = reports
    assert not rep["ok"] and rep["first_bad_seq"] == {"truncate": 5}.get(tamper, 3), rep["problems"]


def test_torn_tail_is_repaired_by_verify_and_restore_rebuilds_a_tampered_log(home):
    log = _log(home)
    with open(log.path, "ab") as f:
        f.write(b'{"seq": 7, "ts": ')
    code, reports = _verify()
    assert code == 0 and reports[0]["torn_bytes_repaired"] > 0 and reports[0]["events"] == 6
    log.path.write_text("\n".join(log.path.read_text().splitlines()[:2]) + "\n")
    assert _verify()[0] == 1
    res = CliRunner().invoke(app, ["audit", "restore", log.name])
    assert res.exit_code == 0, res.output
    assert "restored 6 events" in res.output and list(log.path.parent.glob(f"{log.path.name}.damaged-*"))
    code, reports = _verify()
    assert code == 0 and all(r["ok"] for r in reports)


def test_api_up_and_run_refuse_to_start_on_a_tampered_log(home):
    log = _log(home)
    log.path.write_text("\n".join(log.path.read_text().splitlines()[1:]) + "\n")
    for args in (["api", "up", "--port", "1"], ["run", "--city", "betong", "--cameras", "1", "--duration", "1"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        assert "does not verify" in res.output and "Nothing was started" in res.output


def test_audit_evidence_names_a_rewritten_key_with_its_versions(home):
    from cluster import store
    from twin.objectstore import EVIDENCE_BUCKET

    s3 = store.open_store()  # the platform user: what every actor and replica holds
    prefix = f"alerts/c{uuid.uuid4().hex[:8]}/"
    key = f"{prefix}2026-12-03/A-1.jpg"
    first = s3.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg")
    s3.put_new(EVIDENCE_BUCKET, f"{prefix}2026-12-03/A-2.jpg", b"untouched", "image/jpeg")
    res = CliRunner().invoke(app, ["audit", "evidence", "--prefix", prefix])
    assert res.exit_code == 0 and "every key written once" in res.output, res.output
    second = s3.put_bytes(EVIDENCE_BUCKET, key, b"forged", content_type="image/jpeg")
    res = CliRunner().invoke(app, ["audit", "evidence", "--prefix", prefix, "--json"])
    assert res.exit_code == 1, res.output
    (found,) = [json.loads(line) for line in res.stdout.splitlines()]  # JSON Lines, one key per line
    assert found["key"] == key and [v["version_id"] for v in found["versions"]] == [first, second]
    assert [v["size"] for v in found["versions"]] == [8, 6] and all(v["last_modified"] for v in found["versions"])
    res = CliRunner().invoke(app, ["audit", "evidence", "--prefix", prefix])
    assert res.exit_code == 1 and "TAMPERED" in res.output and key in res.output and first in res.output


def test_audit_evidence_prints_each_key_as_found_and_an_error_as_json(home, monkeypatch):
    import urllib3
    from minio import Minio

    from cluster import store
    from twin import objectstore
    from twin.objectstore import EVIDENCE_BUCKET

    s3 = store.open_store()
    prefix = f"alerts/c{uuid.uuid4().hex[:8]}/"
    key = f"{prefix}A-0.jpg"
    s3.put_new(EVIDENCE_BUCKET, key, b"original", "image/jpeg")
    s3.put_bytes(EVIDENCE_BUCKET, key, b"forged", content_type="image/jpeg")
    for i in range(1, 4):
        s3.put_new(EVIDENCE_BUCKET, f"{prefix}A-{i}.jpg", b"untouched", "image/jpeg")
    real = Minio.list_objects

    def dies_at_the_end(self, *a, **kw):  # the store goes away after the listing's last entry
        yield from real(self, *a, **kw)
        raise urllib3.exceptions.ProtocolError("connection reset")

    monkeypatch.setattr(Minio, "list_objects", dies_at_the_end)
    monkeypatch.setattr(objectstore, "_LIST_PAGE", 1)  # a key is final 2 pages on: here 2 entries, not 2,000
    res = CliRunner().invoke(app, ["audit", "evidence", "--prefix", prefix, "--json"])
    assert res.exit_code == 2, res.output
    first, error = [json.loads(line) for line in res.stdout.splitlines()]
    assert first["key"] == key and [v["size"] for v in first["versions"]] == [8, 6]
    assert error["found_before"] == 1 and "is unreachable (ProtocolError)" in error["error"]


def _audited_hotlist(s3):
    """A hotlist of a fresh name with its own audit log, both in ``s3``: the list, its name and its folder."""
    from cluster.state import state_dir
    from serve.audit import AuditLog
    from serve.plate.hotlist import Hotlist

    name = f"l{uuid.uuid4().hex[:8]}"
    d = state_dir("serve") / "lists" / name
    hl = Hotlist(d / "hotlist.json", AuditLog(d / "hotlist-audit.jsonl", name=f"hotlist-{name}", store=s3), store=s3,
                 store_key=f"hotlist/{name}.json")
    return hl, name, d


def test_audit_lists_names_a_forged_hotlist_or_watchlist_version(home):
    """Audited changes leave every version of the list copies valid; a copy written with the store client
    directly is reported with its version id, and the command exits 1."""
    from types import SimpleNamespace

    import numpy as np

    from cluster import store
    from serve.audit import AuditLog
    from serve.face.schemas import WarrantRecord
    from serve.face.watchlist import Watchlist
    from twin.objectstore import EVIDENCE_BUCKET, MODELS_BUCKET

    s3 = store.open_store()
    hl, name, d = _audited_hotlist(s3)
    hl.add("ก 1", reason="stolen", actor="officer:a", entry_id="H-1")
    hl.add("ข 2", reason="stolen", actor="officer:a", entry_id="H-2")
    hl.remove("H-1", actor="officer:a")
    wl = Watchlist(SimpleNamespace(name="stub", dim=4), path=d / "warrants.json", store=s3, name=name,
                   audit=AuditLog(d / "watchlist-audit.jsonl", name=f"watchlist-{name}", store=s3))
    wl.add(WarrantRecord(warrant_no="W-1", name="A", court="Hat Yai", offence="fraud", expires="2099-01-01"),
           np.ones((1, 4)), actor="officer:a")

    def check(prefix: str) -> tuple[int, list[dict]]:
        res = CliRunner().invoke(app, ["audit", "lists", "--prefix", prefix, "--json"])
        return res.exit_code, [json.loads(line) for line in res.stdout.splitlines()]

    assert check(f"hotlist/{name}") == (0, []) and check(f"watchlist/{name}-") == (0, [])
    code, [err] = check(f"evidence/hotlist/{name}")  # the bucket in the prefix: it would match nothing
    assert code == 2 and "starts with hotlist/ or watchlist/ (without the bucket)" in err["error"]
    doc = json.loads(s3.get_bytes(EVIDENCE_BUCKET, hl.store_key))
    forged = s3.put_bytes(EVIDENCE_BUCKET, hl.store_key, json.dumps(doc | {"entries": []}).encode())
    code, found = check(f"hotlist/{name}")
    assert code == 1 and [(f["list_key"], f["version"]["version_id"]) for f in found] == [
        (f"evidence/{hl.store_key}", forged)]
    assert "no audited change recorded" in found[0]["reason"]
    s3.put_bytes(MODELS_BUCKET, wl.key, s3.get_bytes(MODELS_BUCKET, wl.key).replace(b'"fraud"', b'"theft"'))
    code, found = check(f"watchlist/{name}-")
    assert code == 1 and [f["list_key"] for f in found] == [f"models/{wl.key}"]
    res = CliRunner().invoke(app, ["audit", "lists", "--prefix", f"hotlist/{name}"])
    assert res.exit_code == 1 and "UNAUDITED" in res.output and forged in res.output


def test_audit_lists_names_a_current_copy_put_back_to_an_earlier_audited_state(home, monkeypatch):
    """Every version holds an audited state, but the current one is not the latest (H-2 taken off the list by
    putting the first version back): reported, with the version that holds the latest state to copy back."""
    from cluster import store
    from serve import listdigest
    from twin.objectstore import EVIDENCE_BUCKET

    s3 = store.open_store()
    hl, name, _ = _audited_hotlist(s3)
    hl.add("ก 1", reason="stolen", actor="officer:a", entry_id="H-1")
    first = s3.get_bytes(EVIDENCE_BUCKET, hl.store_key)
    hl.add("ข 2", reason="stolen", actor="officer:a", entry_id="H-2")
    latest = s3.stat(EVIDENCE_BUCKET, hl.store_key).version_id
    put_back = s3.put_bytes(EVIDENCE_BUCKET, hl.store_key, first)
    monkeypatch.setattr(listdigest, "SETTLE_S", 600.0)
    res = CliRunner().invoke(app, ["audit", "lists", "--prefix", f"hotlist/{name}", "--json"])
    assert (res.exit_code, res.stdout) == (0, "")  # under SETTLE_S after the change: taken as its write in flight
    monkeypatch.setattr(listdigest, "SETTLE_S", 0.0)
    res = CliRunner().invoke(app, ["audit", "lists", "--prefix", f"hotlist/{name}", "--json"])
    found = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.exit_code == 1 and [f["version"]["version_id"] for f in found] == [put_back]
    assert "an earlier audited state" in found[0]["reason"] and f"version {latest} holds it" in found[0]["reason"]
