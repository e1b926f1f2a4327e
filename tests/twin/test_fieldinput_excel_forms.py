"""The field-input reader on what Thai analysts' Excel really hands in: report-style workbooks, dates and
coordinates as people write them, and files that are not tables at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import shapely

from twin import fieldinput as fi
from twin.fieldfiles import decode_bytes
from twin.fieldspecs import InputError
from twin.fieldvalues import parse_degrees, parse_latlon

ZONE = fi.Area(shapely.box(100.460, 7.000, 100.475, 7.010), "the Hat Yai zone")
HEAD = "id,datetime,kind,lon,lat\n"


def _csv(tmp: Path, name: str, text: str, enc: str = "utf-8") -> Path:
    p = tmp / name
    p.write_bytes(text.encode(enc))
    return p


def _utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def test_a_report_workbook_reads_its_data_sheet_merged_dates_serials_and_leaves_the_totals_row_out(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "สรุป"
    wb.active["A1"] = "สรุปเหตุประจำเดือน"
    ws = wb.create_sheet("ข้อมูล")
    ws["A1"] = "รายงานเหตุ สภ.หาดใหญ่ มีนาคม 2569"
    ws.merge_cells("A1:F1")
    ws.append([])
    ws.append(["เลขรับแจ้ง", "วันที่", "เวลา", "ประเภท", "ลองจิจูด", "ละติจูด"])         # Excel row 3
    ws.append(["A1", dt.date(2026, 3, 15), dt.time(7, 30), "ลักทรัพย์", 100.4679, 7.0046])  # row 4
    ws.append(["A2", None, 0.875, "ลักทรัพย์", 100.4680, 7.0047])     # date merged from above; 21:00 as General
    ws.merge_cells("B4:B5")
    ws.append([])
    ws.append(["A3", 46097, "07:30", "ชิงทรัพย์", 100.4681, 7.0048])  # 2026-03-16 as a General-formatted serial
    ws.append(["รวม", None, None, 3, None, None])
    p = tmp_path / "รายงาน มีนาคม.xlsx"
    wb.save(p)
    r = fi.read_table(p, "incidents", area=ZONE)
    f = r.frame
    assert f["incident_id"].tolist() == ["A1", "A2", "A3"]
    assert f["ts"].tolist() == [_utc("2026-03-15 00:30"), _utc("2026-03-15 14:00"), _utc("2026-03-16 00:30")]
    assert f["hour"].tolist() == [7, 21, 7]
    assert "read sheet 'ข้อมูล'" in r.warnings[0] and "'สรุป'" in r.warnings[0]
    assert any("totals row" in w and "Excel row 8" in w for w in r.warnings)
    assert any("Excel serial day numbers" in w for w in r.warnings)
    assert any("fractions of a day" in w and "21:00" in w for w in r.warnings)
    # an error in a workbook names the row as Excel numbers it, and a named sheet that is not there is said
    ws["E7"] = "สามแยก"  # a place, not a longitude
    wb.save(p)
    with pytest.raises(InputError, match=r"row 3 \(Excel row 7\), column 'lon'"):
        fi.read_table(p, "incidents", area=ZONE)
    with pytest.raises(InputError, match=r"no sheet 'Data'; its sheets are 'สรุป', 'ข้อมูล'"):
        fi.read_table(p, "incidents", sheet="Data")
    r = fi.read_table(p, "incidents", sheet="1", on_bad_row="drop")  # a sheet number as the CLI passes it
    assert r.frame["incident_id"].tolist() == ["A1", "A2"] and r.counts["bad_rows"] == 1


def test_a_header_on_two_rows_and_percent_formatted_poll_cells(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ลำดับ", "วันเวลา", "ประเภท", "พิกัด", None])
    ws.append([None, None, None, "ลองจิจูด", "ละติจูด"])
    ws.merge_cells("D1:E1")
    ws.append([1, "15/03/2569 07:30", "ลักทรัพย์", 100.4679, 7.0046])
    p = tmp_path / "two.xlsx"
    wb.save(p)
    r = fi.read_table(p, "incidents", area=ZONE)
    assert r.frame["lon"].tolist() == [100.4679] and r.frame["lat"].tolist() == [7.0046]
    assert "header is on two rows" in r.warnings[0]

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ชุมชน", "เดือน", "จำนวนผู้ตอบ", "ความหวาดกลัว", "ความเชื่อมั่น"])
    ws.append(["ชุมชนรวมใจ", "มี.ค. 69", 100, 0.35, 0.855])
    ws.append(["ชุมชนตลาด", dt.datetime(2026, 3, 1), 120, 0.4, 0.8])
    ws.append(["รวม", None, 220, 0.38, 0.83])
    for row in ws.iter_rows(min_row=2, min_col=4):
        for c in row:
            c.number_format = "0.0%"
    p = tmp_path / "poll.xlsx"
    wb.save(p)
    r = fi.read_table(p, "survey_results")
    f = r.frame
    assert f["community"].tolist() == ["ชุมชนรวมใจ", "ชุมชนตลาด"]  # a name that starts with รวม is no totals row
    assert f["fear_of_crime_pct"].tolist() == [35.0, 40.0]
    assert f["confidence_in_police_pct"].tolist() == [85.5, 80.0]
    assert f["month"].tolist() == [dt.date(2026, 3, 1)] * 2


@pytest.mark.parametrize("cell,utc,said", [
    ("15 มี.ค. 69 07.30 น.", "2026-03-15 00:30", "two-digit year"),  # Thai Excel's short date: BE 2569
    ("15 มีนาคม พ.ศ. 2569 07.30 น.", "2026-03-15 00:30", None),
    ("วันที่ 15 มี.ค. พ.ศ.2569 เวลา 07:30 น.", "2026-03-15 00:30", None),
    ("วันอาทิตย์ที่ 15 มีนาคม 2569 19:30", "2026-03-15 12:30", None),
    ("15/03/69 07:30", "2026-03-15 00:30", "69 as 2569 BE"),             # 2069 would be in the future
    ("15/03/26 07:30", "2026-03-15 00:30", "26 as 2026"),                # 2526 BE would be 1983
    ("15/03/2569 7:30 PM", "2026-03-15 12:30", None),
    ("15/03/2569 12:05 AM", "2026-03-14 17:05", None),
    ("46096.3125", "2026-03-15 00:30", "Excel serial"),                  # a serial pasted as text
    ("๑๕ มี.ค. ๖๙ ๐๗.๓๐ น.", "2026-03-15 00:30", "two-digit year"),
])
def test_thai_date_forms_are_read_to_the_right_utc_time(tmp_path, cell, utc, said):
    r = fi.read_table(_csv(tmp_path, "d.csv", HEAD + f"1,{cell},x,100.4679,7.0046\n"), "incidents")
    assert r.frame["ts"].tolist() == [_utc(utc)]
    assert (any(said in w for w in r.warnings) if said else r.warnings == [])


def test_a_row_with_no_date_or_time_is_refused_and_an_empty_time_has_no_hour(tmp_path):
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'ts'.*no date or time"):
        fi.read_table(_csv(tmp_path, "a.csv", HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\n2,,x,100.4679,7.0046\n"),
                      "incidents")
    text = "id,date,time,lon,lat\n1,15/03/2569,07:30,100.4679,7.0046\n2,,08:00,100.4679,7.0046\n"
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'date'.*no date or time"):
        fi.read_table(_csv(tmp_path, "b.csv", text), "incidents")
    r = fi.read_table(_csv(tmp_path, "b.csv", text), "incidents", on_bad_row="drop")
    assert r.frame["row"].tolist() == [1] and r.counts["bad_rows"] == 1
    text = "id,date,time,lon,lat\n1,15/03/2569,07:30,100.4679,7.0046\n2,16/03/2569,,100.4679,7.0046\n"
    r = fi.read_table(_csv(tmp_path, "c.csv", text), "incidents")
    assert r.frame["hour"].tolist() == [7, pd.NA]  # not 0: the time is unknown
    assert any("no time of day" in w for w in r.warnings)


def test_coordinates_in_dms_one_cell_or_with_a_decimal_comma(tmp_path):
    text = ('id,datetime,พิกัด\n1,15/03/2569 07:30,"7°00\'16.6""N 100°28\'04.4""E"\n'
            '2,15/03/2569 07:31,"100°28\'04.4""E, 7°00\'16.6""N"\n3,15/03/2569 07:32,"7.0046, 100.4679"\n')
    f = fi.read_table(_csv(tmp_path, "dms.csv", text), "incidents", area=ZONE).frame
    assert f["lat"].round(6).tolist() == [7.004611, 7.004611, 7.0046]
    assert f["lon"].round(6).tolist() == [100.467889, 100.467889, 100.4679]
    text = "id;datetime;lon;lat\n1;15/03/2569 07:30;100,467;7,004\n2;15/03/2569 07:31;100°28'04.4\"E;7° 00.277' N\n"
    f = fi.read_table(_csv(tmp_path, "semi.csv", text), "incidents", area=ZONE).frame
    assert f["lon"].round(6).tolist() == [100.467, 100.467889] and f["lat"].round(6).tolist() == [7.004, 7.004617]
    bad = "id,datetime,lon,lat\n1,15/03/2569 07:30,7°00'16.6\"N,7.0046\n"
    with pytest.raises(InputError, match=r"row 1 \(line 2\), column 'lon'.*latitude hemisphere"):
        fi.read_table(_csv(tmp_path, "wrong.csv", bad), "incidents")


def test_files_that_are_not_plain_csv_tables_are_read_or_refused_clearly(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        fi.read_table(tmp_path, "incidents")
    html = "<!DOCTYPE html>\n<html><body><table><tr><td>id</td></tr></table></body></html>\n"
    with pytest.raises(InputError, match="web page"):
        fi.read_table(_csv(tmp_path, "export.xls", html), "incidents")
    with pytest.raises(InputError, match="JSON"):
        fi.read_table(_csv(tmp_path, "x.csv", '[{"id": 1, "lon": 100.4679}]\n'), "incidents")
    (tmp_path / "old.xls").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 512)
    with pytest.raises(InputError, match=r"97-2003.*save as \.xlsx"):
        fi.read_table(tmp_path / "old.xls", "incidents")
    row = "1,15/03/2569 07:30,x,100.4679,7.0046\n"
    r = fi.read_table(_csv(tmp_path, "text.xlsx", HEAD + row), "incidents")  # a CSV saved under .xlsx
    assert r.frame["lon"].tolist() == [100.4679] and "read as CSV" in r.warnings[0]
    r = fi.read_table(_csv(tmp_path, "mac.csv", (HEAD + row + row).replace("\n", "\r")), "incidents")  # CR only
    assert r.frame["row"].tolist() == [1, 2]
    long = HEAD + "1,15/03/2569 07:30," + "ก" * 200_000 + ",100.4679,7.0046\n"
    assert len(fi.read_table(_csv(tmp_path, "long.csv", long), "incidents").frame["kind"][0]) == 200_000
    with pytest.raises(InputError, match=r"x\.ods: not a readable OpenDocument \(\.ods\) workbook"):
        fi.read_table(_csv(tmp_path, "x.ods", "PK\x03\x04junk"), "incidents")


def test_be_years_typed_into_a_gregorian_excel_and_unix_times_from_trackers(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "datetime", "lon", "lat"])
    ws.append(["1", dt.datetime(2569, 3, 15, 7, 30), 100.4679, 7.0046])  # Excel stored the year 2569 as typed
    ws.append(["2", dt.datetime(2026, 3, 15, 8, 30), 100.4679, 7.0046])
    p = tmp_path / "be.xlsx"
    wb.save(p)
    r = fi.read_table(p, "incidents")
    assert r.frame["ts"].tolist() == [_utc("2026-03-15 00:30"), _utc("2026-03-15 01:30")]
    assert any("Buddhist Era year" in w and "15/03/2569 as 2026-03-15" in w for w in r.warnings)
    text = "unit,time,lat,lon\nA,1773531000,7.0046,100.4679\nA,1773531010000,7.0047,100.4679\n"
    r = fi.read_table(_csv(tmp_path, "tracker.csv", text), "gps_pings")
    assert r.frame["ts"].tolist() == [_utc("2026-03-14 23:30:00"), _utc("2026-03-14 23:30:10")]
    assert any("Unix time stamps" in w for w in r.warnings)


def test_scans_and_pings_with_a_date_column_and_a_time_column(tmp_path):
    text = "รหัสจุดตรวจ,สายตรวจ,วันที่,เวลา\nQR-01,ร.1,15/03/2569,07:30\nQR-02,ร.1,15 มี.ค. 69,19.45 น.\n"
    r = fi.read_table(_csv(tmp_path, "qr.csv", text, "cp874"), "qr_scans")
    assert r.frame["ts"].tolist() == [_utc("2026-03-15 00:30"), _utc("2026-03-15 12:45")]
    assert r.frame["hour"].tolist() == [7, 19]
    text = "unit,date,time,lat,lon\nA,15/03/2569,07:30:00,7.0046,100.4679\nA,15/03/2569,,7.0047,100.4679\n"
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'time'.*no time"):
        fi.read_table(_csv(tmp_path, "gps.csv", text), "gps_pings")  # not midnight: a ping needs its time
    r = fi.read_table(_csv(tmp_path, "gps.csv", text), "gps_pings", on_bad_row="drop")
    assert r.frame["row"].tolist() == [1] and r.counts["bad_rows"] == 1
    # a date-time column beside a date column keeps its hour
    text = "checkpoint,unit,date,time\nQR1,A,15/03/2569,15/03/2569 07:30\n"
    assert fi.read_table(_csv(tmp_path, "both.csv", text), "qr_scans").frame["hour"].tolist() == [7]


def test_csv_quirks_mixed_encodings_sep_line_late_header_and_multiline_rows(tmp_path):
    mixed = (HEAD + "1,15/03/2569 07:30,ลักทรัพย์,100.4679,7.0046\n").encode() + \
        "2,15/03/2569 07:30,ชิงทรัพย์,100.4679,7.0046\n".encode("cp874")
    (tmp_path / "mixed.csv").write_bytes(mixed)
    with pytest.raises(InputError, match=r"mixes text encodings: it is UTF-8 up to line 3"):
        fi.read_table(tmp_path / "mixed.csv", "incidents")
    r = fi.read_table(_csv(tmp_path, "sep.csv", "sep=;\nid;datetime;lon;lat\n1;15/03/2569 07:30;100,4679;7,0046\n"),
                      "incidents")
    assert r.delimiter == ";" and r.frame["lon"].tolist() == [100.4679] and r.warnings == []
    late = "รายงาน\n" * 15 + HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\n"  # a long preamble is skipped
    assert fi.read_table(_csv(tmp_path, "late.csv", late), "incidents").frame["lon"].tolist() == [100.4679]
    late = "รายงาน\n" * 31 + HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\n"
    with pytest.raises(InputError, match=r"none of the columns ts, date, hour.*first 30"):
        fi.read_table(_csv(tmp_path, "late.csv", late), "incidents")
    multi = HEAD + '1,15/03/2569 07:30,"ลัก\nทรัพย์\nซ้ำ",100.4679,7.0046\n2,yesterday,x,100.4679,7.0046\n'
    with pytest.raises(InputError, match=r"row 2 \(line 5\), column 'ts'"):  # the line the row starts on
        fi.read_table(_csv(tmp_path, "multi.csv", multi), "incidents")


def test_cp874_files_whose_only_thai_is_single_letters_and_cp1252_symbols():
    """'ร.1' (a patrol unit) was read as 'Ã.1' (Windows-1252) and 'x,ก' as UTF-16 CJK characters."""
    for text in ("checkpoint,unit,time\nQR1,ร.1,15/03/2569 07:30\n", "a,b\nx,ก\n",
                 HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\n2,15/03/2569 07:30,ก,100.4679,7.0046\n"):
        assert decode_bytes(text.encode("cp874"), "t.csv") == (text, "cp874")
    for text in ("a,b\nx,é\n", "price\n£5\n", "lat\n7°00'N\n", "name,city\nJosé,Zürich\n"):
        assert decode_bytes(text.encode("cp1252"), "t.csv") == (text, "cp1252")


def test_a_speed_header_with_its_unit_is_read_in_that_unit(tmp_path):
    """'ความเร็ว (กม/ชม)' and 'Speed (km/h)' were read as m/s (3.6 times too fast); knots are refused."""
    for head in ("ความเร็ว (กม/ชม)", "Speed (km/h)", "speed_kmh"):
        text = f"unit,time,lat,lon,{head}\nA,15/03/2569 07:30:00,7.0046,100.4679,36\n"
        assert fi.read_table(_csv(tmp_path, "s.csv", text), "gps_pings").frame["speed_mps"].tolist() == [10.0]
    text = "unit,time,lat,lon,speed (m/s)\nA,15/03/2569 07:30:00,7.0046,100.4679,10\n"
    assert fi.read_table(_csv(tmp_path, "s.csv", text), "gps_pings").frame["speed_mps"].tolist() == [10.0]
    text = "unit,time,lat,lon,speed (knots)\nA,15/03/2569 07:30:00,7.0046,100.4679,10\n"
    with pytest.raises(InputError, match=r"column 'speed_mps' \(\"speed \(knots\)\"\): the speed is in 'knots'"):
        fi.read_table(_csv(tmp_path, "s.csv", text), "gps_pings")


def test_unfilled_numbered_rows_subtotals_map_links_and_locked_workbooks(tmp_path):
    text = "ลำดับ,ประเภท,ลองจิจูด,ละติจูด\n1,ไฟดับ,100.4679,7.0046\n2,,,\n3,,,\n"
    r = fi.read_table(_csv(tmp_path, "form.csv", text), "risk_points")
    assert r.frame["kind"].tolist() == ["lighting"] and "2 row(s) hold only a row number" in r.warnings[0]
    text = (HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\nรวมวันที่ 15,,1,,\n2,16/03/2569 07:30,x,100.4679,7.0046\n"
            "รวมทั้งสิ้น,,2,,\n")
    r = fi.read_table(_csv(tmp_path, "sub.csv", text), "incidents")
    assert r.frame["incident_id"].tolist() == ["1", "2"] and "totals rows (lines 3, 5" in r.warnings[0]
    text = ('id,datetime,พิกัด\n1,15/03/2569 07:30,"https://maps.google.com/?q=7.0046,100.4679"\n'
            '2,15/03/2569 07:30,"https://www.google.com/maps/@7.0047,100.4680,17z"\n')
    f = fi.read_table(_csv(tmp_path, "links.csv", text), "incidents").frame
    assert f["lat"].tolist() == [7.0046, 7.0047] and f["lon"].tolist() == [100.4679, 100.468]
    (tmp_path / "locked.xlsx").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 512
                                           + "EncryptedPackage".encode("utf-16-le"))
    with pytest.raises(InputError, match="protected with a password"):
        fi.read_table(tmp_path / "locked.xlsx", "incidents")


def test_repeated_headers_of_other_columns_are_kept_and_of_one_declared_column_refused(tmp_path):
    text = "id,datetime,lon,lat,หมายเหตุ,หมายเหตุ\n1,15/03/2569 07:30,100.4679,7.0046,a,b\n"
    f = fi.read_table(_csv(tmp_path, "notes.csv", text), "incidents").frame  # was a pandas ValueError
    assert f["หมายเหตุ"].tolist() == ["a"] and f["หมายเหตุ (2)"].tolist() == ["b"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "datetime", "ละติจูด", "lon", "ละติจูด"])
    ws.append(["1", "15/03/2569 07:30", 6.0, 100.4679, 7.0046])
    ws.column_dimensions["C"].hidden = True
    wb.save(tmp_path / "hidden.xlsx")
    with pytest.raises(InputError, match=r"column 'lat': columns 'ละติจูด', 'ละติจูด \(2\)' all look like 'lat'\. "):
        fi.read_table(tmp_path / "hidden.xlsx", "incidents")


def test_a_date_column_holding_times_keeps_them_and_a_table_may_start_at_column_b(tmp_path):
    text = "id,วันที่,lon,lat\n1,15/03/2569 07:30,100.4679,7.0046\n2,16/03/2569,100.4679,7.0046\n"
    r = fi.read_table(_csv(tmp_path, "d.csv", text), "incidents")  # the time was dropped: midnight, no hour
    assert r.frame["ts"].tolist() == [_utc("2026-03-15 00:30"), _utc("2026-03-15 17:00")]
    assert r.frame["hour"].tolist() == [7, pd.NA] and any("no time of day" in w for w in r.warnings)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([None, "ลำดับ", "ประเภท", "ลองจิจูด", "ละติจูด"])
    ws.append([None, 1, "ไฟดับ", 100.4679, 7.0046])
    ws.append([None, 2, None, None, None])
    wb.save(tmp_path / "b.xlsx")
    r = fi.read_table(tmp_path / "b.xlsx", "risk_points")
    assert list(r.frame.columns) == ["row", "risk_id", "kind", "lon", "lat"]
    assert r.frame["kind"].tolist() == ["lighting"]


def test_x_y_in_degrees_metres_in_lon_lat_columns_and_a_swapped_easting_northing(tmp_path):
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32647, always_xy=True).transform(100.4679, 7.0046)
    cases = [("X,Y", "100.4679,7.0046", None, "hold degrees"),           # Thai GIS forms: 'X', 'Y' in degrees
             ("lon,lat", f"{x:.2f},{y:.2f}", 32647, "hold metres"),     # UTM pasted under lon/lat
             ("x,y", f"{y:.2f},{x:.2f}", 32647, "easting and northing swapped")]
    for head, cells, epsg, said in cases:
        r = fi.read_table(_csv(tmp_path, "p.csv", f"id,datetime,{head}\n1,15/03/2569 07:30,{cells}\n"), "incidents",
                          area=ZONE, epsg=epsg)
        assert r.frame["lon"].round(6).tolist() == [100.4679] and r.frame["lat"].round(6).tolist() == [7.0046]
        assert any(said in w for w in r.warnings), r.warnings
    with pytest.raises(InputError, match=r"metres, UTM\?.*head metric columns x and y"):
        fi.read_table(_csv(tmp_path, "p.csv", f"id,datetime,lon,lat\n1,15/03/2569 07:30,{x:.2f},{y:.2f}\n"),
                      "incidents")


def test_a_bad_first_fix_is_the_jump_not_the_pings_that_agree_after_it(tmp_path):
    rows = ["unit,time,lat,lon", "A,15/03/2569 07:00:00,7.1046,100.4679"]  # 11 km off, 8 s before the next
    rows += [f"A,15/03/2569 07:00:{i * 8:02d},7.0046,{100.4679 + i * 0.0001:.4f}" for i in range(1, 7)]
    rows += ["B,15/03/2569 07:00:00,7.0046,100.4679", "B,15/03/2569 07:00:10,7.0047,100.4679",
             "B,15/03/2569 07:00:20,7.2047,100.4679"]  # a bad last fix
    r = fi.read_table(_csv(tmp_path, "gps.csv", "\n".join(rows) + "\n"), "gps_pings")
    assert r.frame["jump"].tolist() == [True] + [False] * 8 + [True]
    assert fi.trip_pings(r.frame)["lat"].max() == 7.0047
    r = fi.read_table(_csv(tmp_path, "bad.csv", "unit,time,lat,lon\nA,15/03/2569 07:00:60,7.0046,100.4679\n"),
                      "gps_pings", on_bad_row="drop")
    assert "07:00:60 is not a time of day" in r.warnings[0]


def test_excel_error_values_are_named_and_unknown_markers_are_empty(tmp_path):
    head = "unit,time,lat,lon,speed\nA,15/03/2569 07:00:00,7.0046,100.4679,"
    with pytest.raises(InputError, match=r"column 'speed_mps' \(\"speed\"\): '#DIV/0!' — an Excel error value"):
        fi.read_table(_csv(tmp_path, "e.csv", head + "#DIV/0!\n"), "gps_pings")
    for cell in ("N/A", "ไม่ระบุ", "-"):
        f = fi.read_table(_csv(tmp_path, "n.csv", head + cell + "\n"), "gps_pings").frame
        assert f["speed_mps"].isna().tolist() == [True]
    with pytest.raises(InputError, match=r"row 1 \(line 2\), column 'lon/lat'.*no position"):
        fi.read_table(_csv(tmp_path, "p.csv", "unit,time,lat,lon\nA,15/03/2569 07:00:00,N/A,N/A\n"), "gps_pings")


def _formula_workbook(path: Path, calculated: bool) -> Path:
    """A workbook with formulas in lon (=100.4+0.0679) and a note (=IF(...,"",...)); ``calculated``: with the
    results Excel saves beside them (100.4679 and empty text), else as openpyxl writes them (no results)."""
    import re
    import zipfile

    wb = openpyxl.Workbook()
    wb.active.append(["id", "datetime", "lon", "lat", "note"])
    wb.active.append(["1", "15/03/2569 07:30", "=100.4+0.0679", 7.0046, '=IF(1=1,"","x")'])
    wb.save(path)
    if calculated:
        with zipfile.ZipFile(path) as z:
            files = {n: z.read(n) for n in z.namelist()}
        x = files["xl/worksheets/sheet1.xml"].decode()
        x = re.sub(r'(<c r="C2"[^>]*)>(<f>.*?</f>)(?:<v\s*/>|<v></v>)?</c>', r"\1>\2<v>100.4679</v></c>", x)
        x = re.sub(r'(<c r="E2"[^>]*)>(<f>.*?</f>)(?:<v\s*/>|<v></v>)?</c>', r'\1 t="str">\2<v></v></c>', x)
        files["xl/worksheets/sheet1.xml"] = x.encode()
        with zipfile.ZipFile(path, "w") as z:
            for n, b in files.items():
                z.writestr(n, b)
    return path


def test_formulas_never_calculated_are_refused_and_calculated_ones_read(tmp_path):
    with pytest.raises(InputError, match=r"row 1 \(Excel row 2\), column 'lon': =100\.4\+0\.0679 — a formula with "
                                            r"no saved result"):
        fi.read_table(_formula_workbook(tmp_path / "raw.xlsx", False), "incidents")  # was 'no position'
    f = fi.read_table(_formula_workbook(tmp_path / "saved.xlsx", True), "incidents").frame
    assert f["lon"].tolist() == [100.4679] and f["note"].tolist() == [None]


def test_pings_whose_only_date_column_holds_the_times(tmp_path):
    text = "หน่วย,วันที่,ละติจูด,ลองจิจูด\nA,15/03/2569 07:30:00,7.0046,100.4679\n"
    r = fi.read_table(_csv(tmp_path, "p.csv", text), "gps_pings")  # was "no column for 'ts'"
    assert r.frame["ts"].tolist() == [_utc("2026-03-15 00:30")] and "'วันที่' holds dates with times" in r.warnings[0]
    with pytest.raises(InputError, match=r"column 'ts': GPS pings need a time of day, and column 'วันที่' holds "
                                            r"dates only\. What to do: add a time column"):
        fi.read_table(_csv(tmp_path, "p.csv", text.replace(" 07:30:00", "")), "gps_pings")


def test_risk_point_kinds_and_statuses_as_thai_offices_write_them(tmp_path):
    text = ("ประเภท,สถานะ,ลองจิจูด,ละติจูด\nไฟไม่ติด,เสร็จสิ้น,100.4679,7.0046\nต้นไม้บัง,อยู่ระหว่างดำเนินการ,100.4679,7.0046\n"
            "ที่รกร้าง,ยังไม่ดำเนินการ,100.4679,7.0046\nหลอดไฟเสีย,ดำเนินการแล้ว,100.4679,7.0046\n")
    f = fi.read_table(_csv(tmp_path, "r.csv", text), "risk_points").frame
    assert f["kind"].tolist() == ["lighting", "vegetation", "abandoned", "lighting"]
    assert f["status"].tolist() == ["fixed", "scheduled", "reported", "fixed"]


def test_points_left_out_or_kept_outside_the_zone_are_listed_by_row(tmp_path):
    text = HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\n2,15/03/2569 07:30,x,100.5,7.1\n" \
                  "3,15/03/2569 07:30,x,100.4679,7.0046\n"
    r = fi.read_table(_csv(tmp_path, "o.csv", text), "incidents", area=ZONE, outside="drop")
    assert r.warnings == ["1 of 3 incidents are outside the Hat Yai zone and were left out: line 3"]
    assert r.frame["row"].tolist() == [1, 3]
    dms = 'id,datetime,lon,lat\n1,15/03/2569 07:30,"0°0\'0""E","0°0\'0""N"\n2,15/03/2569 07:30,100.4679,7.0046\n'
    r = fi.read_table(_csv(tmp_path, "n.csv", dms), "incidents", area=ZONE)
    assert r.counts["null_island"] == 1 and r.frame["row"].tolist() == [2]
    assert parse_degrees("-7°30'S", "lat") == -7.5  # a minus and an S are one southern latitude


def test_a_units_row_under_the_header_is_not_data(tmp_path):
    text = ("ประเภท,ความเร็ว,ลองจิจูด,ละติจูด\n,,(องศา),(องศา)\nไฟดับ,,100.4679,7.0046\n")
    r = fi.read_table(_csv(tmp_path, "u.csv", text), "risk_points")  # was "'(องศา)' — not a number"
    assert r.frame["lon"].tolist() == [100.4679] and "gives units" in r.warnings[0]
    text = "unit,time,lat,lon,speed\n,,,,(กม/ชม)\nA,15/03/2569 07:30:00,7.0046,100.4679,36\n"
    r = fi.read_table(_csv(tmp_path, "s.csv", text), "gps_pings")  # the unit row's km/h is the speed's unit
    assert r.frame["speed_mps"].tolist() == [10.0]


def test_a_chart_sheet_first_in_the_workbook_is_passed_over(tmp_path):
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "ข้อมูล"
    ws.append(["id", "datetime", "lon", "lat"])
    ws.append(["1", "15/03/2569 07:30", 100.4679, 7.0046])
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=3, min_row=1, max_row=2))
    wb.create_chartsheet("กราฟ", 0).add_chart(chart)
    wb.save(tmp_path / "chart.xlsx")
    assert fi.read_table(tmp_path / "chart.xlsx", "incidents").frame["lon"].tolist() == [100.4679]
    with pytest.raises(InputError, match="sheet 'กราฟ' is a chart, not a table"):
        fi.read_table(tmp_path / "chart.xlsx", "incidents", sheet="กราฟ")


def test_a_title_in_brackets_is_not_taken_for_json(tmp_path):
    text = "[ รายงานเหตุ ]\n" + HEAD + "1,15/03/2569 07:30,x,100.4679,7.0046\n"
    assert fi.read_table(_csv(tmp_path, "t.csv", text), "incidents").frame["lon"].tolist() == [100.4679]
    with pytest.raises(InputError, match="JSON document"):
        fi.read_table(_csv(tmp_path, "g.csv", '{"type": "FeatureCollection", "features": []}'), "incidents")


@pytest.mark.parametrize("label", ["เฉลี่ย", "ค่าเฉลี่ย", "รวม/เฉลี่ย", "Average"])
def test_an_average_row_under_a_poll_is_not_a_community(tmp_path, label):
    text = ("ชุมชน,เดือน,จำนวนผู้ตอบ,ความหวาดกลัว,ความเชื่อมั่น\nก,03/2569,100,35,85\nข,03/2569,100,45,75\n"
            f"{label},03/2569,100,40,80\n")
    r = fi.read_table(_csv(tmp_path, "poll.csv", text), "survey_results")
    assert r.frame["community"].tolist() == ["ก", "ข"] and "totals row" in r.warnings[0]


def test_a_gpx_track_is_named_as_such(tmp_path):
    gpx = ('<?xml version="1.0"?>\n<gpx version="1.1"><trk><trkseg><trkpt lat="7.0046" lon="100.4679"/>'
           "</trkseg></trk></gpx>")
    with pytest.raises(InputError, match="this is a GPX track, not a table"):
        fi.read_table(_csv(tmp_path, "track.csv", gpx), "gps_pings")


def test_thai_spellings_that_look_alike_match_and_a_wrong_status_says_what_is_accepted(tmp_path):
    text = "ชุมชน,เดือน,จ\u0e4d\u0e32นวนผู้ตอบ,ความหวาดกลัว,ความเชื่อมั่น\nก,03/2569,100,35,85\n"  # ํ+า from a PDF
    assert fi.read_table(_csv(tmp_path, "p.csv", text), "survey_results").frame["respondents"].tolist() == [100]
    text = "ประเภท,สถานะ,ลองจิจูด,ละติจูด\nไฟไม่ติด,\u0e40\u0e40จ้งแล้ว,100.4679,7.0046\nไฟไม่ติด,ไม่รู้,100.4679,7.0046\n"
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'status'.*What to do: write one of fixed, "
                                            r"reported, scheduled \(or a Thai word for it, e\.g\. แจ้งแล้ว"):
        fi.read_table(_csv(tmp_path, "r.csv", text), "risk_points")  # row 1's เ+เ is แ: read


def test_utm_metres_without_an_epsg_are_read_in_the_areas_utm_zone(tmp_path):
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32647, always_xy=True).transform(100.4679, 7.0046)
    p = _csv(tmp_path, "utm.csv", f"id,datetime,easting,northing\n1,15/03/2569 07:30,{x:.2f},{y:.2f}\n")
    r = fi.read_table(p, "incidents", area=ZONE)
    assert r.frame["lon"].round(6).tolist() == [100.4679] and r.frame["lat"].round(6).tolist() == [7.0046]
    assert "UTM zone 47N (EPSG:32647)" in r.warnings[0]
    with pytest.raises(InputError, match="coordinate system is not known"):
        fi.read_table(p, "incidents")  # no area, no EPSG: which zone is not known


def test_dms_seconds_without_their_quote_mark():
    assert round(parse_degrees("7°00'16.6N", "lat"), 6) == 7.004611
    assert [round(v, 6) for v in parse_latlon("7°00'16.6N 100°28'04.4E")] == [7.004611, 100.467889]
    assert parse_latlon("N7.0046 E100.4679") == (7.0046, 100.4679)
