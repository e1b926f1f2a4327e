"""Field files into the twin (cluster.fieldimport, ``ssz twin import``): GPS pings at 0,0 never reach a layer,
impossible jumps stay out of trips, QR scans find their box, risk points and polls land in their layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cluster.config import load_city
from cluster.fieldimport import import_area, layer_rows
from twin.fieldinput import read_table
from twin.fieldspecs import InputError


@pytest.fixture(scope="module")
def hatyai():
    return load_city("hatyai")


def _pings_csv(tmp_path: Path, city) -> Path:
    c = city.zone.centre
    rows = ["unit,time,lat,lon"]
    for i in range(6):  # unit A drives east 20 m per 10 s (2 m/s)
        rows.append(f"A,15/03/2569 07:{i // 6:02d}:{i * 10 % 60:02d},{c.lat:.6f},{c.lon + i * 0.00018:.6f}")
    rows.append("A,15/03/2569 07:01:05,0,0")  # no fix: null island
    rows.append(f"A,15/03/2569 07:01:10,{c.lat + 0.03:.6f},{c.lon:.6f}")  # 3.3 km in 5 s: an impossible jump
    rows.append(f"A,15/03/2569 07:01:20,{c.lat:.6f},{c.lon + 0.0011:.6f}")
    rows.append(f"A,15/03/2569 09:00:00,{c.lat:.6f},{c.lon:.6f}")  # two hours later: a second trip
    rows.append(f"A,15/03/2569 09:00:30,{c.lat:.6f},{c.lon + 0.0003:.6f}")
    p = tmp_path / "gps.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_gps_pings_null_island_and_jumps_stay_out_of_trips(tmp_path: Path, hatyai) -> None:
    res = read_table(_pings_csv(tmp_path, hatyai), "gps_pings", area=import_area(hatyai, "gps_pings"),
                     outside="drop")
    assert any("1 of 11 GPS pings are at 0,0" in w for w in res.warnings), res.warnings
    out = layer_rows(res, "hatyai")
    pings, trips = out["patrol_pings"], out["patrol_trips"]
    assert len(pings) == 10 and all(abs(p["lon"]) > 1 for p in pings)  # the 0,0 fix is not a position
    jumped = [p for p in pings if p["trip_id"] is None]
    assert len(jumped) == 1 and jumped[0]["lat"] > hatyai.zone.centre.lat + 0.02  # kept, flagged, in no trip
    assert [t["n_pings"] for t in trips] == [7, 2]
    assert max(trips[0]["path_lat"]) < hatyai.zone.centre.lat + 0.001  # the trip line never goes to the jump
    assert trips[0]["distance_m"] == pytest.approx(6 * 0.00018 * 110_500, rel=0.1)  # ~120 m along the street
    assert trips[0]["trip_id"] == "A@20260315T070000"


def test_qr_scans_take_their_box_position_and_check_nearness(tmp_path: Path, hatyai) -> None:
    c = hatyai.zone.centre
    places = pd.DataFrame({"place_id": ["hy-qr-01", "hy-qr-02"], "lon": [c.lon, c.lon + 0.002],
                           "lat": [c.lat, c.lat]})
    p = tmp_path / "scans.csv"
    p.write_text("จุดตรวจ,หน่วย,เวลาสแกน,ละติจูด,ลองจิจูด\n"
                 f"hy-qr-01,A,15/03/2569 22:10,{c.lat:.6f},{c.lon + 0.0001:.6f}\n"
                 f"hy-qr-02,A,15/03/2569 22:20,{c.lat:.6f},{c.lon:.6f}\n"
                 "hy-qr-02,B,15/03/2569 22:30,,\n", encoding="utf-8")
    res = read_table(p, "qr_scans", area=import_area(hatyai, "qr_scans"), outside="drop")
    rows = layer_rows(res, "hatyai", places)["checkpoint_scans"]
    assert [r["valid"] for r in rows] == [True, False, None]  # 11 m from its box; 220 m away; no GPS of its own
    assert (rows[2]["lon"], rows[2]["lat"]) == pytest.approx((c.lon + 0.002, c.lat))
    assert rows[0]["scan_id"] == "hy-qr-01@20260315T221000@A"
    with pytest.raises(InputError, match="not a place of the twin") as e:
        layer_rows(res, "hatyai", places.iloc[:1])
    assert e.value.row == 3


def test_risk_points_need_a_reported_date(tmp_path: Path, hatyai) -> None:
    c = hatyai.zone.centre
    p = tmp_path / "risk.csv"
    p.write_text(f"ประเภท,ละติจูด,ลองจิจูด\nไฟดับ,{c.lat:.6f},{c.lon:.6f}\n", encoding="utf-8")
    res = read_table(p, "risk_points", area=import_area(hatyai, "risk_points"))
    with pytest.raises(InputError, match="reported"):
        layer_rows(res, "hatyai")


def test_import_commits_a_snapshot_and_bad_files_exit_2(s3_store, tmp_path: Path, hatyai) -> None:
    from cluster.cli.twin import app
    from twin.snapshots import SnapshotStore

    runner = CliRunner()
    r = runner.invoke(app, ["import", "gps_pings", str(_pings_csv(tmp_path, hatyai)), "--city", "hatyai"])
    assert r.exit_code == 0, (r.output, r.exception)
    out = json.loads(r.stdout)
    assert out["layers"] == {"patrol_pings": 10, "patrol_trips": 2} and out["rows"] == 11 and out["read"] == 10
    assert "at 0,0" in r.stderr
    snap = SnapshotStore(s3_store, "hatyai").open(out["snapshot"])
    lon = snap.table("patrol_pings").column("lon").to_numpy()
    assert np.all(np.abs(lon) > 90)
    c = hatyai.zone.centre
    poll = tmp_path / "poll.csv"
    poll.write_text("ชุมชน,เดือน,จำนวนผู้ตอบ,ความหวาดกลัว,ความเชื่อมั่น\nชุมชนหน้าสถานี,03/2569,120,35.5,82\n",
                    encoding="utf-8")
    r = runner.invoke(app, ["import", "survey_results", str(poll), "--city", "hatyai"])
    assert r.exit_code == 0 and json.loads(r.stdout)["layers"] == {"survey_results": 1}, r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(f"unit,time,lat,lon\nA,31/02/2569 07:00,{c.lat},{c.lon}\n", encoding="utf-8")
    r = runner.invoke(app, ["import", "gps_pings", str(bad), "--city", "hatyai"])
    assert r.exit_code == 2 and "bad.csv: row 1" in r.stderr and "What to do" in r.stderr, r.output
    r = runner.invoke(app, ["import", "incidents", str(bad), "--city", "hatyai"])
    assert r.exit_code == 2 and "cannot be imported" in r.stderr


def test_risk_points_import_with_status_and_dates(s3_store, tmp_path: Path, hatyai) -> None:
    from cluster.cli.twin import app
    from twin.snapshots import SnapshotStore

    c = hatyai.zone.centre
    p = tmp_path / "risk.csv"
    p.write_text("รหัสจุด,ประเภท,สถานะ,วันที่แจ้ง,วันที่นัด,วันที่แก้ไข,ละติจูด,ลองจิจูด\n"
                 f"R1,ไฟดับ,แก้ไขแล้ว,01/03/2569,05/03/2569,09/03/2569,{c.lat:.6f},{c.lon:.6f}\n"
                 f"R2,ต้นไม้,,02/03/2569,,,{c.lat + 0.001:.6f},{c.lon:.6f}\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["import", "risk_points", str(p), "--city", "hatyai"])
    assert r.exit_code == 0, r.output
    assert "1 of 2 risk points have no status (rows 2)" in r.stderr
    t = SnapshotStore(s3_store, "hatyai").open(json.loads(r.stdout)["snapshot"]).table("risk_points").to_pandas()
    row = t.set_index("risk_id").loc["R1"]
    assert (row["status"], str(row["fixed_date"]), str(row["reported_date"])) == ("fixed", "2026-03-09", "2026-03-01")
    assert t.set_index("risk_id").loc["R2", "status"] == "reported"
    bad = tmp_path / "fixed_without_date.csv"
    bad.write_text("ประเภท,สถานะ,วันที่แจ้ง,ละติจูด,ลองจิจูด\n"
                   f"ไฟดับ,reported,01/03/2569,{c.lat:.6f},{c.lon:.6f}\nไฟดับ,fixed,01/03/2569,{c.lat:.6f},{c.lon:.6f}\n",
                   encoding="utf-8")
    r = CliRunner().invoke(app, ["import", "risk_points", str(bad), "--city", "hatyai"])
    assert r.exit_code == 2 and "fixed_without_date.csv: row 2" in r.stderr, r.stderr
    assert "fill in fixed_date, scheduled_date and import again" in r.stderr


def test_a_file_imported_twice_adds_its_rows_once(s3_store, tmp_path: Path, hatyai) -> None:
    """The same GPS file imported again (or a row repeated in it) adds nothing; a risk point imported again with
    a new status replaces its row."""
    import uuid

    from cluster.cli.twin import app
    from twin.snapshots import SnapshotStore

    c = hatyai.zone.centre
    unit = f"twice-{uuid.uuid4().hex[:6]}"
    p = tmp_path / "gps.csv"
    p.write_text("unit,time,lat,lon\n" + "".join(f"{unit},15/03/2569 07:00:{i * 10:02d},{c.lat:.6f},"
                                                 f"{c.lon + i * 0.0001:.6f}\n" for i in (0, 1, 2, 2)),
                 encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(app, ["import", "gps_pings", str(p), "--city", "hatyai"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["layers"] == {"patrol_pings": 3, "patrol_trips": 1}
    assert "1 of 4 patrol_pings rows repeat an earlier row of the file (same unit and time): left out" in r.stderr
    r = runner.invoke(app, ["import", "gps_pings", str(p), "--city", "hatyai"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["layers"] == {"patrol_pings": 0, "patrol_trips": 0} and out["snapshot"] is None
    assert "3 of 3 patrol_pings rows are already in the twin" in r.stderr and "no snapshot was made" in r.stderr
    pings = SnapshotStore(s3_store, "hatyai").open(None).table("patrol_pings").to_pandas()
    assert (pings["unit_id"] == unit).sum() == 3
    trips = SnapshotStore(s3_store, "hatyai").open(None).table("patrol_trips").to_pandas()
    assert trips.loc[trips["unit_id"] == unit, "n_pings"].tolist() == [3]  # the repeated ping counted once
    # the whole morning's export, imported after the first minutes': the trip (same unit, same start) grows
    p.write_text("unit,time,lat,lon\n" + "".join(f"{unit},15/03/2569 07:00:{i * 10:02d},{c.lat:.6f},"
                                                 f"{c.lon + i * 0.0001:.6f}\n" for i in range(5)), encoding="utf-8")
    r = runner.invoke(app, ["import", "gps_pings", str(p), "--city", "hatyai"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["layers"] == {"patrol_pings": 2, "patrol_trips": 1}
    assert "1 patrol_trips already in the twin are longer in the file" in r.stderr
    twin = SnapshotStore(s3_store, "hatyai").open(None)
    trips = twin.table("patrol_trips").to_pandas()
    assert trips.loc[trips["unit_id"] == unit, "n_pings"].tolist() == [5]
    pings = twin.table("patrol_pings").to_pandas()
    assert pings.loc[pings["unit_id"] == unit, "trip_id"].nunique() == 1 and (pings["unit_id"] == unit).sum() == 5

    risk = f"R-{unit}"
    for status in ("reported", "fixed"):
        f = tmp_path / f"risk-{status}.csv"
        done = ",05/03/2569,09/03/2569" if status == "fixed" else ",,"
        f.write_text("รหัสจุด,ประเภท,สถานะ,วันที่แจ้ง,วันที่นัด,วันที่แก้ไข,ละติจูด,ลองจิจูด\n"
                     f"{risk},ไฟดับ,{status},01/03/2569{done},{c.lat:.6f},{c.lon:.6f}\n", encoding="utf-8")
        r = runner.invoke(app, ["import", "risk_points", str(f), "--city", "hatyai"])
        assert r.exit_code == 0, r.output
    assert "1 of 1 risk_points rows were already in the twin (same risk id): the file's rows replace them" in r.stderr
    t = SnapshotStore(s3_store, "hatyai").open(json.loads(r.stdout)["snapshot"]).table("risk_points").to_pandas()
    assert t.loc[t["risk_id"] == risk, "status"].tolist() == ["fixed"]


def test_pings_dated_in_the_future_are_refused_with_the_row(s3_store, tmp_path: Path, hatyai) -> None:
    """A year typed wrong (2580 for 2569: 2037) is not imported as a patrol from the future."""
    from cluster.cli.twin import app

    c = hatyai.zone.centre
    p = tmp_path / "typo.csv"
    p.write_text(f"unit,time,lat,lon\nA,15/03/2569 07:00,{c.lat:.6f},{c.lon:.6f}\n"
                 f"A,15/03/2580 07:01,{c.lat:.6f},{c.lon:.6f}\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["import", "gps_pings", str(p), "--city", "hatyai"])
    assert r.exit_code == 2, r.output
    assert "typo.csv: row 2 (line 3), column 'ts' (\"time\")" in r.stderr and "in the future" in r.stderr
    assert "a Buddhist Era year typed wrong?" in r.stderr


def test_risk_points_in_utm_metres_are_read_in_the_citys_zone(tmp_path: Path, hatyai) -> None:
    from cluster.fieldimport import read_import_file
    from twin.graph import utm_transformers

    c = hatyai.zone.centre
    x, y = utm_transformers(hatyai.utm_epsg)[0].transform(c.lon, c.lat)
    p = tmp_path / "risk_utm.csv"
    p.write_text(f"ประเภท,วันที่แจ้ง,x,y\nไฟดับ,1 มี.ค. 2569,{x:.1f},{y:.1f}\n", encoding="utf-8")
    res = read_import_file(hatyai, "risk_points", p)  # `ssz twin import` has no --epsg: the city's zone is used
    assert res.frame["lon"].round(5).tolist() == [round(c.lon, 5)]
    assert res.frame["lat"].round(5).tolist() == [round(c.lat, 5)]
    assert res.frame["kind"].tolist() == ["lighting"] and res.frame["in_area"].tolist() == [True]


def test_import_reports_a_faulty_file_before_it_needs_the_store(tmp_path: Path, hatyai, monkeypatch) -> None:
    """`ssz twin import --dry-run` on a faulty file while the object store is down said only that the store was
    unreachable; the file's fault comes first now, the store's only for a file that reads."""
    from cluster import store
    from cluster.cli.twin import app
    from twin.objectstore import StoreError

    def down(check: bool = True):
        raise StoreError("object store at http://127.0.0.1:1 is unreachable")

    monkeypatch.setattr(store, "open_store", down)
    bad = tmp_path / "risk.csv"
    bad.write_text("ประเภท,วันที่แจ้ง,ละติจูด,ลองจิจูด\nไฟดับ,31/02/2569,7.0,100.47\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["import", "risk_points", str(bad), "--city", "hatyai", "--dry-run"])
    assert r.exit_code == 2 and "risk.csv: row 1 (line 2), column 'reported_date'" in r.stderr, r.output
    c = hatyai.zone.centre
    bad.write_text(f"ประเภท,วันที่แจ้ง,ละติจูด,ลองจิจูด\nไฟดับ,28/02/2569,{c.lat:.6f},{c.lon:.6f}\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["import", "risk_points", str(bad), "--city", "hatyai", "--dry-run"])
    assert r.exit_code == 2 and "unreachable" in r.stderr, r.output
