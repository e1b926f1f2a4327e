"""The one validating reader for tabular field input: incidents, risk points, surveys, GPS pings, QR scans.

Every spreadsheet or device batch an analyst, officer or device hands in goes through :func:`read_table` (a
file: CSV or ``.xlsx``) or :func:`validate_frame` (rows already in memory, e.g. a JSON batch posted to the API).
Both return a :class:`ReadResult`: the rows as a typed frame with canonical column names, plus warnings and
counts; anything that cannot be read is an :class:`InputError` naming the file, row, column, what is wrong and
what to do. Nothing is silently defaulted or dropped: every row left out is counted and said in a warning.

What it reads (checked on the inputs Thai users really send):

- **Encodings**: UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text", tab separated), Thai
  Windows/TIS-620 (``cp874``, what Thai Excel writes as "CSV"; also when its only Thai is a letter, 'ร.1'),
  detected with ``charset-normalizer``; a file mixing UTF-8 and another encoding is refused with the line; the
  delimiter (``, ; tab |``, or Excel's ``sep=;`` line) is sniffed with :class:`csv.Sniffer`; LF, CRLF or CR
  lines, quoted line breaks and long cells. HTML or JSON saved as a table, folders, ``.xls`` (97-2003), ``.ods``
  and password-protected workbooks are refused with what to do; a text table named ``.xlsx`` is read as CSV.
- **Workbooks** (``.xlsx`` through ``openpyxl``): ``sheet=`` (name or number), else the first sheet whose header
  names the kind's columns (said when there are several); merged cells give their value to every merged row;
  cells shown as percentages are percentages; formulas Excel never calculated are refused; errors give the Excel
  row. **Report layouts**: title rows above the header, a header on two rows (a merged group cell), blank rows,
  totals/subtotal rows ('รวม', 'รวมทั้งสิ้น 12 เหตุ', 'Total'), rows of a numbered form left unfilled and an empty
  column A are skipped and said; Excel error values (``#N/A``) are refused as such; 'N/A'/'ไม่ระบุ' in a number,
  date or position cell is empty.
- **Headers**: each input kind declares its columns (:data:`SPECS`) with Thai and English aliases; headers are
  matched ignoring case, spaces, ``_``/``-`` and units in brackets, e.g. ``ละติจูด``, ``Latitude``, ``lat``; a
  speed's unit in brackets is read (``ความเร็ว (กม/ชม)`` is km/h); repeated headers of other columns are kept.
- **Dates and times**: ISO-8601, day-first ``15/03/2569 07:30`` (``/ - .`` separators), Buddhist Era years
  (2443-2743 is BE: 2569 -> 2026), Thai digits (``๐-๙``), Thai month names and abbreviations
  (``15 มี.ค. 2569``, ``วันที่ 15 มีนาคม พ.ศ. 2569 เวลา 07.30 น.``), AM/PM, separate date and time columns (for
  scans and pings too), Excel date cells (a BE year typed into a Gregorian Excel included), Excel serial numbers
  and day fractions, tracker Unix times; a time without a zone is Asia/Bangkok (UTC+7), an explicit offset is
  kept; everything is returned as UTC (the twin's convention). A month-first file (a value like ``03/15/2026``)
  is detected per column and read month-first with a warning; a two-digit year (``15 มี.ค. 69``) is BE with a
  Thai month name or ``พ.ศ.``, CE with ``ค.ศ.``, else 00-40 are 2000-2040 CE and 41-99 BE (a fixed pivot,
  :data:`TWO_DIGIT_CE_MAX`), with a warning. A row with no date or time at all is refused.
- **Coordinates**: ``lon``/``lat`` columns, or one ``lat, lon`` column (what Google Maps copies, or a Google
  Maps link), decimal (a comma is a decimal comma) or degrees-minutes-seconds (``7°00'44.3"N``), or metric
  ``x``/``y`` with ``epsg=`` (else the UTM zone of ``area``); X/Y columns in degrees, lon/lat columns in metres and
  a swapped easting/northing are recognised and said. Null island (0, 0: a tracker with no fix) is refused row by
  row; lon/lat swapped (a latitude beyond ±90, or a point that lands in the area only when swapped) is fixed with
  a warning or refused (``swapped="refuse"``); points outside ``area`` are counted and reported ("12 of 40
  incidents are outside the Hat Yai zone", with their rows), kept with ``in_area=False`` or dropped or refused
  (``outside=``); if *no* point is in the area the file is refused (wrong city?).
- **GPS pings**: per unit, in time order, a ping that would need a speed above ``max_speed_mps`` from the
  unit's last good ping is flagged ``jump=True`` (distances on the WGS84 ellipsoid, ``pyproj.Geod``); use
  :func:`trip_pings` to keep them out of trips.

Errors say where: ``incidents.csv: row 7 (line 8), column 'datetime' ("วันเวลา"): "31/02/2569" is not a
date. What to do: ...``. ``InputError.exit_code`` is 2 for command-line tools.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import io
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin.layers import Rejection
from twin.schemas import MAX_ACCURACY_M, MAX_ID_CHARS

LOCAL_TZ = "Asia/Bangkok"
BE_OFFSET = 543
NULL_ISLAND_DEG = 1e-6
DEFAULT_MAX_SPEED_MPS = 55.0  # ~200 km/h: faster than any patrol car or motorcycle in a city
SHOWN_ROWS = 5

ColumnType = Literal["text", "float", "int", "percent", "datetime", "date", "time", "month", "lon", "lat",
                     "latlon", "x", "y", "hour", "bool"]


# --------------------------------------------------------------------------------------------- errors
class InputError(ValueError):
    """Field input that cannot be read; the message names the file, row, column, the fault and what to do.

    Attributes
    ----------
    source : str
        The file name (or what the rows came from, e.g. ``POST /v1/field/gps``).
    row : int or None
        1-based data row (the header is not counted); ``None`` when the fault is the whole file or a column.
    column : str or None
        The canonical column name (the header as written in the file is in the message).
    problem, fix : str
        What is wrong, and what to do about it.
    """

    exit_code = 2

    def __init__(self, source: str, problem: str, fix: str, *, row: int | None = None, column: str | None = None,
                 header: str | None = None, line: int | None = None, line_word: str = "line"):
        self.source, self.problem, self.fix, self.row, self.column = source, problem, fix, row, column
        where = source
        if row is not None:
            where += f": row {row}" + (f" ({line_word} {line})" if line is not None else "")
        elif line is not None:
            where += f": {line_word} {line}"
        if column is not None:
            sep = ", " if row is not None else ": "
            where += f"{sep}column {column!r}" + (f' ("{header}")' if header and header != column else "")
        super().__init__(f"{where}: {problem}. What to do: {fix}")


# --------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Column:
    """One declared input column: canonical name, type, whether required, and accepted header aliases."""

    name: str
    type: ColumnType
    required: bool = True
    aliases: tuple[str, ...] = ()
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    values: Mapping[str, str] | None = None  # accepted spellings (normalised) -> canonical value


@dataclass(frozen=True)
class InputSpec:
    """The declared columns of one kind of field input.

    ``any_of`` lists groups of which at least one column must be present (e.g. a time, or an hour of day);
    ``points`` says the rows are positions (coordinate checks apply); ``noun`` is used in messages.
    """

    kind: str
    noun: str
    columns: tuple[Column, ...]
    any_of: tuple[tuple[str, ...], ...] = ()
    points: Literal["required", "optional", "none"] = "required"

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical names of the declared columns."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The declared column of that canonical name."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


_LON = Column("lon", "lon", False, ("longitude", "lng", "long", "ลองจิจูด", "ลองติจูด", "พิกัดx", "x_wgs84"),
              "WGS84 longitude (degrees east)")
_LAT = Column("lat", "lat", False, ("latitude", "ละติจูด", "พิกัดy", "y_wgs84"), "WGS84 latitude (degrees north)")
_LATLON = Column("latlon", "latlon", False, ("coordinates", "coords", "location", "พิกัด", "ตำแหน่ง", "latlng"),
                 '"lat, lon" in one cell (as Google Maps copies it)')
_X = Column("x", "x", False, ("easting", "utm_x"), "projected easting in metres (give epsg=)")
_Y = Column("y", "y", False, ("northing", "utm_y"), "projected northing in metres (give epsg=)")
_TS = Column("ts", "datetime", False, ("datetime", "timestamp", "time_stamp", "date_time", "วันเวลา", "วันที่เวลา",
                                       "วันและเวลา", "เวลาเกิดเหตุ", "วันเวลาเกิดเหตุ", "fixtime", "devicetime",
                                       "occurred", "occurred_at"),
             "date and time; Asia/Bangkok when no zone is written")
_DATE = Column("date", "date", False, ("วันที่", "วันเกิดเหตุ", "day"),
               "calendar date (day first, BE or CE; a time after it keeps the local date)")
_TIME = Column("time", "time", False, ("เวลา", "clock"), "time of day HH:MM[:SS]")
_ACCURACY_DOC = (f"the fix's accuracy, m (the 68 % radius a phone reports); at most {MAX_ACCURACY_M:,.0f}: a coarser "
                 "value is a tracker's placeholder, not a position")
_UNIT = Column("unit_id", "text", True, ("unit", "patrol", "patrol_id", "device", "device_id", "deviceid", "id",
                                         "หน่วย", "สายตรวจ", "รหัสหน่วย", "ทะเบียนรถ"), "patrol unit or device id")

RISK_KIND_VALUES = {"lighting": "lighting", "light": "lighting", "dark": "lighting", "ไฟฟ้า": "lighting",
                    "แสงสว่าง": "lighting", "ไฟส่องสว่าง": "lighting", "จุดมืด": "lighting", "ไฟดับ": "lighting",
                    "ไฟฟ้าดับ": "lighting", "ไฟไม่ติด": "lighting", "หลอดไฟเสีย": "lighting", "ไฟเสีย": "lighting",
                    "มืด": "lighting", "แสงสว่างไม่เพียงพอ": "lighting", "ไฟทาง": "lighting", "ไฟถนน": "lighting",
                    "vegetation": "vegetation", "tree": "vegetation", "trees": "vegetation", "ต้นไม้": "vegetation",
                    "กิ่งไม้": "vegetation", "หญ้ารก": "vegetation", "รก": "vegetation", "ต้นไม้บัง": "vegetation",
                    "พุ่มไม้": "vegetation", "ตัดแต่งกิ่งไม้": "vegetation", "วัชพืช": "vegetation",
                    "หญ้า": "vegetation", "รกทึบ": "vegetation",
                    "abandoned": "abandoned", "บ้านร้าง": "abandoned", "อาคารร้าง": "abandoned", "ร้าง": "abandoned",
                    "ที่รกร้าง": "abandoned", "พื้นที่รกร้าง": "abandoned", "บ้านร้างไม่มีคนอยู่": "abandoned",
                    "other": "other", "อื่นๆ": "other", "อื่น": "other"}
RISK_STATUS_VALUES = {"reported": "reported", "แจ้งแล้ว": "reported", "รอดำเนินการ": "reported",
                      "ยังไม่ดำเนินการ": "reported", "รอซ่อม": "reported", "รอแก้ไข": "reported", "ใหม่": "reported",
                      "open": "reported", "new": "reported",
                      "scheduled": "scheduled", "นัดหมาย": "scheduled", "กำลังดำเนินการ": "scheduled",
                      "อยู่ระหว่างดำเนินการ": "scheduled", "ระหว่างดำเนินการ": "scheduled", "in progress": "scheduled",
                      "fixed": "fixed", "done": "fixed", "แก้ไขแล้ว": "fixed", "เสร็จแล้ว": "fixed",
                      "เสร็จสิ้น": "fixed", "ดำเนินการแล้ว": "fixed", "ซ่อมแล้ว": "fixed", "closed": "fixed",
                      "ดำเนินการเสร็จสิ้น": "fixed", "แก้ไขเรียบร้อย": "fixed", "เรียบร้อย": "fixed"}

SPECS: dict[str, InputSpec] = {
    "incidents": InputSpec("incidents", "incidents", (
        Column("incident_id", "text", False, ("id", "case_id", "เลขที่", "เลขคดี", "เลขรับแจ้ง", "รหัส")),
        Column("kind", "text", False, ("category", "type", "offence", "offense", "crime_type", "ประเภท",
                                       "ประเภทเหตุ", "ข้อหา", "ฐานความผิด")),
        _TS, _DATE, _TIME,
        Column("hour", "hour", False, ("ชั่วโมง", "hour_of_day"), "hour of day 0-23 (when no time is given)",
               lo=0, hi=23),
        Column("zone", "text", False, ("community", "beat", "area", "zone_id", "ชุมชน", "เขต", "พื้นที่")),
        _LON, _LAT, _LATLON, _X, _Y,
    ), any_of=(("ts", "date", "hour"),)),
    "risk_points": InputSpec("risk_points", "risk points", (
        Column("risk_id", "text", False, ("id", "point_id", "รหัส", "รหัสจุด", "ลำดับ")),
        Column("kind", "text", True, ("type", "category", "risk", "ประเภท", "ประเภทความเสี่ยง", "ปัญหา"),
               "lighting, vegetation, abandoned or other (Thai accepted)", values=RISK_KIND_VALUES),
        Column("status", "text", False, ("สถานะ", "state"), "reported, scheduled or fixed",
               values=RISK_STATUS_VALUES),
        Column("description", "text", False, ("detail", "details", "รายละเอียด", "หมายเหตุ", "note")),
        Column("reported_date", "date", False, ("date", "reported", "วันที่แจ้ง", "วันที่")),
        Column("scheduled_date", "date", False, ("scheduled", "วันที่นัด", "วันนัดซ่อม", "กำหนดแก้ไข")),
        Column("fixed_date", "date", False, ("fixed", "วันที่แก้ไข", "วันที่แก้ไขเสร็จ", "วันที่ซ่อมเสร็จ")),
        Column("agency", "text", False, ("หน่วยงาน", "ผู้รับผิดชอบ", "owner")),
        _LON, _LAT, _LATLON, _X, _Y,
    )),
    "survey_results": InputSpec("survey_results", "survey rows", (
        Column("community", "text", True, ("ชุมชน", "หมู่บ้าน", "community_name", "area", "zone")),
        Column("month", "month", True, ("เดือน", "survey_month", "period", "เดือนที่สำรวจ", "date", "วันที่"),
               "survey month, e.g. 2026-03, 03/2569 or มี.ค. 2569"),
        Column("respondents", "int", True, ("n", "sample", "sample_size", "จำนวนผู้ตอบ", "ผู้ตอบ",
                                            "จำนวนผู้ตอบแบบสอบถาม", "จำนวนตัวอย่าง"), lo=1),
        Column("fear_of_crime_pct", "percent", True, ("fear", "fear_of_crime", "fear_pct", "ความหวาดกลัว",
                                                      "ความหวาดกลัวอาชญากรรม", "ความกลัวอาชญากรรม"),
               "share afraid of crime, % (programme target: below 40)", lo=0, hi=100),
        Column("confidence_in_police_pct", "percent", True, ("confidence", "confidence_pct", "trust",
                                                             "ความเชื่อมั่น", "ความเชื่อมั่นต่อตำรวจ",
                                                             "ความเชื่อมั่นในตำรวจ"),
               "share confident in the police, % (programme target: above 80)", lo=0, hi=100),
        Column("city", "text", False, ("เมือง", "สถานี", "สภ")),
    ), points="none"),
    "gps_pings": InputSpec("gps_pings", "GPS pings", (
        _UNIT,
        Column("ts", "datetime", True, (*_TS.aliases, "time", "เวลา", "fix_time"), _TS.doc),
        _DATE,
        Column("speed_mps", "float", False, ("speed", "ความเร็ว"), "metres per second", lo=0, hi=100),
        Column("speed_kmh", "float", False, ("speed_kph", "กม/ชม", "ความเร็วกม/ชม", "ความเร็ว กม./ชม."),
               "km/h (converted to m/s)", lo=0, hi=360),
        Column("heading_deg", "float", False, ("heading", "bearing", "course", "ทิศทาง"), lo=0, hi=360),
        Column("accuracy_m", "float", False, ("accuracy", "hdop_m", "ความแม่นยำ"), _ACCURACY_DOC, lo=0,
               hi=MAX_ACCURACY_M),
        _LON, _LAT, _LATLON,
    )),
    "qr_scans": InputSpec("qr_scans", "QR scans", (
        Column("checkpoint_id", "text", True, ("checkpoint", "box", "box_id", "qr", "qr_id", "จุดตรวจ",
                                               "รหัสจุดตรวจ", "ตู้แดง", "ตู้เขียว")),
        Column("unit_id", "text", True, (*_UNIT.aliases[:-1], "ผู้ตรวจ")),
        Column("officer_id", "text", False, ("officer", "เจ้าหน้าที่", "ชื่อผู้ตรวจ", "ยศชื่อ")),
        Column("ts", "datetime", True, (*_TS.aliases, "time", "เวลา", "scan_time", "เวลาสแกน"), _TS.doc),
        _DATE,
        _LON, _LAT, _LATLON,
    ), points="optional"),
    # SOS presses and citizen reports as the field-ingest API receives them (one row per press or report); an
    # SOS pole press names its pole and may carry no position (the pole's is known).
    "field_reports": InputSpec("field_reports", "field reports", (
        Column("ts", "datetime", True, (*_TS.aliases, "time", "เวลา"), _TS.doc),
        _DATE,
        Column("pole_id", "text", False, ("pole", "sos_pole", "เสา", "เสาsos"), "SOS pole (place id)"),
        Column("reporter_id", "text", False, ("reporter", "user", "user_id", "ผู้แจ้ง"), "pseudonymous user id"),
        Column("category", "text", False, ("type", "ประเภท"), "emergency, crime, suspicious, accident, risk_point, "
               "nuisance or other"),
        Column("text", "text", False, ("message", "detail", "ข้อความ", "รายละเอียด")),
        Column("accuracy_m", "float", False, ("accuracy", "ความแม่นยำ"), _ACCURACY_DOC, lo=0, hi=MAX_ACCURACY_M),
        _LON, _LAT, _LATLON,
    ), points="optional"),
}


# --------------------------------------------------------------------------------------------- area
@dataclass(frozen=True)
class Area:
    """Where the points are expected: a WGS84 polygon (the zone, or the city) and its name for messages."""

    polygon: Any  # shapely Polygon / MultiPolygon in WGS84 lon/lat
    name: str

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Boolean mask of the points inside (or on the edge of) the polygon."""
        import shapely

        return np.asarray(shapely.intersects_xy(self.polygon, np.asarray(lon, float), np.asarray(lat, float)))


# --------------------------------------------------------------------------------------------- result
@dataclass
class ReadResult:
    """Rows that were read, typed, with canonical column names, plus what the reader noticed.

    ``frame`` columns follow the spec (``ts`` is tz-aware UTC; ``month`` the first day of the month, a
    ``datetime.date``; positions ``lon``/``lat``); point kinds add ``in_area`` when an area was given and
    ``gps_pings`` add ``jump``. Columns the spec does not know are kept as text, unchanged. ``row`` is each
    row's 1-based data row in the input, for messages.
    """

    kind: str
    source: str
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)  # rows left out: layer=kind, row (1-based), field
    encoding: str | None = None
    delimiter: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> header as written

    def summary(self) -> str:
        """One paragraph for a person: what was read, from where, and every warning."""
        head = (f"{self.source}: {len(self.frame)} of {self.counts.get('rows', len(self.frame))} "
                f"{SPECS[self.kind].noun} read" + (f" ({self.encoding}" + (f", delimiter {self.delimiter!r}"
                                                                          if self.delimiter else "") + ")"
                                                    if self.encoding else ""))
        return "\n".join([head, *(f"  warning: {w}" for w in self.warnings)])


# --------------------------------------------------------------------------------------------- text helpers
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_ZW = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)
_ZW_AND_DIGITS = {**_THAI_DIGITS, **_ZW}

THAI_MONTHS: dict[str, int] = {}
for _i, (_full, _abbr) in enumerate([
        ("มกราคม", "ม.ค."), ("กุมภาพันธ์", "ก.พ."), ("มีนาคม", "มี.ค."), ("เมษายน", "เม.ย."), ("พฤษภาคม", "พ.ค."),
        ("มิถุนายน", "มิ.ย."), ("กรกฎาคม", "ก.ค."), ("สิงหาคม", "ส.ค."), ("กันยายน", "ก.ย."), ("ตุลาคม", "ต.ค."),
        ("พฤศจิกายน", "พ.ย."), ("ธันวาคม", "ธ.ค.")], start=1):
    THAI_MONTHS[_full] = THAI_MONTHS[_abbr] = THAI_MONTHS[_abbr.replace(".", "")] = _i
EN_MONTHS = {m.lower(): i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


_THAI_TYPING = (("\u0e4d\u0e32", "\u0e33"), ("\u0e40\u0e40", "\u0e41"))  # ํ+า is ำ, เ+เ is แ (they look the same)


def normalize_text(s: str) -> str:
    """Thai digits to ASCII, zero-width characters and BOMs removed, Unicode NFC, outer spaces stripped, and the
    Thai spellings that look alike but differ in code points made one: nikhahit + sara aa (``จํานวน``, what text
    copied from a PDF holds) is sara am (``จำนวน``), two sara e (``เเจ้ง``) are sara ae (``แจ้ง``)."""
    s = str(s)
    if s.isascii():  # most cells: nothing to normalise but the outer spaces
        return s.strip()
    s = unicodedata.normalize("NFC", s).translate(_ZW_AND_DIGITS).strip()
    for a, b in _THAI_TYPING:
        s = s.replace(a, b)
    return s


def header_key(s: str) -> str:
    """A header reduced for matching: lower case, no spaces/underscores/dashes/dots, no ``(unit)`` suffix."""
    s = normalize_text(s).lower()
    s = re.sub(r"\(.*?\)|\[.*?\]", "", s)
    return re.sub(r"[\s_\-./:%]+", "", s)


def _missing(v: Any) -> bool:
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if not isinstance(v, str):
        return False
    t = v.strip()
    if len(t) > 4 and t.isprintable():  # longer than every empty marker, and nothing normalize_text removes
        return False
    return normalize_text(t) in ("", "-", "–", "nan", "NaN", "null", "NULL", "None")


# --------------------------------------------------------------------------------------------- decoding
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
        if len(_THAI.findall(head)) >= 2:  # Thai in UTF-8, then bytes that are not: rows pasted from another export
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


_THAI = re.compile(r"[\u0e01-\u0e5b]")
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
        if m.start() == 0 or not _THAI.match(text[m.start() - 1]):
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
    encoding: str  # text encoding, or "xlsx"
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
    return None if _missing(v) else v


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


def _xlsx_grid(p: Path, sheet: str | int | None, kind: str | None) -> _Grid:
    """The cells of one sheet of a workbook. Merged cells carry their value down the merged rows (a date merged
    over the incidents of that day is each row's date). Without ``sheet`` the first visible sheet whose top rows
    name the kind's columns is read, and which one is said when the workbook has several."""
    import openpyxl

    src = p.name
    try:
        wb = openpyxl.load_workbook(p, data_only=True)  # not read-only: merged ranges are only known this way
    except Exception as e:  # zip/xml errors of a damaged or mis-named workbook
        raise InputError(src, f"not a readable .xlsx workbook ({type(e).__name__})",
                         "open it in Excel and save it again as .xlsx, or as CSV UTF-8") from None
    names = wb.sheetnames
    if sheet is not None:
        if isinstance(sheet, str) and sheet not in names and sheet.strip().isdigit() and int(sheet) < len(names):
            sheet = int(sheet)
        if (isinstance(sheet, int) and not 0 <= sheet < len(names)) or (isinstance(sheet, str) and sheet not in names):
            raise InputError(src, f"the workbook has no sheet {sheet!r}; its sheets are "
                             f"{', '.join(map(repr, names))}", "name one of these sheets (or its 0-based number)")
        chosen = [names[sheet] if isinstance(sheet, int) else sheet]
        if not hasattr(wb[chosen[0]], "iter_rows"):
            raise InputError(src, f"sheet {chosen[0]!r} is a chart, not a table", "name the sheet that holds the "
                             f"table (the workbook's sheets are {', '.join(map(repr, names))})")
    else:
        tables = [n for n in names if hasattr(wb[n], "iter_rows")]  # chart sheets hold no cells
        if not tables:
            raise InputError(src, "the workbook has only chart sheets", "export the table behind the chart")
        visible = [n for n in tables if wb[n].sheet_state == "visible"] or tables
        chosen = visible + [n for n in tables if n not in visible]
    grids: list[tuple[str, _Grid]] = []
    for name in chosen:
        ws = wb[name]
        cells = [[_xlsx_cell(c) for c in r] for r in ws.iter_rows()]
        _uncalculated(p, ws, cells)
        copied: dict[tuple[int, int], int] = {}
        for rng in ws.merged_cells.ranges:  # down the first column of the range: the value as the user sees it
            top = cells[rng.min_row - 1][rng.min_col - 1] if rng.min_row <= len(cells) else None
            for r in range(rng.min_row + 1, min(rng.max_row, len(cells)) + 1):
                if rng.min_col - 1 < len(cells[r - 1]):
                    cells[r - 1][rng.min_col - 1] = top
                    copied[r - 1, rng.min_col - 1] = rng.min_row - 1
        g = _Grid(cells, None, "xlsx", None, sheet_rows=list(range(1, len(cells) + 1)), copied_from=copied)
        hidden = [i + 1 for i in range(len(cells)) if ws.row_dimensions[i + 1].hidden and any(
            not _missing(v) for v in cells[i])]
        if hidden:
            g.notes.append(f"sheet {name!r}: rows {', '.join(map(str, hidden[:SHOWN_ROWS]))}"
                           + (f" and {len(hidden) - SHOWN_ROWS} more" if len(hidden) > SHOWN_ROWS else "")
                           + " are hidden in Excel (a filter?) and were read like the others")
        grids.append((name, g))
        if sheet is not None or len(names) == 1 or kind not in SPECS or _find_header(cells, kind, src) is not None:
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


def _grid(p: Path, sheet: str | int | None, kind: str | None = None) -> _Grid:
    src = p.name
    if not p.exists():
        raise InputError(str(p), "the file does not exist", "check the path (and that the file was copied)")
    if p.is_dir():
        raise InputError(str(p), "this is a folder, not a file", "give the path of the CSV or .xlsx file in it")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(str(p), f"the file cannot be read ({e.strerror or type(e).__name__})",
                         "check that you may read it and that it is not open (locked) in another program") from None
    suffix = p.suffix.lower()
    notes: list[str] = []
    if raw[:4] == b"PK\x03\x04":
        if suffix == ".ods":
            raise InputError(src, "OpenDocument (.ods) workbooks are not read",
                             "open it in LibreOffice or Excel and save as .xlsx or as CSV UTF-8")
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
        raise InputError(src, "old Excel 97-2003 (.xls) workbooks are not read",
                         "open it in Excel and save as .xlsx (Excel Workbook) or as CSV UTF-8")
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
        return len(match_columns([normalize_text(str(v)) for v in cells if not _missing(v)], SPECS[kind], src))
    except _TwoColumns:
        return 1  # a header, whose fault validation reports
    except InputError:
        return 0


def _filled(rows: list[list[Any]]) -> list[list[int]]:
    """The indices of the filled (not :func:`_missing`) cells of each row, worked out once per file."""
    return [[k for k, v in enumerate(r) if not _missing(v)] for r in rows]


def _find_header(rows: list[list[Any]], kind: str, src: str, filled: list[list[int]] | None = None) -> int | None:
    """Index of the row among the top :data:`HEADER_SEARCH_ROWS` non-blank rows that names the most of the
    kind's columns (the first of equals): a report line 'วันที่, 15/03/2569' above the header names one."""
    seen, best, best_n = 0, None, 0
    for i, r in enumerate(rows):
        if not (filled[i] if filled is not None else any(not _missing(v) for v in r)):
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
        filled = [k for k, v in enumerate(r) if not _missing(v)]
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
        filled = [k for k, v in enumerate(r) if not _missing(v)]
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
    if _missing(header):
        return False
    key = header_key(str(header))
    return any(key in {header_key(c.name), *map(header_key, c.aliases)} and not _is_id(c) for c in spec.columns)


def load_raw(path: str | Path, kind: str | None = None, *, sheet: str | int | None = None) -> RawTable:
    """A CSV/TSV/TXT or ``.xlsx`` file as raw cells under its header row.

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
                two = [b if not _missing(b) else a for a, b in zip_longest(rows[h], rows[nxt])]
                units = [normalize_text(str(v)) for v in rows[nxt] if not _missing(v)]
                if units and all(re.fullmatch(r"\(.*\)|\[.*\]", u, re.S) for u in units):
                    g.notes.append(f"the row under the header ({line_word} {where[nxt]}: "
                                   f"{', '.join(units[:4])}) gives units: not read as data")
                    h, header_cells = nxt, [a if _missing(b) else b if _missing(a) else f"{a} {b}"
                                            for a, b in zip_longest(rows[h], rows[nxt])]
                elif _header_match(two, kind, p.name) > _header_match(rows[h], kind, p.name):
                    g.notes.append(f"the header is on two rows ({line_word}s {where[h]} and {where[nxt]}): "
                                   "read as one")
                    h, header_cells = nxt, two
    width = len(header_cells)
    while width and _missing(header_cells[width - 1]):
        width -= 1
    header = _unique([normalize_text(str(v)) if not _missing(v) else f"column {k + 1}"
                      for k, v in enumerate(header_cells[:width])])
    body_idx = [i for i in keep if i > h]
    totals = [i for i in body_idx if _is_total_row(rows[i], filled[i])] if kind is not None else []
    first = next((k for k, v in enumerate(header_cells) if not _missing(v)), 0)
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
                match_columns([normalize_text(str(v)) for v in rows[h] if not _missing(v)], SPECS[no_header],
                              p.name)
            except InputError as e:
                raise InputError(p.name, f"{e.problem} (no row among the first {HEADER_SEARCH_ROWS} names the "
                                 f"{SPECS[no_header].noun} columns)", e.fix, column=e.column) from None
        if extra:
            raise InputError(p.name, f"this row has {max(k for k, v in enumerate(r) if not _missing(v)) + 1} cells "
                             f"but the header has {width}",
                             "give every column a header, or check for a delimiter inside an unquoted cell (quote "
                             "such cells or export the file again)" if lines else "give every column a header",
                             row=len(body) + 1, line=where[i], line_word=line_word)
        body.append(r[:width] + [None] * (width - len(r)))
        body_where.append(where[i])
    frame = pd.DataFrame(body, columns=header, dtype=object) if body else pd.DataFrame(columns=header)
    blank = [c for k, c in enumerate(header) if _missing(header_cells[k]) and all(_missing(r[k]) for r in body)]
    frame = frame.drop(columns=blank)  # an empty column without a header (the table starts at column B)
    return RawTable(frame, body_where if lines else None, where[h], g.encoding, g.delimiter,
                    body_where if g.sheet_rows else None, g.notes)


# --------------------------------------------------------------------------------------------- cell parsers
class _Bad(ValueError):
    """One cell that cannot be read; the message says why."""


def parse_number(v: Any, decimal_comma: bool = False) -> float:
    """A number cell: Thai digits, thousands separators, a decimal comma (``7,0046``) and a ``%`` sign read.
    With ``decimal_comma`` (coordinates, never in thousands) one comma is always the decimal mark: ``100,467``
    is 100.467, not 100467."""
    if isinstance(v, bool):
        raise _Bad("expected a number, got true/false")
    if isinstance(v, int | float | np.integer | np.floating):
        x = float(v)
    else:
        s = normalize_text(v).replace(" ", "").rstrip("%")
        if s.count(",") == 1 and "." not in s and (decimal_comma or not re.fullmatch(r"-?\d{1,3},\d{3}", s)):
            s = s.replace(",", ".")
        elif re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
            s = s.replace(",", "")
        try:
            x = float(s)
        except ValueError:
            raise _Bad("not a number") from None
    if not math.isfinite(x):
        raise _Bad("not a finite number")
    return x


_THAI_MONTH_NAMES = sorted(THAI_MONTHS, key=len, reverse=True)


def _month_word(s: str) -> tuple[str, int | None, bool]:
    """Replace a Thai or English month name in ``s`` with its number (returns the text, the month and whether
    the name was Thai)."""
    if not s.isascii():
        for name in _THAI_MONTH_NAMES:
            if name in s:
                return s.replace(name, f" {THAI_MONTHS[name]} "), THAI_MONTHS[name], True
    m = re.search(r"[A-Za-z]{3,9}", s)
    if m and m.group(0)[:3].lower() in EN_MONTHS:
        mo = EN_MONTHS[m.group(0)[:3].lower()]
        return s[:m.start()] + f" {mo} " + s[m.end():], mo, False
    return s, None, False


_TIME_RE = (r"(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2})(?:\.\d+)?)?\s*"
            r"(?:น\.?|น\s*\.|(?P<ap>[AaPp])\.?\s?[Mm]\.?)?")
_TZ_RE = r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?"


def _clock(m: re.Match[str]) -> dt.time:
    h, mi, s = int(m.group("H")), int(m.group("M")), int(m.group("S") or 0)
    if m.group("ap"):  # 12-hour clock: 12:05 AM is 00:05, 12:05 PM is 12:05
        if not 1 <= h <= 12:
            raise _Bad(f"{h}:{mi:02d} {m.group('ap').upper()}M is not a 12-hour time")
        h = h % 12 + (12 if m.group("ap") in "Pp" else 0)
    if h > 23 or mi > 59 or s > 59:
        raise _Bad(f"{h:02d}:{mi:02d}{f':{s:02d}' if m.group('S') else ''} is not a time of day")
    return dt.time(h, mi, s)


def _tzinfo(s: str | None, tz: ZoneInfo) -> dt.tzinfo:
    if not s:
        return tz
    if s == "Z":
        return dt.UTC
    sign = 1 if s[0] == "+" else -1
    digits = s[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


_DMS = re.compile(
    r"(?P<h1>[NSEW])?\s*(?P<sign>[-+])?(?P<d>\d+(?:[.,]\d+)?)\s*(?:[°º˚]|deg|d(?![a-z])|องศา)?\s*"
    r"(?:(?P<m>\d+(?:[.,]\d+)?)\s*(?:['′’‘]|ลิปดา)\s*"  # seconds follow minutes; their " may be left out
    r"(?:(?P<s>\d+(?:[.,]\d+)?)\s*(?:[\"″”“]|''|′′|ฟิลิปดา)?\s*)?)?"
    r"(?P<h2>[NSEW])?", re.I)


def _dms(m: re.Match[str]) -> tuple[float, str | None]:
    """Signed decimal degrees of one :data:`_DMS` match, and its hemisphere letter (upper case) if written."""
    num = [float((m.group(k) or "0").replace(",", ".")) for k in ("d", "m", "s")]
    if num[1] >= 60 or num[2] >= 60:
        raise _Bad("minutes and seconds must be below 60")
    deg = num[0] + num[1] / 60 + num[2] / 3600
    hemi = (m.group("h1") or m.group("h2") or "").upper() or None
    neg = m.group("sign") == "-" or hemi in ("S", "W")
    return (-deg if neg else deg), hemi


def parse_degrees(v: Any, axis: Literal["lon", "lat"]) -> float:
    """A longitude or latitude cell in decimal degrees: a number (a comma is always the decimal mark:
    ``100,4679``), or degrees-minutes-seconds as Google Maps or a GPS shows them (``100°28'12.1"E``,
    ``7° 00.738' N``, ``N 7°00'44.3"``); S and W are negative. A hemisphere of the other axis (an ``N`` in the
    longitude column) is refused."""
    try:
        return parse_number(v, decimal_comma=True)
    except _Bad:
        if not isinstance(v, str):
            raise
    text = normalize_text(v)
    m = _DMS.fullmatch(text)
    if not m or not re.search(r"[°º˚'′’\"″”NSEWnsewd]|องศา", text):
        raise _Bad('not a number (write decimal degrees, e.g. 100.4679, or 100°28\'04.4"E)')
    deg, hemi = _dms(m)
    if hemi is not None and (hemi in "NS") != (axis == "lat"):
        raise _Bad(f"{hemi} is a {'latitude' if hemi in 'NS' else 'longitude'} hemisphere, in the "
                   f"{'latitude' if axis == 'lat' else 'longitude'} column")
    return deg


def parse_latlon(v: Any) -> tuple[float, float]:
    """One ``lat, lon`` cell as ``(lat, lon)`` in decimal degrees: ``7.0046, 100.4679`` (what Google Maps copies),
    degrees-minutes-seconds ``7°00'16.6"N 100°28'04.4"E`` (with N/S/E/W the order may be either), or a Google Maps
    link (``https://maps.google.com/?q=7.0046,100.4679``, ``.../maps/@7.0046,100.4679,17z``; a place link's pin,
    ``!3d<lat>!4d<lon>``, before its ``/@`` view centre)."""
    text = normalize_text(v)
    url = re.search(r"(?:[?&](?:q|query|ll|center|destination)=|/@|/place/)(-?\d+\.\d+)(?:,|%2C)\s*(-?\d+\.\d+)", text)
    if url and re.match(r"(?:https?://|www\.|maps\.|goo\.gl)", text, re.I):  # a Google Maps link pasted in
        pin = re.search(r"!3d(-?\d+(?:\.\d+)?)!4d(-?\d+(?:\.\d+)?)", text)  # a place's pin; /@ is the view's centre
        if pin:
            return float(pin.group(1)), float(pin.group(2))
        return float(url.group(1)), float(url.group(2))
    parts = re.split(r"\s*[,;]\s*|\s+", text)
    if len(parts) == 2:
        try:
            return parse_number(parts[0]), parse_number(parts[1])
        except _Bad:
            pass
    found = [m for m in _DMS.finditer(text) if m.group(0).strip()]
    if len(found) != 2 or re.sub(r"[\s,;]", "", "".join(m.group(0) for m in found)) != re.sub(r"[\s,;]", "", text):
        raise _Bad('expected two numbers, "lat, lon"')
    (a, ha), (b, hb) = _dms(found[0]), _dms(found[1])
    if ha in ("E", "W") or hb in ("N", "S"):
        a, b, ha, hb = b, a, hb, ha
    if ha in ("E", "W") or hb in ("N", "S"):
        raise _Bad("both values carry a hemisphere of the same axis (N/S for latitude, E/W for longitude)")
    return a, b


TWO_DIGIT_CE_MAX = 40
"""A two-digit year with no era and no Thai month name: ``00``-``40`` are 2000-2040 CE (``26`` -> 2026),
``41``-``99`` are 2541-2599 BE (``69`` -> 2569 BE = 2026). A fixed pivot: a file reads the same in any year."""


def _year(written: str, era: str | None = None, seen: dict[str, str] | None = None) -> int:
    """A year as written (its digits) as a Christian Era year. Four digits: 2443-2743 is Buddhist Era (2569 ->
    2026), 1900-2200 Christian Era; others are refused (``0069`` is no two-digit year). Two digits (``69``, what
    Thai Excel's short dates show): Buddhist Era when the date says so (``พ.ศ.``) or has a Thai month name,
    Christian Era with ``ค.ศ.``/``A.D.``; otherwise by :data:`TWO_DIGIT_CE_MAX`. How a two-digit year was read
    is put in ``seen['two_digit_year']``."""
    y = int(written)
    if len(written) == 2:
        if era is None:
            era = "CE" if y <= TWO_DIGIT_CE_MAX else "BE"
        full = 2500 + y - BE_OFFSET if era == "BE" else 2000 + y
        if seen is not None:
            seen["two_digit_year"] = (f"{y:02d} as {2500 + y} BE ({full})" if era == "BE" else f"{y:02d} as {full}")
        return full
    if len(written) == 4:
        if era == "CE" and 1900 <= y <= 2200:
            return y
        if 1900 + BE_OFFSET <= y <= 2200 + BE_OFFSET:
            return y - BE_OFFSET
        if 1900 <= y <= 2200:
            return y
    raise _Bad(f"year {written} is neither a Buddhist Era (25xx) nor a Christian Era (19xx/20xx) year")


_WEEKDAY = r"(?:อาทิตย์|จันทร์|อังคาร|พุธ|พฤหัสบดี|พฤหัส|ศุกร์|เสาร์)"
_DAY_PREFIX = re.compile(rf"^(?:วัน{_WEEKDAY}?\s*ที่|วัน{_WEEKDAY}|{_WEEKDAY})\s*")
_ERA = re.compile(r"(?:(?P<be>พ\s*\.?\s*ศ\s*\.?|B\.\s?E\.?)|(?P<ce>ค\s*\.?\s*ศ\s*\.?|A\.\s?D\.?))(?=\s*\d)")


def _era(s: str) -> tuple[str, str | None]:
    """Drop a leading weekday/``วันที่`` and an era marker (``พ.ศ.`` / ``ค.ศ.``) from a date text; returns the text
    and ``"BE"``, ``"CE"`` or None."""
    s = _DAY_PREFIX.sub("", s)
    m = _ERA.search(s)
    if not m:
        return s, None
    return s[:m.start()] + " " + s[m.end():], "BE" if m.group("be") else "CE"


def _date_words(s: str) -> tuple[str, str | None, int | None]:
    """A date text with its weekday prefix and era marker dropped and a month name replaced by its number;
    returns the text, the era (``"BE"`` when ``พ.ศ.`` is written or the month name is Thai) and the month."""
    s, era = _era(normalize_text(s))
    s, word_month, thai = _month_word(s)
    if era is None and thai:  # "15 มี.ค. 69": a Thai month name goes with BE years
        era = "BE"
    return s.strip(), era, word_month


def parse_date_parts(s: str, month_first: bool = False, seen: dict[str, str] | None = None) -> tuple[dt.date, str]:
    """The date at the start of ``s`` and the rest of the text. Day-first unless ``month_first``; BE years,
    era markers (``พ.ศ. 2569``), a leading ``วันที่``/weekday, Thai month names and two-digit years (see
    :func:`_year`) read."""
    s, era, word_month = _date_words(s)
    m = re.match(r"(?P<Y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:[T\s]+|$)", s)
    if m:  # ISO order (year first)
        y, mo, d = _year(m.group("Y"), era), int(m.group("m")), int(m.group("d"))
    else:
        m = re.match(r"(?P<a>\d{1,2})\s*[-/. ]\s*(?P<b>\d{1,2})\s*[-/. ]\s*(?P<Y>\d{2,4})(?:[T\s,]+|$)", s)
        if not m:
            raise _Bad("not a date (write day/month/year, e.g. 15/03/2569, or 2026-03-15)")
        a, b = int(m.group("a")), int(m.group("b"))
        if word_month is not None:  # the month name became one of the two numbers: the day is the other
            if word_month not in (a, b):
                raise _Bad("not a date: the day next to the month name cannot be told (write 15 Mar 2026 or "
                           "15/03/2026)")
            d, mo = (b if a == word_month else a), word_month
        else:
            d, mo = (b, a) if month_first else (a, b)
        y = _year(m.group("Y"), era, seen)
    try:
        return dt.date(y, mo, d), s[m.end():].strip()
    except ValueError:
        raise _Bad(f"day {d} of month {mo} in {y} does not exist") from None


EXCEL_SERIAL_RANGE = (18264, 73051)  # Excel day numbers of 1950-01-01 and 2099-12-31
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def excel_serial(v: Any) -> float | None:
    """``v`` as an Excel serial day number (days since 1899-12-30, the fraction the time of day), when it is a
    number or plain decimal text between 1950 and 2099 (a date cell formatted as General, or pasted as
    ``46096.3125``); None otherwise."""
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        t = normalize_text(v)
        if not re.fullmatch(r"\d{5}(?:\.\d+)?", t):
            return None
        v = float(t)
    if isinstance(v, int | float | np.integer | np.floating) and math.isfinite(v):
        x = float(v)
        return x if EXCEL_SERIAL_RANGE[0] <= x <= EXCEL_SERIAL_RANGE[1] else None
    return None


UNIX_RANGE_S = (946684800, 4102444800)  # 2000-01-01 .. 2100-01-01 UTC


def unix_time(v: Any) -> dt.datetime | None:
    """``v`` as a UTC time when it is a Unix time stamp, what GPS trackers export: 10 digits (seconds) or 13
    (milliseconds) between 2000 and 2100; None otherwise."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer()):
        t = str(int(v))
    elif isinstance(v, str):
        t = normalize_text(v)
    else:
        return None
    if not re.fullmatch(r"\d{10}|\d{13}", t):
        return None
    sec = int(t) / (1000 if len(t) == 13 else 1)
    if not UNIX_RANGE_S[0] <= sec < UNIX_RANGE_S[1]:
        return None
    return dt.datetime.fromtimestamp(sec, dt.UTC)


def be_cell(v: dt.date, seen: dict[str, str] | None = None) -> dt.date:
    """An Excel date cell whose year is a Buddhist Era year (2569 typed into a Gregorian Excel is stored as the year
    2569) moved back 543 years (``seen['be_cell']`` is set); 1900-2200 dates unchanged; other years (2369, a
    mistyped 2569) refused, as :func:`_year` refuses them in text."""
    if 1900 + BE_OFFSET <= v.year <= 2200 + BE_OFFSET:
        try:
            fixed = v.replace(year=v.year - BE_OFFSET)
        except ValueError:
            raise _Bad(f"29 February {v.year - BE_OFFSET} (BE {v.year}) does not exist") from None
        if seen is not None:
            seen["be_cell"] = f"{v:%d/%m/%Y} as {fixed:%Y-%m-%d}"
        return fixed
    if not 1900 <= v.year <= 2200:  # 2369 for 2569: a typing slip, not a date to keep
        raise _Bad(f"year {v.year} is neither a Buddhist Era ({1900 + BE_OFFSET}-{2200 + BE_OFFSET}) nor a "
                   "Christian Era (1900-2200) year")
    return v


def parse_datetime(v: Any, tz: str = LOCAL_TZ, month_first: bool = False,
                   seen: dict[str, str] | None = None) -> dt.datetime:
    """A date-time cell as an aware UTC datetime: Python/pandas/Excel datetimes (naive = ``tz``), Excel serial
    day numbers (local time; ``seen['excel_serial']`` is set), ISO-8601, day-first Thai forms with BE years, era
    markers, Thai digits and month names, two-digit years (``seen['two_digit_year']``), ``HH:MM[:SS]`` with
    ``น.`` or AM/PM and an optional offset. A date without a time is midnight local time."""
    return _parse_datetime(v, tz, month_first, seen)[0]


def _parse_datetime(v: Any, tz: str = LOCAL_TZ, month_first: bool = False,
                    seen: dict[str, str] | None = None) -> tuple[dt.datetime, bool]:
    """:func:`parse_datetime`, and whether the cell holds a date and no time of day (:func:`_date_only`), from
    one parse of the text."""
    zone = ZoneInfo(tz)
    serial = excel_serial(v)
    if serial is not None:
        if seen is not None:
            seen["excel_serial"] = f"{v} as {_EXCEL_EPOCH + dt.timedelta(days=serial):%Y-%m-%d %H:%M}"
        local = _EXCEL_EPOCH + dt.timedelta(seconds=round(serial * 86400))
        return local.replace(tzinfo=zone).astimezone(dt.UTC), serial.is_integer()
    unix = unix_time(v)
    if unix is not None:
        if seen is not None:
            seen["unix_time"] = f"{v} as {unix:%Y-%m-%d %H:%M:%S} UTC"
        return unix, False
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, dt.date):
        v = be_cell(v, seen)
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=zone)).astimezone(dt.UTC), _date_only(v)
    if isinstance(v, dt.date):
        return dt.datetime.combine(v, dt.time(0), zone).astimezone(dt.UTC), True
    if isinstance(v, int | float) and not isinstance(v, bool):
        raise _Bad("a bare number is not a time (format the cell as a date in Excel, or write 15/03/2569 07:30)")
    day, rest = parse_date_parts(str(v), month_first, seen)
    rest = rest.strip().lstrip("T").strip()
    if rest.lower().startswith("เวลา"):
        rest = rest[4:].strip()
    if not rest:
        return dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC), True
    m = re.fullmatch(_TIME_RE + _TZ_RE, rest)
    if not m:
        raise _Bad(f"cannot read the time {rest!r} (write HH:MM, e.g. 07:30)")
    return dt.datetime.combine(day, _clock(m), _tzinfo(m.group("tz"), zone)).astimezone(dt.UTC), False


def _date_only(v: Any) -> bool:
    """True for a date-time cell that holds a date and no time of day (an Excel date at 00:00 included)."""
    if isinstance(v, dt.datetime | pd.Timestamp):
        return v.hour == v.minute == v.second == 0 and v.microsecond == 0
    if isinstance(v, dt.date):
        return True
    serial = excel_serial(v)
    if serial is not None:
        return serial.is_integer()
    try:
        return not parse_date_parts(str(v))[1].strip()
    except _Bad:
        return False


def parse_time(v: Any, seen: dict[str, str] | None = None) -> dt.time:
    """A time-of-day cell (``07:30``, ``7.30 น.``, ``0.30`` (00:30), ``7:30 PM``, an Excel time, or Excel's fraction
    of a day such as ``0.3125`` for 07:30, which sets ``seen['day_fraction']``: a number cell, or text with other
    than two decimals or with minutes over 59)."""
    if isinstance(v, dt.time):
        return v
    if isinstance(v, dt.datetime | pd.Timestamp):
        return v.time()
    if isinstance(v, dt.timedelta) and dt.timedelta(0) <= v < dt.timedelta(days=1):  # Excel [h]:mm cells
        return (dt.datetime.min + v).time()
    frac: float | None = None
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        frac = float(v)
    elif isinstance(v, str) and re.fullmatch(r"0?\.\d+|0", normalize_text(v)) and not re.fullmatch(
            r"0\.[0-5]\d", normalize_text(v)):  # '0.30' is the Thai clock 00.30 (like '7.30'), not 0.3 of a day
        frac = float(normalize_text(v))
    if frac is not None:
        if not 0 <= frac < 1:
            raise _Bad("a number is not a time of day (write HH:MM, e.g. 07:30, or format the cell as a time)")
        if seen is not None:
            seen["day_fraction"] = f"{v} as {(dt.datetime.min + dt.timedelta(days=frac)):%H:%M}"
        return (dt.datetime.min + dt.timedelta(seconds=round(frac * 86400) % 86400)).time()
    m = re.fullmatch(_TIME_RE, normalize_text(v))
    if not m:
        raise _Bad("not a time of day (write HH:MM, e.g. 07:30)")
    return _clock(m)


def parse_month(v: Any, seen: dict[str, str] | None = None) -> dt.date:
    """A survey month as its first day: ``2026-03``, ``03/2569``, ``มี.ค. 2569``, ``มีนาคม พ.ศ. 2569``,
    ``มี.ค. 69`` (two-digit years as in :func:`_year`), an Excel date or serial day number; a full date keeps its
    month."""
    if isinstance(v, dt.datetime | pd.Timestamp):
        return dt.date(v.year, v.month, 1)
    if isinstance(v, dt.date):
        return v.replace(day=1)
    if excel_serial(v) is not None:
        return parse_datetime(v, seen=seen).astimezone(ZoneInfo(LOCAL_TZ)).date().replace(day=1)
    s, era, word = _date_words(v)
    m = re.fullmatch(r"(?P<Y>\d{4})[-/.](?P<m>\d{1,2})", s)
    if m:
        return dt.date(_year(m.group("Y"), era), _month_ok(int(m.group("m"))), 1)
    m = re.fullmatch(r"(?P<m>\d{1,2})\s*[-/. ]\s*(?P<Y>\d{2,4})", s)
    if m:
        return dt.date(_year(m.group("Y"), era, seen), _month_ok(word or int(m.group("m"))), 1)
    try:
        d, rest = parse_date_parts(str(v), seen=seen)
    except _Bad:
        raise _Bad("not a month (write 2026-03, 03/2569 or มี.ค. 2569)") from None
    if rest:
        raise _Bad("not a month (write 2026-03, 03/2569 or มี.ค. 2569)")
    return d.replace(day=1)


def _month_ok(m: int) -> int:
    if not 1 <= m <= 12:
        raise _Bad(f"month {m} does not exist")
    return m


def _is_month_first(values: pd.Series) -> bool:
    """True when some day-first-looking value can only be month-first (its second number is over 12)."""
    text = values[values.map(lambda v: isinstance(v, str))].astype(str).map(normalize_text)
    m = text.str.extract(r"^\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*\d{2,4}").dropna().astype(int)
    return bool(len(m)) and bool((m[1] > 12).any()) and not bool((m[0] > 12).any())


_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # control characters; tab and line breaks are text
_ID_CONTROL = r"[\x00-\x1f\x7f]"  # ... but not in an id


def _is_id(col: Column) -> bool:
    return col.name.endswith("_id")


def _check_text(col: Column, x: str) -> None:
    """Refuse control characters in text, and in ids also line breaks, tabs and more than MAX_ID_CHARS."""
    m = re.search(_ID_CONTROL if _is_id(col) else _CONTROL, x)
    if m:
        raise _Bad(f"holds a control character (U+{ord(m.group(0)):04X} at position {m.start() + 1}): write "
                   "printable characters only")
    if _is_id(col) and len(x) > MAX_ID_CHARS:
        raise _Bad(f"an id of {len(x)} characters: at most {MAX_ID_CHARS}")


_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"


def _fast(col: Column, raw: pd.Series, tz: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Vectorised reading of the plain cells of a column (ASCII text, plain numbers within bounds, ISO-8601
    times with 1900-2200 years); returns (values, which cells were read, which times had no time of day). The
    other cells go through the cell-by-cell parsers, which say what is wrong."""
    n = len(raw)
    done = np.zeros(n, bool)
    no_time = np.zeros(n, bool)
    vals = pd.Series([None] * n, index=raw.index, dtype=object)
    is_str = raw.map(lambda v: isinstance(v, str)).to_numpy(bool)
    if col.type in ("float", "lon", "lat", "x", "y", "percent", "int", "hour"):
        plain = raw.map(lambda v: isinstance(v, int | float | str) and not isinstance(v, bool))
        num = pd.to_numeric(raw.where(plain), errors="coerce").to_numpy(float, copy=True)
        ok = np.isfinite(num)
        if col.type in ("int", "hour"):
            with np.errstate(invalid="ignore"):  # inf/nan cells are not whole numbers (the cell parser says so)
                ok &= np.equal(np.mod(num, 1), 0, where=ok, out=np.zeros(n, bool))
        ok &= (num >= (-math.inf if col.lo is None else col.lo)) & (num <= (math.inf if col.hi is None else col.hi))
        if ok.any():
            vals[ok] = [int(x) for x in num[ok]] if col.type in ("int", "hour") else list(num[ok])
        done = ok
    elif col.type == "datetime" and is_str.any():
        text = raw[is_str].astype(str).str.strip()
        # Only 1900-2200 years take the vectorised path: pandas cannot hold times past 2262 in nanoseconds (a
        # year-3000 cell would fail the whole column); the cell parser says what is wrong with the others.
        year = pd.to_numeric(text.str[:4], errors="coerce")
        iso = (text.str.fullmatch(_ISO) & year.between(1900, 2200)).to_numpy(bool)
        if iso.any():
            t = text[iso]
            aware = t.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$").to_numpy(bool)
            parsed = pd.Series(pd.NaT, index=t.index, dtype="datetime64[ns, UTC]")
            if aware.any():
                parsed[aware] = pd.to_datetime(t[aware], utc=True, format="ISO8601", errors="coerce")
            if (~aware).any():
                local = pd.to_datetime(t[~aware], format="ISO8601", errors="coerce")
                parsed[~aware] = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
            good = parsed.notna() & parsed.dt.year.between(1900, 2200)
            idx = np.flatnonzero(is_str)[np.flatnonzero(iso)[good.to_numpy(bool)]]
            vals.iloc[idx] = list(parsed[good].dt.to_pydatetime())
            done[idx] = True
            no_time[idx] = (t[good].str.len() == 10).to_numpy(bool)
    elif col.type == "text" and col.values is None and is_str.any():
        text = raw[is_str].astype(str)
        stripped = text.str.strip()
        control = _ID_CONTROL if _is_id(col) else _CONTROL
        plain = (text.map(str.isascii) & (stripped != "") & ~text.str.contains(control, regex=True)
                 & ~stripped.isin(["-", "nan", "NaN", "null", "NULL", "None"])).to_numpy(bool).copy()
        if _is_id(col):
            plain &= (stripped.str.len() <= MAX_ID_CHARS).to_numpy(bool)
        idx = np.flatnonzero(is_str)[plain]
        vals.iloc[idx] = list(text[plain].str.strip())
        done[idx] = True
    return vals, done, no_time


# --------------------------------------------------------------------------------------------- matching
class _TwoColumns(InputError):
    """Two headers name one declared column (the row is a header, a faulty one)."""


def match_columns(headers: Sequence[str], spec: InputSpec, source: str) -> dict[str, str]:
    """Map each declared column to the header that holds it (canonical name -> header as written).

    Exact canonical names win over aliases; two headers for the same column, or a missing required column,
    raise an :class:`InputError` that lists what the file has and what is accepted."""
    keys = {h: header_key(h) for h in headers}
    found: dict[str, str] = {}
    for col in spec.columns:
        names = [header_key(col.name)] + [header_key(a) for a in col.aliases]
        hits = [h for h in headers if keys[h] == names[0]] or [h for h in headers if keys[h] in names[1:]]
        hits = [h for h in hits if h not in found.values()]
        if len(hits) > 1:
            raise _TwoColumns(source, f"columns {', '.join(repr(h) for h in hits)} all look like {col.name!r}",
                             "keep one of them, or rename the others", column=col.name)
        if hits:
            found[col.name] = hits[0]
    missing = [c for c in spec.columns if c.required and c.name not in found]
    if missing:
        c = missing[0]
        accepted = ", ".join([c.name, *c.aliases[:8]])
        raise InputError(source, f"no column for {c.name!r} ({c.doc or c.type}); the file has "
                         f"{', '.join(map(repr, headers))}",
                         f"add a column headed {c.name!r} (also accepted: {accepted})", column=c.name)
    for group in spec.any_of:
        if not any(g in found for g in group):
            raise InputError(source, f"none of the columns {', '.join(group)} is there; the file has "
                             f"{', '.join(map(repr, headers))}",
                             f"add one of them (e.g. {spec.column(group[0]).aliases[0]!r} with "
                             f"{spec.column(group[0]).doc or 'values'})", column=group[0])
    return found


# --------------------------------------------------------------------------------------------- validation
@dataclass
class _Ctx:
    source: str
    spec: InputSpec
    headers: dict[str, str]
    lines: np.ndarray | None
    on_bad_row: str
    line_word: str = "line"  # what ``lines`` count: file lines, or Excel rows
    problems: list[Rejection] = field(default_factory=list)
    no_time: set[int] = field(default_factory=set)  # rows whose date-time cell held a date only
    month_first: list[str] = field(default_factory=list)  # date columns read month first
    readings: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # (column, how) -> [cells, example]
    comma: dict[str, dict[int, float]] = field(default_factory=dict)  # x/y cells read with a decimal comma, when
    # that differs ('100,467' is 100467 m, or 100.467 degrees: which one, the column's range says)

    def fail(self, i: int, col: str, reason: str, value: Any, fix: str) -> None:
        self.problems.append(Rejection(self.spec.kind, i + 1, col, reason, value))
        if self.on_bad_row == "raise":
            line = int(self.lines[i]) if self.lines is not None else None
            raise InputError(self.source, f"{value!r} — {reason}", fix, row=i + 1, column=col,
                             header=self.headers.get(col), line=line, line_word=self.line_word)


_READINGS = {
    "excel_serial": "are Excel serial day numbers (a date cell formatted as General): read as dates, local time",
    "day_fraction": "are Excel fractions of a day (a time cell formatted as General): read as times of day",
    "unix_time": "are Unix time stamps (seconds or milliseconds since 1970, UTC): read as such",
    "be_cell": "are Excel dates whose year is a Buddhist Era year (typed into a Gregorian Excel): read 543 years "
               "earlier",
    "two_digit_year": "have a two-digit year: read as the year the date's Thai month or era marker says, else "
                      f"00-{TWO_DIGIT_CE_MAX} as 20yy CE and {TWO_DIGIT_CE_MAX + 1}-99 as 25yy BE",
}


_FIX = {
    "datetime": "write day/month/year and time, e.g. 15/03/2569 07:30 (Buddhist Era) or 2026-03-15 07:30",
    "date": "write day/month/year, e.g. 15/03/2569 or 2026-03-15",
    "time": "write the time as HH:MM, e.g. 07:30",
    "month": "write the month as 2026-03, 03/2569 or มี.ค. 2569",
    "float": "write a plain number (a dot or a comma for decimals)",
    "int": "write a whole number",
    "percent": "write a percentage between 0 and 100 (e.g. 35 or 35%)",
    "hour": "write the hour of day, 0 to 23",
    "lon": "write the longitude in decimal degrees (e.g. 100.4679)",
    "lat": "write the latitude in decimal degrees (e.g. 7.0046)",
    "latlon": 'write "lat, lon" in decimal degrees, e.g. "7.0046, 100.4679"',
    "text": "fill in the cell with plain text (an id: at most 128 printable characters)",
}


_EXCEL_ERROR = re.compile(r"#(?:N/A|VALUE!|REF!|DIV/0!|NAME\?|NUM!|NULL!|SPILL!|CALC!|GETTING_DATA)", re.I)
_UNKNOWN = {"na", "ไม่ระบุ", "ไม่ทราบ", "ไม่มี", "unknown"}  # header_key of 'N/A', 'ไม่ระบุ', ...: empty in a
# number, date or position column (a text column keeps them as written)


def _convert_column(ctx: _Ctx, col: Column, raw: pd.Series, tz: str) -> pd.Series:
    out: list[Any] = []
    month_first = col.type in ("datetime", "date") and _is_month_first(raw)
    fast, done, fast_no_time = _fast(col, raw, tz) if not month_first else (None, np.zeros(len(raw), bool), None)
    ctx.no_time.update(np.flatnonzero(fast_no_time).tolist() if fast_no_time is not None else [])
    fast_values = fast.tolist() if fast is not None else []
    table = {header_key(k): val for k, val in col.values.items()} if col.values is not None else {}
    for i, v in enumerate(raw.tolist()):
        if done[i]:
            out.append(fast_values[i])
            continue
        if isinstance(v, Uncalculated):
            ctx.fail(i, col.name, "a formula with no saved result (the workbook was written by a program and never "
                     "calculated)", v, "open the workbook in Excel, let it calculate, save it, and import again")
            out.append(None)
            continue
        if isinstance(v, str) and _EXCEL_ERROR.fullmatch(v.strip()):
            ctx.fail(i, col.name, f"an Excel error value ({v.strip()}): the formula behind the cell failed", v,
                     "correct the formula in Excel (or clear the cell) and save again")
            out.append(None)
            continue
        if _missing(v) or (col.type != "text" and isinstance(v, str) and header_key(v) in _UNKNOWN):
            if col.required:
                ctx.fail(i, col.name, "the cell is empty", v, _FIX.get(col.type, "fill in the cell"))
            out.append(None)
            continue
        seen: dict[str, str] = {}
        try:
            if col.type == "text":
                if isinstance(v, Mapping | list | tuple | set | bytes):
                    raise _Bad(f"expected text, got {'an object' if isinstance(v, Mapping) else 'a list'}")
                x: Any = normalize_text(v) if not isinstance(v, float | int) else (
                    str(int(v)) if float(v).is_integer() else str(v))
                _check_text(col, x)
                if col.values is not None:
                    key = header_key(x)
                    if key not in table:
                        allowed = sorted(set(col.values.values()))
                        raise _Bad(f"not one of {', '.join(allowed)}")
                    x = table[key]
            elif col.type in ("lon", "lat"):
                x = parse_degrees(v, col.type)
            elif col.type in ("float", "x", "y"):
                x = parse_number(v)
                if col.type in ("x", "y") and isinstance(v, str) and "," in v:
                    alt = parse_number(v, decimal_comma=True)
                    if alt != x:
                        ctx.comma.setdefault(col.name, {})[i] = alt
            elif col.type in ("int", "hour"):
                f = parse_number(v)
                if not float(f).is_integer():
                    raise _Bad("not a whole number")
                x = int(f)
            elif col.type == "percent":
                x = parse_number(v)
            elif col.type == "datetime":
                x, no_time = _parse_datetime(v, tz, month_first, seen)
                if no_time:
                    ctx.no_time.add(i)
            elif col.type == "date":
                x = parse_datetime(v, tz, month_first, seen).astimezone(ZoneInfo(tz)).date() \
                    if not isinstance(v, dt.date) or isinstance(v, dt.datetime) else be_cell(v, seen)
            elif col.type == "time":
                x = parse_time(v, seen)
            elif col.type == "month":
                x = parse_month(v, seen)
            elif col.type == "latlon":
                x = parse_latlon(v)
            elif col.type == "bool":
                x = header_key(v) in ("1", "true", "yes", "y", "ใช่", "จริง")
            else:  # pragma: no cover - every declared type is handled above
                raise _Bad(f"unknown column type {col.type}")
            if isinstance(x, int | float) and not isinstance(x, bool):
                lo = -math.inf if col.lo is None else col.lo
                hi = math.inf if col.hi is None else col.hi
                if not lo <= x <= hi:
                    raise _Bad(f"outside {lo:g}..{hi:g}")
        except _Bad as e:
            fix = (f"write one of {', '.join(sorted(set(col.values.values())))} (or a Thai word for it, e.g. "
                   f"{', '.join([k for k in col.values if _THAI.search(k)][:5])})" if col.values
                   else _FIX.get(col.type, "correct the cell"))
            ctx.fail(i, col.name, str(e), v, fix)
            x = None
        for how, example in seen.items():  # a reading the user should know of: counted, said once per column
            ctx.readings.setdefault((col.name, how), [0, example])[0] += 1
        out.append(x)
    if month_first:
        ctx.month_first.append(col.name)
    return pd.Series(out, index=raw.index, dtype=object)


_KMH_UNITS = {"kmh", "kph", "kmhr", "กมชม", "กิโลเมตรชั่วโมง", "กิโลเมตรต่อชั่วโมง"}
_MPS_UNITS = {"ms", "mps", "msec", "เมตรวินาที", "เมตรต่อวินาที"}


def _unit(header: str) -> str | None:
    """The unit written in brackets in a header, reduced like :func:`header_key` (``"Speed (km/h)"`` -> ``kmh``)."""
    m = re.search(r"\((.*?)\)|\[(.*?)\]", normalize_text(header))
    return re.sub(r"[\s_\-./:]+", "", (m.group(1) or m.group(2) or "").lower()) if m else None


def _speed_units(found: dict[str, str], source: str) -> None:
    """Put a speed column under the unit its header names: "ความเร็ว (กม/ชม)" or "Speed (km/h)" is km/h (it was
    read as m/s, 3.6 times too fast); a unit that is neither km/h nor m/s (knots, mph) is refused."""
    for name, same, other, other_name in (("speed_mps", _MPS_UNITS, _KMH_UNITS, "speed_kmh"),
                                          ("speed_kmh", _KMH_UNITS, _MPS_UNITS, "speed_mps")):
        header = found.get(name)
        unit = _unit(header) if header else None
        if header is None or unit is None or unit in same:
            continue
        if unit not in other:
            raise InputError(source, f"the speed is in {unit!r}, which is not read", "convert the column to km/h "
                             "or m/s and name the unit in the header, e.g. 'speed (km/h)'", column=name, header=header)
        if other_name in found:
            raise InputError(source, f"columns {header!r} and {found[other_name]!r} are both a speed in "
                             f"{'km/h' if other is _KMH_UNITS else 'm/s'}", "keep one of them", column=other_name)
        found[other_name] = found.pop(name)


def _unique(headers: list[str]) -> list[str]:
    """Headers made unique: a repeated one gets ``" (2)"``, ``" (3)"`` (which :func:`header_key` drops, so two
    headers for one declared column are still refused as such); two 'หมายเหตุ' columns are both kept."""
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out


def _declared(spec: InputSpec, name: str) -> Column:
    """The spec's column of that name; ``time`` is also the time-of-day column of a kind whose ``ts`` came as a
    date column and a time column."""
    return _TIME if name == "time" and name not in spec.names else spec.column(name)


def _date_as_ts(df: pd.DataFrame, spec: InputSpec, source: str, error: InputError,
                notes: list[str]) -> dict[str, str]:
    """Columns of a kind that needs a date-time (scans, pings) when the file has none but one date column whose
    cells hold the time too ('วันที่' = '15/03/2569 07:30:00'): that column is the date-time; else ``error``."""
    if error.column != "ts" or "date" not in spec.names:
        raise error
    keys = {header_key(a) for a in (spec.column("date").name, *spec.column("date").aliases)}
    hits = [h for h in df.columns if header_key(h) in keys]
    if len(hits) != 1:
        raise error
    if not _any_clock(df[hits[0]]):
        raise InputError(source, f"{spec.noun} need a time of day, and column {hits[0]!r} holds dates only",
                         "add a time column headed 'เวลา' (or 'time', HH:MM), or write the date and time in one "
                         "column headed 'วันเวลา'", column="ts")
    ts = spec.column("ts")
    cols = tuple(dataclasses.replace(c, aliases=(*c.aliases, hits[0])) if c.name == "ts" else c
                 for c in spec.columns if c.name != "date")
    found = match_columns(list(df.columns), dataclasses.replace(spec, columns=cols), source)
    notes.append(f"column {hits[0]!r} holds dates with times: read as the {ts.name} column")
    return found


def _any_clock(values: pd.Series) -> bool:
    """True when some cell of a date column also holds a time of day (``15/03/2569 07:30``, an Excel date-time
    that is not midnight)."""
    for v in values:
        if _missing(v) or (isinstance(v, dt.date | dt.time) and not isinstance(v, dt.datetime | pd.Timestamp)):
            continue
        if isinstance(v, dt.datetime | pd.Timestamp) or excel_serial(v) is not None:
            if not _date_only(v):
                return True
            continue
        if isinstance(v, str) and re.search(r"\d{1,2}[:.]\d{2}\s*(?:น|[AaPp]\.?\s?[Mm]|$|:)", normalize_text(v)) \
                and not _date_only(v):
            return True
    return False


def _only_times(values: pd.Series) -> bool:
    """True when every filled cell of a column is a time of day (``07:30``, an Excel time or day fraction) and at
    least one is filled: a 'เวลา' column beside a date column."""
    filled = [v for v in values if not _missing(v)]

    def is_time(v: Any) -> bool:
        if isinstance(v, dt.time):
            return True
        if isinstance(v, str):
            return re.fullmatch(_TIME_RE, normalize_text(v)) is not None
        return isinstance(v, float) and 0 <= v < 1

    return bool(filled) and all(is_time(v) for v in filled)


def _ts_series(values: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.Series([v for v in values], index=values.index), utc=True)


def validate_frame(raw: pd.DataFrame | Sequence[Mapping[str, Any]], kind: str, *, source: str = "input",
                   area: Area | None = None, tz: str = LOCAL_TZ, epsg: int | None = None,
                   swapped: Literal["fix", "refuse"] = "fix", outside: Literal["keep", "drop", "refuse"] = "keep",
                   on_bad_row: Literal["raise", "drop"] = "raise", max_speed_mps: float = DEFAULT_MAX_SPEED_MPS,
                   lines: Sequence[int] | None = None, encoding: str | None = None,
                   delimiter: str | None = None, max_future_s: float | None = None,
                   max_age_s: float | None = None, now: dt.datetime | None = None,
                   line_word: str = "line") -> ReadResult:
    """Validate rows of one input kind (any headers the spec accepts) into a typed :class:`ReadResult`.

    Parameters
    ----------
    raw
        The rows: a DataFrame of raw cells (text or Python values) or a list of dicts (e.g. a JSON batch).
    kind
        One of :data:`SPECS`: ``incidents``, ``risk_points``, ``survey_results``, ``gps_pings``, ``qr_scans``,
        ``field_reports``.
    source
        What the rows came from, named in every message (a file name, ``POST /v1/field/gps``).
    area
        Where points are expected (zone or city polygon, WGS84). Points outside are counted and reported; when
        no point is inside, the input is refused.
    tz
        Time zone of times written without one (IANA name).
    epsg
        CRS of metric ``x``/``y`` columns (e.g. 32647, UTM 47N), needed only when positions come that way.
    swapped
        ``"fix"``: swap lon/lat back (with a warning); ``"refuse"``: raise.
    outside
        Points outside ``area``: ``"keep"`` (``in_area=False``), ``"drop"`` (counted) or ``"refuse"``.
    on_bad_row
        ``"raise"``: the first unreadable cell raises; ``"drop"``: such rows are left out, listed in
        ``rejected`` and counted (what an ingest API wants for a batch).
    max_speed_mps
        GPS pings: a ping needing more than this speed from the unit's last good ping is flagged ``jump``.
    lines
        File line (or, with ``line_word="Excel row"``, sheet row) of each row, for messages.
    max_future_s
        Device input: a ``ts`` more than this many seconds after ``now`` (default: the current time) is a bad
        cell (the device clock is wrong), refused or dropped per ``on_bad_row``.
    max_age_s
        Device input: a ``ts`` more than this many seconds before ``now`` is a bad cell too (a device whose
        clock was reset sends 1970 or 2000 dates).

    Returns
    -------
    ReadResult
        ``frame`` plus ``warnings`` and ``counts`` (``rows``, ``kept``, ``bad_rows``, ``null_island``,
        ``swapped``, ``outside_area``, ``jumps``).

    Raises
    ------
    InputError
        Unknown kind, missing columns, an unreadable cell (with ``on_bad_row="raise"``), swapped coordinates
        with ``swapped="refuse"``, points outside with ``outside="refuse"``, or no point inside ``area``.
    """
    if kind not in SPECS:
        raise InputError(source, f"unknown input kind {kind!r}", f"use one of {', '.join(SPECS)}")
    spec = SPECS[kind]
    df = raw.copy() if isinstance(raw, pd.DataFrame) else pd.DataFrame(list(raw))
    df.columns = _unique([normalize_text(str(c)) for c in df.columns])
    df = df.reset_index(drop=True)
    n = len(df)
    if n == 0:
        raise InputError(source, f"no {spec.noun} in it (only a header, or nothing)",
                         "export the table again with its rows")
    notes: list[str] = []
    try:
        found = match_columns(list(df.columns), spec, source)
    except InputError as e:
        found = _date_as_ts(df, spec, source, e, notes)
    _speed_units(found, source)
    if "date" in found and "ts" in found and "time" not in found and _only_times(df[found["ts"]]):
        found["time"] = found.pop("ts")  # a date column and a time column ("วันที่", "เวลา"): ts is both
    elif ("ts" in spec.names and "date" in found and "ts" not in found and "time" not in found
          and _any_clock(df[found["date"]])):
        found["ts"] = found.pop("date")  # a 'วันที่' column whose cells hold the time too: keep the time
    ctx = _Ctx(source, spec, found, np.asarray(lines) if lines is not None else None, on_bad_row, line_word)
    out = pd.DataFrame(index=df.index)
    for name, header in found.items():
        out[name] = _convert_column(ctx, _declared(spec, name), df[header], tz)
    warnings = notes + [f"column {found[c]!r} has values like 03/15/…: read month first (US order), not day "
                        "first" for c in ctx.month_first]
    warnings += [f"column {found[c]!r}: {k} of {n} cells {_READINGS[how]} (e.g. {example})"
                 for (c, how), (k, example) in ctx.readings.items()]
    counts = {"rows": n}

    # date + time columns -> ts
    if "ts" not in out and "date" in out:
        times = out["time"] if "time" in out else pd.Series([None] * n, dtype=object)
        zone = ZoneInfo(tz)
        out["ts"] = [None if d is None else dt.datetime.combine(d, t or dt.time(0), zone).astimezone(dt.UTC)
                     for d, t in zip(out["date"], times, strict=True)]
        if "time" in out:  # a row whose time cell is empty has a date but no hour (not midnight)
            ctx.no_time.update(i for i, (d, t) in enumerate(zip(out["date"], times, strict=True))
                               if d is not None and t is None)
        if "time" not in out and "hour" not in out:
            warnings.append("no time column: incidents are dated but have no hour (hour-of-day analyses skip them)")
    if max_future_s is not None and "ts" in out:
        limit = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=max_future_s)
        for i, t in enumerate(out["ts"]):
            if t is not None and t > limit:
                ctx.fail(i, "ts", f"{(t - limit).total_seconds() + max_future_s:.0f} s in the future", t.isoformat(),
                         "correct the date (a Buddhist Era year typed wrong?) or set the device's clock (NTP/GPS "
                         "time) and send again")
    if max_age_s is not None and "ts" in out:
        ref = now or dt.datetime.now(dt.UTC)
        oldest = ref - dt.timedelta(seconds=max_age_s)
        for i, t in enumerate(out["ts"]):
            if t is not None and t < oldest:
                ctx.fail(i, "ts", f"dated {(ref - t).total_seconds() / 86400:.0f} days ago, "
                         f"older than the {max_age_s / 86400:g} days accepted (a device clock that was reset?)",
                         t.isoformat(), "set the device's clock (NTP/GPS time); import older records from a file "
                         "with `ssz twin import`")
    failed = {p.row - 1 for p in ctx.problems}
    for group in spec.any_of:  # e.g. an incident needs a date-time, a date or an hour: per row, not only per file
        present = [g for g in group if g in found]
        empty = np.ones(n, bool)
        for g in present:  # converted cells are None when empty or unreadable
            empty &= out[g].isna().to_numpy()
        heads = " / ".join(repr(found[g]) for g in present)
        for i in np.flatnonzero(empty).tolist():
            if i not in failed:
                ctx.fail(i, present[0], f"no date or time: {heads} empty", None,
                         "fill in when it happened (e.g. 15/03/2569 07:30), or leave the row out of the file")
                failed.add(i)
    if "ts" in spec.names and spec.column("ts").required and "ts" not in found and "date" in found:
        # device rows (pings, scans) need a date and a time of day, not midnight
        empty_cols = {c: out[c].isna().to_numpy() if c in out else np.ones(n, bool) for c in ("date", "time")}
        for i in np.flatnonzero(empty_cols["date"] | empty_cols["time"]).tolist():
            if i in failed:
                continue
            c = "date" if empty_cols["date"][i] else "time"
            ctx.fail(i, c, f"no {c} ({'the cell is empty' if c in out else 'no time column'})", None,
                     "fill in the date and the time of day (e.g. 15/03/2569 and 07:30)")
            failed.add(i)
    bad = np.zeros(n, bool)
    for p in ctx.problems:
        bad[p.row - 1] = True

    # positions
    if spec.points != "none":
        lon, lat = _positions(out, found, ctx, epsg, spec, area, warnings)
        if lon is not None:
            nan = np.isnan(lon) | np.isnan(lat)
            if spec.points == "required":
                for i in np.flatnonzero(nan & ~bad):
                    ctx.fail(int(i), "lon/lat", "no position", None, "fill in lon and lat (decimal degrees)")
                    bad[i] = True
            null = (np.abs(lon) < NULL_ISLAND_DEG) & (np.abs(lat) < NULL_ISLAND_DEG) & ~bad
            if null.any():
                counts["null_island"] = int(null.sum())
                warnings.append(f"{int(null.sum())} of {n} {spec.noun} are at 0,0 (a device with no GPS fix) and "
                                f"were left out ({_rows(null, ctx.lines, ctx.line_word)})")
                if null.all():
                    raise InputError(source, f"every one of the {n} {spec.noun} is at 0,0 (no GPS fix)",
                                     "send positions only once the device has a fix")
            lon, lat, nswap = _fix_swapped(lon, lat, area, ~bad & ~null & ~nan, ctx, swapped, warnings, n)
            counts["swapped"] = nswap
            badpos = ~nan & ((np.abs(lat) > 90) | (np.abs(lon) > 180)) & ~bad & ~null
            for i in np.flatnonzero(badpos):
                metres = abs(lon[i]) > 1000 or abs(lat[i]) > 1000
                ctx.fail(int(i), "lon/lat", "not a position on Earth" + (" (metres, UTM?)" if metres else ""),
                         (lon[i], lat[i]), "write lon (−180..180) and lat (−90..90) in decimal degrees"
                         + (", or head metric columns x and y and give their EPSG code (32647 for UTM 47N)"
                            if metres else ""))
                bad[i] = True
            out["lon"], out["lat"] = lon, lat
            keep_pos = ~null
            if area is not None:
                has = ~nan & ~bad & ~null
                inside = np.zeros(n, bool)
                inside[has] = area.contains(lon[has], lat[has])
                n_out = int((has & ~inside).sum())
                counts["outside_area"] = n_out
                if has.any() and not inside[has].any():
                    c_lon, c_lat = float(np.median(lon[has])), float(np.median(lat[has]))
                    raise InputError(source, f"none of the {int(has.sum())} {spec.noun} is inside {area.name} "
                                     f"(their middle is at lon {c_lon:.4f}, lat {c_lat:.4f})",
                                     "check that the file is for this city and that lon/lat are in WGS84 "
                                     "decimal degrees")
                if n_out:
                    msg = f"{n_out} of {int(has.sum())} {spec.noun} are outside {area.name}"
                    if outside == "refuse":
                        raise InputError(source, msg + f" ({_rows(has & ~inside, ctx.lines, ctx.line_word)})",
                                         "remove them or correct their coordinates")
                    warnings.append(msg + (" and were left out" if outside == "drop" else " (kept, in_area=False)")
                                    + f": {_rows(has & ~inside, ctx.lines, ctx.line_word)}")
                    if outside == "drop":
                        keep_pos &= ~(has & ~inside)
                out["in_area"] = np.where(has, inside, False)
            out = out[keep_pos | bad] if on_bad_row == "drop" else out[keep_pos]
            bad = bad[keep_pos | bad] if on_bad_row == "drop" else bad[keep_pos]
            for c in ("latlon", "x", "y"):
                if c in out:
                    out = out.drop(columns=c)
    if on_bad_row == "drop" and bad.any():
        counts["bad_rows"] = int(bad.sum())
        warnings.append(f"{int(bad.sum())} of {n} rows could not be read and were left out: "
                        + "; ".join(str(p) for p in ctx.problems[:SHOWN_ROWS])
                        + (" …" if len(ctx.problems) > SHOWN_ROWS else ""))
        out = out[~bad]
    # typed columns
    if "ts" in out:
        out["ts"] = _ts_series(out["ts"])
    if "ts" in out and "hour" not in found:
        hours = out["ts"].dt.tz_convert(tz).dt.hour.astype("Int64")
        if "date" in found and "time" not in found and "ts" not in found:
            hours[:] = pd.NA
        undated = out.index.isin(sorted(ctx.no_time))
        if undated.any():
            hours[undated] = pd.NA
            warnings.append(f"{int(undated.sum())} of {len(out)} {spec.noun} have a date but no time of day: "
                            "their hour is unknown (hour-of-day analyses leave them out; ts is midnight local)")
        out["hour"] = hours
    for name in found:
        col = _declared(spec, name)
        if name in out and col.type in ("float", "lon", "lat", "percent"):
            out[name] = pd.to_numeric(out[name]).astype(float)
        elif name in out and col.type in ("int", "hour"):
            out[name] = pd.to_numeric(out[name]).astype("Int64")
    if kind == "gps_pings":
        if "speed_kmh" in out:
            kmh = pd.to_numeric(out.pop("speed_kmh"))
            out["speed_mps"] = out["speed_mps"].fillna(kmh / 3.6) if "speed_mps" in out else kmh / 3.6
        out = out.sort_values(["unit_id", "ts"], kind="stable")
        out["jump"] = flag_jumps(out, max_speed_mps)
        counts["jumps"] = int(out["jump"].sum())
        if counts["jumps"]:
            warnings.append(f"{counts['jumps']} of {len(out)} GPS pings would need more than "
                            f"{max_speed_mps:.0f} m/s ({max_speed_mps * 3.6:.0f} km/h) from the unit's last good "
                            "ping: flagged jump=True and kept out of trips")
    if kind == "survey_results":
        _survey_checks(out, source, found)
    for c in df.columns:  # columns the spec does not declare are passed through unchanged
        if c not in found.values() and c not in out.columns:
            out[c] = df.loc[out.index, c].map(lambda v: v.formula if isinstance(v, Uncalculated) else v)
    out.insert(0, "row", out.index + 1)
    out = out.reset_index(drop=True)
    counts["kept"] = len(out)
    return ReadResult(kind, source, out, warnings, counts, ctx.problems, encoding, delimiter, dict(found))


def _rows(mask: np.ndarray, lines: np.ndarray | None = None, line_word: str = "line") -> str:
    """The rows of ``mask`` as errors name them: file lines (``lines 3, 5``) or Excel rows when ``lines`` is
    given, else data rows (``rows 2, 4``)."""
    idx = np.flatnonzero(mask)
    nums = (lines[idx] if lines is not None else idx + 1).tolist()
    word = line_word if lines is not None else "row"
    head = ", ".join(map(str, nums[:SHOWN_ROWS]))
    return (f"{word}{'s' if len(nums) > 1 else ''} {head}"
            + (f" and {len(nums) - SHOWN_ROWS} more" if len(nums) > SHOWN_ROWS else ""))


def _degrees_range(a: np.ndarray, b: np.ndarray) -> bool:
    """True when every filled pair is within ±180 / ±90: degrees, not metres."""
    ok = ~(np.isnan(a) | np.isnan(b))
    return bool(ok.any()) and bool((np.abs(a[ok]) <= 180).all() and (np.abs(b[ok]) <= 90).all())


def _from_metres(x: np.ndarray, y: np.ndarray, epsg: int, area: Area | None, warnings: list[str],
                 where: tuple[np.ndarray | None, str] = (None, "line")) -> tuple[np.ndarray, np.ndarray]:
    """Metric x/y in ``epsg`` to lon/lat; with an area, a row that lands in it only with x and y swapped (the
    northing written first) is swapped, and said."""
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = (np.asarray(a, float) for a in to_wgs.transform(x, y))
    if area is not None:
        ok = ~(np.isnan(lon) | np.isnan(lat))
        slon, slat = (np.asarray(a, float) for a in to_wgs.transform(y, x))
        sw = np.zeros(len(lon), bool)
        if ok.any():
            sw[ok] = ~area.contains(lon[ok], lat[ok]) & area.contains(slon[ok], slat[ok])
        if sw.any():
            warnings.append(f"{int(sw.sum())} of {len(lon)} rows have the easting and northing swapped "
                            f"({_rows(sw, *where)}): swapped back")
            lon, lat = np.where(sw, slon, lon), np.where(sw, slat, lat)
    return lon, lat


def _positions(out: pd.DataFrame, found: dict[str, str], ctx: _Ctx, epsg: int | None, spec: InputSpec,
               area: Area | None = None, warnings: list[str] | None = None
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """lon/lat of every row from lon/lat columns, a 'lat, lon' column or metric x/y (``epsg``). X/Y columns
    holding degrees are lon/lat; lon/lat columns holding metres are x/y when ``epsg`` is known; each said."""
    def arr(c: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in out[c]], float)

    notes = warnings if warnings is not None else []
    if "lon" in out and "lat" in out:
        lon, lat = arr("lon"), arr("lat")
        big = ~np.isnan(lon) & ~np.isnan(lat) & ((np.abs(lon) > 1000) | (np.abs(lat) > 1000))
        if epsg is not None and big.any() and big.sum() == (~np.isnan(lon)).sum():  # every row in metres
            notes.append(f"columns {found['lon']!r}/{found['lat']!r} hold metres, not degrees: read as easting/"
                         f"northing in EPSG:{epsg}")
            return _from_metres(lon, lat, epsg, area, notes, (ctx.lines, ctx.line_word))
        return lon, lat
    if "latlon" in out:
        pairs = [(np.nan, np.nan) if v is None else v for v in out["latlon"]]
        return np.array([p[1] for p in pairs], float), np.array([p[0] for p in pairs], float)
    if "x" in out and "y" in out:
        for comma in (False, True):
            x, y = arr("x"), arr("y")
            if comma:  # '100,467;7,004' in a semicolon file: degrees with a decimal comma
                if not ctx.comma:
                    break
                for a, c in ((x, "x"), (y, "y")):
                    for i, val in ctx.comma.get(c, {}).items():
                        a[i] = val
            if _degrees_range(x, y):
                notes.append(f"columns {found['x']!r}/{found['y']!r} hold degrees, not metres: read as "
                             "longitude/latitude" + (" (a comma is the decimal mark)" if comma else ""))
                return x, y
    if "x" in out and "y" in out:
        if epsg is None and area is not None:  # metres in a city are in the city's UTM zone
            from twin.graph import utm_epsg_for  # here: twin.graph imports osmnx, slow for every reader

            c = area.polygon.centroid
            epsg = utm_epsg_for(c.x, c.y)
            notes.append(f"columns {found['x']!r}/{found['y']!r} are metres: read as UTM zone {epsg % 100}"
                         f"{'N' if epsg < 32700 else 'S'} (EPSG:{epsg}), the zone of {area.name}")
        if epsg is None:
            raise InputError(ctx.source, "positions are metric x/y but their coordinate system is not known",
                             "give the EPSG code (e.g. 32647 for UTM 47N) or use lon/lat columns", column="x")
        return _from_metres(arr("x"), arr("y"), epsg, area, notes, (ctx.lines, ctx.line_word))
    if spec.points == "required":
        raise InputError(ctx.source, f"no position columns; the file has {', '.join(map(repr, ctx.headers.values()))}",
                         "add lon and lat columns (decimal degrees; also accepted: longitude/latitude, "
                         "ลองจิจูด/ละติจูด, or one 'lat, lon' column)", column="lon")
    return None, None


def _fix_swapped(lon: np.ndarray, lat: np.ndarray, area: Area | None, ok: np.ndarray, ctx: _Ctx,
                 policy: str, warnings: list[str], n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Detect rows whose lon and lat were swapped: the latitude is beyond ±90 while the longitude would be a
    latitude, or (with an area) the point is in the area only when swapped."""
    sw = ok & (np.abs(lat) > 90) & (np.abs(lon) <= 90)
    if area is not None and ok.any():
        cand = ok & ~sw & (np.abs(lon) <= 90)
        if cand.any():
            as_is = area.contains(lon[cand], lat[cand])
            flipped = area.contains(lat[cand], lon[cand])
            idx = np.flatnonzero(cand)
            sw[idx[flipped & ~as_is]] = True
    k = int(sw.sum())
    if k:
        msg = (f"{k} of {n} {ctx.spec.noun} have longitude and latitude swapped "
               f"({_rows(sw, ctx.lines, ctx.line_word)})")
        if policy == "refuse":
            raise InputError(ctx.source, msg, "put longitude (east, e.g. 100.47) in the lon column and latitude "
                             "(north, e.g. 7.00) in the lat column", column="lon")
        warnings.append(msg + ": swapped back")
        lon, lat = lon.copy(), lat.copy()
        lon[sw], lat[sw] = lat[sw], lon[sw].copy()
    return lon, lat, k


def _survey_checks(out: pd.DataFrame, source: str, found: dict[str, str]) -> None:
    """Refuse a survey whose percentages are all fractions (0.35), or with two rows for a community and month."""
    for c in ("fear_of_crime_pct", "confidence_in_police_pct"):
        v = out[c].astype(float)
        if len(v) and v.max() <= 1.0 and v.gt(0).any():
            raise InputError(source, f"every value of {found[c]!r} is between 0 and 1: these look like fractions, "
                             "not percentages", "write percentages (35 for 35%), or multiply the column by 100",
                             column=c)
    dup = out.duplicated(["community", "month"], keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(source, f"community {out['community'].iloc[i]!r} has more than one row for "
                         f"{out['month'].iloc[i]:%Y-%m}", "keep one row per community and month (or add them up)",
                         row=i + 1, column="month")


def flag_jumps(pings: pd.DataFrame, max_speed_mps: float = DEFAULT_MAX_SPEED_MPS, reanchor: int = 3) -> np.ndarray:
    """Per unit, in time order: True for a ping that needs more than ``max_speed_mps`` from the unit's last good
    ping (geodesic distance on WGS84 / elapsed time, at least 1 s). After ``reanchor`` consecutive flagged pings
    that agree with each other the unit is taken to really be there (a GPS that came back after a gap); the run of
    good pings they left, when shorter than ``reanchor``, was the glitch and is flagged instead (a tracker's bad
    first fix, 11 km off, before the pings that agree).

    ``pings`` needs ``unit_id``, ``ts``, ``lon``, ``lat`` sorted by unit and time; returns a mask in row order.
    """
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    flags = np.zeros(len(pings), bool)
    if not len(pings):
        return flags
    units = pings["unit_id"].to_numpy()
    t = (pd.to_datetime(pings["ts"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    lon, lat = pings["lon"].to_numpy(float), pings["lat"].to_numpy(float)
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    ends = np.r_[starts[1:], len(pings)]
    for s, e in zip(starts, ends, strict=True):
        last, streak, seg = s, [], [s]  # seg: the good pings since the unit's start or the last re-anchoring
        for i in range(s + 1, e):
            d = geod.inv(lon[last], lat[last], lon[i], lat[i])[2]
            if d / max(t[i] - t[last], 1.0) > max_speed_mps:
                flags[i] = True
                if streak:
                    dj = geod.inv(lon[streak[-1]], lat[streak[-1]], lon[i], lat[i])[2]
                    streak = [*streak, i] if dj / max(t[i] - t[streak[-1]], 1.0) <= max_speed_mps else [i]
                else:
                    streak = [i]
                if len(streak) >= reanchor:
                    flags[streak] = False
                    if len(seg) < reanchor:
                        flags[seg] = True
                    last, streak, seg = i, [], list(streak)
            else:
                last, streak = i, []
                seg.append(i)
    return flags


def trip_pings(frame: pd.DataFrame) -> pd.DataFrame:
    """GPS pings fit to draw trips from: without flagged jumps (rows at 0,0 are never in a ReadResult)."""
    return frame[~frame["jump"].astype(bool)] if "jump" in frame else frame


def read_table(path: str | Path, kind: str, *, sheet: str | int | None = None, area: Area | None = None,
               tz: str = LOCAL_TZ, epsg: int | None = None, swapped: Literal["fix", "refuse"] = "fix",
               outside: Literal["keep", "drop", "refuse"] = "keep", on_bad_row: Literal["raise", "drop"] = "raise",
               max_speed_mps: float = DEFAULT_MAX_SPEED_MPS, max_future_s: float | None = None) -> ReadResult:
    """Read a CSV/TSV (any of the encodings above, delimiter sniffed) or ``.xlsx`` file of one input kind.

    The options are those of :func:`validate_frame`; ``sheet`` picks an Excel sheet (name or 0-based index).
    Every message names the file, and rows by their data row and file line.

    Raises
    ------
    InputError
        The file cannot be decoded or parsed, or :func:`validate_frame` refuses its rows.
    """
    p = Path(path)
    raw = load_raw(p, kind, sheet=sheet)
    res = validate_frame(raw.frame, kind, source=p.name, area=area, tz=tz, epsg=epsg, swapped=swapped,
                         outside=outside, on_bad_row=on_bad_row, max_speed_mps=max_speed_mps,
                         lines=raw.lines or raw.sheet_rows, encoding=raw.encoding, delimiter=raw.delimiter,
                         max_future_s=max_future_s, line_word="line" if raw.lines else "Excel row")
    res.warnings[:0] = raw.notes
    return res
