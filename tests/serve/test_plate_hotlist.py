"""Plate hotlist: fuzzy look-alike matching, expiry, audit trail and reload after restart (file and store)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from serve.audit import AuditLog
from serve.plate.hotlist import Hotlist, HotlistError
from serve.plate.parse import parse_plate


class Clock:
    """A settable UTC clock so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _hotlist(tmp_path, clock=None, store=None):
    return Hotlist(tmp_path / "hotlist.json", AuditLog(tmp_path / "audit.jsonl", name="hotlist"), store=store,
                   clock=clock)


def test_fuzzy_match_accepts_one_lookalike_edit_and_rejects_two(tmp_path):
    hl = _hotlist(tmp_path)
    e = hl.add("1ผข 1234 ภูเก็ต", reason="stolen", actor="officer:somchai")
    exact = hl.match(parse_plate("1ผข 1234", "ภูเกิต"))
    assert [(m.entry.id, m.distance, m.exact, m.province_checked) for m in exact] == [(e.id, 0.0, True, True)]
    one = hl.match(parse_plate("1ฝข 1234", "ภูเก็ต"))  # ผ read as ฝ
    assert [(m.entry.id, m.distance, m.exact) for m in one] == [(e.id, 0.5, False)]
    assert hl.match(parse_plate("1ฝช 1234", "ภูเก็ต")) == []  # two look-alike edits
    assert hl.match(parse_plate("1กข 1234", "ภูเก็ต")) == []  # one ordinary edit
    assert hl.match(parse_plate("1ผข 1235", "ภูเก็ต")) == []  # a digit is never cheap
    assert hl.match(parse_plate("1ผข 1234", "สงขลา")) == []  # same registration, other province
    unknown_prov = hl.match(parse_plate("1ผข 1234"))
    assert len(unknown_prov) == 1 and not unknown_prov[0].province_checked


def test_per_entry_distance_widens_the_match(tmp_path):
    hl = _hotlist(tmp_path)
    hl.add("กข 99", reason="warrant W-2026-0007", actor="officer:a", max_distance=1.0)
    assert len(hl.match(parse_plate("ขข 99"))) == 1  # one ordinary edit now allowed
    assert hl.match(parse_plate("ขช 98")) == []  # 1 + 0.5 > 1.0
    with pytest.raises(HotlistError, match="max_distance"):
        hl.add("กข 98", reason="x", actor="officer:a", max_distance=5)


def test_expiry_stops_matching_and_purge_is_audited(tmp_path):
    clock = Clock()
    hl = _hotlist(tmp_path, clock)
    e = hl.add("ฒต 808 สงขลา", reason="stolen", actor="officer:a", expires_at=clock.now + timedelta(days=1))
    p = parse_plate("ฒต 808", "สงขลา")
    assert len(hl.match(p)) == 1
    clock.now += timedelta(days=1, seconds=1)
    assert hl.match(p) == [] and hl.entries() == [] and [x.id for x in hl.entries(include_expired=True)] == [e.id]
    assert [x.id for x in hl.purge_expired()] == [e.id] and len(hl) == 0
    with pytest.raises(HotlistError, match="already past"):
        hl.add("ฒต 808", reason="stolen", actor="officer:a", expires_at=clock.now - timedelta(hours=1))
    actions = [(ev.action, ev.subject) for ev in hl.audit.events()]
    assert actions == [("hotlist.add", e.id), ("hotlist.expire", e.id)]


def test_every_change_is_audited_and_reloaded_after_restart(tmp_path):
    hl = _hotlist(tmp_path)
    a = hl.add("1กข 1234 กรุงเทพมหานคร", reason="stolen", actor="officer:a", entry_id="H-1")
    b = hl.add("ฒต 808", reason="warrant", actor="officer:b", note="red pick-up")
    with pytest.raises(HotlistError, match="already exists"):
        hl.add("ก 1", reason="x", actor="officer:a", entry_id="H-1")
    with pytest.raises(HotlistError, match="not a Thai registration"):
        hl.add("ABC-123", reason="x", actor="officer:a")
    hl.remove("H-1", actor="officer:c", reason="recovered")
    with pytest.raises(HotlistError, match="no hotlist entry"):
        hl.remove("H-1", actor="officer:c")
    evs = hl.audit.events()
    assert [(e.actor, e.action, e.subject) for e in evs] == [
        ("officer:a", "hotlist.add", a.id), ("officer:b", "hotlist.add", b.id), ("officer:c", "hotlist.remove", "H-1")]
    assert evs[2].details["reason"] == "recovered" and evs[0].details["plate"] == a.plate.text
    assert hl.audit.verify() == 3
    again = _hotlist(tmp_path)  # a restart
    assert [e.id for e in again.entries()] == [b.id] and again.get(b.id).note == "red pick-up"
    assert again.match(parse_plate("1กข 1234")) == []  # removal is real
    assert oct((tmp_path / "hotlist.json").stat().st_mode & 0o777) == "0o600"  # written by serve.keys.write_private
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def _node(tmp_path, node, key, store, clock=None):
    """A hotlist node with its own state folder (file and audit log) sharing the store and the log's mirror."""
    name = f"hotlist-{tmp_path.name[-20:].lower()}"
    return Hotlist(tmp_path / node / "hotlist.json", AuditLog(tmp_path / node / "audit.jsonl", name=name, store=store),
                   store=store, store_key=key, clock=clock)


def test_fresh_node_reloads_the_hotlist_from_the_store(tmp_path, s3_store):
    key = f"hotlist/test-{tmp_path.name}.json"
    first = _node(tmp_path, "a", key, s3_store)
    e = first.add("9ฮ 9999 ยะลา", reason="stolen", actor="officer:a")
    fresh = _node(tmp_path, "b", key, s3_store)  # no file, no audit log: the log catches up from the mirror
    assert [x.id for x in fresh.entries()] == [e.id]
    assert fresh.match(parse_plate("9ฮ 9999", "ยะลา"))[0].exact
    assert [ev.action for ev in fresh.audit.events()] == ["hotlist.add"]


def test_a_forged_store_copy_is_refused_on_a_fresh_node(tmp_path, s3_store, monkeypatch):
    import json

    from serve import listdigest
    from serve.listdigest import UnauditedListCopy
    from twin.objectstore import EVIDENCE_BUCKET

    key = f"hotlist/test-{tmp_path.name}.json"
    s3_store.put_bytes(EVIDENCE_BUCKET, key + ".x", json.dumps({"version": 1, "entries": [{"id": "X"}]}).encode())
    with pytest.raises(UnauditedListCopy, match="must hold an empty list"):  # forged before any audited change
        _node(tmp_path, "x", key + ".x", s3_store)
    for junk in (b"not json", b"[1]"):  # not a hotlist document at all: refused by name, not a traceback
        v = s3_store.put_bytes(EVIDENCE_BUCKET, key + ".x", junk)
        with pytest.raises(UnauditedListCopy, match=f"version {v}. is not a hotlist document"):
            _node(tmp_path, "x", key + ".x", s3_store)
    a = _node(tmp_path, "a", key, s3_store)
    a.add("1กข 1234 ภูเก็ต", reason="stolen", actor="officer:a", entry_id="H-1")
    audited = s3_store.get_bytes(EVIDENCE_BUCKET, key)
    doc = json.loads(audited)
    doc["entries"].append(doc["entries"][0] | {"id": "H-FORGED", "plate": a.get("H-1").plate.model_copy(
        update={"number": "9999"}).model_dump(mode="json")})  # a plate added with the S3 credentials only
    forged = s3_store.put_bytes(EVIDENCE_BUCKET, key, json.dumps(doc).encode())
    with pytest.raises(UnauditedListCopy) as err:
        _node(tmp_path, "b", key, s3_store)
    msg = str(err.value)
    assert f"s3://evidence/{key}" in msg and f"version {forged}" in msg and "ssz audit lists" in msg
    assert not (tmp_path / "b" / "hotlist.json").exists()  # nothing was loaded or saved
    s3_store.client.remove_object(EVIDENCE_BUCKET, key)  # a delete marker: an empty list is not the audited one
    monkeypatch.setattr(listdigest, "SETTLE_S", 0.1)  # nothing, as before the first change: read again a moment
    with pytest.raises(UnauditedListCopy, match="version none"):
        _node(tmp_path, "c", key, s3_store)
    s3_store.put_bytes(EVIDENCE_BUCKET, key, audited)  # the audited version put back: loaded
    assert [e.id for e in _node(tmp_path, "d", key, s3_store).entries()] == ["H-1"]
    # the node's own file is its own: a node that has one loads it whatever the store holds
    s3_store.put_bytes(EVIDENCE_BUCKET, key, json.dumps(doc).encode())
    assert [e.id for e in _node(tmp_path, "a", key, s3_store).entries()] == ["H-1"]
    # a log from before digests were recorded cannot vouch for a copy: refused, saying what to do
    old = tmp_path / f"legacy{tmp_path.name[-8:]}"
    _node(old, "a", key + ".old", s3_store).audit.append("officer:a", "hotlist.add", "H-1", {"plate": "ก 1"})
    s3_store.put_bytes(EVIDENCE_BUCKET, key + ".old", audited)
    with pytest.raises(UnauditedListCopy, match="records no list digest in its 1 events"):
        _node(old, "b", key + ".old", s3_store)


def test_a_node_starting_while_a_change_is_written_waits_for_it_and_a_rolled_back_copy_is_refused(
        tmp_path, s3_store, monkeypatch):
    """The change's event is in the mirror before its copy is in the store (write-ahead): a fresh node that reads
    the copy in between reads it again until the change's copy arrives. A copy put back to the state before the
    latest change (a plate taken off with the S3 credentials) is refused once that wait is over."""
    import threading

    from serve import listdigest
    from serve.listdigest import UnauditedListCopy
    from twin.objectstore import EVIDENCE_BUCKET

    key = f"hotlist/test-{tmp_path.name}.json"
    a = _node(tmp_path, "a", key, s3_store)
    a.add("ก 1", reason="stolen", actor="officer:a", entry_id="H-1")
    before = s3_store.get_bytes(EVIDENCE_BUCKET, key)
    assert len(_node(tmp_path, "s", key, s3_store)) == 1  # a node that loads from the store: its log stops at H-1
    real = type(s3_store).put_bytes
    fresh: list[object] = []

    def late_put(self, bucket, k, *args, **kw):  # a node starts between the change's event and its copy
        if k == key and not fresh:
            def start() -> None:
                try:
                    fresh.append(sorted(e.id for e in _node(tmp_path, "b", key, s3_store).entries()))
                except UnauditedListCopy as e:
                    fresh.append(e)

            t = threading.Thread(target=start)
            t.start()
            time.sleep(0.5)
            out = real(self, bucket, k, *args, **kw)
            t.join()
            return out
        return real(self, bucket, k, *args, **kw)

    monkeypatch.setattr(type(s3_store), "put_bytes", late_put)
    a.add("ข 2", reason="stolen", actor="officer:a", entry_id="H-2")
    monkeypatch.undo()
    assert fresh == [["H-1", "H-2"]]
    rolled_back = s3_store.put_bytes(EVIDENCE_BUCKET, key, before)
    monkeypatch.setattr(listdigest, "SETTLE_S", 0.3)
    t0 = time.monotonic()
    with pytest.raises(UnauditedListCopy, match=r"holds the state before the latest change \(event 2, hotlist\.add H-2"
                       ) as err:
        _node(tmp_path, "c", key, s3_store)
    assert 0.3 <= time.monotonic() - t0 < 2 and f"version {rolled_back}" in str(err.value)
    with pytest.raises(UnauditedListCopy, match="before the latest change"):  # its log learns H-2 from the mirror
        _node(tmp_path, "s", key, s3_store)


def test_audited_add_remove_expire_and_undo_record_the_state_they_write(tmp_path, s3_store, monkeypatch):
    import json

    from serve.listdigest import state_digest
    from twin.objectstore import EVIDENCE_BUCKET

    key = f"hotlist/test-{tmp_path.name}.json"
    clock = Clock()
    a = _node(tmp_path, "a", key, s3_store, clock=clock)

    def stored_digest() -> str:
        return state_digest(sorted(json.loads(s3_store.get_bytes(EVIDENCE_BUCKET, key))["entries"],
                                   key=lambda e: e["id"]))

    written = []
    a.add("ก 1", reason="stolen", actor="officer:a", entry_id="H-1")
    written.append(stored_digest())
    a.add("ข 2", reason="stolen", actor="officer:a", entry_id="H-2", expires_at=clock.now + timedelta(hours=1))
    written.append(stored_digest())
    a.remove("H-1", actor="officer:a")
    written.append(stored_digest())
    clock.now += timedelta(hours=2)
    assert [e.id for e in a.purge_expired()] == ["H-2"]
    written.append(stored_digest())
    assert written[3] == state_digest([]) and len(set(written)) == 4
    events = a.audit.events()
    assert [e.details["list_sha256"] for e in events] == written
    assert {e.details["list_key"] for e in events} == {f"evidence/{key}"}
    assert len(_node(tmp_path, "b", key, s3_store)) == 0  # the audited empty list
    a.add("ค 3", reason="stolen", actor="officer:a", entry_id="H-3")
    before = stored_digest()
    real = type(a.store).put_bytes
    calls = []

    def fails_once(self, *args, **kw):  # the store refuses the change's write; the undo's write goes through
        calls.append(1)
        if len(calls) == 1:
            raise OSError("store down")
        return real(self, *args, **kw)

    monkeypatch.setattr(type(a.store), "put_bytes", fails_once)
    with pytest.raises(OSError):
        a.add("ง 4", reason="stolen", actor="officer:a", entry_id="H-4")
    monkeypatch.undo()
    assert [e.action for e in a.audit.events()][-2:] == ["hotlist.add", "hotlist.add.failed"]
    assert stored_digest() == before  # the undo put the previous entries back: the previous digest
    c = _node(tmp_path, "c", key, s3_store)
    assert [e.id for e in c.entries()] == ["H-3"]
    c.add("จ 5", reason="stolen", actor="officer:c", entry_id="H-5")  # c's log caught up: its event follows
    assert [e.seq for e in c.audit.events()] == list(range(1, 9))


def test_other_process_changes_are_picked_up_by_refresh(tmp_path):
    reader = _hotlist(tmp_path)
    writer = _hotlist(tmp_path)
    import os
    import time

    writer.add("ข 77", reason="stolen", actor="officer:a")
    os.utime(tmp_path / "hotlist.json", (time.time() + 5, time.time() + 5))  # coarse mtime clocks
    assert reader.refresh() and len(reader.entries()) == 1


def test_two_replicas_writing_one_file_lose_no_change(tmp_path):
    a = Hotlist(tmp_path / "hotlist.json", AuditLog(tmp_path / "audit-a.jsonl", name="hotlist"))
    b = Hotlist(tmp_path / "hotlist.json", AuditLog(tmp_path / "audit-b.jsonl", name="hotlist"))
    ea = a.add("ก 1", reason="stolen", actor="officer:a")
    eb = b.add("ข 2", reason="stolen", actor="officer:b")  # b started before a's change: must not drop it
    assert {e.id for e in _hotlist(tmp_path).entries()} == {ea.id, eb.id}
    a.remove(eb.id, actor="officer:a")  # a sees b's entry although it never reloaded explicitly
    assert b.refresh() and [e.id for e in b.entries()] == [ea.id]
    assert [e.id for e in _hotlist(tmp_path).entries()] == [ea.id]


@pytest.mark.services  # builds the plate service (Tesseract, the localiser): a model load
def test_the_plate_deployment_purges_expired_entries_on_load_and_on_a_timer(tmp_path):
    """A hotlist file holding an entry that expired while no replica ran: the replica purges it when it starts
    (audited as system:expiry), and an entry expiring later is purged by the timer, with no request."""
    import time

    from serve.plate.deployment import PlateDeployment

    clock = Clock()
    hl = _hotlist(tmp_path, clock)
    old = hl.add("ฒต 808 สงขลา", reason="stolen", actor="officer:a", expires_at=clock.now + timedelta(minutes=1))
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    later = hl.add("1กข 1234", reason="stolen", actor="officer:a", expires_at=soon)
    keep = hl.add("2ขค 55", reason="stolen", actor="officer:a")
    cfg = {"hotlist_path": str(tmp_path / "hotlist.json"), "audit_path": str(tmp_path / "audit.jsonl"),
           "purge_every_s": 0.5}
    replica = PlateDeployment.func_or_class(cfg)  # the replica's class, built here without Serve
    assert old.id not in {e.id for e in replica.service.hotlist.entries(include_expired=True)}
    deadline = time.time() + 15
    while time.time() < deadline and later.id in {e.id for e in replica.service.hotlist.entries(True)}:
        time.sleep(0.2)
    assert [e.id for e in replica.service.hotlist.entries(True)] == [keep.id]
    expired = [(ev.actor, ev.subject) for ev in hl.audit.events() if ev.action == "hotlist.expire"]
    assert expired == [("system:expiry", old.id), ("system:expiry", later.id)]


def test_three_consonant_betong_and_digits_only_entries_match(tmp_path):
    hl = _hotlist(tmp_path)
    moto = hl.add("กขค 123 เบตง", reason="stolen motorcycle", actor="officer:somchai", vehicle="motorcycle")
    assert moto.plate.region == "เบตง" and moto.plate.vehicle == "motorcycle" and moto.plate.letters == "กขค"
    truck = hl.add("32-0394 สงขลา", reason="warrant", actor="officer:somchai")
    assert truck.plate.registration == "32-0394"
    assert [m.entry.id for m in hl.match(parse_plate("กขค 123", "เบตง", vehicle="motorcycle"))] == [moto.id]
    assert [m.entry.id for m in hl.match(parse_plate("กขค 123", "ยะลา"))] == [moto.id]  # Betong lies in Yala
    assert hl.match(parse_plate("กขค 123", "สงขลา")) == []
    # the same registration on a car is another vehicle
    assert hl.match(parse_plate("กขค 123", "เบตง", vehicle="car")) == []
    assert [m.entry.id for m in hl.match(parse_plate("32-0394", "สงขลา"))] == [truck.id]
    with pytest.raises(HotlistError, match="vehicle must be"):
        hl.add("กข 1", reason="x", actor="a", vehicle="truck")  # type: ignore[arg-type]
    with pytest.raises(HotlistError, match=r"^'กขคง 123' is not a Thai registration"):
        hl.add("กขคง 123", reason="x", actor="a")
    reloaded = _hotlist(tmp_path)
    assert reloaded.get(moto.id).plate == moto.plate


@pytest.mark.services  # builds the plate service (the learned engine, the localiser): a model load
def test_a_named_list_matches_only_reads_the_service_verified(tmp_path):
    """With keep_unparsed the service returns the unverified reads too, parsed: scene 10119 (held-out, clean)
    holds 'นม5595 อุตรดิตถ์' (0.98) and the buildings right of the car read 'ฟ652' without a second line (the
    averaged weights shipped after stage 11: 0.2136, under their threshold of 0.2736; stage 11 'ฟ665', 0.2141, under
    0.2898; stage 10 read them 'ฬ60', 0.2456; stage 9 'ฬ7', 0.298, over
    its threshold but under min_confidence_without_second_line; stage 8 '2ฬ87'). A named list (a simulation's)
    holding both matches the plate only, as the operational hotlist does."""
    import asyncio

    from serve.plate.deployment import PlateDeployment
    from serve.plate.render import render_scene

    replica = PlateDeployment.func_or_class({"lists_dir": str(tmp_path), "purge_every_s": None,
                                             "service": {"keep_unparsed": True}})

    async def read_one(image):  # @serve.batch needs a Serve replica: the service's own read, one frame
        return replica.service.read([image])[0]

    replica._read_batch = read_one
    named = replica._hotlist("sim-signs")
    sign = named.add("ฟ 652", reason="stolen", actor="officer:a")
    plate = named.add("นม 5595", reason="stolen", actor="officer:a")
    reads = asyncio.run(replica.read(render_scene(10119, "clean").image, order="bgr", list_name="sim-signs"))
    parsed = {r.plate.key: r for r in reads if r.plate is not None}
    assert parsed["ฟ652"].text == "ฟ652\n" and parsed["ฟ652"].confidence < 0.7  # returned (keep_unparsed), unverified
    assert not parsed["ฟ652"].verified and parsed["ฟ652"].hotlist == []
    assert parsed["นม5595"].verified and [m.entry.id for m in parsed["นม5595"].hotlist] == [plate.id]
    assert sign.id not in {m.entry.id for r in reads for m in r.hotlist}
