"""Vectorised snapping on the real Chiang Mai graph: named streets, offsets, agreement with osmnx, caching."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import osmnx as ox
import pyarrow as pa
import pytest
import shapely

from twin import graph, snap
from twin.layers import validate_rows


def _edge_of(P: nx.MultiDiGraph, name: str) -> tuple[int, int, int, shapely.LineString]:
    """The longest edge named exactly ``name`` (projected graph), with its geometry."""
    e = ox.convert.graph_to_gdfs(P, nodes=False, fill_edge_geometry=True)
    e = e[e["name"].map(lambda n: n == name)]
    assert len(e), f"no edge named {name}"
    (u, v, k), row = next(iter(e.sort_values("length", ascending=False).iterrows()))
    assert row["length"] > 80
    return int(u), int(v), int(k), row.geometry


def _beside(line: shapely.LineString, frac: float, side_m: float) -> tuple[float, float]:
    """A point ``side_m`` metres to the left of the line at fraction ``frac`` of its length (UTM)."""
    d = frac * line.length
    a, b = line.interpolate(d - 1.0), line.interpolate(d + 1.0)
    p = line.interpolate(d)
    dx, dy = b.x - a.x, b.y - a.y
    n = math.hypot(dx, dy)
    return p.x - dy / n * side_m, p.y + dx / n * side_m


@pytest.mark.parametrize("street", ["ถนนนิมมานเหมินท์", "ถนนห้วยแก้ว"])
def test_point_next_to_named_street_snaps_to_it(cm_graph: nx.MultiDiGraph, cm_proj: nx.MultiDiGraph,
                                                street: str) -> None:
    u, v, _, line = _edge_of(cm_proj, street)
    _, to_wgs = graph.utm_transformers(32647)
    x, y = _beside(line, 0.5, 4.0)
    lon, lat = to_wgs.transform(x, y)
    for G in (cm_graph, cm_proj):  # the WGS84 graph and the projected one give the same answer
        idx = snap.edge_index(G)
        r = idx.snap(np.array([lon]), np.array([lat]))
        assert idx.name_of(r) == [street]
        assert {int(r.u[0]), int(r.v[0])} == {u, v}
        assert r.distance_m[0] == pytest.approx(4.0, abs=0.3)
        # The offset is measured from the edge's own u: half way along in either direction.
        assert r.offset_m[0] == pytest.approx(line.length / 2, abs=1.5)


def test_offset_is_along_the_matched_edge(cm_proj: nx.MultiDiGraph) -> None:
    u, v, _, line = _edge_of(cm_proj, "ถนนห้วยแก้ว")
    _, to_wgs = graph.utm_transformers(32647)
    xs, ys = zip(*(_beside(line, f, 2.0) for f in (0.2, 0.4, 0.6, 0.8)), strict=True)
    lon, lat = to_wgs.transform(np.array(xs), np.array(ys))
    idx = snap.edge_index(cm_proj)
    r = idx.snap(lon, lat)
    for i, f in enumerate((0.2, 0.4, 0.6, 0.8)):
        own = line if (int(r.u[i]), int(r.v[i])) == (u, v) else shapely.reverse(line)
        expect = own.project(shapely.Point(xs[i], ys[i]))
        assert r.offset_m[i] == pytest.approx(expect, abs=0.01)
        assert (r.offset_m[i] == pytest.approx(f * line.length, abs=1.0)
                or r.offset_m[i] == pytest.approx((1 - f) * line.length, abs=1.0))


def test_agrees_with_osmnx_nearest_edges(cm_proj: nx.MultiDiGraph) -> None:
    rng = np.random.default_rng(7)
    xs = np.array([d["x"] for _, d in cm_proj.nodes(data=True)])
    ys = np.array([d["y"] for _, d in cm_proj.nodes(data=True)])
    x = rng.uniform(xs.min(), xs.max(), 300)
    y = rng.uniform(ys.min(), ys.max(), 300)
    ours = snap.edge_index(cm_proj).snap_xy(x, y)
    ref, dist = ox.distance.nearest_edges(cm_proj, x, y, return_dist=True)
    # Same distance everywhere (ties between a street and its reverse edge may pick either).
    np.testing.assert_allclose(ours.distance_m, dist, atol=1e-6)
    same = sum({int(ours.u[i]), int(ours.v[i])} == {ref[i][0], ref[i][1]} for i in range(300))
    assert same >= 290


@pytest.mark.services
def test_many_points_threads_match_single_thread(cm_graph: nx.MultiDiGraph) -> None:
    rng = np.random.default_rng(1)
    n = 120_000
    lon = rng.uniform(98.948, 98.978, n)
    lat = rng.uniform(18.784, 18.813, n)
    idx = snap.edge_index(cm_graph)
    a = idx.snap(lon, lat, workers=1)
    b = idx.snap(lon, lat, workers=3)
    np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_allclose(a.distance_m, b.distance_m)
    assert a.matched.all() and np.nanmax(a.distance_m) < 1000


def test_index_is_cached_per_graph(cm_graph: nx.MultiDiGraph, cm_proj: nx.MultiDiGraph) -> None:
    assert snap.edge_index(cm_graph) is snap.edge_index(cm_graph)
    assert snap.edge_index(cm_graph) is not snap.edge_index(cm_proj)
    assert len(snap.edge_index(cm_graph)) == cm_graph.number_of_edges()


def test_far_and_nan_points_are_unmatched(cm_graph: nx.MultiDiGraph) -> None:
    r = snap.snap_points(cm_graph, np.array([98.96, 99.5, np.nan]), np.array([18.80, 18.80, 18.8]),
                         max_distance_m=200)
    assert r.matched.tolist() == [True, False, False]
    assert r.u[1] == -1 and math.isnan(r.distance_m[1])


def test_snap_table_fills_edges_of_a_layer(cm_graph: nx.MultiDiGraph, cm_proj: nx.MultiDiGraph) -> None:
    _, _, _, line = _edge_of(cm_proj, "ถนนนิมมานเหมินท์")
    _, to_wgs = graph.utm_transformers(32647)
    lon, lat = to_wgs.transform(*_beside(line, 0.3, 3.0))
    rows = [{"place_id": "p1", "city": "chiangmai", "name": "gold shop", "kind": "gold_shop", "lon": lon, "lat": lat},
            {"place_id": "p2", "city": "chiangmai", "name": "far", "kind": "other", "lon": 99.5, "lat": 18.8},
            {"place_id": "p3", "city": "chiangmai", "name": "given", "kind": "other", "lon": lon, "lat": lat,
             "edge_u": 1, "edge_v": 2, "edge_key": 0, "edge_offset_m": 5.0}]
    t = validate_rows("places", rows).table
    out = snap.snap_table(cm_graph, t, max_distance_m=100)
    assert out.schema == t.schema
    u = out.column("edge_u").to_pylist()
    assert u[0] is not None and u[1] is None and u[2] == 1
    assert out.column("edge_offset_m")[0].as_py() > 0
    with pytest.raises(ValueError, match="point layers"):
        snap.snap_table(cm_graph, pa.table({"x": [1]}))


def test_bangkok_point_next_to_chalong_krung_road(bkk_graph: nx.MultiDiGraph) -> None:
    P = graph.project(bkk_graph, 32647)
    u, v, _, line = _edge_of(P, "ถนนฉลองกรุง")
    _, to_wgs = graph.utm_transformers(32647)
    lon, lat = to_wgs.transform(*_beside(line, 0.5, -6.0))  # 6 m to the right this time
    idx = snap.edge_index(bkk_graph)
    r = idx.snap(np.array([lon]), np.array([lat]))
    assert idx.name_of(r) == ["ถนนฉลองกรุง"] and {int(r.u[0]), int(r.v[0])} == {u, v}
    assert r.distance_m[0] == pytest.approx(6.0, abs=0.3)
