"""Patrol dwell at hot spots (against the Koper window) and QR round compliance, from field records.

Dwell: Koper (1995, Justice Quarterly 12(4)) found that police presence at a hot spot deters longest when a
stop lasts about 10-16 minutes (shorter stops deter little; past ~15 minutes returns diminish), the window
used by hot-spot patrol programmes since. A *visit* is a run of a unit's consecutive GPS pings within
``radius_m`` of a hot spot, with no gap over ``max_gap_s``; its dwell is the time from the first to the last
ping of the run (distances on the WGS84 ellipsoid with ``pyproj.Geod``). Runs shorter than ``min_stop_min``
are a unit driving past, not a stop, and are left out. Flagged GPS jumps
(:func:`twin.fieldinput.flag_jumps`) should be removed first (:func:`twin.fieldinput.trip_pings`).

QR rounds: each planned check (unit, checkpoint, due time) is matched to the earliest unused scan of that
checkpoint by that unit between ``due − grace`` and ``due + late_max``: ``on_time`` within ``grace`` minutes,
``late`` after that, ``missed`` when there is no such scan. A scan of the checkpoint by another unit in the
same window is noted (``by_other_unit``) but does not count for the planned unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from twin.fieldinput import NULL_ISLAND_DEG

KOPER_WINDOW_MIN = (10.0, 16.0)


def _verdict(minutes: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    return np.where(minutes < lo, "short", np.where(minutes <= hi, "koper", "long"))


def visits(pings: pd.DataFrame, spots: pd.DataFrame, radius_m: float = 50.0, max_gap_s: float = 180.0,
           window: tuple[float, float] = KOPER_WINDOW_MIN, min_stop_min: float = 2.0) -> pd.DataFrame:
    """Visits of patrol units to hot spots, with their dwell time.

    Parameters
    ----------
    pings
        ``unit_id``, ``ts`` (tz-aware or naive UTC), ``lon``, ``lat``; a ``jump`` column, if present, drops
        flagged pings; pings with no position (NaN lon/lat, or 0,0) are left out.
    spots
        ``spot_id``, ``lon``, ``lat`` of the hot spots.
    radius_m
        A ping within this distance (metres) of a spot is "at" it.
    max_gap_s
        A longer gap between two pings at the spot splits the visit.
    window
        The dwell window in minutes (Koper's 10-16).
    min_stop_min
        Shorter runs (driving past the spot) are not visits.

    Returns
    -------
    pandas.DataFrame
        One row per visit: ``unit_id``, ``spot_id``, ``start``, ``end``, ``pings``, ``dwell_min`` (minutes),
        ``verdict`` (``short`` < window, ``koper`` inside it, ``long`` beyond it).
    """
    from pyproj import Geod

    cols = ["unit_id", "spot_id", "start", "end", "pings", "dwell_min", "verdict"]
    p = pings[~pings["jump"].astype(bool)] if "jump" in pings else pings
    lon_, lat_ = pd.to_numeric(p["lon"]).to_numpy(float), pd.to_numeric(p["lat"]).to_numpy(float)
    # a fix with no position (NaN, or a receiver's 0,0) says nothing of where the unit was: dropped, so it
    # does not cut a stay in two (the time gap it leaves is judged by max_gap_s like any other)
    zero = (np.abs(lon_) < NULL_ISLAND_DEG) & (np.abs(lat_) < NULL_ISLAND_DEG)
    p = p[np.isfinite(lon_) & np.isfinite(lat_) & ~zero]
    p = p.assign(ts=pd.to_datetime(p["ts"], utc=True)).sort_values(["unit_id", "ts"], kind="stable")
    geod = Geod(ellps="WGS84")
    rows = []
    lon, lat = p["lon"].to_numpy(float), p["lat"].to_numpy(float)
    units = p["unit_id"].to_numpy()
    ts = p["ts"].to_numpy()
    tsec = (p["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    for s in spots.itertuples(index=False):
        d = geod.inv(lon, lat, np.full(len(lon), float(s.lon)), np.full(len(lat), float(s.lat)))[2]
        near = d <= radius_m
        i = 0
        while i < len(near):
            if not near[i]:
                i += 1
                continue
            j = i
            while (j + 1 < len(near) and near[j + 1] and units[j + 1] == units[i]
                   and tsec[j + 1] - tsec[j] <= max_gap_s):
                j += 1
            if (tsec[j] - tsec[i]) / 60.0 >= min_stop_min:
                rows.append((units[i], s.spot_id, ts[i], ts[j], j - i + 1, (tsec[j] - tsec[i]) / 60.0))
            i = j + 1
    out = pd.DataFrame(rows, columns=cols[:-1])
    out["start"] = pd.to_datetime(out["start"], utc=True)
    out["end"] = pd.to_datetime(out["end"], utc=True)
    out["verdict"] = _verdict(out["dwell_min"].to_numpy(float), window)
    return out.sort_values(["start", "unit_id"], kind="stable").reset_index(drop=True)[cols]


def dwell_summary(v: pd.DataFrame, by: str = "spot_id") -> pd.DataFrame:
    """Per hot spot (or unit): visits, median and total dwell (minutes), and the share of visits short / in
    the Koper window / long (0..1)."""
    g = v.groupby(by)
    out = pd.DataFrame({"visits": g.size(), "median_min": g["dwell_min"].median().round(1),
                        "total_min": g["dwell_min"].sum().round(1)})
    for verdict in ("short", "koper", "long"):
        out[f"share_{verdict}"] = g["verdict"].apply(lambda s, k=verdict: float((s == k).mean())).round(3)
    return out


def qr_compliance(planned: pd.DataFrame, scans: pd.DataFrame, grace_min: float = 10.0,
                  late_max_min: float = 60.0) -> pd.DataFrame:
    """Each planned QR check with its status.

    Parameters
    ----------
    planned
        ``unit_id``, ``checkpoint_id``, ``due`` (tz-aware or naive UTC): the round plan.
    scans
        ``unit_id``, ``checkpoint_id``, ``ts``: the QR scans received (``valid == False`` rows, scans whose GPS
        was not at the box, are ignored). A scan listed twice (same ``scan_id``, or without that column the
        same unit, checkpoint and ``ts``; e.g. from overlapping export files) counts once.
    grace_min
        A scan up to this many minutes before or after ``due`` is on time.
    late_max_min
        A scan later than this after ``due`` does not count for this check.

    Returns
    -------
    pandas.DataFrame
        ``planned`` plus ``status`` (``on_time`` / ``late`` / ``missed``), ``scan_ts``, ``delay_min`` and
        ``by_other_unit`` (another unit scanned the box in the window).
    """
    sc = scans[scans["valid"].astype(bool)] if "valid" in scans else scans
    # own row numbers: scans concatenated from several files repeat index labels, and a used scan is a label;
    # a scan in two overlapping files is one scan (scan_id is the checkpoint_scans key)
    sc = sc.assign(ts=pd.to_datetime(sc["ts"], utc=True))
    sc = sc.drop_duplicates("scan_id" if "scan_id" in sc else ["unit_id", "checkpoint_id", "ts"])
    sc = sc.sort_values("ts", kind="stable").reset_index(drop=True)
    pl = planned.assign(due=pd.to_datetime(planned["due"], utc=True)).sort_values("due", kind="stable")
    used: set[int] = set()
    status, when, delay, other = [], [], [], []
    by_box = {k: g for k, g in sc.groupby("checkpoint_id")}
    for r in pl.itertuples():
        g = by_box.get(r.checkpoint_id)
        lo, hi = r.due - pd.Timedelta(minutes=grace_min), r.due + pd.Timedelta(minutes=late_max_min)
        hit = None
        oth = False
        if g is not None:
            win = g[(g["ts"] >= lo) & (g["ts"] <= hi)]
            mine = win[(win["unit_id"] == r.unit_id) & ~win.index.isin(list(used))]
            oth = bool((win["unit_id"] != r.unit_id).any())
            if len(mine):
                hit = mine.index[0]
        if hit is None:
            status.append("missed")
            when.append(pd.NaT)
            delay.append(np.nan)
        else:
            used.add(hit)
            d = (sc.at[hit, "ts"] - r.due).total_seconds() / 60.0
            status.append("on_time" if d <= grace_min else "late")
            when.append(sc.at[hit, "ts"])
            delay.append(round(d, 1))
        other.append(oth)
    out = pl.assign(status=status, scan_ts=pd.to_datetime(pd.Series(when, index=pl.index), utc=True),
                    delay_min=delay, by_other_unit=other)
    return out.sort_index()


def compliance_table(checks: pd.DataFrame, by: str | Sequence[str] = "checkpoint_id") -> pd.DataFrame:
    """Counts of on-time, late and missed checks per ``by`` (checkpoint or unit), with the share kept on time."""
    tab = pd.crosstab([checks[c] for c in ([by] if isinstance(by, str) else by)], checks["status"])
    tab = tab.reindex(columns=["on_time", "late", "missed"], fill_value=0)
    tab["planned"] = tab.sum(axis=1)
    tab["on_time_share"] = (tab["on_time"] / tab["planned"]).round(3)
    return tab
