"""Reading a field-input file into raw cells under its header row (:func:`load_raw`): text encodings
(:func:`decode_bytes`), the CSV delimiter (:func:`sniff_delimiter`), workbooks (``.xlsx`` through openpyxl: sheet
choice, merged cells, percentages, uncalculated formulas; ``.xls`` and ``.ods`` through python-calamine, pandas'
calamine reader, with the same sheet choice and merged cells; a cap on a sheet's cells and on a workbook's
uncompressed XML in all three, an ``.ods``'s counted before calamine parses it: :mod:`twin.odslayout`), and report
layouts (the header searched among the top rows, a header on two rows, units rows, totals rows, unfilled numbered
form rows).

The cells are typed and checked by :func:`twin.fieldinput.validate_frame`; :func:`twin.fieldinput.read_table` does
both.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pandas as pd

from twin.fieldspecs import SHOWN_ROWS, SPECS, InputError, InputSpec, TwoColumns, is_id, match_columns
from twin.fieldtext import THAI_CHAR, header_key, is_missing, normalize_text, unique_headers
from twin.odslayout import ContentTooBig, OdsLayout, ods_layout
from twin.xlslayout import xls_layout


def decode_bytes(raw: bytes, source: str) -> tuple[str, str]:
    """Bytes of a text table as ``(text, encoding)``: BOMs first, then strict UTF-8, then charset detection
    among the encodings Thai spreadsheets use (cp874/TIS-620, UTF-16 without BOM, cp1252)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    for bom, enc in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            try:
                return raw[2:].decode(enc), "utf-16"
            except UnicodeDecodeError:
                raise InputError(source, "the file starts with a UTF-16 mark but is not valid UTF-16",
                                 "save it again from Excel as 'CSV UTF-8' or 'Unicode Text'") from None
    le = _utf16_without_bom(raw)
    if le is not None:  # every byte of UTF-16 Thai and ASCII is below 0x80: it would pass as UTF-8 full of NULs
        try:
            return raw.decode("utf-16-le" if le else "utf-16-be"), "utf-16"
        except UnicodeDecodeError:
            raise InputError(source, "the file looks like UTF-16 without its byte-order mark but is not valid "
                             "UTF-16", "save it again from Excel as 'CSV UTF-8' or 'Unicode Text'") from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        head = raw[:e.start].decode("utf-8")
        if len(THAI_CHAR.findall(head)) >= 2:  # Thai in UTF-8, then bytes that are not: rows pasted from another export
            line = raw[:e.start].count(b"\n") + 1
            raise InputError(source, f"the file mixes text encodings: it is UTF-8 up to line {line}, which is not "
                             "(rows from a TIS-620/cp874 export pasted into a UTF-8 file?)",
                             "open each part in Excel and save the whole table once as 'CSV UTF-8'") from None
    from charset_normalizer import from_bytes

    # UTF-16 only when there are NULs: a table's digits, delimiters and line breaks have them (a one-row cp874
    # file 'x,ก' was taken for UTF-16 and read as CJK characters)
    candidates = ["cp874", "tis_620", "cp1252"] + (["utf_16_le", "utf_16_be"] if b"\x00" in raw else [])
    best = from_bytes(raw, cp_isolation=candidates).best()
    if best is None:
        raise InputError(source, "the text encoding is not UTF-8, UTF-16, TIS-620/cp874 or Windows-1252",
                         "save the file from Excel as 'CSV UTF-8 (comma delimited)'")
    enc = best.encoding.replace("tis_620", "cp874")
    if enc != "cp874":
        thai = _plausible_thai(raw)
        if thai is not None:
            return thai, "cp874"
    elif _NOT_THAI.search(str(best)):  # '£5' or '7°' of a Windows-1252 file
        try:
            return raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    return str(best), enc


_THAI_WORD = re.compile(r"[\u0e01-\u0e5b]{2}")
_THAI_MARK = re.compile(r"[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e]")
_THAI_LETTER = re.compile(r"[\u0e01-\u0e2e]")
_NOT_THAI = re.compile(r"[ฃฅ]|\dฐ")  # Windows-1252 '£', '¥' and a degree sign after a digit, read as cp874
_THAI_BY_LATIN = re.compile(r"[A-Za-z][\u0e01-\u0e5b]|[\u0e01-\u0e5b][A-Za-z]")


def _plausible_thai(raw: bytes) -> str | None:
    """``raw`` decoded as cp874 when that reads as Thai, else None: a short Thai file (one label row 'a.jpg,กข 1234'
    from Thai Excel) has too few bytes for charset detection, which took it for Windows-1252 ('¡¢ 1234'). Thai when
    it decodes, holds two Thai characters in a row, every vowel or tone mark follows a Thai letter and no Thai
    letter touches a Latin one: Latin text read as cp874 breaks these ('José' would be 'Jos' + a tone mark, 'Ángel'
    'ม' + 'ngel'). A file whose only Thai is single letters (a unit 'ร.1', a plate 'ผ-9324') is Thai too, unless
    they are what Windows-1252 symbols become: the obsolete ฃ/ฅ ('£', '¥') or ฐ after a digit ('7°')."""
    try:
        text = raw.decode("cp874")
    except UnicodeDecodeError:
        return None
    if _THAI_BY_LATIN.search(text) or _NOT_THAI.search(text):
        return None
    if not _THAI_WORD.search(text) and not _THAI_LETTER.search(text):
        return None
    for m in _THAI_MARK.finditer(text):
        if m.start() == 0 or not THAI_CHAR.match(text[m.start() - 1]):
            return None
    return text


def _utf16_without_bom(raw: bytes) -> bool | None:
    """True (little-endian) or False (big-endian) when ``raw`` is UTF-16 text without a BOM: the NUL high bytes
    of its ASCII characters (digits, delimiters, line breaks) all fall on one parity; None otherwise."""
    if len(raw) < 4 or len(raw) % 2 or b"\x00" not in raw:
        return None
    even, odd = raw[0::2].count(0), raw[1::2].count(0)
    half = len(raw) // 2
    if odd >= 0.2 * half and even == 0:
        return True
    if even >= 0.2 * half and odd == 0:
        return False
    return None


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text (one of ``, ; tab |``), from its first lines; ``,`` when there is one column."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: sample.splitlines()[0].count(d) if sample else 0 for d in ",;\t|"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


@dataclass
class RawTable:
    """A file's cells before validation: the header row found, the data rows, and where they came from."""

    frame: pd.DataFrame  # columns: the header cells as written; cells: text (CSV) or Excel's own types
    lines: list[int] | None  # file line of each data row (CSV), None for workbooks
    header_row: int  # 1-based row (CSV line / sheet row) of the header
    encoding: str  # text encoding, or the workbook format (one of WORKBOOK_FORMATS)
    delimiter: str | None
    sheet_rows: list[int] | None = None  # Excel row number of each data row (workbooks), None for text
    notes: list[str] = field(default_factory=list)  # what the reader did that the user should know (sheet, ...)


HEADER_SEARCH_ROWS = 30  # a report title or notes above the header are skipped up to this row
TOTALS_RE = re.compile(r"(?:ยอด)?รวม(?:ทั้งหมด|ทั้งสิ้น|วันที่|เดือน|ประจำ\S*)?(?:[\s\d:/].*)?|ทั้งหมด|"
                       r"(?:ค่า)?เฉลี่ย(?:[\s\d:/].*)?|(?:grand\s*|sub\s*)?totals?(?:\s*[\d:/].*)?|sum|average|mean|avg",
                       re.I | re.S)
"""A text cell that makes a row a totals, subtotal or average row (left out, with a warning): ``รวม``,
``รวมทั้งสิ้น 12 เหตุ``, ``รวมวันที่ 15``, ``รวม/เฉลี่ย``, ``ค่าเฉลี่ย``, ``Total``, ``Average``; not a name that starts
with รวม (``รวมใจ``)."""
_TOTAL_FIRST = set("ยรทคเgstam")  # the first letters TOTALS_RE can match: a quick test before normalising a cell
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old binary .xls (and .doc) files


@dataclass
class _Grid:
    rows: list[list[Any]]
    lines: list[int] | None  # CSV line of each row
    encoding: str
    delimiter: str | None
    notes: list[str] = field(default_factory=list)
    sheet_rows: list[int] | None = None  # Excel row number of each row
    copied_from: dict[tuple[int, int], int] = field(default_factory=dict)  # (row, col) of a merged cell's
    # value filled down -> the row it was copied from


def _not_a_table(text: str, src: str) -> None:
    """Refuse text that is an HTML page or a JSON document saved under a table's name."""
    head = text.lstrip()[:400].lower()
    for tag, what in (("<gpx", "a GPX track"), ("<kml", "a KML file (Google Earth)")):
        if head.startswith(("<?xml", tag)) and tag in head:
            raise InputError(src, f"this is {what}, not a table",
                             "export it as CSV with a time, lat and lon column (e.g. from the tracker's web page), or "
                             "as .xlsx")
    if head.startswith(("<!doctype html", "<html", "<table", "<?xml", "<head", "<body")):
        raise InputError(src, "this is a web page (HTML/XML), not a table: a web system's 'export to Excel' or a "
                         "page saved from the browser", "open it in Excel and save it as .xlsx, or as CSV UTF-8")
    if head.startswith(("{", "[")):
        import json

        try:
            doc = json.loads(text)
        except ValueError:  # a table whose first cell starts with a bracket ("[รายงาน]")
            return
        if isinstance(doc, dict | list):
            raise InputError(src, "this is a JSON document, not a CSV table",
                             "export the data as CSV or .xlsx (or send the JSON to the field-ingest API)")


def _xlsx_cell(c: Any) -> Any:
    """An openpyxl cell's value as the reader wants it: a number shown as a percentage (0.35 shown 35%) is the
    text ``"35%"``; empty text is None."""
    v = c.value
    if isinstance(v, int | float) and not isinstance(v, bool) and _percent_format(c.number_format or ""):
        return f"{round(v * 100, 9):.12g}%"
    return None if is_missing(v) else v


@functools.lru_cache(maxsize=256)
def _percent_format(fmt: str) -> bool:
    """True for an Excel number format that shows the value times 100 (``0%``, ``0.0%``); a literal % sign
    (``0"%"``, ``0\\%``) shows the value as it is."""
    return "%" in re.sub(r'"[^"]*"|\\.', "", fmt)


@dataclass(frozen=True)
class Uncalculated:
    """A workbook cell holding a formula with no saved result (a file written by a program, never opened and saved
    in Excel): openpyxl cannot calculate it, so it is refused, not read as empty."""

    formula: str

    def __repr__(self) -> str:
        return self.formula


def _uncalculated(p: Path, values: Any, cells: list[list[Any]]) -> None:
    """Mark the formula cells of a sheet (``values``: the openpyxl worksheet read with ``data_only``) as
    :class:`Uncalculated` when none of them has a saved result (a workbook a program wrote and Excel never
    calculated); in a workbook Excel saved, a formula whose result is empty text stays empty. Its limit: all or
    nothing per sheet; when any formula of the sheet has a saved result, one without a result is read as empty."""
    import zipfile

    import openpyxl

    try:
        with zipfile.ZipFile(p) as z:
            if not any(re.search(rb"</f>(?:<v\s*/>|<v></v>)?</c>|<f[^>]*/>(?:<v\s*/>|<v></v>)?</c>", z.read(n))
                       for n in z.namelist() if n.startswith("xl/worksheets/")):
                return  # every formula has its result saved beside it (a workbook Excel saved)
        ws = openpyxl.load_workbook(p, data_only=False, read_only=True)[values.title]
    except Exception:  # unreadable here means readable nowhere: the values already read stand
        return
    formulas = [(r, c, v) for r, row in enumerate(ws.iter_rows(values_only=True)) for c, v in enumerate(row)
                if isinstance(v, str) and v.startswith("=") and r < len(cells) and c < len(cells[r])]
    if formulas and all(values.cell(r + 1, c + 1).value is None for r, c, _ in formulas):
        for r, c, v in formulas:
            cells[r][c] = Uncalculated(v)


def _workbook_grid(src: str, names: list[str], tables: list[str], visible: list[str], sheet: str | int | None,
                   kind: str | None, read_sheet: Callable[[str], _Grid]) -> _Grid:
    """The grid of the sheet to read of a workbook of any format, from its sheet ``names`` (in workbook order),
    those that hold cells (``tables``: not chart sheets) and those shown (``visible``); ``read_sheet(name)`` gives
    a sheet's grid (:func:`_sheet_grid`). ``sheet`` (name, 0-based number, or its digits) picks one; without it the
    first visible sheet whose top rows name the kind's columns is read, and which one is said when the workbook
    has several. Raises :class:`InputError` for a sheet that is not there or is a chart."""
    if sheet is not None:
        if isinstance(sheet, str) and sheet not in names and sheet.strip().isdigit() and int(sheet) < len(names):
            sheet = int(sheet)
        if (isinstance(sheet, int) and not 0 <= sheet < len(names)) or (isinstance(sheet, str) and sheet not in names):
            raise InputError(src, f"the workbook has no sheet {sheet!r}; its sheets are "
                             f"{', '.join(map(repr, names))}", "name one of these sheets (or its 0-based number)")
        chosen = [names[sheet] if isinstance(sheet, int) else sheet]
        if chosen[0] not in tables:
            raise InputError(src, f"sheet {chosen[0]!r} is a chart, not a table", "name the sheet that holds the "
                             f"table (the workbook's sheets are {', '.join(map(repr, names))})")
    else:
        if not tables:
            raise InputError(src, "the workbook has only chart sheets", "export the table behind the chart")
        shown = [n for n in tables if n in visible] or tables
        chosen = shown + [n for n in tables if n not in shown]
    grids: list[tuple[str, _Grid]] = []
    for name in chosen:
        g = read_sheet(name)
        grids.append((name, g))
        if sheet is not None or len(names) == 1 or kind not in SPECS or _find_header(g.rows, kind, src) is not None:
            break
    else:  # no sheet names the kind's columns: read the first (its error says what is missing)
        grids = grids[:1]
    name, g = grids[-1]
    if len(names) > 1 and sheet is None:
        others = [n for n in names if n != name]
        g.notes.insert(0, f"read sheet {name!r} of the workbook (its other sheets, "
                       f"{', '.join(map(repr, others))}, were not read: name another with `ssz twin import "
                       "--sheet` or sheet= in Python, or move it first in the workbook)")
    return g


def _sheet_grid(rows: list[list[Any]], fmt: str) -> _Grid:
    """A sheet's rows of cell values (from any workbook reader; None or NaN for an empty cell) as a grid whose rows
    are numbered as the spreadsheet numbers them (from 1); ``fmt`` is the workbook format (``xlsx``, ``xls``,
    ``ods``)."""
    return _Grid(rows, None, fmt, None, sheet_rows=list(range(1, len(rows) + 1)))


def _carry_merged(g: _Grid, ranges: Sequence[tuple[int, int, int]]) -> None:
    """Merged cells of a sheet read into ``g``: each range ``(first row, first column, last row)`` (0-based) carries
    its top value down its first column, the value as the user sees it (a date merged over the incidents of that
    day is each row's date); ``g.copied_from`` keeps where it came from. Ranges that overlap (a damaged file: each of
    10,000 rows of a 60 KB .ods merged down to the last took 7 s, growing with the square of the rows) stop at the
    first cell already carried: each cell is carried once."""
    cells = g.rows
    for top_row, col, last_row in ranges:
        top = cells[top_row][col] if top_row < len(cells) and col < len(cells[top_row]) else None
        for r in range(top_row + 1, min(last_row, len(cells) - 1) + 1):
            if (r, col) in g.copied_from:
                break
            if col < len(cells[r]):
                cells[r][col] = top
                g.copied_from[r, col] = top_row


def _xlsx_grid(p: Path, sheet: str | int | None, kind: str | None) -> _Grid:
    """The cells of one sheet of an ``.xlsx`` workbook (:func:`_workbook_grid` picks it). Merged cells carry their
    value down the merged rows (a date merged over the incidents of that day is each row's date); hidden rows are
    read and said. A workbook whose parts are over :data:`MAX_UNZIPPED_BYTES` uncompressed together (a zip bomb)
    or whose sheets hold more than :data:`MAX_SHEET_CELLS` cells together (:func:`_xlsx_cells`; openpyxl makes
    some ten times calamine's memory a cell, of every sheet, on opening) is refused before openpyxl reads it, and
    a sheet over :data:`MAX_SHEET_CELLS` (from A1 to its last cell: two cells, A1 and XFD1048576, make 17 billion)
    before its cells are listed."""
    import zipfile

    import openpyxl

    src = p.name
    try:
        with zipfile.ZipFile(p) as z:
            # every part: openpyxl reads a sheet under whatever name the workbook's relations give it (sheet1.png)
            size = sum(i.file_size for i in z.infolist())
            if size > MAX_UNZIPPED_BYTES:  # zipfile reads no more than a part's declared size (then fails its CRC)
                raise InputError(src, f"the workbook is too big to read: its parts are {size:,} bytes uncompressed, "
                                 f"more than {MAX_UNZIPPED_BYTES:,}", TOO_BIG)
            cells = _xlsx_cells(z)
        if cells > MAX_SHEET_CELLS:
            raise InputError(src, f"the workbook's sheets hold {cells:,} cells together, more than "
                             f"{MAX_SHEET_CELLS:,}: too many to read, as every sheet is read on opening the workbook",
                             BOOK_TOO_BIG)
        wb = openpyxl.load_workbook(p, data_only=True)  # not read-only: merged ranges are only known this way
    except (MemoryError, InputError):
        raise
    except Exception as e:  # zip/xml errors of a damaged or mis-named workbook
        raise InputError(src, f"not a readable .xlsx workbook ({type(e).__name__})",
                         "open it in Excel and save it again as .xlsx, or as CSV UTF-8") from None

    def read_sheet(name: str) -> _Grid:
        ws = wb[name]
        _refuse_big_sheet(src, name, ws.max_row, ws.max_column)
        cells = [[_xlsx_cell(c) for c in r] for r in ws.iter_rows()]
        _uncalculated(p, ws, cells)
        g = _sheet_grid(cells, "xlsx")
        _carry_merged(g, [(m.min_row - 1, m.min_col - 1, m.max_row - 1) for m in ws.merged_cells.ranges])
        hidden = [i + 1 for i in range(len(cells)) if ws.row_dimensions[i + 1].hidden and any(
            not is_missing(v) for v in cells[i])]
        if hidden:
            g.notes.append(f"sheet {name!r}: rows {', '.join(map(str, hidden[:SHOWN_ROWS]))}"
                           + (f" and {len(hidden) - SHOWN_ROWS} more" if len(hidden) > SHOWN_ROWS else "")
                           + " are hidden in Excel (a filter?) and were read like the others")
        return g

    names = wb.sheetnames
    tables = [n for n in names if hasattr(wb[n], "iter_rows")]  # chart sheets hold no cells
    visible = [n for n in tables if wb[n].sheet_state == "visible"]
    return _workbook_grid(src, names, tables, visible, sheet, kind, read_sheet)


_XLSX_CELL = re.compile(rb"<(?:[\w.\-]+:)?c[\s/>]")
"""The start of a cell element of an ``.xlsx`` sheet (``<c r="A1">``, ``<c/>``, ``<x:c>``)."""


def _xlsx_cells(z: Any) -> int:
    """How many cell elements the parts of the ``.xlsx`` zip ``z`` (a :class:`zipfile.ZipFile`) hold, counted in
    1 MB pieces: openpyxl makes an object of each, of every sheet, on opening (380 MB and 8 s a million; an empty
    ``<c/>`` is 4 bytes of XML). Elements named ``c`` elsewhere are counted too (never fewer)."""
    n = 0
    for info in z.infolist():
        with z.open(info) as f:
            tail = b""
            while chunk := f.read(1 << 20):
                buf = tail + chunk
                cut = max(buf.rfind(b"<"), len(buf) - 256)  # a tag cut by the piece's end is counted in the next
                n += len(_XLSX_CELL.findall(buf, 0, cut))
                tail = buf[cut:]
            n += len(_XLSX_CELL.findall(tail))
    return n


WORKBOOK_FORMATS = ("xlsx", "xls", "ods")
"""The ``RawTable.encoding`` of a workbook (its format); a text file's is its text encoding."""
MAX_SHEET_CELLS = 2_000_000
"""The most cells (rows x columns, to the last filled cell) read of one workbook sheet: 50,000 incidents of 40
columns; a bigger sheet is refused before its cells become Python values."""
MAX_BOOK_CELLS = 3 * MAX_SHEET_CELLS
"""The most cells an ``.xls`` or ``.ods`` may hold in all its sheets together (calamine builds every sheet on
opening it, the one asked for or not: 6 million cells of an .ods are 200 MB of numbers, 670 MB of short Thai texts,
before a sheet is read): counted before calamine opens it, from an ``.ods``'s ``content.xml``
(:func:`twin.odslayout.ods_layout`) or an ``.xls``'s records (:func:`twin.xlslayout.xls_layout`)."""
MAX_BOOK_TEXT = 200_000_000
"""The most characters of text the cells of an ``.xls``/``.ods`` may hold in all its sheets once calamine has
copied each repeated or shared text into every cell showing it (a 1 MB text in a row repeated 1,000 times over 3
columns is 3 billion: 8.9 GB from a 2 KB .ods): 6 million cells of 30 characters; counted before calamine opens
the workbook (:attr:`twin.odslayout.OdsLayout.text`, :attr:`twin.xlslayout.XlsSheet.text`)."""
MAX_UNZIPPED_BYTES = 300_000_000
"""The most bytes, uncompressed, of a workbook's sheet XML (``.ods`` ``content.xml``; all the parts of an
``.xlsx`` together): a 60,000-row table is some 30-60 MB; a zip bomb is refused before it is inflated."""
_CALAMINE_BOOKS = {"xls": "Excel 97-2003 (.xls)", "ods": "OpenDocument (.ods)"}
"""Workbook formats read by python-calamine: format -> what it is."""
_ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"  # stored first in an .ods zip, uncompressed
TOO_BIG = ("export the sheet as CSV UTF-8 (File > Save As) and read that, or delete the empty rows and columns after "
           "the table and save again")
"""What to do about a workbook too big to read (the fix of its :class:`InputError`)."""
BOOK_TOO_BIG = ("export the sheet to read as CSV UTF-8 (File > Save As) and read that, or delete the sheets not "
                "needed and the empty rows and columns after each table, and save again")
"""What to do about an ``.xls``/``.ods`` whose sheets together are too big to open."""


def _calamine_grid(p: Path, raw: bytes, fmt: str, sheet: str | int | None, kind: str | None) -> _Grid:
    """The cells of one sheet of an ``.xls`` or ``.ods`` workbook ``p`` (its bytes ``raw``; ``fmt``, the format
    found from them, may differ from the file name's), read by python-calamine (the reader of pandas' ``calamine``
    engine: dates come as dates, whole numbers as ints), each sheet looked at once. The sheets' names, kinds and
    visibility come first (calamine's ``sheets_metadata``): the sheet is picked as in :func:`_workbook_grid` (the
    rules of ``.xlsx``: hidden sheets after visible ones, chart sheets numbered but not read) and only the sheets
    looked at become Python values. calamine builds every sheet on opening a workbook, so the sheets are measured
    first: an ``.ods``'s ``content.xml`` is scanned (:func:`twin.odslayout.ods_layout`: the cells its repeated rows
    and columns declare are counted and its merged ranges read), an ``.xls``'s records walked
    (:func:`twin.xlslayout.xls_layout`: its cells' extent). Merged cells carry their value down as in ``.xlsx``;
    hidden rows and percentage formats are not given by the reader (a percentage is read as its fraction, 0.35).

    Raises
    ------
    InputError
        Naming the file: a damaged, encrypted or mis-named workbook; a sheet read of more than
        :data:`MAX_SHEET_CELLS` cells; sheets, read or not, holding more than :data:`MAX_BOOK_CELLS` together (the
        biggest named when it alone is over :data:`MAX_SHEET_CELLS`); an ``.ods`` whose ``content.xml`` is over
        :data:`MAX_UNZIPPED_BYTES`; cells holding more than :data:`MAX_BOOK_TEXT` characters of text in all (each
        copy counted); a sheet that is not there or is a chart.
    MemoryError
        Passed on as it is (it is not a damaged file).
    """
    from python_calamine import CalamineWorkbook, PasswordError, SheetTypeEnum, SheetVisibleEnum

    what, src = _CALAMINE_BOOKS[fmt], p.name
    layout: OdsLayout | None = None
    try:
        if fmt == "ods":
            layout = ods_layout(p, MAX_UNZIPPED_BYTES)
            _refuse_big_book(src, [(n, s.rows, s.columns) for n, s in layout.sheets.items()], layout.text)
        else:
            sheets = xls_layout(raw)
            _refuse_big_book(src, [(s.name, s.rows, s.columns) for s in sheets], sum(s.text for s in sheets))
        # by path when the name says the format (calamine reads by the file ending, and then says why it cannot
        # read a file); from the bytes it tries each format and says only 'Cannot detect file format'
        opened = (CalamineWorkbook.from_path(str(p)) if p.suffix.lower() == f".{fmt}"
                  else CalamineWorkbook.from_filelike(io.BytesIO(raw)))
        meta = opened.sheets_metadata
    except (MemoryError, InputError):
        raise
    except ContentTooBig as e:
        raise InputError(src, f"the workbook is too big to read: its {e}, more than {MAX_UNZIPPED_BYTES:,}",
                         TOO_BIG) from None
    except PasswordError:
        raise InputError(src, "the workbook is protected with a password (encrypted)",
                         "open it with its password, remove the password and save it again as .xlsx, or as CSV "
                         "UTF-8") from None
    except Exception as e:  # calamine's (or the scans') errors of a damaged or mis-named workbook
        raise InputError(src, f"not a readable {what} workbook ({type(e).__name__}: {str(e)[:120]})",
                         "open it in Excel or LibreOffice and save as .xlsx (Excel Workbook) or as CSV UTF-8"
                         ) from None

    def read_sheet(name: str) -> _Grid:
        ws = opened.get_sheet_by_name(name)
        _refuse_big_sheet(src, name, *((ws.total_height + 1, ws.total_width + 1) if ws.height else (0, 0)))
        g = _sheet_grid([[_calamine_cell(v) for v in r] for r in ws.to_python(skip_empty_area=False)], fmt)
        merged = layout.sheets[name].merged if layout is not None and name in layout.sheets else \
            [(a[0], a[1], b[0]) for a, b in ws.merged_cell_ranges or ()]
        _carry_merged(g, merged)
        return g

    names = [m.name for m in meta]
    tables = [m.name for m in meta if m.typ == SheetTypeEnum.WorkSheet]  # not chart, dialog or macro sheets
    visible = [m.name for m in meta if m.visible == SheetVisibleEnum.Visible]
    return _workbook_grid(src, names, tables, visible, sheet, kind, read_sheet)


def _calamine_cell(v: Any) -> Any:
    """A python-calamine cell value as the reader wants it (as pandas' calamine engine gave it): a whole float is
    an int, a date a midnight datetime, empty text None."""
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return dt.datetime(v.year, v.month, v.day)
    return None if v == "" else v


def _refuse_big_sheet(src: str, name: str, rows: int, cols: int) -> None:
    """Raise :class:`InputError` when a sheet of ``rows`` x ``cols`` cells (to its last filled cell) is over
    :data:`MAX_SHEET_CELLS`."""
    if rows * cols > MAX_SHEET_CELLS:
        raise InputError(src, f"sheet {name!r} has {rows:,} rows x {cols:,} columns, more than "
                         f"{MAX_SHEET_CELLS:,} cells", TOO_BIG)


def _refuse_big_book(src: str, sheets: Sequence[tuple[str, int, int]], text: int) -> None:
    """Raise :class:`InputError` when the sheets of an ``.xls``/``.ods`` (name, rows, columns each, to the last
    cell, in workbook order) hold more than :data:`MAX_BOOK_CELLS` cells together (naming its biggest sheet when
    that one is over :data:`MAX_SHEET_CELLS`, else each sheet's cells), or their cells more than
    :data:`MAX_BOOK_TEXT` characters of ``text`` (each copy calamine makes of a repeated or shared text counted)."""
    if text > MAX_BOOK_TEXT:
        raise InputError(src, f"the workbook is too big to read: its cells hold {text:,} characters of text (each "
                         f"copy of a repeated or shared text counted), more than {MAX_BOOK_TEXT:,}", BOOK_TOO_BIG)
    if sum(r * c for _, r, c in sheets) <= MAX_BOOK_CELLS:
        return
    name, rows, cols = max(sheets, key=lambda s: s[1] * s[2])
    why = "every sheet is read on opening the workbook"
    if rows * cols > MAX_SHEET_CELLS:
        raise InputError(src, f"sheet {name!r} has {rows:,} rows x {cols:,} columns, more than {MAX_SHEET_CELLS:,} "
                         f"cells ({why})", BOOK_TOO_BIG)
    cells = ", ".join(f"{n!r}: {r * c:,}" for n, r, c in sheets)
    raise InputError(src, f"the workbook's sheets hold more than {MAX_BOOK_CELLS:,} cells together ({cells}): too "
                     f"many to read, as {why}", BOOK_TOO_BIG)


def _grid(p: Path, sheet: str | int | None, kind: str | None = None) -> _Grid:
    src = p.name
    if not p.exists():
        raise InputError(str(p), "the file does not exist", "check the path (and that the file was copied)")
    if p.is_dir():
        raise InputError(str(p), "this is a folder, not a file", "give the path of the CSV or workbook file in it")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(str(p), f"the file cannot be read ({e.strerror or type(e).__name__})",
                         "check that you may read it and that it is not open (locked) in another program") from None
    suffix = p.suffix.lower()
    notes: list[str] = []
    if raw[:4] == b"PK\x03\x04" and (suffix == ".ods" or _ODS_MIMETYPE in raw[:200]):
        if suffix != ".ods":
            notes.append(f"the file is an OpenDocument workbook named {suffix or 'without an ending'}: read as .ods")
        g = _calamine_grid(p, raw, "ods", sheet, kind)
        g.notes[:0] = notes
        return g
    if raw[:4] == b"PK\x03\x04":
        if suffix not in (".xlsx", ".xlsm"):
            notes.append(f"the file is an Excel workbook named {suffix or 'without an ending'}: read as .xlsx")
        g = _xlsx_grid(p, sheet, kind)
        g.notes[:0] = notes
        return g
    if raw[:4] == _OLE2[:4] and suffix in (".xlsx", ".xlsm") and b"E\x00n\x00c\x00r\x00y\x00p\x00t" in raw:
        raise InputError(src, "the workbook is protected with a password (encrypted)",
                         "open it in Excel with its password, remove the password (File > Info > Protect Workbook) "
                         "and save it again as .xlsx, or as CSV UTF-8")
    if raw[:4] == _OLE2[:4]:
        if suffix != ".xls":
            notes.append(f"the file is an Excel 97-2003 workbook named {suffix or 'without an ending'}: read as .xls")
        g = _calamine_grid(p, raw, "xls", sheet, kind)
        g.notes[:0] = notes
        return g
    if sheet is not None:  # a sheet named for a text table is a mistake, not a default
        raise InputError(src, f"a sheet ({sheet!r}) is named but the file is a text table (CSV), not a workbook",
                         "leave out the sheet (--sheet, --incidents-sheet, --risk-points-sheet, sheet=), or give the "
                         "workbook (.xlsx, .xls, .ods) that has it")
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods") and raw.strip():
        notes.append(f"the file is named {suffix} but is a text table: read as CSV")
    text, enc = decode_bytes(raw, src)
    if not text.strip():
        raise InputError(src, "the file is empty", "export the table again with its header row")
    _not_a_table(text, src)
    sep = re.match(r"sep=(.)\r?\n", text)  # Excel's delimiter hint line
    if sep:
        text = "\n" + text[sep.end():]  # keeps the line numbers
    delim = sep.group(1) if sep else sniff_delimiter(text)
    # universal newlines: a file from an old Mac (CR only) reads like CRLF and LF ones
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delim, skipinitialspace=True)
    rows, lines, lines_read = [], [], 0
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # one long cell (a pasted note) is a cell, not an error
    try:
        for r in reader:  # the line a record starts on (a quoted cell may hold line breaks)
            rows.append(r)
            lines.append(lines_read + 1)
            lines_read = reader.line_num
    except csv.Error as e:
        raise InputError(src, f"the CSV cannot be parsed ({e})", "export the file again from Excel as CSV UTF-8",
                         line=reader.line_num) from None
    finally:
        csv.field_size_limit(limit)
    return _Grid(rows, lines, enc, delim, notes)


def _header_match(cells: Sequence[Any], kind: str, src: str) -> int:
    """How many of the kind's columns a row of cells names (0 when it does not make a header)."""
    try:
        return len(match_columns([normalize_text(str(v)) for v in cells if not is_missing(v)], SPECS[kind], src))
    except TwoColumns:
        return 1  # a header, whose fault validation reports
    except InputError:
        return 0


def _filled(rows: list[list[Any]]) -> list[list[int]]:
    """The indices of the filled (not :func:`is_missing`) cells of each row, worked out once per file."""
    return [[k for k, v in enumerate(r) if not is_missing(v)] for r in rows]


def _find_header(rows: list[list[Any]], kind: str, src: str, filled: list[list[int]] | None = None) -> int | None:
    """Index of the row among the top :data:`HEADER_SEARCH_ROWS` non-blank rows that names the most of the
    kind's columns (the first of equals): a report line 'วันที่, 15/03/2569' above the header names one."""
    seen, best, best_n = 0, None, 0
    for i, r in enumerate(rows):
        if not (filled[i] if filled is not None else any(not is_missing(v) for v in r)):
            continue
        k = _header_match(r, kind, src)
        if k > best_n:
            best, best_n = i, k
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    return best


def _numbered_only(r: Sequence[Any], first: int = 0, filled: list[int] | None = None) -> bool:
    """True for a row of a pre-numbered form that was not filled in: only its cell in the table's first column
    (``first``), a whole number."""
    if filled is None:
        filled = [k for k, v in enumerate(r) if not is_missing(v)]
    if filled != [first]:
        return False
    v = r[first]
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v).is_integer()
    return isinstance(v, str) and re.fullmatch(r"\d{1,6}\.?", normalize_text(v)) is not None


def _total_word(r: Sequence[Any], filled: list[int] | None = None) -> str | None:
    """The totals/average word (:data:`TOTALS_RE`) of a totals row, else None. Any text cell counts, not only the
    first: People Poll tables put the month or the row number first and 'เฉลี่ย' in the community column."""
    if filled is None:
        filled = [k for k, v in enumerate(r) if not is_missing(v)]
    for k in filled:
        v = r[k]
        if isinstance(v, str) and (v.lstrip()[:1].lower() in _TOTAL_FIRST or not v[:1].isprintable()):
            t = normalize_text(v)
            if TOTALS_RE.fullmatch(t):
                return t
    return None


def _is_total_row(r: Sequence[Any], filled: list[int] | None = None) -> bool:
    return _total_word(r, filled) is not None


def _data_column(spec: InputSpec, header: Any) -> bool:
    """True when ``header`` names one of the kind's columns other than an id: a whole number alone in it is data
    (an hour), not the row number of an unfilled form."""
    if is_missing(header):
        return False
    key = header_key(str(header))
    return any(key in {header_key(c.name), *map(header_key, c.aliases)} and not is_id(c) for c in spec.columns)


def load_raw(path: str | Path, kind: str | None = None, *, sheet: str | int | None = None) -> RawTable:
    """A CSV/TSV/TXT or workbook (``.xlsx``, ``.xls``, ``.ods``) file as raw cells under its header row.

    The header is the first row, or, when ``kind`` is given and the first rows are a report title or notes,
    the one of the top :data:`HEADER_SEARCH_ROWS` rows whose cells name the most of the kind's columns; a header
    on two rows (a merged group cell such as "พิกัด" over "ลองจิจูด" and "ละติจูด") is read as one, and a units row
    under it ("(องศา)") is taken as the columns' units. Blank rows are skipped; with ``kind``, totals, subtotal and
    average rows (a text cell in any column matching :data:`TOTALS_RE`) and unfilled rows of a numbered form are
    left out; each is said in ``notes``.
    Repeated headers get " (2)"; an empty column without a header is dropped. Refuses unreadable files, and rows
    with more cells than the header, with an :class:`InputError`.
    """
    p = Path(path)
    g = _grid(p, sheet, kind)
    rows, lines = g.rows, g.lines
    where = g.sheet_rows or lines
    line_word = "Excel row" if g.sheet_rows else "line"
    filled = _filled(rows)
    keep = [i for i, f in enumerate(filled) if f]
    if not keep:
        raise InputError(p.name, "the file has no rows" + (f" ({g.notes[0]})" if g.sheet_rows and g.notes else ""),
                         "export the table again with its header row")
    h = keep[0]
    header_cells = list(rows[h])
    no_header: str | None = None  # the kind whose columns no top row names (validation says what is missing)
    if kind is not None and kind in SPECS:
        found = _find_header(rows, kind, p.name, filled)
        if found is None:
            no_header = kind
        if found is not None:
            if found != h:
                g.notes.append(f"the header is on {'line' if lines else 'row'} {where[found]}: the row(s) above "
                               "it (a title or notes) were skipped")
            h = found
            header_cells = list(rows[h])
            for (r, c), src in g.copied_from.items():  # a header cell merged down over a units row stays one cell
                if src == h:
                    rows[r][c] = None
                    filled[r] = [k for k in filled[r] if k != c]
            keep = [i for i in keep if filled[i]]
            nxt = next((i for i in keep if i > h), None)
            if nxt is not None:  # a header on two rows: the lower cell names its column where it has one
                two = [b if not is_missing(b) else a for a, b in zip_longest(rows[h], rows[nxt])]
                units = [normalize_text(str(v)) for v in rows[nxt] if not is_missing(v)]
                if units and all(re.fullmatch(r"\(.*\)|\[.*\]", u, re.S) for u in units):
                    g.notes.append(f"the row under the header ({line_word} {where[nxt]}: "
                                   f"{', '.join(units[:4])}) gives units: not read as data")
                    h, header_cells = nxt, [a if is_missing(b) else b if is_missing(a) else f"{a} {b}"
                                            for a, b in zip_longest(rows[h], rows[nxt])]
                elif _header_match(two, kind, p.name) > _header_match(rows[h], kind, p.name):
                    g.notes.append(f"the header is on two rows ({line_word}s {where[h]} and {where[nxt]}): "
                                   "read as one")
                    h, header_cells = nxt, two
    width = len(header_cells)
    while width and is_missing(header_cells[width - 1]):
        width -= 1
    header = unique_headers([normalize_text(str(v)) if not is_missing(v) else f"column {k + 1}"
                      for k, v in enumerate(header_cells[:width])])
    body_idx = [i for i in keep if i > h]
    totals = [i for i in body_idx if _is_total_row(rows[i], filled[i])] if kind is not None else []
    first = next((k for k, v in enumerate(header_cells) if not is_missing(v)), 0)
    numbered = [i for i in body_idx if _numbered_only(rows[i], first, filled[i])] \
        if kind in SPECS and not _data_column(SPECS[kind], header_cells[first]) else []
    if totals:
        k = len(totals)
        g.notes.append(f"the totals row{'s' if k > 1 else ''} ({line_word}{'s' if k > 1 else ''} "
                       f"{', '.join(str(where[i]) for i in totals[:SHOWN_ROWS])}{' …' if k > SHOWN_ROWS else ''}: "
                       f"{_total_word(rows[totals[0]], filled[totals[0]])!r}) "
                       f"{'were' if k > 1 else 'was'} left out")
    if numbered:
        g.notes.append(f"{len(numbered)} row(s) hold only a row number in the first column (an unfilled form, "
                       f"{line_word}s {where[numbered[0]]}–{where[numbered[-1]]}): left out")
    left_out = set(totals) | set(numbered)
    body_idx = [i for i in body_idx if i not in left_out]
    body, body_where = [], []
    for i in body_idx:
        r = list(rows[i])
        extra = [k for k in filled[i] if k >= width]
        if extra and no_header is not None:  # say what is missing, not that a row below is longer than row 1
            try:
                match_columns([normalize_text(str(v)) for v in rows[h] if not is_missing(v)], SPECS[no_header],
                              p.name)
            except InputError as e:
                raise InputError(p.name, f"{e.problem} (no row among the first {HEADER_SEARCH_ROWS} names the "
                                 f"{SPECS[no_header].noun} columns)", e.fix, column=e.column) from None
        if extra:
            raise InputError(p.name, f"this row has {max(k for k, v in enumerate(r) if not is_missing(v)) + 1} cells "
                             f"but the header has {width}",
                             "give every column a header, or check for a delimiter inside an unquoted cell (quote "
                             "such cells or export the file again)" if lines else "give every column a header",
                             row=len(body) + 1, line=where[i], line_word=line_word)
        body.append(r[:width] + [None] * (width - len(r)))
        body_where.append(where[i])
    frame = pd.DataFrame(body, columns=header, dtype=object) if body else pd.DataFrame(columns=header)
    blank = [c for k, c in enumerate(header) if is_missing(header_cells[k]) and all(is_missing(r[k]) for r in body)]
    frame = frame.drop(columns=blank)  # an empty column without a header (the table starts at column B)
    return RawTable(frame, body_where if lines else None, where[h], g.encoding, g.delimiter,
                    body_where if g.sheet_rows else None, g.notes)
