"""What an OpenDocument spreadsheet (``.ods``) declares in its ``content.xml``, read as a stream before calamine
parses the workbook whole (:func:`ods_layout`): each sheet's extent in cells once its repeated rows and columns are
counted (``table:number-rows-repeated`` / ``number-columns-repeated``: a few KB of XML can declare 10^9 cells,
gigabytes once read) and its merged ranges (``table:number-rows-spanned``; calamine gives none for ``.ods``).

The counting follows calamine's reader: a cell holds something when it has an ``office:`` value or value type,
or a formula (:data:`_FILLED`); trailing empty cells of a row and trailing empty rows of a sheet are not cells it
makes, while empty rows and cells before a filled one are.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

CHUNK_BYTES = 1 << 20  # content.xml is fed to the parser this many (uncompressed) bytes at a time
_FILLED = frozenset(("office:value", "office:string-value", "office:date-value", "office:time-value",
                     "office:boolean-value", "office:value-type", "table:formula"))
"""The cell attributes that make calamine read a value (a value type alone is counted too: it never undercounts)."""
_TEXT_ATTRS = frozenset(("office:string-value", "office:date-value", "office:time-value", "table:formula"))
"""The cell attributes calamine keeps as text (a date or time as its ISO text; a formula beside the value)."""
_TABLE_PARTS = frozenset(("table:table", "table:table-row", "table:table-cell", "table:covered-table-cell"))
"""The elements calamine reads a sheet from wherever they are: one nested where an .ods never has it (a row in a
cell, a table in a table) is refused, as calamine's reading of it (a string cell ends at the first cell end in it)
and the scan's would part."""


@dataclass
class OdsSheet:
    """A sheet of an ``.ods`` as its ``content.xml`` declares it."""

    rows: int = 0  # rows from the first to the last one holding a value (repeats counted), as read from row 1
    columns: int = 0  # columns to the last cell holding a value, in the widest row, as read from column A
    merged: list[tuple[int, int, int]] = field(default_factory=list)  # (first row, column, last row), 0-based

    @property
    def cells(self) -> int:
        return self.rows * self.columns


@dataclass
class OdsLayout:
    """The sheets of an ``.ods`` by name (workbook order), and the characters of text (and value and formula
    attributes) its cells declare in all, each cell's counted once per copy calamine makes of it (repeated columns
    and rows: a 1 MB text in a row repeated 1,000 times over 3 columns is 3 billion)."""

    sheets: dict[str, OdsSheet]
    text: int = 0

    @property
    def cells(self) -> int:
        return sum(s.cells for s in self.sheets.values())


class ContentTooBig(ValueError):
    """``content.xml`` is bigger, uncompressed, than the limit given (a zip bomb, or a workbook too big to read)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"content.xml is {size:,} bytes uncompressed")
        self.size = size


def _count(attrs: dict[str, str], key: str) -> int:
    """A repeat or span count attribute (1 when absent); ValueError when it is not a whole number of at least 1."""
    n = int(attrs.get(key, 1))
    if n < 1:
        raise ValueError(f"{key}={n}")
    return n


def ods_layout(path: Path, max_bytes: int) -> OdsLayout:
    """The sheets an ``.ods`` file at ``path`` declares, scanned from its ``content.xml`` in
    :data:`CHUNK_BYTES` pieces with memory that does not grow with the cells declared (only with the merged ranges
    written), in time that grows with ``content.xml``'s size (some 1 s for 60,000 rows).

    Raises
    ------
    ContentTooBig
        ``content.xml`` is declared bigger than ``max_bytes`` uncompressed.
    zipfile.BadZipFile, KeyError, OSError, ValueError, expat.ExpatError
        A damaged file: not a zip, no ``content.xml``, a CRC error, malformed XML, a repeat count that is not a
        number, two ``content.xml``, two sheets of one name, a DTD (an .ods has none; refused rather than
        expanded), or a table, row or cell nested where an .ods never has one (in a cell; a row in a row; a table in
        a table).
    """
    sheets: dict[str, OdsSheet] = {}
    cur: OdsSheet | None = None
    row = col = row_repeat = row_end = 0  # the row being read: its first row, next column, repeats, filled end
    in_cell, in_row = 0, False  # elements open in the cell being read (the cell's own included); a row is open
    cell_text = cell_repeat = row_text = 0  # characters of the cell being read, its copies; of the row's cells
    layout = OdsLayout(sheets)

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal cur, row, col, row_repeat, row_end, in_cell, in_row, cell_text, cell_repeat
        if in_cell:  # calamine skips a cell's content (its text aside): a table part there would be read apart
            if name in _TABLE_PARTS:
                raise ValueError(f"content.xml has a {name} inside a table cell")
            in_cell += 1
            if name == "text:s":  # spaces, text:c of them
                cell_text += _count(attrs, "text:c")
            elif name == "text:p":  # a line break between paragraphs
                cell_text += 1
        elif name in ("table:table-cell", "table:covered-table-cell"):
            if cur is None:
                return
            if "table:number-rows-spanned" in attrs:
                spanned = _count(attrs, "table:number-rows-spanned")
                if spanned > 1:
                    cur.merged.append((row, col, row + spanned - 1))
            cell_repeat = _count(attrs, "table:number-columns-repeated")
            col += cell_repeat
            if not _FILLED.isdisjoint(attrs):
                row_end = col
            in_cell, cell_text = 1, sum(len(v) for k, v in attrs.items() if k in _TEXT_ATTRS)
        elif name == "table:table-row" and cur is not None:
            if in_row:
                raise ValueError("content.xml has a table:table-row inside another")
            row_repeat, col, row_end, in_row = _count(attrs, "table:number-rows-repeated"), 0, 0, True
        elif name == "table:table":
            if cur is not None:
                raise ValueError("content.xml has a table:table inside another")
            sheet = attrs.get("table:name")
            if sheet in sheets:  # calamine parses both (the second one kept): the scan would count one
                raise ValueError(f"content.xml names two sheets {sheet!r}")
            cur, row = OdsSheet(), 0
            if sheet is not None:  # calamine reads no table without a name
                sheets[sheet] = cur

    def end(name: str) -> None:
        nonlocal cur, row, in_cell, in_row, row_text
        if in_cell:
            in_cell -= 1
            if not in_cell:  # the cell's end: calamine copies its value once per repeated column
                row_text += cell_text * cell_repeat
            return
        if cur is None:
            return
        if name == "table:table-row":
            in_row = False
            if row_end:
                cur.rows, cur.columns = row + row_repeat, max(cur.columns, row_end)
            row += row_repeat
            layout.text += row_text * row_repeat  # and the row's once per repeated row
            row_text = 0
        elif name == "table:table":
            cur = None

    def text(data: str) -> None:
        nonlocal cell_text
        if in_cell:  # calamine gathers a string cell's text at any depth (a comment's too)
            cell_text += len(data)

    def no_dtd(*_: object) -> None:
        raise ValueError("content.xml declares a DTD")

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.buffer_text = True  # a text in one call, not one per line or entity
    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_dtd
    with zipfile.ZipFile(path) as z:
        if z.namelist().count("content.xml") > 1:  # one is scanned, the other might be parsed
            raise ValueError("the zip holds content.xml twice")
        info = z.getinfo("content.xml")
        if info.file_size > max_bytes:
            raise ContentTooBig(info.file_size)
        with z.open(info) as f:  # zipfile inflates no more than the declared size (then checks the CRC)
            while chunk := f.read(CHUNK_BYTES):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    return layout
