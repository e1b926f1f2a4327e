"""CompStat tables: incidents in the last 28 days against the previous 28 days and the same period last year.

CompStat (NYPD, 1994) reviews each command's crime counts over short rolling windows. Here a window is
``days`` whole local days (Asia/Bangkok) ending with the day ``as_of`` (inclusive). "Same period last year" is
the window 364 days (52 weeks) earlier, so both windows hold the same weekdays (weekly patterns do not
distort the comparison). Change is ``100 × (current − other) / other``; it is undefined (NaN) when the other
window has no incident, and the tables show the counts so a reader never divides small numbers blindly.
An incident whose group column is blank (a file with no kind or zone on some rows) is counted under
:data:`NOT_GIVEN`, so the ``all`` row and the weekly totals hold every incident of the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from twin.analysis import LOCAL_TZ

YEAR_DAYS = 364  # 52 weeks: same weekdays one year earlier
NOT_GIVEN = "(not given)"  # the group of incidents whose kind, zone ... is blank


def _groups_filled(incidents: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """``incidents`` with blank values of the ``by`` columns (NaN, None, '' or only spaces) replaced by
    :data:`NOT_GIVEN` (groupby drops NaN; an empty string would be a group of its own)."""
    def filled(col: pd.Series) -> pd.Series:
        blank = col.isna() | col.map(lambda v: isinstance(v, str) and not v.strip())
        return col.astype(object).where(~blank, NOT_GIVEN)

    return incidents.assign(**{c: filled(incidents[c]) for c in by})


def windows(as_of: dt.date | str | pd.Timestamp, days: int = 28, tz: str = LOCAL_TZ
            ) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """The three CompStat windows as half-open [start, end) tz-aware local times.

    Parameters
    ----------
    as_of
        The last day of the current window (a local calendar day, inclusive; a tz-aware time stands for its
        day in ``tz``).
    days
        Window length in days (28 by CompStat convention).

    Returns
    -------
    dict
        ``current``, ``previous`` (the ``days`` before it) and ``last_year`` (the current window 364 days earlier).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    day = pd.Timestamp(as_of)
    if day.tzinfo is not None:  # a moment (e.g. now in UTC): its calendar day where the windows are counted
        day = day.tz_convert(tz)
    end = pd.Timestamp(day.date() + dt.timedelta(days=1)).tz_localize(tz)
    d = pd.Timedelta(days=days)
    y = pd.Timedelta(days=YEAR_DAYS)
    return {"current": (end - d, end), "previous": (end - 2 * d, end - d), "last_year": (end - d - y, end - y)}


def _local(ts: pd.Series, tz: str) -> pd.Series:
    t = pd.to_datetime(ts, utc=True)
    return t.dt.tz_convert(tz)


def period_counts(incidents: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, by: Sequence[str],
                  tz: str = LOCAL_TZ) -> pd.Series:
    """Incidents with ``start <= ts < end`` counted by the ``by`` columns (a Series with a (Multi)Index); blank
    group values count under :data:`NOT_GIVEN`."""
    t = _local(incidents["ts"], tz)
    sel = incidents[((t >= start) & (t < end)).to_numpy()]
    if not by:
        return pd.Series({"all": len(sel)})
    return _groups_filled(sel, by).groupby(list(by), observed=True).size()


def compstat(incidents: pd.DataFrame, as_of: dt.date | str | pd.Timestamp, by: Sequence[str] = ("kind",),
             days: int = 28, tz: str = LOCAL_TZ, total: bool = True) -> pd.DataFrame:
    """The CompStat table: counts per group in the current, previous and last-year windows, and change %.

    Parameters
    ----------
    incidents
        One row per incident with ``ts`` (tz-aware, or naive UTC) and the ``by`` columns (e.g. ``kind``,
        ``zone``).
    as_of
        Last day of the current window (local calendar day, inclusive).
    by
        Grouping columns.
    total
        Append a row ``all`` with the totals.

    Returns
    -------
    pandas.DataFrame
        Index: the groups (every group seen in any window). Columns: ``current``, ``previous``,
        ``change_prev_pct``, ``last_year``, ``change_year_pct`` (percent, NaN where the base is 0).
    """
    missing = [c for c in ("ts", *by) if c not in incidents.columns]
    if missing:
        raise ValueError(f"incidents need column(s) {', '.join(missing)}; they have {', '.join(incidents.columns)}")
    w = windows(as_of, days, tz)
    cols = {name: period_counts(incidents, a, b, by, tz) for name, (a, b) in w.items()}
    out = pd.DataFrame(cols).fillna(0).astype(int)
    if total and len(by):
        tot = out.sum()
        key: object = ("all",) * len(by) if len(by) > 1 else "all"
        out.loc[key, :] = tot  # type: ignore[index]
        out = out.astype(int)
    out["change_prev_pct"] = change_pct(out["current"], out["previous"])
    out["change_year_pct"] = change_pct(out["current"], out["last_year"])
    return out[["current", "previous", "change_prev_pct", "last_year", "change_year_pct"]]


def change_pct(current: pd.Series, base: pd.Series) -> pd.Series:
    """``100 × (current − base) / base``, NaN where ``base`` is 0."""
    b = base.astype(float).replace(0.0, np.nan)
    return (100.0 * (current.astype(float) - b) / b).round(1)


def weekly_counts(incidents: pd.DataFrame, as_of: dt.date | str | pd.Timestamp, weeks: int = 60,
                  by: str | None = None, tz: str = LOCAL_TZ) -> pd.DataFrame:
    """Counts per 7-day week ending with ``as_of`` (the last ``weeks`` weeks), one column per ``by`` value.

    The index is each week's first local day; incidents with a blank ``by`` value are the :data:`NOT_GIVEN` column.
    """
    end = windows(as_of, 7, tz)["current"][1]
    start = end - pd.Timedelta(weeks=weeks)
    t = _local(incidents["ts"], tz)
    m = (t >= start) & (t < end)
    week = ((t[m] - start) // pd.Timedelta(weeks=1)).astype(int)
    sel = incidents[m.to_numpy()]
    keys = [week] if by is None else [week, _groups_filled(sel, [by])[by]]
    g = sel.groupby(keys).size()
    tab = g.to_frame("incidents") if by is None else g.unstack(fill_value=0)
    tab = tab.reindex(range(weeks), fill_value=0)
    tab.index = [(start + pd.Timedelta(weeks=int(k))).date() for k in tab.index]
    tab.index.name = "week_of"
    return tab
