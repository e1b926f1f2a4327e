"""What cameras see along the streets: street sample points, view wedges, candidate sites, coverage matrices.

A camera covers a street sample point when the point lies within its range AND inside its field-of-view
sector (the wedge ``heading ± fov/2``), not in a circle: a point behind the camera is not covered. With
``corridor_m`` set, the sight line from camera to point must also stay inside the street corridor (the
streets buffered by ``corridor_m``), a cheap stand-in for "no seeing through buildings" where no building
footprints are loaded. All geometry is metric (the graph projected with :func:`twin.graph.project`).

Demand is the street network sampled every ``spacing_m`` metres (one record per street, whatever its
direction); each sample point carries the street length it stands for, multiplied by a risk weight
(:mod:`twin.risk`) to give risk-weighted demand. Candidate sites are graph nodes (intersections, looking
along each incident street) and poles every ``pole_spacing_m`` along streets (looking both ways).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import osmnx as ox
import scipy.sparse as sp
import shapely
from scipy.spatial import cKDTree


class CoverageError(ValueError):
    """Coverage cannot be computed from what was given; the message says why."""


@dataclass
class Demand:
    """Street sample points (metric x/y) with the street length each stands for and its street edge."""

    x: np.ndarray
    y: np.ndarray
    length_m: np.ndarray
    edge: np.ndarray  # index into ``edges`` (one row per undirected street)
    edges: list[tuple[int, int, int]]
    edge_geoms: list[shapely.LineString]
    crs: object = None
    weight: np.ndarray | None = None  # risk weight per point; None = 1
    _tree: cKDTree | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def tree(self) -> cKDTree:
        """KD-tree over the sample points (built once)."""
        if self._tree is None:
            self._tree = cKDTree(np.column_stack([self.x, self.y]))
        return self._tree

    def weighted(self) -> np.ndarray:
        """Risk-weighted demand per point: street length × risk weight."""
        w = np.ones(len(self)) if self.weight is None else np.asarray(self.weight, float)
        return self.length_m * w

    def subset(self, mask: np.ndarray) -> Demand:
        """The points where ``mask`` is true (edge list kept, so edge indices stay valid)."""
        return Demand(self.x[mask], self.y[mask], self.length_m[mask], self.edge[mask], self.edges, self.edge_geoms,
                      self.crs, None if self.weight is None else np.asarray(self.weight)[mask])


@dataclass
class Sites:
    """Camera sites: metric position, heading (compass degrees), field of view (degrees) and range (m)."""

    x: np.ndarray
    y: np.ndarray
    heading_deg: np.ndarray
    fov_deg: np.ndarray
    range_m: np.ndarray
    kind: np.ndarray  # "node", "pole" or "existing"
    ref: np.ndarray  # node id, edge index or camera id, as strings

    def __len__(self) -> int:
        return len(self.x)

    def take(self, idx: np.ndarray) -> Sites:
        """The sites at the given indices."""
        idx = np.asarray(idx, dtype=int)
        return Sites(self.x[idx], self.y[idx], self.heading_deg[idx], self.fov_deg[idx], self.range_m[idx],
                     self.kind[idx], self.ref[idx])


def street_edges(P: nx.MultiDiGraph, zone: shapely.Geometry | None = None
                 ) -> tuple[list[tuple[int, int, int]], list[shapely.LineString]]:
    """One ``(u, v, key)`` and metric line per street, whatever its direction.

    Parameters
    ----------
    P
        The projected street graph (metres).
    zone
        Clip the streets to this metric polygon (None: all streets).

    Returns
    -------
    keys, lines
        Equal-length lists: the street's edge and its (clipped) line in metres.
    """
    if not P.graph.get("crs") or str(P.graph["crs"]).lower() in {"epsg:4326", "wgs84"}:
        raise CoverageError("coverage needs a metric graph: project it first with twin.graph.project(G, epsg)")
    e = ox.convert.graph_to_gdfs(P, nodes=False, fill_edge_geometry=True).reset_index()
    e = e[e["u"] != e["v"]]
    e["pair"] = [tuple(sorted(t)) for t in zip(e["u"], e["v"], strict=True)]
    e = e.drop_duplicates("pair")
    edges, geoms = [], []
    for u, v, k, g in zip(e["u"], e["v"], e["key"], e.geometry, strict=True):
        if zone is not None:
            if not g.intersects(zone):
                continue
            g = g.intersection(zone)
            parts = [p for p in getattr(g, "geoms", [g]) if isinstance(p, shapely.LineString) and p.length > 0.5]
            if not parts:
                continue
            g = max(parts, key=lambda p: p.length)
        edges.append((int(u), int(v), int(k)))
        geoms.append(g)
    if not edges:
        raise CoverageError("no streets inside the zone: check the zone polygon is in the graph's (metric) CRS")
    return edges, geoms


def sample_streets(P: nx.MultiDiGraph, spacing_m: float = 8.0, zone: shapely.Geometry | None = None) -> Demand:
    """Sample every street every ``spacing_m`` metres (mid-points of equal pieces), vectorised with shapely.

    Parameters
    ----------
    P
        The projected street graph (metres).
    spacing_m
        Spacing of the sample points along each street (m).
    zone
        Only the streets' parts inside this metric polygon.

    Returns
    -------
    Demand
        n sample points: metric ``x``, ``y``, the street length each stands for (``length_m``, m, <= spacing_m),
        their street (``edge``, a row of ``edges``) and a risk ``weight`` (None = 1 until a risk model sets it).
    """
    if spacing_m <= 0:
        raise CoverageError(f"spacing_m must be positive, got {spacing_m}")
    edges, geoms = street_edges(P, zone)
    lengths = shapely.length(np.array(geoms, dtype=object))
    n = np.maximum(1, np.ceil(lengths / spacing_m).astype(int))
    eidx = np.repeat(np.arange(len(geoms)), n)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    k = np.arange(eidx.size) - np.repeat(starts, n)
    frac = (k + 0.5) / n[eidx]
    pts = shapely.line_interpolate_point(np.array(geoms, dtype=object)[eidx], frac, normalized=True)
    xy = shapely.get_coordinates(pts)
    return Demand(xy[:, 0], xy[:, 1], (lengths / n)[eidx], eidx, edges, geoms, P.graph.get("crs"))


def wedge(x: float, y: float, heading_deg: float, fov_deg: float, range_m: float, steps: int = 16) -> shapely.Polygon:
    """The field-of-view sector of a camera as a polygon.

    Parameters
    ----------
    x, y
        The camera (metric, m).
    heading_deg
        Compass heading (degrees: 0 = north, clockwise).
    fov_deg
        Horizontal field of view (degrees).
    range_m
        Useful range (m).
    steps
        Vertices along the arc.

    Returns
    -------
    shapely.Polygon
    """
    if fov_deg >= 360:
        return shapely.Point(x, y).buffer(range_m)
    a = np.radians(heading_deg + np.linspace(-fov_deg / 2, fov_deg / 2, steps + 1))
    ring = [(x, y), *zip(x + range_m * np.sin(a), y + range_m * np.cos(a), strict=True), (x, y)]
    return shapely.Polygon(ring)


def _in_sector(dx: np.ndarray, dy: np.ndarray, heading: float, fov: float, rng: float) -> np.ndarray:
    d = np.hypot(dx, dy)
    bearing = np.degrees(np.arctan2(dx, dy))
    diff = np.abs((bearing - heading + 180.0) % 360.0 - 180.0)
    return (d <= rng) & ((diff <= fov / 2.0) | (d < 1.0) | (fov >= 360))


class Corridor:
    """The street corridor (streets buffered by ``width_m``), prepared for fast sight-line tests."""

    def __init__(self, demand: Demand, width_m: float):
        self.width_m = width_m
        self.poly = shapely.union_all(shapely.buffer(np.array(demand.edge_geoms, dtype=object), width_m, quad_segs=2))
        shapely.prepare(self.poly)

    def visible(self, x0: float, y0: float, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """True where the straight sight line from (x0, y0) to each point stays inside the corridor."""
        if len(px) == 0:
            return np.zeros(0, bool)
        lines = shapely.linestrings(np.stack([np.column_stack([np.full(len(px), x0), np.full(len(px), y0)]),
                                              np.column_stack([px, py])], axis=1))
        return shapely.covered_by(lines, self.poly)


def covered_by_site(demand: Demand, x: float, y: float, heading_deg: float, fov_deg: float, range_m: float,
                    corridor: Corridor | None = None) -> np.ndarray:
    """Indices of the demand points one camera sees: within range, inside the wedge and (optionally) in sight.

    Parameters
    ----------
    demand
        The street sample points.
    x, y, heading_deg, fov_deg, range_m
        The camera (metric position in m, compass heading and field of view in degrees, range in m).
    corridor
        When given, a point is seen only along a sight line inside the street corridor.

    Returns
    -------
    numpy.ndarray
        Shape (k,), int: indices into ``demand``.
    """
    idx = np.asarray(demand.tree.query_ball_point([x, y], r=range_m), dtype=int)
    if idx.size == 0:
        return idx
    ok = _in_sector(demand.x[idx] - x, demand.y[idx] - y, heading_deg, fov_deg, range_m)
    idx = idx[ok]
    if corridor is not None and idx.size:
        idx = idx[corridor.visible(x, y, demand.x[idx], demand.y[idx])]
    return np.sort(idx)


def coverage_matrix(demand: Demand, sites: Sites, corridor: Corridor | None = None) -> sp.csr_matrix:
    """Which site sees which demand point.

    Parameters
    ----------
    demand
        n street sample points.
    sites
        m camera sites.
    corridor
        Sight lines inside the street corridor (None: the wedge only).

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape (m, n), bool: entry (j, i) is true when site j sees point i.
    """
    rows, cols = [], []
    for j in range(len(sites)):
        idx = covered_by_site(demand, float(sites.x[j]), float(sites.y[j]), float(sites.heading_deg[j]),
                              float(sites.fov_deg[j]), float(sites.range_m[j]), corridor)
        rows.append(np.full(idx.size, j, dtype=np.int32))
        cols.append(idx.astype(np.int32))
    r = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    return sp.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(len(sites), len(demand)))


def _bearing(ax: float, ay: float, bx: float, by: float) -> float:
    return (math.degrees(math.atan2(bx - ax, by - ay)) + 360.0) % 360.0


def candidate_sites(P: nx.MultiDiGraph, demand: Demand, fov_deg: float = 60.0, range_m: float = 40.0,
                    pole_spacing_m: float = 50.0, max_headings: int = 4, zone: shapely.Geometry | None = None,
                    kerb_offset_m: float = 0.0) -> Sites:
    """Candidate camera sites on the streets.

    Intersections looking along up to ``max_headings`` incident streets, and poles every ``pole_spacing_m`` along
    each street looking both ways along it.

    Parameters
    ----------
    P
        The projected street graph (metres).
    demand
        The street sample points (sites with nothing to see are dropped).
    fov_deg, range_m
        Field of view (degrees) and range (m) of a new camera.
    pole_spacing_m
        Distance between poles along a street (m).
    max_headings
        Headings tried at an intersection.
    zone
        Only sites inside this metric polygon.
    kerb_offset_m
        Poles stand this far from the street's axis (m).

    Returns
    -------
    Sites
        Sites of kind ``node`` or ``pole``.
    """
    xs, ys, hs, kinds, refs = [], [], [], [], []
    # Intersections: look along each incident street (bearing of the street's first few metres).
    node_edges: dict[int, list[float]] = {}
    for (u, v, _k), g in zip(demand.edges, demand.edge_geoms, strict=True):
        for node, line in ((u, g), (v, g.reverse())):
            if node not in P.nodes:
                continue
            nx_, ny_ = P.nodes[node]["x"], P.nodes[node]["y"]
            a = shapely.Point(line.coords[0])
            if a.distance(shapely.Point(nx_, ny_)) > 1.0:
                continue  # the line was clipped by the zone: this end is not the node
            b = line.interpolate(min(10.0, line.length))
            node_edges.setdefault(node, []).append(_bearing(nx_, ny_, b.x, b.y))
    for node, bearings in node_edges.items():
        nx_, ny_ = P.nodes[node]["x"], P.nodes[node]["y"]
        if zone is not None and not zone.contains(shapely.Point(nx_, ny_)):
            continue
        uniq: list[float] = []
        for b in bearings:
            if all(abs((b - o + 180) % 360 - 180) > 20 for o in uniq):
                uniq.append(b)
        for b in uniq[:max_headings]:
            xs.append(nx_), ys.append(ny_), hs.append(b), kinds.append("node"), refs.append(str(node))
    # Poles along streets.
    for ei, g in enumerate(demand.edge_geoms):
        n = int(g.length // pole_spacing_m)
        for k in range(1, n + 1):
            d = k * g.length / (n + 1)
            p = g.interpolate(d)
            a, b = g.interpolate(max(0.0, d - 1.0)), g.interpolate(min(g.length, d + 1.0))
            br = _bearing(a.x, a.y, b.x, b.y)
            px = p.x + kerb_offset_m * math.cos(math.radians(br))
            py = p.y - kerb_offset_m * math.sin(math.radians(br))
            if zone is not None and not zone.contains(shapely.Point(px, py)):
                continue
            for h in (br, (br + 180.0) % 360.0):
                xs.append(px), ys.append(py), hs.append(h), kinds.append("pole"), refs.append(str(ei))
    m = len(xs)
    return Sites(np.array(xs, float), np.array(ys, float), np.array(hs, float), np.full(m, float(fov_deg)),
                 np.full(m, float(range_m)), np.array(kinds, dtype=object), np.array(refs, dtype=object))


def sites_from_cameras(x: np.ndarray, y: np.ndarray, heading_deg: np.ndarray, fov_deg: np.ndarray,
                       range_m: np.ndarray, ids: list[str] | np.ndarray) -> Sites:
    """Existing cameras as sites of kind ``existing``.

    Parameters
    ----------
    x, y
        Shape (m,): metric positions (m).
    heading_deg, fov_deg, range_m
        Shape (m,): compass heading and field of view (degrees), range (m).
    ids
        Shape (m,): the camera ids.

    Returns
    -------
    Sites
    """
    n = len(x)
    if not (len(y) == len(heading_deg) == len(fov_deg) == len(range_m) == len(ids) == n):
        raise CoverageError("camera arrays must all have the same length")
    return Sites(np.asarray(x, float), np.asarray(y, float), np.asarray(heading_deg, float) % 360.0,
                 np.asarray(fov_deg, float), np.asarray(range_m, float), np.full(n, "existing", dtype=object),
                 np.asarray(ids, dtype=object))


def cameras_to_sites(cameras: object, epsg: int) -> Sites:
    """Fixed cameras as sites, from WGS84 rows.

    Parameters
    ----------
    cameras
        A DataFrame (or records) with ``lon``, ``lat``, ``heading_deg``, ``fov_deg``, ``range_m`` and ``id`` or
        ``camera_id``.
    epsg
        The metric CRS of the sites.

    Returns
    -------
    Sites
        Sites of kind ``existing``.
    """
    import pandas as pd

    from twin.graph import utm_transformers

    df = pd.DataFrame(cameras)
    if "mount" in df:
        df = df[df["mount"] == "fixed"]
    missing = {"lon", "lat", "heading_deg", "fov_deg", "range_m"} - set(df.columns)
    if missing:
        raise CoverageError(f"cameras lack columns {sorted(missing)}")
    to_utm, _ = utm_transformers(epsg)
    x, y = to_utm.transform(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    ids = df["camera_id"] if "camera_id" in df else df["id"]
    return sites_from_cameras(np.asarray(x), np.asarray(y), df["heading_deg"].to_numpy(float),
                              df["fov_deg"].to_numpy(float), df["range_m"].to_numpy(float), ids.to_numpy())


def covered_mask(demand: Demand, sites: Sites, corridor: Corridor | None = None) -> np.ndarray:
    """Which demand points at least one of ``sites`` sees.

    Returns
    -------
    numpy.ndarray
        Shape (n,), bool, one per demand point.
    """
    if len(sites) == 0:
        return np.zeros(len(demand), bool)
    A = coverage_matrix(demand, sites, corridor)
    return np.asarray(A.sum(axis=0)).ravel() > 0
