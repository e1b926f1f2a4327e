"""Cell parsers of the field-input reader (twin.fieldvalues): Excel serial day numbers and Unix time stamps."""

from __future__ import annotations

import datetime as dt

import pytest

from twin.fieldvalues import EXCEL_SERIAL_RANGE, excel_datetime, excel_serial, parse_datetime


@pytest.mark.parametrize(("serial", "local"), [
    (46096, dt.datetime(2026, 3, 15)),
    (46096.3125, dt.datetime(2026, 3, 15, 7, 30)),
    (46096 + 0.6 / 86400, dt.datetime(2026, 3, 15, 0, 0, 1)),       # 0.6 s: whole seconds, rounded
    (46096 + 0.4 / 86400, dt.datetime(2026, 3, 15)),
    (46096.999999, dt.datetime(2026, 3, 16)),                        # 23:59:59.91 rounds into the next day
    (EXCEL_SERIAL_RANGE[0], dt.datetime(1950, 1, 1)),
    (EXCEL_SERIAL_RANGE[1], dt.datetime(2100, 1, 1)),
])
def test_excel_serials_are_whole_second_local_times(serial: float, local: dt.datetime) -> None:
    got = excel_datetime(serial)
    assert got == local and got.microsecond == 0 and got.tzinfo is None


def test_an_excel_serial_cell_is_read_in_bangkok_time_and_said_as_read() -> None:
    """The warning shows the time read: '46096.000694' is 00:00:59.96, read as 00:01 (it said 00:00)."""
    seen: dict[str, str] = {}
    assert parse_datetime("46096.000694", seen=seen) == dt.datetime(2026, 3, 14, 17, 1, tzinfo=dt.UTC)
    assert seen["excel_serial"] == "46096.000694 as 2026-03-15 00:01"
    assert excel_serial(EXCEL_SERIAL_RANGE[0] - 1) is None and excel_serial(EXCEL_SERIAL_RANGE[1] + 1) is None
