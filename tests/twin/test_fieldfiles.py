"""Field-input files to raw cells (twin.fieldfiles): old Excel 97-2003 (.xls) and LibreOffice (.ods) workbooks go
through the same sheet choice, header search, totals rows and validation as .xlsx. The workbooks are written here:
.xls by xlwt, .ods by pandas with odfpy (both in the dev extra) or by hand."""

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


def _hand_ods(p: Path, tables: dict[str, str]) -> Path:
    """An .ods written by hand: each sheet's name and the rows of its ``table:table`` as XML."""
    import zipfile

    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    body = "".join(f'<table:table table:name="{name}">{rows}</table:table>' for name, rows in tables.items())
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">'
               f'<office:body><office:spreadsheet>{body}</office:spreadsheet></office:body></office:document-content>')
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
                   '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry '
                   'manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                   '</manifest:manifest>')
    return p


def _cell(v: Any, attrs: str = "") -> str:
    kind = 'office:value-type="float" office:value' if isinstance(v, float) else 'office:value-type="string" x'
    return f'<table:table-cell {kind}="{v}"{attrs}><text:p>{v}</text:p></table:table-cell>'


def _rows(rows: list[list[Any]]) -> str:
    return "".join("<table:table-row>" + "".join(_cell(v) for v in r) + "</table:table-row>" for r in rows)


def _repeated_ods(p: Path, rows: int, cols: int) -> Path:
    """A small .ods whose first sheet 'bomb' is one filled row repeated ``rows`` times over ``cols`` columns
    (number-rows-repeated: a 1 KB file of millions of cells), then a sheet 'ข้อมูล' with a table."""
    return _hand_ods(p, {"bomb": f'<table:table-row table:number-rows-repeated="{rows}"><table:table-cell '
                                 f'table:number-columns-repeated="{cols}" office:value-type="float" office:value="1">'
                                 '<text:p>1</text:p></table:table-cell></table:table-row>',
                         "ข้อมูล": _rows([["เลขรับแจ้ง", "วันที่", "ลองจิจูด", "ละติจูด"],
                                          ["A1", "15/03/2569", 100.4679, 7.0046]])})


def test_a_huge_sheet_is_refused_before_it_is_read_and_only_the_sheet_asked_for_is_read(tmp_path: Path) -> None:
    """100,000 rows x 30 columns in a 1 KB .ods: the sheet is refused saying its size and what to do (the odf
    reader parsed every sheet whole, into gigabytes); the workbook's other sheet, named, is read."""
    from twin.fieldfiles import MAX_SHEET_CELLS

    p = _repeated_ods(tmp_path / "รายงาน.ods", 100_000, 30)
    assert p.stat().st_size < 2000 and MAX_SHEET_CELLS < 100_000 * 30
    with pytest.raises(InputError, match=r"^รายงาน\.ods: sheet 'bomb' has 100,000 rows x 30 columns, more than "
                                         r"2,000,000 cells\. What to do: export the sheet as CSV UTF-8"):
        read_table(p, "incidents", sheet="bomb")
    r = read_table(p, "incidents", sheet="ข้อมูล")
    assert r.frame["incident_id"].tolist() == ["A1"] and r.frame["lon"].tolist() == [100.4679]


def _refused_in_subprocess(p: Path, sheet: str, memory: int = 1 << 30) -> str:
    """Read ``p`` in a child Python limited to ``memory`` bytes of data and 60 s; the InputError it says (a
    reader that inflates the bomb dies of MemoryError there, not here)."""
    import os
    import subprocess
    import sys

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_DATA, (int(sys.argv[3]),) * 2)\n"
            "from twin.fieldinput import read_table\nfrom twin.fieldspecs import InputError\n"
            "try:\n    read_table(sys.argv[1], 'incidents', sheet=sys.argv[2])\n"
            "except InputError as e:\n    print(e)\n")
    import twin

    env = {**os.environ, "PYTHONPATH": str(Path(twin.__file__).parents[1])}  # the twin this test imported
    run = subprocess.run([sys.executable, "-P", "-c", code, str(p), sheet, str(memory)], capture_output=True,
                         text=True, timeout=60, env=env)
    return run.stdout + run.stderr


SPAN_40 = ' table:number-columns-repeated="40"'
BOMB_ROW = ('<table:table-row table:number-rows-repeated="90000"><table:table-cell '
            'table:number-columns-repeated="1000" office:value-type="float" office:value="1"/></table:table-row>')


def test_an_ods_declaring_90_million_cells_is_refused_before_calamine_parses_it(tmp_path: Path) -> None:
    """A 1 KB .ods whose sheet 'bomb' repeats a filled row 90,000 times over 1,000 columns took 2.8 GB when
    calamine opened it (it parses every sheet, the one asked for was 'ข้อมูล'): its content.xml is counted first and
    the workbook refused naming the big sheet, within 1 GB."""
    p = _repeated_ods(tmp_path / "bomb.ods", 90_000, 1000)
    assert p.stat().st_size < 2000
    said = _refused_in_subprocess(p, "ข้อมูล")
    assert said.startswith("bomb.ods: sheet 'bomb' has 90,000 rows x 1,000 columns, more than 2,000,000 cells "
                           "(every sheet is read on opening the workbook). What to do: export the sheet to read as "
                           "CSV UTF-8 (File > Save As) and read that, or delete the sheets not needed"), said
    # sheets each under the sheet limit but together over the workbook's: said with each sheet's cells
    row = f'<table:table-row table:number-rows-repeated="40000">{_cell(1.0, SPAN_40)}</table:table-row>'
    p = _hand_ods(tmp_path / "many.ods", {f"s{i}": row for i in range(4)})
    with pytest.raises(InputError, match=r"^many\.ods: the workbook's sheets hold more than 6,000,000 cells together "
                                         r"\('s0': 1,600,000, 's1': 1,600,000, 's2': 1,600,000, 's3': 1,600,000\): "
                                         r"too many to read, as every sheet is read on opening the workbook\. What to "
                                         "do: export the sheet to read as CSV"):
        read_table(p, "incidents", sheet="s0")
    # the sheets are all counted: a bomb after three sheets that reach the bound is named as the problem
    p = _hand_ods(tmp_path / "after.ods", {**{f"s{i}": row for i in range(3)}, "bomb": BOMB_ROW})
    with pytest.raises(InputError, match=r"^after\.ods: sheet 'bomb' has 90,000 rows x 1,000 columns, more than "):
        read_table(p, "incidents", sheet="s0")


def test_honest_workbooks_up_to_the_bound_are_measured_and_not_refused() -> None:
    """Four sheets of 1.5 million cells (each under the sheet bound) of 30 characters are 6,000,000 cells together:
    read; one cell more is refused."""
    from twin.fieldfiles import _refuse_big_book

    _refuse_big_book("book.ods", [(f"s{i}", 37_500, 40) for i in range(4)], 6_000_000 * 30)
    with pytest.raises(InputError, match=r"more than 6,000,000 cells together \('s0': 1,500,000, 's1': 1,500,000, "
                                         r"'s2': 1,500,000, 's3': 1,500,040\)"):
        _refuse_big_book("book.ods", [*[(f"s{i}", 37_500, 40) for i in range(3)], ("s3", 37_501, 40)], 0)


def test_an_ods_whose_content_is_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """content.xml over the byte limit uncompressed (a few KB zipped) is refused; the limit is lowered here so that
    the test writes megabytes, not hundreds."""
    import twin.fieldfiles as ff

    p = _hand_ods(tmp_path / "zip.ods", {"ข้อมูล": _rows([["เลขรับแจ้ง", "x" * 3_000_000]])})
    assert p.stat().st_size < 20_000
    monkeypatch.setattr(ff, "MAX_UNZIPPED_BYTES", 2_000_000)
    with pytest.raises(InputError, match=r"^zip\.ods: the workbook is too big to read: its content\.xml is "
                                         r"6,000,[\d,]+ bytes uncompressed, more than 2,000,000\. What to do: "
                                         "export the sheet as CSV"):
        read_table(p, "incidents")


def test_an_xlsx_whose_xml_is_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A sheet of 3 MB (one long text cell; a few KB zipped) over the byte limit, lowered here to 2 MB, is refused
    before openpyxl inflates it, also when the sheet's part is not named .xml (openpyxl reads it by its relation)."""
    import zipfile

    import openpyxl

    import twin.fieldfiles as ff

    wb = openpyxl.Workbook()
    wb.active["A1"] = "เลขรับแจ้ง"
    wb.save(tmp_path / "small.xlsx")
    p = tmp_path / "strings.xlsx"
    with zipfile.ZipFile(tmp_path / "small.xlsx") as small, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for name in small.namelist():
            data = small.read(name)
            if name == "xl/worksheets/sheet1.xml":  # openpyxl writes no text over Excel's 32,767 characters
                data = data.replace(b"</row>", b'<c r="B1" t="inlineStr"><is><t>' + b"x" * 3_000_000
                                    + b"</t></is></c></row>")
            z.writestr(name, data)
    assert p.stat().st_size < 20_000
    monkeypatch.setattr(ff, "MAX_UNZIPPED_BYTES", 2_000_000)
    with pytest.raises(InputError, match=r"^strings\.xlsx: the workbook is too big to read: its parts are 3,0[\d,]+ "
                                         r"bytes uncompressed, more than 2,000,000\. What to do: export the sheet as"):
        read_table(p, "incidents")
    png = tmp_path / "png.xlsx"
    with zipfile.ZipFile(p) as big, zipfile.ZipFile(png, "w", zipfile.ZIP_DEFLATED) as z:
        for name in big.namelist():
            z.writestr(name.replace("sheet1.xml", "sheet1.png"), big.read(name).replace(b"sheet1.xml", b"sheet1.png"))
    assert "xl/worksheets/sheet1.png" in zipfile.ZipFile(png).namelist()
    with pytest.raises(InputError, match=r"^png\.xlsx: the workbook is too big to read: its parts are 3,0"):
        read_table(png, "incidents")


def test_an_xlsx_with_cells_far_apart_is_refused_before_its_cells_are_listed(tmp_path: Path) -> None:
    """Two cells, A1 and XFD1048576, span 17 billion cells: refused naming the sheet's size, within 1 GB."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "ข้อมูล"
    wb.active["A1"], wb.active["XFD1048576"] = "เลขรับแจ้ง", 1
    p = tmp_path / "far.xlsx"
    wb.save(p)
    said = _refused_in_subprocess(p, "ข้อมูล")
    assert said.startswith("far.xlsx: sheet 'ข้อมูล' has 1,048,576 rows x 16,384 columns, more than 2,000,000 "
                           "cells. What to do: export the sheet as CSV UTF-8"), said


def test_merged_ods_cells_carry_down_like_xlsx(tmp_path: Path) -> None:
    """A date merged over two incidents (number-rows-spanned, a covered cell below) is each one's date, as in
    .xlsx and .xls (calamine gives no merged ranges for .ods: they come from content.xml)."""
    merged = _cell("16/03/2569 22:10", ' table:number-rows-spanned="2" table:number-columns-spanned="1"')
    rows = (_rows([HEADER, ["A1", "15/03/2569 07:30", "ลักทรัพย์", 100.4679, 7.0046]])
            + f"<table:table-row>{_cell('A2')}{merged}{_cell('ชิงทรัพย์')}{_cell(100.468)}{_cell(7.005)}"
            "</table:table-row>"
            + f"<table:table-row>{_cell('A3')}<table:covered-table-cell/>{_cell('ชิงทรัพย์')}{_cell(100.469)}"
            f"{_cell(7.006)}</table:table-row>")
    r = read_table(_hand_ods(tmp_path / "merged.ods", {"ข้อมูล": rows}), "incidents")
    assert r.frame["incident_id"].tolist() == ["A1", "A2", "A3"], r.warnings
    assert r.frame["ts"].tolist() == [pd.Timestamp("2026-03-15 00:30", tz="UTC"),
                                      pd.Timestamp("2026-03-16 15:10", tz="UTC"),
                                      pd.Timestamp("2026-03-16 15:10", tz="UTC")]


def test_out_of_memory_is_not_said_to_be_a_damaged_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import python_calamine

    p = _xls(tmp_path / "x.xls", {"ข้อมูล": REPORT})

    def no_memory(*a: Any, **k: Any) -> None:
        raise MemoryError

    class NoMemory:  # the reader opening the workbook runs out of memory
        from_path = from_filelike = staticmethod(no_memory)

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", NoMemory)
    with pytest.raises(MemoryError):
        read_table(p, "incidents")


def test_a_hidden_sheet_is_read_after_the_visible_ones_and_merged_xls_cells_carry_down(tmp_path: Path) -> None:
    """As in .xlsx: a hidden 'old-template' sheet with the same header comes after the visible data sheet (it was
    read first); a date merged over two incidents in .xls is each one's date."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    old = wb.add_sheet("old-template")
    old.visibility = 1  # hidden
    data = wb.add_sheet("ข้อมูล")
    for ws, rows in ((old, [HEADER, ["T1", "01/01/2560 00:00", "แบบฟอร์ม", 100.4, 7.0]]),
                     (data, [HEADER, ["A1", "15/03/2569 07:30", "ลักทรัพย์", 100.4679, 7.0046]])):
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                ws.write(i, j, v)
    data.write_merge(2, 3, 1, 1, "16/03/2569 22:10")
    for i, ident in ((2, "A2"), (3, "A3")):
        for j, v in ((0, ident), (2, "ชิงทรัพย์"), (3, 100.468), (4, 7.005)):
            data.write(i, j, v)
    p = tmp_path / "book.xls"
    wb.save(str(p))
    r = read_table(p, "incidents")
    assert r.frame["incident_id"].tolist() == ["A1", "A2", "A3"], r.warnings
    assert r.frame["ts"].tolist()[1:] == [pd.Timestamp("2026-03-16 15:10", tz="UTC")] * 2
    assert "read sheet 'ข้อมูล'" in r.warnings[0]
    assert read_table(p, "incidents", sheet=0).frame["incident_id"].tolist() == ["T1"]  # numbered as in the book


def test_the_ods_scan_counts_the_cells_calamine_makes(tmp_path: Path) -> None:
    """LibreOffice writes a sheet's unused columns and rows as repeated empty cells (1,016 columns, a million rows):
    not counted, as calamine makes no cells of them; empty rows and cells before a filled one are counted: the extent
    scanned is calamine's."""
    from python_calamine import CalamineWorkbook

    from twin.odslayout import ods_layout

    empty_cols = '<table:table-cell table:style-name="ce1" table:number-columns-repeated="1016"/>'
    libre = (_rows([HEADER]).replace("</table:table-row>", empty_cols + "</table:table-row>")
             + '<table:table-row table:number-rows-repeated="3"><table:table-cell table:number-columns-repeated="9"/>'
             "</table:table-row>"  # blank rows, then one cell in column K
             + f'<table:table-row><table:table-cell table:number-columns-repeated="10"/>{_cell("x")}{empty_cols}'
             "</table:table-row>"
             + '<table:table-row table:number-rows-repeated="1048570"><table:table-cell '
             'table:number-columns-repeated="1024"/></table:table-row>')
    p = _hand_ods(tmp_path / "libre.ods", {"ข้อมูล": libre, "ว่าง": "<table:table-row><table:table-cell/>"
                                           "</table:table-row>", "สูตร": "<table:table-row><table:table-cell/>"
                                           '<table:table-cell table:formula="of:=1+1"/></table:table-row>'})
    layout = ods_layout(p, 10**9)
    assert {n: (s.rows, s.columns) for n, s in layout.sheets.items()} == {"ข้อมูล": (5, 11), "ว่าง": (0, 0),
                                                                          "สูตร": (1, 2)}
    ws = CalamineWorkbook.from_path(str(p)).get_sheet_by_name("ข้อมูล")
    assert (ws.total_height + 1, ws.total_width + 1) == (5, 11)  # (a formula fills calamine's formula range)


def test_table_parts_nested_where_an_ods_never_has_them_are_refused(tmp_path: Path) -> None:
    """calamine skips a cell's content and reads rows after it as the table's: a row or a table hidden in a cell
    hid a 90-million-cell row from the scan (5.7 GB when read); a row in a row or a table in a table reads apart too,
    and two sheets of one name or two content.xml (the scan read one, calamine might read the other)."""
    import zipfile

    from twin.odslayout import ods_layout

    hidden = {"a row in a cell": '<table:table-row table:number-rows-repeated="90000"><table:table-cell>'
                                 '<table:table-row/></table:table-cell><table:table-cell table:number-columns-'
                                 'repeated="1000" office:value-type="float" office:value="1"/></table:table-row>',
              "a table in a cell": ('<table:table-row><table:table-cell><table:table table:name="x"/>'
                                    f"</table:table-cell></table:table-row>{BOMB_ROW}"),
              "a row in a row": BOMB_ROW.replace("</table:table-row>", "<table:table-row/></table:table-row>"),
              "a table in a table": f'<table:table table:name="x"/>{BOMB_ROW}'}
    said = {}
    for what, rows in hidden.items():
        with pytest.raises(ValueError, match=r"^content\.xml has a table:table(-row)? inside ") as e:
            ods_layout(_hand_ods(tmp_path / "b.ods", {"bomb": rows}), 10**9)
        said[what] = str(e.value)
    assert said["a row in a cell"] == "content.xml has a table:table-row inside a table cell"
    assert said["a table in a table"] == "content.xml has a table:table inside another"
    named = _hand_ods(tmp_path / "named.ods", {"bomb": BOMB_ROW, "x": "<table:table-row/>"})
    with zipfile.ZipFile(named) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(named, "w") as z:  # two sheets 'bomb': calamine parsed the first (2.9 GB), the scan the second
        for n, data in parts.items():
            z.writestr(n, data.replace(b'table:name="x"', b'table:name="bomb"'))
    with pytest.raises(ValueError, match=r"^content\.xml names two sheets 'bomb'$"):
        ods_layout(named, 10**9)
    twice = _hand_ods(tmp_path / "twice.ods", {"bomb": BOMB_ROW})
    with zipfile.ZipFile(twice, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("content.xml", "<small/>")
    with pytest.raises(ValueError, match=r"^the zip holds content\.xml twice$"):
        ods_layout(twice, 10**9)
    # read as a user would, within 1 GB: refused as not readable before calamine builds the row
    out = _refused_in_subprocess(_hand_ods(tmp_path / "cell.ods", {"bomb": hidden["a row in a cell"]}), "bomb")
    assert out.startswith("cell.ods: not a readable OpenDocument (.ods) workbook (ValueError: content.xml has a "
                          "table:table-row inside a table cell)"), out


def _far_xls(p: Path, sheets: dict[str, tuple[int, int]]) -> Path:
    """An .xls (xlwt) whose sheets each hold a header at A1 and a number (a NUMBER record) at (row, column): a few
    KB whose sheets span millions of cells."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    for name, (row, col) in sheets.items():
        ws = wb.add_sheet(name)
        ws.write(0, 0, "เลขรับแจ้ง")
        ws.write(row, col, 0.123456789)
    wb.save(str(p))
    return p


def _patched(p: Path, old: bytes, new: bytes) -> Path:
    """``p`` with the one place holding ``old`` overwritten by ``new`` (same length)."""
    data = p.read_bytes()
    assert data.count(old) == 1 and len(new) == len(old)
    p.write_bytes(data.replace(old, new))
    return p


def test_an_xls_with_cells_far_apart_is_refused_before_calamine_builds_its_sheets(tmp_path: Path) -> None:
    """A1 and IV65536 in a 6 KB .xls are 16.7 million cells (1.2 GB when calamine opened it, building every sheet):
    measured from the records first and refused, within 1 GB; sheets under the sheet bound but over the workbook's
    together are said with each one's cells."""
    p = _far_xls(tmp_path / "far.xls", {"ข้อมูล": (65535, 255)})
    assert p.stat().st_size < 8000
    said = _refused_in_subprocess(p, "ข้อมูล")
    assert said.startswith("far.xls: sheet 'ข้อมูล' has 65,536 rows x 256 columns, more than 2,000,000 cells (every "
                           "sheet is read on opening the workbook). What to do: export the sheet to read as CSV"), said
    p = _far_xls(tmp_path / "many.xls", {f"s{i}": (7999, 249) for i in range(4)})  # 8,000 x 250 each
    with pytest.raises(InputError, match=r"^many\.xls: the workbook's sheets hold more than 6,000,000 cells together "
                                         r"\('s0': 2,000,000, 's1': 2,000,000, 's2': 2,000,000, 's3': 2,000,000\)"):
        read_table(p, "incidents", sheet="s0")


def test_xls_records_that_made_calamine_abort_the_process_are_refused(tmp_path: Path) -> None:
    """A cell past column IV, or a DIMENSIONS record declaring 4 billion rows (or its first row after its last:
    calamine's arithmetic wraps), made calamine abort the whole process (SIGABRT) opening a 6 KB file: the cell is
    measured (refused as too big), the record refused as damaged, before calamine opens it."""
    import struct

    from twin.xlslayout import xls_layout

    cell = struct.pack("<HHHH", 0x0203, 14, 65535, 255)
    p = _patched(_far_xls(tmp_path / "col.xls", {"ข้อมูล": (65535, 255)}), cell, cell[:6] + struct.pack("<H", 65535))
    assert [(s.name, s.rows, s.columns) for s in xls_layout(p.read_bytes())] == [("ข้อมูล", 65536, 65536)]
    with pytest.raises(InputError, match=r"^col\.xls: sheet 'ข้อมูล' has 65,536 rows x 65,536 columns, more than "):
        read_table(p, "incidents")
    dims = struct.pack("<HH", 0x0200, 14)  # the DIMENSIONS record, BIFF8: first row, last row + 1, columns so
    for name, (first, last, cols) in {"rows.xls": (0, 0xFFFFFFFF, 0xFFFF), "wrap.xls": (5, 1, 1)}.items():
        p = _far_xls(tmp_path / name, {"ข้อมูล": (0, 1)})  # A1:B1
        _patched(p, dims + struct.pack("<IIHH", 0, 1, 0, 2), dims + struct.pack("<IIHH", first, last, 0, cols))
        declared = (last - 1 - first + 1) % 2**32
        with pytest.raises(InputError, match=rf"^{name[:4]}\.xls: not a readable Excel 97-2003 \(\.xls\) workbook "
                                             rf"\(ValueError: sheet 'ข้อมูล' declares {declared:,} rows x {cols:,} "
                                             r"columns \(its DIMENSIONS record\), more than an \.xls sheet holds"):
            read_table(p, "incidents")


def test_xls_sheets_sharing_records_are_refused(tmp_path: Path) -> None:
    """Sheets whose offsets point into the same records (the walk, and calamine, would read them once per sheet
    entry: work that grows with entries x records from a file that does not) are refused as damaged."""
    import olefile

    p = _xls(tmp_path / "shared.xls", {"s0": REPORT, "s1": REPORT})
    with olefile.OleFileIO(str(p)) as ole:
        stream = ole.openstream("Workbook").read()
    bound = [stream[i:i + 8] for i in range(len(stream) - 8) if stream[i:i + 2] == b"\x85\x00"]
    assert len(bound) == 2
    _patched(p, bound[1], bound[1][:4] + bound[0][4:8])  # s1 starts where s0 does
    with pytest.raises(InputError, match=r"^shared\.xls: not a readable Excel 97-2003 \(\.xls\) workbook \(ValueError: "
                                         r"sheet 's1' shares its records with another sheet\)"):
        read_table(p, "incidents", sheet="s0")


def test_overlapping_merged_ranges_carry_each_cell_once() -> None:
    """Ranges that overlap (each row merged down to the last: 10,000 such rows in a 60 KB .ods took 7 s, growing with
    the square) stop at a cell already carried: the first range's value stays."""
    from twin.fieldfiles import _carry_merged, _sheet_grid

    g = _sheet_grid([[f"d{r}", r] for r in range(6)], "ods")
    _carry_merged(g, [(r, 0, 5) for r in range(6)])
    assert [row[0] for row in g.rows] == ["d0"] * 6
    assert g.copied_from == {(r, 0): 0 for r in range(1, 6)}


def test_an_xlsx_of_more_cells_than_the_workbook_bound_is_refused_before_openpyxl_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """openpyxl makes an object of every cell of every sheet on opening (380 MB a million; an empty <c/> is 4 bytes
    of XML, so a 300 KB file could hold 75 million): the cells are counted first, whatever the XML prefix, and a
    workbook over the sheet bound (lowered here to 1,000) in all refused (8 million empty cells in a 143 KB file:
    2.8 GB and 57 s before the sheet was refused, now 1.4 s and 130 MB)."""
    import zipfile

    import openpyxl

    import twin.fieldfiles as ff

    wb = openpyxl.Workbook()
    wb.active["A1"] = "เลขรับแจ้ง"
    wb.save(tmp_path / "small.xlsx")
    p = tmp_path / "cells.xlsx"
    main = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    with zipfile.ZipFile(tmp_path / "small.xlsx") as small, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for name in small.namelist():
            data = small.read(name)
            if name == "xl/worksheets/sheet1.xml":  # the main namespace as x: (openpyxl reads it the same)
                data = (data.replace(main, main.replace(b"xmlns=", b"xmlns:x=")).replace(b"<", b"<x:")
                        .replace(b"<x:/", b"</x:").replace(b"<x:?", b"<?")
                        .replace(b"</x:row>", b"<x:c/>" * 600 + b"<x:c\n/>" * 400 + b"</x:row>"))
            z.writestr(name, data)
    assert len(openpyxl.load_workbook(p).active["1"]) == 1001  # openpyxl reads them all
    monkeypatch.setattr(ff, "MAX_SHEET_CELLS", 1000)
    with pytest.raises(InputError, match=r"^cells\.xlsx: the workbook's sheets hold 1,001 cells together, more than "
                                         r"1,000: too many to read, as every sheet is read on opening the workbook\. "
                                         "What to do: export the sheet to read as CSV"):
        read_table(p, "incidents")


def test_an_ods_whose_repeated_cells_copy_long_text_is_refused(tmp_path: Path) -> None:
    """calamine copies a repeated cell's text into each copy: a 1 MB text over 3 columns in a row repeated 1,000
    times (a 2 KB file) took 8.9 GB, 300 million spaces in one text:s 1.3 GB; the text is counted (each copy, spaces
    and paragraphs too) and refused within 1 GB."""
    from twin.odslayout import ods_layout

    def text(body: str, repeat: str = "") -> str:  # a string cell over 3 columns, of 2 paragraphs, in one row
        return (f'<table:table-row{repeat}><table:table-cell office:value-type="string" table:number-columns-'
                f'repeated="3"><text:p>{body}</text:p><text:p/></table:table-cell></table:table-row>')

    rows5 = ' table:number-rows-repeated="5"'
    small = _hand_ods(tmp_path / "small.ods", {"ข้อมูล": text('ab<text:s/>c<text:s text:c="4"/>', rows5)})
    assert ods_layout(small, 10**9).text == (3 + 5 + 2) * 3 * 5  # 3 letters, 5 spaces, 2 paragraphs
    spaces = _hand_ods(tmp_path / "spaces.ods", {"ข้อมูล": text('<text:s text:c="300000000"/>')})
    assert ods_layout(spaces, 10**9).text == (300_000_000 + 2) * 3
    p = _hand_ods(tmp_path / "long.ods", {"ข้อมูล": text("x" * 1_000_000, ' table:number-rows-repeated="1000"')})
    assert p.stat().st_size < 5000
    said = _refused_in_subprocess(p, "ข้อมูล")
    assert said.startswith("long.ods: the workbook is too big to read: its cells hold 3,000,006,000 characters of "
                           "text (each copy of a repeated or shared text counted), more than 200,000,000. What to do: "
                           ), said


def test_an_xls_whose_shared_text_fills_many_cells_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """calamine copies a shared text into each cell showing it (a 32,767-character text in 60,000 cells of a 2 MB
    .xls took 5.9 GB): the texts' lengths come from the shared string table (one of 20,000 Thai characters runs on
    through CONTINUE records), each cell's counted, and the workbook refused over the bound (lowered here)."""
    import twin.fieldfiles as ff
    from twin.xlslayout import xls_layout

    p = _xls(tmp_path / "shared.xls", {"ข้อมูล": [["เลขรับแจ้ง"], *[["ก" * 20_000]] * 30, ["abc"]]})
    assert [s.text for s in xls_layout(p.read_bytes())] == [10 + 20_000 * 30 + 3]
    monkeypatch.setattr(ff, "MAX_BOOK_TEXT", 600_000)
    with pytest.raises(InputError, match=r"^shared\.xls: the workbook is too big to read: its cells hold 600,013 "
                                         r"characters of text \(each copy of a repeated or shared text counted\), "
                                         r"more than 600,000\. What to do: export the sheet to read as CSV"):
        read_table(p, "incidents")
