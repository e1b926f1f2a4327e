"""Cell parsers of the field-input reader (twin.fieldvalues): Excel serial day numbers and Unix time stamps
(the one reader of Unix times, for files and the field-ingest API)."""

from __future__ import annotations

import datetime as dt

import pytest

from twin.fieldvalues import (
    EXCEL_SERIAL_RANGE,
    UNIX_RANGE_S,
    CellError,
    excel_datetime,
    excel_serial,
    parse_datetime,
    parse_time,
    unix_datetime,
    unix_time,
)


@pytest.mark.parametrize(("serial", "local"), [
    (46096, dt.datetime(2026, 3, 15)),
    (46096.3125, dt.datetime(2026, 3, 15, 7, 30)),
    (46096 + 0.6 / 86400, dt.datetime(2026, 3, 15, 0, 0, 1)),       # 0.6 s: whole seconds, rounded
    (46096 + 0.4 / 86400, dt.datetime(2026, 3, 15)),
    (46096.999999, dt.datetime(2026, 3, 16)),                        # 23:59:59.91 rounds into the next day
    (EXCEL_SERIAL_RANGE[0], dt.datetime(1950, 1, 1)),
    (EXCEL_SERIAL_RANGE[1] - 1, dt.datetime(2099, 12, 31)),
])
def test_excel_serials_are_whole_second_local_times(serial: float, local: dt.datetime) -> None:
    got = excel_datetime(serial)
    assert got == local and got.microsecond == 0 and got.tzinfo is None


def test_an_excel_serial_cell_is_read_in_bangkok_time_and_said_as_read() -> None:
    """The warning shows the time read: '46096.000694' is 00:00:59.96, read as 00:01 (it said 00:00)."""
    seen: dict[str, str] = {}
    assert parse_datetime("46096.000694", seen=seen) == dt.datetime(2026, 3, 14, 17, 1, tzinfo=dt.UTC)
    assert seen["excel_serial"] == "46096.000694 as 2026-03-15 00:01"
    # the same half-open range as Unix times: 1950-01-01 read, 2100-01-01 not
    assert excel_serial(EXCEL_SERIAL_RANGE[1] - 0.001) is not None and excel_serial(EXCEL_SERIAL_RANGE[0]) is not None
    assert excel_serial(EXCEL_SERIAL_RANGE[0] - 1) is None and excel_serial(EXCEL_SERIAL_RANGE[1]) is None


@pytest.mark.parametrize("serial", [0, 0.5, 0.999, -1, float("nan")])
def test_a_number_below_1_is_no_excel_date(serial: float) -> None:
    """from_excel gives a time of day (or fails) below 1: refused as a cell error, not a TypeError."""
    with pytest.raises(CellError, match=r"is not an Excel date .* a number below 1 is a time of day"):
        excel_datetime(serial)


def test_a_day_fraction_is_said_as_read() -> None:
    """The warning shows the time returned: 0.000694 of a day is 00:00:59.96, read (rounded) as 00:01."""
    seen: dict[str, str] = {}
    assert parse_time(0.000694, seen) == dt.time(0, 1)
    assert seen["day_fraction"] == "0.000694 as 00:01"


@pytest.mark.parametrize(("stamp", "utc"), [
    (1_796_000_000, "2026-11-30T00:53:20+00:00"),
    (1_796_000_000.25, "2026-11-30T00:53:20.250000+00:00"),             # seconds: the fraction kept
    (1_796_000_000_500, "2026-11-30T00:53:20.500000+00:00"),            # milliseconds, by magnitude
    (1_796_000_000_500.5, "2026-11-30T00:53:20.500500+00:00"),          # fractional milliseconds kept
    (999_999_999, "2001-09-09T01:46:39+00:00"),                         # 9 digits in range: seconds
    (UNIX_RANGE_S[0], "2000-01-01T00:00:00+00:00"),
])
def test_unix_times_in_seconds_or_milliseconds(stamp: float, utc: str) -> None:
    assert unix_datetime(stamp).isoformat() == utc


@pytest.mark.parametrize(("stamp", "says"), [
    (123_456_789, "123456789 as Unix seconds is 1973-11-29 21:33:09 UTC; times are read from 2000-01-01 to before "
                    "2100-01-01 UTC"),
    (1e15, "1000000000000000.0 as Unix milliseconds is past the year 9999; times are read from 2000-01-01 to before "
                    "2100-01-01 UTC"),
    (0, "0 as Unix seconds is 1970-01-01 00:00:00 UTC"),
    (UNIX_RANGE_S[1], "is 2100-01-01 00:00:00 UTC; times are read from 2000-01-01 to before 2100-01-01 UTC"),
    (10**400, "as Unix milliseconds is past the year 9999"),
    (float("nan"), "nan is not a Unix time"),
])
def test_a_unix_time_outside_2000_2100_is_refused_saying_when_it_would_be(stamp: float, says: str) -> None:
    with pytest.raises(CellError) as e:
        unix_datetime(stamp)
    assert says in str(e.value)


def test_a_file_cell_is_a_unix_time_with_10_or_13_digits_and_a_fraction_is_kept(tmp_path) -> None:
    from twin.fieldinput import read_table, validate_frame
    from twin.fieldspecs import InputError

    text = "unit,time,lat,lon\nA,1773531000,7.0046,100.4679\nA,1773531010500.5,7.0047,100.4679\n"
    (tmp_path / "tracker.csv").write_text(text)
    r = read_table(tmp_path / "tracker.csv", "gps_pings")
    assert [t.isoformat() for t in r.frame["ts"]] == ["2026-03-14T23:30:00+00:00",
                                                      "2026-03-14T23:30:10.500500+00:00"]
    assert unix_time(123_456_789) is None and unix_time("46096") is None  # an id, an Excel serial: not Unix times
    row = {"unit": "A", "lat": 7.0046, "lon": 100.4679}
    with pytest.raises(InputError, match=r"row 1, column 'ts'.*0 as Unix seconds is 1970-01-01"):
        validate_frame([{**row, "time": "0000000000"}], "gps_pings")
    with pytest.raises(InputError, match=r"row 1, column 'ts'.*a bare number is not a time"):
        validate_frame([{**row, "time": 123_456_789}], "gps_pings")  # 9 digits in a file: not a Unix time
    with pytest.raises(InputError, match=r"row 1, column 'ts'.*a bare number is not a time"):
        validate_frame([{**row, "time": 1e15}], "gps_pings")
