"""Planning on a city's Safety Zone: risk scores and work orders, camera placement, patrol rounds.

:func:`build_context` loads what every plan needs once (graphs, registry, the zone's street sample points,
risk factors and a risk model); :func:`risk_plan`, :func:`camera_plan` and :func:`patrol_plan` return one
JSON-able document each (``ssz plan risk|cameras|patrol`` print them). Risk uses hand weights from
:class:`twin.risk.RiskConfig` unless an incident CSV (x/y metric or lon/lat, optional hour) is given, in
which case the weights are fitted by count regression and the PAI on held-out incidents is reported.
Risk points (lighting / vegetation / abandoned lots) come from a CSV, or are generated and marked so.
Bad input raises :class:`PlanningError`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import shapely
import shapely.ops

from cluster.city import CityModel, city_model
from cluster.config import CityConfig, load_city
from cluster.registry import zone_polygon
from twin import coverage as cv
from twin import graph
from twin import patrol as pt
from twin import risk as rk


class PlanningError(ValueError):
    """A plan cannot be made from these inputs (a missing or malformed file, more cameras than sites, a zone
    without QR checkpoints, an infeasible routing); the message says what to change."""


@dataclass
class PlanContext:
    """Everything the planning commands share for one city: graphs, registry, zone, demand, risk."""

    city: CityConfig
    G: nx.MultiDiGraph
    P: nx.MultiDiGraph
    zone_utm: shapely.Polygon
    places: pd.DataFrame
    cameras: pd.DataFrame
    demand: cv.Demand
    risk_points: pd.DataFrame
    X: np.ndarray
    names: list[str]
    model: rk.RiskModel
    incidents: pd.DataFrame | None
    pai: dict[str, float] | None
    warnings: list[str] = field(default_factory=list)  # what the field-input reader noticed (swaps, outside)

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Metric x/y back to WGS84 lon/lat."""
        lon, lat = graph.utm_transformers(self.city.utm_epsg)[1].transform(np.asarray(x), np.asarray(y))
        return np.asarray(lon), np.asarray(lat)


def read_points(path: Path | None, kind: str, city: CityConfig, warnings: list[str] | None = None,
                sheet: str | int | None = None) -> pd.DataFrame | None:
    """Field points of a CSV/TSV or workbook (``incidents`` or ``risk_points``) read through the one validating
    reader, :func:`twin.fieldinput.read_table`; None without a path. ``sheet`` names a workbook's sheet (name or
    0-based number; default: the first whose header names the kind's columns).

    Encodings (UTF-8, TIS-620/cp874, UTF-16), Thai headers, Buddhist Era day-first dates, lon/lat, one
    "lat, lon" column or metric x/y in the city's UTM zone are read. Swapped lon/lat are swapped back, points
    outside the zone are counted and left out, each said in ``warnings``; a file with no point in the zone is
    refused.

    Returns
    -------
    pandas.DataFrame or None
        The kept rows with the reader's canonical columns plus metric ``x``/``y`` (m, the city's UTM zone);
        incidents carry ``hour`` (0-23 local, ``<NA>`` when the file gives a date without a time).

    Raises
    ------
    twin.fieldspecs.InputError
        The file, row, column, what is wrong and what to do (exit code 2 on the command line).
    """
    if path is None:
        return None
    from twin.fieldinput import Area, read_table

    area = Area(zone_polygon(city)[0], f"the {city.name} zone")
    res = read_table(path, kind, sheet=sheet, area=area, epsg=city.utm_epsg, outside="drop")
    if warnings is not None:
        warnings += [f"{res.source}: {w}" for w in res.warnings]
    df = res.frame
    x, y = graph.utm_transformers(city.utm_epsg)[0].transform(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    return df.assign(x=np.asarray(x), y=np.asarray(y))


def build_context(city: str | CityConfig | CityModel, incidents: Path | None = None, risk_points: Path | None = None,
                  spacing_m: float = 8.0, seed: int = 0, *, incidents_sheet: str | int | None = None,
                  risk_points_sheet: str | int | None = None) -> PlanContext:
    """Score the zone's streets of a city (fitted weights when incidents exist).

    Parameters
    ----------
    city
        A loaded city (nothing is loaded again) or a city id, YAML path or config.
    incidents, risk_points
        Optional field files (see :func:`read_points`); without risk points 30 are generated.
    incidents_sheet, risk_points_sheet
        The sheet of each file when it is a workbook (name or 0-based number; see :func:`read_points`).
    spacing_m
        Distance between street sample points (m).
    seed
        Seed of the generated risk points and the held-out split of the incidents.

    Raises
    ------
    cluster.config.ConfigError, PlanningError, twin.fieldspecs.InputError
    """
    if not isinstance(city, CityModel | CityConfig):
        city = load_city(city)
    cfg0 = city.config if isinstance(city, CityModel) else city
    warnings: list[str] = []  # field files first: a bad file is refused before the street graph is loaded
    rp = read_points(risk_points, "risk_points", cfg0, warnings, risk_points_sheet)
    inc = read_points(incidents, "incidents", cfg0, warnings, incidents_sheet)
    model = city_model(city)
    cfg, G, reg = model.config, model.graph, model.registry
    P = model.projected
    zone_utm = zone_polygon(cfg)[1]
    demand = cv.sample_streets(P, spacing_m, zone=zone_utm)
    places = reg.places_frame()
    if rp is None:
        rp = rk.generate_risk_points(demand, 30, seed=seed)
    elif "risk_id" not in rp:
        rp = rp.assign(risk_id=[f"rp-{r:03d}" for r in rp["row"]])
    else:
        rp = rp.assign(risk_id=[f"rp-{r:03d}" if pd.isna(v) else str(v)
                                for v, r in zip(rp["risk_id"], rp["row"], strict=True)])
    feats = rk.Features.from_frame(places, cfg.utm_epsg) + rk.Features.from_frame(rp)
    X, names = rk.factor_matrix(demand, feats)
    model_, pai = rk.hand_model(), None
    if inc is not None:
        rng = np.random.default_rng(seed)
        test = rng.random(len(inc)) < 0.3
        train, held = inc[~test], inc[test]
        try:
            model_ = rk.fit(demand, X, names, train["x"].to_numpy(float), train["y"].to_numpy(float))
            pai = rk.pai(demand, model_.score(X), held["x"].to_numpy(float), held["y"].to_numpy(float))
        except rk.RiskError as e:
            warnings.append(f"{e}; using hand weights")
    demand.weight = model_.score(X)
    return PlanContext(cfg, G, P, zone_utm, places, reg.cameras_frame(), demand, rp, X, names, model_, inc, pai,
                       warnings)


def _risk_streets_part(ctx: PlanContext, score: np.ndarray, name: str, label: str, visible: bool) -> Any:
    """Zone streets coloured by relative risk (a kepler.gl GeoJSON layer; uses twin.maps' layer helpers)."""
    from twin import maps

    seg = rk.segment_risk(ctx.demand, score)
    to_wgs = graph.utm_transformers(ctx.city.utm_epsg)[1].transform
    geoms = [shapely.ops.transform(to_wgs, ctx.demand.edge_geoms[i]) for i in seg.index]
    props = pd.DataFrame({"risk": seg["risk"].round(2).to_numpy(), "length_m": seg["length_m"].round(1).to_numpy()})
    layer = maps._layer("geojson", name, label, {"geojson": "_geojson"}, "#FF0000",
                        {"opacity": 0.9, "strokeOpacity": 0.9, "thickness": 2.0, "filled": False, "stroked": True,
                         "strokeColorRange": maps._sequential_range("ssz.risk", RISK_COLORS)},
                        visible=visible)
    layer["visualChannels"].update({"strokeColorField": {"name": "risk", "type": "real"},
                                    "strokeColorScale": "quantile"})
    return maps.MapPart(datasets={name: maps._feature_collection(geoms, props)}, layers=[layer],
                        tooltips={name: ["risk", "length_m"]})


RISK_COLORS = ["#FFFFB2", "#FED976", "#FEB24C", "#FD8D3C", "#F03B20", "#BD0026"]


def write_risk_map(ctx: PlanContext, fixes: pd.DataFrame, path: Path) -> Path:
    """Offline kepler.gl map: street risk before and after the given fixes, and the risk points."""
    from twin import maps

    before = ctx.model.score(ctx.X)
    after = ctx.model.score(rk.apply_fixes(ctx.X, ctx.names, ctx.demand, fixes))
    lon, lat = ctx.to_lonlat(ctx.risk_points["x"].to_numpy(), ctx.risk_points["y"].to_numpy())
    rp = ctx.risk_points.assign(lon=lon, lat=lat, status=np.where(ctx.risk_points["risk_id"].isin(fixes["risk_id"]),
                                                                  "scheduled", "reported"))
    zone_wgs = shapely.ops.transform(graph.utm_transformers(ctx.city.utm_epsg)[1].transform, ctx.zone_utm)
    m = maps.TwinMap(centre=(ctx.city.zone.centre.lon, ctx.city.zone.centre.lat), title=f"{ctx.city.name}: risk")
    m.add(maps.zone_outline(zone_wgs),
          _risk_streets_part(ctx, before, "risk_before", "Street risk before fixes", True),
          _risk_streets_part(ctx, after, "risk_after", f"Street risk after {len(fixes)} fixes", False),
          maps.risk_points(rp))
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(m.to_html(path))


def risk_plan(ctx: PlanContext, *, top: int = 10, fixes: int = 5, map_out: Path | None = None,
              risk_points_from_file: bool = False) -> dict[str, Any]:
    """Risk per street segment: the riskiest streets and the ranked lighting/landscaping work orders.

    Parameters
    ----------
    ctx
        The city's planning context.
    top
        How many streets and work orders to list.
    fixes
        Work orders fixed on the after map.
    map_out
        Where to write the offline before/after map (none without it).
    risk_points_from_file
        Whether the context's risk points came from a file (reported as their source).

    Returns
    -------
    dict
        ``weights``, ``riskiest_streets``, ``work_orders`` (lon/lat, expected drop %), ``pai_held_out`` and
        ``hotspots_by_hour`` when incidents were given, ``map`` when written.
    """
    seg = rk.segment_risk(ctx.demand, ctx.model.score(ctx.X)).head(top)
    wo = rk.work_orders(ctx.demand, ctx.model, ctx.X, ctx.risk_points).head(top)
    lon, lat = ctx.to_lonlat(wo["x"].to_numpy(), wo["y"].to_numpy())
    out: dict[str, Any] = {
        "city": ctx.city.id, "weights_source": ctx.model.source, "weights": ctx.model.weights(),
        "risk_points_source": "file" if risk_points_from_file else "generated (no risk-point file given)",
        "street_km": round(float(ctx.demand.length_m.sum()) / 1000, 2),
        "riskiest_streets": [{"u": int(r.u), "v": int(r.v), "key": int(r.key), "length_m": round(r.length_m, 1),
                              "relative_risk": round(r.risk, 2)} for r in seg.itertuples()],
        "work_orders": [{"risk_id": r.risk_id, "kind": r.kind, "lon": round(float(a), 6), "lat": round(float(b), 6),
                         "expected_drop_pct": round(r.drop_pct, 2)}
                        for r, a, b in zip(wo.itertuples(), lon, lat, strict=True)],
    }
    if ctx.pai is not None:
        out["pai_held_out"] = ctx.pai
    if map_out is not None:
        chosen = rk.work_orders(ctx.demand, ctx.model, ctx.X, ctx.risk_points).head(fixes)
        out["map"] = str(write_risk_map(ctx, chosen, map_out))
    if ctx.warnings:
        out["warnings"] = list(ctx.warnings)
    timed = None if ctx.incidents is None else ctx.incidents
    if timed is not None and "hour" in timed:
        known = timed["hour"].notna().to_numpy()
        if not known.all():
            out.setdefault("warnings", []).append(
                f"{int((~known).sum())} of {len(timed)} incidents have no time of day: left out of hotspots_by_hour")
        timed = timed[known].assign(hour=timed["hour"][known].astype(int))
    if timed is not None and len(timed):
        kde = rk.kde_hotspots(ctx.demand, timed)
        out["hotspots_by_hour"] = {}
        for col in kde.columns:
            i = int(kde[col].idxmax())
            if not kde[col].iloc[i] > 0:  # no incident in these hours: no hotspot (not a point at density 0)
                out["hotspots_by_hour"][col] = None
                continue
            a, b = ctx.to_lonlat(ctx.demand.x[i:i + 1], ctx.demand.y[i:i + 1])
            out["hotspots_by_hour"][col] = {"lon": round(float(a[0]), 6), "lat": round(float(b[0]), 6),
                                            "density_per_km2": round(float(kde[col].iloc[i]), 1)}
    return out


def camera_plan(ctx: PlanContext, p: int = 20, *, exact: bool = True, time_limit: float = 30.0, fov: float = 60.0,
                range_m: float = 40.0, map_out: Path | None = None, sight_lines: bool = True,
                corridor_m: float = 12.0) -> dict[str, Any]:
    """Place ``p`` new cameras on the zone's streets (existing cameras pinned), maximising covered risk.

    Parameters
    ----------
    ctx
        The city's planning context.
    p
        New cameras to place.
    exact
        Exact MCLP (HiGHS) instead of greedy.
    time_limit
        Solver time limit (s).
    fov, range_m
        Field of view (degrees) and useful range (m) of the new cameras.
    map_out
        Where to write the offline map (none without it).
    sight_lines, corridor_m
        A camera sees a street point only along a sight line inside the street corridor of this half-width (m).

    Returns
    -------
    dict
        Coverage before and after, the solver's status and bounds, the marginal curve and ``new_sites``.

    Raises
    ------
    PlanningError
        When ``p`` exceeds the candidate sites in the zone.
    """
    from twin import placement as pl

    cands = cv.candidate_sites(ctx.P, ctx.demand, fov_deg=fov, range_m=range_m, zone=ctx.zone_utm)
    existing = cv.cameras_to_sites(ctx.cameras, ctx.city.utm_epsg)
    if p > len(cands):
        raise PlanningError(f"--p {p} is more than the {len(cands)} candidate sites in the zone")
    corridor = cv.Corridor(ctx.demand, corridor_m) if sight_lines else None
    res = pl.place(ctx.demand, cands, existing, p, method="exact" if exact else "greedy", time_limit_s=time_limit,
                   corridor=corridor)
    xy = np.array(res.new_xy) if res.new_xy else np.zeros((0, 3))
    lon, lat = ctx.to_lonlat(xy[:, 0], xy[:, 1])
    r = res.result
    out = {"city": ctx.city.id, "method": r.method, "sight_lines": f"street corridor ±{corridor_m:g} m" if sight_lines
           else "off (wedge only)", "solver": r.solver, "status": r.status, "p": p,
           "pinned_cameras": len(r.pinned), "candidate_sites": len(cands),
           "covered_share_before": round(r.share_before, 4), "covered_share_after": round(r.share_after, 4),
           "best_bound": r.best_bound, "mip_gap": r.mip_gap, "solve_s": round(r.solve_s, 3),
           "marginal_curve": [round(c, 4) for c in r.curve()],
           "new_sites": [{"lon": round(float(a), 6), "lat": round(float(b), 6), "heading_deg": round(float(h), 1),
                          "kind": k, "fov_deg": fov, "range_m": range_m}
                         for a, b, h, k in zip(lon, lat, xy[:, 2], res.new_kind, strict=True)]}
    if map_out is not None:
        out["map"] = str(write_camera_map(ctx, out["new_sites"], map_out))
    return out


def write_camera_map(ctx: PlanContext, new_sites: list[dict[str, Any]], path: Path) -> Path:
    """An offline kepler.gl map of existing (pinned) and new cameras with their view wedges."""
    from twin import maps

    cams = ctx.cameras[ctx.cameras["mount"] == "fixed"].copy()
    cams["owner"] = cams["owner"].astype(str)
    new = pd.DataFrame(new_sites).assign(owner="government", kind="cctv", id=lambda d: [f"new-{i + 1:02d}"
                                                                                       for i in range(len(d))])
    both = pd.concat([cams.assign(status="existing"), new.assign(status="new")], ignore_index=True)
    both["camera_id"] = both["id"]
    zone_wgs = shapely.ops.transform(graph.utm_transformers(ctx.city.utm_epsg)[1].transform, ctx.zone_utm)
    m = maps.TwinMap(centre=(ctx.city.zone.centre.lon, ctx.city.zone.centre.lat), title=f"{ctx.city.name}: new cameras")
    m.add(maps.zone_outline(zone_wgs), maps.cameras(both, color_by="owner"),
          maps.cameras(new, color_by="owner", name="new_cameras"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(m.to_html(path))


def patrol_plan(ctx: PlanContext, *, units: int | None = None, shift_h: float = 8.0, hotspots: int = 10,
                per_day: int = 5, day: int = 0, rounds: int = 1, time_limit: float = 10.0) -> dict[str, Any]:
    """Plan today's QR rounds: every checkpoint, a risk-weighted random set of hot spots, isochrones.

    Parameters
    ----------
    ctx
        The city's planning context.
    units
        Patrol units (default: the city's config).
    shift_h
        Shift length (hours).
    hotspots
        Candidate hot spots (optional stops).
    per_day
        Hot spots sampled into today's rounds.
    day
        Day number: seeds the randomised schedule.
    rounds
        Rounds of the QR boxes per shift.
    time_limit
        Routing time limit (s).

    Returns
    -------
    dict
        Routes per unit, dropped stops, hot-spot probabilities and today's hot spots, and the share of street
        length reachable within 3/5/10 minutes from the station and from the patrol stops.

    Raises
    ------
    PlanningError
        When the city has no QR checkpoints or the rounds cannot be routed.
    """
    n_units = units if units is not None else max(1, ctx.city.patrol_units)
    to_utm = graph.utm_transformers(ctx.city.utm_epsg)[0]
    qr = ctx.places[ctx.places["kind"] == "qr"]
    if qr.empty:
        raise PlanningError(f"{ctx.city.id} has no QR checkpoints in its config (checkpoints: N)")
    x, y = to_utm.transform(qr["lon"].to_numpy(float), qr["lat"].to_numpy(float))
    nodes = pt.nearest_nodes(ctx.P, np.asarray(x), np.asarray(y))
    sx, sy = to_utm.transform(ctx.city.station.lon, ctx.city.station.lat)
    depot = int(pt.nearest_nodes(ctx.P, np.array([sx]), np.array([sy]))[0])
    checkpoints = [pt.Stop(id=i, node=int(n), service_s=60) for i, n in zip(qr["id"], nodes, strict=True)]
    hot = pt.hotspot_stops(ctx.P, rk.segment_risk(ctx.demand, ctx.model.score(ctx.X)), hotspots)
    pi = pt.coverage_probabilities(np.array([h.prize for h in hot]), min(per_day, len(hot)))
    today = pt.sample_rounds(pi, day + 1, seed=zlib.crc32(ctx.city.id.encode()))[day] if hot else []
    chosen = [hot[i] for i in today]
    try:
        plan = pt.plan_rounds(ctx.P, depot, checkpoints + chosen, units=n_units, shift_s=shift_h * 3600,
                              time_limit_s=time_limit, rounds=rounds)
    except pt.PatrolError as e:
        raise PlanningError(str(e)) from e
    iso_station = pt.isochrones(ctx.P, [depot], ctx.demand)
    positions = [depot, *{v.node for r in plan.routes for v in r.visits}]
    iso_patrol = pt.isochrones(ctx.P, positions, ctx.demand)
    return {
        "city": ctx.city.id, "units": n_units, "shift_h": shift_h, "rounds": rounds, "status": plan.status,
        "solve_s": round(plan.solve_s, 2), "checkpoints": len(checkpoints),
        "hotspot_probabilities": {h.id: round(float(q), 3) for h, q in zip(hot, pi, strict=True)},
        "hotspots_today": [h.id for h in chosen], "dropped": plan.dropped,
        "routes": [{"unit": r.unit, "end_min": round(r.end_s / 60, 1), "travel_min": round(r.travel_s / 60, 1),
                    "stops": [v.stop_id if v.round is None else f"{v.stop_id}#{v.round}" for v in r.visits]}
                   for r in plan.routes],
        "reachable_share_from_station": dict(zip(["3min", "5min", "10min"], iso_station.share, strict=True)),
        "reachable_share_from_patrol_stops": dict(zip(["3min", "5min", "10min"], iso_patrol.share, strict=True)),
    }


def bench_plans(city_time_limit_s: float = 60.0, routing_time_limit_s: float = 10.0) -> dict[str, Any]:
    """``ssz bench plan``: Chiang Mai zone (real OSM, registry pinned) exact; Hat Yai city (617 cameras pinned)
    with 100 new, greedy and time-limited exact; Hat Yai's 40 QR checkpoints with 3 units."""
    from twin.plan_bench import bench_plan

    cm = CityModel.load("chiangmai")
    hyc = CityModel.load("hatyai")
    hy, Gc = hyc.config, hyc.graph
    pf = hyc.registry.places_frame()
    cams = hyc.registry.cameras_frame()
    cams = cams[cams["kind"] == "cctv"]  # the 617 CCTV cameras; plate cameras watch lanes, not streets
    return bench_plan(cm.graph, zone_polygon(cm.config)[1], cm.registry.cameras_frame(), Gc, cams,
                      pf[pf["kind"] == "qr"], (hy.station.lon, hy.station.lat), city_time_limit_s=city_time_limit_s,
                      routing_time_limit_s=routing_time_limit_s,
                      labels={"zone": "Chiang Mai Nimmanhaemin zone, real OSM, registry cameras pinned",
                              "city": f"Hat Yai generated graph, {len(cams)} CCTV cameras pinned",
                              "routing": "Hat Yai 40 QR checkpoints, 3 units"})
