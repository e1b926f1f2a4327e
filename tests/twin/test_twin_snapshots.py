"""Snapshots in the real S3 store: atomic commits, concurrent writers, time travel, diff and retention."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pyarrow as pa
import pytest

from twin.layers import TwinState
from twin.objectstore import TWIN_BUCKET, Store, StoreError
from twin.snapshots import SnapshotStore

T0 = dt.datetime(2021, 12, 1, 1, 0, tzinfo=dt.UTC)


def _city() -> str:
    return "snap_" + uuid.uuid4().hex[:8]


def _alerts(prefix: str, n: int, status: str = "new") -> list[dict[str, object]]:
    extra = {"status_by": "op-1", "status_ts": T0 + dt.timedelta(hours=1)} if status != "new" else {}
    return [{"alert_id": f"{prefix}-{i}", "camera_id": f"cam-{i % 7}", "ts": T0 + dt.timedelta(seconds=i),
             "kind": "face", "subject_id": f"wl-{i % 3}", "score": 0.9, "status": status, "lon": 98.97,
             "lat": 18.8, **extra} for i in range(n)]


def _cameras(n: int) -> list[dict[str, object]]:
    return [{"camera_id": f"cam-{i}", "kind": "cctv", "mount": "fixed", "owner": "police", "heading_deg": 90.0,
             "fov_deg": 60.0, "range_m": 30.0, "lon": 98.97 + i * 1e-5, "lat": 18.8} for i in range(n)]


def _state(city: str, n: int, prefix: str = "a") -> TwinState:
    st = TwinState(city)
    st.append("alerts", _alerts(prefix, n), strict=True)
    st.append("cameras", _cameras(n), strict=True)
    return st


def test_create_list_open_and_share_unchanged_layers(s3_store: Store) -> None:
    city = _city()
    snaps = SnapshotStore(s3_store, city)
    assert snaps.latest() is None
    with pytest.raises(StoreError, match="no snapshots yet"):
        snaps.open()
    st = _state(city, 50)
    m1 = snaps.create(st, message="first", author="tester")
    st.append("alerts", _alerts("b", 5), strict=True)
    m2 = snaps.create(st, message="second")
    assert [m.id for m in snaps.list()] == ["0000000001", "0000000002"] and m2.parent == m1.id
    # cameras did not change: the second snapshot points at the first one's object
    assert m2.layers["cameras"].key == m1.layers["cameras"].key
    assert m2.layers["alerts"].key != m1.layers["alerts"].key
    s1, s2 = snaps.open(1), snaps.open("0000000002")
    assert s1.table("alerts").num_rows == 50 and s2.table("alerts").num_rows == 55
    assert s2.table("alerts").equals(st.table("alerts"))
    assert s2.state().counts()["cameras"] == 50
    # A fresh reader (no cache) sees the same thing.
    assert SnapshotStore(s3_store, city).open().table("alerts").num_rows == 55
    with pytest.raises(StoreError, match="no snapshot 0000000009"):
        snaps.open(9)
    with pytest.raises(ValueError, match="does not fit its schema"):
        snaps.create({"alerts": pa.table({"alert_id": ["x"]})})


def test_time_travel_returns_the_right_version(s3_store: Store) -> None:
    city = _city()
    snaps = SnapshotStore(s3_store, city)
    for k, hour in enumerate((7, 8, 9), start=1):
        snaps.create(_state(city, 10 * k), as_of=f"2021-12-01 {hour:02d}:00", tz="Asia/Bangkok")
    got = snaps.open(as_of="2021-12-01 08:30", tz="Asia/Bangkok")
    assert got.id == "0000000002" and got.table("alerts").num_rows == 20
    assert snaps.open(as_of=dt.datetime(2021, 12, 1, 2, 0, tzinfo=dt.UTC)).id == "0000000003"  # 09:00 +07
    assert snaps.open(as_of="2021-12-01T00:59:59+00:00").id == "0000000001"
    with pytest.raises(StoreError, match="no snapshot"):
        snaps.open(as_of="2021-12-01 06:59", tz="Asia/Bangkok")
    # Without as_of the snapshot is stamped with its commit time.
    m4 = snaps.create(_state(city, 40))
    assert abs((m4.as_of - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    assert snaps.open(as_of=m4.as_of).id == m4.id


def test_diff_counts_added_removed_changed(s3_store: Store) -> None:
    city = _city()
    snaps = SnapshotStore(s3_store, city)
    st = _state(city, 10)
    m1 = snaps.create(st)
    alerts = st.table("alerts").to_pylist()
    alerts = [r for r in alerts if r["alert_id"] != "a-3"]                     # removed
    alerts[0].update(status="confirmed", status_by="op-7", status_ts=T0 + dt.timedelta(hours=2))  # changed
    alerts.append({**alerts[1], "alert_id": "a-new"})                          # added
    st.replace("alerts", pa.Table.from_pylist(alerts, schema=st.table("alerts").schema))
    m2 = snaps.create(st)
    d = snaps.diff(m1.id, m2.id)
    assert d.counts() == {"alerts": {"added": 1, "removed": 1, "changed": 1}}
    assert d.layers["alerts"].added.column("alert_id").to_pylist() == ["a-new"]
    assert d.layers["alerts"].removed.column("alert_id").to_pylist() == ["a-3"]
    assert d.layers["alerts"].changed.column("status").to_pylist() == ["confirmed"]
    assert d.layers["cameras"].counts() == {"added": 0, "removed": 0, "changed": 0}


def test_retention_keeps_newest_and_frees_unreferenced_objects(s3_store: Store) -> None:
    city = _city()
    snaps = SnapshotStore(s3_store, city)
    st = _state(city, 5)
    for k in range(5):
        st.append("alerts", _alerts(f"r{k}", 3), strict=True)
        snaps.create(st, message=str(k))
    data_before = snaps._list(f"{snaps.base}/data/")
    # The first snapshot writes all 11 layers; the next four only their new alerts (the rest is shared).
    assert len(data_before) == 11 + 4
    dry = snaps.retain(keep_last=2, grace=dt.timedelta(0), dry_run=True)
    assert dry.deleted == ["0000000001", "0000000002", "0000000003"] and len(snaps.ids()) == 5
    assert snaps.retain(older_than=dt.timedelta(days=1)).deleted == []  # nothing is a day old
    rep = snaps.retain(keep_last=2, grace=dt.timedelta(0))
    assert rep.kept == ["0000000004", "0000000005"] and snaps.ids() == rep.kept
    data_after = snaps._list(f"{snaps.base}/data/")
    # alerts of 4 and 5, and the 10 objects of snapshot 1 they still share (cameras and empty layers)
    assert len(data_after) == 2 + 10
    assert SnapshotStore(s3_store, city).open(4).table("cameras").num_rows == 5
    # Every version is gone, not just hidden behind a delete marker.
    versions = list(s3_store.client.list_objects(TWIN_BUCKET, prefix=f"{snaps.base}/manifests/0000000001",
                                                 include_version=True))
    assert versions == []
    nxt = snaps.create(_state(city, 1))
    assert nxt.id == "0000000006" and nxt.parent == "0000000005"
    with pytest.raises(ValueError):
        snaps.retain()


def test_reader_never_sees_a_partial_snapshot(s3_store: Store) -> None:
    city = _city()
    writer = SnapshotStore(s3_store, city)
    writer.create(_state(city, 100), message="100")
    stop = threading.Event()
    seen: list[str] = []
    problems: list[str] = []

    def read() -> None:
        r = SnapshotStore(s3_store, city)
        while not stop.is_set():
            try:
                snap = r.open()
                n = int(snap.manifest.message)
                tabs = snap.tables()
                if not (tabs["alerts"].num_rows == tabs["cameras"].num_rows == n):
                    problems.append(f"{snap.id}: {tabs['alerts'].num_rows}/{tabs['cameras'].num_rows} != {n}")
                seen.append(snap.id)
            except Exception as e:  # any failure to read a listed snapshot is a partial snapshot
                problems.append(repr(e))

    paused = threading.Event()
    mid_write: list[str] = []

    def hook() -> None:  # data objects are stored, the manifest is not: a reader must still see the old one
        mid_write.append(SnapshotStore(s3_store, city).open().id)
        paused.set()

    t = threading.Thread(target=read)
    t.start()
    try:
        for k in range(2, 7):
            writer.create(_state(city, 100 * k, prefix=f"w{k}"), message=str(100 * k),
                          before_commit=hook if k == 4 else None)
    finally:
        stop.set()
        t.join(30)
    assert problems == []
    assert mid_write == ["0000000003"] and paused.is_set()
    assert len(seen) > 5 and seen == sorted(seen)  # monotonic: never back to an older snapshot
    assert writer.latest().id == "0000000006"  # type: ignore[union-attr]


def test_concurrent_writers_do_not_corrupt_each_other(s3_store: Store) -> None:
    city = _city()
    results: dict[str, list[str]] = {"x": [], "y": []}
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def write(name: str) -> None:
        snaps = SnapshotStore(s3_store, city)
        barrier.wait()
        try:
            for k in range(4):
                m = snaps.create(_state(city, 20 + k, prefix=f"{name}{k}"), author=name, message=f"{name}{k}")
                results[name].append(m.id)
        except Exception as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=write, args=(n,)) for n in results]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    assert errors == []
    snaps = SnapshotStore(s3_store, city)
    mans = snaps.list()
    assert [m.seq for m in mans] == list(range(1, 9))
    assert sorted(results["x"] + results["y"]) == [m.id for m in mans]
    assert [m.parent for m in mans] == [None] + [m.id for m in mans[:-1]]
    for m in mans:  # every commit holds exactly what its writer wrote
        k = int(m.message[1:])
        ids = snaps.open(m.id).table("alerts").column("alert_id").to_pylist()
        assert ids == [f"{m.message}-{i}" for i in range(20 + k)] and m.author == m.message[0]


def test_altered_object_is_detected(s3_store: Store) -> None:
    city = _city()
    snaps = SnapshotStore(s3_store, city)
    m = snaps.create(_state(city, 3))
    s3_store.put_bytes(TWIN_BUCKET, m.layers["alerts"].key, b"garbage")
    with pytest.raises(StoreError, match="does not match its manifest hash"):
        SnapshotStore(s3_store, city).open().table("alerts")


def test_expect_parent_rejects_a_stale_read_modify_write(s3_store: Store) -> None:
    from twin.snapshots import SnapshotConflict

    city = _city()
    a, b = SnapshotStore(s3_store, city), SnapshotStore(s3_store, city)
    first = a.create(_state(city, 2), expect_parent="")
    with pytest.raises(SnapshotConflict):
        b.create(_state(city, 3), expect_parent="")
    base = b.open().id
    a.create(_state(city, 4), expect_parent=base)  # a wins the race
    with pytest.raises(SnapshotConflict, match="re-read the latest snapshot"):
        b.create(_state(city, 5), expect_parent=base)
    assert [m.id for m in a.list()] == [first.id, "0000000002"]
    retry = b.open().state()
    retry.append("alerts", _alerts("late", 1), strict=True)
    m = b.create(retry, expect_parent=b.latest().id)  # type: ignore[union-attr]
    assert m.id == "0000000003" and b.open().table("alerts").num_rows == 5
