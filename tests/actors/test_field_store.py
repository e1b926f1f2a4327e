"""The field store on the real S3 server (durable inbox, idempotency, restart, commit once) and the alert desk
state machine of the sink (take, decide, assign, close; idempotent; who holds it), plus mobile cameras whose
alerts take the GPS position of the frame's time from the field store actor (real Ray)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pyarrow as pa
import pytest

from actors.alerts import AlertActionError, AlertSinkConfig, AlertSinkCore, AlertTaken, CameraPlace
from actors.field import FieldStoreConfig, FieldStoreCore
from serve.audit import AuditLog
from serve.errors import ConflictError, NotFoundError
from twin.layers import validate_rows
from twin.snapshots import SnapshotStore


def _pings(unit: str, n: int, t0: float, lon: float = 100.47, lat: float = 7.0) -> pa.Table:
    rows = [{"unit_id": unit, "ts": dt.datetime.fromtimestamp(t0 + i, dt.UTC), "lon": lon + i * 1e-5, "lat": lat,
             "speed_mps": 4.0} for i in range(n)]
    return validate_rows("patrol_pings", rows, city="x").table


@pytest.fixture()
def city() -> str:
    return f"f{uuid.uuid4().hex[:8]}"


def test_accepted_batches_survive_a_restart_and_commit_once(s3_store, city):
    cfg = FieldStoreConfig(city=city, trail_s=900)
    store = FieldStoreCore(cfg, store=s3_store)
    t0 = time.time() - 120
    a = _pings("u1", 50, t0).replace_schema_metadata(None)
    a = a.set_column(a.schema.get_field_index("city"), "city", pa.array([city] * 50))
    assert store.accept("patrol_pings", a, "k1") == {"accepted": 50, "duplicate": False, "layer": "patrol_pings"}
    assert store.accept("patrol_pings", a, "k1")["duplicate"] is True
    pos = store.positions()["u1"]
    assert pos["lon"] == pytest.approx(100.47 + 49e-5) and len(pos["trail"]) == 50
    assert store.position_at("u1", t0 + 10.5) == pytest.approx((100.47 + 10e-5, 7.0))
    assert store.position_at("u1", t0 - 100) == pytest.approx((100.47, 7.0))  # before the trail: its first fix
    assert store.position_at("nobody", t0) is None

    # a new process (the actor restarted before any commit) reloads the inbox and the keys
    again = FieldStoreCore(cfg, store=s3_store)
    assert again.stats.reloaded_batches == 1 and again.accept("patrol_pings", a, "k1")["duplicate"] is True
    snap = again.commit("test")
    rows = SnapshotStore(s3_store, city).open(snap).table("patrol_pings")
    assert rows.num_rows == 50
    # the first process commits the same batch too (as after a crash between snapshot and inbox clean-up):
    # its rows are already in the snapshot, so they are not added twice
    snap2 = store.commit("again")
    assert SnapshotStore(s3_store, city).open(snap2).table("patrol_pings").num_rows == 50
    third = FieldStoreCore(cfg, store=s3_store)  # inbox emptied, keys kept
    assert third.stats.reloaded_batches == 0 and third.accept("patrol_pings", a, "k1")["duplicate"] is True
    assert third.commit() is None
    with pytest.raises(ValueError, match="field store keeps"):
        third.accept("alerts", a, "k2")


def test_a_ping_sent_twice_is_committed_once(s3_store, city):
    """A device that repeats a ping in one batch, or resends it in a second batch under another key (OsmAnd
    resends its unsent buffer), adds it to the twin once."""
    store = FieldStoreCore(FieldStoreConfig(city=city, trail_s=900), store=s3_store)
    one = _pings("u1", 3, time.time() - 120).replace_schema_metadata(None)
    one = one.set_column(one.schema.get_field_index("city"), "city", pa.array([city] * 3))
    twice = pa.concat_tables([one, one.slice(0, 1)])
    assert store.accept("patrol_pings", twice, "k1")["accepted"] == 4
    assert store.accept("patrol_pings", one, "k2")["duplicate"] is False  # the same pings, a new key
    # a client that reuses its key for another batch is told so; the same body under it is a retry
    assert store.accept("patrol_pings", one, "k3", "body-a")["duplicate"] is False
    assert store.accept("patrol_pings", one, "k3", "body-a")["duplicate"] is True
    with pytest.raises(ConflictError, match="Idempotency-Key was used 0 s ago for another batch: nothing was stored"):
        store.accept("patrol_pings", twice, "k3", "body-b")
    # and after a restart before any commit (the key known only from its inbox object): refused, not a retry
    restarted = FieldStoreCore(FieldStoreConfig(city=city, trail_s=900), store=s3_store)
    with pytest.raises(ConflictError, match="another batch"):
        restarted.accept("patrol_pings", twice, "k3", "body-b")
    assert restarted.accept("patrol_pings", one, "k3", "body-a")["duplicate"] is True
    rows = SnapshotStore(s3_store, city).open(store.commit("test")).table("patrol_pings")
    assert rows.num_rows == 3
    assert sorted(rows["ts"].to_pylist()) == sorted(one["ts"].to_pylist())


def test_alert_desk_states_idempotence_and_holder(s3_store, tmp_path):
    cfg = AlertSinkConfig(city=f"d{uuid.uuid4().hex[:8]}", audit_path=str(tmp_path / "audit.jsonl"),
                          cameras={"pole-1": CameraPlace(lon=100.47, lat=7.0)})
    sink = AlertSinkCore(cfg, store=s3_store)
    sink.subscribe("ccoc")
    row = {"alert_id": "sos-0001", "camera_id": "pole-1", "ts": dt.datetime.now(dt.UTC), "kind": "sos",
           "subject_id": "pole-1", "lon": 100.47, "lat": 7.0}
    assert sink.raise_field_alert(row, {"text": "help"})["duplicate"] is False
    assert sink.raise_field_alert(row)["duplicate"] is True
    with pytest.raises(AlertActionError, match="confirm or dismiss"):
        sink.act("sos-0001", "close", "api:a")
    assert sink.act("sos-0001", "acknowledge", "api:a")["changed"] is True
    assert sink.act("sos-0001", "acknowledge", "api:a")["changed"] is False
    with pytest.raises(AlertTaken, match="held by api:a"):
        sink.act("sos-0001", "confirm", "api:b")
    with pytest.raises(AlertActionError, match="reason"):
        sink.act("sos-0001", "dismiss", "api:a")
    rec = sink.act("sos-0001", "dismiss", "api:a", reason="test")
    assert rec["status"] == "dismissed" and rec["status_reason"] == "test" and rec["changed"]
    assert sink.act("sos-0001", "dismiss", "api:a", reason="test")["changed"] is False
    with pytest.raises(AlertActionError, match="already dismissed"):
        sink.act("sos-0001", "confirm", "api:a")
    with pytest.raises(AlertActionError, match="dismissed"):
        sink.act("sos-0001", "assign", "api:a", unit="u1")
    assert sink.act("sos-0001", "close", "api:a")["closed_ts"]
    with pytest.raises(NotFoundError):
        sink.act("nope", "confirm", "api:a")
    actions = [(e.actor, e.action) for e in AuditLog(cfg.audit_path).events("sos-0001")]
    assert actions == [("system:alert-sink", "alert.raised"), ("api:a", "alert.acknowledge"),
                       ("api:a", "alert.dismiss"), ("api:a", "alert.close")]
    assert [p["event"] for p in sink.poll("ccoc")] == ["alert", "update", "update", "update"]
    # the state survives a restart and reaches the twin's alerts layer
    again = AlertSinkCore(cfg, store=s3_store)
    t = again.table()
    assert t.column("status").to_pylist() == ["dismissed"] and t.column("closed_ts")[0].as_py() is not None
    assert t.column("status_reason").to_pylist() == ["test"]


def test_mobile_camera_alert_takes_the_gps_position_of_its_frame(s3_store, ray_cluster, tmp_path):
    import ray

    from actors.field import field_name, start_field_store
    from twin.schemas import alert_id

    city = f"m{uuid.uuid4().hex[:8]}"
    field = start_field_store(FieldStoreConfig(city=city, s3=s3_store.settings))
    try:
        t0 = time.time() - 60
        pings = _pings("van-1", 30, t0, lon=100.40, lat=7.01)
        pings = pings.set_column(pings.schema.get_field_index("city"), "city", pa.array([city] * 30))
        ray.get(field.accept.remote("patrol_pings", pings, "b1"))
        cfg = AlertSinkConfig(city=city, audit_path=str(tmp_path / "a.jsonl"), mobile_cameras=["van-1"],
                              field_actor=field_name(city), cameras={"van-1": CameraPlace(lon=100.0, lat=7.0)})
        sink = AlertSinkCore(cfg, store=s3_store)
        ev = {"type": "alert-decision", "shard_id": "s0", "alert_id": alert_id("van-1", "face", "W-9", "t1"),
              "decision": "alert", "camera_id": "van-1", "track_id": "t1", "subject_id": "W-9", "label": "face",
              "ts": t0 + 20.2, "first_ts": t0 + 19.0, "frame_ts": t0 + 20.2, "score": 0.9, "n_matches": 3,
              "reason": "3 frames"}
        sink.submit([ev])
        [rec] = sink.alerts()
        assert (rec["lon"], rec["lat"]) == pytest.approx((100.40 + 20e-5, 7.01))
    finally:
        ray.kill(field)
