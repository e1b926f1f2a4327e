"""The one field-input reader on files the tests write the way Thai users' tools write them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import shapely
from pyproj import Geod

from twin import fieldinput as fi
from twin.fieldfiles import decode_bytes
from twin.fieldspecs import InputError
from twin.fieldtext import is_missing, normalize_text
from twin.fieldvalues import (
    LOCAL_TZ,
    CellError,
    be_cell,
    parse_date_parts,
    parse_datetime,
    parse_datetime_and_untimed,
    parse_latlon,
    parse_time,
)

ZONE = fi.Area(shapely.box(100.460, 7.000, 100.475, 7.010), "the Hat Yai zone")
HEAD = "เลขรับแจ้ง,วันเวลา,ประเภท,ลองจิจูด,ละติจูด\n"
ROWS = ["A1,15/03/2569 07:30,ลักทรัพย์,100.4679,7.0046",
        "A2,๑๖/๐๓/๒๕๖๙ 22:10 น.,ชิงทรัพย์,100.4681,7.0051",
        "A3,17 มี.ค. 2569 เวลา 01:05,ลักทรัพย์,100.4690,7.0060",
        "A4,2026-03-18T09:00:00+00:00,ลักทรัพย์,100.4700,7.0070"]


def _write(tmp: Path, name: str, text: str, enc: str) -> Path:
    p = tmp / name
    p.write_bytes(text.encode(enc))
    return p


@pytest.mark.parametrize("enc,delim", [("utf-8", ","), ("utf-8-sig", ","), ("cp874", ","), ("utf-16", "\t"),
                                       ("cp874", ";"), ("utf-16-le", "\t"), ("utf-16-be", ",")])
def test_thai_encodings_delimiters_and_dates(tmp_path: Path, enc: str, delim: str) -> None:
    text = (HEAD + "\n".join(ROWS) + "\n").replace(",", delim)
    r = fi.read_table(_write(tmp_path, "incidents.csv", text, enc), "incidents", area=ZONE)
    f = r.frame
    assert r.delimiter == delim and len(f) == 4 and r.warnings == []
    assert r.encoding in {"utf-8": ("utf-8",), "utf-8-sig": ("utf-8-sig",), "cp874": ("cp874",),
                          "utf-16": ("utf-16",), "utf-16-le": ("utf-16",), "utf-16-be": ("utf-16",)}[enc]
    # BE 2569 = 2026; Bangkok is UTC+7 when no zone is written; an explicit offset is kept
    utc = [pd.Timestamp(t, tz="UTC") for t in ("2026-03-15 00:30", "2026-03-16 15:10", "2026-03-16 18:05",
                                                "2026-03-18 09:00")]
    assert f["ts"].tolist() == utc
    assert f["hour"].tolist() == [7, 22, 1, 16]
    assert f["kind"].tolist()[:2] == ["ลักทรัพย์", "ชิงทรัพย์"] and f["incident_id"].tolist()[0] == "A1"
    assert f["in_area"].all()


def test_xlsx_with_excel_dates_and_english_headers(tmp_path: Path) -> None:
    p = tmp_path / "pings.xlsx"
    pd.DataFrame({"Device ID": ["car-1", "car-1"], "Fix time": [dt.datetime(2026, 3, 2, 21, 0), "02/03/2569 21:01"],
                  "Latitude": [7.0046, 7.0047], "Longitude": [100.4679, 100.4680]}).to_excel(p, index=False)
    r = fi.read_table(p, "gps_pings", area=ZONE)
    assert r.encoding == "xlsx" and r.frame["unit_id"].tolist() == ["car-1", "car-1"]
    assert r.frame["ts"].tolist() == [pd.Timestamp("2026-03-02 14:00", tz="UTC"),
                                      pd.Timestamp("2026-03-02 14:01", tz="UTC")]
    assert not r.frame["jump"].any()


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    text = "รายงานเหตุประจำเดือน มีนาคม 2569,,,,\nสภ.หาดใหญ่,,,,\n\n" + HEAD + ROWS[0] + "\n" + ROWS[1] + "\n"
    r = fi.read_table(_write(tmp_path, "report.csv", text, "cp874"), "incidents")
    assert len(r.frame) == 2 and "header is on line 4" in r.warnings[0]
    p = tmp_path / "report.xlsx"
    rows = [["รายงานเหตุ", None, None], [None, None, None], ["หน่วย", "เวลา", "พิกัด"],
            ["car-1", "02/03/2569 21:00", "7.0046, 100.4679"], ["car-1", "02/03/2569 21:01", "7.0047, 100.4680"]]
    pd.DataFrame(rows).to_excel(p, index=False, header=False)
    g = fi.read_table(p, "gps_pings")
    assert g.frame["lon"].tolist() == [100.4679, 100.468] and "header is on row 3" in g.warnings[0]
    bad = _write(tmp_path, "ragged.csv", HEAD + ROWS[0] + ",extra\n", "utf-8")
    with pytest.raises(InputError, match=r"row 1 \(line 2\).*6 cells but the header has 5"):
        fi.read_table(bad, "incidents")


def test_swapped_outside_and_null_island_are_counted_and_said(tmp_path: Path) -> None:
    rows = ["1,15/03/2569 07:30,x,7.0046,100.4679",        # swapped
            "2,15/03/2569 08:30,x,0,0",                     # null island
            "3,15/03/2569 09:30,x,100.5500,7.0500",         # in the city, outside the zone
            "4,15/03/2569 10:30,x,100.4700,7.0070"]
    p = _write(tmp_path, "i.csv", HEAD + "\n".join(rows), "utf-8")
    r = fi.read_table(p, "incidents", area=ZONE)
    assert r.counts == {"rows": 4, "null_island": 1, "swapped": 1, "outside_area": 1, "kept": 3}
    assert r.frame["lon"].tolist() == [100.4679, 100.55, 100.47] and r.frame["in_area"].tolist() == [True, False, True]
    assert "1 of 3 incidents are outside the Hat Yai zone" in " ".join(r.warnings)
    assert any("at 0,0" in w for w in r.warnings) and any("swapped" in w for w in r.warnings)
    assert fi.read_table(p, "incidents", area=ZONE, outside="drop").frame["row"].tolist() == [1, 4]
    with pytest.raises(InputError, match="swapped"):
        fi.read_table(p, "incidents", area=ZONE, swapped="refuse")
    with pytest.raises(InputError, match="outside the Hat Yai zone"):
        fi.read_table(p, "incidents", area=ZONE, outside="refuse")


def test_twelve_of_forty_outside_and_another_city_refused(tmp_path: Path) -> None:
    rows = [f"{i},15/03/2569 07:30,x,{100.4679 if i >= 12 else 100.60:.4f},7.0046" for i in range(40)]
    r = fi.read_table(_write(tmp_path, "a.csv", HEAD + "\n".join(rows), "utf-8"), "incidents", area=ZONE)
    assert "12 of 40 incidents are outside the Hat Yai zone" in r.warnings[0] and r.counts["outside_area"] == 12
    bkk = [f"{i},15/03/2569 07:30,x,100.75,13.72" for i in range(5)]  # Lat Krabang, Bangkok
    with pytest.raises(InputError, match=r"none of the 5 incidents is inside the Hat Yai zone") as e:
        fi.read_table(_write(tmp_path, "b.csv", HEAD + "\n".join(bkk), "utf-8"), "incidents", area=ZONE)
    assert "What to do" in str(e.value) and e.value.exit_code == 2


@pytest.mark.parametrize("cell,problem", [("31/02/2569 07:30", "does not exist"), ("15/13/2569 07:30", "month 13"),
                                          ("15/03/2569 25:10", "not a time of day"), ("yesterday", "not a date")])
def test_bad_dates_name_file_row_column_and_fix(tmp_path: Path, cell: str, problem: str) -> None:
    p = _write(tmp_path, "bad.csv", HEAD + ROWS[0] + "\n" + f"A9,{cell},x,100.47,7.005\n", "utf-8")
    with pytest.raises(InputError) as e:
        fi.read_table(p, "incidents")
    msg = str(e.value)
    assert msg.startswith("bad.csv: row 2 (line 3), column 'ts' (\"วันเวลา\")")
    assert problem in msg and "What to do" in msg
    assert (e.value.row, e.value.column) == (2, "ts")


def test_missing_column_and_drop_mode(tmp_path: Path) -> None:
    p = _write(tmp_path, "q.csv", "จุดตรวจ,เวลา\nQ1,15/03/2569 20:00\n", "utf-8")
    with pytest.raises(InputError, match=r"no column for 'unit_id'.*add a column headed 'unit_id'"):
        fi.read_table(p, "qr_scans")
    p2 = _write(tmp_path, "p.csv", "unit,time,lat,lon\ncar-1,15/03/2569 20:00,7.0046,100.4679\n"
                "car-1,not a time,7.0046,100.4679\ncar-1,15/03/2569 20:01,7.0047,100.4680\n", "utf-8")
    r = fi.read_table(p2, "gps_pings", on_bad_row="drop")
    assert len(r.frame) == 2 and r.counts["bad_rows"] == 1 and r.rejected[0].row == 2
    assert "1 of 3 rows could not be read" in r.warnings[0]


def test_date_without_time_has_no_hour_and_month_first_is_detected(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", HEAD + "A1,15/03/2569,x,100.47,7.005\nA2,15/03/2569 07:30,x,100.47,7.005\n", "utf-8")
    r = fi.read_table(p, "incidents")
    assert pd.isna(r.frame["hour"].iloc[0]) and r.frame["hour"].iloc[1] == 7
    assert "have a date but no time of day" in r.warnings[0]
    us = _write(tmp_path, "us.csv", "datetime,lon,lat\n03/15/2026 07:30,100.47,7.005\n03/01/2026 07:30,100.47,7.005\n",
                "utf-8")
    r2 = fi.read_table(us, "incidents")
    assert r2.frame["ts"].dt.tz_convert(LOCAL_TZ).dt.day.tolist() == [15, 1] and "month first" in r2.warnings[0]


def test_gps_jumps_are_flagged_and_kept_out_of_trips() -> None:
    g = Geod(ellps="WGS84")
    lon0, lat0 = 100.4679, 7.0046
    step = [g.fwd(lon0, lat0, 90, 100 * k)[:2] for k in range(6)]  # 100 m every 30 s = 3.3 m/s
    pts = [step[0], step[1], (lon0 + 0.5, lat0), step[3], step[4], (0.0, 0.0), step[5]]
    ts = pd.date_range("2026-03-02 21:00", periods=7, freq="30s").strftime("%d/%m/2569 %H:%M:%S")
    raw = pd.DataFrame({"unit_id": "car-1", "ts": ts, "lon": [p[0] for p in pts], "lat": [p[1] for p in pts]})
    r = fi.validate_frame(raw, "gps_pings", source="POST /v1/field/gps")
    assert r.counts["null_island"] == 1 and r.counts["jumps"] == 1
    assert r.frame["jump"].tolist() == [False, False, True, False, False, False]
    assert len(fi.trip_pings(r.frame)) == 5
    assert any("0,0" in w for w in r.warnings) and any("jump=True" in w for w in r.warnings)


def test_device_clock_in_the_future_is_refused_or_dropped() -> None:
    now = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
    raw = [{"id": "car-1", "timestamp": "2026-03-02T13:59:30Z", "lat": 7.0046, "lon": 100.4679},
           {"id": "car-1", "timestamp": "2026-03-02T14:30:00Z", "lat": 7.0047, "lon": 100.4680}]
    with pytest.raises(InputError, match=r"row 2, column 'ts'.*1800 s in the future.*set the device's clock"):
        fi.validate_frame(raw, "gps_pings", source="POST /v1/field/gps", max_future_s=120, now=now)
    r = fi.validate_frame(raw, "gps_pings", max_future_s=120, now=now, on_bad_row="drop")
    assert len(r.frame) == 1 and r.counts["bad_rows"] == 1


def test_survey_with_thai_months_and_checks(tmp_path: Path) -> None:
    text = ("ชุมชน,เดือน,จำนวนผู้ตอบ,ความหวาดกลัวอาชญากรรม (%),ความเชื่อมั่นต่อตำรวจ (%)\n"
            "ราชธานี,มี.ค. 2569,120,38.5%,81\nประชาร่วมใจ,03/2569,110,\"41,5\",79.0\n"
            "วิเชียรจำนงค์,2026-03,100,๓๐,๘๕\n")
    r = fi.read_table(_write(tmp_path, "poll.csv", text, "cp874"), "survey_results")
    f = r.frame
    assert f["month"].tolist() == [dt.date(2026, 3, 1)] * 3
    assert f["fear_of_crime_pct"].tolist() == [38.5, 41.5, 30.0] and f["confidence_in_police_pct"].tolist()[2] == 85.0
    frac = text.replace("38.5%", "0.385").replace('"41,5"', "0.415").replace("๓๐", "0.3")
    with pytest.raises(InputError, match="look like fractions"):
        fi.read_table(_write(tmp_path, "frac.csv", frac, "utf-8"), "survey_results")
    dup = text + "ราชธานี,มีนาคม 2569,50,30,90\n"
    with pytest.raises(InputError, match="more than one row"):
        fi.read_table(_write(tmp_path, "dup.csv", dup, "utf-8"), "survey_results")
    over = text.replace("๘๕", "105")
    with pytest.raises(InputError, match=r"row 3 .*outside 0..100"):
        fi.read_table(_write(tmp_path, "over.csv", over, "utf-8"), "survey_results")


def test_device_clock_reset_to_1970_is_refused_or_dropped() -> None:
    now = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
    raw = [{"id": "car-1", "timestamp": "2026-03-02T13:59:30Z", "lat": 7.0046, "lon": 100.4679},
           {"id": "car-1", "timestamp": "1970-01-01T00:00:00Z", "lat": 7.0047, "lon": 100.4680}]
    with pytest.raises(InputError, match=r"row 2, column 'ts'.*dated 20515 days ago, older than the 7 days "
                                            r"accepted.*set the device's clock"):
        fi.validate_frame(raw, "gps_pings", source="POST /v1/field/gps", max_age_s=7 * 86400, now=now)
    r = fi.validate_frame(raw, "gps_pings", max_age_s=7 * 86400, now=now, on_bad_row="drop")
    assert len(r.frame) == 1 and r.counts["bad_rows"] == 1
    assert len(fi.validate_frame(raw, "gps_pings", now=now).frame) == 2  # files: no age limit unless asked


@pytest.mark.parametrize("unit,problem", [
    ({"a": 1}, "expected text, got an object"), (["car-1"], "expected text, got a list"),
    ("car\x00-1", r"holds a control character \(U\+0000 at position 4\)"),
    ("car\n1", r"holds a control character \(U\+000A"), ("c" * 129, "an id of 129 characters: at most 128")])
def test_ids_that_are_not_plain_text_are_refused_not_turned_into_text(unit: object, problem: str) -> None:
    raw = [{"id": unit, "timestamp": "2026-03-02T13:59:30Z", "lat": 7.0046, "lon": 100.4679}]
    with pytest.raises(InputError, match=r"row 1, column 'unit_id' \(\"id\"\): .*" + problem):
        fi.validate_frame(raw, "gps_pings", source="POST /v1/field/gps")
    r = fi.validate_frame([{"kind": "ไฟดับ", "description": "สองบรรทัด\nline two\tok", "reported_date": "01/03/2569",
                            "lat": 7.0046, "lon": 100.4679}], "risk_points")
    assert r.frame["description"].iloc[0] == "สองบรรทัด\nline two\tok"  # free text keeps its line breaks


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        fi.read_table(tmp_path / "nope.csv", "incidents")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")  # an .xls cut to its signature (.xls files are read)
    with pytest.raises(InputError, match=r"^old\.xls: not a readable Excel 97-2003 \(\.xls\) workbook \("
                                         r"NotOleFileError: not an OLE2 structured storage file\)\..*save as \.xlsx"):
        fi.read_table(tmp_path / "old.xls", "incidents")
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        fi.read_table(tmp_path / "e.csv", "incidents")
    with pytest.raises(InputError, match="unknown input kind"):
        fi.validate_frame(pd.DataFrame({"a": [1]}), "weather")
    xy = pd.DataFrame({"date": ["15/03/2569"], "x": ["662000"], "y": ["774600"]})
    with pytest.raises(InputError, match="EPSG"):
        fi.validate_frame(xy, "incidents")
    r = fi.validate_frame(xy, "incidents", epsg=32647)
    assert 100.4 < r.frame["lon"].iloc[0] < 100.6 and pd.isna(r.frame["hour"].iloc[0])


def test_device_batches_take_the_vectorised_path_and_agree_with_the_cell_parsers() -> None:
    import time

    n = 5000
    ts = pd.date_range("2026-03-02T13:00:00Z", periods=n, freq="1s")
    raw = [{"id": f"car-{i % 20}", "timestamp": t.isoformat(), "lat": 7.0046 + 1e-5 * (i % 100), "lon": 100.4679}
           for i, t in enumerate(ts)]
    t0 = time.perf_counter()
    r = fi.validate_frame(raw, "gps_pings")
    took = time.perf_counter() - t0
    assert len(r.frame) == n and took < 2.5, f"{n} pings took {took:.2f}s"
    # the same times written the Thai way (day-first, Buddhist Era, Bangkok) give the same instants
    thai = [dict(d, timestamp=(t.tz_convert("Asia/Bangkok")).strftime("%d/%m/") + str(t.year + 543)
                 + t.tz_convert("Asia/Bangkok").strftime(" %H:%M:%S")) for d, t in zip(raw[:50], ts[:50], strict=True)]
    slow = fi.validate_frame(thai, "gps_pings")
    fast = r.frame[r.frame["row"] <= 50].sort_values("row")
    assert slow.frame.sort_values("row")["ts"].tolist() == fast["ts"].tolist()
    assert fi.validate_frame([dict(raw[0], timestamp="2026-03-02 20:00")], "gps_pings").frame["ts"].iloc[0] == \
        pd.Timestamp("2026-03-02 13:00", tz="UTC")  # naive ISO is Bangkok time


@pytest.mark.parametrize("ts", ["3000-01-01T00:00:00Z", "3000-01-01T00:00:00", "1000-01-01T00:00:00Z",
                                "2286-11-20T17:46:39+00:00", "2250-01-01T00:00:00Z"])
def test_times_outside_the_readable_years_are_refused_with_the_row(ts: str) -> None:
    # pandas cannot hold times past 2262 in nanoseconds: such a cell once failed the whole batch with a 500.
    df = pd.DataFrame({"unit_id": ["u1", "u1"], "ts": ["2026-03-01T07:00:00+07:00", ts],
                       "lon": [100.47, 100.47], "lat": [7.0, 7.0]})
    with pytest.raises(InputError, match=rf"row 2, column 'ts'.*year {ts[:4]} is neither"):
        fi.validate_frame(df, "gps_pings")
    assert fi.validate_frame(df.iloc[:1], "gps_pings").frame["ts"].iloc[0] == pd.Timestamp("2026-03-01", tz="UTC")
    assert fi.validate_frame(df.assign(ts=["15/03/2569 07:30"] * 2), "gps_pings").frame["ts"].iloc[0] == \
        pd.Timestamp("2026-03-15 00:30", tz="UTC")


def test_date_column_with_a_time_keeps_the_local_date(tmp_path: Path) -> None:
    """A date column written by a tool that appends the time (or an Excel date-time) keeps the date as written
    in local time; only a time that cannot be read is refused."""
    p = _write(tmp_path, "r.csv", "kind,reported_date,lon,lat\nlighting,15/03/2569 07:30,100.47,7.005\n"
               "lighting,2026-03-15T23:30:00+00:00,100.47,7.005\nlighting,15/03/2569,100.47,7.005\n", "utf-8")
    r = fi.read_table(p, "risk_points")
    assert list(r.frame["reported_date"]) == [dt.date(2026, 3, 15), dt.date(2026, 3, 16), dt.date(2026, 3, 15)]
    bad = _write(tmp_path, "b.csv", "kind,reported_date,lon,lat\nlighting,15/03/2569 noon,100.47,7.005\n", "utf-8")
    with pytest.raises(InputError, match=r"cannot read the time 'noon'"):
        fi.read_table(bad, "risk_points")


def test_a_short_thai_windows_file_is_read_as_cp874_and_western_text_stays_cp1252():
    """Charset detection took a one-row cp874 file ('กข 1234') for Windows-1252; Latin text with accents is still
    read as Windows-1252 (its accented letters would be Thai marks after Latin letters in cp874)."""
    for text in ("file,plate\na.jpg,กข 1234\n", "file,plate\r\ncam 1\\a.JPG,ผ-9324\r\nรถ 2.heic,32-0394\r\n"):
        assert decode_bytes(text.encode("cp874"), "t.csv") == (text, "cp874")
    for text in ("name,city\nJosé,Zürich\n", "name\nCafé crème\n", "name\nÁngel\n"):
        assert decode_bytes(text.encode("cp1252"), "t.csv") == (text, "cp1252")


def test_a_gps_accuracy_coarser_than_10_km_is_a_placeholder_refused_with_its_row() -> None:
    """Trackers send 99999 or 1e9 as the accuracy of a fix they do not have; a phone's network fix (2.5 km) is
    kept."""
    rows = [{"unit_id": "u1", "ts": f"2026-12-03T10:00:0{i}+07:00", "lon": 100.47, "lat": 7.0, "accuracy_m": a}
            for i, a in enumerate([4.0, 2500.0, 99999.0, 1e9])]
    got = fi.validate_frame(rows, "gps_pings", on_bad_row="drop")
    assert got.frame["accuracy_m"].tolist() == [4.0, 2500.0]
    assert [(r.row, r.field, r.reason) for r in got.rejected] == [(3, "accuracy_m", "outside 0..10000"),
                                                                  (4, "accuracy_m", "outside 0..10000")]


def test_fast_paths_keep_the_values(tmp_path: Path) -> None:
    # ASCII text skips the Unicode work; Thai text is still normalised
    assert normalize_text("  P-01 ") == "P-01" and normalize_text(" เเจ้ง ๑๒ ") == "แจ้ง 12"
    assert is_missing(" null ") and is_missing("\u200b\u200bnull\u200b") and is_missing(" – ")
    assert not is_missing("ลักทรัพย์") and not is_missing("nulls")
    # one parse gives the time and whether there was one
    assert parse_datetime_and_untimed("15/03/2569")[1] and not parse_datetime_and_untimed("15/03/2569 07:30")[1]
    # an incident with neither a date nor an hour is still refused with its line; a ping with no time too
    p = tmp_path / "i.csv"
    p.write_text("วันเวลา,lat,lon\n15/03/2569 07:30,7.0,100.47\n,7.0,100.47\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3"):
        fi.read_table(p, "incidents")
    p.write_text("unit_id,วันที่,เวลา,lat,lon\nP1,15/03/2569,07:30,7.0,100.47\nP1,15/03/2569,,7.0,100.47\n",
                 encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3.*no time"):
        fi.read_table(p, "gps_pings")


def test_an_average_row_is_left_out_whatever_column_holds_the_word(tmp_path: Path) -> None:
    p = tmp_path / "poll.csv"
    p.write_text("เดือน,ชุมชน,จำนวนผู้ตอบ,ความหวาดกลัว,ความเชื่อมั่น\nมี.ค. 69,บ้านพรุ,40,35,82\n"
                 "มี.ค. 69,ชุมชนรวมใจ,50,30,85\nมี.ค. 69,เฉลี่ย,45,32.5,83.5\n", encoding="utf-8")
    r = fi.read_table(p, "survey_results")
    assert r.frame["community"].tolist() == ["บ้านพรุ", "ชุมชนรวมใจ"]
    assert any("totals row (line 4: 'เฉลี่ย')" in w for w in r.warnings)


def test_a_totals_row_under_a_merged_month_is_left_out(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["เดือน", "ชุมชน", "จำนวนผู้ตอบ", "ความหวาดกลัว", "ความเชื่อมั่น"])
    ws.append(["03/2569", "บ้านพรุ", 40, 35, 82])
    ws.append([None, "คลองแห", 50, 30, 85])
    ws.append([None, "รวม", 90, 32.2, 83.7])
    ws.merge_cells("A2:A4")
    wb.save(tmp_path / "poll.xlsx")
    r = fi.read_table(tmp_path / "poll.xlsx", "survey_results")
    assert r.frame["community"].tolist() == ["บ้านพรุ", "คลองแห"]


@pytest.mark.parametrize("text,day", [("Mar 15 2026 07:30", 15), ("15 Mar 2026", 15), ("Mar 3 2026", 3),
                                      ("15 มี.ค. 2569", 15), ("3 March 2026", 3)])
def test_the_day_is_the_number_beside_a_month_name(text: str, day: int) -> None:
    assert parse_date_parts(text)[0] == dt.date(2026, 3, day)


def test_a_thai_clock_time_with_a_zero_hour_is_not_a_day_fraction() -> None:
    assert parse_time("0.30") == dt.time(0, 30) and parse_time("7.30") == dt.time(7, 30)
    seen: dict[str, str] = {}
    assert parse_time("0.3125", seen) == dt.time(7, 30) and "day_fraction" in seen  # 3+ decimals
    assert parse_time(0.3125) == dt.time(7, 30) and parse_time("0.75") == dt.time(18, 0)


def test_a_google_maps_place_link_gives_its_pin_not_the_view_centre() -> None:
    link = ("https://www.google.com/maps/place/Hat+Yai/@7.0100,100.4600,17z/data=!3m1!4b1!4m6!3m5!1s0x0:0x0"
            "!8m2!3d7.0046!4d100.4679!16s")
    assert parse_latlon(link) == (7.0046, 100.4679)
    assert parse_latlon("https://www.google.com/maps/@7.01,100.46,17z") == (7.01, 100.46)


@pytest.mark.parametrize("text", ["0001-03-15 07:30", "0069-03-15", "15/03/069"])
def test_a_year_of_other_than_two_or_four_digits_is_refused(text: str) -> None:
    with pytest.raises(CellError, match="year"):
        parse_datetime(text)


@pytest.mark.parametrize("text,utc", [
    ("15-Mar-26 07.30 น.", "2026-03-15 00:30"),  # a Thai 'น.' does not make an English month BE
    ("15/03/26 07:30", "2026-03-15 00:30"), ("15/03/69 07:30", "2026-03-15 00:30"),  # the fixed pivot
    ("15 มี.ค. 69 07.30 น.", "2026-03-15 00:30"), ("15/03/พ.ศ. 69", "2026-03-14 17:00"),
    ("15/03/ค.ศ. 69", "2069-03-14 17:00")])
def test_two_digit_years_are_read_by_the_digits_and_month_name_written(text: str, utc: str) -> None:
    seen: dict[str, str] = {}
    assert parse_datetime(text, seen=seen) == pd.Timestamp(utc, tz="UTC").to_pydatetime()
    assert "two_digit_year" in seen



def test_an_excel_date_cell_with_a_mistyped_year_is_refused(tmp_path: Path) -> None:
    import openpyxl

    assert be_cell(dt.date(2569, 3, 15)) == dt.date(2026, 3, 15) and be_cell(dt.date(2026, 3, 15)).year == 2026
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["วันเวลา", "lat", "lon"])
    ws.append([dt.datetime(2569, 3, 15, 7, 30), 7.0, 100.47])
    ws.append([dt.datetime(2369, 3, 15, 7, 30), 7.0, 100.47])
    wb.save(tmp_path / "i.xlsx")
    with pytest.raises(InputError, match=r"Excel row 3.*year 2369"):
        fi.read_table(tmp_path / "i.xlsx", "incidents")


def test_only_a_percent_format_scales_an_excel_number(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ชุมชน", "เดือน", "จำนวนผู้ตอบ", "ความหวาดกลัว", "ความเชื่อมั่น"])
    for name, fmt in (("ก", "0%"), ("ข", '0"%"'), ("ค", "0\\%")):
        ws.append([name, "03/2569", 40, 35 if fmt != "0%" else 0.35, 80])
        ws.cell(ws.max_row, 4).number_format = fmt
    wb.save(tmp_path / "poll.xlsx")
    r = fi.read_table(tmp_path / "poll.xlsx", "survey_results")
    assert r.frame["fear_of_crime_pct"].tolist() == [35.0, 35.0, 35.0]


def test_x_y_in_degrees_with_a_decimal_comma_are_lon_lat(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("วันเวลา;X;Y\n15/03/2569 07:30;100,467;7,0046\n15/03/2569 08:30;100,4679;7,005\n", encoding="utf-8")
    r = fi.read_table(p, "incidents")
    assert r.frame["lon"].tolist() == [100.467, 100.4679] and r.frame["lat"].tolist() == [7.0046, 7.005]
    assert any("decimal mark" in w for w in r.warnings)


def test_header_cells_merged_down_over_a_units_row(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ลำดับ", "ประเภท", "ละติจูด", "ลองจิจูด"])
    ws.append([None, None, "(องศา)", "(องศา)"])
    ws.append([1, "ไฟฟ้า", 7, 100.47])
    ws.append([2, "ต้นไม้", 7.01, 100.46])
    ws.merge_cells("A1:A2")
    ws.merge_cells("B1:B2")
    wb.save(tmp_path / "dd.xlsx")
    r = fi.read_table(tmp_path / "dd.xlsx", "risk_points")
    assert r.frame["kind"].tolist() == ["lighting", "vegetation"] and r.frame["lat"].tolist() == [7.0, 7.01]
    assert r.frame["row"].tolist() == [1, 2]


def test_the_header_is_the_top_row_naming_the_most_columns(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text("รายงานเหตุประจำวัน\nวันที่,15/03/2569\nลำดับ,ประเภท,วันเวลา,lat,lon\n"
                 "1,ลักทรัพย์,15/03/2569 07:30,7.0,100.47\n", encoding="utf-8")
    r = fi.read_table(p, "incidents")
    assert r.frame["kind"].tolist() == ["ลักทรัพย์"] and r.frame["lat"].tolist() == [7.0]
    assert any("header is on line 3" in w for w in r.warnings)


def test_warnings_name_file_lines_and_excel_rows_like_errors(tmp_path: Path) -> None:
    import openpyxl

    text = HEAD + "A1,15/03/2569 07:30,x,100.4679,7.0046\nA2,15/03/2569 07:30,x,100.5,7.1\n"
    r = fi.read_table(_write(tmp_path, "o.csv", text, "utf-8"), "incidents", area=ZONE)
    assert r.warnings == ["1 of 2 incidents are outside the Hat Yai zone (kept, in_area=False): line 3"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["รายงาน"])
    ws.append(["เลขรับแจ้ง", "วันเวลา", "ลองจิจูด", "ละติจูด"])
    ws.append(["A1", "15/03/2569 07:30", 100.4679, 7.0046])
    ws.append(["A2", "15/03/2569 07:30", 7.0046, 100.4679])
    wb.save(tmp_path / "s.xlsx")
    r = fi.read_table(tmp_path / "s.xlsx", "incidents", area=ZONE)
    assert any("swapped (Excel row 4)" in w for w in r.warnings)
    assert "(row 2)" in fi.validate_frame(
        [{"datetime": "15/03/2569 07:30", "lon": 100.4679, "lat": 7.0046},
         {"datetime": "15/03/2569 07:30", "lon": 7.0046, "lat": 100.4679}], "incidents").warnings[0]


def test_a_whole_number_alone_in_a_data_column_is_kept(tmp_path: Path) -> None:
    p = _write(tmp_path, "h.csv", "ชั่วโมง,ประเภท,lat,lon\n22,,,\n7,ลักทรัพย์,7.0,100.47\n", "utf-8")
    with pytest.raises(InputError, match=r"line 2.*no position"):  # a data row missing its position, not dropped
        fi.read_table(p, "incidents")
    r = fi.read_table(p, "incidents", on_bad_row="drop")
    assert r.counts["bad_rows"] == 1 and not any("unfilled" in w for w in r.warnings)
    p = _write(tmp_path, "n.csv", "ลำดับ,วันเวลา,lat,lon\n1,15/03/2569 07:30,7.0,100.47\n2,,,\n", "utf-8")
    r = fi.read_table(p, "incidents")
    assert len(r.frame) == 1 and any("unfilled form" in w and "lines 3–3" in w for w in r.warnings)


def test_the_reader_imports_no_service_code_and_reads_utm_in_the_areas_zone() -> None:
    import subprocess
    import sys

    code = ("import sys, twin.fieldinput; bad = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'serve', 'actors', 'cluster'}); print(bad, 'twin.graph' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "False"]
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32647, always_xy=True).transform(100.4675, 7.005)
    r = fi.validate_frame([{"datetime": "15/03/2569 07:30", "x": x, "y": y}], "incidents", area=ZONE)
    assert "EPSG:32647" in r.warnings[0] and r.frame["lon"][0] == pytest.approx(100.4675)


def test_the_municipal_words_for_street_lighting_are_lighting(tmp_path: Path) -> None:
    """ไฟฟ้าส่องสว่าง (public lighting, as municipal work orders name it) was refused as an unknown risk kind."""
    csv = tmp_path / "risk.csv"
    csv.write_bytes("ประเภท,ละติจูด,ลองจิจูด\nไฟฟ้าส่องสว่าง,7.0046,100.4679\nไฟส่องทาง,7.0050,100.4685\n"
                    .encode("cp874"))
    assert fi.read_table(csv, "risk_points").frame["kind"].tolist() == ["lighting", "lighting"]
