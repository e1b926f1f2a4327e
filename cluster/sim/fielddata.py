"""The one generator of SYNTHETIC field data: patrol GPS pings, QR box scans, SOS presses, alerts, risk points.

Nothing here is observed: it stands in for the field inputs of a real deployment, in three settings that all
move patrol units with :func:`cluster.sim.paths.walk` along street-graph routes:

* :func:`patrol_and_sos`: the simulated day of :mod:`cluster.sim.scenario` (units drive rounds of the zone's QR
  boxes from the station, scan them, and SOS poles are pressed), as twin layer frames with scenario seconds;
* :func:`demo_layers`: a deterministic demo day for a twin that has no field data yet (``ssz twin map`` and
  the notebooks): alerts at zone cameras, one patrol trip per unit through QR checkpoints, risk points;
* :func:`plan_records`: the scans and pings of a day that followed (or did not quite follow) a patrol plan of
  :func:`twin.patrol.plan_rounds`, for :func:`twin.patrol.compare_day`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd
from pyproj import Geod

from cluster.citytwin import cameras_layer, validated_frame
from cluster.sim.paths import Router, hour_weights, path_polyline, walk
from twin.schemas import alert_id

if TYPE_CHECKING:
    from cluster.city import CityModel
    from cluster.registry import Registry
    from twin.patrol import PatrolPlan

DEMO_DAY = dt.date(2021, 12, 1)
LOCAL = "Asia/Bangkok"
WGS84 = Geod(ellps="WGS84")


# ----------------------------------------------------------------------------------------------------------
# The scenario's day: patrol rounds of the QR boxes and SOS presses


def patrol_and_sos(rng: np.random.Generator, P: nx.MultiDiGraph, driver: Router, city: str,
                   qr: pd.DataFrame | None, sos: pd.DataFrame | None, station_xy: tuple[float, float] | None,
                   units: int, to_wgs: object, *, day: dt.date, rounds: int = 2, ping_s: float = 10.0,
                   sos_presses: int = 4) -> dict[str, pd.DataFrame]:
    """Patrol rounds of the QR boxes (pings, scans, trips) and SOS presses of a scenario day.

    Parameters
    ----------
    rng
        The scenario's generator (drawn from after the agents and trips, so the day stays deterministic).
    P, driver
        The projected street graph and its directed router.
    city
        City id.
    qr, sos
        QR boxes and SOS poles with ``id``, metric ``x``, ``y``; None or empty for none.
    station_xy
        The police station (metric x, y): every round starts and ends there.
    units
        Patrol units.
    to_wgs
        pyproj transformer metric -> lon/lat.
    day
        The scenario's calendar day (in trip and report ids).
    rounds
        Rounds per unit (a day shift at 08:00, an evening shift at 20:00, alternating).
    ping_s
        Seconds between GPS pings.
    sos_presses
        SOS presses over the day.

    Returns
    -------
    dict
        Frames ``patrol_pings``, ``checkpoint_scans``, ``patrol_trips`` and ``sos_reports`` with times in
        scenario seconds (``ts``, ``start_s``, ``end_s``, ``path_s``).
    """
    pings, scans, trips, reports = [], [], [], []
    tr = to_wgs  # pyproj Transformer (metric -> lon/lat)
    if qr is not None and len(qr) and station_xy is not None and units:
        depot = int(driver.nodes[driver.tree.query(station_xy)[1]])
        box_nodes = driver.nodes[driver.tree.query(qr[["x", "y"]].to_numpy(float))[1]]
        shift_starts = [8 * 3600.0, 20 * 3600.0]
        for u in range(units):
            unit = f"{city}-patrol-{u + 1:02d}"
            for r in range(rounds):
                order = _nearest_tour(P, depot, rng.permutation(len(qr))[: max(2, len(qr) // max(units, 1))], box_nodes)
                t0 = shift_starts[r % 2] + u * 900.0 + float(rng.uniform(0, 600))
                trip_id = f"{unit}-{day:%Y%m%d}-{r + 1}"
                path, stops = [depot], []
                for i in order:
                    try:
                        path += driver.route(path[-1], int(box_nodes[i]))[1:]
                    except nx.NetworkXNoPath:
                        continue
                    stops.append((len(path) - 1, i))
                with contextlib.suppress(nx.NetworkXNoPath):
                    path += driver.route(path[-1], depot)[1:]
                speed = 6.0
                poly = path_polyline(P, path)
                t, x, y = walk(poly, speed, ping_s)
                node_xy = np.array([[P.nodes[n]["x"], P.nodes[n]["y"]] for n in path])
                scanned = 0
                dwell = 0.0
                for pos, i in stops:  # scan when the unit reaches the box (its nearest ping), 2 min each
                    k = int(np.argmin(np.hypot(x - node_xy[pos, 0], y - node_xy[pos, 1])))
                    if rng.random() < 0.1:
                        continue  # a skipped box: planned but not scanned
                    bx, by = float(qr.iloc[i]["x"]), float(qr.iloc[i]["y"])
                    lon, lat = tr.transform(bx + rng.normal(0, 4), by + rng.normal(0, 4))  # type: ignore[attr-defined]
                    scans.append({"scan_id": f"{trip_id}-scan-{scanned + 1:02d}",
                                  "checkpoint_id": str(qr.iloc[i]["id"]),
                                  "unit_id": unit, "officer_id": f"{unit}-officer", "city": city,
                                  "ts": t0 + float(t[k]) + dwell, "trip_id": trip_id, "valid": True,
                                  "lon": lon, "lat": lat})
                    scanned += 1
                    dwell += 120.0
                lon, lat = tr.transform(x, y)  # type: ignore[attr-defined]
                ping_t = t0 + t + np.linspace(0, dwell, len(t))
                for k in range(len(t)):
                    pings.append({"unit_id": unit, "city": city, "ts": float(ping_t[k]), "trip_id": trip_id,
                                  "speed_mps": speed, "accuracy_m": float(rng.uniform(3, 8)), "lon": float(lon[k]),
                                  "lat": float(lat[k])})
                trips.append({"trip_id": trip_id, "unit_id": unit, "city": city, "start_s": float(ping_t[0]),
                              "end_s": float(ping_t[-1]), "distance_m": float(t[-1] * speed), "n_pings": len(t),
                              "checkpoints_planned": len(stops), "checkpoints_scanned": scanned,
                              "path_lon": [float(v) for v in lon], "path_lat": [float(v) for v in lat],
                              "path_s": [float(v) for v in ping_t]})
    if sos is not None and len(sos):
        for n in range(sos_presses):
            p = sos.iloc[int(rng.integers(len(sos)))]
            lon, lat = tr.transform(float(p["x"]), float(p["y"]))  # type: ignore[attr-defined]
            cat = str(rng.choice(["emergency", "suspicious", "accident", "crime"], p=[0.3, 0.4, 0.2, 0.1]))
            ts = float(rng.choice(24, p=hour_weights("person")) * 3600 + rng.uniform(0, 3600))
            reports.append({"report_id": f"{city}-sos-{day:%Y%m%d}-{n + 1:03d}", "city": city, "ts": ts,
                            "source": "sos_pole", "pole_id": str(p["id"]), "category": cat,
                            "text": f"SOS pressed at {p['id']}", "status": "resolved", "status_by": "ccoc-operator",
                            "status_ts": ts + float(rng.uniform(120, 900)), "lon": lon, "lat": lat})
    return {"patrol_pings": pd.DataFrame(pings), "checkpoint_scans": pd.DataFrame(scans),
            "patrol_trips": pd.DataFrame(trips), "sos_reports": pd.DataFrame(reports)}


def _nearest_tour(P: nx.MultiDiGraph, depot: int, boxes: np.ndarray, box_nodes: np.ndarray) -> list[int]:
    """A planned round: from the station, always on to the nearest box not yet visited (straight-line)."""
    left = [int(i) for i in boxes]
    here = np.array([P.nodes[depot]["x"], P.nodes[depot]["y"]])
    out = []
    while left:
        xy = np.array([[P.nodes[int(box_nodes[i])]["x"], P.nodes[int(box_nodes[i])]["y"]] for i in left])
        k = int(np.argmin(np.hypot(*(xy - here).T)))
        out.append(left.pop(k))
        here = xy[k]
    return out


# ----------------------------------------------------------------------------------------------------------
# A demo day for a twin without field data


def _utc(local: dt.datetime) -> pd.Timestamp:
    return pd.Timestamp(local, tz=LOCAL).tz_convert("UTC")


def _evening_weights() -> np.ndarray:
    w = np.array([2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6, 8, 9, 9, 8, 6, 4], dtype=float)
    return w / w.sum()


def demo_alerts(reg: Registry, rng: np.random.Generator, n: int = 120, day: dt.date = DEMO_DAY) -> pd.DataFrame:
    """A day of synthetic alerts, three quarters at zone cameras, more in the evening.

    Parameters
    ----------
    reg
        The city's registry (alerts are raised at its fixed cameras).
    rng
        Random generator.
    n
        Alerts.
    day
        The local calendar day.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows of the twin's ``alerts`` layer, validated.
    """
    cams = reg.cameras_frame()
    fixed = cams[cams["mount"] == "fixed"]
    zone = fixed[fixed["in_zone"]]
    pick = np.where(rng.random(n) < 0.75, rng.integers(0, max(len(zone), 1), n), -1)
    rows = []
    start = _utc(dt.datetime.combine(day, dt.time(0, 0)))
    hours = rng.choice(np.arange(24), size=n, p=_evening_weights())
    for i in range(n):
        cam = zone.iloc[int(pick[i])] if pick[i] >= 0 and len(zone) else fixed.iloc[int(rng.integers(len(fixed)))]
        kind = str(rng.choice(["face", "plate", "sos", "camera-offline"], p=[0.5, 0.3, 0.1, 0.1]))
        if kind == "plate" and cam["kind"] != "plate":
            kind = "face"
        ts = start + pd.Timedelta(hours=int(hours[i]), seconds=float(rng.uniform(0, 3600)))
        status = str(rng.choice(["new", "confirmed", "dismissed"], p=[0.3, 0.3, 0.4]))
        decided = status != "new"
        subject = f"wl-{int(rng.integers(1, 14)):03d}" if kind == "face" else (
            f"hl-{int(rng.integers(1, 40)):03d}" if kind == "plate" else None)
        track = f"trk-{i:05d}"
        rows.append({
            "alert_id": alert_id(cam["id"], kind, subject, track), "camera_id": cam["id"], "ts": ts, "kind": kind,
            "subject_id": subject, "score": float(np.float32(rng.uniform(0.6, 0.99))) if kind in {"face", "plate"}
            else None, "status": status, "status_by": "ccoc-operator-1" if decided else None,
            "status_ts": ts + pd.Timedelta(minutes=float(rng.uniform(1, 10))) if decided else pd.NaT,
            "lon": float(cam["lon"]), "lat": float(cam["lat"]), "city": reg.city.id, "track_id": track,
            "frames": int(rng.integers(3, 40)),
        })
    df = pd.DataFrame(rows)
    df["status_ts"] = pd.to_datetime(df["status_ts"], utc=True)
    return validated_frame("alerts", df, reg.city.id)


def demo_patrols(city: CityModel, rng: np.random.Generator, units: int | None = None, day: dt.date = DEMO_DAY,
                 ping_s: float = 10.0, speed_mps: float = 6.0) -> pd.DataFrame:
    """Patrol GPS pings of a demo day: each unit drives through 8 of the zone's QR checkpoints.

    Parameters
    ----------
    city
        The loaded city (its WGS84 street graph and registry).
    rng
        Random generator.
    units
        Patrol units (default the city's ``patrol_units``); each makes one trip, starting 19:00-21:00.
    day
        The local calendar day.
    ping_s
        Seconds between pings.
    speed_mps
        Driving speed (m/s).

    Returns
    -------
    pandas.DataFrame
        Rows of the twin's ``patrol_pings`` layer, validated.
    """
    import osmnx as ox

    reg, G = city.registry, city.graph
    places = reg.places_frame()
    qr = places[(places["kind"] == "qr") & places["in_zone"]]
    if len(qr) < 2:
        qr = places[places["in_zone"]]
    Gu = G.to_undirected()
    nodes = ox.distance.nearest_nodes(G, qr["lon"].to_numpy(), qr["lat"].to_numpy())
    units = units or reg.city.patrol_units
    rows = []
    for u in range(max(units, 1)):
        stops = [int(nodes[i]) for i in rng.permutation(len(nodes))[:8]]
        path: list[int] = [stops[0]]
        for a, b in itertools.pairwise(stops):
            try:
                path += nx.shortest_path(Gu, a, b, weight="length")[1:]
            except nx.NetworkXNoPath:
                continue
        xy = np.array([(G.nodes[p]["x"], G.nodes[p]["y"]) for p in path])
        if len(xy) < 2:
            continue
        seg_m = WGS84.inv(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])[2]
        ts_rel, lon, lat = walk(xy, speed_mps, ping_s, seg_m=seg_m)
        start = _utc(dt.datetime.combine(day, dt.time(19 + u % 3, 0)))
        unit = f"{reg.city.id}-patrol-{u + 1:02d}"
        for k in range(len(ts_rel)):
            rows.append({"unit_id": unit, "city": reg.city.id, "ts": start + pd.Timedelta(seconds=float(ts_rel[k])),
                         "trip_id": f"{unit}-{day:%Y%m%d}-1", "speed_mps": speed_mps,
                         "accuracy_m": float(rng.uniform(3, 8)), "lon": float(lon[k]), "lat": float(lat[k])})
    return validated_frame("patrol_pings", pd.DataFrame(rows), reg.city.id)


def demo_risk_points(reg: Registry, rng: np.random.Generator, n: int = 16, day: dt.date = DEMO_DAY) -> pd.DataFrame:
    """Risk points on zone streets (dark spots, overgrown trees, abandoned buildings) with consistent dates.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows of the twin's ``risk_points`` layer (reported <= scheduled <= fixed), validated.
    """
    cams = reg.cameras_frame()
    zone = cams[cams["in_zone"] & (cams["mount"] == "fixed")]
    rows = []
    for i in range(n):
        c = zone.iloc[int(rng.integers(len(zone)))]
        kind = str(rng.choice(["lighting", "vegetation", "abandoned", "other"], p=[0.45, 0.3, 0.15, 0.1]))
        status = str(rng.choice(["reported", "scheduled", "fixed"], p=[0.4, 0.3, 0.3]))
        reported = day - dt.timedelta(days=int(rng.integers(5, 60)))
        sched = reported + dt.timedelta(days=int(rng.integers(1, 5))) if status != "reported" else None
        fixed = sched + dt.timedelta(days=int(rng.integers(1, 5))) if status == "fixed" and sched else None
        rows.append({"risk_id": f"{reg.city.id}-risk-{i + 1:03d}", "city": reg.city.id, "kind": kind,
                     "status": status, "description": f"{kind} problem near {c['id']}", "reported_date": reported,
                     "scheduled_date": sched, "fixed_date": fixed, "reported_by": "community-survey",
                     "agency": "municipality" if kind != "lighting" else "PEA",
                     "lon": float(c["lon"]) + float(rng.normal(0, 0.0002)),
                     "lat": float(c["lat"]) + float(rng.normal(0, 0.0002))})
    df = pd.DataFrame(rows)
    for c in ("reported_date", "scheduled_date", "fixed_date"):
        df[c] = pd.Series([v for v in df[c]], dtype="object")
    return validated_frame("risk_points", df, reg.city.id)


def demo_layers(city: CityModel, seed: int = 0, day: dt.date = DEMO_DAY) -> dict[str, pd.DataFrame]:
    """A deterministic demo day of a city's twin, schema-valid.

    Parameters
    ----------
    city
        The loaded city.
    seed
        Same seed, same day.
    day
        The local calendar day.

    Returns
    -------
    dict
        Layer frames ``cameras`` (the registry's), ``alerts``, ``patrol_pings`` and ``risk_points``.
    """
    rng = np.random.default_rng(seed)
    reg = city.registry
    return {"cameras": cameras_layer(reg), "alerts": demo_alerts(reg, rng, day=day),
            "patrol_pings": demo_patrols(city, rng, day=day), "risk_points": demo_risk_points(reg, rng, day=day)}


# ----------------------------------------------------------------------------------------------------------
# Field records of a day that followed a patrol plan


def plan_records(G: nx.MultiDiGraph, plan: PatrolPlan, skip_share: float = 0.1, dwell_share: float = 0.7,
                 ping_s: float = 30.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SYNTHETIC field records of a day against a patrol plan, for :func:`twin.patrol.compare_day`.

    Parameters
    ----------
    G
        The projected street graph the plan was made on (metric node ``x``/``y``).
    plan
        The plan (:func:`twin.patrol.plan_rounds`).
    skip_share
        Share of planned checkpoint visits that are not scanned.
    dwell_share
        Share of the planned dwell that units really stay at hot spots.
    ping_s
        Seconds between GPS pings.
    seed
        Random seed.

    Returns
    -------
    scans, pings
        Scans (``checkpoint_id``, ``unit_id``, ``t_s`` seconds from shift start, ``valid``) and pings
        (``unit_id``, ``t_s``, metric ``x``, ``y``; a unit leaving a stop pings 700 m away).
    """
    rng = np.random.default_rng(seed)
    scans, pings = [], []
    for r in plan.routes:
        for v in r.visits:
            x, y = G.nodes[v.node]["x"], G.nodes[v.node]["y"]
            if v.kind == "checkpoint" and rng.random() >= skip_share:
                scans.append({"checkpoint_id": v.stop_id, "unit_id": r.unit, "t_s": v.arrive_s, "valid": True})
            stay = (v.depart_s - v.arrive_s) * (dwell_share if v.kind == "hotspot" else 1.0)
            for t in np.arange(v.arrive_s, v.arrive_s + stay + 1e-9, ping_s):
                pings.append({"unit_id": r.unit, "t_s": float(t), "x": x + rng.normal(0, 4), "y": y + rng.normal(0, 4)})
            # Leaving: the next ping is far away (on the way to the next stop).
            pings.append({"unit_id": r.unit, "t_s": v.arrive_s + stay + ping_s, "x": x + 500.0, "y": y + 500.0})
    return pd.DataFrame(scans, columns=["checkpoint_id", "unit_id", "t_s", "valid"]), pd.DataFrame(pings)
