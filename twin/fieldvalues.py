"""Parsing one field-input cell (or a column of them) into a value: numbers (Thai digits, thousands separators,
decimal commas), degrees (decimal or degrees-minutes-seconds, ``lat, lon`` cells and Google Maps links), dates and
times (day-first, Buddhist Era years, Thai month names and eras, two-digit years), Excel serial day numbers and day
fractions, and Unix time stamps. A cell that cannot be read raises :class:`CellError` saying why; the validator
(:func:`twin.fieldinput.validate_frame`) turns that into an :class:`~twin.fieldspecs.InputError` naming the row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin.fieldtext import is_missing, normalize_text

LOCAL_TZ = "Asia/Bangkok"
BE_OFFSET = 543

THAI_MONTHS: dict[str, int] = {}
for _i, (_full, _abbr) in enumerate([
        ("มกราคม", "ม.ค."), ("กุมภาพันธ์", "ก.พ."), ("มีนาคม", "มี.ค."), ("เมษายน", "เม.ย."), ("พฤษภาคม", "พ.ค."),
        ("มิถุนายน", "มิ.ย."), ("กรกฎาคม", "ก.ค."), ("สิงหาคม", "ส.ค."), ("กันยายน", "ก.ย."), ("ตุลาคม", "ต.ค."),
        ("พฤศจิกายน", "พ.ย."), ("ธันวาคม", "ธ.ค.")], start=1):
    THAI_MONTHS[_full] = THAI_MONTHS[_abbr] = THAI_MONTHS[_abbr.replace(".", "")] = _i
EN_MONTHS = {m.lower(): i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


class CellError(ValueError):
    """One cell that cannot be read; the message says why."""


def parse_number(v: Any, decimal_comma: bool = False) -> float:
    """A number cell: Thai digits, thousands separators, a decimal comma (``7,0046``) and a ``%`` sign read.
    With ``decimal_comma`` (coordinates, never in thousands) one comma is always the decimal mark: ``100,467``
    is 100.467, not 100467."""
    if isinstance(v, bool):
        raise CellError("expected a number, got true/false")
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
            raise CellError("not a number") from None
    if not math.isfinite(x):
        raise CellError("not a finite number")
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
            raise CellError(f"{h}:{mi:02d} {m.group('ap').upper()}M is not a 12-hour time")
        h = h % 12 + (12 if m.group("ap") in "Pp" else 0)
    if h > 23 or mi > 59 or s > 59:
        raise CellError(f"{h:02d}:{mi:02d}{f':{s:02d}' if m.group('S') else ''} is not a time of day")
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
        raise CellError("minutes and seconds must be below 60")
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
    except CellError:
        if not isinstance(v, str):
            raise
    text = normalize_text(v)
    m = _DMS.fullmatch(text)
    if not m or not re.search(r"[°º˚'′’\"″”NSEWnsewd]|องศา", text):
        raise CellError('not a number (write decimal degrees, e.g. 100.4679, or 100°28\'04.4"E)')
    deg, hemi = _dms(m)
    if hemi is not None and (hemi in "NS") != (axis == "lat"):
        raise CellError(f"{hemi} is a {'latitude' if hemi in 'NS' else 'longitude'} hemisphere, in the "
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
        except CellError:
            pass
    found = [m for m in _DMS.finditer(text) if m.group(0).strip()]
    if len(found) != 2 or re.sub(r"[\s,;]", "", "".join(m.group(0) for m in found)) != re.sub(r"[\s,;]", "", text):
        raise CellError('expected two numbers, "lat, lon"')
    (a, ha), (b, hb) = _dms(found[0]), _dms(found[1])
    if ha in ("E", "W") or hb in ("N", "S"):
        a, b, ha, hb = b, a, hb, ha
    if ha in ("E", "W") or hb in ("N", "S"):
        raise CellError("both values carry a hemisphere of the same axis (N/S for latitude, E/W for longitude)")
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
    raise CellError(f"year {written} is neither a Buddhist Era (25xx) nor a Christian Era (19xx/20xx) year")


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
            raise CellError("not a date (write day/month/year, e.g. 15/03/2569, or 2026-03-15)")
        a, b = int(m.group("a")), int(m.group("b"))
        if word_month is not None:  # the month name became one of the two numbers: the day is the other
            if word_month not in (a, b):
                raise CellError("not a date: the day next to the month name cannot be told (write 15 Mar 2026 or "
                           "15/03/2026)")
            d, mo = (b if a == word_month else a), word_month
        else:
            d, mo = (b, a) if month_first else (a, b)
        y = _year(m.group("Y"), era, seen)
    try:
        return dt.date(y, mo, d), s[m.end():].strip()
    except ValueError:
        raise CellError(f"day {d} of month {mo} in {y} does not exist") from None


EXCEL_SERIAL_RANGE = (18264, 73051)  # Excel day numbers of 1950-01-01 (read) .. 2100-01-01 (not), as Unix times


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
        return x if EXCEL_SERIAL_RANGE[0] <= x < EXCEL_SERIAL_RANGE[1] else None
    return None


def excel_datetime(serial: float) -> dt.datetime:
    """An Excel serial day number (Windows 1900 date system, e.g. what :func:`excel_serial` returns; 46096.3125)
    as a naive datetime in whole seconds (2026-03-15 07:30:00). Converted by openpyxl's ``from_excel``, which
    rounds to milliseconds; rounded here to the second (half a second up), as the reader's times always were. It
    differs from the former hand conversion only near half seconds: 283 of 900,000 sampled serials, half-second
    ties and values less than a millisecond under .5 s (from_excel's millisecond rounding lifts them to .5).

    Raises
    ------
    CellError
        ``serial`` is below 1 (1900-01-01): a fraction of a day is a time of day (:func:`parse_time`), not a date.
    """
    from openpyxl.utils.datetime import from_excel  # here: openpyxl is not needed to read a CSV

    if not serial >= 1:
        raise CellError(f"{serial} is not an Excel date (day numbers start at 1, 1900-01-01; a number below 1 is a "
                        "time of day): write the date, e.g. 2026-03-15, or format the cell as a date")
    t = from_excel(serial)
    return t.replace(microsecond=0) + dt.timedelta(seconds=t.microsecond >= 500_000)


UNIX_RANGE_S = (946684800, 4102444800)  # 2000-01-01 (read) .. 2100-01-01 (refused) UTC
UNIX_MS_FROM = 1e11
"""A Unix time of at least this is milliseconds, a smaller one seconds: 1e11 s would be the year 5138, 1e11 ms is
1973; every time accepted (2000-2100) is 9 or 10 digits in seconds, 12 or 13 in milliseconds."""


def unix_datetime(v: float) -> dt.datetime:
    """A Unix time stamp (seconds or milliseconds since 1970-01-01 UTC, as GPS trackers and phone apps send) as an
    aware UTC datetime: the one reader of Unix times, for files (:func:`unix_time`) and the field-ingest API.

    Rules: milliseconds when ``v >= UNIX_MS_FROM`` (1e11), else seconds; a fraction is kept, to the microsecond
    (``1796000000500.5`` is 2026-11-30 00:53:20.500500 UTC); the time must be within 2000-01-01 (included) ..
    2100-01-01 (excluded) UTC, :data:`UNIX_RANGE_S`.

    Raises
    ------
    CellError
        ``v`` is not a finite number, or its time is outside 2000-2100 (a 9-digit 123456789 is 1973, 0 is a device
        clock reset to 1970, 1e15 is past the year 9999); the message gives the time it would be.
    """
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or v != v:  # NaN
        raise CellError(f"{v!r} is not a Unix time (a number of seconds or milliseconds since 1970)")
    ms = v >= UNIX_MS_FROM
    try:
        sec = v / 1000 if ms else float(v)
    except OverflowError:  # an integer too large for a float
        sec = math.inf
    if not UNIX_RANGE_S[0] <= sec < UNIX_RANGE_S[1]:
        try:
            when = f"{dt.datetime.fromtimestamp(sec, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
        except (OverflowError, OSError, ValueError):
            when = "past the year 9999" if sec > 0 else "before the year 1"
        written = str(int(v)) if isinstance(v, int | np.integer) else repr(float(v))
        written = written if len(written) <= 24 else f"{written[:12]}… ({len(written)} digits)"
        raise CellError(f"{written} as Unix {'milliseconds' if ms else 'seconds'} is {when}; times are read from "
                        "2000-01-01 to before 2100-01-01 UTC")
    return dt.datetime.fromtimestamp(sec, dt.UTC)


def unix_time(v: Any) -> dt.datetime | None:
    """A file cell as a UTC time when it is a Unix time stamp, what GPS trackers export: a number, or digits, with
    10 (seconds) or 13 (milliseconds) digits before an optional fraction, read by :func:`unix_datetime`; None for
    any other cell (a 9-digit number in a file is an id or a slip, not a time).

    Raises
    ------
    CellError
        A 10- or 13-digit value outside 2000-2100 (``0000000000``: a tracker whose clock was reset).
    """
    if isinstance(v, bool):
        return None
    if isinstance(v, int | np.integer):
        t = str(int(v))
    elif isinstance(v, float | np.floating) and math.isfinite(v):
        t = str(int(v)) if float(v).is_integer() else repr(float(v))
    elif isinstance(v, str):
        t = normalize_text(v)
    else:
        return None
    if not re.fullmatch(r"(?:\d{10}|\d{13})(?:\.\d+)?", t):
        return None
    return unix_datetime(float(t) if "." in t else int(t))


def be_cell(v: dt.date, seen: dict[str, str] | None = None) -> dt.date:
    """An Excel date cell whose year is a Buddhist Era year (2569 typed into a Gregorian Excel is stored as the year
    2569) moved back 543 years (``seen['be_cell']`` is set); 1900-2200 dates unchanged; other years (2369, a
    mistyped 2569) refused, as :func:`_year` refuses them in text."""
    if 1900 + BE_OFFSET <= v.year <= 2200 + BE_OFFSET:
        try:
            fixed = v.replace(year=v.year - BE_OFFSET)
        except ValueError:
            raise CellError(f"29 February {v.year - BE_OFFSET} (BE {v.year}) does not exist") from None
        if seen is not None:
            seen["be_cell"] = f"{v:%d/%m/%Y} as {fixed:%Y-%m-%d}"
        return fixed
    if not 1900 <= v.year <= 2200:  # 2369 for 2569: a typing slip, not a date to keep
        raise CellError(f"year {v.year} is neither a Buddhist Era ({1900 + BE_OFFSET}-{2200 + BE_OFFSET}) nor a "
                   "Christian Era (1900-2200) year")
    return v


def parse_datetime(v: Any, tz: str = LOCAL_TZ, month_first: bool = False,
                   seen: dict[str, str] | None = None) -> dt.datetime:
    """A date-time cell as an aware UTC datetime: Python/pandas/Excel datetimes (naive = ``tz``), Excel serial
    day numbers (local time; ``seen['excel_serial']`` is set), ISO-8601, day-first Thai forms with BE years, era
    markers, Thai digits and month names, two-digit years (``seen['two_digit_year']``), ``HH:MM[:SS]`` with
    ``น.`` or AM/PM and an optional offset. A date without a time is midnight local time."""
    return parse_datetime_and_untimed(v, tz, month_first, seen)[0]


def parse_datetime_and_untimed(v: Any, tz: str = LOCAL_TZ, month_first: bool = False,
                             seen: dict[str, str] | None = None) -> tuple[dt.datetime, bool]:
    """``(time, untimed)``: :func:`parse_datetime` of the cell, and whether it holds a date and no time of day
    (:func:`_date_only`; ``15/03/2569`` -> ``(2026-03-14 17:00 UTC, True)``), from one parse of the text."""
    zone = ZoneInfo(tz)
    serial = excel_serial(v)
    if serial is not None:
        local = excel_datetime(serial)
        if seen is not None:
            seen["excel_serial"] = f"{v} as {local:%Y-%m-%d %H:%M}"
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
        raise CellError("a bare number is not a time (format the cell as a date in Excel, or write 15/03/2569 07:30)")
    day, rest = parse_date_parts(str(v), month_first, seen)
    rest = rest.strip().lstrip("T").strip()
    if rest.lower().startswith("เวลา"):
        rest = rest[4:].strip()
    if not rest:
        return dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC), True
    m = re.fullmatch(_TIME_RE + _TZ_RE, rest)
    if not m:
        raise CellError(f"cannot read the time {rest!r} (write HH:MM, e.g. 07:30)")
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
    except CellError:
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
            raise CellError("a number is not a time of day (write HH:MM, e.g. 07:30, or format the cell as a time)")
        t = (dt.datetime.min + dt.timedelta(seconds=round(frac * 86400) % 86400)).time()
        if seen is not None:
            seen["day_fraction"] = f"{v} as {t:%H:%M}"
        return t
    m = re.fullmatch(_TIME_RE, normalize_text(v))
    if not m:
        raise CellError("not a time of day (write HH:MM, e.g. 07:30)")
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
    except CellError:
        raise CellError("not a month (write 2026-03, 03/2569 or มี.ค. 2569)") from None
    if rest:
        raise CellError("not a month (write 2026-03, 03/2569 or มี.ค. 2569)")
    return d.replace(day=1)


def _month_ok(m: int) -> int:
    if not 1 <= m <= 12:
        raise CellError(f"month {m} does not exist")
    return m


def is_month_first(values: pd.Series) -> bool:
    """True when some day-first-looking value can only be month-first (its second number is over 12)."""
    text = values[values.map(lambda v: isinstance(v, str))].astype(str).map(normalize_text)
    m = text.str.extract(r"^\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*\d{2,4}").dropna().astype(int)
    return bool(len(m)) and bool((m[1] > 12).any()) and not bool((m[0] > 12).any())


def any_clock(values: pd.Series) -> bool:
    """True when some cell of a date column also holds a time of day (``15/03/2569 07:30``, an Excel date-time
    that is not midnight)."""
    for v in values:
        if is_missing(v) or (isinstance(v, dt.date | dt.time) and not isinstance(v, dt.datetime | pd.Timestamp)):
            continue
        if isinstance(v, dt.datetime | pd.Timestamp) or excel_serial(v) is not None:
            if not _date_only(v):
                return True
            continue
        if isinstance(v, str) and re.search(r"\d{1,2}[:.]\d{2}\s*(?:น|[AaPp]\.?\s?[Mm]|$|:)", normalize_text(v)) \
                and not _date_only(v):
            return True
    return False


def only_times(values: pd.Series) -> bool:
    """True when every filled cell of a column is a time of day (``07:30``, an Excel time or day fraction) and at
    least one is filled: a 'เวลา' column beside a date column."""
    filled = [v for v in values if not is_missing(v)]

    def is_time(v: Any) -> bool:
        if isinstance(v, dt.time):
            return True
        if isinstance(v, str):
            return re.fullmatch(_TIME_RE, normalize_text(v)) is not None
        return isinstance(v, float) and 0 <= v < 1

    return bool(filled) and all(is_time(v) for v in filled)
