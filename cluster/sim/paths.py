"""Moving on the street graph: node paths as polylines, positions along them over time, routing.

The scenario's people and vehicles (:mod:`cluster.sim.scenario`) and the synthetic patrols
(:mod:`cluster.sim.fielddata`) all move with :func:`walk` along :func:`path_polyline` routes from a
:class:`Router`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree


def edge_xy(P: nx.MultiDiGraph, u: int, v: int) -> np.ndarray:
    """Vertices of the shortest u->v edge (its geometry if any, oriented u->v)."""
    data = P.get_edge_data(u, v) or {}
    rev = False
    if not data:
        data, rev = P.get_edge_data(v, u) or {}, True
    if not data:
        raise nx.NetworkXNoPath(f"no edge {u}-{v}")
    d = min(data.values(), key=lambda e: e.get("length", 0.0))
    geom = d.get("geometry")
    if geom is not None:
        xy = np.asarray(geom.coords, float)[:, :2]
        # orient the geometry from u to v
        pu = np.array([P.nodes[u]["x"], P.nodes[u]["y"]])
        if np.hypot(*(xy[0] - pu)) > np.hypot(*(xy[-1] - pu)):
            xy = xy[::-1]
        return xy
    a, b = (v, u) if rev else (u, v)
    xy = np.array([[P.nodes[a]["x"], P.nodes[a]["y"]], [P.nodes[b]["x"], P.nodes[b]["y"]]])
    return xy[::-1] if rev else xy


def path_polyline(P: nx.MultiDiGraph, nodes: Sequence[int]) -> np.ndarray:
    """The street polyline (metric x, y) through a node path."""
    parts = [edge_xy(P, u, v) for u, v in itertools.pairwise(nodes)]
    if not parts:
        return np.array([[P.nodes[nodes[0]]["x"], P.nodes[nodes[0]]["y"]]] * 2, float)
    out = [parts[0]] + [p[1:] for p in parts[1:]]
    return np.concatenate(out)


def walk(polyline: np.ndarray, speed_mps: float, step_s: float, lateral_m: float = 0.0, *,
         seg_m: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions every ``step_s`` along a polyline at a constant speed: the one way anything moves here.

    Parameters
    ----------
    polyline
        Shape (n, 2): vertices, metric x/y (or lon/lat when ``seg_m`` gives the lengths).
    speed_mps
        Speed (m/s).
    step_s
        Time between positions (s).
    lateral_m
        Offset to the right of the direction of travel (m; metric polylines only).
    seg_m
        Shape (n - 1,): length of each segment in metres; default the planar length of metric vertices.

    Returns
    -------
    t, x, y
        Shape (k,) each: seconds from the start (0, ``step_s``, ...; the last one at or before the end) and
        the positions.
    """
    seg = np.hypot(*np.diff(polyline, axis=0).T) if seg_m is None else np.asarray(seg_m, float)
    keep = np.concatenate([[True], seg > 1e-6])
    polyline = polyline[keep]
    cum = np.concatenate([[0.0], np.cumsum(seg[seg > 1e-6])])
    total = float(cum[-1])
    if total <= 0:
        return np.zeros(1), polyline[:1, 0].copy(), polyline[:1, 1].copy()
    t = np.arange(0.0, total / speed_mps + 1e-9, step_s)
    s = np.minimum(t * speed_mps, total)
    x = np.interp(s, cum, polyline[:, 0])
    y = np.interp(s, cum, polyline[:, 1])
    if lateral_m:
        i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(polyline) - 2)
        d = polyline[i + 1] - polyline[i]
        d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
        x = x + lateral_m * d[:, 1]  # right of travel: (dy, -dx)
        y = y - lateral_m * d[:, 0]
    return t, x, y


def hour_weights(kind: str) -> np.ndarray:
    """Share of the day's trips starting in each local hour, shape (24,): ``vehicle`` or anything else (people)."""
    if kind == "vehicle":
        w = [1, 1, 1, 1, 1, 2, 4, 8, 9, 6, 5, 5, 6, 5, 5, 6, 8, 9, 7, 5, 4, 3, 2, 1]
    else:
        w = [1, 1, 1, 1, 1, 1, 3, 6, 7, 6, 6, 7, 8, 7, 6, 6, 7, 8, 8, 7, 6, 4, 2, 1]
    a = np.asarray(w, float)
    return a / a.sum()


class Router:
    """Shortest paths on the projected street graph and random nodes near a point (directed for vehicles)."""

    def __init__(self, P: nx.MultiDiGraph, directed: bool) -> None:
        self.G = P if directed else P.to_undirected(as_view=True)
        self.nodes = np.fromiter(P.nodes, dtype=np.int64)
        self.xy = np.array([[P.nodes[n]["x"], P.nodes[n]["y"]] for n in self.nodes])
        self.tree = cKDTree(self.xy)

    def near(self, x: float, y: float, rng: np.random.Generator, lo: float, hi: float) -> int:
        """A random node at a distance between ``lo`` and ``hi`` metres from (x, y)."""
        idx = self.tree.query_ball_point([x, y], r=hi)
        d = np.hypot(self.xy[idx, 0] - x, self.xy[idx, 1] - y)
        cand = [i for i, di in zip(idx, d, strict=True) if di >= lo] or idx
        return int(self.nodes[cand[int(rng.integers(len(cand)))]])

    def route(self, a: int, b: int) -> list[int]:
        """The shortest node path from ``a`` to ``b`` by length (raises ``networkx.NetworkXNoPath``)."""
        return nx.shortest_path(self.G, a, b, weight="length")


