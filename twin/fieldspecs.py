"""What each kind of field input declares: its columns (:data:`SPECS`, with Thai and English header aliases and
accepted values), how a file's headers are matched to them (:func:`match_columns`), and :class:`InputError`, the
error every field-input module raises (file, row, column, what is wrong, what to do).

The reader itself is :mod:`twin.fieldinput`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from twin.fieldtext import header_key
from twin.schemas import MAX_ACCURACY_M

SHOWN_ROWS = 5  # rows named in a message before "and N more"

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
TIME_COLUMN = Column("time", "time", False, ("เวลา", "clock"), "time of day HH:MM[:SS]")
_ACCURACY_DOC = (f"the fix's accuracy, m (the 68 % radius a phone reports); at most {MAX_ACCURACY_M:,.0f}: a coarser "
                 "value is a tracker's placeholder, not a position")
_UNIT = Column("unit_id", "text", True, ("unit", "patrol", "patrol_id", "device", "device_id", "deviceid", "id",
                                         "หน่วย", "สายตรวจ", "รหัสหน่วย", "ทะเบียนรถ"), "patrol unit or device id")

RISK_KIND_VALUES = {"lighting": "lighting", "light": "lighting", "dark": "lighting", "ไฟฟ้า": "lighting",
                    "แสงสว่าง": "lighting", "ไฟส่องสว่าง": "lighting", "จุดมืด": "lighting", "ไฟดับ": "lighting",
                    "ไฟฟ้าดับ": "lighting", "ไฟไม่ติด": "lighting", "หลอดไฟเสีย": "lighting", "ไฟเสีย": "lighting",
                    "มืด": "lighting", "แสงสว่างไม่เพียงพอ": "lighting", "ไฟทาง": "lighting", "ไฟถนน": "lighting",
                    "ไฟฟ้าส่องสว่าง": "lighting", "ไฟส่องทาง": "lighting",
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
        _TS, _DATE, TIME_COLUMN,
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


def is_id(col: Column) -> bool:
    """True for an id column (its name ends in ``_id``): no line breaks or tabs, at most ``MAX_ID_CHARS``."""
    return col.name.endswith("_id")


def declared_column(spec: InputSpec, name: str) -> Column:
    """The spec's column of that name; ``time`` is also the time-of-day column of a kind whose ``ts`` came as a
    date column and a time column."""
    return TIME_COLUMN if name == "time" and name not in spec.names else spec.column(name)


# --------------------------------------------------------------------------------------------- matching
class TwoColumns(InputError):
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
            raise TwoColumns(source, f"columns {', '.join(repr(h) for h in hits)} all look like {col.name!r}",
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
