"""``ssz twin map``: a kepler.gl map of a city's twin as one self-contained HTML file that opens offline.

The map shows the zone's streets (drawn from the twin's own street graph, so no base-map tiles are
needed), the Safety Zone boundary, cameras with their field-of-view coverage, alerts coloured by kind with
a time slider, patrol trips (animated), risk points coloured by status and a hexbin of incident density.

Layers come from the twin when it has rows (``layers=`` given, e.g. from the latest snapshot); a city
whose twin holds no alerts, patrol pings or risk points yet gets a deterministic **demo day** instead
(:func:`demo_layers`: synthetic alerts at zone cameras, patrols walking their QR checkpoints, risk points
on zone streets), validated against the twin's schemas and marked as such in the map title.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Annotated, Any

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import typer
from pydantic import BaseModel

from cluster.city import load_city_graph
from cluster.config import CityConfig, ConfigError, load_city
from cluster.registry import Registry, build_registry
from twin import maps
from twin.layers import validate_table
from twin.schemas import alert_id

DEMO_DAY = dt.date(2021, 12, 1)
LOCAL = "Asia/Bangkok"


class MapSummary(BaseModel):
    """What ``ssz twin map`` wrote."""

    city: str
    out: str
    bytes: int
    layers: dict[str, int]
    demo_layers: list[str]
    basemap: str
    snapshot: str | None = None
    source: str = ""


def _validated(layer: str, df: pd.DataFrame, city: str) -> pd.DataFrame:
    """The frame checked against the twin schema of ``layer`` (strict: a bad demo row is a bug)."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = df[c].dt.floor("ms")  # the twin keeps milliseconds
    res = validate_table(layer, pa.Table.from_pandas(df, preserve_index=False), city)
    if res.rejected:
        raise ValueError(f"demo {layer} rows do not fit the twin schema: {res.rejected[:3]}")
    return res.table.to_pandas()


def cameras_layer(reg: Registry) -> pd.DataFrame:
    """The registry's cameras as a ``cameras`` layer frame (``id`` becomes ``camera_id``)."""
    df = reg.cameras_frame().rename(columns={"id": "camera_id"})
    df["online"] = True
    df["edge_offset_m"] = np.nan
    keep = ["camera_id", "city", "kind", "mount", "mobile_kind", "owner", "heading_deg", "fov_deg", "range_m",
            "faces", "plates", "in_zone", "online", "source", "lon", "lat", "edge_u", "edge_v", "edge_key",
            "edge_offset_m"]
    df["heading_deg"] = df["heading_deg"] % 360.0
    return _validated("cameras", df[keep], reg.city.id)


def _utc(local: dt.datetime) -> pd.Timestamp:
    return pd.Timestamp(local, tz=LOCAL).tz_convert("UTC")


def demo_alerts(reg: Registry, rng: np.random.Generator, n: int = 120, day: dt.date = DEMO_DAY) -> pd.DataFrame:
    """A day of synthetic alerts, three quarters at zone cameras, more in the evening (validated)."""
    cams = reg.cameras_frame()
    fixed = cams[cams["mount"] == "fixed"]
    zone = fixed[fixed["in_zone"]]
    pick = np.where(rng.random(n) < 0.75, rng.integers(0, max(len(zone), 1), n), -1)
    rows = []
    start = _utc(dt.datetime.combine(day, dt.time(0, 0)))
    hours = rng.choice(np.arange(24), size=n, p=_evening_weights())
    for i in range(n):
        cam = zone.iloc[int(pick[i])] if pick[i] >= 0 and len(zone) else fixed.iloc[int(rng.integers(len(fixed)))]
        kind = str(rng.choice(["face", "plate", "sos", "camera-offline"], p=[0.5, 0.3, 0.1, 0.1]))
        if kind == "plate" and cam["kind"] != "plate":
            kind = "face"
        ts = start + pd.Timedelta(hours=int(hours[i]), seconds=float(rng.uniform(0, 3600)))
        status = str(rng.choice(["new", "confirmed", "dismissed"], p=[0.3, 0.3, 0.4]))
        decided = status != "new"
        subject = f"wl-{int(rng.integers(1, 14)):03d}" if kind == "face" else (
            f"hl-{int(rng.integers(1, 40)):03d}" if kind == "plate" else None)
        track = f"trk-{i:05d}"
        rows.append({
            "alert_id": alert_id(cam["id"], kind, subject, track), "camera_id": cam["id"], "ts": ts, "kind": kind,
            "subject_id": subject, "score": float(np.float32(rng.uniform(0.6, 0.99))) if kind in {"face", "plate"}
            else None, "status": status, "status_by": "ccoc-operator-1" if decided else None,
            "status_ts": ts + pd.Timedelta(minutes=float(rng.uniform(1, 10))) if decided else pd.NaT,
            "lon": float(cam["lon"]), "lat": float(cam["lat"]), "city": reg.city.id, "track_id": track,
            "frames": int(rng.integers(3, 40)),
        })
    df = pd.DataFrame(rows)
    df["status_ts"] = pd.to_datetime(df["status_ts"], utc=True)
    return _validated("alerts", df, reg.city.id)


def _evening_weights() -> np.ndarray:
    w = np.array([2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6, 8, 9, 9, 8, 6, 4], dtype=float)
    return w / w.sum()


def demo_patrols(reg: Registry, G: nx.MultiDiGraph, rng: np.random.Generator, units: int | None = None,
                 day: dt.date = DEMO_DAY, ping_s: float = 10.0, speed_mps: float = 6.0) -> pd.DataFrame:
    """Patrol GPS pings: each unit drives a round of zone QR checkpoints on the street graph (validated)."""
    import osmnx as ox

    places = reg.places_frame()
    qr = places[(places["kind"] == "qr") & places["in_zone"]]
    if len(qr) < 2:
        qr = places[places["in_zone"]]
    Gu = G.to_undirected()
    nodes = ox.distance.nearest_nodes(G, qr["lon"].to_numpy(), qr["lat"].to_numpy())
    units = units or reg.city.patrol_units
    rows = []
    for u in range(max(units, 1)):
        stops = [int(nodes[i]) for i in rng.permutation(len(nodes))[:8]]
        path: list[int] = [stops[0]]
        for a, b in itertools.pairwise(stops):
            try:
                path += nx.shortest_path(Gu, a, b, weight="length")[1:]
            except nx.NetworkXNoPath:
                continue
        xy = np.array([(G.nodes[p]["x"], G.nodes[p]["y"]) for p in path])
        if len(xy) < 2:
            continue
        seg = _metres(xy[:-1], xy[1:])
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        t_end = cum[-1] / speed_mps
        ts_rel = np.arange(0.0, t_end + ping_s, ping_s)
        lon = np.interp(np.minimum(ts_rel * speed_mps, cum[-1]), cum, xy[:, 0])
        lat = np.interp(np.minimum(ts_rel * speed_mps, cum[-1]), cum, xy[:, 1])
        start = _utc(dt.datetime.combine(day, dt.time(19 + u % 3, 0)))
        unit = f"{reg.city.id}-patrol-{u + 1:02d}"
        for k in range(len(ts_rel)):
            rows.append({"unit_id": unit, "city": reg.city.id, "ts": start + pd.Timedelta(seconds=float(ts_rel[k])),
                         "trip_id": f"{unit}-{day:%Y%m%d}-1", "speed_mps": speed_mps,
                         "accuracy_m": float(rng.uniform(3, 8)), "lon": float(lon[k]), "lat": float(lat[k])})
    return _validated("patrol_pings", pd.DataFrame(rows), reg.city.id)


def _metres(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lat = np.radians((a[:, 1] + b[:, 1]) / 2)
    dx = np.radians(b[:, 0] - a[:, 0]) * np.cos(lat) * 6_371_000
    dy = np.radians(b[:, 1] - a[:, 1]) * 6_371_000
    return np.hypot(dx, dy)


def demo_risk_points(reg: Registry, rng: np.random.Generator, n: int = 16, day: dt.date = DEMO_DAY) -> pd.DataFrame:
    """Risk points on zone streets (dark spots, overgrown trees, abandoned buildings) with consistent dates."""
    cams = reg.cameras_frame()
    zone = cams[cams["in_zone"] & (cams["mount"] == "fixed")]
    rows = []
    for i in range(n):
        c = zone.iloc[int(rng.integers(len(zone)))]
        kind = str(rng.choice(["lighting", "vegetation", "abandoned", "other"], p=[0.45, 0.3, 0.15, 0.1]))
        status = str(rng.choice(["reported", "scheduled", "fixed"], p=[0.4, 0.3, 0.3]))
        reported = day - dt.timedelta(days=int(rng.integers(5, 60)))
        sched = reported + dt.timedelta(days=int(rng.integers(1, 5))) if status != "reported" else None
        fixed = sched + dt.timedelta(days=int(rng.integers(1, 5))) if status == "fixed" and sched else None
        rows.append({"risk_id": f"{reg.city.id}-risk-{i + 1:03d}", "city": reg.city.id, "kind": kind,
                     "status": status, "description": f"{kind} problem near {c['id']}", "reported_date": reported,
                     "scheduled_date": sched, "fixed_date": fixed, "reported_by": "community-survey",
                     "agency": "municipality" if kind != "lighting" else "PEA",
                     "lon": float(c["lon"]) + float(rng.normal(0, 0.0002)),
                     "lat": float(c["lat"]) + float(rng.normal(0, 0.0002))})
    df = pd.DataFrame(rows)
    for c in ("reported_date", "scheduled_date", "fixed_date"):
        df[c] = pd.Series([v for v in df[c]], dtype="object")
    return _validated("risk_points", df, reg.city.id)


def demo_layers(reg: Registry, G: nx.MultiDiGraph, seed: int = 0, day: dt.date = DEMO_DAY) -> dict[str, pd.DataFrame]:
    """A deterministic demo day of a city's twin (cameras, alerts, patrol pings, risk points), schema-valid."""
    rng = np.random.default_rng(seed)
    return {"cameras": cameras_layer(reg), "alerts": demo_alerts(reg, rng, day=day),
            "patrol_pings": demo_patrols(reg, G, rng, day=day), "risk_points": demo_risk_points(reg, rng, day=day)}


def build_map(reg: Registry, G: nx.MultiDiGraph, layers: dict[str, pd.DataFrame] | None = None, *,
              basemap: str = "none", seed: int = 0) -> tuple[maps.TwinMap, list[str]]:
    """The twin map of a city: streets, zone, incident hexbin, cameras, QR boxes and SOS poles, patrol trips,
    risk points and alerts.

    Layers missing or empty in ``layers`` are taken from :func:`demo_layers`; returns the map and the names
    of the demo layers used.
    """
    given = {k: v for k, v in (layers or {}).items() if v is not None and len(v)}
    demo = [k for k in ("cameras", "alerts", "patrol_pings", "risk_points") if k not in given]
    if demo:
        given = {**demo_layers(reg, G, seed=seed), **given}
    lon, lat = reg.zone.exterior.xy
    centre, zoom = maps.zone_view(list(lon), list(lat))
    title = f"{reg.city.name} Safety Zone twin" + (" (demo layers: " + ", ".join(demo) + ")" if demo else "")
    m = maps.TwinMap(centre=centre, zoom=zoom, basemap=basemap, title=title)
    place_rows = given.get("places")
    m.add(maps.streets(G), maps.zone_outline(reg.zone, label=reg.city.zone.name),
          maps.incident_density(given["alerts"]), maps.cameras(given["cameras"]),
          maps.places(reg.places_frame() if place_rows is None else place_rows, kinds=["qr", "sos", "police_station"]),
          maps.patrol_trips(given["patrol_pings"]), maps.risk_points(given["risk_points"]),
          maps.alerts(given["alerts"]))
    return m, demo


def store_layers(city_id: str, snapshot: str | None = None) -> tuple[dict[str, pd.DataFrame], str | None, str]:
    """The map layers of the city's snapshot (``snapshot`` id, default the latest) from the object store.

    Returns (layers, snapshot id, note). When the store is not running or the city has no snapshot yet the
    layers are empty and the note says why (the map then uses demo layers); a snapshot id that does not
    exist is an error.
    """
    from cluster import store
    from twin.objectstore import StoreError
    from twin.snapshots import SnapshotStore

    try:
        snaps = SnapshotStore(store.open_store(), city_id)
        if snapshot is None and snaps.latest() is None:
            return {}, None, f"no snapshot of {city_id} yet (run `ssz twin build --city {city_id}`)"
    except StoreError as e:
        if snapshot is not None:
            raise
        return {}, None, f"object store not reachable ({str(e).splitlines()[0]})"
    snap = snaps.open(snapshot)
    out = {n: snap.table(n).to_pandas() for n in ("places", "cameras", "alerts", "patrol_pings", "risk_points")}
    return {k: v for k, v in out.items() if len(v)}, snap.id, f"snapshot {snap.id}"


def map_command(
    city: Annotated[str, typer.Option(help="Bundled city id or path to a city YAML.")] = "hatyai",
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("map.html"),
    basemap: Annotated[str, typer.Option(help="none (offline: streets from the twin), or dark/light/voyager "
                                              "(Carto tiles, needs the internet).")] = "none",
    snapshot: Annotated[str | None, typer.Option(help="Snapshot id to draw (default: the latest in the "
                                                      "store).")] = None,
    from_store: Annotated[bool, typer.Option(help="Read the layers from the object store's snapshot; "
                                                  "--no-from-store draws demo layers only.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the demo layers used where the twin has no rows.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write a kepler.gl map of the city's twin as one HTML file that renders with no internet."""
    from twin.objectstore import StoreError

    try:
        cfg = load_city(city)
        layers, snap_id, note = store_layers(cfg.id, snapshot) if from_store else ({}, None, "demo layers only")
        summary = write_map(cfg, out, layers=layers, basemap=basemap, seed=seed)
        summary.snapshot, summary.source = snap_id, note
    except (ConfigError, maps.MapInputError, StoreError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        typer.echo(f"wrote {summary.out} ({summary.bytes / 1e6:.1f} MB) from {summary.source}: "
                   + ", ".join(f"{k} {v}" for k, v in summary.layers.items())
                   + (f"; demo layers: {', '.join(summary.demo_layers)}" if summary.demo_layers else ""))


def write_map(city: str | CityConfig, out: str | Path, *, layers: dict[str, pd.DataFrame] | None = None,
              basemap: str = "none", seed: int = 0) -> MapSummary:
    """Build the city's registry and map (see :func:`build_map`) and write the offline HTML file."""
    cfg = city if isinstance(city, CityConfig) else load_city(city)
    G = load_city_graph(cfg)
    reg = build_registry(cfg, G)
    m, demo = build_map(reg, G, layers, basemap=basemap, seed=seed)
    path = m.to_html(out)
    counts = {k: _count(v) for k, v in m.datasets.items()}
    return MapSummary(city=cfg.id, out=str(path), bytes=path.stat().st_size, layers=counts, demo_layers=demo,
                      basemap=basemap)


def _count(v: Any) -> int:
    if isinstance(v, dict):
        return len(v.get("features", []))
    return len(v)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m cluster.cli_map --city hatyai
    app = typer.Typer(add_completion=False)
    app.command()(map_command)
    app()
