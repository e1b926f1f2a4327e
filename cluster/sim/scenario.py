"""A simulated day of a Safety Zone with exact ground truth: who each camera sees, when, and how large.

Agents move on the zone's street graph (metric, projected):

* **persons**: identities of a labelled face set, some on the arrest-warrant watchlist (enrolled with some of
  their photos, seen by cameras with the others), each making several walking trips over the day;
* **crowd**: passers-by without a known face (silhouettes for the motion gate and the tracker);
* **vehicles** with Thai plates (text supplied by the caller), some hot-listed, driving on the one-way-aware
  graph;
* **patrol units** driving a planned round of the zone's QR check-in boxes (scans, GPS pings, trips) and
  **SOS presses** at the zone's SOS poles, from the field-data generator (:mod:`cluster.sim.fielddata`).

A share of the trips is routed along the street of a *rendered camera* (one that will be drawn and streamed), in
the direction that faces it for most of them, so that a short run sees enough passes to measure recall.

Ground truth is the geometry every camera applies: an agent is in view when it is within the camera's range
and field of view (:func:`twin.coverage.covered_by_site`'s rule). For each pass (a *sighting*) the scenario
keeps the agent's positions in the camera's frame (forward ``a`` and right ``b`` metres, sampled every
``step_s``), and projects the face (or plate) with :class:`twin.optics.Optics` to get its size in pixels, whether it is
wholly in the frame and turned to the camera. The renderer (:mod:`actors.sources.scenario`) uses the same projection,
so "the face was 64 px high at 09:12:31" is exactly what was drawn.

Everything is a deterministic function of the inputs and ``seed``; times are seconds since local midnight
of ``day`` (Asia/Bangkok).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree

from cluster.sim.fielddata import patrol_and_sos
from cluster.sim.paths import Router, hour_weights, path_polyline, walk
from twin.optics import LANE_M, camera_frame, is_night, target_box

LOCAL_TZ = "Asia/Bangkok"


class ScenarioConfig(BaseModel):
    """Size and behaviour of a simulated day."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    day: dt.date = dt.date(2026, 11, 20)
    wanted: int = Field(default=4, ge=0, description="persons on the watchlist")
    unlisted: int = Field(default=8, ge=0, description="persons with known faces who are not on it")
    trips_per_person: int = Field(default=6, ge=1)
    trips_per_wanted: int = Field(default=10, ge=1, description="the wanted are out more (and in view more)")
    crowd_trips: int = Field(default=60, ge=0)
    vehicles: int = Field(default=24, ge=0)
    hotlisted: int = Field(default=4, ge=0)
    trips_per_vehicle: int = Field(default=3, ge=1)
    vehicles_at_cctv: bool = Field(default=True, description=(
        "CCTV cameras see the traffic too (drawn, never recognisable there: CCTV runs the face model)"))
    rendered_share: float = Field(default=0.7, ge=0, le=1,
                                  description="share of trips routed past a rendered camera")
    facing_share: float = Field(default=0.75, ge=0, le=1,
                                description="share of those passes that walk towards the camera")
    walk_mps: tuple[float, float] = (1.1, 1.6)
    drive_mps: tuple[float, float] = (3.0, 6.0)
    trip_m: tuple[float, float] = (150.0, 500.0)
    step_s: float = Field(default=0.25, gt=0, le=2)
    night: tuple[int, int] = Field(default=(19, 6), description="local hours [start, end) of darkness")
    min_face_px: float = Field(default=36.0, description="a face this high (px), lit and facing, is recognisable")
    min_plate_px: float = Field(default=110.0, description="a plate this wide (px) is readable")
    patrol_rounds: int = Field(default=2, ge=0, description="rounds per unit (a day and an evening shift)")
    patrol_ping_s: float = Field(default=10.0, gt=0)
    sos_presses: int = Field(default=4, ge=0)


@dataclass
class Scenario:
    """A generated day: agents, trips, sightings (with per-pass samples) and the patrol/SOS layers."""

    config: ScenarioConfig
    city: str
    agents: pd.DataFrame
    trips: pd.DataFrame
    sightings: pd.DataFrame
    layers: dict[str, pd.DataFrame] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A hash of the ground truth (sightings and agents): equal for equal inputs and seed."""
        h = hashlib.sha256()
        cols = ["sighting_id", "camera_id", "agent_id", "t_in", "t_out", "max_px", "recognisable"]
        h.update(pd.util.hash_pandas_object(self.sightings[cols].round(6), index=False).values.tobytes())
        h.update(pd.util.hash_pandas_object(self.agents[["agent_id", "kind"]], index=False).values.tobytes())
        return h.hexdigest()[:16]

    def at_camera(self, camera_id: str) -> pd.DataFrame:
        """The sightings of one camera in time order."""
        s = self.sightings
        return s[s["camera_id"] == camera_id].sort_values("t_in").reset_index(drop=True)

    def utc(self, t_s: float | np.ndarray) -> pd.Timestamp | pd.DatetimeIndex:
        """UTC timestamp(s) of scenario seconds."""
        midnight = pd.Timestamp(self.config.day, tz=LOCAL_TZ)
        return (midnight + pd.to_timedelta(t_s, unit="s")).tz_convert("UTC")


# ----------------------------------------------------------------------------------------------------------
# Generation


@dataclass
class CameraTable:
    """Cameras in metric coordinates (fixed cameras only)."""

    ids: np.ndarray
    kind: np.ndarray
    x: np.ndarray
    y: np.ndarray
    heading_deg: np.ndarray
    fov_deg: np.ndarray
    range_m: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> CameraTable:
        """From a frame with ``id``, ``kind``, ``x``, ``y``, ``heading_deg``, ``fov_deg``, ``range_m``."""
        return cls(df["id"].to_numpy(object), df["kind"].to_numpy(object), df["x"].to_numpy(float),
                   df["y"].to_numpy(float), df["heading_deg"].to_numpy(float) % 360, df["fov_deg"].to_numpy(float),
                   df["range_m"].to_numpy(float))

    def index(self, camera_id: str) -> int:
        """Row of a camera id."""
        hits = np.flatnonzero(self.ids == camera_id)
        if not len(hits):
            raise KeyError(f"unknown camera {camera_id!r}")
        return int(hits[0])


def _ahead_behind(P: nx.MultiDiGraph, cams: CameraTable, j: int, u: int, v: int) -> tuple[int, int]:
    """Of edge (u, v), the end the camera looks towards, then the other one."""
    def ahead(n: int) -> float:
        a, _ = camera_frame(np.array([P.nodes[n]["x"] - cams.x[j]]), np.array([P.nodes[n]["y"] - cams.y[j]]),
                            np.array([cams.heading_deg[j]]))
        return float(a[0])
    return (u, v) if ahead(u) >= ahead(v) else (v, u)


def _trip_nodes(r: Router, P: nx.MultiDiGraph, cams: CameraTable, rendered: list[int], cfg: ScenarioConfig,
                rng: np.random.Generator, rendered_share: float, edges: dict[str, tuple[int, int]]
                ) -> tuple[list[int], str]:
    lo, hi = cfg.trip_m
    if rendered and rng.random() < rendered_share:
        j = rendered[int(rng.integers(len(rendered)))]
        u, v = edges[str(cams.ids[j])]
        first, second = _ahead_behind(P, cams, j, u, v)
        if rng.random() >= cfg.facing_share:
            first, second = second, first
        fx, fy = P.nodes[first]["x"], P.nodes[first]["y"]
        sx, sy = P.nodes[second]["x"], P.nodes[second]["y"]
        for _ in range(5):
            try:
                o = r.near(fx, fy, rng, lo / 2, hi / 2)
                d = r.near(sx, sy, rng, lo / 2, hi / 2)
                head = r.route(o, first)
                if not r.G.has_edge(first, second):
                    continue
                tail = r.route(second, d)
                if second in head or first in tail:
                    continue  # the route would come back along the rendered camera's street
                return head + tail, str(cams.ids[j])
            except nx.NetworkXNoPath:
                continue
    for _ in range(20):
        if rendered:  # trips stay in the neighbourhood of the watched streets
            j = rendered[int(rng.integers(len(rendered)))]
            o = r.near(float(cams.x[j]), float(cams.y[j]), rng, 0.0, 600.0)
        else:
            o = int(r.nodes[int(rng.integers(len(r.nodes)))])
        d = r.near(P.nodes[o]["x"], P.nodes[o]["y"], rng, lo, hi)
        try:
            return r.route(o, d), ""
        except nx.NetworkXNoPath:
            continue
    return [o], ""


def generate(P: nx.MultiDiGraph, cameras: pd.DataFrame, *, city: str, faces: dict[str, list[str]],
             plates: Sequence[str], rendered: Sequence[str] = (), qr_boxes: pd.DataFrame | None = None,
             sos_poles: pd.DataFrame | None = None, station_xy: tuple[float, float] | None = None,
             patrol_units: int = 0, to_wgs: object | None = None,
             config: ScenarioConfig | None = None) -> Scenario:
    """Generate a day on the projected street graph ``P``.

    ``cameras``: fixed cameras with ``id``, ``kind`` (``cctv``/``plate``), metric ``x``/``y``, ``heading_deg``,
    ``fov_deg``, ``range_m``, ``edge_u``/``edge_v`` (their street). ``faces``: identity -> photo file names
    (identities with at least 3 photos can be wanted: all but the last one or two are enrolled, those are what
    cameras see).
    ``plates``: one plate text per vehicle. ``rendered``: cameras that will be rendered. ``qr_boxes`` and
    ``sos_poles``: frames with ``id``, ``x``, ``y``; ``to_wgs``: a pyproj transformer metric -> lon/lat for the
    patrol and SOS layers.
    """
    cfg = config or ScenarioConfig()
    rng = np.random.default_rng(cfg.seed)
    cams = CameraTable.from_frame(cameras)
    edges = {str(r.id): (int(r.edge_u), int(r.edge_v)) for r in cameras.itertuples()
             if pd.notna(r.edge_u) and pd.notna(r.edge_v)}
    rendered_idx = [cams.index(c) for c in rendered]
    rendered_face = [j for j in rendered_idx if cams.kind[j] == "cctv"]
    rendered_plate = [j for j in rendered_idx if cams.kind[j] == "plate"]
    agents = _agents(cfg, rng, faces, plates, city)
    walker, driver = Router(P, directed=False), Router(P, directed=True)

    trips, samples = [], []
    for ag in agents.itertuples():
        if ag.kind == "crowd":
            continue
        n = (cfg.trips_per_vehicle if ag.kind == "vehicle" else cfg.trips_per_wanted if ag.listed
             else cfg.trips_per_person)
        for k in range(n):
            trips.append(_trip(ag, k, cfg, rng, P, cams, walker, driver, rendered_face, rendered_plate, edges, samples))
    for k in range(cfg.crowd_trips):
        ag = agents[agents["kind"] == "crowd"].iloc[k % max(1, int((agents["kind"] == "crowd").sum()))]
        trips.append(_trip(ag, k, cfg, rng, P, cams, walker, driver, rendered_face, [], edges, samples))
    trips_df = pd.DataFrame(trips)
    sightings = _sightings(cfg, cams, agents, samples)
    layers: dict[str, pd.DataFrame] = {}
    if to_wgs is not None:
        layers = patrol_and_sos(rng, P, driver, city, qr_boxes, sos_poles, station_xy, patrol_units, to_wgs,
                                day=cfg.day, rounds=cfg.patrol_rounds, ping_s=cfg.patrol_ping_s,
                                sos_presses=cfg.sos_presses)
    return Scenario(cfg, city, agents, trips_df, sightings, layers)


def _agents(cfg: ScenarioConfig, rng: np.random.Generator, faces: dict[str, list[str]], plates: Sequence[str],
            city: str) -> pd.DataFrame:
    ids = sorted(faces)
    can_be_wanted = [i for i in ids if len(faces[i]) >= 3]
    if cfg.wanted > len(can_be_wanted):
        raise ValueError(f"{cfg.wanted} wanted persons need as many identities with >= 3 photos; the face set has "
                         f"{len(can_be_wanted)}")
    wanted = list(rng.choice(can_be_wanted, size=cfg.wanted, replace=False)) if cfg.wanted else []
    others = [i for i in ids if i not in wanted]
    if cfg.unlisted > len(others):
        raise ValueError(f"{cfg.unlisted} unlisted persons need as many more identities; {len(others)} are left")
    unlisted = list(rng.choice(others, size=cfg.unlisted, replace=False)) if cfg.unlisted else []
    if len(plates) < cfg.vehicles:
        raise ValueError(f"{cfg.vehicles} vehicles need as many plates; {len(plates)} given")
    if cfg.hotlisted > cfg.vehicles:
        raise ValueError("more hot-listed vehicles than vehicles")
    rows = []
    for n, ident in enumerate(wanted):
        files = sorted(faces[ident])
        k = max(2, len(files) - 2)  # the warrant file holds most photos; cameras see the last one or two
        rows.append({"agent_id": f"p{n:03d}", "kind": "person", "identity": ident, "listed": True,
                     "subject_id": f"SIM-W-{city}-{n + 1:03d}", "enrol_photos": files[:k], "photos": files[k:],
                     "plate": None})
    for n, ident in enumerate(unlisted):
        rows.append({"agent_id": f"p{len(wanted) + n:03d}", "kind": "person", "identity": ident, "listed": False,
                     "subject_id": None, "enrol_photos": [], "photos": sorted(faces[ident]), "plate": None})
    hot = set(rng.choice(cfg.vehicles, size=cfg.hotlisted, replace=False).tolist()) if cfg.hotlisted else set()
    for n in range(cfg.vehicles):
        rows.append({"agent_id": f"v{n:03d}", "kind": "vehicle", "identity": None, "listed": n in hot,
                     "subject_id": f"SIM-H-{city}-{n + 1:03d}" if n in hot else None, "enrol_photos": [], "photos": [],
                     "plate": plates[n]})
    for n in range(min(cfg.crowd_trips, 40)):
        rows.append({"agent_id": f"c{n:03d}", "kind": "crowd", "identity": None, "listed": False, "subject_id": None,
                     "enrol_photos": [], "photos": [], "plate": None})
    return pd.DataFrame(rows)


def _trip(ag: object, k: int, cfg: ScenarioConfig, rng: np.random.Generator, P: nx.MultiDiGraph, cams: CameraTable,
          walker: Router, driver: Router, rendered_face: list[int], rendered_plate: list[int],
          edges: dict[str, tuple[int, int]], samples: list[tuple[np.ndarray, ...]]) -> dict[str, object]:
    vehicle = ag.kind == "vehicle"  # type: ignore[attr-defined]
    share = cfg.rendered_share
    if getattr(ag, "listed", False):
        share = min(1.0, share + 0.2)  # the wanted and the hot-listed frequent the watched streets
    nodes, via = _trip_nodes(driver if vehicle else walker, P, cams, rendered_plate if vehicle else rendered_face, cfg,
                             rng, share, edges)
    speed = float(rng.uniform(*(cfg.drive_mps if vehicle else cfg.walk_mps)))
    lateral = float(rng.uniform(LANE_M - 0.3, LANE_M + 0.3) if vehicle else rng.choice([-1, 1]) * rng.uniform(2.5, 6.0))
    t, x, y = walk(path_polyline(P, nodes), speed, cfg.step_s, lateral)
    hour = int(rng.choice(24, p=hour_weights("vehicle" if vehicle else "person")))
    start = hour * 3600.0 + float(rng.uniform(0, 3600 - min(t[-1], 3000)))
    trip_id = f"{ag.agent_id}-t{k:02d}"  # type: ignore[attr-defined]
    samples.append((np.full(len(t), trip_id, object), np.full(len(t), ag.agent_id, object),  # type: ignore[attr-defined]
                    start + t, x, y))
    return {"trip_id": trip_id, "agent_id": ag.agent_id, "start_s": start,  # type: ignore[attr-defined]
            "end_s": start + float(t[-1]), "length_m": float(t[-1] * speed), "speed_mps": speed,
            "lateral_m": lateral, "via_camera": via or None, "nodes": len(nodes)}


def _sightings(cfg: ScenarioConfig, cams: CameraTable, agents: pd.DataFrame,
               samples: list[tuple[np.ndarray, ...]]) -> pd.DataFrame:
    cols = ["sighting_id", "camera_id", "camera_kind", "agent_id", "agent_kind", "subject_id", "listed", "trip_id",
            "t_in", "t_out", "hour", "night", "min_dist_m", "max_px", "facing", "recognisable", "t", "a", "b",
            "toward"]
    if not samples:
        return pd.DataFrame(columns=cols)
    trip = np.concatenate([s[0] for s in samples])
    agent = np.concatenate([s[1] for s in samples])
    ts = np.concatenate([s[2] for s in samples])
    x = np.concatenate([s[3] for s in samples])
    y = np.concatenate([s[4] for s in samples])
    kind_of = dict(zip(agents["agent_id"], agents["kind"], strict=True))
    is_vehicle = np.array([kind_of[a] == "vehicle" for a in agent])
    pairs = cKDTree(np.column_stack([cams.x, cams.y])).query_ball_point(np.column_stack([x, y]),
                                                                        r=float(cams.range_m.max()))
    lens = np.fromiter((len(p) for p in pairs), int, len(pairs))
    si = np.repeat(np.arange(len(pairs)), lens)
    cj = np.fromiter((j for p in pairs for j in p), int, int(lens.sum()))
    # cctv cameras watch people (and see the traffic), plate cameras watch vehicles
    cctv = cams.kind[cj] == "cctv"
    want = np.where(is_vehicle[si], (cams.kind[cj] == "plate") | (cctv & cfg.vehicles_at_cctv), cctv)
    si, cj = si[want], cj[want]
    a, b = camera_frame(x[si] - cams.x[cj], y[si] - cams.y[cj], cams.heading_deg[cj])
    d = np.hypot(a, b)
    ang = np.degrees(np.abs(np.arctan2(b, a)))
    ok = (d <= cams.range_m[cj]) & (ang <= cams.fov_deg[cj] / 2) & (a > 0.5)
    si, cj, a, b, d = si[ok], cj[ok], a[ok], b[ok], d[ok]
    order = np.lexsort((ts[si], cj, trip[si]))
    si, cj, a, b, d = si[order], cj[order], a[order], b[order], d[order]
    # a new pass starts at a new (trip, camera) or after a gap in the samples
    new = np.ones(len(si), bool)
    new[1:] = (trip[si][1:] != trip[si][:-1]) | (cj[1:] != cj[:-1]) | (np.diff(ts[si]) > 2.5 * cfg.step_s)
    gid = np.cumsum(new) - 1
    rows = []
    sub_of = dict(zip(agents["agent_id"], agents["subject_id"], strict=True))
    listed_of = dict(zip(agents["agent_id"], agents["listed"], strict=True))
    for g in range(int(gid[-1]) + 1 if len(gid) else 0):
        m = gid == g
        j = int(cj[m][0])
        ag = str(agent[si[m][0]])
        tt, aa, bb, dd = ts[si[m]], a[m], b[m], d[m]
        toward = np.r_[np.diff(dd) < 0, np.diff(dd)[-1:] < 0] if len(dd) > 1 else np.array([False])
        kind = str(cams.kind[j])
        if kind == "plate":
            toward = np.ones(len(dd), bool)  # Thai cars carry a plate front and back
        elif kind_of[ag] == "crowd":
            toward = np.zeros(len(dd), bool)  # faces the simulator does not know are never drawn
        _, _, px, inside = target_box(kind, aa, bb, float(cams.fov_deg[j]))
        usable = inside & toward
        if kind == "cctv" and kind_of[ag] == "vehicle":
            usable[:] = False  # traffic in a CCTV view: nothing there for the face model to recognise
        max_px = float(px[usable].max()) if usable.any() else 0.0
        night = bool(is_night(tt[0], cfg.night))
        min_px = cfg.min_plate_px if kind == "plate" else cfg.min_face_px
        lit = kind == "plate" or not night  # plate cameras have infrared illuminators
        rows.append({"camera_id": str(cams.ids[j]), "camera_kind": kind, "agent_id": ag, "agent_kind": kind_of[ag],
                     "subject_id": sub_of[ag], "listed": bool(listed_of[ag]), "trip_id": str(trip[si[m][0]]),
                     "t_in": float(tt[0]), "t_out": float(tt[-1]), "hour": int(tt[0] // 3600) % 24, "night": night,
                     "min_dist_m": float(dd.min()), "max_px": round(max_px, 1), "facing": bool(toward.any()),
                     "recognisable": bool(max_px >= min_px and lit),
                     "t": tt.round(3).tolist(), "a": aa.round(3).tolist(), "b": bb.round(3).tolist(),
                     "toward": toward.tolist()})
    df = pd.DataFrame(rows, columns=cols[1:])
    df = df.sort_values(["camera_id", "t_in", "agent_id"]).reset_index(drop=True)
    df.insert(0, "sighting_id", [f"s{i:05d}" for i in range(len(df))])
    return df
