"""The street graph of a city as GeoParquet in the object store, so a cluster never re-downloads or re-parses it.

A stored graph is three objects under ``graphs/<city>/<digest>/`` in the ``twin`` bucket: ``nodes.parquet``
and ``edges.parquet`` (GeoParquet, the graph's CRS kept in the geo metadata) and ``graph.json`` (the graph's
attributes, counts and which columns were JSON-encoded), written last: a graph whose ``graph.json`` exists
is complete. ``<digest>`` is a hash of the graph's content (CRS, node positions, edges and lengths), so
saving the same graph twice writes nothing and different graphs of a city live side by side.

OSM attributes that osmnx merges into lists when it simplifies a graph (``osmid``, ``highway``, ``name``,
...) are stored as JSON text in their column and decoded on load, so :func:`load_graph` gives back an
osmnx ``MultiDiGraph`` with the same nodes, edges and attributes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
from pydantic import BaseModel

from twin.objectstore import TWIN_BUCKET, Store, StoreError, explain

PREFIX = "graphs"


class GraphManifest(BaseModel):
    """What ``graph.json`` holds."""

    city: str
    digest: str
    crs: str
    nodes: int
    edges: int
    created: dt.datetime
    graph_attrs: dict[str, Any]
    json_columns: dict[str, list[str]]
    nodes_key: str
    edges_key: str


@dataclass(frozen=True)
class _Frames:
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame


def graph_digest(G: nx.MultiDiGraph) -> str:
    """A content hash of a graph: CRS, node ids and positions, edges (u, v, key) and lengths.

    Returns
    -------
    str
        16 hex digits; equal graphs, equal digests.
    """
    h = hashlib.sha256(str(G.graph.get("crs", "")).encode())
    nodes = sorted(G.nodes(data=True), key=lambda t: t[0])
    h.update(np.array([n for n, _ in nodes], dtype=np.int64).tobytes())
    h.update(np.round(np.array([(d["x"], d["y"]) for _, d in nodes], dtype=np.float64), 6).tobytes())
    edges = sorted((u, v, k, round(float(d.get("length", 0.0)), 3)) for u, v, k, d in G.edges(keys=True, data=True))
    h.update(np.array(edges, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _encode(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """JSON-encode object columns that hold anything but text (lists, mixed bool/list), for Parquet."""
    df = df.copy()
    encoded = []
    for c in df.columns:
        if c == "geometry" or df[c].dtype != object:
            continue
        vals = [None if _missing(x) else x for x in df[c]]
        if all(x is None or isinstance(x, str) for x in vals):
            continue
        df[c] = [None if x is None else json.dumps(x, ensure_ascii=False, default=_np_default) for x in vals]
        encoded.append(c)
    return df, encoded


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x))


def _np_default(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot store {type(x).__name__} in a graph column")


def _decode(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    for c in cols:
        df[c] = [json.loads(x) if isinstance(x, str) else None for x in df[c]]
    return df


def to_frames(G: nx.MultiDiGraph) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The graph as ``(nodes, edges)`` GeoDataFrames as osmnx makes them (edge geometry filled).
    """
    return ox.convert.graph_to_gdfs(G, nodes=True, edges=True, fill_edge_geometry=True)


def _parquet_bytes(gdf: gpd.GeoDataFrame) -> bytes:
    buf = io.BytesIO()
    gdf.to_parquet(buf, index=True, compression="zstd")
    return buf.getvalue()


def _exists(store: Store, bucket: str, key: str) -> bool:
    return store.stat(bucket, key) is not None


def save_graph(store: Store, city: str, G: nx.MultiDiGraph, bucket: str = TWIN_BUCKET) -> GraphManifest:
    """Store a graph (WGS84 or projected) as GeoParquet under ``graphs/<city>/<digest>/``.

    Saving the same graph again writes nothing.

    Parameters
    ----------
    store
        The object store.
    city
        City id.
    G
        The graph.
    bucket
        The bucket (the twin's by default).

    Returns
    -------
    GraphManifest
        Digest, CRS, node and edge counts, object keys.
    """
    digest = graph_digest(G)
    base = f"{PREFIX}/{city}/{digest}"
    if _exists(store, bucket, f"{base}/graph.json"):
        return GraphManifest.model_validate_json(store.get_bytes(bucket, f"{base}/graph.json"))
    nodes, edges = to_frames(G)
    # Edges keep their reversed/oneway flags etc.; the (u, v, key) index is written as columns.
    nodes_enc, n_json = _encode(nodes)
    edges_enc, e_json = _encode(edges)
    store.put_bytes(bucket, f"{base}/nodes.parquet", _parquet_bytes(nodes_enc))
    store.put_bytes(bucket, f"{base}/edges.parquet", _parquet_bytes(edges_enc))
    attrs = {k: (v if isinstance(v, str | int | float | bool) or v is None else str(v)) for k, v in G.graph.items()}
    man = GraphManifest(city=city, digest=digest, crs=str(G.graph.get("crs")), nodes=len(G),
                        edges=G.number_of_edges(), created=dt.datetime.now(dt.UTC), graph_attrs=attrs,
                        json_columns={"nodes": n_json, "edges": e_json}, nodes_key=f"{base}/nodes.parquet",
                        edges_key=f"{base}/edges.parquet")
    store.put_bytes(bucket, f"{base}/graph.json", man.model_dump_json(indent=2).encode(), "application/json")
    return man


def list_graphs(store: Store, city: str, bucket: str = TWIN_BUCKET) -> list[GraphManifest]:
    """The complete stored graphs of a city, oldest first (manifests).
    """
    try:
        keys = [o.object_name for o in store.client.list_objects(bucket, prefix=f"{PREFIX}/{city}/", recursive=True)
                if o.object_name.endswith("/graph.json")]
    except Exception as e:
        raise explain(e, store.settings) from e
    mans = [GraphManifest.model_validate_json(store.get_bytes(bucket, k)) for k in keys]
    return sorted(mans, key=lambda m: m.created)


def load_frames(store: Store, man: GraphManifest, bucket: str = TWIN_BUCKET) -> tuple[gpd.GeoDataFrame,
                                                                                         gpd.GeoDataFrame]:
    """The stored ``(nodes, edges)`` GeoDataFrames of a graph, list columns decoded.
    """
    nodes = gpd.read_parquet(io.BytesIO(store.get_bytes(bucket, man.nodes_key)))
    edges = gpd.read_parquet(io.BytesIO(store.get_bytes(bucket, man.edges_key)))
    return _decode(nodes, man.json_columns["nodes"]), _decode(edges, man.json_columns["edges"])


def load_graph(store: Store, city: str, digest: str | None = None, crs: str | None = None,
               bucket: str = TWIN_BUCKET) -> nx.MultiDiGraph:
    """Load a stored graph of a city.

    Parameters
    ----------
    store
        The object store.
    city
        City id.
    digest
        A graph's digest; default the newest graph (optionally the newest in ``crs``).
    crs
        Only graphs in this CRS (e.g. ``EPSG:32647``).
    bucket
        The bucket.

    Returns
    -------
    networkx.MultiDiGraph

    Raises
    ------
    twin.objectstore.StoreError
        When the city has no such graph.
    """
    mans = list_graphs(store, city, bucket)
    if digest is not None:
        mans = [m for m in mans if m.digest == digest]
    if crs is not None:
        mans = [m for m in mans if m.crs.lower() == crs.lower()]
    if not mans:
        have = ", ".join(f"{m.digest} ({m.crs})" for m in list_graphs(store, city, bucket)) or "none"
        raise StoreError(f"no stored street graph for city {city!r} matching digest={digest} crs={crs} "
                         f"(stored: {have}): run `ssz twin build --city {city}` first")
    man = mans[-1]
    nodes, edges = load_frames(store, man, bucket)
    G = ox.convert.graph_from_gdfs(nodes, edges, graph_attrs=dict(man.graph_attrs))
    for _, _, d in G.edges(data=True):  # osmnx adds geometry to every edge; drop the straight fill-ins
        geom = d.get("geometry")
        if geom is not None and len(geom.coords) == 2:
            del d["geometry"]
    return G
