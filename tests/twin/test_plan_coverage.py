"""Camera coverage along real Chiang Mai streets, and MCLP placement with existing cameras pinned."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
import shapely

from cluster.config import load_city
from cluster.registry import build_registry, zone_polygon
from twin import coverage as cv
from twin import placement as pl


@pytest.fixture(scope="module")
def zone(cm_proj: nx.MultiDiGraph) -> shapely.Polygon:
    return zone_polygon(load_city("chiangmai"))[1]


@pytest.fixture(scope="module")
def demand(cm_proj: nx.MultiDiGraph, zone: shapely.Polygon) -> cv.Demand:
    return cv.sample_streets(cm_proj, 8.0, zone=zone)


@pytest.fixture(scope="module")
def candidates(cm_proj: nx.MultiDiGraph, demand: cv.Demand, zone: shapely.Polygon) -> cv.Sites:
    return cv.candidate_sites(cm_proj, demand, fov_deg=60, range_m=40, zone=zone)


@pytest.fixture(scope="module")
def existing(cm_graph: nx.MultiDiGraph) -> cv.Sites:
    reg = build_registry(load_city("chiangmai"), cm_graph)
    return cv.cameras_to_sites(reg.cameras_frame(), 32647)


@pytest.mark.services
def test_street_samples_cover_the_zone_streets(demand: cv.Demand, zone: shapely.Polygon) -> None:
    total = sum(g.length for g in demand.edge_geoms)
    assert abs(demand.length_m.sum() - total) < 1e-6 * total
    assert 5_000 < total < 60_000  # a 0.6 km² zone in Nimmanhaemin has kilometres of streets, not hundreds
    assert np.all(shapely.contains_xy(zone.buffer(1.0), demand.x, demand.y))
    assert demand.length_m.max() <= 8.0 + 1e-9


def test_camera_sees_its_wedge_not_behind(demand: cv.Demand) -> None:
    # A camera on a street point looking along the street: the street ahead is seen, the street behind is not.
    i = int(np.argmax(demand.length_m > 7))
    g = demand.edge_geoms[demand.edge[i]]
    x, y = demand.x[i], demand.y[i]
    d = g.project(shapely.Point(x, y))
    a, b = g.interpolate(max(0, d - 1)), g.interpolate(min(g.length, d + 1))
    heading = math.degrees(math.atan2(b.x - a.x, b.y - a.y)) % 360
    seen = cv.covered_by_site(demand, x, y, heading, 60.0, 40.0)
    assert seen.size > 0
    poly = cv.wedge(x, y, heading, 60.0, 40.0, steps=64)
    assert np.all(shapely.contains_xy(poly.buffer(0.5), demand.x[seen], demand.y[seen]))
    ahead = g.interpolate(d + 20) if d + 20 < g.length else None
    behind = g.interpolate(d - 20) if d - 20 > 0 else None
    near = demand.tree.query_ball_point([x, y], r=40.0)
    not_seen = sorted(set(near) - set(seen.tolist()))
    assert not_seen, "some street within range must lie outside a 60° wedge"
    back = cv.covered_by_site(demand, x, y, (heading + 180) % 360, 60.0, 40.0)
    assert not set(seen.tolist()) & set(back.tolist()) - {i}
    for p, expect in ((ahead, True), (behind, False)):
        if p is None:
            continue
        j = int(np.argmin(np.hypot(demand.x - p.x, demand.y - p.y)))
        assert (j in set(seen.tolist())) is expect


def test_synthetic_point_behind_is_not_covered() -> None:
    xs = np.array([0.0, 0.0, 30.0, 0.0, 5.0])
    ys = np.array([20.0, -20.0, 0.0, 60.0, 30.0])
    d = cv.Demand(xs, ys, np.ones(5), np.zeros(5, int), [(0, 1, 0)], [shapely.LineString([(0, -50), (0, 50)])])
    seen = set(cv.covered_by_site(d, 0.0, 0.0, 0.0, 60.0, 40.0).tolist())
    assert seen == {0, 4}  # ahead; not behind (1), not to the side (2), not beyond range (3)


def test_coverage_matrix_matches_single_sites(demand: cv.Demand, candidates: cv.Sites) -> None:
    A = cv.coverage_matrix(demand, candidates)
    assert A.shape == (len(candidates), len(demand))
    for j in (0, len(candidates) // 2, len(candidates) - 1):
        s = candidates
        got = cv.covered_by_site(demand, s.x[j], s.y[j], s.heading_deg[j], s.fov_deg[j], s.range_m[j])
        assert np.array_equal(np.sort(A[j].indices), got)
    assert {"node", "pole"} <= set(candidates.kind.tolist())


@pytest.mark.services
def test_pinned_cameras_never_move(demand: cv.Demand, candidates: cv.Sites, existing: cv.Sites) -> None:
    out = pl.place(demand, candidates, existing, p=5, method="exact", time_limit_s=20)
    assert out.pinned_xy == [(float(a), float(b), float(h)) for a, b, h in
                             zip(existing.x, existing.y, existing.heading_deg, strict=True)]
    assert out.result.pinned == [str(r) for r in existing.ref]
    assert len(out.new_xy) == 5 and all(k in {"node", "pole"} for k in out.new_kind)
    w = demand.weighted()
    c0 = cv.covered_mask(demand, existing)
    assert out.result.covered_before == pytest.approx(w[c0].sum())
    # The new sites' value counts only demand the pinned cameras did not already see.
    A = cv.coverage_matrix(demand, candidates)
    new = np.asarray(A[out.result.chosen].sum(axis=0)).ravel() > 0
    assert out.result.objective == pytest.approx(w[new & ~c0].sum())
    assert out.result.covered_after == pytest.approx(w[new | c0].sum())
    assert sum(out.result.marginal) == pytest.approx(out.result.objective)


@pytest.mark.services
def test_coverage_never_decreases_with_p(demand: cv.Demand, candidates: cv.Sites, existing: cv.Sites) -> None:
    A = cv.coverage_matrix(demand, candidates)
    w = demand.weighted()
    c0 = cv.covered_mask(demand, existing)
    for solve in (pl.greedy, lambda *a: pl.solve_exact(*a, time_limit_s=10)):
        after = [solve(A, w, p, c0).covered_after for p in range(0, 7)]
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(after)), after
        assert after[0] == pytest.approx(w[c0].sum()) and after[-1] > after[0]


def test_exact_beats_greedy_within_bound(demand: cv.Demand, candidates: cv.Sites) -> None:
    # A small case: the zone's first 120 candidate sites, 4 cameras, no pinned cameras.
    A = cv.coverage_matrix(demand, candidates.take(np.arange(120)))
    w = demand.weighted()
    g = pl.greedy(A, w, 4)
    e = pl.solve_exact(A, w, 4, time_limit_s=20)
    assert e.status == "optimal" and e.mip_gap == pytest.approx(0.0, abs=1e-6)
    assert e.objective >= g.objective - 1e-9
    assert g.objective >= (1 - 1 / math.e) * e.objective
    assert g.best_bound is not None and g.best_bound >= e.objective - 1e-6  # greedy's bound is a real bound
    assert len(set(e.chosen)) == 4


def test_bad_input_is_rejected(demand: cv.Demand, candidates: cv.Sites) -> None:
    A = cv.coverage_matrix(demand, candidates.take(np.arange(10)))
    with pytest.raises(pl.PlacementError, match="p=11"):
        pl.greedy(A, demand.weighted(), 11)
    with pytest.raises(pl.PlacementError, match="weights"):
        pl.greedy(A, np.ones(3), 1)


def test_exact_backends_agree_and_report_status(demand: cv.Demand, candidates: cv.Sites, existing: cv.Sites) -> None:
    A = cv.coverage_matrix(demand, candidates.take(np.arange(200)))
    w = demand.weighted()
    c0 = cv.covered_mask(demand, existing)
    res = {s: pl.solve_exact(A, w, 5, c0, time_limit_s=20, solver=s) for s in ("ortools-highs", "ortools-scip",
                                                                             "pulp-cbc")}
    vals = [r.objective for r in res.values()]
    assert max(vals) - min(vals) < 1e-6 * max(vals), {k: r.objective for k, r in res.items()}
    for r in res.values():
        assert r.status == "optimal" and r.mip_gap is not None and r.mip_gap < 1e-6
    with pytest.raises(pl.PlacementError, match="unknown solver"):
        pl.solve_exact(A, w, 2, solver="gurobi")  # type: ignore[arg-type]


@pytest.mark.services
def test_time_limited_city_solve_is_not_called_optimal_without_proof(cm_proj: nx.MultiDiGraph) -> None:
    # The whole Chiang Mai extract, 60 new cameras, 1 s: whatever comes back, status and gap must agree.
    d = cv.sample_streets(cm_proj, 10.0)
    s = cv.candidate_sites(cm_proj, d)
    A = cv.coverage_matrix(d, s)
    r = pl.solve_exact(A, d.weighted(), 60, time_limit_s=1.0)
    g = pl.greedy(A, d.weighted(), 60)
    assert r.objective >= g.objective - 1e-9 and r.best_bound is not None and r.best_bound >= r.objective - 1e-6
    if r.status == "optimal":
        assert r.mip_gap < 1e-6
    else:
        assert r.status == "time_limit" and r.mip_gap is not None and r.mip_gap >= 0
    assert r.mip_gap == pytest.approx((r.best_bound - r.objective) / r.best_bound, abs=1e-9)


def test_sight_lines_stop_at_buildings() -> None:
    # Two parallel streets 30 m apart with a block of buildings between them: a camera on the first street
    # looking across sees the second street inside its wedge, but not along a sight line in the corridor.
    a = shapely.LineString([(0, 0), (100, 0)])
    b = shapely.LineString([(0, 30), (100, 30)])
    xs = np.array([50.0, 60.0, 50.0, 60.0])
    ys = np.array([0.0, 0.0, 30.0, 30.0])
    d = cv.Demand(xs, ys, np.ones(4), np.array([0, 0, 1, 1]), [(0, 1, 0), (2, 3, 0)], [a, b])
    corridor = cv.Corridor(d, 8.0)
    wedge_only = set(cv.covered_by_site(d, 45.0, 2.0, 60.0, 120.0, 40.0).tolist())
    in_sight = set(cv.covered_by_site(d, 45.0, 2.0, 60.0, 120.0, 40.0, corridor).tolist())
    assert {2, 3} & wedge_only and not {2, 3} & in_sight
    assert {0, 1} <= in_sight


def test_sight_lines_shrink_real_coverage(demand: cv.Demand, candidates: cv.Sites) -> None:
    sub = candidates.take(np.arange(0, len(candidates), 5))
    A = cv.coverage_matrix(demand, sub)
    B = cv.coverage_matrix(demand, sub, cv.Corridor(demand, 12.0))
    assert B.nnz <= A.nnz and (B > A).nnz == 0  # sight lines only ever remove points
