"""Field-input files to raw cells (twin.fieldfiles): old Excel 97-2003 (.xls) and LibreOffice (.ods) workbooks go
through the same sheet choice, header search, totals rows and validation as .xlsx. The workbooks are written here:
.xls by xlwt (the dev extra), .ods by pandas with odfpy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from twin.fieldfiles import load_raw
from twin.fieldinput import read_table
from twin.fieldspecs import InputError

HEADER = ["เลขรับแจ้ง", "วันเวลา", "ประเภท", "ลองจิจูด", "ละติจูด"]
SUMMARY = [["สรุปเหตุประจำเดือน"], [None], ["รวม", 3]]
REPORT = [["รายงานเหตุ สภ.หาดใหญ่ มีนาคม 2569"], [None], HEADER,                                     # Excel rows 1-3
          ["A1", dt.datetime(2026, 3, 15, 7, 30), "ลักทรัพย์", 100.4679, 7.0046],                   # a date cell
          ["A2", "16/03/2569 22:10", "ชิงทรัพย์ (รถจักรยานยนต์)", 100.468125, 7.005],               # BE text
          [None],
          [3, dt.datetime(2026, 3, 17, 1, 5), "ลักทรัพย์", 100.469, 7.006],                         # a number id
          ["รวมทั้งสิ้น 3 เหตุ"]]                                                                   # Excel row 8


def _xls(p: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    import xlwt  # the dev extra: no maintained library writes .xls

    wb = xlwt.Workbook(encoding="utf-8")
    when = xlwt.easyxf(num_format_str="DD/MM/YYYY HH:MM")
    for name, rows in sheets.items():
        ws = wb.add_sheet(name)
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if isinstance(v, dt.datetime):
                    ws.write(i, j, v, when)
                elif v is not None:
                    ws.write(i, j, v)
    wb.save(str(p))
    return p


def _ods(p: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    with pd.ExcelWriter(p, engine="odf") as w:
        for name, rows in sheets.items():
            width = max(len(r) for r in rows)
            pd.DataFrame([r + [None] * (width - len(r)) for r in rows]).to_excel(w, sheet_name=name, header=False,
                                                                                index=False)
    return p


WRITERS = {".xls": _xls, ".ods": _ods}


@pytest.mark.parametrize("suffix", WRITERS)
def test_old_excel_and_libreoffice_workbooks_read_like_xlsx(tmp_path: Path, suffix: str) -> None:
    p = WRITERS[suffix](tmp_path / f"รายงาน มีนาคม{suffix}", {"สรุป": SUMMARY, "ข้อมูล": REPORT})
    r = read_table(p, "incidents")
    f = r.frame
    assert f["incident_id"].tolist() == ["A1", "A2", "3"]
    assert f["kind"].tolist() == ["ลักทรัพย์", "ชิงทรัพย์ (รถจักรยานยนต์)", "ลักทรัพย์"]
    assert f["ts"].tolist() == [pd.Timestamp("2026-03-15 00:30", tz="UTC"), pd.Timestamp("2026-03-16 15:10", tz="UTC"),
                                pd.Timestamp("2026-03-16 18:05", tz="UTC")]
    assert f["lon"].tolist() == [100.4679, 100.468125, 100.469] and f["lat"].tolist() == [7.0046, 7.005, 7.006]
    assert f["hour"].tolist() == [7, 22, 1]
    assert r.encoding == suffix[1:]
    assert "read sheet 'ข้อมูล'" in r.warnings[0] and "'สรุป'" in r.warnings[0]
    assert any("header is on row 3" in w for w in r.warnings)
    assert any("totals row" in w and "Excel row 8" in w and "รวมทั้งสิ้น 3 เหตุ" in w for w in r.warnings)
    assert load_raw(p, "incidents", sheet="ข้อมูล").sheet_rows == [4, 5, 7]
    # a bad cell is named by its sheet row; a sheet that is not there is said with the sheets there are
    bad = [*REPORT[:6], [4, "31/02/2569 07:30", "ลักทรัพย์", 100.469, 7.006]]
    p = WRITERS[suffix](tmp_path / f"bad{suffix}", {"ข้อมูล": bad})
    with pytest.raises(InputError, match=r"row 3 \(Excel row 7\), column 'ts'.*day 31 of month 2"):
        read_table(p, "incidents")
    with pytest.raises(InputError, match=r"no sheet 'Sheet9'; its sheets are 'ข้อมูล'"):
        read_table(p, "incidents", sheet="Sheet9")


@pytest.mark.parametrize(("suffix", "what"), [(".xls", r"Excel 97-2003 \(\.xls\)"),
                                              (".ods", r"OpenDocument \(\.ods\)")])
def test_a_damaged_old_excel_or_libreoffice_workbook_is_refused_naming_the_file(tmp_path: Path, suffix: str,
                                                                                 what: str) -> None:
    whole = WRITERS[suffix](tmp_path / f"whole{suffix}", {"ข้อมูล": REPORT}).read_bytes()
    cut = tmp_path / f"ส่งมา{suffix}"
    cut.write_bytes(whole[:len(whole) // 2])  # a download cut short
    with pytest.raises(InputError, match=rf"^ส่งมา{suffix}: not a readable {what} workbook .*What to do: open it "
                                         r"in Excel or LibreOffice and save as \.xlsx"):
        read_table(cut, "incidents")


def test_an_ods_named_xlsx_is_read_as_ods_and_said(tmp_path: Path) -> None:
    p = _ods(tmp_path / "x.ods", {"ข้อมูล": REPORT})
    named = tmp_path / "รายงาน.xlsx"
    named.write_bytes(p.read_bytes())
    r = read_table(named, "incidents")
    assert len(r.frame) == 3 and "OpenDocument workbook named .xlsx: read as .ods" in r.warnings[0]
