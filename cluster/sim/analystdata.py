"""SIMULATED field data for the analyst notebooks, deterministic for a seed, every row labelled ``simulated``.

The twin holds cameras, places, the zone and a simulated day; the analysts' questions need longer and other
records the platform does not collect yet: 13+ months of incidents (CompStat, hot spots, near repeats), a
patrol shift's GPS and QR scans with a plan to compare against, four weeks of alerts with operators'
decisions and reasons (the CCOC console of issue #15 will record those), and monthly People Poll results.
This module makes them on a city's street graph and registry. Never mix them with real records: every frame
has ``source="simulated"``.

:func:`zone_data` loads what the notebooks share: the city, its street graph, registry, zone and the risk
model of its streets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from cluster.config import CityConfig, load_city
from cluster.registry import Registry
from twin import coverage as cv
from twin import graph
from twin import risk as rk

SOURCE = "simulated"
LOCAL_TZ = "Asia/Bangkok"
SURROUND_M = 700.0  # incidents are simulated in the zone and this far around it (to compare the two)

# kind -> (Thai label, share of incidents, hour-of-day weights 0..23, near-repeat share)
_NIGHT = np.array([6, 6, 5, 4, 3, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 5, 6, 7, 8, 8, 7], float)
_DAY = np.array([1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 8, 8, 8, 8, 8, 7, 7, 6, 5, 4, 3, 2, 1], float)
_EVENING = np.array([4, 3, 2, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 5, 6, 8, 9, 10, 10, 8, 6], float)
KINDS: dict[str, tuple[str, float, np.ndarray, float]] = {
    "theft": ("ลักทรัพย์", 0.40, _DAY + _NIGHT, 0.20),
    "burglary": ("ลักทรัพย์ในเคหสถาน", 0.15, _NIGHT, 0.35),
    "robbery": ("ชิงทรัพย์/วิ่งราวทรัพย์", 0.10, _EVENING + _NIGHT, 0.15),
    "assault": ("ทำร้ายร่างกาย", 0.12, _EVENING, 0.05),
    "drugs": ("ยาเสพติด", 0.13, _EVENING + _NIGHT, 0.05),
    "vandalism": ("ทำให้เสียทรัพย์", 0.10, _NIGHT, 0.10),
}
DISMISS_REASONS = ("wrong-person", "look-alike-plate", "poor-image", "duplicate", "test")


@dataclass
class ZoneData:
    """One city's zone for analysis: config, graphs (WGS84 and UTM), registry, zone polygons, street samples
    around the zone (``demand``, metres) with the risk model's relative risk per sample (``risk``)."""

    city: CityConfig
    G: nx.MultiDiGraph
    P: nx.MultiDiGraph
    reg: Registry
    zone: shapely.Polygon
    zone_utm: shapely.Polygon
    demand: cv.Demand
    risk: np.ndarray
    risk_points: pd.DataFrame

    @property
    def epsg(self) -> int:
        """The metric CRS (UTM zone) of the city."""
        return self.city.utm_epsg

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UTM metres to WGS84 lon/lat."""
        lon, lat = graph.utm_transformers(self.epsg)[1].transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lon), np.asarray(lat)

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat to UTM metres."""
        x, y = graph.utm_transformers(self.epsg)[0].transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x), np.asarray(y)

    @property
    def area(self) -> shapely.Polygon:
        """The zone and its surroundings (WGS84), where the simulated incidents are."""
        to_wgs = graph.utm_transformers(self.epsg)[1].transform
        return shapely.transform(self.zone_utm.buffer(SURROUND_M),
                                 lambda xy: np.column_stack(to_wgs(xy[:, 0], xy[:, 1])))


def zone_data(city_id: str = "hatyai", seed: int = 0, spacing_m: float = 10.0) -> ZoneData:
    """Load a bundled city's graph and registry and score the streets of its zone and surroundings with the
    hand-weighted risk model (places plus ``seed``-generated risk points), as ``ssz plan risk`` does."""
    from cluster.city import load_city_graph
    from cluster.registry import build_registry, zone_polygon

    city = load_city(city_id)
    G = load_city_graph(city)
    P = graph.project(G, city.utm_epsg)
    reg = build_registry(city, G)
    zone, zone_utm = zone_polygon(city)
    demand = cv.sample_streets(P, spacing_m, zone=zone_utm.buffer(SURROUND_M))
    rp = rk.generate_risk_points(demand, 40, seed=seed)
    feats = rk.Features.from_frame(reg.places_frame(), city.utm_epsg) + rk.Features.from_frame(rp)
    X, _ = rk.factor_matrix(demand, feats)
    return ZoneData(city, G, P, reg, zone, zone_utm, demand, rk.hand_model().score(X), rp)


# --------------------------------------------------------------------------------------------- incidents
def simulated_incidents(z: ZoneData, as_of: dt.date, days: int = 420, per_day: float = 5.0, seed: int = 0,
                        zone_trend: float = -0.25) -> pd.DataFrame:
    """SIMULATED incidents over ``days`` days ending on ``as_of`` in the zone and its surroundings.

    Places are street samples drawn ∝ length × relative risk (jittered by up to 6 m); hours follow each kind's
    profile, with more on Friday and Saturday nights; inside the zone the rate falls linearly by
    ``zone_trend`` (−25 %) over the period (the programme working), outside it stays flat; a share of thefts and
    burglaries is followed by a near repeat (within 150 m and 7 days). Columns: ``incident_id``, ``ts`` (UTC),
    ``kind``, ``kind_th``, ``zone`` (``Safety Zone`` / ``surroundings``), ``lon``, ``lat``, ``x``, ``y``,
    ``source``.
    """
    rng = np.random.default_rng(seed)
    d = z.demand
    inside = np.asarray(shapely.contains_xy(z.zone_utm, d.x, d.y))
    p = d.length_m * z.risk
    start = pd.Timestamp(as_of).tz_localize(LOCAL_TZ) - pd.Timedelta(days=days - 1)
    frac = np.arange(days) / max(days - 1, 1)
    n_day = rng.poisson(per_day, days)
    kinds = list(KINDS)
    shares = np.array([KINDS[k][1] for k in kinds])
    rows = []
    for day in range(days):
        # thin the zone's points on this day so the zone's rate follows its trend
        w = p * np.where(inside, 1.0 + zone_trend * frac[day], 1.0)
        idx = rng.choice(len(d), size=n_day[day], p=w / w.sum())
        kk = rng.choice(len(kinds), size=n_day[day], p=shares)
        date = start + pd.Timedelta(days=day)
        weekend = date.dayofweek >= 4
        for i, k in zip(idx, kk, strict=True):
            hw = KINDS[kinds[k]][2] * (np.r_[np.ones(18), np.full(6, 1.6)] if weekend else 1.0)
            hour = rng.choice(24, p=hw / hw.sum())
            ts = date + pd.Timedelta(hours=int(hour), minutes=int(rng.integers(60)))
            rows.append((kinds[k], ts, d.x[i] + rng.uniform(-6, 6), d.y[i] + rng.uniform(-6, 6)))
    base = pd.DataFrame(rows, columns=["kind", "ts", "x", "y"])
    rep = base[[rng.random() < KINDS[k][3] for k in base["kind"]]]
    ang = rng.uniform(0, 2 * np.pi, len(rep))
    dist = rng.uniform(0, 150, len(rep))
    repeats = rep.assign(x=rep["x"] + dist * np.cos(ang), y=rep["y"] + dist * np.sin(ang),
                         ts=rep["ts"] + pd.to_timedelta(rng.uniform(0.1, 7, len(rep)), unit="D"))
    end = pd.Timestamp(as_of).tz_localize(LOCAL_TZ) + pd.Timedelta(days=1)
    inc = pd.concat([base, repeats[repeats["ts"] < end]], ignore_index=True).sort_values("ts", kind="stable")
    inc = inc.reset_index(drop=True)
    lon, lat = z.to_lonlat(inc["x"], inc["y"])
    in_zone = np.asarray(shapely.contains_xy(z.zone_utm, inc["x"].to_numpy(), inc["y"].to_numpy()))
    return pd.DataFrame({"incident_id": [f"SIM-{i + 1:05d}" for i in range(len(inc))],
                         "ts": inc["ts"].dt.tz_convert("UTC"), "kind": inc["kind"],
                         "kind_th": inc["kind"].map(lambda k: KINDS[k][0]),
                         "zone": np.where(in_zone, "Safety Zone", "surroundings"),
                         "lon": lon, "lat": lat, "x": inc["x"].to_numpy(), "y": inc["y"].to_numpy(),
                         "source": SOURCE})


def write_thai_incidents_csv(inc: pd.DataFrame, path: Path) -> Path:
    """Write incidents the way a Thai station's Excel exports them: cp874 (TIS-620), Thai headers, day-first
    dates with Buddhist Era years (``15/03/2569 07:30``). For the notebooks to read back through the reader."""
    local = pd.to_datetime(inc["ts"], utc=True).dt.tz_convert(LOCAL_TZ)
    be = [f"{t.day:02d}/{t.month:02d}/{t.year + 543} {t.hour:02d}:{t.minute:02d}" for t in local]
    out = pd.DataFrame({"เลขรับแจ้ง": inc["incident_id"], "วันเวลาเกิดเหตุ": be, "ประเภท": inc["kind"],
                        "ชุมชน": inc["zone"], "ละติจูด": inc["lat"].round(6), "ลองจิจูด": inc["lon"].round(6),
                        "หมายเหตุ": "simulated"})
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, encoding="cp874")
    return path


# --------------------------------------------------------------------------------------------- alerts
def simulated_alerts_with_decisions(z: ZoneData, as_of: dt.date, days: int = 28, per_day: float = 60.0,
                                    seed: int = 0, problem_cameras: int = 3) -> pd.DataFrame:
    """SIMULATED alerts of the zone's cameras over ``days`` days with operators' decisions and reasons.

    Cameras raise alerts at very different rates (gamma-distributed, as busy and quiet streets do); each has
    its own chance that an alert is right (about 0.8); ``problem_cameras`` busy cameras are poor
    (about 0.3: glare at night on a face camera, look-alike plates on a plate camera). About 5 % of alerts are
    still ``new``. Dismissals carry a reason code from :data:`DISMISS_REASONS`. Columns follow the ``alerts``
    layer (``status``, ``status_by``, ``status_ts``, ``status_reason``) plus ``source``.
    """
    rng = np.random.default_rng(seed)
    cams = z.reg.cameras_frame()
    cams = cams[cams["in_zone"] & (cams["mount"] == "fixed")].reset_index(drop=True)
    if cams.empty:
        raise ValueError(f"{z.city.id} has no fixed camera in its zone")
    precision = np.clip(rng.beta(8, 2, len(cams)), 0.3, 0.98)
    poor = rng.choice(len(cams), size=min(problem_cameras, len(cams)), replace=False)
    precision[poor] = rng.uniform(0.2, 0.35, len(poor))
    n = rng.poisson(per_day * days)
    # busy cameras (a market entrance) raise far more alerts than quiet ones; the poor ones raise many
    rate = rng.gamma(0.6, 1.0, len(cams))
    rate[poor] = np.quantile(rate, 0.9) * 2
    ci = rng.choice(len(cams), size=n, p=rate / rate.sum())
    end = pd.Timestamp(as_of).tz_localize(LOCAL_TZ) + pd.Timedelta(days=1)
    ts = end - pd.to_timedelta(rng.uniform(0, days * 86400, n), unit="s")
    kind = np.where(cams["kind"].to_numpy()[ci] == "plate", "plate", "face")
    right = rng.random(n) < precision[ci]
    pending = rng.random(n) < 0.05
    status = np.where(pending, "new", np.where(right, "confirmed", "dismissed"))
    reason = np.where(kind == "plate", rng.choice(["look-alike-plate", "poor-image", "duplicate", "test"], n,
                                                  p=[0.55, 0.25, 0.15, 0.05]),
                      rng.choice(["wrong-person", "poor-image", "duplicate", "test"], n, p=[0.5, 0.3, 0.15, 0.05]))
    decided = status != "new"
    status_ts = ts + pd.to_timedelta(rng.gamma(2.0, 2.5, n), unit="min")
    ops = rng.choice(["ccoc-somchai", "ccoc-nok", "ccoc-preecha"], n)
    out = pd.DataFrame({
        "alert_id": [f"sim-alert-{i + 1:05d}" for i in range(n)], "camera_id": cams["id"].to_numpy()[ci],
        "ts": ts.tz_convert("UTC"), "kind": kind, "score": np.round(rng.uniform(0.5, 0.99, n), 3),
        "status": status, "status_by": np.where(decided, ops, None),
        "status_ts": pd.Series(status_ts.tz_convert("UTC")).where(decided),
        "status_reason": np.where(status == "dismissed", reason, None),
        "lon": cams["lon"].to_numpy()[ci], "lat": cams["lat"].to_numpy()[ci], "city": z.city.id,
        "source": SOURCE})
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------- patrols
@dataclass
class PatrolShift:
    """A SIMULATED shift: the plan's QR checks (``planned``), hot spots, GPS pings as a tracker sends them (with a
    few 0,0 fixes and one impossible jump, to be cleaned by the reader) and QR scans."""

    planned: pd.DataFrame
    hotspots: pd.DataFrame
    pings: pd.DataFrame
    scans: pd.DataFrame
    plan: object


def simulated_patrol_shift(z: ZoneData, day: dt.date, seed: int = 0, hotspots: int = 6, units: int | None = None,
                           start_hour: int = 20, ping_s: float = 30.0) -> PatrolShift:
    """SIMULATED night shift planned with :func:`twin.patrol.plan_rounds` on the zone's QR boxes and riskiest
    streets, then driven: units stop at hot spots for a dwell that varies around the plan (some too short,
    some in the 10-16 minute window, some long), skip ~10 % of QR boxes and scan ~15 % late."""
    from twin import patrol as pt

    rng = np.random.default_rng(seed)
    places = z.reg.places_frame()
    qr = places[(places["kind"] == "qr") & places["in_zone"]].reset_index(drop=True)
    qx, qy = z.to_xy(qr["lon"], qr["lat"])
    qn = pt.nearest_nodes(z.P, qx, qy)
    checkpoints = [pt.Stop(id=str(i), node=int(n), service_s=60) for i, n in zip(qr["id"], qn, strict=True)]
    inside = np.asarray(shapely.contains_xy(z.zone_utm, z.demand.x, z.demand.y))
    seg = rk.segment_risk(z.demand, np.where(inside, z.risk, 0.0))
    hot = pt.hotspot_stops(z.P, seg, n=hotspots, dwell_s=12 * 60)
    station = int(pt.nearest_nodes(z.P, *z.to_xy([z.city.station.lon], [z.city.station.lat]))[0])
    n_units = units or z.city.patrol_units
    plan = pt.plan_rounds(z.P, station, checkpoints + hot, units=n_units, shift_s=8 * 3600, time_limit_s=3,
                          unit_names=[f"{z.city.id}-patrol-{u + 1:02d}" for u in range(n_units)])
    t0 = pd.Timestamp(day).tz_localize(LOCAL_TZ) + pd.Timedelta(hours=start_hour)
    planned, pings, scans = [], [], []
    for r in plan.routes:
        prev = station
        t = 0.0
        for v in r.visits:
            # drive from the previous node to this stop (straight pings between the two nodes)
            ax, ay = z.P.nodes[prev]["x"], z.P.nodes[prev]["y"]
            bx, by = z.P.nodes[v.node]["x"], z.P.nodes[v.node]["y"]
            drive = max(v.arrive_s - t, ping_s)
            for s in np.arange(ping_s, drive, ping_s):
                f = s / drive
                pings.append((r.unit, t + s, ax + f * (bx - ax), ay + f * (by - ay)))
            arrive = v.arrive_s
            if v.kind == "hotspot":
                stay = float(rng.choice([0.4, 0.9, 1.0, 1.1, 1.6], p=[0.3, 0.2, 0.2, 0.15, 0.15])) * (v.depart_s
                                                                                                    - v.arrive_s)
            else:
                stay = 60.0
                planned.append((r.unit, v.stop_id, t0 + pd.Timedelta(seconds=arrive)))
                u = rng.random()
                if u >= 0.10:
                    delay = rng.uniform(0, 5) if u >= 0.25 else rng.uniform(15, 45)
                    scans.append((r.unit, v.stop_id, t0 + pd.Timedelta(seconds=arrive + delay * 60)))
            for s in np.arange(0.0, stay + 1e-9, ping_s):
                pings.append((r.unit, arrive + s, bx + rng.normal(0, 4), by + rng.normal(0, 4)))
            t, prev = arrive + stay, v.node
    pg = pd.DataFrame(pings, columns=["unit_id", "t_s", "x", "y"]).sort_values(["unit_id", "t_s"], kind="stable")
    lon, lat = z.to_lonlat(pg["x"], pg["y"])
    pg = pd.DataFrame({"unit_id": pg["unit_id"].to_numpy(),
                       "ts": (t0 + pd.to_timedelta(pg["t_s"].to_numpy(), unit="s")).tz_convert("UTC"),
                       "lon": np.round(lon, 6), "lat": np.round(lat, 6), "source": SOURCE})
    # what real trackers send too: a few pings with no fix (0,0) and one impossible jump
    bad = rng.choice(len(pg), size=3, replace=False)
    pg.loc[bad, ["lon", "lat"]] = 0.0
    jump = int(rng.integers(10, len(pg) - 10))
    pg.loc[jump, "lon"] = float(pg.loc[jump, "lon"]) + 0.05  # ~5.5 km away for one ping
    hs = pd.DataFrame({"spot_id": [s.id for s in hot],
                       "lon": z.to_lonlat([z.P.nodes[s.node]["x"] for s in hot],
                                          [z.P.nodes[s.node]["y"] for s in hot])[0],
                       "lat": z.to_lonlat([z.P.nodes[s.node]["x"] for s in hot],
                                          [z.P.nodes[s.node]["y"] for s in hot])[1]})
    return PatrolShift(pd.DataFrame(planned, columns=["unit_id", "checkpoint_id", "due"]).assign(source=SOURCE), hs,
                       pg, pd.DataFrame(scans, columns=["unit_id", "checkpoint_id", "ts"]).assign(source=SOURCE), plan)


# --------------------------------------------------------------------------------------------- People Poll
def simulated_people_poll(communities: list[str], first_month: dt.date, months: int = 12, seed: int = 0
                          ) -> pd.DataFrame:
    """SIMULATED monthly People Poll per community: fear of crime starts in the high 40s and falls about one
    point a month, confidence in police starts in the low 70s and rises, with sampling noise; 80-150
    respondents each. Columns: the ``survey_results`` layer's (``community``, ``month``, ``respondents``,
    ``fear_of_crime_pct``, ``confidence_in_police_pct``) plus ``source``."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in communities:
        fear0, conf0 = rng.uniform(44, 52), rng.uniform(68, 75)
        slope_f, slope_c = rng.uniform(-1.4, -0.6), rng.uniform(0.5, 1.3)
        for m in range(months):
            month = (pd.Timestamp(first_month) + pd.DateOffset(months=m)).date().replace(day=1)
            n = int(rng.integers(80, 151))
            f = np.clip(fear0 + slope_f * m, 5, 95)
            k = np.clip(conf0 + slope_c * m, 5, 98)
            rows.append((c, month, n, round(100 * rng.binomial(n, f / 100) / n, 1),
                         round(100 * rng.binomial(n, k / 100) / n, 1)))
    return pd.DataFrame(rows, columns=["community", "month", "respondents", "fear_of_crime_pct",
                                       "confidence_in_police_pct"]).assign(source=SOURCE)


def write_thai_poll_csv(poll: pd.DataFrame, path: Path, encoding: str = "cp874") -> Path:
    """Write a People Poll the way the district office sends it: Thai headers, Thai month abbreviations with
    Buddhist Era years (``มี.ค. 2569``), percentages with a ``%`` sign, in ``encoding`` (TIS-620 by default)."""
    abbr = ["ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค."]
    out = pd.DataFrame({"ชุมชน": poll["community"],
                        "เดือน": [f"{abbr[m.month - 1]} {m.year + 543}" for m in poll["month"]],
                        "จำนวนผู้ตอบ": poll["respondents"],
                        "ความหวาดกลัวอาชญากรรม (%)": [f"{v:.1f}%" for v in poll["fear_of_crime_pct"]],
                        "ความเชื่อมั่นต่อตำรวจ (%)": [f"{v:.1f}%" for v in poll["confidence_in_police_pct"]],
                        "หมายเหตุ": "simulated"})
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, encoding=encoding)
    return path
