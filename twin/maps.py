"""kepler.gl maps of the twin: cameras with their coverage, alerts, patrol trips, risk points, incident density.

Each builder turns one layer (a pandas DataFrame with the columns of :mod:`twin.schemas`) into a
:class:`MapPart`: the datasets it needs and the kepler.gl layer (and filter) configs that draw them. A
:class:`TwinMap` gathers parts and gives

- :meth:`TwinMap.widget`: the Jupyter widget (``keplergl.KeplerGl(data=..., config=...)``);
- :meth:`TwinMap.to_html`: a self-contained HTML file that renders with **no internet**
  (:mod:`twin.kepler_offline` inlines the JavaScript bundle that ships in the keplergl wheel).

Base map: kepler.gl's base maps (Carto, Mapbox) are vector tiles from the internet. By default the maps
here use kepler.gl's ``no_map`` style, so the data layers draw on a plain background offline; pass
``streets=`` (the street graph) to draw the zone's streets from the twin itself, which works offline and
is usually the better base map for a Safety Zone. Online users may pass ``basemap="dark"``, ``"light"``
or ``"voyager"`` (Carto styles, no token needed).

Times are shown in the zone's local time (``Asia/Bangkok`` by default) as ``YYYY-MM-DD HH:MM:SS``
strings, which kepler.gl recognises as timestamps for its time filter (the time slider).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

from twin.kepler_offline import save_offline_html

BASEMAPS: dict[str, str] = {"none": "no_map", "dark": "dark-matter", "light": "positron", "voyager": "voyager"}
LOCAL_TZ = "Asia/Bangkok"
_WGS84 = Geod(ellps="WGS84")

OWNER_COLORS = {"police": "#1F77FF", "government": "#2CA02C", "private": "#FFB000"}
CAMERA_KIND_COLORS = {"cctv": "#1F77FF", "plate": "#00D0D0", "mobile": "#B05CFF"}
ALERT_KIND_COLORS = {"face": "#FF2D2D", "plate": "#FF8C00", "sos": "#FF00D4", "camera-offline": "#9E9E9E",
                     "citizen-report": "#00C853", "loitering": "#FFEB3B", "intrusion": "#8D6E63",
                     "other": "#FFFFFF"}
ALERT_STATUS_COLORS = {"new": "#FF2D2D", "acknowledged": "#FF9A3B", "confirmed": "#FFD400", "dismissed": "#7F7F7F"}
RISK_KIND_COLORS = {"lighting": "#FFE600", "vegetation": "#3DDC84", "abandoned": "#C77DFF", "other": "#E0E0E0"}
RISK_STATUS_COLORS = {"reported": "#FF3B30", "scheduled": "#FF9500", "fixed": "#34C759"}
DENSITY_COLORS = ["#5A1846", "#900C3F", "#C70039", "#E3611C", "#F1920E", "#FFC300"]
TRIP_COLORS = ["#00E5FF", "#FF4081", "#76FF03", "#FFD740", "#E040FB", "#FF6E40", "#18FFFF", "#B2FF59"]
PLACE_KIND_COLORS = {"qr": "#E53935", "sos": "#FF00D4", "police_station": "#1F77FF", "tourist_police": "#1F77FF",
                     "school": "#FFD54F", "market": "#FFB74D", "gold_shop": "#FFD700", "bank": "#4DD0E1",
                     "bar": "#BA68C8", "railway_station": "#FFFFFF", "bus_stop": "#B0BEC5"}
STREET_COLOR = "#5B6B7F"
ZONE_COLOR = "#FF6F00"


class MapInputError(ValueError):
    """A layer frame given to a map builder lacks columns or holds unusable values; the message says which."""


def hex_rgb(color: str) -> list[int]:
    """``"#RRGGBB"`` as ``[r, g, b]`` (kepler.gl's colour format in layer configs)."""
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} is not #RRGGBB")
    return [int(c[i:i + 2], 16) for i in (0, 2, 4)]


def _uid(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:8]


def _require(df: pd.DataFrame, layer: str, cols: Sequence[str], aliases: Mapping[str, str] | None = None,
             drop_unplaced: bool = False) -> pd.DataFrame:
    """The frame with alias columns renamed (registry ``id`` -> ``camera_id``) and required columns checked.

    ``drop_unplaced`` drops rows without a position (nullable lon/lat, e.g. alerts) instead of rejecting them.
    """
    if not isinstance(df, pd.DataFrame):
        raise MapInputError(f"{layer}: expected a pandas DataFrame, got {type(df).__name__} "
                            "(convert an Arrow table with .to_pandas())")
    df = df.copy()
    for alias, name in (aliases or {}).items():
        if name not in df.columns and alias in df.columns:
            df = df.rename(columns={alias: name})
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise MapInputError(f"{layer}: missing column(s) {', '.join(missing)}; the frame has "
                            f"{', '.join(map(str, df.columns))} (see twin.schemas for the layer's columns)")
    if drop_unplaced:
        df = df[df["lon"].notna() & df["lat"].notna()]
    for c in ("lon", "lat"):
        if c in cols:
            v = pd.to_numeric(df[c], errors="coerce")
            bad = v.isna() | ~v.between(-180 if c == "lon" else -90, 180 if c == "lon" else 90)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise MapInputError(f"{layer}: row {i} has no valid WGS84 {c} ({df[c].iloc[i]!r}); "
                                    "drop rows without a position or snap them first")
            df[c] = v.astype(float)
    return df


def local_time_strings(ts: pd.Series, tz: str = LOCAL_TZ) -> pd.Series:
    """Timestamps (naive = UTC) as local ``YYYY-MM-DD HH:MM:SS`` strings, which kepler.gl reads as time."""
    t = pd.to_datetime(ts, utc=True)
    return t.dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M:%S")


def _ordinal_color_range(name: str, colors: Mapping[str, str], values: Iterable[Any]) -> dict[str, Any]:
    """A kepler.gl ``customOrdinal`` colour range that pins each category value to its colour."""
    present = [str(v) for v in dict.fromkeys(values) if v is not None and not (isinstance(v, float) and
                                                                                math.isnan(v))]
    spare = iter(TRIP_COLORS)
    cmap = [[v, colors.get(v) or next(spare, "#FFFFFF")] for v in present] or [["-", "#FFFFFF"]]
    return {"name": f"ssz.{name}", "type": "customOrdinal", "category": "Custom",
            "colors": [c for _, c in cmap], "colorMap": cmap}


def _sequential_range(name: str, colors: Sequence[str]) -> dict[str, Any]:
    return {"name": name, "type": "sequential", "category": "Uber", "colors": list(colors)}


def _layer(layer_type: str, data_id: str, label: str, columns: dict[str, str], color: str,
           vis: dict[str, Any], color_field: tuple[str, str] | None = None,
           color_range: dict[str, Any] | None = None, stroke_color: str | None = None,
           visible: bool = True) -> dict[str, Any]:
    """One kepler.gl (v1 config) layer."""
    vis = dict(vis)
    if color_range is not None:
        vis["colorRange"] = color_range
    cfg: dict[str, Any] = {
        "dataId": data_id, "label": label, "color": hex_rgb(color), "columns": columns,
        "isVisible": visible, "visConfig": vis, "hidden": False,
    }
    if stroke_color is not None:
        cfg["strokeColor"] = hex_rgb(stroke_color)
    channels: dict[str, Any] = {"colorField": None, "colorScale": "quantile", "sizeField": None,
                                "sizeScale": "linear"}
    if color_field is not None:
        channels["colorField"] = {"name": color_field[0], "type": color_field[1]}
        channels["colorScale"] = "customOrdinal" if color_field[1] == "string" else "quantize"
    return {"id": f"{data_id}-{layer_type}-{_uid(data_id, label, layer_type)}", "type": layer_type,
            "config": cfg, "visualChannels": channels}


@dataclass
class MapPart:
    """What one layer adds to a map: datasets (name -> frame or GeoJSON), layer configs, filters, tooltips."""

    datasets: dict[str, Any]
    layers: list[dict[str, Any]]
    filters: list[dict[str, Any]] = field(default_factory=list)
    tooltips: dict[str, list[str]] = field(default_factory=dict)
    time_range_s: tuple[float, float] | None = None


# --------------------------------------------------------------------------------------------- geometry
def coverage_wedges(lon: np.ndarray, lat: np.ndarray, heading_deg: np.ndarray, fov_deg: np.ndarray,
                    range_m: np.ndarray, arc_points: int = 13, max_step_deg: float = 3.0) -> list[shapely.Polygon]:
    """Field-of-view sectors (WGS84 polygons): apex at the camera, arc at ``range_m`` across ``fov_deg``.

    The arc is computed on the WGS84 ellipsoid (``pyproj.Geod.fwd``, vectorised for all cameras), so the
    wedge is right anywhere without choosing a projection. A field of view of 360° gives a disc. The arc
    has at least ``arc_points`` vertices and no step wider than ``max_step_deg`` (areas within ~0.1%).
    """
    lon, lat, hd, fov, rng = (np.asarray(a, dtype=float) for a in (lon, lat, heading_deg, fov_deg, range_m))
    n = len(lon)
    if not (len(lat) == len(hd) == len(fov) == len(rng) == n):
        raise MapInputError("coverage_wedges: lon, lat, heading, fov and range must have the same length")
    if n == 0:
        return []
    if np.any(~np.isfinite(hd)) or np.any(~np.isfinite(fov)) or np.any(~np.isfinite(rng)):
        raise MapInputError("coverage_wedges: heading_deg, fov_deg and range_m must all be finite numbers")
    if np.any(rng <= 0) or np.any(fov <= 0):
        raise MapInputError("coverage_wedges: range_m and fov_deg must be > 0")
    fov = np.minimum(fov, 360.0)
    arc_points = max(arc_points, math.ceil(float(fov.max()) / max_step_deg) + 1)
    steps = np.linspace(-0.5, 0.5, arc_points)
    az = (hd[:, None] + fov[:, None] * steps[None, :]) % 360.0
    az = np.where(az > 180.0, az - 360.0, az)
    lons = np.repeat(lon, arc_points)
    lats = np.repeat(lat, arc_points)
    ex, ey, _ = _WGS84.fwd(lons, lats, az.ravel(), np.repeat(rng, arc_points))
    ex = np.asarray(ex).reshape(n, arc_points)
    ey = np.asarray(ey).reshape(n, arc_points)
    polys = []
    for i in range(n):
        arc = list(zip(ex[i], ey[i], strict=True))
        ring = arc if fov[i] >= 360.0 else [(lon[i], lat[i]), *arc, (lon[i], lat[i])]
        polys.append(shapely.Polygon(ring))
    return polys


def _feature_collection(geoms: Sequence[shapely.Geometry], props: pd.DataFrame) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of geometries with one property row each (JSON-safe values)."""
    clean = props.astype(object).where(props.notna(), None)
    records = clean.to_dict(orient="records")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": _json_safe(r)}
        for g, r in zip(geoms, records, strict=True)]}


def _json_safe(r: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in r.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, pd.Timestamp | np.datetime64):
            v = str(v)
        out[str(k)] = v
    return out


# --------------------------------------------------------------------------------------------- builders
CameraColorBy = Literal["owner", "kind"]


def cameras(df: pd.DataFrame, *, coverage: bool = True, color_by: CameraColorBy = "owner",
            name: str = "cameras") -> MapPart:
    """Cameras as points plus their coverage as field-of-view wedges (a camera sees a sector, not a circle).

    Needs ``camera_id`` (or the registry's ``id``), ``lon``, ``lat``, ``heading_deg``, ``fov_deg``,
    ``range_m`` and the ``color_by`` column (``owner``: police/government/private, or ``kind``).
    """
    df = _require(df, name, ["camera_id", "lon", "lat", "heading_deg", "fov_deg", "range_m", color_by],
                  {"id": "camera_id"})
    palette = OWNER_COLORS if color_by == "owner" else CAMERA_KIND_COLORS
    keep = [c for c in ("camera_id", "kind", "owner", "mount", "mobile_kind", "in_zone", "online", "lon", "lat",
                        "heading_deg", "fov_deg", "range_m") if c in df.columns]
    points = df[keep].reset_index(drop=True)
    crange = _ordinal_color_range(f"cameras.{color_by}", palette, sorted(points[color_by].astype(str).unique()))
    layers = [_layer("point", name, "Cameras", {"lat": "lat", "lng": "lon"}, "#1F77FF",
                     {"radius": 3, "opacity": 1.0, "filled": True, "outline": False, "thickness": 1},
                     color_field=(color_by, "string"), color_range=crange)]
    datasets: dict[str, Any] = {name: points}
    if coverage:
        wedges = coverage_wedges(points["lon"], points["lat"], points["heading_deg"], points["fov_deg"],
                                 points["range_m"])
        props = points[[c for c in ("camera_id", "kind", "owner", "heading_deg", "fov_deg", "range_m")
                        if c in points.columns]]
        cov = f"{name}_coverage"
        datasets[cov] = _feature_collection(wedges, props)
        layers.insert(0, _layer("geojson", cov, "Camera coverage", {"geojson": "_geojson"}, "#1F77FF",
                                {"opacity": 0.35, "strokeOpacity": 0.9, "thickness": 0.3, "filled": True,
                                 "stroked": True, "enable3d": False, "wireframe": False},
                                color_field=(color_by, "string"), color_range=crange, stroke_color="#1F77FF"))
    return MapPart(datasets=datasets, layers=layers,
                   tooltips={name: [c for c in ("camera_id", "kind", "owner", "fov_deg", "range_m")
                                    if c in points.columns]})


def _time_filter(data_id: str, field_name: str, label_ts: pd.Series, enlarged: bool = True) -> dict[str, Any]:
    """A kepler.gl time-range filter (the time slider) over a local-time string column."""
    t = pd.to_datetime(label_ts)  # naive local clock time, which kepler.gl parses as such
    lo, hi = int(t.min().timestamp() * 1000), int(t.max().timestamp() * 1000)
    return {"dataId": [data_id], "id": f"time-{data_id}-{_uid(data_id, field_name)}", "name": [field_name],
            "type": "timeRange", "value": [lo, hi], "enlarged": enlarged, "plotType": {"type": "histogram"},
            "animationWindow": "free", "yAxis": None, "view": "enlarged" if enlarged else "side", "speed": 1}


def _with_local_time(df: pd.DataFrame, col: str, tz: str, layer: str) -> pd.DataFrame:
    try:
        df[col] = local_time_strings(df[col], tz)
    except (ValueError, TypeError) as e:
        raise MapInputError(f"{layer}: column {col!r} is not a timestamp column ({e})") from e
    return df


def alerts(df: pd.DataFrame, *, color_by: Literal["kind", "status"] = "kind", time_filter: bool = True,
           slider_open: bool = False, tz: str = LOCAL_TZ, name: str = "alerts") -> MapPart:
    """Alerts as points coloured by kind (face, plate, sos, ...) or status (new/confirmed/dismissed).

    Needs ``alert_id``, ``ts``, ``kind``, ``status``, ``lon``, ``lat`` (alerts without a position are
    dropped: give them their camera's position first). With ``time_filter`` the map gets a time slider
    (in the side panel's filters; ``slider_open`` shows it enlarged at the bottom of the map).
    """
    df = _require(df, name, ["alert_id", "ts", "kind", "status", "lon", "lat"], drop_unplaced=True)
    keep = [c for c in ("alert_id", "ts", "kind", "status", "camera_id", "subject_id", "score", "status_by",
                        "lon", "lat") if c in df.columns]
    pts = _with_local_time(df[keep].reset_index(drop=True), "ts", tz, name)
    palette = ALERT_KIND_COLORS if color_by == "kind" else ALERT_STATUS_COLORS
    crange = _ordinal_color_range(f"alerts.{color_by}", palette, sorted(pts[color_by].astype(str).unique()))
    layer = _layer("point", name, f"Alerts by {color_by}", {"lat": "lat", "lng": "lon"}, "#FF2D2D",
                   {"radius": 6, "opacity": 1.0, "filled": True, "outline": True, "thickness": 1},
                   color_field=(color_by, "string"), color_range=crange, stroke_color="#000000")
    filters = [_time_filter(name, "ts", pts["ts"], slider_open)] if time_filter and len(pts) else []
    return MapPart(datasets={name: pts}, layers=[layer], filters=filters,
                   tooltips={name: [c for c in ("alert_id", "ts", "kind", "status", "camera_id", "score")
                                    if c in pts.columns]})


def trips_geojson(pings: pd.DataFrame, *, altitude: float = 0.0, min_points: int = 2, tz: str | None = LOCAL_TZ
                  ) -> dict[str, Any]:
    """Patrol GPS pings as kepler.gl trips: one GeoJSON LineString per (unit, trip) with
    ``[lon, lat, altitude, unix_seconds]`` vertices in time order (the coordinates a Trip layer animates).

    kepler.gl shows trip times as UTC clock times; with ``tz`` (default the zone's local time) the seconds
    count from 1970-01-01 in that zone's wall clock, so the time bar reads local time like the time filter
    of the other layers. ``tz=None`` keeps true Unix seconds.

    Needs ``unit_id``, ``ts``, ``lon``, ``lat``; ``trip_id`` when present splits a unit's day into trips.
    """
    df = _require(pings, "patrol_pings", ["unit_id", "ts", "lon", "lat"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    keys = ["unit_id", "trip_id"] if "trip_id" in df.columns else ["unit_id"]
    if "trip_id" in df.columns:
        df["trip_id"] = df["trip_id"].fillna(df["unit_id"].astype(str))
    feats = []
    for key, g in df.sort_values([*keys, "ts"]).groupby(keys, sort=True):
        if len(g) < min_points:
            continue
        clock = g["ts"] if tz is None else g["ts"].dt.tz_convert(tz).dt.tz_localize(None).dt.tz_localize("UTC")
        ts = (clock - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
        coords = [[float(x), float(y), float(altitude), float(t)]
                  for x, y, t in zip(g["lon"].to_numpy(), g["lat"].to_numpy(), ts, strict=True)]
        key = key if isinstance(key, tuple) else (key,)
        props = {"unit_id": str(key[0]), "trip_id": str(key[-1]), "pings": len(g),
                 "start": str(g["ts"].iloc[0]), "end": str(g["ts"].iloc[-1])}
        feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
                      "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def trips_from_table(trips: pd.DataFrame) -> dict[str, Any]:
    """The ``patrol_trips`` layer (``path_lon``/``path_lat``/``path_ts`` lists) as kepler.gl trip GeoJSON."""
    df = _require(trips, "patrol_trips", ["trip_id", "unit_id", "path_lon", "path_lat", "path_ts"])
    rows = []
    for r in df.itertuples(index=False):
        ts = pd.to_datetime(pd.Series(list(r.path_ts)), utc=True)
        rows.append(pd.DataFrame({"unit_id": r.unit_id, "trip_id": r.trip_id, "ts": ts,
                                  "lon": list(r.path_lon), "lat": list(r.path_lat)}))
    if not rows:
        return {"type": "FeatureCollection", "features": []}
    return trips_geojson(pd.concat(rows, ignore_index=True))


def patrol_trips(pings: pd.DataFrame, *, trail_s: float | None = None, color: str = TRIP_COLORS[0],
                 name: str = "patrol_trips") -> MapPart:
    """Patrol trips as an animated kepler.gl Trip layer (press play on the time bar to follow the units).

    ``pings`` is the ``patrol_pings`` layer (or a ``patrol_trips`` frame with path lists). The animation
    starts at the end of the trips with a trail as long as the longest trip (``trail_s`` overrides), so a
    still image shows every route.
    """
    gj = trips_from_table(pings) if "path_lon" in pings.columns else trips_geojson(pings)
    if not gj["features"]:
        raise MapInputError(f"{name}: no trip has two or more GPS pings with a position")
    t0 = min(f["geometry"]["coordinates"][0][3] for f in gj["features"])
    t1 = max(f["geometry"]["coordinates"][-1][3] for f in gj["features"])
    longest = max(f["geometry"]["coordinates"][-1][3] - f["geometry"]["coordinates"][0][3]
                  for f in gj["features"])
    layer = _layer("trip", name, "Patrol trips", {"geojson": "_geojson"}, color,
                   {"opacity": 1.0, "thickness": 0.8, "trailLength": float(trail_s or max(longest, 1.0) + 1),
                    "fadeTrail": True, "sizeRange": [0, 10]})
    return MapPart(datasets={name: gj}, layers=[layer], tooltips={name: ["unit_id", "trip_id", "pings"]},
                   time_range_s=(float(t0), float(t1)))


def places(df: pd.DataFrame, *, kinds: Sequence[str] | None = None, name: str = "places") -> MapPart:
    """Key places, SOS poles (``sos``) and QR red boxes (``qr``) as points coloured by kind.

    Needs ``place_id`` (or the registry's ``id``), ``name``, ``kind``, ``lon``, ``lat``; ``kinds`` keeps
    only those kinds (e.g. ``["qr", "sos"]`` for the patrol round).
    """
    df = _require(df, name, ["place_id", "name", "kind", "lon", "lat"], {"id": "place_id"})
    if kinds is not None:
        df = df[df["kind"].isin(list(kinds))]
    pts = df[[c for c in ("place_id", "name", "kind", "in_zone", "lon", "lat") if c in df.columns]]
    pts = pts.reset_index(drop=True)
    crange = _ordinal_color_range("places.kind", PLACE_KIND_COLORS, sorted(pts["kind"].astype(str).unique()))
    layer = _layer("point", name, "Places, SOS poles, QR boxes", {"lat": "lat", "lng": "lon"}, "#E53935",
                   {"radius": 5, "opacity": 1.0, "filled": True, "outline": True, "thickness": 1},
                   color_field=("kind", "string"), color_range=crange, stroke_color="#000000")
    return MapPart(datasets={name: pts}, layers=[layer], tooltips={name: ["name", "kind", "place_id"]})


def risk_points(df: pd.DataFrame, *, color_by: Literal["kind", "status"] = "status",
                name: str = "risk_points") -> MapPart:
    """Risk points (lighting, vegetation, abandoned, other) coloured by status (reported → scheduled → fixed)
    or by kind. Needs ``risk_id``, ``kind``, ``status``, ``lon``, ``lat``.
    """
    df = _require(df, name, ["risk_id", "kind", "status", "lon", "lat"])
    keep = [c for c in ("risk_id", "kind", "status", "description", "reported_date", "scheduled_date",
                        "fixed_date", "agency", "lon", "lat") if c in df.columns]
    pts = df[keep].reset_index(drop=True)
    for c in ("reported_date", "scheduled_date", "fixed_date"):
        if c in pts.columns:
            pts[c] = pd.to_datetime(pts[c]).dt.strftime("%Y-%m-%d")
    palette = RISK_STATUS_COLORS if color_by == "status" else RISK_KIND_COLORS
    crange = _ordinal_color_range(f"risk.{color_by}", palette, sorted(pts[color_by].astype(str).unique()))
    layer = _layer("point", name, f"Risk points by {color_by}", {"lat": "lat", "lng": "lon"}, "#FFE600",
                   {"radius": 8, "opacity": 1.0, "filled": True, "outline": True, "thickness": 1.5},
                   color_field=(color_by, "string"), color_range=crange, stroke_color="#FFFFFF")
    return MapPart(datasets={name: pts}, layers=[layer],
                   tooltips={name: [c for c in ("risk_id", "kind", "status", "reported_date", "agency")
                                    if c in pts.columns]})


def incident_density(df: pd.DataFrame, *, kind: Literal["hexbin", "heatmap"] = "hexbin", cell_m: float = 30.0,
                     name: str = "incidents") -> MapPart:
    """Density of incidents (alerts, SOS/citizen reports, detections: any frame with ``lon``/``lat``) as
    a hexbin of hexagons of ``cell_m`` metres radius coloured by count, or a heatmap.
    """
    df = _require(df, name, ["lon", "lat"])
    keep = [c for c in ("lon", "lat", "kind", "category", "ts") if c in df.columns]
    pts = df[keep].reset_index(drop=True)
    if "ts" in pts.columns:
        pts["ts"] = local_time_strings(pts["ts"])
    crange = _sequential_range("ssz.density", DENSITY_COLORS)
    if kind == "hexbin":
        layer = _layer("hexagon", name, "Incidents (hexbin)", {"lat": "lat", "lng": "lon"}, DENSITY_COLORS[-1],
                       {"opacity": 0.4, "worldUnitSize": cell_m / 1000.0, "resolution": 8, "coverage": 0.95,
                        "sizeRange": [0, 500], "percentile": [0, 100], "elevationPercentile": [0, 100],
                        "elevationScale": 5, "enable3d": False, "colorAggregation": "count",
                        "sizeAggregation": "count"}, color_range=crange)
    elif kind == "heatmap":
        layer = _layer("heatmap", name, "Incidents (heatmap)", {"lat": "lat", "lng": "lon"}, DENSITY_COLORS[-1],
                       {"opacity": 0.5, "radius": 30}, color_range=crange)
    else:
        raise MapInputError(f"{name}: kind must be 'hexbin' or 'heatmap', got {kind!r}")
    return MapPart(datasets={name: pts}, layers=[layer])


def value_polygons(geoms: Sequence[shapely.Geometry], props: pd.DataFrame, value: str, *, name: str,
                   label: str, colors: Sequence[str] = DENSITY_COLORS, opacity: float = 0.6) -> MapPart:
    """WGS84 polygons (e.g. density grid cells) filled by a numeric property ``value`` (quantize scale over
    ``colors``, low to high); every column of ``props`` shows in the tooltip."""
    if value not in props.columns or len(props) != len(geoms):
        raise MapInputError(f"{name}: props need a {value!r} column and one row per polygon")
    layer = _layer("geojson", name, label, {"geojson": "_geojson"}, colors[-1],
                   {"opacity": opacity, "strokeOpacity": 0.0, "thickness": 0.1, "filled": True, "stroked": False},
                   color_range=_sequential_range(f"ssz.{name}", colors))
    layer["visualChannels"].update({"colorField": {"name": value, "type": "real"}, "colorScale": "quantize"})
    return MapPart(datasets={name: _feature_collection(list(geoms), props)}, layers=[layer],
                   tooltips={name: [str(c) for c in props.columns]})


def value_points(df: pd.DataFrame, value: str, *, name: str, label: str, colors: Sequence[str] = DENSITY_COLORS,
                 radius: float = 8.0) -> MapPart:
    """Points (``lon``/``lat``) coloured by a numeric column ``value`` (quantize scale, low to high); the other
    columns show in the tooltip."""
    df = _require(df, name, ["lon", "lat", value])
    pts = df.reset_index(drop=True)
    layer = _layer("point", name, label, {"lat": "lat", "lng": "lon"}, colors[-1],
                   {"radius": radius, "opacity": 1.0, "filled": True, "outline": True, "thickness": 1},
                   color_field=(value, "real"), color_range=_sequential_range(f"ssz.{name}", colors),
                   stroke_color="#FFFFFF")
    return MapPart(datasets={name: pts}, layers=[layer],
                   tooltips={name: [str(c) for c in pts.columns if c not in ("lon", "lat")][:8]})


def zone_outline(zone: shapely.Geometry, *, label: str = "Safety Zone", name: str = "zone") -> MapPart:
    """The Safety Zone boundary (a WGS84 polygon) as an outline."""
    if not isinstance(zone, shapely.Polygon | shapely.MultiPolygon):
        raise MapInputError(f"{name}: expected a shapely Polygon in WGS84, got {type(zone).__name__}")
    # Drawn as its boundary line: a polygon would be filled over the layers beneath it.
    gj = _feature_collection([zone.boundary], pd.DataFrame({"name": [label]}))
    layer = _layer("geojson", name, label, {"geojson": "_geojson"}, ZONE_COLOR,
                   {"opacity": 0.05, "strokeOpacity": 1.0, "thickness": 1.5, "filled": False, "stroked": True},
                   stroke_color=ZONE_COLOR)
    return MapPart(datasets={name: gj}, layers=[layer])


def streets(graph_or_edges: Any, *, name: str = "streets") -> MapPart:
    """The street graph (osmnx MultiDiGraph in WGS84, or a GeoDataFrame of edge lines) as thin lines: an
    offline base map drawn from the twin itself.
    """
    import geopandas as gpd

    if isinstance(graph_or_edges, gpd.GeoDataFrame):
        edges = graph_or_edges
    else:
        import osmnx as ox

        edges = ox.convert.graph_to_gdfs(graph_or_edges, nodes=False, fill_edge_geometry=True).reset_index()
    if edges.crs is not None and edges.crs.to_epsg() != 4326:
        edges = edges.to_crs(4326)
    if {"u", "v"} <= set(edges.columns):
        pair = [tuple(sorted(t)) for t in zip(edges["u"], edges["v"], strict=True)]
        edges = edges.assign(_pair=pair).drop_duplicates("_pair")
    hwy = edges["highway"].map(lambda h: h[0] if isinstance(h, list) else h) if "highway" in edges else None
    props = pd.DataFrame({"highway": hwy.astype(str).to_numpy() if hwy is not None else "street"})
    gj = _feature_collection(list(edges.geometry), props)
    layer = _layer("geojson", name, "Streets", {"geojson": "_geojson"}, STREET_COLOR,
                   {"opacity": 0.8, "strokeOpacity": 0.8, "thickness": 0.4, "filled": False, "stroked": True},
                   stroke_color=STREET_COLOR)
    return MapPart(datasets={name: gj}, layers=[layer])


# --------------------------------------------------------------------------------------------- the map
@dataclass
class TwinMap:
    """A kepler.gl map assembled from :class:`MapPart` s, centred on a zone."""

    centre: tuple[float, float]
    zoom: float = 15.0
    basemap: str = "none"
    title: str = "SSZ twin"
    parts: list[MapPart] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.basemap not in BASEMAPS:
            raise MapInputError(f"basemap {self.basemap!r} is not one of {', '.join(BASEMAPS)}")

    def add(self, *parts: MapPart) -> TwinMap:
        """Add parts (drawn in the order added, later ones on top); returns the map for chaining."""
        self.parts.extend(parts)
        return self

    @property
    def datasets(self) -> dict[str, Any]:
        """All datasets of the map by name (a name used twice raises)."""
        out: dict[str, Any] = {}
        for p in self.parts:
            for k, v in p.datasets.items():
                if k in out:
                    raise MapInputError(f"dataset name {k!r} is used twice: pass name= to one of the builders")
                out[k] = v
        return out

    def config(self) -> dict[str, Any]:
        """The kepler.gl v1 config: layers (last part on top), filters, tooltips, map state and style."""
        layers: list[dict[str, Any]] = []
        for p in reversed(self.parts):  # kepler.gl draws the first layer of the list on top
            layers.extend(reversed(p.layers))
        filters = [f for p in self.parts for f in p.filters]
        tips = {k: [{"name": c, "format": None} for c in v] for p in self.parts for k, v in p.tooltips.items()}
        trips = [p.time_range_s for p in self.parts if p.time_range_s is not None]
        anim = {"currentTime": max(t1 for _, t1 in trips) * 1000.0 if trips else None, "speed": 1}
        lon, lat = self.centre
        return {"version": "v1", "config": {
            "visState": {
                "filters": filters, "layers": copy.deepcopy(layers),
                "interactionConfig": {
                    "tooltip": {"fieldsToShow": tips, "compareMode": False, "compareType": "absolute",
                                "enabled": True},
                    "brush": {"size": 0.5, "enabled": False}, "geocoder": {"enabled": False},
                    "coordinate": {"enabled": False}},
                "layerBlending": "normal", "splitMaps": [], "animationConfig": anim},
            "mapState": {"bearing": 0, "dragRotate": False, "latitude": lat, "longitude": lon, "pitch": 0,
                         "zoom": self.zoom, "isSplit": False},
            "mapStyle": {"styleType": BASEMAPS[self.basemap], "topLayerGroups": {}, "visibleLayerGroups": {},
                         "threeDBuildingColor": [9.665468314072013, 17.18305478057247, 31.1442867897876],
                         "mapStyles": {}},
        }}

    def widget(self, height: int = 600) -> Any:
        """The Jupyter widget of this map (:class:`twin.kepler_offline.OfflineKeplerGl`, a ``keplergl.KeplerGl``
        whose JavaScript is the installed wheel's, made to start offline)."""
        from twin.kepler_offline import OfflineKeplerGl

        return OfflineKeplerGl(data=self.datasets, config=self.config(), height=height, app_name=self.title)

    def to_html(self, path: str | os.PathLike[str], height: int | None = None) -> Path:
        """Write a self-contained HTML file that renders offline (no CDN, no tiles: see the module docs)."""
        return save_offline_html(path, self.datasets, self.config(), title=self.title, height=height,
                                 app_name=self.title)


def project_wgs84(geom: shapely.Geometry, epsg: int) -> shapely.Geometry:
    """A WGS84 geometry in a metric CRS (e.g. the zone's UTM zone, EPSG:32647) for areas and distances."""
    from pyproj import Transformer

    t = Transformer.from_crs(4326, epsg, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def coverage_share(cameras: pd.DataFrame, zone: shapely.Geometry, epsg: int) -> float:
    """Share (0..1) of the zone's area that at least one camera's field-of-view wedge covers."""
    df = _require(cameras, "cameras", ["lon", "lat", "heading_deg", "fov_deg", "range_m"])
    wedges = coverage_wedges(df["lon"], df["lat"], df["heading_deg"], df["fov_deg"], df["range_m"])
    z = project_wgs84(zone, epsg)
    if not wedges or z.area == 0:
        return 0.0
    cover = shapely.union_all([project_wgs84(w, epsg) for w in wedges])
    return float(cover.intersection(z).area / z.area)


def zone_view(lon: Sequence[float], lat: Sequence[float], width_px: int = 1200, height_px: int = 600,
              margin: float = 1.15) -> tuple[tuple[float, float], float]:
    """Centre and zoom (deck.gl's 512 px tiles) that fit the positions, with ``margin``, in a map of
    ``width_px`` by ``height_px`` (kepler.gl keeps the bottom of the page for its time bars)."""
    lo = np.asarray(lon, float)
    la = np.asarray(lat, float)
    if lo.size == 0:
        raise MapInputError("zone_view: no positions to fit")
    cx, cy = float((lo.min() + lo.max()) / 2), float((la.min() + la.max()) / 2)
    span_x = max(float(_WGS84.line_length([lo.min(), lo.max()], [cy, cy])), 50.0)
    span_y = max(float(_WGS84.line_length([cx, cx], [la.min(), la.max()])), 50.0)
    m_per_px = max(span_x / width_px, span_y / height_px) * margin
    zoom = math.log2(78271.52 * math.cos(math.radians(cy)) / m_per_px)
    return (cx, cy), float(min(max(zoom, 3.0), 20.0))
