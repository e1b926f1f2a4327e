"""The simulated city of ``ssz demo`` and ``ssz eval``: what to simulate, and the day generated on the city.

:func:`build` takes the loaded city (street graph and camera registry), picks the cameras this machine can
render (the *rendered cameras*: the zone's face cameras and its plate cameras, in a seeded order), draws the
people (the shared labelled face set), vehicles (random valid Thai plates) and generates the day with
:func:`cluster.sim.scenario.generate`. :mod:`cluster.sim.scripts` then turns each rendered camera's ground
truth into the script its simulated camera plays, and :mod:`cluster.sim.run` streams them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cluster.city import CityModel, city_model
from cluster.config import CityConfig, shared_data_dir
from cluster.registry import Registry
from cluster.sim.scenario import Scenario, ScenarioConfig, generate


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
    """A built simulation: the loaded city, the scenario and the rendered cameras."""

    model: CityModel
    scenario: Scenario
    rendered_cameras: list[str]
    faces_dir: Path
    config: SimConfig

    @property
    def city(self) -> CityConfig:
        """The city's config."""
        return self.model.config

    @property
    def registry(self) -> Registry:
        """The city's camera and place registry."""
        return self.model.registry

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The city's WGS84 street graph."""
        return self.model.graph


def faces_by_identity(faces_dir: Path) -> dict[str, list[str]]:
    """Identity -> photo file names of the labelled face set (``identities.csv``: file, identity_id)."""
    table = faces_dir / "identities.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: the labelled face set is expected in $SSZ_SHARED_DATA/"
                                "faces_deepface (default ../shared/data beside the repository): set SSZ_SHARED_DATA to "
                                "the shared data folder")
    df = pd.read_csv(table)
    return {str(k): sorted(g["file"].tolist(), key=lambda f: int(Path(f).stem.lstrip("img") or 0))
            for k, g in df.groupby("identity_id")}


def _rendered_cameras(reg: Registry, cfg: SimConfig) -> list[str]:
    """The zone's cameras to render, ``cfg.face_cameras`` CCTV then ``cfg.plate_cameras`` plate cameras."""
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


def build(cfg: SimConfig, city: CityModel | None = None) -> SimCity:
    """Generate the city's simulated day (deterministic for ``cfg.scenario.seed``).

    Parameters
    ----------
    cfg
        What to simulate.
    city
        The loaded city when the caller has it (``ssz demo``); else ``cfg.city`` is loaded.

    Returns
    -------
    SimCity

    Raises
    ------
    FileNotFoundError
        When the labelled face set is missing.
    ValueError
        When the face set or the plates cannot fill the scenario (e.g. more wanted persons than identities).
    """
    from serve.plate.render import random_plate
    from twin.graph import utm_transformers

    model = city if city is not None else city_model(cfg.city)
    city_cfg, reg = model.config, model.registry
    P = model.projected
    to_utm, to_wgs = utm_transformers(city_cfg.utm_epsg)
    cams = reg.cameras_frame()
    cams = cams[cams["mount"] == "fixed"].copy()
    cams["x"], cams["y"] = to_utm.transform(cams["lon"].to_numpy(float), cams["lat"].to_numpy(float))
    places = reg.places_frame()
    places["x"], places["y"] = to_utm.transform(places["lon"].to_numpy(float), places["lat"].to_numpy(float))
    zone_places = places[places["in_zone"]]
    faces_dir = Path(cfg.faces_dir) if cfg.faces_dir else shared_data_dir() / "faces_deepface"
    rng = np.random.default_rng(cfg.scenario.seed + 7919)
    plates = [random_plate(rng).text for _ in range(cfg.scenario.vehicles)]
    rendered = _rendered_cameras(reg, cfg)
    sx, sy = to_utm.transform(city_cfg.station.lon, city_cfg.station.lat)
    scen = generate(P, cams, city=city_cfg.id, faces=faces_by_identity(faces_dir), plates=plates,
                    rendered=rendered, qr_boxes=zone_places[zone_places["kind"] == "qr"],
                    sos_poles=places[places["kind"] == "sos"], station_xy=(sx, sy),
                    patrol_units=city_cfg.patrol_units, to_wgs=to_wgs, config=cfg.scenario)
    return SimCity(model=model, scenario=scen, rendered_cameras=rendered, faces_dir=faces_dir, config=cfg)


def next_day(city: str) -> dt.date:
    """The scenario day of the next simulation of ``city``: today, or the day after the last one simulated.

    Alert ids derive from the track's first frame time, and frames carry scenario time; giving every run its
    own day keeps the alerts of two runs of the same scenario apart (the sink would otherwise take the second
    run's alerts for replays of the first and drop them). The days used are kept in ``<state>/sim``.
    """
    import json

    from cluster.state import state_dir

    f = state_dir("sim") / f"{city}-days.json"
    used = json.loads(f.read_text()) if f.exists() else []
    day = dt.date.today()
    if used:
        day = max(day, dt.date.fromisoformat(max(used)) + dt.timedelta(days=1))
    f.write_text(json.dumps([*used, day.isoformat()]))
    return day
