"""Field files into a city's twin (``ssz twin import``): patrol GPS pings, QR box scans, risk points and People
Poll results, read through the one validating reader (:func:`twin.fieldinput.read_table`) and committed as a new
snapshot on top of the latest one.

- ``gps_pings`` -> ``patrol_pings`` and ``patrol_trips``: pings at 0,0 (no fix) never reach the layer; pings that
  would need an impossible speed (``jump``) are kept in ``patrol_pings`` without a trip and never drawn in a trip;
  a unit's pings split into trips at gaps over :data:`TRIP_GAP_S`.
- ``qr_scans`` -> ``checkpoint_scans``: a scan without a position takes its box's position from the twin's
  ``places`` layer; ``valid`` says whether the scan's own GPS was within :data:`SCAN_RADIUS_M` of the box.
- ``risk_points`` -> ``risk_points``; ``survey_results`` -> ``survey_results``.

Points are checked against the city's area (the zone plus :data:`AREA_BUFFER_M` for patrols, the zone for risk
points): outside ones are counted, said and left out; a file with none inside is refused. Every refusal is an
:class:`~twin.fieldspecs.InputError` (file, row, column, what to do).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, Field
from pyproj import Geod

from cluster.config import CityConfig, load_city
from cluster.registry import zone_polygon
from twin.fieldinput import Area, ReadResult, read_table, trip_pings
from twin.fieldspecs import InputError

IMPORT_LAYERS: dict[str, tuple[str, ...]] = {
    "gps_pings": ("patrol_pings", "patrol_trips"), "qr_scans": ("checkpoint_scans",),
    "risk_points": ("risk_points",), "survey_results": ("survey_results",)}
"""Input kind -> the twin layers it adds rows to."""
TRIP_GAP_S = 1800.0
"""A unit's pings more than this many seconds apart belong to two trips."""
SCAN_RADIUS_M = 50.0
"""A QR scan whose GPS is within this distance of its box is ``valid``."""
AREA_BUFFER_M = 5000.0
"""Patrol pings and scans are expected within this distance of the zone."""
MAX_FUTURE_S = 86400.0
"""A ping or scan dated later than now + this is refused (a year typed wrong: 2580 for 2569)."""
_GEOD = Geod(ellps="WGS84")


class ImportResult(BaseModel):
    """What ``ssz twin import`` read and committed."""

    city: str = Field(description="city id")
    kind: str = Field(description="input kind (gps_pings, qr_scans, risk_points, survey_results)")
    source: str = Field(description="the file read")
    rows: int = Field(description="data rows in the file")
    read: int = Field(description="rows read (the rest were left out, each said in warnings)")
    layers: dict[str, int] = Field(description="rows added per twin layer")
    warnings: list[str] = Field(description="what the reader noticed and did (swaps, rows left out ...)")
    snapshot: str | None = Field(default=None, description="the new snapshot's id (None: dry run, or nothing new: "
                                                           "every row was already in the twin)")


def import_area(city: CityConfig, kind: str) -> Area | None:
    """Where points of ``kind`` are expected: the zone (risk points), the zone plus :data:`AREA_BUFFER_M`
    (pings, scans), or nowhere in particular (surveys: no positions)."""
    if kind == "survey_results":
        return None
    wgs, utm = zone_polygon(city)
    if kind == "risk_points":
        return Area(wgs, f"the {city.name} zone")
    from twin.graph import utm_transformers

    wide = shapely.ops.transform(utm_transformers(city.utm_epsg)[1].transform, utm.buffer(AREA_BUFFER_M))
    return Area(wide, f"the {city.name} area ({AREA_BUFFER_M / 1000:g} km around the zone)")


def _records(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as plain Python values (missing -> None) for :meth:`twin.layers.TwinState.append`."""
    out = df[[c for c in columns if c in df]].astype(object)
    return out.where(out.notna(), None).to_dict("records")


def _trips(pings: pd.DataFrame, city: str) -> tuple[pd.Series, list[dict[str, Any]]]:
    """Trip id of every ping (None for jumps) and the trips: per unit, split at gaps over TRIP_GAP_S."""
    trip_of = pd.Series([None] * len(pings), index=pings.index, dtype=object)
    trips: list[dict[str, Any]] = []
    good = trip_pings(pings)
    for unit, g in good.groupby("unit_id", sort=True):
        g = g.sort_values("ts")
        new = g["ts"].diff().dt.total_seconds().fillna(np.inf) > TRIP_GAP_S
        for _, t in g.groupby(new.cumsum()):
            start, end = t["ts"].iloc[0], t["ts"].iloc[-1]
            tid = f"{unit}@{start.tz_convert('Asia/Bangkok'):%Y%m%dT%H%M%S}"
            trip_of[t.index] = tid
            lon, lat = t["lon"].to_numpy(float), t["lat"].to_numpy(float)
            dist = float(_GEOD.line_length(lon, lat)) if len(t) > 1 else 0.0
            trips.append({"trip_id": tid, "unit_id": str(unit), "city": city, "start_ts": start.to_pydatetime(),
                          "end_ts": end.to_pydatetime(), "distance_m": dist, "n_pings": len(t),
                          "path_lon": lon.tolist(), "path_lat": lat.tolist(),
                          "path_ts": [x.to_pydatetime() for x in t["ts"]]})
    return trip_of, trips


def layer_rows(res: ReadResult, city: str, places: pd.DataFrame | None = None) -> dict[str, list[dict[str, Any]]]:
    """The twin rows of one read field file, per layer (see the module docstring).

    Parameters
    ----------
    res
        What :func:`twin.fieldinput.read_table` read.
    city
        City id written into every row.
    places
        The twin's ``places`` layer (``place_id``, ``lon``, ``lat``): positions of the QR boxes.

    Raises
    ------
    InputError
        QR scans without a position whose box is not a known place; risk points without a reported date.
    """
    df = res.frame.copy()
    df["city"] = city
    if res.kind == "gps_pings":  # a ping repeated in the file is one ping of its trip (n_pings, path)
        n = len(df)
        df = df.drop_duplicates(subset=["unit_id", "ts"], keep="first")
        if len(df) < n:
            res.warnings.append(f"{n - len(df)} of {n} patrol_pings rows repeat an earlier row of the file (same "
                                "unit and time): left out")
        df["trip_id"], trips = _trips(df, city)
        return {"patrol_pings": _records(df, ["unit_id", "city", "ts", "trip_id", "speed_mps", "heading_deg",
                                              "accuracy_m", "lon", "lat"]), "patrol_trips": trips}
    if res.kind == "qr_scans":
        return {"checkpoint_scans": _scan_rows(df, res.source, places)}
    if res.kind == "risk_points":
        if "reported_date" not in df or df["reported_date"].isna().any():
            rows = [] if "reported_date" not in df else df.loc[df["reported_date"].isna(), "row"].tolist()
            raise InputError(res.source, "risk points need the date each was reported"
                             + (f" (missing in rows {rows[:5]})" if rows else " (no such column)"),
                             "add a reported_date column (วันที่แจ้ง), e.g. 15/03/2569", column="reported_date",
                             row=rows[0] if rows else None)
        if "status" not in df:
            df["status"] = None
        blank = df["status"].isna()
        if blank.any():  # a point handed in without a status has been reported and not yet fixed: said, per row
            res.warnings.append(f"{int(blank.sum())} of {len(df)} risk points have no status (rows "
                                f"{', '.join(map(str, df.loc[blank, 'row'].head(5)))}"
                                f"{' …' if blank.sum() > 5 else ''}): imported as 'reported' (not yet fixed)")
            df.loc[blank, "status"] = "reported"
        df["risk_id"] = [f"{Path(res.source).stem}-{r}" if pd.isna(v) else str(v)
                         for v, r in zip(df.get("risk_id", pd.Series([None] * len(df))), df["row"], strict=True)]
        return {"risk_points": _records(df, ["risk_id", "city", "kind", "status", "description", "reported_date",
                                             "scheduled_date", "fixed_date", "agency", "lon", "lat"])}
    df["source"] = res.source
    return {"survey_results": _records(df, ["city", "community", "month", "respondents", "fear_of_crime_pct",
                                            "confidence_in_police_pct", "source"])}


def _scan_rows(df: pd.DataFrame, source: str, places: pd.DataFrame | None) -> list[dict[str, Any]]:
    boxes: Mapping[str, tuple[float, float]] = {} if places is None else {
        str(p): (float(x), float(y)) for p, x, y in zip(places["place_id"], places["lon"], places["lat"], strict=True)}
    has = df["lon"].notna().to_numpy() if "lon" in df else np.zeros(len(df), bool)
    lon = df["lon"].to_numpy(float, copy=True) if "lon" in df else np.full(len(df), np.nan)
    lat = df["lat"].to_numpy(float, copy=True) if "lat" in df else np.full(len(df), np.nan)
    valid: list[bool | None] = []
    for i, box in enumerate(df["checkpoint_id"].astype(str)):
        at = boxes.get(box)
        if not has[i]:
            if at is None:
                raise InputError(source, f"scan of box {box!r} has no position and the box is not a place of "
                                 "the twin", "add lon/lat to the scans, or build the twin (ssz twin build) so "
                                 "the QR boxes are known", row=int(df["row"].iloc[i]), column="checkpoint_id")
            lon[i], lat[i] = at
            valid.append(None)  # no GPS of the scan itself: its nearness cannot be checked
        else:
            valid.append(None if at is None else bool(_GEOD.inv(lon[i], lat[i], *at)[2] <= SCAN_RADIUS_M))
    df = df.assign(lon=lon, lat=lat, valid=valid)
    stamp = df["ts"].dt.tz_convert("Asia/Bangkok").dt.strftime("%Y%m%dT%H%M%S")
    df["scan_id"] = df["checkpoint_id"].astype(str) + "@" + stamp + "@" + df["unit_id"].astype(str)
    return _records(df, ["scan_id", "checkpoint_id", "unit_id", "officer_id", "city", "ts", "valid", "lon", "lat"])


UPDATED_BY_IMPORT = frozenset({"risk_points", "survey_results"})
"""Layers whose rows a later file updates (a risk point fixed, a poll corrected): a row of the file whose key is
already in the twin replaces it. In the other layers (observations: pings, trips, scans) it is left out."""
_KEY_NAMES = {"patrol_pings": "unit and time", "patrol_trips": "trip id", "checkpoint_scans": "box, unit and time",
              "risk_points": "risk id", "survey_results": "community and month"}


def _key_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp | dt.datetime):
        return pd.Timestamp(v).value // 1_000_000  # UTC milliseconds, as the twin keeps times
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def _longer_trips(old: Any, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Keys of the trips of ``rows`` (already in the twin's ``patrol_trips`` table ``old``) that hold more pings than
    the twin's: a morning export imported first, then the whole day's, whose first trip goes on past the morning."""
    there = dict(zip(old["trip_id"].to_pylist(), old["n_pings"].to_pylist(), strict=True))
    return {(r["trip_id"],) for r in rows if int(r["n_pings"]) > int(there.get(r["trip_id"]) or 0)}


def _only_new(st: Any, layer: str, rows: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    """``rows`` without repeats inside the file and, for observation layers, without rows whose key is already
    in the twin (a file imported twice adds nothing); for :data:`UPDATED_BY_IMPORT` layers the twin's rows with
    those keys are removed so the file's rows replace them; a trip already in the twin is replaced by the file's when
    the file's holds more pings (:func:`_longer_trips`). Every row left out or replaced is said."""
    import pyarrow as pa

    from twin.schemas import KEYS

    keys = KEYS[layer]
    what = _KEY_NAMES.get(layer, ", ".join(keys))

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(_key_value(r.get(k)) for k in keys)

    seen: set[tuple[Any, ...]] = set()
    unique = []
    for r in rows:
        k = key(r)
        if k not in seen:
            seen.add(k)
            unique.append(r)
    if len(unique) < len(rows):
        warnings.append(f"{len(rows) - len(unique)} of {len(rows)} {layer} rows repeat an earlier row of the file "
                        f"(same {what}): left out")
    old = st.table(layer)
    if not old.num_rows or not unique:
        return unique
    old_keys = [tuple(_key_value(v) for v in t) for t in zip(*(old[k].to_pylist() for k in keys), strict=True)]
    there = set(old_keys)
    dup = [r for r in unique if key(r) in there]
    if not dup:
        return unique
    if layer == "patrol_trips":  # a later export of the same trip (same unit and start) holding more of it
        longer = _longer_trips(old, dup)
        if longer:
            st.replace(layer, old.filter(pa.array([k not in longer for k in old_keys], pa.bool_())))
            warnings.append(f"{len(longer)} patrol_trips already in the twin are longer in the file (same trip id, "
                            "more pings): the file's trips replace them")
        return [r for r in unique if key(r) not in there or key(r) in longer]
    if layer in UPDATED_BY_IMPORT:
        mine = {key(r) for r in dup}
        st.replace(layer, old.filter(pa.array([k not in mine for k in old_keys], pa.bool_())))
        warnings.append(f"{len(dup)} of {len(unique)} {layer} rows were already in the twin (same {what}): the "
                        "file's rows replace them")
        return unique
    warnings.append(f"{len(dup)} of {len(unique)} {layer} rows are already in the twin (same {what}; the file "
                    "or part of it was imported before): left out")
    return [r for r in unique if key(r) not in there]


def read_import_file(city: CityConfig, kind: str, path: str | Path, *, sheet: str | int | None = None) -> ReadResult:
    """A field file read and checked as :func:`import_file` reads it: points outside :func:`import_area` left out
    (counted), metric ``x``/``y`` columns taken in the city's UTM zone (``city.utm_epsg``), device times more than
    :data:`MAX_FUTURE_S` ahead refused.

    Raises
    ------
    InputError
        The file, row, column, what is wrong and what to do.
    """
    return read_table(path, kind, sheet=sheet, area=import_area(city, kind), outside="drop", epsg=city.utm_epsg,
                      max_future_s=MAX_FUTURE_S if kind in ("gps_pings", "qr_scans") else None)


def import_file(city: str | CityConfig, kind: str, path: str | Path, *, store: Any, sheet: str | int | None = None,
                message: str = "", dry_run: bool = False, read: ReadResult | None = None) -> ImportResult:
    """Read a field file and commit its rows to the city's twin as a new snapshot (on top of the latest).

    ``read`` is the file already read by :func:`read_import_file` (the command line reads it before it opens the
    object store, so a faulty file is reported even when the store is down); ``dry_run`` commits nothing.

    Raises
    ------
    InputError
        The file cannot be read or its rows refused (file, row, column, what to do).
    twin.layers.LayerError
        Rows the layer refuses (nothing is committed then).
    """
    from twin.layers import LayerError, TwinState
    from twin.snapshots import SnapshotStore

    if kind not in IMPORT_LAYERS:
        raise InputError(str(path), f"{kind!r} cannot be imported into the twin",
                         f"use one of {', '.join(IMPORT_LAYERS)}")
    cfg = city if isinstance(city, CityConfig) else load_city(city)
    res = read if read is not None else read_import_file(cfg, kind, path, sheet=sheet)
    snaps = SnapshotStore(store, cfg.id)
    head = snaps.latest()
    st = snaps.open(head.id).state() if head else TwinState(cfg.id)
    places = st.table("places").to_pandas() if kind == "qr_scans" and st.counts().get("places") else None
    added: dict[str, int] = {}
    replaced = False
    for layer, rows in layer_rows(res, cfg.id, places).items():
        before = st.counts().get(layer, 0)
        rows = _only_new(st, layer, rows, res.warnings)
        replaced |= st.counts().get(layer, 0) < before
        try:
            added[layer] = st.append(layer, rows, strict=True).accepted if rows else 0
        except LayerError as e:
            if layer == "patrol_trips":  # derived rows: no file row to point at
                raise
            bad = e.rejections[0]  # layer rows follow the read rows: name the file's row
            here = [r for r in e.rejections if r.row == bad.row]
            others = len({r.row for r in e.rejections}) - 1
            raise InputError(res.source, "; ".join(f"{r.reason} (got {r.value!r})" for r in here)
                             + f" for the twin's {layer} layer"
                             + (f" ({others} other row(s) have faults too)" if others else ""),
                             f"fill in {', '.join(dict.fromkeys(r.field for r in here))} and import again",
                             row=int(res.frame["row"].iloc[bad.row]), column=bad.field) from e
    snap = None
    if not any(added.values()) and not replaced:
        res.warnings.append("nothing new: every row of the file is already in the twin; no snapshot was made")
    elif not dry_run:
        m = snaps.create(st, message=message or f"import {kind} from {res.source}", author="ssz twin import",
                         expect_parent=head.id if head else "")
        snap = m.id
    return ImportResult(city=cfg.id, kind=kind, source=res.source, rows=res.counts.get("rows", len(res.frame)),
                        read=len(res.frame), layers=added, warnings=res.warnings, snapshot=snap)
