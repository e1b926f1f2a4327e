"""``ssz twin``: build a city's digital twin into the object store and manage its snapshots.

``build`` loads the city's street graph (offline from its OSM file, or generated), projects it to the zone's
UTM CRS, stores it as GeoParquet (``graphs/<city>/<digest>/``), generates the camera and place registry on
it, turns the registry into the zone, place and camera layers (each point snapped to its street edge) and
commits them as a snapshot. ``snapshot`` lists, shows, creates, diffs and prunes snapshots.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import networkx as nx
import pyarrow.parquet as pq
import shapely
import typer

from cluster.config import CityConfig, ConfigError, load_city
from twin.layers import LayerError, TwinState
from twin.objectstore import Store, StoreError

app = typer.Typer(help="The digital twin: street graph, layers and snapshots in the object store.",
                  no_args_is_help=True, add_completion=False)
snapshot_app = typer.Typer(help="Versioned snapshots of a city's twin.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")

CityOpt = Annotated[str, typer.Option("--city", help="Bundled city id or path to a city YAML.")]


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _fail(msg: str) -> None:
    sys.stderr.write(f"error: {msg}\n")
    raise typer.Exit(2)


def _store() -> Store:
    from cluster import store

    return store.open_store()


def registry_state(city: CityConfig, G: nx.MultiDiGraph) -> TwinState:
    """The zone, place and camera layers of a city from its generated registry, snapped to the graph.

    ``G`` is the WGS84 street graph; every row is validated by the layer appenders (strict: a bad
    registry row is a bug and fails loudly).
    """
    from cluster.registry import build_registry, zone_polygon
    from twin.snap import snap_table

    reg = build_registry(city, G)
    st = TwinState(city.id)
    zone_wgs, zone_utm = zone_polygon(city)
    c = zone_wgs.centroid
    st.append("zones", [{"zone_id": f"{city.id}-zone", "name": city.zone.name, "name_th": city.zone.name_th,
                         "kind": "zone", "area_km2": round(zone_utm.area / 1e6, 4),
                         "population": city.zone.residents, "geometry": shapely.to_wkb(zone_wgs),
                         "lon": c.x, "lat": c.y}], strict=True)
    st.append("places", [{"place_id": p.id, "name": p.name, "kind": p.kind, "lon": p.lon, "lat": p.lat,
                          "in_zone": p.in_zone, "source": str(p.source)} for p in reg.places], strict=True)
    st.append("cameras", [{"camera_id": k.id, "kind": k.kind, "mount": k.mount, "mobile_kind": k.mobile_kind,
                           "owner": k.owner, "heading_deg": k.heading_deg % 360, "fov_deg": k.fov_deg,
                           "range_m": k.range_m, "faces": k.faces, "plates": k.plates, "in_zone": k.in_zone,
                           "online": True, "source": str(k.source), "lon": k.lon, "lat": k.lat,
                           "edge_u": k.edge_u, "edge_v": k.edge_v, "edge_key": k.edge_key}
                          for k in reg.cameras], strict=True)
    for layer in ("places", "cameras"):
        st.replace(layer, snap_table(G, st.table(layer), max_distance_m=250.0))
    return st


def build_twin(city_id: str, message: str = "ssz twin build") -> dict[str, Any]:
    """Build and store a city's twin (graph + first snapshot); returns a JSON-able summary."""
    from cluster.city import load_city_graph
    from twin import graph, graphstore
    from twin.snapshots import SnapshotStore

    city = load_city(city_id)
    G = load_city_graph(city)
    P = graph.project(G, city.utm_epsg)
    store = _store()
    gman = graphstore.save_graph(store, city.id, P)
    st = registry_state(city, G)
    man = SnapshotStore(store, city.id).create(st, message=message, author="ssz twin build")
    return {"city": city.id, "graph": {"digest": gman.digest, "crs": gman.crs, "nodes": gman.nodes,
                                       "edges": gman.edges, "nodes_key": gman.nodes_key, "edges_key": gman.edges_key},
            "snapshot": man.id, "layers": {n: r.rows for n, r in man.layers.items() if r.rows}}


@app.command("build")
def build(city: CityOpt) -> None:
    """Load the street graph, store it as GeoParquet, generate the registry layers and commit a snapshot."""
    try:
        _print(build_twin(city))
    except (ConfigError, StoreError, LayerError, ValueError) as e:
        _fail(str(e))


def _snaps(city: str) -> Any:
    from twin.snapshots import SnapshotStore

    return SnapshotStore(_store(), load_city(city).id)


def _summary(m: Any) -> dict[str, Any]:
    return {"id": m.id, "as_of": m.as_of.isoformat(), "created": m.created.isoformat(), "parent": m.parent,
            "author": m.author, "message": m.message, "rows": {n: r.rows for n, r in m.layers.items() if r.rows}}


@snapshot_app.command("list")
def snapshot_list(city: CityOpt) -> None:
    """List the city's snapshots, oldest first."""
    try:
        _print([_summary(m) for m in _snaps(city).list()])
    except (ConfigError, StoreError) as e:
        _fail(str(e))


@snapshot_app.command("show")
def snapshot_show(
        city: CityOpt,
        snapshot_id: Annotated[str | None, typer.Option("--id", help="Snapshot id (default: latest).")] = None,
        as_of: Annotated[str | None, typer.Option(help="Time, e.g. '2021-12-01 08:00'.")] = None,
        tz: Annotated[str, typer.Option(help="Time zone of a naive --as-of.")] = "Asia/Bangkok") -> None:
    """Show one snapshot (by id, by time, or the latest): its manifest and objects."""
    try:
        m = _snaps(city).resolve(snapshot_id, as_of, tz)
        _print({**_summary(m), "objects": {n: r.model_dump() for n, r in m.layers.items()}})
    except (ConfigError, StoreError, ValueError) as e:
        _fail(str(e))


@snapshot_app.command("create")
def snapshot_create(city: CityOpt,
                    from_dir: Annotated[Path | None, typer.Option(help="Folder of <layer>.parquet files to add "
                                                                       "to the latest snapshot's layers.")] = None,
                    replace: Annotated[bool, typer.Option(help="Replace layers from --from-dir instead of "
                                                               "appending.")] = False,
                    message: Annotated[str, typer.Option(help="Commit message.")] = "",
                    as_of: Annotated[str | None, typer.Option(help="Time the snapshot describes.")] = None,
                    tz: Annotated[str, typer.Option(help="Time zone of a naive --as-of.")] = "Asia/Bangkok") -> None:
    """Commit a new snapshot: the latest one plus validated layer files (or an unchanged checkpoint)."""
    from twin.schemas import LAYERS

    try:
        snaps = _snaps(city)
        head = snaps.latest()
        st = snaps.open(head.id).state() if head else TwinState(snaps.city)
        rejected: dict[str, list[str]] = {}
        if from_dir is not None:
            files = sorted(from_dir.glob("*.parquet"))
            unknown = [f.name for f in files if f.stem not in LAYERS]
            if unknown:
                _fail(f"{from_dir}: {unknown} are not layer files: name them <layer>.parquet, one of "
                      f"{', '.join(LAYERS)}")
            for f in files:
                table = pq.read_table(f)
                if replace:
                    st.replace(f.stem, table)
                else:
                    res = st.append_table(f.stem, table)
                    if res.rejected:
                        rejected[f.stem] = [str(r) for r in res.rejected[:20]]
        m = snaps.create(st, message=message, as_of=as_of, tz=tz, author="ssz twin snapshot create")
        _print({**_summary(m), "rejected": rejected})
    except (ConfigError, StoreError, LayerError, ValueError) as e:
        _fail(str(e))


@snapshot_app.command("diff")
def snapshot_diff(city: CityOpt, old: Annotated[str, typer.Argument(help="Older snapshot id.")],
                  new: Annotated[str, typer.Argument(help="Newer snapshot id.")]) -> None:
    """Rows added, removed and changed per layer between two snapshots."""
    try:
        d = _snaps(city).diff(old, new)
        _print({"old": d.old, "new": d.new, "layers": d.counts()})
    except (ConfigError, StoreError, ValueError) as e:
        _fail(str(e))


@snapshot_app.command("retain")
def snapshot_retain(city: CityOpt,
                    keep: Annotated[int | None, typer.Option(help="Keep the newest N snapshots.")] = None,
                    older_than_days: Annotated[float | None, typer.Option(help="Only delete snapshots older "
                                                                                "than this many days.")] = None,
                    dry_run: Annotated[bool, typer.Option(help="Report without deleting.")] = False) -> None:
    """Delete old snapshots and the objects no kept snapshot uses (the newest is always kept)."""
    try:
        older = dt.timedelta(days=older_than_days) if older_than_days is not None else None
        _print(_snaps(city).retain(keep_last=keep, older_than=older, dry_run=dry_run).model_dump())
    except (ConfigError, StoreError, ValueError) as e:
        _fail(str(e))
