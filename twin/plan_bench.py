"""``ssz bench plan``: camera placement (MCLP) and patrol routing speed and quality.

:func:`bench_plan` measures and returns a JSON-able dict; it asserts nothing about speed.

- zone scale: the exact MCLP (PuLP + HiGHS, warm-started from greedy) on a zone's streets with its
  existing cameras pinned, next to greedy: solve time, solver status, MIP gap, coverage before/after.
- city scale: the whole city's streets with every fixed camera pinned (Hat Yai: 617 CCTV + plate cameras)
  and ``p_city`` new cameras: greedy, then the exact model under a time limit, with the best bound and the
  gap of each to it (a time-limited solve is reported as such, never as optimal).
- routing: OR-Tools rounds for ``n_checkpoints`` QR checkpoints and ``units`` patrol units over one shift.

Inputs come from the caller (``cluster.planning.bench_plans`` passes the real registries: Chiang Mai's OSM zone
and Hat Yai's 617 cameras); with none given, generated towns and street-side cameras stand in.
"""

from __future__ import annotations

import math
import time
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from twin import coverage as cv
from twin import graph
from twin import patrol as pt
from twin import placement as pl


def street_cameras(P: nx.MultiDiGraph, n: int, seed: int = 0, fov: tuple[float, float] = (60, 90),
                   rng_m: tuple[float, float] = (25, 50)) -> cv.Sites:
    """``n`` street-side cameras looking along random streets of a metric graph (stand-ins for a registry)."""
    rng = np.random.default_rng(seed)
    _, geoms = cv.street_edges(P)
    lengths = shapely.length(np.array(geoms, dtype=object))
    which = rng.choice(len(geoms), size=n, p=lengths / lengths.sum())
    xs, ys, hs = [], [], []
    for i in which:
        g = geoms[i]
        d = rng.uniform(0.1, 0.9) * g.length
        a, b, p = g.interpolate(max(0, d - 1)), g.interpolate(min(g.length, d + 1)), g.interpolate(d)
        br = math.degrees(math.atan2(b.x - a.x, b.y - a.y)) % 360
        xs.append(p.x), ys.append(p.y), hs.append((br + (180 if rng.random() < 0.5 else 0)) % 360)
    return cv.sites_from_cameras(np.array(xs), np.array(ys), np.array(hs), rng.uniform(*fov, n),
                                 rng.uniform(*rng_m, n), [f"cam-{k:04d}" for k in range(n)])


def _placement(P: nx.MultiDiGraph, zone: shapely.Geometry | None, existing: cv.Sites, p: int, time_limit_s: float,
               spacing_m: float, peer_max_cells: int = 0) -> dict[str, Any]:
    t = time.perf_counter()
    demand = cv.sample_streets(P, spacing_m, zone=zone)
    cands = cv.candidate_sites(P, demand, zone=zone)
    A = cv.coverage_matrix(demand, cands)
    c0 = pl.pinned_coverage(cv.coverage_matrix(demand, existing), len(demand))
    build_s = time.perf_counter() - t
    w = demand.weighted()
    g = pl.greedy(A, w, p, c0)
    e = pl.solve_exact(A, w, p, c0, time_limit_s=time_limit_s)
    bound = e.best_bound if e.best_bound is not None else g.best_bound

    def gap(v: float) -> float | None:
        return round(max(0.0, (bound - v) / bound), 5) if bound else None

    peer: dict[str, Any] = {}
    if peer_max_cells and A.shape[0] * A.shape[1] <= peer_max_cells:
        from twin.spopt_peer import run_peer

        res = run_peer(A, np.where(c0, 0.0, w), p, time_limit_s=time_limit_s)
        peer = {"peer": res} if "error" in res else {"peer": {
            **res, "ours_solve_s": round(e.solve_s, 3), "ours_objective": round(e.objective, 1),
            # spopt's time includes building its model (ours does too: solve_exact builds and solves)
            "ratio_time_peer_to_ours": round((res["build_s"] + res["solve_s"]) / max(e.solve_s, 1e-9), 2),
            "ratio_objective_ours_to_peer": round(e.objective / res["objective"], 4) if res["objective"] else None}}
    elif peer_max_cells:
        peer = {"peer": {"skipped": f"{A.shape[0]} x {A.shape[1]} cells: more than spopt's dense cost matrix "
                                    f"limit here ({peer_max_cells})"}}
    return {**peer,
        "street_km": round(float(demand.length_m.sum()) / 1000, 2), "demand_points": len(demand),
        "demand": "street length" if demand.weight is None else "risk-weighted street length",
        "candidate_sites": len(cands), "coverage_nnz": int(A.nnz), "pinned_cameras": len(existing), "p": p,
        "build_s": round(build_s, 3),
        "covered_share_before": round(g.share_before, 4),
        "greedy": {"solve_s": round(g.solve_s, 3), "covered_share_after": round(g.share_after, 4),
                   "new_demand_m": round(g.objective, 1), "gap_to_best_bound": gap(g.objective),
                   "own_bound_m": round(float(g.best_bound or 0), 1)},
        "exact": {"solver": e.solver, "status": e.status, "time_limit_s": time_limit_s, "solve_s": round(e.solve_s, 3),
                  "covered_share_after": round(e.share_after, 4), "new_demand_m": round(e.objective, 1),
                  "best_bound_m": None if e.best_bound is None else round(e.best_bound, 1),
                  "mip_gap": None if e.mip_gap is None else round(e.mip_gap, 5)},
    }


def bench_plan(zone_graph: nx.MultiDiGraph | None = None, zone: shapely.Geometry | None = None,
               zone_cameras: pd.DataFrame | None = None, city_graph: nx.MultiDiGraph | None = None,
               city_cameras: pd.DataFrame | None = None, checkpoints: pd.DataFrame | None = None,
               station: tuple[float, float] | None = None, epsg: int = 32647, p_zone: int = 20,
               p_city: int = 100, zone_time_limit_s: float = 60.0, city_time_limit_s: float = 60.0,
               n_checkpoints: int = 40, units: int = 3, routing_time_limit_s: float = 10.0,
               labels: dict[str, str] | None = None, peer_max_cells: int = 20_000_000) -> dict[str, Any]:
    """Measure placement (zone exact, city greedy + time-limited exact) and routing; returns a JSON-able dict.

    Graphs are WGS84; ``zone`` is a metric (UTM ``epsg``) polygon; cameras/checkpoints are frames with lon/lat
    (cameras also heading_deg, fov_deg, range_m); ``station`` is (lon, lat). ``peer_max_cells``: also solve
    each placement with spopt's MCLP (:mod:`twin.spopt_peer`, a subprocess) when its demand x site matrix has at
    most that many cells (0 = never).
    """
    labels = dict(labels or {})
    out: dict[str, Any] = {"inputs": labels}
    if zone_graph is None:
        zone_graph = graph.generated(98.968, 18.799, extent_m=1200, seed=1)
        labels.setdefault("zone", "generated town 1.2 km")
    Pz = graph.project(zone_graph, epsg)
    ex_z = (cv.cameras_to_sites(zone_cameras, epsg) if zone_cameras is not None else street_cameras(Pz, 40, seed=1))
    out["zone_exact"] = _placement(Pz, zone, ex_z, p_zone, zone_time_limit_s, 8.0, peer_max_cells=peer_max_cells)

    if city_graph is None:
        city_graph = graph.generated(100.4679, 7.0046, extent_m=3200, block_m=105, seed=617)
        labels.setdefault("city", "generated town 3.2 km, 617 street-side cameras")
    Pc = graph.project(city_graph, epsg)
    ex_c = cv.cameras_to_sites(city_cameras, epsg) if city_cameras is not None else street_cameras(Pc, 617, seed=617)
    out["city_scale"] = _placement(Pc, None, ex_c, p_city, city_time_limit_s, 10.0, peer_max_cells=peer_max_cells)

    # Routing: QR checkpoints and units from the station over an 8-hour shift.
    to_utm = graph.utm_transformers(epsg)[0]
    if checkpoints is not None and len(checkpoints):
        x, y = to_utm.transform(checkpoints["lon"].to_numpy(float), checkpoints["lat"].to_numpy(float))
    else:
        rng = np.random.default_rng(40)
        ids = list(Pc.nodes)
        pick = rng.choice(len(ids), size=n_checkpoints, replace=False)
        x = np.array([Pc.nodes[ids[i]]["x"] for i in pick])
        y = np.array([Pc.nodes[ids[i]]["y"] for i in pick])
    x, y = np.asarray(x)[:n_checkpoints], np.asarray(y)[:n_checkpoints]
    nodes = pt.nearest_nodes(Pc, x, y)
    if station is not None:
        sx, sy = to_utm.transform(*station)
    else:
        sx, sy = float(np.mean(x)), float(np.mean(y))
    depot = int(pt.nearest_nodes(Pc, np.array([sx]), np.array([sy]))[0])
    stops = [pt.Stop(id=f"qr-{k + 1:03d}", node=int(n), service_s=60) for k, n in enumerate(nodes)]
    t = time.perf_counter()
    plan = pt.plan_rounds(Pc, depot, stops, units=units, shift_s=8 * 3600, time_limit_s=routing_time_limit_s)
    total = time.perf_counter() - t
    out["routing"] = {
        "checkpoints": len(stops), "units": units, "shift_h": 8, "time_limit_s": routing_time_limit_s,
        "status": plan.status, "solve_s": round(total, 3),
        "route_minutes": [round(r.end_s / 60, 1) for r in plan.routes],
        "stops_per_unit": [len(r.visits) for r in plan.routes],
        "all_checkpoints_visited": {s.id for s in stops} <= plan.visited(),
    }
    return out
