"""Snapping many lon/lat points to street-graph edges in one vectorised call, with one cached index per graph.

``osmnx.distance.nearest_edges`` builds a new STRtree from every edge on each call, which is fine once but
ruinous for GPS streams. :func:`edge_index` builds one shapely STRtree per graph object (cached weakly, so
it goes away with the graph) in a metric CRS, over the straight segments of the distinct street
geometries, and :meth:`EdgeIndex.snap` answers a million points in two vectorised stages: segments within
12 m of each point (``STRtree.query`` with ``dwithin``, exact distances, minimum per point), then
``STRtree.query_nearest`` for the points left. It returns the edge (u, v, key), the offset along the edge
from u in metres and the distance from the point to the street in metres; large inputs run on threads
(shapely releases the GIL). Distances equal osmnx's ``nearest_edges`` to 1e-6 m.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import networkx as nx
import numpy as np
import osmnx as ox
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS, Transformer

from twin.graph import utm_epsg_for

CHUNK = 50_000  # points per task when snapping on several threads
NEAR_M = 12.0  # first-stage search radius (m): typical GPS error, so most fixes are answered by it


@dataclass
class SnapResult:
    """Per input point: the nearest edge (u, v, key), offset along it from u (m) and distance to it (m).

    Points farther than ``max_distance_m`` (or NaN input) get ``u = v = key = -1`` and NaN offset/distance;
    ``matched`` says which points were snapped.
    """

    u: np.ndarray
    v: np.ndarray
    key: np.ndarray
    offset_m: np.ndarray
    distance_m: np.ndarray
    edge_index: np.ndarray  # row of the edge in EdgeIndex.edges, -1 when unmatched

    @property
    def matched(self) -> np.ndarray:
        """Boolean mask of snapped points."""
        return self.edge_index >= 0

    def __len__(self) -> int:
        return len(self.u)


class EdgeIndex:
    """One STRtree over a graph's street segments in a metric CRS, plus the edge attributes by edge row."""

    def __init__(self, G: nx.MultiDiGraph):
        crs = CRS.from_user_input(G.graph.get("crs", "EPSG:4326"))
        edges = ox.convert.graph_to_gdfs(G, nodes=False, fill_edge_geometry=True)
        if crs.is_geographic:
            b = edges.total_bounds
            epsg = utm_epsg_for((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
            edges = edges.to_crs(epsg=epsg)
            crs = CRS.from_epsg(epsg)
        self.crs = crs
        self._to_metric = Transformer.from_crs(4326, crs, always_xy=True)
        idx = edges.index
        self.u = np.asarray(idx.get_level_values(0), dtype=np.int64)
        self.v = np.asarray(idx.get_level_values(1), dtype=np.int64)
        self.key = np.asarray(idx.get_level_values(2), dtype=np.int64)
        self.names = edges["name"].to_numpy(object) if "name" in edges.columns else np.full(len(edges), None)
        self.geoms = np.asarray(edges.geometry.values, dtype=object)
        # The tree holds straight segments of the distinct street geometries: a two-way street is one
        # geometry (its reverse edge is dropped), and short segments have tight boxes, so a nearest query
        # tests few candidates. Each segment knows its edge row and where it starts along that edge.
        _, first = np.unique(shapely.to_wkb(shapely.normalize(self.geoms)), return_index=True)
        first = np.sort(first)
        coords, part = shapely.get_coordinates(self.geoms[first], return_index=True)
        inner = part[1:] == part[:-1]
        a, b = coords[:-1][inner], coords[1:][inner]
        self.seg_edge = first[part[:-1][inner]]
        seg_len = np.hypot(*(b - a).T)
        starts = np.cumsum(seg_len) - seg_len  # running length over all segments...
        edge_first_seg = np.r_[0, np.flatnonzero(np.diff(part[:-1][inner])) + 1]
        base = np.repeat(starts[edge_first_seg], np.diff(np.r_[edge_first_seg, len(seg_len)]))
        self.seg_start = starts - base  # ...restarted at each edge: metres from u to the segment start
        self.segments = shapely.linestrings(np.stack([a, b], axis=1))
        self.tree = shapely.STRtree(self.segments)
        self._rows: dict[tuple[int, int, int], int] | None = None

    def __len__(self) -> int:
        return len(self.geoms)

    def to_metric(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat arrays in the index's metric CRS."""
        return self._to_metric.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))

    def snap(self, lon: np.ndarray, lat: np.ndarray, max_distance_m: float | None = None,
             workers: int | None = None) -> SnapResult:
        """Snap WGS84 points to their nearest edges (vectorised; ties go to one of the tied edges)."""
        x, y = self.to_metric(lon, lat)
        return self.snap_xy(x, y, max_distance_m, workers)

    def snap_xy(self, x: np.ndarray, y: np.ndarray, max_distance_m: float | None = None,
                workers: int | None = None) -> SnapResult:
        """Snap points already in the index's metric CRS.

        Large inputs are cut into chunks answered on ``workers`` threads (default: the CPU count); shapely
        releases the GIL in its vectorised calls, so the threads run in parallel.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = len(x)
        workers = workers or os.cpu_count() or 1
        if workers > 1 and n >= 2 * CHUNK:
            parts = np.array_split(np.arange(n), max(workers, -(-n // CHUNK)))
            with ThreadPoolExecutor(workers) as ex:
                res = list(ex.map(lambda ix: self._snap_xy(x[ix], y[ix], max_distance_m), parts))
            return SnapResult(*(np.concatenate([getattr(r, f) for r in res]) for f in
                                ("u", "v", "key", "offset_m", "distance_m", "edge_index")))
        return self._snap_xy(x, y, max_distance_m)

    def _snap_xy(self, x: np.ndarray, y: np.ndarray, max_distance_m: float | None) -> SnapResult:
        n = len(x)
        pts = shapely.points(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        ok = ~(np.isnan(x) | np.isnan(y))
        which = np.full(n, -1, dtype=np.int64)
        dist = np.full(n, np.nan)
        if ok.any():
            sel = np.flatnonzero(ok)
            segment = np.full(n, -1, dtype=np.int64)
            # Stage 1 (most GPS fixes): every segment within NEAR_M of a point, exact distances, minimum per
            # point. A point with any segment that close has its nearest segment among them.
            near = NEAR_M if max_distance_m is None else min(NEAR_M, max_distance_m)
            p, e = self.tree.query(pts[sel], predicate="dwithin", distance=near)
            if len(p):
                d = shapely.distance(pts[sel][p], self.segments[e])
                o = np.lexsort((e, d, p))
                p, e, d = p[o], e[o], d[o]
                head = np.r_[True, p[1:] != p[:-1]]
                segment[sel[p[head]]] = e[head]
                dist[sel[p[head]]] = d[head]
            # Stage 2: the rest with the tree's nearest-neighbour search.
            rest = sel[segment[sel] < 0]
            if len(rest) and (max_distance_m is None or max_distance_m > near):
                (src, seg), d = self.tree.query_nearest(pts[rest], max_distance=max_distance_m,
                                                        return_distance=True, all_matches=False)
                segment[rest[src]] = seg
                dist[rest[src]] = d
            found = segment >= 0
            which[found] = self.seg_edge[segment[found]]
        hit = which >= 0
        offset = np.full(n, np.nan)
        if hit.any():
            sg = segment[hit]
            offset[hit] = self.seg_start[sg] + shapely.line_locate_point(self.segments[sg], pts[hit])
        take = np.where(hit, which, 0)
        neg = np.int64(-1)
        return SnapResult(
            u=np.where(hit, self.u[take], neg), v=np.where(hit, self.v[take], neg),
            key=np.where(hit, self.key[take], neg), offset_m=offset, distance_m=dist, edge_index=which)

    def offsets(self, u: np.ndarray, v: np.ndarray, key: np.ndarray, lon: np.ndarray,
                lat: np.ndarray) -> np.ndarray:
        """Offset (m from u) of each point along a GIVEN edge; NaN where the edge is not in the graph."""
        if self._rows is None:
            self._rows = {(int(a), int(b), int(c)): i for i, (a, b, c) in enumerate(zip(self.u, self.v, self.key,
                                                                                        strict=True))}
        rows = np.array([self._rows.get((int(a), int(b), int(c)), -1) for a, b, c in zip(u, v, key, strict=True)],
                        dtype=np.int64)
        x, y = self.to_metric(lon, lat)
        out = np.full(len(rows), np.nan)
        ok = rows >= 0
        if ok.any():
            out[ok] = shapely.line_locate_point(self.geoms[rows[ok]], shapely.points(x[ok], y[ok]))
        return out

    def name_of(self, res: SnapResult) -> list[str | None]:
        """Street name of each snapped edge (lists of names joined with ' / '); None when unmatched or unnamed."""
        out: list[str | None] = []
        for i in res.edge_index:
            if i < 0:
                out.append(None)
                continue
            nm = self.names[i]
            if isinstance(nm, list):
                nm = " / ".join(str(x) for x in nm)
            out.append(None if nm is None or (isinstance(nm, float) and np.isnan(nm)) else str(nm))
        return out


_CACHE: weakref.WeakKeyDictionary[nx.MultiDiGraph, EdgeIndex] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def edge_index(G: nx.MultiDiGraph) -> EdgeIndex:
    """The cached :class:`EdgeIndex` of a graph, built on first use (one per graph object).

    Parameters
    ----------
    G
        A WGS84 street graph.

    Returns
    -------
    EdgeIndex
        An STRtree over the street segments in a metric CRS (the UTM zone of a WGS84 graph), cached per graph.
    """
    with _LOCK:
        idx = _CACHE.get(G)
        if idx is None:
            idx = EdgeIndex(G)
            _CACHE[G] = idx
        return idx


def snap_points(G: nx.MultiDiGraph, lon: np.ndarray, lat: np.ndarray,
                max_distance_m: float | None = None, workers: int | None = None) -> SnapResult:
    """Snap WGS84 points to the nearest edges of ``G`` in one vectorised call (cached index).

    Parameters
    ----------
    G
        A WGS84 street graph.
    lon, lat
        Shape (n,): WGS84 degrees; NaN rows are left unmatched.
    max_distance_m
        Points farther than this from any edge (m) stay unmatched; None = no limit.
    workers
        Threads for large batches (None: chosen by size).

    Returns
    -------
    SnapResult
        Per point: edge ``u``, ``v``, ``key``, ``offset_m`` along the edge, ``distance_m`` and ``matched``.
    """
    return edge_index(G).snap(lon, lat, max_distance_m, workers)


def snap_table(G: nx.MultiDiGraph, table: pa.Table, max_distance_m: float | None = 100.0,
               overwrite: bool = False) -> pa.Table:
    """Fill a layer table's ``edge_u/edge_v/edge_key/edge_offset_m`` from its ``lon``/``lat`` columns.

    Rows that already have an edge keep it unless ``overwrite`` (their missing offsets are measured along that
    edge); points farther than ``max_distance_m`` from any street stay unsnapped (null edge).

    Parameters
    ----------
    G
        A WGS84 street graph.
    table
        A point layer table (n rows) with ``lon``, ``lat`` and the edge columns.
    max_distance_m
        The snapping limit (m); None = no limit.
    overwrite
        Snap every row again.

    Returns
    -------
    pyarrow.Table
        The table (n rows) with the edge columns filled.

    Raises
    ------
    ValueError
        When the table is not a point layer (a column is missing).
    """
    for c in ("lon", "lat", "edge_u", "edge_v", "edge_key", "edge_offset_m"):
        if c not in table.column_names:
            raise ValueError(f"table has no {c!r} column: only point layers can be snapped")
    lon = table.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    lat = table.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    todo = np.ones(len(lon), dtype=bool) if overwrite else \
        np.asarray(pc.is_null(table.column("edge_u")).to_numpy(zero_copy_only=False), dtype=bool)
    # Rows that name their edge but lack the offset get it measured along that edge.
    need_off = ~todo & np.asarray(pc.is_null(table.column("edge_offset_m")).to_numpy(zero_copy_only=False), dtype=bool)
    if need_off.any():
        off = table.column("edge_offset_m").to_numpy(zero_copy_only=False).astype(np.float64)
        sel = np.flatnonzero(need_off)
        uu, vv, kk = (table.column(c).take(pa.array(sel)).to_numpy(zero_copy_only=False)
                      for c in ("edge_u", "edge_v", "edge_key"))
        off[sel] = edge_index(G).offsets(uu, vv, kk, lon[sel], lat[sel])
        i = table.schema.get_field_index("edge_offset_m")
        table = table.set_column(i, table.schema.field(i), pa.array(off, pa.float64(), mask=np.isnan(off)))
    if not todo.any():
        return table
    lon_s, lat_s = np.where(todo, lon, np.nan), np.where(todo, lat, np.nan)
    r = snap_points(G, lon_s, lat_s, max_distance_m)
    m = r.matched
    out = table
    for col, vals, typ in (("edge_u", r.u, pa.int64()), ("edge_v", r.v, pa.int64()), ("edge_key", r.key, pa.int32()),
                           ("edge_offset_m", r.offset_m, pa.float64())):
        new = pa.array(vals, type=typ, mask=~m)
        old = table.column(col).combine_chunks()
        merged = pc.if_else(pa.array(todo), new, old)
        out = out.set_column(out.schema.get_field_index(col), out.schema.field(col), merged)
    return out
