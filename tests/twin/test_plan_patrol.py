"""Patrol rounds (OR-Tools), randomised schedules, isochrones and the day comparison on Chiang Mai streets."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from cluster.config import load_city
from cluster.registry import build_registry, zone_polygon
from cluster.sim.fielddata import plan_records
from twin import coverage as cv
from twin import graph
from twin import patrol as pt
from twin import risk as rk

pytestmark = pytest.mark.services  # a solver, a notebook, plots or a benchmark: slow on its own


@pytest.fixture(scope="module")
def zone_setup(cm_graph: nx.MultiDiGraph, cm_proj: nx.MultiDiGraph) -> dict:
    city = load_city("chiangmai")
    demand = cv.sample_streets(cm_proj, 8.0, zone=zone_polygon(city)[1])
    reg = build_registry(city, cm_graph)
    pf = reg.places_frame()
    qr = pf[pf.kind == "qr"]
    to_utm = graph.utm_transformers(32647)[0]
    x, y = to_utm.transform(qr.lon.to_numpy(), qr.lat.to_numpy())
    nodes = pt.nearest_nodes(cm_proj, x, y)
    sx, sy = to_utm.transform(city.station.lon, city.station.lat)
    depot = int(pt.nearest_nodes(cm_proj, sx, sy)[0])
    feats = rk.Features.from_frame(pf, 32647) + rk.Features.from_frame(rk.generate_risk_points(demand, 30, 1))
    X, _ = rk.factor_matrix(demand, feats)
    seg = rk.segment_risk(demand, rk.hand_model().score(X))
    checkpoints = [pt.Stop(id=i, node=int(n), service_s=60) for i, n in zip(qr.id, nodes, strict=True)]
    return {"demand": demand, "depot": depot, "checkpoints": checkpoints,
            "hotspots": pt.hotspot_stops(cm_proj, seg, 6), "seg": seg}


def _check_route_times(G: nx.MultiDiGraph, plan: pt.PatrolPlan, stops: list[pt.Stop]) -> None:
    T = pt.travel_matrix(G, [plan.depot, *[s.node for s in stops]])
    pos = {s.id: k + 1 for k, s in enumerate(stops)}
    for r in plan.routes:
        t, prev = 0.0, 0
        for v in r.visits:
            k = pos[v.stop_id]
            assert v.arrive_s >= t + T[prev, k] - 1.0  # never earlier than the drive allows
            t = v.depart_s
            prev = k
        end = t + T[prev, 0]
        assert end <= plan.shift_s + 1.0 and r.end_s <= plan.shift_s
        assert r.end_s >= end - 1.0


def test_rounds_visit_every_checkpoint_within_the_shift(cm_proj: nx.MultiDiGraph, zone_setup: dict) -> None:
    stops = zone_setup["checkpoints"] + zone_setup["hotspots"]
    plan = pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=2, shift_s=3 * 3600, time_limit_s=1.5)
    assert plan.status in {"success", "optimal", "partial_success_local_optimum_not_reached"} and len(plan.routes) == 2
    visits = [v.stop_id for r in plan.routes for v in r.visits]
    assert len(visits) == len(set(visits))
    cps = {s.id for s in zone_setup["checkpoints"]}
    assert cps <= set(visits) and not cps & set(plan.dropped)
    assert all(600 <= v.depart_s - v.arrive_s <= 900 for r in plan.routes for v in r.visits if v.kind == "hotspot")
    _check_route_times(cm_proj, plan, stops)


def test_short_shift_drops_optional_hotspots_not_checkpoints(cm_proj: nx.MultiDiGraph, zone_setup: dict) -> None:
    stops = zone_setup["checkpoints"] + zone_setup["hotspots"]
    loose = pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=1, shift_s=4 * 3600, time_limit_s=1)
    tight = pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=1, shift_s=50 * 60, time_limit_s=1)
    assert not loose.dropped
    assert tight.dropped and set(tight.dropped) <= {s.id for s in zone_setup["hotspots"]}
    assert tight.prize_collected < loose.prize_collected
    _check_route_times(cm_proj, tight, stops)
    with pytest.raises(pt.PatrolError, match="add units or lengthen the shift"):
        pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=1, shift_s=15 * 60, time_limit_s=1)


def test_koper_dwell_window_is_enforced() -> None:
    with pytest.raises(pt.PatrolError, match="Koper"):
        pt.hotspot_stop("h", 1, 1.0, dwell_s=120)


def test_isochrones_are_monotone(cm_proj: nx.MultiDiGraph, zone_setup: dict) -> None:
    d, depot = zone_setup["demand"], zone_setup["depot"]
    mins = (1.5, 2, 3, 5, 10)
    iso = pt.isochrones(cm_proj, [depot], d, minutes=mins, speed_kph=15)
    assert all(b >= a for a, b in itertools.pairwise(iso.share)) and 0 < iso.share[0] < iso.share[-1] <= 1
    assert iso.share[-1] == pytest.approx(1.0)
    more = pt.isochrones(cm_proj, [depot, *[s.node for s in zone_setup["checkpoints"][:3]]], d, minutes=mins,
                         speed_kph=15)
    assert all(m >= s - 1e-12 for m, s in zip(more.share, iso.share, strict=True)) and more.share[0] > iso.share[0]
    slow = pt.isochrones(cm_proj, [depot], d, minutes=mins, speed_kph=5)
    assert all(s <= f + 1e-12 for s, f in zip(slow.share, iso.share, strict=True))
    assert np.all(iso.reach_s >= 60.0)  # the dispatch delay comes first


def test_randomised_schedule_matches_risk_probabilities(zone_setup: dict) -> None:
    risk = zone_setup["seg"]["risk"].to_numpy()[:10]
    risk = np.concatenate([[risk[0] * 20], risk[1:]])  # one dominant hot spot is capped at probability 1
    pi = pt.coverage_probabilities(risk, 4)
    assert pi.sum() == pytest.approx(4) and pi[0] == 1.0 and (pi <= 1).all()
    days = pt.sample_rounds(pi, 3000, seed=3)
    assert {len(d) for d in days} == {4}
    freq = np.bincount(np.concatenate(days), minlength=len(pi)) / len(days)
    assert np.abs(freq - pi).max() < 0.04
    assert len({tuple(d) for d in days[:30]}) > 5  # not the same round every day


def test_compare_day_finds_missed_checkpoints_and_short_dwell(cm_proj: nx.MultiDiGraph, zone_setup: dict) -> None:
    stops = zone_setup["checkpoints"] + zone_setup["hotspots"][:3]
    plan = pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=2, shift_s=3 * 3600, time_limit_s=1)
    scans, pings = plan_records(cm_proj, plan, skip_share=0.25, dwell_share=0.5, seed=4)
    node_xy = {n: (cm_proj.nodes[n]["x"], cm_proj.nodes[n]["y"]) for n in cm_proj.nodes}
    out = pt.compare_day(plan, scans, pings, node_xy)
    expected_missed = {s.id for s in zone_setup["checkpoints"]} - set(scans.checkpoint_id)
    assert expected_missed and set(out["missed"]) == expected_missed
    assert out["checkpoint_rate"] == pytest.approx(1 - len(expected_missed) / len(zone_setup["checkpoints"]))
    assert 0.35 < out["dwell_ratio"] < 0.6


def test_response_coverage_over_the_shift(cm_proj: nx.MultiDiGraph, zone_setup: dict) -> None:
    stops = zone_setup["checkpoints"] + zone_setup["hotspots"][:3]
    plan = pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=2, shift_s=2 * 3600, time_limit_s=1)
    d = zone_setup["demand"]
    day = pt.response_over_shift(cm_proj, plan, d, minutes=2.0, step_s=900, speed_kph=10)
    station_only = pt.isochrones(cm_proj, [zone_setup["depot"]], d, minutes=(2.0,), speed_kph=10).share[0]
    assert len(day) == 9 and (day["share"] >= station_only - 1e-12).all()
    assert day["units_out"].iloc[0] == 0 and day["share"].iloc[0] == pytest.approx(station_only)
    out = day[day["units_out"] > 0]
    assert len(out) and out["share"].max() > station_only
    assert pt.positions_at(plan, plan.shift_s) == [plan.depot] * 2


def test_several_rounds_per_shift_each_in_its_time_slice(cm_proj: nx.MultiDiGraph, zone_setup: dict) -> None:
    cps = zone_setup["checkpoints"][:8]
    stops = cps + zone_setup["hotspots"][:2]
    shift = 3 * 3600
    plan = pt.plan_rounds(cm_proj, zone_setup["depot"], stops, units=2, shift_s=shift, time_limit_s=2, rounds=3)
    visits = [v for r in plan.routes for v in r.visits if v.kind == "checkpoint"]
    got = sorted((v.stop_id, v.round) for v in visits)
    assert got == sorted((c.id, r) for c in cps for r in (1, 2, 3))
    for v in visits:
        assert (v.round - 1) * shift / 3 - 1 <= v.arrive_s <= v.round * shift / 3 + 1
    _check_route_times(cm_proj, plan, stops)
    scans, _ = plan_records(cm_proj, plan, skip_share=0.2, seed=5)
    out = pt.compare_day(plan, scans)
    scanned = {(c, int(t // (shift / 3)) + 1) for c, t in zip(scans.checkpoint_id, scans.t_s, strict=True)}
    expected = {f"{c.id}#{r}" for c in cps for r in (1, 2, 3) if (c.id, r) not in scanned}
    assert expected and set(out["missed"]) == expected and out["checkpoints_planned"] == 24
