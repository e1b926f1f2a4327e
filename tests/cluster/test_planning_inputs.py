"""Field files of ``ssz plan risk`` go through the one validating reader (twin.fieldinput): encodings, Buddhist Era
day-first dates, swapped lon/lat, points outside the zone; bad files exit 2 naming the file, row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cluster.cli.plan import app
from cluster.config import load_city
from cluster.planning import read_points
from twin.fieldspecs import InputError


@pytest.fixture(scope="module")
def hatyai():
    return load_city("hatyai")


def _inside(city, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = city.zone.centre
    return c.lon + rng.uniform(-0.0015, 0.0015, n), c.lat + rng.uniform(-0.0015, 0.0015, n)


def test_incidents_outside_the_zone_are_counted_and_left_out(tmp_path: Path, hatyai) -> None:
    lon, lat = _inside(hatyai, 28)
    rows = [f"{a:.6f},{b:.6f},2026-03-{1 + i % 27:02d} 21:00" for i, (a, b) in enumerate(zip(lon, lat, strict=True))]
    rows += [f"{100.5 + i * 1e-3:.6f},13.75,2026-03-02 10:00" for i in range(12)]  # Bangkok: another city
    p = tmp_path / "incidents.csv"
    p.write_text("lon,lat,datetime\n" + "\n".join(rows) + "\n", encoding="utf-8")
    warnings: list[str] = []
    df = read_points(p, "incidents", hatyai, warnings)
    assert len(df) == 28 and (df["hour"] == 21).all()
    assert any("12 of 40 incidents are outside the Hat Yai" in w and "left out" in w for w in warnings), warnings
    assert {"x", "y"} <= set(df.columns) and df["x"].between(6e5, 7e5).all()  # UTM 47N metres


def test_swapped_lon_lat_are_swapped_back_with_a_warning(tmp_path: Path, hatyai) -> None:
    lon, lat = _inside(hatyai, 10, seed=1)
    p = tmp_path / "incidents.csv"
    p.write_text("lat,lon,hour\n" + "\n".join(f"{a:.6f},{b:.6f},3" for a, b in zip(lon, lat, strict=True)) + "\n")
    warnings: list[str] = []
    df = read_points(p, "incidents", hatyai, warnings)  # headers say lat,lon but the values are lon,lat
    assert np.allclose(df["lon"], lon, atol=1e-6) and np.allclose(df["lat"], lat, atol=1e-6)
    assert any("10 of 10 incidents have longitude and latitude swapped" in w for w in warnings), warnings


def test_cp874_thai_export_with_be_day_first_datetime_gives_the_hour(tmp_path: Path, hatyai) -> None:
    lon, lat = _inside(hatyai, 6, seed=2)
    text = "ประเภท,ลองจิจูด,ละติจูด,วันเวลา\r\n" + "".join(
        f"ลักทรัพย์,{a:.6f},{b:.6f},15/03/2569 07:30\r\n" for a, b in zip(lon, lat, strict=True))
    p = tmp_path / "incidents_tis620.csv"
    p.write_bytes(text.encode("cp874"))
    df = read_points(p, "incidents", hatyai, [])
    assert len(df) == 6 and df["hour"].tolist() == [7] * 6  # 07:30 Asia/Bangkok, not midnight, not night
    assert df["kind"].tolist() == ["ลักทรัพย์"] * 6
    assert str(df["ts"].iloc[0]) == "2026-03-15 00:30:00+00:00"  # BE 2569 = 2026, day first, UTC+7


def test_bad_incident_files_exit_2_with_file_row_column(tmp_path: Path, hatyai) -> None:
    lon, lat = _inside(hatyai, 3, seed=3)
    p = tmp_path / "incidents.csv"
    p.write_text("lon,lat,datetime\n" + f"{lon[0]},{lat[0]},15/03/2569 07:30\n{lon[1]},{lat[1]},31/02/2569 08:00\n")
    with pytest.raises(InputError) as e:
        read_points(p, "incidents", hatyai, [])
    assert e.value.row == 2 and e.value.column == "ts" and "incidents.csv" in str(e.value)
    r = CliRunner().invoke(app, ["risk", "--city", "hatyai", "--incidents", str(p)])
    assert r.exit_code == 2 and "incidents.csv: row 2" in r.output and "What to do" in r.output, r.output
    assert "Traceback" not in r.output
    far = tmp_path / "bangkok.csv"
    far.write_text("lon,lat,hour\n100.50,13.75,1\n100.51,13.76,2\n")
    r = CliRunner().invoke(app, ["risk", "--city", "hatyai", "--incidents", str(far)])
    assert r.exit_code == 2 and "none of the 2 incidents is inside the Hat Yai" in r.output, r.output
    nocols = tmp_path / "nocols.csv"
    nocols.write_text("a,b\n1,2\n")
    r = CliRunner().invoke(app, ["risk", "--city", "hatyai", "--incidents", str(nocols)])
    assert r.exit_code == 2 and "nocols.csv" in r.output and "What to do" in r.output, r.output


def test_risk_points_file_through_the_reader(tmp_path: Path, hatyai) -> None:
    lon, lat = _inside(hatyai, 4, seed=4)
    p = tmp_path / "risk.csv"
    p.write_text("รหัสจุด,ประเภท,ละติจูด,ลองจิจูด\n" + "".join(
        f"R{i},{k},{b:.6f},{a:.6f}\n" for i, (k, a, b) in enumerate(zip(["ไฟดับ", "ต้นไม้", "บ้านร้าง", "dark"], lon,
                                                                        lat, strict=True))), encoding="utf-8-sig")
    df = read_points(p, "risk_points", hatyai, [])
    assert df["kind"].tolist() == ["lighting", "vegetation", "abandoned", "lighting"]
    assert df["risk_id"].tolist() == ["R0", "R1", "R2", "R3"]


def test_a_workbook_sheet_is_named_for_each_field_file(tmp_path: Path, hatyai) -> None:
    import openpyxl

    lon, lat = _inside(hatyai, 4, seed=5)
    wb = openpyxl.Workbook()
    wb.active.title = "มีนาคม"
    for name, hour in (("มีนาคม", 7), ("เมษายน", 22)):
        ws = wb[name] if name in wb.sheetnames else wb.create_sheet(name)
        ws.append(["ลองจิจูด", "ละติจูด", "ชั่วโมง"])
        for a, b in zip(lon, lat, strict=True):
            ws.append([float(a), float(b), hour])
    p = tmp_path / "เหตุ 2569.xlsx"
    wb.save(p)
    assert (read_points(p, "incidents", hatyai, [])["hour"] == 7).all()  # the first sheet naming the columns
    assert (read_points(p, "incidents", hatyai, [], sheet="เมษายน")["hour"] == 22).all()
    assert (read_points(p, "incidents", hatyai, [], sheet=1)["hour"] == 22).all()
    for option in ("--incidents-sheet", "--risk-points-sheet"):
        files = ["--incidents", str(p)] if option == "--incidents-sheet" else ["--risk-points", str(p)]
        r = CliRunner().invoke(app, ["risk", "--city", "hatyai", *files, option, "พฤษภาคม"])
        assert r.exit_code == 2 and "เหตุ 2569.xlsx: the workbook has no sheet 'พฤษภาคม'; its sheets are 'มีนาคม', " \
            "'เมษายน'" in r.output, r.output


def test_the_cli_reads_the_sheet_named_and_refuses_a_sheet_with_no_workbook(tmp_path: Path, hatyai) -> None:
    import json

    import openpyxl

    lon, lat = _inside(hatyai, 6, seed=6)
    wb = openpyxl.Workbook()
    wb.active.title = "มีนาคม"
    for name, hour in (("มีนาคม", 7), ("เมษายน", 22)):  # morning, then evening incidents
        ws = wb[name] if name in wb.sheetnames else wb.create_sheet(name)
        ws.append(["ลองจิจูด", "ละติจูด", "ชั่วโมง"])
        for a, b in zip(lon, lat, strict=True):
            ws.append([float(a), float(b), hour])
    p = tmp_path / "เหตุ.xlsx"
    wb.save(p)
    r = CliRunner().invoke(app, ["risk", "--city", "hatyai", "--incidents", str(p), "--incidents-sheet", "1",
                                 "--top", "1", "--fixes", "1"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    hot = out["hotspots_by_hour"]
    assert hot["evening 18-24"] is not None and hot["morning 06-12"] is None, hot  # the second sheet's hour 22
    r = CliRunner().invoke(app, ["risk", "--city", "hatyai", "--incidents-sheet", "เมษายน"])
    assert r.exit_code == 2 and "--incidents-sheet 'เมษายน' names a sheet, but no --incidents file is given" \
        in r.output, r.output
    csv = tmp_path / "points.csv"
    csv.write_text("kind,lon,lat\nlighting," + f"{lon[0]:.6f},{lat[0]:.6f}\n")
    r = CliRunner().invoke(app, ["risk", "--city", "hatyai", "--risk-points", str(csv), "--risk-points-sheet", "0"])
    assert r.exit_code == 2 and "points.csv: a sheet ('0') is named but the file is a text table (CSV)" in r.output, \
        r.output
