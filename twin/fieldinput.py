"""The one validating reader for tabular field input: incidents, risk points, surveys, GPS pings, QR scans.

This module holds the public reader and its row checks; the parts it is built of are :mod:`twin.fieldspecs`
(the declared columns, header matching, :class:`~twin.fieldspecs.InputError`), :mod:`twin.fieldfiles` (files
to raw cells: encodings, workbooks, report layouts), :mod:`twin.fieldvalues` (one cell to a value: numbers,
degrees, dates, times) and :mod:`twin.fieldtext` (text normalisation).

Every spreadsheet or device batch an analyst, officer or device hands in goes through :func:`read_table` (a
file: CSV or a workbook) or :func:`validate_frame` (rows already in memory, e.g. a JSON batch posted to the API).
Both return a :class:`ReadResult`: the rows as a typed frame with canonical column names, plus warnings and
counts; anything that cannot be read is an :class:`~twin.fieldspecs.InputError` naming the file, row, column,
what is wrong and what to do. Nothing is silently defaulted or dropped: every row left out is counted and
said in a warning.

What it reads (checked on the inputs Thai users really send):

- **Encodings**: UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text", tab separated), Thai
  Windows/TIS-620 (``cp874``, what Thai Excel writes as "CSV"; also when its only Thai is a letter, 'ร.1'),
  detected with ``charset-normalizer``; a file mixing UTF-8 and another encoding is refused with the line; the
  delimiter (``, ; tab |``, or Excel's ``sep=;`` line) is sniffed with :class:`csv.Sniffer`; LF, CRLF or CR
  lines, quoted line breaks and long cells. HTML or JSON saved as a table, folders, damaged and
  password-protected workbooks are refused with what to do; a text table named ``.xlsx`` is read as CSV.
- **Workbooks** (``.xlsx`` through ``openpyxl``; old Excel 97-2003 ``.xls`` and LibreOffice ``.ods`` through
  python-calamine, pandas' ``calamine`` reader; a sheet of at most ``fieldfiles.MAX_SHEET_CELLS`` cells, and
  ``.xls``/``.ods`` sheets of at most ``fieldfiles.MAX_BOOK_CELLS`` together, measured, like a zip bomb, before the
  workbook is read): ``sheet=`` (name or number), else the first visible sheet whose header names the kind's
  columns (said when there are several);
  merged cells give their value to every merged row; in ``.xlsx``, cells shown as percentages are percentages and
  formulas Excel never calculated are refused (the ``.xls``/``.ods`` reader knows no formats: a percentage is read
  as its fraction); errors give the Excel row. **Report layouts**: title rows above the header, a
  header on two rows (a merged group cell), blank rows, totals/subtotal rows ('รวม', 'รวมทั้งสิ้น 12 เหตุ',
  'Total'), rows of a numbered form left unfilled and an empty column A are skipped and said; Excel error
  values (``#N/A``) are refused as such; 'N/A'/'ไม่ระบุ' in a number, date or position cell is empty.
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

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin.fieldfiles import Uncalculated, load_raw
from twin.fieldspecs import SHOWN_ROWS, SPECS, Column, InputError, InputSpec, declared_column, is_id, match_columns
from twin.fieldtext import THAI_CHAR, header_key, is_missing, normalize_text, unique_headers
from twin.fieldvalues import (
    LOCAL_TZ,
    TWO_DIGIT_CE_MAX,
    CellError,
    any_clock,
    be_cell,
    is_month_first,
    only_times,
    parse_datetime,
    parse_datetime_and_untimed,
    parse_degrees,
    parse_latlon,
    parse_month,
    parse_number,
    parse_time,
)
from twin.layers import Rejection
from twin.schemas import MAX_ID_CHARS

NULL_ISLAND_DEG = 1e-6
DEFAULT_MAX_SPEED_MPS = 55.0  # ~200 km/h: faster than any patrol car or motorcycle in a city


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


_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # control characters; tab and line breaks are text
_ID_CONTROL = r"[\x00-\x1f\x7f]"  # ... but not in an id


def _check_text(col: Column, x: str) -> None:
    """Refuse control characters in text, and in ids also line breaks, tabs and more than MAX_ID_CHARS."""
    m = re.search(_ID_CONTROL if is_id(col) else _CONTROL, x)
    if m:
        raise CellError(f"holds a control character (U+{ord(m.group(0)):04X} at position {m.start() + 1}): write "
                   "printable characters only")
    if is_id(col) and len(x) > MAX_ID_CHARS:
        raise CellError(f"an id of {len(x)} characters: at most {MAX_ID_CHARS}")


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
        control = _ID_CONTROL if is_id(col) else _CONTROL
        plain = (text.map(str.isascii) & (stripped != "") & ~text.str.contains(control, regex=True)
                 & ~stripped.isin(["-", "nan", "NaN", "null", "NULL", "None"])).to_numpy(bool).copy()
        if is_id(col):
            plain &= (stripped.str.len() <= MAX_ID_CHARS).to_numpy(bool)
        idx = np.flatnonzero(is_str)[plain]
        vals.iloc[idx] = list(text[plain].str.strip())
        done[idx] = True
    return vals, done, no_time


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
    month_first = col.type in ("datetime", "date") and is_month_first(raw)
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
        if is_missing(v) or (col.type != "text" and isinstance(v, str) and header_key(v) in _UNKNOWN):
            if col.required:
                ctx.fail(i, col.name, "the cell is empty", v, _FIX.get(col.type, "fill in the cell"))
            out.append(None)
            continue
        seen: dict[str, str] = {}
        try:
            if col.type == "text":
                if isinstance(v, Mapping | list | tuple | set | bytes):
                    raise CellError(f"expected text, got {'an object' if isinstance(v, Mapping) else 'a list'}")
                x: Any = normalize_text(v) if not isinstance(v, float | int) else (
                    str(int(v)) if float(v).is_integer() else str(v))
                _check_text(col, x)
                if col.values is not None:
                    key = header_key(x)
                    if key not in table:
                        allowed = sorted(set(col.values.values()))
                        raise CellError(f"not one of {', '.join(allowed)}")
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
                    raise CellError("not a whole number")
                x = int(f)
            elif col.type == "percent":
                x = parse_number(v)
            elif col.type == "datetime":
                x, no_time = parse_datetime_and_untimed(v, tz, month_first, seen)
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
                raise CellError(f"unknown column type {col.type}")
            if isinstance(x, int | float) and not isinstance(x, bool):
                lo = -math.inf if col.lo is None else col.lo
                hi = math.inf if col.hi is None else col.hi
                if not lo <= x <= hi:
                    raise CellError(f"outside {lo:g}..{hi:g}")
        except CellError as e:
            fix = (f"write one of {', '.join(sorted(set(col.values.values())))} (or a Thai word for it, e.g. "
                   f"{', '.join([k for k in col.values if THAI_CHAR.search(k)][:5])})" if col.values
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
    if not any_clock(df[hits[0]]):
        raise InputError(source, f"{spec.noun} need a time of day, and column {hits[0]!r} holds dates only",
                         "add a time column headed 'เวลา' (or 'time', HH:MM), or write the date and time in one "
                         "column headed 'วันเวลา'", column="ts")
    ts = spec.column("ts")
    cols = tuple(dataclasses.replace(c, aliases=(*c.aliases, hits[0])) if c.name == "ts" else c
                 for c in spec.columns if c.name != "date")
    found = match_columns(list(df.columns), dataclasses.replace(spec, columns=cols), source)
    notes.append(f"column {hits[0]!r} holds dates with times: read as the {ts.name} column")
    return found


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
    df.columns = unique_headers([normalize_text(str(c)) for c in df.columns])
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
    if "date" in found and "ts" in found and "time" not in found and only_times(df[found["ts"]]):
        found["time"] = found.pop("ts")  # a date column and a time column ("วันที่", "เวลา"): ts is both
    elif ("ts" in spec.names and "date" in found and "ts" not in found and "time" not in found
          and any_clock(df[found["date"]])):
        found["ts"] = found.pop("date")  # a 'วันที่' column whose cells hold the time too: keep the time
    ctx = _Ctx(source, spec, found, np.asarray(lines) if lines is not None else None, on_bad_row, line_word)
    out = pd.DataFrame(index=df.index)
    for name, header in found.items():
        out[name] = _convert_column(ctx, declared_column(spec, name), df[header], tz)
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
        col = declared_column(spec, name)
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
    """Read a CSV/TSV (any of the encodings above, delimiter sniffed) or workbook (``.xlsx``, ``.xls``, ``.ods``)
    file of one input kind.

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
