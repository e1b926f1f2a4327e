"""The simulated city of ``ssz demo`` and ``ssz eval``: a scenario on the city's twin, rendered camera scripts.

:func:`build` loads the city (street graph and camera registry), picks the cameras this machine can render
(the *focus* cameras: the zone's face cameras and its plate cameras, in a seeded order), draws the people
(the shared labelled face set), vehicles (random valid Thai plates) and generates the day with
:func:`twin.scenario.generate`. :func:`scripts` turns each focus camera's ground truth into the
:class:`~actors.simcam.SimScript` its simulated camera plays, keeping at most ``stream_s`` seconds of
footage per camera (passes of listed subjects first), and marks which sightings were rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cluster.config import CityConfig, load_city, shared_data_dir
from cluster.registry import Registry
from twin.scenario import Scenario, ScenarioConfig

if TYPE_CHECKING:
    import httpx


class SimConfig(BaseModel):
    """What to simulate: the city, how many cameras to render and how long, and the scenario's size."""

    model_config = ConfigDict(extra="forbid")

    city: str = "hatyai"
    face_cameras: int = Field(default=4, ge=0, description="zone CCTV cameras rendered and processed")
    plate_cameras: int = Field(default=2, ge=0, description="plate cameras rendered and processed")
    stream_s: float = Field(default=75.0, gt=0, description="simulated footage per camera (s), passes kept whole")
    fps: float = Field(default=5.0, gt=0, le=30, description="frame rate of the rendered CCTV streams")
    plate_fps: float = Field(default=10.0, gt=0, le=30, description="frame rate of the rendered plate cameras")
    sample_fps: float = Field(default=3.0, gt=0, description="CCTV frames per second sent to the face model (plate "
                                                         "cameras use the city's plate_sample_fps)")
    gap_frames: int = Field(default=3, ge=1, description="empty-street frames between passes (the rest skipped)")
    lead_s: float = Field(default=1.0, ge=0, description="empty street kept before and after each pass")
    faces_dir: str | None = Field(default=None, description="labelled face set (default: shared data)")
    scenario: ScenarioConfig = ScenarioConfig()

    @model_validator(mode="after")
    def _some_camera(self) -> SimConfig:
        if self.face_cameras + self.plate_cameras == 0:
            raise ValueError("nothing to simulate: render at least one camera (face_cameras or plate_cameras >= 1)")
        return self


@dataclass
class SimCity:
    """A built simulation: the city, its registry and graphs, the scenario and the rendered cameras."""

    city: CityConfig
    registry: Registry
    graph: nx.MultiDiGraph
    scenario: Scenario
    focus: list[str]
    faces_dir: Path
    config: SimConfig


def faces_by_identity(faces_dir: Path) -> dict[str, list[str]]:
    """Identity -> photo file names of the labelled face set (``identities.csv``: file, identity_id)."""
    table = faces_dir / "identities.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: the labelled face set is expected in ../shared/data/"
                                "faces_deepface (or pass faces_dir)")
    df = pd.read_csv(table)
    return {str(k): sorted(g["file"].tolist(), key=lambda f: int(Path(f).stem.lstrip("img") or 0))
            for k, g in df.groupby("identity_id")}


def _focus(reg: Registry, cfg: SimConfig) -> list[str]:
    rng = np.random.default_rng(cfg.scenario.seed)
    cams = reg.cameras_frame()
    out: list[str] = []
    for kind, n in (("cctv", cfg.face_cameras), ("plate", cfg.plate_cameras)):
        pool = cams[(cams["kind"] == kind) & (cams["mount"] == "fixed")]
        zone = pool[pool["in_zone"]]
        pool = zone if len(zone) >= n else pool
        idx = rng.permutation(len(pool))[:n]
        out += sorted(pool.iloc[idx]["id"].tolist())
    return out


def build(cfg: SimConfig) -> SimCity:
    """Load the city and generate its simulated day (deterministic for ``cfg.scenario.seed``)."""
    from cluster.city import load_city_graph
    from cluster.registry import build_registry
    from serve.plate.render import random_plate
    from twin.graph import project, utm_transformers
    from twin.scenario import generate

    city = load_city(cfg.city)
    G = load_city_graph(city)
    reg = build_registry(city, G)
    P = project(G, city.utm_epsg)
    to_utm, to_wgs = utm_transformers(city.utm_epsg)
    cams = reg.cameras_frame()
    cams = cams[cams["mount"] == "fixed"].copy()
    cams["x"], cams["y"] = to_utm.transform(cams["lon"].to_numpy(float), cams["lat"].to_numpy(float))
    places = reg.places_frame()
    places["x"], places["y"] = to_utm.transform(places["lon"].to_numpy(float), places["lat"].to_numpy(float))
    zone_places = places[places["in_zone"]]
    faces_dir = Path(cfg.faces_dir) if cfg.faces_dir else shared_data_dir() / "faces_deepface"
    rng = np.random.default_rng(cfg.scenario.seed + 7919)
    plates = [random_plate(rng).text for _ in range(cfg.scenario.vehicles)]
    focus = _focus(reg, cfg)
    sx, sy = to_utm.transform(city.station.lon, city.station.lat)
    scen = generate(P, cams, city=city.id, faces=faces_by_identity(faces_dir), plates=plates, focus=focus,
                    qr_boxes=zone_places[zone_places["kind"] == "qr"], sos_poles=places[places["kind"] == "sos"],
                    station_xy=(sx, sy), patrol_units=city.patrol_units, to_wgs=to_wgs, config=cfg.scenario)
    return SimCity(city=city, registry=reg, graph=G, scenario=scen, focus=focus, faces_dir=faces_dir, config=cfg)


def face_boxes(faces_dir: Path, files: list[str]) -> dict[str, tuple[float, float, float, float] | None]:
    """The main face of each photo as fractions (x0, y0, x1, y1), found with dlib's HOG detector.

    The simulator scales photos by their face, so a face drawn 48 px high is 48 px high. Results are cached
    in ``<state>/sim/face_boxes.json`` (keyed by file name and size); a photo without a detected face gets None
    (the renderer then assumes a centred portrait).
    """
    import json

    import dlib
    from PIL import Image

    from cluster.state import state_dir

    cache_file = state_dir("sim") / "face_boxes.json"
    cache: dict[str, list[float] | None] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    detector = None
    out: dict[str, tuple[float, float, float, float] | None] = {}
    for f in files:
        path = faces_dir / f
        key = f"{f}:{path.stat().st_size}"
        if key not in cache:
            detector = detector or dlib.get_frontal_face_detector()
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                s = min(1.0, 800 / max(rgb.size))
                small = np.asarray(rgb.resize((round(rgb.width * s), round(rgb.height * s))))
            dets = detector(small, 1)
            if len(dets):
                d = max(dets, key=lambda r: r.width() * r.height())
                h, w = small.shape[:2]
                cache[key] = [max(0.0, d.left() / w), max(0.0, d.top() / h), min(1.0, d.right() / w),
                              min(1.0, d.bottom() / h)]
            else:
                cache[key] = None
        box = cache[key]
        out[f] = tuple(box) if box else None  # type: ignore[assignment]
    cache_file.write_text(json.dumps(cache))
    return out


def _seed_of(text: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _close_window(row: pd.Series, max_dist_m: float, lead_s: float) -> tuple[float, float] | None:
    """The part of a pass worth rendering: while the agent is within ``max_dist_m`` (plus ``lead_s``)."""
    t = np.asarray(row["t"], float)
    d = np.hypot(np.asarray(row["a"], float), np.asarray(row["b"], float))
    near = np.flatnonzero(d <= max_dist_m)
    if not len(near):
        return None
    return float(t[near[0]]) - lead_s, float(t[near[-1]]) + lead_s


def watched(sightings: pd.DataFrame | pd.Series) -> pd.Series | bool:
    """Which sightings a camera is there for: people at CCTV (the face model), vehicles at plate cameras (the
    plate model). Traffic passing a CCTV camera is ground truth too, drawn, but no alert can be expected."""
    vehicle = sightings["agent_kind"] == "vehicle"
    return (sightings["camera_kind"] == "plate") == vehicle


def _priority(row: pd.Series) -> int:
    if not watched(row):
        return 4  # traffic passing a CCTV camera: drawn when in a chosen window, never chosen for itself
    if row["listed"] and row["recognisable"]:
        return 0
    if row["agent_kind"] != "crowd" and row["recognisable"]:
        return 1
    if row["listed"]:
        return 2
    return 3 if row["agent_kind"] != "crowd" else 4


def scripts(sim: SimCity) -> tuple[dict[str, object], pd.DataFrame]:
    """The :class:`~actors.sources.CameraSpec` of every focus camera (playing its script) and the sightings
    of the focus cameras with ``rendered`` (the pass was played, whole) and ``window`` columns.

    Per camera, the close part of its passes (within 15 m for CCTV, the whole pass for plate cameras) is
    chosen by priority (listed and recognisable first, then other recognisable people, other listed passes,
    everyone else) until ``stream_s`` seconds of footage; overlapping windows merge, and every pass that
    overlaps a chosen window is drawn in it.
    """
    from actors.simscript import SimPass, SimScript
    from actors.sources import CameraSpec

    cfg = sim.config
    scen = sim.scenario
    agents = scen.agents.set_index("agent_id")
    cams = sim.registry.cameras_frame().set_index("id")
    photos = sorted({p for ps in agents["photos"] for p in ps})
    boxes = face_boxes(sim.faces_dir, photos) if photos else {}
    background = str(_vtest()) if _vtest().is_file() else None
    specs: dict[str, object] = {}
    parts = []
    for i, cam_id in enumerate(sim.focus):
        s = scen.at_camera(cam_id)
        kind = str(cams.loc[cam_id, "kind"])
        wins = [(_close_window(r, 15.0 if kind == "cctv" else 1e9, cfg.lead_s), _priority(r), r["t_in"])
                for _, r in s.iterrows()]
        order = sorted((k for k, w in enumerate(wins) if w[0] is not None), key=lambda k: (wins[k][1], wins[k][2]))
        chosen: list[tuple[float, float]] = []
        used = 0.0
        for k in order:
            a, b = wins[k][0]  # type: ignore[misc]
            if used + (b - a) > cfg.stream_s:
                continue
            chosen.append((a, b))
            used += b - a
        windows = _merge(chosen)
        t_in, t_out = s["t_in"].to_numpy(float), s["t_out"].to_numpy(float)
        # passes that overlap a window are in the picture: widen the window to hold them whole when they
        # were chosen, draw them in any case
        rendered = np.zeros(len(s), bool)
        drawn = np.zeros(len(s), bool)
        for a, b in windows:
            drawn |= (t_in <= b) & (t_out >= a)
        for k, w in enumerate(wins):
            if w[0] is not None and any(a <= w[0][0] and w[0][1] <= b for a, b in windows):
                rendered[k] = True
        passes = []
        for k in np.flatnonzero(drawn):
            r = s.iloc[int(k)]
            ag = agents.loc[r["agent_id"]]
            seed = _seed_of(str(r["sighting_id"]) + str(cfg.scenario.seed))
            photo = ag["photos"][seed % len(ag["photos"])] if r["agent_kind"] == "person" and ag["photos"] else None
            passes.append(SimPass(sighting_id=str(r["sighting_id"]), agent_kind=str(r["agent_kind"]),
                                  t=list(r["t"]), a=list(r["a"]), b=list(r["b"]), toward=list(r["toward"]),
                                  photo=photo, face_box=boxes.get(photo) if photo else None,
                                  plate=ag["plate"] if r["agent_kind"] == "vehicle" else None, seed=seed))
        script = SimScript(camera_kind=kind, fov_deg=float(cams.loc[cam_id, "fov_deg"]), windows=windows,
                           passes=passes, assets_dir=str(sim.faces_dir), background=background,
                           night=cfg.scenario.night, gap_frames=cfg.gap_frames)
        specs[cam_id] = CameraSpec(id=cam_id, url=f"sim://{cam_id}", realtime=True, seed=i,
                                   fps=cfg.plate_fps if kind == "plate" else cfg.fps,
                                   sim_script=script, grace_s=30.0)
        part = s.drop(columns=["t", "a", "b", "toward"]).assign(rendered=rendered, drawn=drawn)
        part["window"] = [w[0] for w in wins]
        parts.append(part)
    sightings = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return specs, sightings


def _merge(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _vtest() -> Path:
    from actors.simcam import VTEST

    return VTEST


class SimRun(BaseModel):
    """What :func:`run` leaves for the evaluation: the rendered sightings, this run's alerts and numbers."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    epoch: float = Field(description="Unix time of the scenario day's local midnight (frame pts = epoch + t)")
    started: float = Field(description="wall-clock start of the streaming")
    sightings: pd.DataFrame
    windows: dict[str, list[tuple[float, float]]]
    result: object  # cluster.pipeline.RunResult
    enrolled: dict[str, list[str]]


def _epoch(day: object) -> float:
    from twin.scenario import LOCAL_TZ

    return float(pd.Timestamp(day, tz=LOCAL_TZ).timestamp())


def api_client(url: str) -> httpx.Client:
    """An HTTP client of the ``ssz`` API as the user ``simulation`` (role supervisor: it enrols the scenario's
    lists), with a token issued for this client (audited; it replaces the previous simulation token)."""
    import httpx

    from cluster import serving

    token = serving.issue_token("simulation", "supervisor", actor="system:simulation")
    return httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"})


def own_list(sim: SimCity) -> str:
    """The simulation's own watchlist and hotlist name, ``sim-<city>``: simulations never touch the operational
    lists (the API's ``?list=``; the shards match against it, see ``cluster.pipeline.run_cameras``)."""
    return f"sim-{sim.city.id}"


def enrol(sim: SimCity, client: httpx.Client) -> dict[str, list[str]]:
    """Put the scenario's wanted persons and hot-listed plates on the simulation's own lists (:func:`own_list`),
    through the HTTP API (audited like any supervisor change). Entries of earlier simulations that are not in
    this scenario are removed first, so that nobody is wanted by a scenario that does not say so."""
    import base64
    import datetime as dt

    lst = {"list": own_list(sim)}
    c = client
    agents = sim.scenario.agents
    wanted = agents[(agents["kind"] == "person") & agents["listed"]]
    hot = agents[(agents["kind"] == "vehicle") & agents["listed"]]
    keep_w, keep_h = set(wanted["subject_id"]), set(hot["subject_id"])

    withdraw(c, keep_w, keep_h, list_name=own_list(sim))
    present_w = {r["warrant_no"] for r in _check(c.get("/v1/watchlist", params=lst)).json()}
    present_h = {r["id"] for r in _check(c.get("/v1/hotlist", params={"include_expired": True, **lst})).json()}
    expires = str(dt.date.today() + dt.timedelta(days=365))
    for r in wanted.itertuples():
        if r.subject_id in present_w:
            continue
        photos = [{"name": f, "data_b64": base64.b64encode((sim.faces_dir / f).read_bytes()).decode()}
                  for f in r.enrol_photos]
        _check(c.post("/v1/watchlist", params=lst, json={
            "warrant_no": r.subject_id, "name": f"simulated person {r.identity}", "court": "simulation",
            "offence": "simulated warrant", "expires": expires, "photos": photos}))
    for r in hot.itertuples():
        if r.subject_id in present_h:
            continue
        _check(c.post("/v1/hotlist", params=lst, json={"plate": str(r.plate).replace("\n", " "),
                                          "reason": "simulated hot list", "entry_id": r.subject_id}))
    return {"watchlist": sorted(keep_w), "hotlist": sorted(keep_h)}


def _check(r: Any, ok: tuple[int, ...] = (200, 201)) -> Any:
    """``r`` (an httpx response) if its status is in ``ok``, else a RuntimeError that says which call failed."""
    if r.status_code not in ok:
        raise RuntimeError(f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text[:300]}")
    return r


def withdraw(client: httpx.Client, keep_watchlist: set[str] | frozenset[str] = frozenset(),
             keep_hotlist: set[str] | frozenset[str] = frozenset(), list_name: str | None = None) -> list[str]:
    """Remove simulated entries (``SIM-`` ids) from the named list ``list_name`` (a simulation's own), or from
    the operational lists when None (entries left there by versions that enrolled simulations operationally),
    except those kept; audited as "simulation reset". Returns the ids removed."""
    c = client
    lst = {"list": list_name} if list_name else {}
    removed: list[str] = []
    for rec in _check(c.get("/v1/watchlist", params=lst)).json():
        if rec["warrant_no"].startswith("SIM-") and rec["warrant_no"] not in keep_watchlist:
            _check(c.delete(f"/v1/watchlist/{rec['warrant_no']}", params={"reason": "simulation reset", **lst}))
            removed.append(rec["warrant_no"])
    for rec in _check(c.get("/v1/hotlist", params={"include_expired": True, **lst})).json():
        if rec["id"].startswith("SIM-") and rec["id"] not in keep_hotlist:
            _check(c.delete(f"/v1/hotlist/{rec['id']}", params={"reason": "simulation reset", **lst}))
            removed.append(rec["id"])
    return removed


def run(sim: SimCity, *, api_url: str | None = None, limit_s: float = 900.0, lossless: bool = True,
        report: object | None = None, keep_lists: bool = False,
        scripted: tuple[dict[str, object], pd.DataFrame] | None = None) -> SimRun:
    """Enrol the scenario's lists, stream the focus cameras' scripts through the shards and Serve models until
    every script has played (or ``limit_s``), and return what the evaluation needs.

    ``lossless``: a camera whose queue is full waits for the models instead of dropping its oldest frame, so
    the numbers measure the models and the pipeline, not how many cores this machine has (the run then takes
    longer than the footage); ``lossless=False`` runs live, dropping what the machine cannot carry.

    The scenario's lists are the simulation's own (:func:`own_list`); the operational watchlist and hotlist
    are never read or changed. Its entries are withdrawn when the run ends (audited), unless ``keep_lists``.

    ``scripted`` is what :func:`scripts` returned for ``sim``, when the caller already made it.

    Needs a Ray connection and the object store; deploys the ``ssz`` Serve application when it is not running
    (``api_url`` is where an already running one listens).
    """
    import time

    from cluster import serving
    from cluster.pipeline import run_cameras

    api_url = api_url or serving.ensure_up()
    with api_client(api_url) as client:
        enrolled = enrol(sim, client)
    specs, sightings = scripted or scripts(sim)
    epoch = _epoch(sim.scenario.config.day)
    for spec in specs.values():
        spec.sim_script.epoch = epoch  # type: ignore[attr-defined]
    started = time.time()
    try:
        res = run_cameras(sim.city, sim.registry, specs, detect="faces", duration_s=limit_s, until_done=True,
                          sample_fps=sim.config.sample_fps, report=report,  # type: ignore[arg-type]
                          shard_options={"block_when_full": lossless}, list_name=own_list(sim),
                          message=f"ssz simulation {sim.city.id} seed {sim.config.scenario.seed}")
    finally:
        if not keep_lists:
            with api_client(api_url) as client:
                withdraw(client, list_name=own_list(sim))
    return SimRun(epoch=epoch, started=started, sightings=sightings, result=res, enrolled=enrolled,
                  windows={c: list(s.sim_script.windows) for c, s in specs.items()})  # type: ignore[attr-defined]


def twin_layers(sim: SimCity) -> dict[str, object]:
    """The scenario's patrol pings, trips, QR scans and SOS reports (plus an ``sos`` alert per press) as
    validated twin layer tables, with scenario seconds turned into UTC timestamps of the scenario day."""
    from twin.layers import validate_table

    scen = sim.scenario
    out: dict[str, object] = {}
    for name, df in scen.layers.items():
        if not len(df):
            continue
        df = df.copy()
        for col in ("ts", "status_ts"):
            if col in df:
                df[col] = scen.utc(df[col].to_numpy(float)).floor("ms")
        if name == "patrol_trips":
            df["start_ts"] = scen.utc(df.pop("start_s").to_numpy(float)).floor("ms")
            df["end_ts"] = scen.utc(df.pop("end_s").to_numpy(float)).floor("ms")
            df["path_ts"] = [list(scen.utc(np.asarray(p, float)).floor("ms")) for p in df.pop("path_s")]
        out[name] = df
    if "sos_reports" in out:
        from twin.schemas import alert_id

        sos = out["sos_reports"]
        out["sos_alerts"] = pd.DataFrame([{
            "alert_id": alert_id(str(r.pole_id), "sos", str(r.pole_id), str(r.report_id)), "camera_id": str(r.pole_id),
            "ts": r.ts, "kind": "sos", "subject_id": str(r.pole_id), "status": "confirmed",
            "status_by": r.status_by, "status_ts": r.status_ts, "lon": r.lon, "lat": r.lat, "city": sim.city.id,
            "track_id": str(r.report_id)} for r in sos.itertuples()])  # type: ignore[attr-defined]
    tables: dict[str, object] = {}
    import pyarrow as pa

    for name, df in out.items():
        layer = "alerts" if name == "sos_alerts" else name
        res = validate_table(layer, pa.Table.from_pandas(df, preserve_index=False), sim.city.id)  # type: ignore[arg-type]
        if res.rejected:
            raise ValueError(f"simulated {layer} rows do not fit the twin schema: {res.rejected[:3]}")
        tables[name] = res.table
    return tables


def commit_layers(sim: SimCity, message: str) -> str:
    """Add the scenario's layers to the city's latest twin snapshot (SOS alerts join the alerts layer)."""
    import pyarrow as pa

    from cluster import store
    from twin.snapshots import SnapshotConflict, SnapshotStore

    snaps = SnapshotStore(store.open_store(), sim.city.id)
    new = twin_layers(sim)
    for _ in range(5):
        head = snaps.latest()
        tables = dict(snaps.open(head.id).tables()) if head else {}
        for name, t in new.items():
            if name == "sos_alerts":
                old = tables.get("alerts")
                keep = old.filter(pa.compute.invert(pa.compute.is_in(old["alert_id"], t["alert_id"]))) \
                    if old is not None else None  # type: ignore[union-attr]
                tables["alerts"] = pa.concat_tables([keep, t]) if keep is not None else t  # type: ignore[list-item]
            else:
                tables[name] = t  # type: ignore[assignment]
        try:
            return snaps.create(tables, message=message, author="ssz simulation",  # type: ignore[arg-type]
                                expect_parent=head.id if head else "").id
        except SnapshotConflict:
            continue
    raise RuntimeError(f"could not commit the simulated layers of {sim.city.id}: the twin kept changing")


def next_day(city: str) -> object:
    """The scenario day of the next simulation of ``city``: today, or the day after the last one simulated.

    Alert ids derive from the track's first frame time, and frames carry scenario time; giving every run its
    own day keeps the alerts of two runs of the same scenario apart (the sink would otherwise take the second
    run's alerts for replays of the first and drop them). The days used are kept in ``<state>/sim``.
    """
    import datetime as dt
    import json

    from cluster.state import state_dir

    f = state_dir("sim") / f"{city}-days.json"
    used = json.loads(f.read_text()) if f.exists() else []
    day = dt.date.today()
    if used:
        day = max(day, dt.date.fromisoformat(max(used)) + dt.timedelta(days=1))
    f.write_text(json.dumps([*used, day.isoformat()]))
    return day
