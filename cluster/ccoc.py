"""The command room (CCOC) of a city as the API serves it: its desk config and its actors.

:func:`desk_config` builds :class:`serve.desk.DeskConfig` from the city (config, street graph, registry):
dismiss reasons and procedures (``ccoc`` block of the city YAML), patrol units, the area field inputs must lie
in (the street graph's extent), the console's map (streets, cameras, SOS poles, QR boxes, zone outline) and
where the LINE channel secret is kept. :class:`CityServices` is handed to the API replicas (pickled): it starts
or finds the city's alert sink and field store actors, so that the replicas, the camera pipeline and the demo
share one owner of each city's alert state and field inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import shapely

from cluster.city import CityModel
from cluster.registry import zone_polygon
from cluster.state import state_dir
from serve.desk import DeskConfig, MapData
from serve.keys import write_private

LINE_SECRET_ENV = "SSZ_LINE_CHANNEL_SECRET"
AREA_MARGIN_DEG = 0.003  # about 300 m around the street graph


def line_secret_file() -> Path:
    """Where the LINE channel secret is kept for the API replicas (``<state>/keys/line-channel.secret``, 0600);
    written from ``SSZ_LINE_CHANNEL_SECRET`` when that is set."""
    path = state_dir("keys") / "line-channel.secret"
    secret = os.environ.get(LINE_SECRET_ENV)
    if secret:
        write_private(path, secret.strip().encode())
    return path


def units(city: CityModel) -> list[str]:
    """The city's patrol units: the ``ccoc.units`` of its config, else ``<city>-patrol-01`` ... (as simulated)."""
    cfg = city.config
    return list(cfg.ccoc.units) or [f"{cfg.id}-patrol-{i + 1:02d}" for i in range(cfg.patrol_units)]


def map_data(city: CityModel) -> MapData:
    """The console's map of the city: street polylines (each street once), cameras, places, the zone outline."""
    G = city.graph
    seen: set[tuple[int, int]] = set()
    streets = []
    for u, v, data in G.edges(data=True):
        a, b = (u, v) if u <= v else (v, u)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        geom = data.get("geometry")
        coords = list(geom.coords) if geom is not None else [(G.nodes[u]["x"], G.nodes[u]["y"]),
                                                              (G.nodes[v]["x"], G.nodes[v]["y"])]
        streets.append([[round(x, 6), round(y, 6)] for x, y in coords])
    xs = [n["x"] for _, n in G.nodes(data=True)]
    ys = [n["y"] for _, n in G.nodes(data=True)]
    zone = zone_polygon(city.config)[0]
    reg = city.registry
    cams = [{"id": c.id, "kind": str(c.kind), "lon": round(c.lon, 6), "lat": round(c.lat, 6), "in_zone": c.in_zone}
            for c in reg.cameras if c.mount == "fixed"]
    places = [{"id": p.id, "name": p.name, "kind": p.kind, "lon": round(p.lon, 6), "lat": round(p.lat, 6)}
              for p in reg.places]
    return MapData(bbox=(min(xs), min(ys), max(xs), max(ys)), streets=streets,
                   zone=[[round(x, 6), round(y, 6)] for x, y in zone.exterior.coords], cameras=cams, places=places)


def desk_config(city: CityModel, surveys: list[dict[str, Any]] | None = None) -> DeskConfig:
    """The API's desk for ``city`` (see the module docstring)."""
    cfg = city.config
    G = city.graph
    xs = [n["x"] for _, n in G.nodes(data=True)]
    ys = [n["y"] for _, n in G.nodes(data=True)]
    area = shapely.box(min(xs), min(ys), max(xs), max(ys)).buffer(AREA_MARGIN_DEG, join_style="mitre")
    return DeskConfig(
        city=cfg.id, name=cfg.name, name_th=cfg.name_th, station_th=cfg.station_th,
        dismiss_reasons=list(cfg.ccoc.dismiss_reasons), procedures=dict(cfg.ccoc.procedures), units=units(city),
        mobile_cameras=[m.id for m in cfg.cameras.mobile], area_wkt=area.wkt, area_name=f"the streets of {cfg.name}",
        max_clock_skew_s=cfg.ccoc.max_clock_skew_s, qr_round_min=cfg.ccoc.qr_round_min,
        line_secret_file=str(line_secret_file()), map=map_data(city), surveys=surveys or [],
        activity_logs=activity_logs())


def activity_logs() -> dict[str, str]:
    """The operational watchlist, hotlist and access audit logs (local files) for the supervisor's trail."""
    from cluster.audits import access_log_path

    d = state_dir("serve")
    return {"watchlist": str(d / "watchlist-audit.jsonl"), "hotlist": str(d / "hotlist-audit.jsonl"),
            "access": str(access_log_path())}


class CityServices:
    """The city's actors for the API replicas: ``sink()`` and ``field()`` start or find them (pickled into the
    replicas, so it holds settings, not handles)."""

    def __init__(self, city: CityModel) -> None:
        """Take what the actors need from the city: camera places, the audit log path, the store settings."""
        from actors.alerts import AlertSinkConfig, CameraPlace
        from actors.field import FieldStoreConfig, field_name
        from cluster import store

        settings = store.settings()
        self.sink_config = AlertSinkConfig(
            city=city.id, s3=settings, audit_path=str(state_dir("alerts") / f"{city.id}-audit.jsonl"),
            cameras={c.id: CameraPlace(lon=c.lon, lat=c.lat, edge_u=c.edge_u, edge_v=c.edge_v, edge_key=c.edge_key)
                     for c in city.registry.cameras},
            mobile_cameras=[m.id for m in city.config.cameras.mobile], field_actor=field_name(city.id))
        self.field_config = FieldStoreConfig(city=city.id, s3=settings)

    def sink(self) -> Any:
        """The city's alert sink actor (started when not running)."""
        from actors.alerts import start_sink

        return start_sink(self.sink_config)

    def field(self) -> Any:
        """The city's field store actor (started when not running)."""
        from actors.field import start_field_store

        return start_field_store(self.field_config)

    def camera_stats(self) -> list[dict[str, Any]]:
        """Per-camera numbers of the running camera shards (health, fps, gate pass ratio, drops, last error),
        as ``ssz status`` shows them; empty when no shard runs."""
        from cluster.sharding import status

        return [c.model_dump(mode="json") for s in status(timeout_s=3.0) for c in s.cameras]


def commit(city: str, message: str = "field inputs") -> str | None:
    """Commit the city's pending field inputs now; returns the snapshot id (None: nothing pending).

    Raises
    ------
    ValueError
        When the city's field store is not running.
    """
    import ray

    from actors import RAY_NAMESPACE
    from actors.field import field_name

    actor = ray.get_actor(field_name(city), namespace=RAY_NAMESPACE)
    return ray.get(actor.commit.remote(message), timeout=300)


def commit_alerts(city: str, message: str = "alerts") -> str:
    """Put the city's alerts layer (its sink's records, field alerts included) into a snapshot now."""
    import ray

    from actors import RAY_NAMESPACE
    from actors.alerts import sink_name

    actor = ray.get_actor(sink_name(city), namespace=RAY_NAMESPACE)
    return ray.get(actor.commit.remote(message), timeout=300)


def shutdown(city: str) -> str | None:
    """Commit the city's pending field inputs (on shutdown); returns the snapshot id (None: nothing pending or
    no field store running)."""
    import ray

    from actors import RAY_NAMESPACE
    from actors.field import field_name

    try:
        actor = ray.get_actor(field_name(city), namespace=RAY_NAMESPACE)
    except ValueError:
        return None
    snap = ray.get(actor.close.remote(), timeout=120)
    ray.kill(actor)  # the next start reloads from the store with its committer running
    return snap
