"""Patrol planning on the street graph: QR red-box rounds with OR-Tools, randomised schedules, isochrones.

- :func:`plan_rounds` builds routes for several patrol units from the station over one shift with the
  OR-Tools routing solver: a time dimension (travel time + service time, capped by the shift length),
  mandatory QR checkpoints (every one must be scanned) and optional hot-spot stops as prize-collecting
  disjunctions (skipping one costs its prize), with a 10-15 minute dwell at hot spots (the Koper curve:
  stops of about that length deter most while costing least patrol time).
- :func:`coverage_probabilities` / :func:`sample_rounds` randomise which hot spots a day's rounds visit:
  each hot spot is visited with probability proportional to its risk (capped at 1), sampled so that each
  day has exactly ``k`` stops (systematic sampling over a random order). This is the idea behind
  Stackelberg security-game schedulers: an observer learns the probabilities, never the next round.
- :func:`isochrones` gives, from patrol positions and the station, the time to reach each street point
  over the graph (networkx multi-source Dijkstra) and the share of the zone's street length reachable
  within 3, 5 and 10 minutes.
- :func:`compare_day` checks a day's recorded checkpoint scans and GPS pings against the plan: missed
  checkpoints and dwell achieved at hot spots; :func:`response_over_shift` gives the response-time
  coverage (station plus patrols where the plan puts them) every few minutes over the shift.

Travel times use a patrol speed (``speed_kph``) on street length, or the graph's ``travel_time`` when
``speed_kph`` is None. Streets are driven in their legal direction (the graph is directed).
"""

from __future__ import annotations

import time
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, Field
from scipy.spatial import cKDTree

UNREACHABLE_S = 10 * 24 * 3600


class PatrolError(ValueError):
    """The patrol problem cannot be planned as given; the message says what to change."""


class Stop(BaseModel):
    """A place on the round: a QR checkpoint (mandatory) or a hot spot (optional, with a prize)."""

    id: str
    node: int
    kind: Literal["checkpoint", "hotspot"] = "checkpoint"
    service_s: float = Field(60.0, ge=0, description="scan time at a checkpoint, dwell at a hot spot")
    mandatory: bool = True
    prize: float = Field(0.0, ge=0, description="value of visiting an optional stop (e.g. its risk)")


def hotspot_stop(id: str, node: int, risk: float, dwell_s: float = 12 * 60) -> Stop:
    """An optional hot-spot stop with a Koper-curve dwell (10-15 minutes) and its risk as prize.

    Parameters
    ----------
    id
        Stop id.
    node
        Graph node of the stop.
    risk
        Relative risk (the prize, before scaling).
    dwell_s
        Planned dwell (s).

    Returns
    -------
    Stop
    """
    if not 600 <= dwell_s <= 900:
        raise PatrolError(f"hot-spot dwell {dwell_s:.0f}s is outside the Koper window of 10-15 minutes (600-900s)")
    return Stop(id=id, node=node, kind="hotspot", service_s=dwell_s, mandatory=False, prize=max(0.0, risk))


def hotspot_stops(G: nx.MultiDiGraph, segments: pd.DataFrame, n: int = 8, min_separation_m: float = 100.0,
                  dwell_s: float = 12 * 60, prize_scale: float = 60.0) -> list[Stop]:
    """The ``n`` riskiest streets as optional hot-spot stops, at least ``min_separation_m`` apart.

    Each stop sits at the street's routable end node; its prize is risk × ``prize_scale`` seconds of travel.

    Parameters
    ----------
    G
        The projected street graph (metres).
    segments
        :func:`twin.risk.segment_risk` output (``u``, ``v``, ``risk``; riskiest first).
    n
        Stops.
    min_separation_m
        Minimum distance between two stops (m).
    dwell_s
        Planned dwell per stop (s).
    prize_scale
        Seconds of travel one unit of relative risk is worth.

    Returns
    -------
    list of Stop
    """
    routable = max(nx.strongly_connected_components(G), key=len)
    chosen: list[Stop] = []
    xy: list[tuple[float, float]] = []
    for row in segments.itertuples():
        node = next((int(c) for c in (row.u, row.v) if int(c) in routable), None)
        if node is None:
            continue
        p = (G.nodes[node]["x"], G.nodes[node]["y"])
        if any(np.hypot(p[0] - a, p[1] - b) < min_separation_m for a, b in xy):
            continue
        chosen.append(hotspot_stop(f"hot-{len(chosen) + 1:02d}", node, float(row.risk) * prize_scale, dwell_s))
        xy.append(p)
        if len(chosen) == n:
            break
    return chosen


class Visit(BaseModel):
    """One stop of a route with the planned arrival and departure (seconds from shift start)."""

    stop_id: str
    kind: str
    node: int
    arrive_s: float
    depart_s: float
    round: int | None = None  # 1-based round of a checkpoint when the shift has several rounds


class Route(BaseModel):
    """The planned round of one unit; ``end_s`` is the return to the station."""

    unit: str
    visits: list[Visit]
    end_s: float
    travel_s: float
    service_s: float


class PatrolPlan(BaseModel):
    """Routes of all units with the solver's status and what was left out."""

    routes: list[Route]
    dropped: list[str]  # optional stops not visited
    status: str
    shift_s: float
    depot: int
    solve_s: float
    prize_collected: float
    prize_total: float

    def visited(self) -> set[str]:
        """Ids of all stops visited by some unit."""
        return {v.stop_id for r in self.routes for v in r.visits}


def _weight(speed_kph: float | None) -> str | object:
    if speed_kph is None:
        return "travel_time"
    mps = speed_kph / 3.6

    def w(u: int, v: int, d: dict) -> float:
        return min(x.get("length", 0.0) for x in d.values()) / mps

    return w


def nearest_nodes(G: nx.MultiDiGraph, x: np.ndarray, y: np.ndarray, routable: bool = True) -> np.ndarray:
    """The graph node nearest each point.

    With ``routable`` (default) only nodes of the largest strongly connected component are used, so that a
    patrol can drive there from the station and back on one-way streets.

    Parameters
    ----------
    G
        A street graph.
    x, y
        Shape (k,): positions in the graph's CRS (metres for a projected graph).
    routable
        Only nodes a patrol can reach and leave.

    Returns
    -------
    numpy.ndarray
        Shape (k,), int node ids.
    """
    ids = np.array(sorted(max(nx.strongly_connected_components(G), key=len)) if routable else list(G.nodes))
    xy = np.array([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in ids])
    _, i = cKDTree(xy).query(np.column_stack([np.atleast_1d(x), np.atleast_1d(y)]))
    return ids[i]


def travel_matrix(G: nx.MultiDiGraph, nodes: list[int], speed_kph: float | None = 20.0) -> np.ndarray:
    """Shortest travel times between the given nodes over the directed street graph.

    Parameters
    ----------
    G
        The projected street graph.
    nodes
        k node ids.
    speed_kph
        Driving speed (km/h); None = each edge's own ``travel_time``.

    Returns
    -------
    numpy.ndarray
        Shape (k, k), seconds; unreachable pairs get ``UNREACHABLE_S``.
    """
    missing = [n for n in nodes if n not in G]
    if missing:
        raise PatrolError(f"nodes {missing[:5]} are not on the street graph")
    w = _weight(speed_kph)
    M = np.full((len(nodes), len(nodes)), float(UNREACHABLE_S))
    pos: dict[int, list[int]] = {}
    for j, n in enumerate(nodes):
        pos.setdefault(n, []).append(j)
    for n, rows in pos.items():
        dist = nx.single_source_dijkstra_path_length(G, n, weight=w)  # type: ignore[arg-type]
        for m, d in dist.items():
            for j in pos.get(m, ()):
                M[rows, j] = d
    return M


def plan_rounds(G: nx.MultiDiGraph, depot: int, stops: list[Stop], units: int = 2, shift_s: float = 8 * 3600,
                speed_kph: float | None = 20.0, time_limit_s: float = 5.0, balance: float = 1.0,
                unit_names: list[str] | None = None, rounds: int = 1) -> PatrolPlan:
    """Plan the rounds of ``units`` patrols from ``depot`` (the station node) within one shift.

    With ``rounds`` > 1 every mandatory checkpoint is scanned once in each equal slice of the shift (round
    ``r`` arrives within [(r-1)·shift/rounds, r·shift/rounds]); units may wait between rounds.

    Every mandatory stop is visited; optional stops are visited when worth their prize (prize-collecting
    disjunction with penalty = prize in seconds of travel). Each route starts and ends at the depot and
    its travel + service time never exceeds ``shift_s``. ``balance`` weights the longest route's length
    (global span cost) so that units share the work. Raises :class:`PatrolError` if no plan fits.
    """
    try:
        from ortools.constraint_solver import pywrapcp, routing_enums_pb2
    except ImportError as e:
        raise PatrolError(f"OR-Tools routing cannot load ({e}). If highspy was loaded first in this process (e.g. "
                          "PuLP's HiGHS API), restart: OR-Tools and highspy ship clashing HiGHS libraries; "
                          "twin.placement's default solver uses OR-Tools' own HiGHS instead") from e
    if units < 1:
        raise PatrolError("units must be at least 1")
    if shift_s <= 0:
        raise PatrolError("shift_s must be positive")
    if rounds < 1:
        raise PatrolError("rounds must be at least 1")
    t0 = time.perf_counter()
    # Each mandatory checkpoint once per round (same id, round number kept aside); optional stops once.
    rnd: list[int | None] = []
    expanded: list[Stop] = []
    for s in stops:
        for r in range(rounds if s.mandatory and rounds > 1 else 1):
            expanded.append(s)
            rnd.append(r + 1 if s.mandatory and rounds > 1 else None)
    stops = expanded
    nodes = [depot, *[s.node for s in stops]]
    T = travel_matrix(G, nodes, speed_kph)
    unreachable = [s.id for k, s in enumerate(stops, 1) if s.mandatory and (T[0, k] >= UNREACHABLE_S
                                                                            or T[k, 0] >= UNREACHABLE_S)]
    if unreachable:
        raise PatrolError(f"checkpoints {unreachable[:5]} cannot be reached from the station and back over the "
                          "directed street graph; move them to a connected street")
    service = np.array([0.0, *[s.service_s for s in stops]])
    Ti = np.rint(T).astype(np.int64)
    Si = np.rint(service).astype(np.int64)
    mgr = pywrapcp.RoutingIndexManager(len(nodes), units, 0)
    routing = pywrapcp.RoutingModel(mgr)

    def transit(i: int, j: int) -> int:
        a, b = mgr.IndexToNode(i), mgr.IndexToNode(j)
        return int(Ti[a, b] + Si[a])

    def travel(i: int, j: int) -> int:
        return int(Ti[mgr.IndexToNode(i), mgr.IndexToNode(j)])

    cb_time = routing.RegisterTransitCallback(transit)
    cb_cost = routing.RegisterTransitCallback(travel)
    routing.SetArcCostEvaluatorOfAllVehicles(cb_cost)
    routing.AddDimension(cb_time, int(shift_s) if rounds > 1 else 0, int(shift_s), True, "Time")
    tdim = routing.GetDimensionOrDie("Time")
    slice_s = shift_s / rounds
    for k, r in enumerate(rnd, 1):
        if r is not None:
            tdim.CumulVar(mgr.NodeToIndex(k)).SetRange(int((r - 1) * slice_s), int(r * slice_s))
    if balance > 0:
        tdim.SetGlobalSpanCostCoefficient(round(balance))
    for k, s in enumerate(stops, 1):
        if not s.mandatory:
            routing.AddDisjunction([mgr.NodeToIndex(k)], round(s.prize))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(time_limit_s * 1000))
    sol = routing.SolveWithParameters(params)
    # OR-Tools' own status: "success" = a feasible plan when the time limit ran out (local search does not
    # prove optimality); "partial_success_local_optimum_not_reached" = stopped before a local optimum.
    enum = routing_enums_pb2.RoutingSearchStatus.DESCRIPTOR.enum_types[0].values_by_number
    st = routing.status()
    status = enum[st].name.removeprefix("ROUTING_").lower() if st in enum else str(st)
    if sol is None:
        need = sum(s.service_s for s in stops if s.mandatory)
        raise PatrolError(f"no round fits: {sum(s.mandatory for s in stops)} mandatory checkpoints need "
                          f"{need / 60:.0f} min of scanning alone plus travel, with {units} unit(s) and a "
                          f"{shift_s / 3600:.1f} h shift (solver status {status}); add units or lengthen the shift")
    names = unit_names or [f"unit-{u + 1}" for u in range(units)]
    routes, seen = [], set()
    for u in range(units):
        idx = routing.Start(u)
        visits: list[Visit] = []
        trav = serv = 0.0
        prev = 0
        while not routing.IsEnd(idx):
            idx = sol.Value(routing.NextVar(idx))
            n = mgr.IndexToNode(idx)
            trav += T[prev, n]
            if n != 0:
                arrive = float(sol.Value(tdim.CumulVar(idx)))
                s = stops[n - 1]
                visits.append(Visit(stop_id=s.id, kind=s.kind, node=s.node, arrive_s=arrive,
                                    depart_s=arrive + s.service_s, round=rnd[n - 1]))
                serv += s.service_s
                seen.add(n)
            prev = n
        end = float(sol.Value(tdim.CumulVar(routing.End(u))))
        routes.append(Route(unit=names[u], visits=visits, end_s=end, travel_s=trav, service_s=serv))
    dropped = list(dict.fromkeys(s.id for k, s in enumerate(stops, 1) if k not in seen))
    prize_total = sum(s.prize for s in stops if not s.mandatory)
    collected = sum(s.prize for k, s in enumerate(stops, 1) if k in seen and not s.mandatory)
    return PatrolPlan(routes=routes, dropped=dropped, status=status, shift_s=shift_s, depot=depot,
                      solve_s=time.perf_counter() - t0, prize_collected=collected, prize_total=prize_total)


def coverage_probabilities(risk: np.ndarray, k: float) -> np.ndarray:
    """Visit probabilities ∝ risk, capped at 1, summing to ``k`` (expected hot spots visited per day).

    Parameters
    ----------
    risk
        Shape (n,): risk of each candidate hot spot (>= 0).
    k
        Expected visits per day (<= n).

    Returns
    -------
    numpy.ndarray
        Shape (n,), each in [0, 1], summing to ``k``.
    """
    r = np.clip(np.asarray(risk, float), 0, None)
    if k <= 0 or r.sum() == 0:
        return np.zeros_like(r)
    if k >= (r > 0).sum():
        return (r > 0).astype(float)
    pi = np.zeros_like(r)
    capped = np.zeros(r.size, bool)
    for _ in range(r.size):
        free = ~capped & (r > 0)
        pi[free] = (k - capped.sum()) * r[free] / r[free].sum()
        pi[capped] = 1.0
        over = free & (pi > 1.0)
        if not over.any():
            break
        capped |= over
    return np.minimum(pi, 1.0)


def sample_rounds(pi: np.ndarray, days: int, seed: int = 0) -> list[np.ndarray]:
    """For each day, the indices of the hot spots to visit.

    Systematic sampling over a fresh random order, so each index appears with probability ``pi[i]`` and each day
    has ``round(sum(pi))`` stops.

    Parameters
    ----------
    pi
        Shape (n,): visit probabilities (:func:`coverage_probabilities`).
    days
        Days to draw.
    seed
        Random seed.

    Returns
    -------
    list of numpy.ndarray
        ``days`` arrays of indices into ``pi``.
    """
    pi = np.asarray(pi, float)
    if (pi < 0).any() or (pi > 1 + 1e-9).any():
        raise PatrolError("probabilities must be in [0, 1]")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(days):
        order = rng.permutation(pi.size)
        cum = np.concatenate([[0.0], np.cumsum(pi[order])])
        u = rng.random()
        picks = np.arange(u, cum[-1], 1.0)
        idx = np.searchsorted(cum, picks, side="right") - 1
        out.append(np.sort(order[np.unique(idx)]))
    return out


class Isochrones(BaseModel):
    """Time to reach each street sample point, and the share of street length within each limit."""

    model_config = {"arbitrary_types_allowed": True}

    minutes: list[float]
    share: list[float]
    reach_s: np.ndarray = Field(exclude=True)


def isochrones(G: nx.MultiDiGraph, sources: list[int], demand: object, minutes: tuple[float, ...] = (3, 5, 10),
               speed_kph: float | None = 20.0, dispatch_s: float = 60.0) -> Isochrones:
    """Share of the zone's street length reachable from any of ``sources`` within each time limit.

    A street point's time is ``dispatch_s`` (call to wheels rolling) plus the best over its street's two end
    nodes of (node time + distance along the street / speed). The default 20 km/h is an urban response speed in
    night traffic.

    Parameters
    ----------
    G
        The projected street graph (metres).
    sources
        Start nodes (the station, patrol positions).
    demand
        A :class:`twin.coverage.Demand` on the same graph.
    minutes
        Time limits (min).
    speed_kph
        Driving speed (km/h); None = each edge's own ``travel_time``.
    dispatch_s
        Time from the call to wheels rolling (s).

    Returns
    -------
    Isochrones
        ``share`` of street length within each limit and ``reach_s`` per sample point (s).
    """
    from twin.coverage import Demand

    assert isinstance(demand, Demand)
    if not sources:
        raise PatrolError("isochrones need at least one source node (station or patrol position)")
    w = _weight(speed_kph)
    dist = nx.multi_source_dijkstra_path_length(G, set(sources), weight=w)  # type: ignore[arg-type]
    mps = (speed_kph or 30.0) / 3.6
    pts = shapely.points(demand.x, demand.y)
    u = np.array([e[0] for e in demand.edges])[demand.edge]
    v = np.array([e[1] for e in demand.edges])[demand.edge]
    ux = np.array([G.nodes[n]["x"] for n in u])
    uy = np.array([G.nodes[n]["y"] for n in u])
    vx = np.array([G.nodes[n]["x"] for n in v])
    vy = np.array([G.nodes[n]["y"] for n in v])
    geoms = np.array(demand.edge_geoms, dtype=object)[demand.edge]
    s = shapely.line_locate_point(geoms, pts)
    s_u = shapely.line_locate_point(geoms, shapely.points(ux, uy))
    s_v = shapely.line_locate_point(geoms, shapely.points(vx, vy))
    # Distance along the street from each end node (clipped streets: plus the straight gap to the node).
    gap_u = shapely.distance(shapely.points(ux, uy), shapely.line_interpolate_point(geoms, s_u))
    gap_v = shapely.distance(shapely.points(vx, vy), shapely.line_interpolate_point(geoms, s_v))
    du, dv = np.abs(s - s_u) + gap_u, np.abs(s - s_v) + gap_v
    tu = np.array([dist.get(int(n), np.inf) for n in u])
    tv = np.array([dist.get(int(n), np.inf) for n in v])
    reach = dispatch_s + np.minimum(tu + du / mps, tv + dv / mps)
    total = float(demand.length_m.sum())
    share = [float(demand.length_m[reach <= m * 60].sum() / total) for m in minutes]
    return Isochrones(minutes=list(minutes), share=share, reach_s=reach)


def compare_day(plan: PatrolPlan, scans: pd.DataFrame, pings: pd.DataFrame | None = None,
                node_xy: dict[int, tuple[float, float]] | None = None, radius_m: float = 30.0,
                window_s: float = 120.0) -> dict:
    """Compare a day's records with the plan: missed checkpoints, and dwell achieved at hot spots.

    Parameters
    ----------
    plan
        The day's plan.
    scans
        QR scans: ``checkpoint_id``, ``unit_id`` and optionally ``valid`` and ``t_s``.
    pings
        GPS pings: ``unit_id``, ``t_s`` (seconds from shift start), metric ``x``, ``y``; None skips the dwell.
    node_xy
        Node -> metric (x, y), needed with ``pings``.
    radius_m
        A ping within this distance of a hot spot counts as being there (m).
    window_s
        Pings counted within this time of the planned visit (s).

    Returns
    -------
    dict
        ``checkpoints_planned``, ``missed`` (checkpoint ids, ``id#round`` with several rounds),
        ``scanned_by_other_unit``, ``checkpoint_rate`` (0-1), ``dwell`` (planned and achieved seconds per hot-spot
        visit) and ``dwell_ratio`` (achieved / planned; None without hot-spot visits).
    """
    planned = [(r.unit, v) for r in plan.routes for v in r.visits]
    ok = scans[scans["valid"]] if "valid" in scans else scans
    n_rounds = max([v.round or 1 for _, v in planned] or [1])
    slice_s = plan.shift_s / n_rounds
    cps = [(u, v) for u, v in planned if v.kind == "checkpoint"]

    def label(v: Visit) -> str:
        return v.stop_id if v.round is None else f"{v.stop_id}#{v.round}"

    def hits(v: Visit) -> pd.DataFrame:
        h = ok[ok["checkpoint_id"] == v.stop_id]
        if v.round is not None and "t_s" in h:  # a scan counts for the round whose time slice it falls in
            h = h[(h["t_s"] >= (v.round - 1) * slice_s) & (h["t_s"] <= v.round * slice_s)]
        return h

    missed, by_other = [], []
    for u, v in cps:
        h = hits(v)
        if h.empty:
            missed.append(label(v))
        elif not (h["unit_id"] == u).any():
            by_other.append(label(v))
    dwell = []
    if pings is not None and node_xy is not None:
        for unit, v in planned:
            if v.kind != "hotspot":
                continue
            p = pings[(pings["unit_id"] == unit) & (pings["t_s"] >= v.arrive_s - window_s)
                      & (pings["t_s"] <= v.depart_s + window_s)].sort_values("t_s")
            hx, hy = node_xy[v.node]
            near = np.hypot(p["x"].to_numpy() - hx, p["y"].to_numpy() - hy) <= radius_m
            t = p["t_s"].to_numpy(float)
            stay = float(np.sum(np.diff(t)[near[:-1] & near[1:]])) if len(t) > 1 else 0.0
            dwell.append({"stop_id": v.stop_id, "unit": unit, "planned_s": v.depart_s - v.arrive_s,
                          "achieved_s": stay})
    dw = pd.DataFrame(dwell, columns=["stop_id", "unit", "planned_s", "achieved_s"])
    return {"checkpoints_planned": len(cps), "missed": missed, "scanned_by_other_unit": by_other,
            "checkpoint_rate": 1 - len(missed) / len(cps) if cps else 1.0,
            "dwell": dw, "dwell_ratio": float(dw["achieved_s"].sum() / dw["planned_s"].sum()) if len(dw) else None}


def positions_at(plan: PatrolPlan, t_s: float) -> list[int]:
    """Each unit's node at ``t_s`` (seconds from shift start): its last stop reached, else the station.

    Between stops a unit is placed at the stop it just left (a conservative position: it is on its way). After
    its round it is back at the station.

    Returns
    -------
    list of int
        One node per unit.
    """
    out = []
    for r in plan.routes:
        node = plan.depot
        for v in r.visits:
            if v.arrive_s <= t_s:
                node = v.node
        out.append(plan.depot if t_s >= r.end_s else node)
    return out


def response_over_shift(G: nx.MultiDiGraph, plan: PatrolPlan, demand: object, minutes: float = 5.0,
                        step_s: float = 600.0, speed_kph: float | None = 20.0, dispatch_s: float = 60.0
                        ) -> pd.DataFrame:
    """Share of the zone's street length that the station or some patrol reaches within ``minutes``.

    Evaluated every ``step_s`` over the shift, patrol positions from :func:`positions_at`.

    Returns
    -------
    pandas.DataFrame
        One row per time step: ``t_s`` (s from shift start), ``units_out`` and ``share`` (0-1).
    """
    rows = []
    for t in np.arange(0.0, plan.shift_s + 1e-9, step_s):
        pos = positions_at(plan, float(t))
        iso = isochrones(G, [plan.depot, *pos], demand, minutes=(minutes,), speed_kph=speed_kph,
                         dispatch_s=dispatch_s)
        rows.append({"t_s": float(t), "units_out": sum(p != plan.depot for p in pos), "share": iso.share[0]})
    return pd.DataFrame(rows)
