"""A city's digital twin from its registry: the zone, place and camera layers, and the first snapshot.

:func:`build_twin` stores the city's street graph as GeoParquet (``graphs/<city>/<digest>/``), turns the
registry into the zone, place and camera layers (each point snapped to its street edge) and commits them as
a snapshot. ``ssz twin build``, ``ssz demo`` and the notebooks use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from cluster.city import CityModel, city_model
from cluster.config import CityConfig, load_city
from cluster.registry import Registry, zone_polygon
from twin.layers import TwinState, validate_table
from twin.objectstore import Store

if TYPE_CHECKING:
    from twin.snapshots import Snapshot


def _store() -> Store:
    from cluster import store

    return store.open_store()


def registry_state(city: CityModel) -> TwinState:
    """The zone, place and camera layers of a city from its generated registry, snapped to the graph.

    Every row is validated by the layer appenders (strict: a bad registry row is a bug and fails loudly).

    Parameters
    ----------
    city
        The loaded city (its WGS84 graph is used for snapping).

    Returns
    -------
    twin.layers.TwinState
        Layers ``zones`` (1 row), ``places`` and ``cameras`` (one row per registry entry).
    """
    from twin.snap import snap_table

    cfg, G, reg = city.config, city.graph, city.registry
    st = TwinState(cfg.id)
    zone_wgs, zone_utm = zone_polygon(cfg)
    c = zone_wgs.centroid
    st.append("zones", [{"zone_id": f"{cfg.id}-zone", "name": cfg.zone.name, "name_th": cfg.zone.name_th,
                         "kind": "zone", "area_km2": round(zone_utm.area / 1e6, 4),
                         "population": cfg.zone.residents, "geometry": shapely.to_wkb(zone_wgs),
                         "lon": c.x, "lat": c.y}], strict=True)
    st.append("places", [{"place_id": p.id, "name": p.name, "kind": p.kind, "lon": p.lon, "lat": p.lat,
                          "in_zone": p.in_zone, "source": str(p.source)} for p in reg.places], strict=True)
    st.append("cameras", [{"camera_id": k.id, "kind": str(k.kind), "mount": k.mount, "mobile_kind": k.mobile_kind,
                           "owner": k.owner, "heading_deg": k.heading_deg % 360, "fov_deg": k.fov_deg,
                           "range_m": k.range_m, "faces": k.faces, "plates": k.plates, "in_zone": k.in_zone,
                           "online": True, "source": str(k.source), "lon": k.lon, "lat": k.lat,
                           "edge_u": k.edge_u, "edge_v": k.edge_v, "edge_key": k.edge_key}
                          for k in reg.cameras], strict=True)
    for layer in ("places", "cameras"):
        st.replace(layer, snap_table(G, st.table(layer), max_distance_m=250.0))
    return st


def build_twin(city: str | CityConfig | CityModel, message: str = "ssz twin build",
               author: str = "ssz twin build") -> dict[str, Any]:
    """Build and store a city's twin (graph + first snapshot); returns a JSON-able summary.

    Parameters
    ----------
    city
        A loaded :class:`~cluster.city.CityModel` (nothing is loaded again), or a city id, YAML path or config.
    message
        The snapshot's commit message.

    Returns
    -------
    dict
        ``city``, ``graph`` (digest, CRS, node and edge counts, object keys), ``snapshot`` (its id) and
        ``layers`` (rows per non-empty layer).

    Raises
    ------
    cluster.config.ConfigError, twin.objectstore.StoreError, twin.layers.LayerError
        A bad city, an unreachable store, or a registry row that does not fit its layer.
    """
    from twin import graphstore
    from twin.snapshots import SnapshotStore

    model = city_model(city)
    store = _store()
    gman = graphstore.save_graph(store, model.id, model.projected)
    st = registry_state(model)
    man = SnapshotStore(store, model.id).create(st, message=message, author=author)
    return {"city": model.id, "graph": {"digest": gman.digest, "crs": gman.crs, "nodes": gman.nodes,
                                        "edges": gman.edges, "nodes_key": gman.nodes_key,
                                        "edges_key": gman.edges_key},
            "snapshot": man.id, "layers": {n: r.rows for n, r in man.layers.items() if r.rows}}


class TwinNotBuilt(RuntimeError):
    """The city's twin lacks its street graph and registry layers, and this store may not be written."""


def _store_is_embedded() -> bool:
    """True on the embedded default store (no ``SSZ_S3_ENDPOINT``): the only one a notebook may build on."""
    from twin.objectstore import S3Settings

    return S3Settings.from_env() is None


def twin_snapshot(city: str | CityConfig | CityModel, message: str = "notebook",
                  author: str = "notebook (cluster.citytwin.twin_snapshot)") -> Snapshot:
    """The city's latest snapshot, with its street graph and registry layers (what a notebook reads).

    Read-only on an external store (``SSZ_S3_ENDPOINT``): a twin with no snapshot, or whose latest snapshot
    holds no camera, is an error that says to run ``ssz twin build``. On the embedded default store it is
    built instead (:func:`build_twin`), or the registry layers (zones, places, cameras) are committed on top of
    the field data already there, keeping it; what was committed is printed, with ``author``. A layer another
    writer fills in the meantime is kept, never overwritten.

    Raises
    ------
    TwinNotBuilt
        On an external store, when the twin has no camera layer yet.
    cluster.config.ConfigError, twin.objectstore.StoreError, twin.snapshots.SnapshotConflict
        A bad city, an unreachable store (``ssz store up`` starts the embedded one), a twin that kept changing.
    """
    from twin import graphstore
    from twin.snapshots import SnapshotStore

    cfg = city.config if isinstance(city, CityModel) else city if isinstance(city, CityConfig) else load_city(city)
    store = _store()
    snaps = SnapshotStore(store, cfg.id)
    head = snaps.latest()
    if head is not None and head.layers.get("cameras") and head.layers["cameras"].rows:
        return snaps.open()
    if not _store_is_embedded():
        what = "no snapshot" if head is None else f"snapshot {head.id} has no camera layer"
        raise TwinNotBuilt(f"the {cfg.id!r} twin on the external store has {what}; a notebook does not write "
                           f"there: run `ssz twin build --city {cfg.id}` (or `ssz demo --quick`) first")
    if head is None:
        built = build_twin(city, message=message, author=author)
        print(f"twin_snapshot: built the {cfg.id!r} twin on the embedded store: snapshot {built['snapshot']} "
              f"(layers {built['layers']}), author {author!r}")
        return snaps.open()
    model = city_model(city)  # the street graph is loaded only here
    graphstore.save_graph(store, model.id, model.projected)
    registry = {n: t for n, t in registry_state(model).tables().items() if n in ("zones", "places", "cameras")}

    def add_missing(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:  # re-checked on every try
        return {**tables, **{n: t for n, t in registry.items() if not (n in tables and tables[n].num_rows)}}

    man = snaps.update(add_missing, message=message, author=author)
    print(f"twin_snapshot: added the registry layers to the {cfg.id!r} twin on the embedded store: snapshot "
          f"{man.id} (on {head.id}), author {author!r}")
    return snaps.open()


def validated_frame(layer: str, df: pd.DataFrame, city: str) -> pd.DataFrame:
    """The frame checked against the twin schema of ``layer`` (strict: a bad generated row is a bug).

    Raises
    ------
    ValueError
        When a row does not fit the layer (the first three rejections are named).
    """
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = df[c].dt.floor("ms")  # the twin keeps milliseconds
    res = validate_table(layer, pa.Table.from_pandas(df, preserve_index=False), city)
    if res.rejected:
        raise ValueError(f"demo {layer} rows do not fit the twin schema: {res.rejected[:3]}")
    return res.table.to_pandas()


def cameras_layer(reg: Registry) -> pd.DataFrame:
    """The registry's cameras as a ``cameras`` layer frame (``id`` becomes ``camera_id``), validated."""
    df = reg.cameras_frame().rename(columns={"id": "camera_id"})
    df["online"] = True
    df["edge_offset_m"] = np.nan
    keep = ["camera_id", "city", "kind", "mount", "mobile_kind", "owner", "heading_deg", "fov_deg", "range_m",
            "faces", "plates", "in_zone", "online", "source", "lon", "lat", "edge_u", "edge_v", "edge_key",
            "edge_offset_m"]
    df["heading_deg"] = df["heading_deg"] % 360.0
    return validated_frame("cameras", df[keep], reg.city.id)
