"""A kepler.gl map of a city's twin as one self-contained HTML file that opens offline (``ssz twin map``).

The map shows the zone's streets (drawn from the twin's own street graph, so no base-map tiles are
needed), the Safety Zone boundary, cameras with their field-of-view coverage, alerts coloured by kind with
a time slider, patrol trips (animated), risk points coloured by status and a hexbin of incident density.

Layers come from the twin when it has rows (``layers=`` given, e.g. from the latest snapshot); a city
whose twin holds no alerts, patrol pings or risk points yet gets a deterministic **demo day** instead
(:func:`cluster.sim.fielddata.demo_layers`: synthetic alerts at zone cameras, patrols driving their QR
checkpoints, risk points on zone streets), validated against the twin's schemas and marked as such in the
map title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from cluster.city import CityModel, city_model
from cluster.config import CityConfig
from twin import maps


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


def build_map(city: CityModel, layers: dict[str, pd.DataFrame] | None = None, *, basemap: str = "none",
              seed: int = 0) -> tuple[maps.TwinMap, list[str]]:
    """The twin map of a city: streets, zone, incident hexbin, cameras, QR boxes and SOS poles, patrol trips,
    risk points and alerts.

    Layers missing or empty in ``layers`` are taken from :func:`demo_layers`; returns the map and the names
    of the demo layers used.
    """
    from cluster.sim.fielddata import demo_layers

    reg, G = city.registry, city.graph
    given = {k: v for k, v in (layers or {}).items() if v is not None and len(v)}
    demo = [k for k in ("cameras", "alerts", "patrol_pings", "risk_points") if k not in given]
    if demo:
        given = {**demo_layers(city, seed=seed), **given}
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


def write_map(city: str | CityConfig | CityModel, out: str | Path, *,
              layers: dict[str, pd.DataFrame] | None = None, basemap: str = "none", seed: int = 0) -> MapSummary:
    """Build the city's map (see :func:`build_map`) and write the offline HTML file.

    ``city`` is a loaded :class:`~cluster.city.CityModel` (nothing is loaded again) or a city id, path or
    config. Raises :class:`twin.maps.MapInputError` for layers the map cannot draw.
    """
    model = city_model(city)
    m, demo = build_map(model, layers, basemap=basemap, seed=seed)
    path = m.to_html(out)
    counts = {k: _count(v) for k, v in m.datasets.items()}
    return MapSummary(city=model.id, out=str(path), bytes=path.stat().st_size, layers=counts, demo_layers=demo,
                      basemap=basemap)


def _count(v: Any) -> int:
    if isinstance(v, dict):
        return len(v.get("features", []))
    return len(v)
