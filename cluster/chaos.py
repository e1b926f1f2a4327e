"""``ssz bench chaos``: the camera pipeline under faults, with the alerts it must raise known in advance.

Many simulated cameras stream through the real shards, motion gate, sampler, tracker, confirmer and alert
sink, with the ground-truth detector (:class:`actors.detectors.TruthDetector`: one walker in ``wanted_every``
is listed). While it runs, the chaos schedule kills a random shard every ``shard_kill_every_s``, the alert sink
every ``sink_kill_every_s`` and restarts the embedded object store once (at ``store_restart_at``); a few
cameras go silent for longer than their grace time (camera-offline alerts, then recovery). Ray restarts the
killed actors by themselves (``max_restarts``); nothing here helps them. The last ``quiet_s`` seconds are
calm, so every part is back before the run stops.

With the truth detector no Serve replica is in the path (the detector runs inside the shards), so none is
killed; the report says so. At the end the report compares the alerts with the ground truth: expected,
raised, lost, duplicated, the slowest delivery, and camera-offline alerts raised and recovered.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

SERVE_NOT_IN_PATH = "not in the path: the truth detector runs inside the shards, no Serve replica serves them"


class ChaosConfig(BaseModel):
    """What ``ssz bench chaos`` runs and breaks."""

    model_config = ConfigDict(extra="forbid")

    city: str = Field(default="hatyai", description="city whose first cameras stream")
    duration_s: float = Field(default=600.0, gt=0, description="seconds of streaming")
    cameras: int = Field(default=64, ge=2, description="CCTV cameras (simulated)")
    plate_cameras: int = Field(default=4, ge=0, description="plate cameras (simulated)")
    cameras_per_shard: int = Field(default=8, ge=1, description="cameras per shard actor")
    fps: float = Field(default=1.0, gt=0, le=10, description="camera frame rate (every frame is sampled)")
    wanted_every: int = Field(default=4, ge=1, description="one walker in this many is listed")
    shard_kill_every_s: float = Field(default=30.0, gt=0, description="kill a random shard this often (s)")
    sink_kill_every_s: float = Field(default=120.0, gt=0, description="kill the alert sink this often (s)")
    store_restart_at: float = Field(default=0.5, ge=0, le=1, description="restart the object store once, at this "
                                                                        "fraction of the run")
    offline_cameras: int = Field(default=2, ge=0, description="cameras that go silent once (camera-offline alerts)")
    outage_s: float = Field(default=25.0, gt=0, description="how long they are silent (s; > the grace time)")
    grace_s: float = Field(default=8.0, gt=0, description="silence before a camera is offline (s)")
    quiet_s: float = Field(default=25.0, ge=0, description="no faults in the last seconds: everything comes back")
    seed: int = Field(default=0, description="seed of the chaos schedule (which shard dies)")


class ChaosReport(BaseModel):
    """What ``ssz bench chaos`` prints (JSON)."""

    duration_s: float
    cameras: int
    shards: int
    kills: dict[str, Any] = Field(description="what was killed and how often (shards, sink, Serve, store)")
    expected: int = Field(description="ground-truth alerts within what the cameras played")
    raised: int
    lost: int
    duplicated: int
    unexpected: int
    lost_examples: list[str] = []
    undelivered_kept: int = Field(default=0, description="events still pending in the shards after the drain at stop "
                                                         "(kept in their resume state; counted as lost above)")
    max_delivery_delay_s: float | None = Field(description="slowest frame decoded -> alert stored (s)")
    offline_expected: int = Field(description="camera outages (longer than the grace time) the cameras streamed past")
    offline_raised: int = Field(description="camera-offline alerts raised")
    offline_recovered: int = Field(description="of those, closed by the camera's recovery")
    shard_restarts: int = Field(description="restarts the shards counted (from their resume state)")
    back: dict[str, Any] = Field(description="at the end: every shard answers, the sink answers, the store runs")
    sink: dict[str, Any] = Field(description="the sink's counters (duplicates it dropped, index reload time ...)")
    load_avg_1m: float


class Chaos:
    """The fault schedule, called by the pipeline's run loop about every half second."""

    def __init__(self, cfg: ChaosConfig, restart_store: bool) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.t0: float | None = None  # the first call: when every shard has started and the run's clock runs
        self.next_shard = cfg.shard_kill_every_s
        self.next_sink = cfg.sink_kill_every_s
        self.store_at = cfg.store_restart_at * cfg.duration_s if restart_store else None
        self.kills: dict[str, Any] = {"shards": 0, "shard_ids": [], "sink": 0, "store_restarts": 0,
                                      "serve_replica": SERVE_NOT_IN_PATH}

    def __call__(self, parts: dict[str, Any]) -> None:
        import ray

        if self.t0 is None:
            self.t0 = time.monotonic()
        t = time.monotonic() - self.t0
        if t > self.cfg.duration_s - self.cfg.quiet_s:
            return
        if t >= self.next_shard:
            self.next_shard += self.cfg.shard_kill_every_s
            sid = self.rng.choice(sorted(parts["shards"]))
            ray.kill(parts["shards"][sid], no_restart=False)
            self.kills["shards"] += 1
            self.kills["shard_ids"].append(sid)
            log.warning("chaos: killed shard %s at %.0f s", sid, t)
        if t >= self.next_sink:
            self.next_sink += self.cfg.sink_kill_every_s
            ray.kill(parts["sink"], no_restart=False)
            self.kills["sink"] += 1
            log.warning("chaos: killed the alert sink at %.0f s", t)
        if self.store_at is not None and t >= self.store_at:
            self.store_at = None
            from cluster import store

            store.down()
            time.sleep(2.0)  # a real outage: the sink's writes fail meanwhile
            store.up()
            self.kills["store_restarts"] += 1
            log.warning("chaos: restarted the object store at %.0f s", t)


def run_chaos(cfg: ChaosConfig) -> ChaosReport:
    """Run the pipeline under the chaos schedule and compare its alerts with the ground truth.

    Needs a Ray connection and the object store (the embedded one is restarted once; an external store set
    by ``SSZ_S3_ENDPOINT`` is not touched and the report says so).

    Raises
    ------
    cluster.config.ConfigError, ValueError
        A bad city or settings.
    """
    import os

    from actors.tracker import ConfirmerConfig
    from cluster.city import CityModel
    from cluster.pipeline import RunConfig, camera_specs, run_cameras
    from twin.objectstore import S3Settings

    model = CityModel.load(cfg.city)
    city, reg = model.config, model.registry
    run_cfg = RunConfig(city=cfg.city, cameras=cfg.cameras, plate_cameras=cfg.plate_cameras, detect="truth",
                        fps=cfg.fps, wanted_every=cfg.wanted_every, duration_s=cfg.duration_s)
    specs = camera_specs(city, reg, run_cfg)
    # a few cameras go silent once, at staggered times in the first two thirds of the run (stream time)
    silent = list(specs)[:: max(1, len(specs) // max(1, cfg.offline_cameras))][: cfg.offline_cameras]
    span = max(1.0, cfg.duration_s - cfg.quiet_s - cfg.outage_s - 2 * cfg.grace_s)
    for i, cid in enumerate(silent):
        start = cfg.grace_s + span * (i + 0.25) / max(1, len(silent))
        specs[cid] = specs[cid].model_copy(update={"sim_outages": [(start, start + cfg.outage_s)]})
    specs = {cid: s.model_copy(update={"grace_s": cfg.grace_s}) for cid, s in specs.items()}
    embedded = S3Settings.from_env() is None
    chaos = Chaos(cfg, restart_store=embedded)
    if not embedded:
        chaos.kills["store_restarts"] = "external store (SSZ_S3_ENDPOINT): not restarted"
    # every frame sampled (sampler at twice the camera rate), so the ground truth is exact
    res = run_cameras(city, reg, specs, detect="truth", duration_s=cfg.duration_s, sample_fps=2 * cfg.fps,
                      cameras_per_shard=cfg.cameras_per_shard, message="ssz bench chaos", commit=False,
                      wanted_every=cfg.wanted_every, during=chaos,
                      shard_options={"confirmer": ConfirmerConfig(
                          min_matches_by_label={"plate": city.cameras.plate_min_reads}), "state_every_s": 2.0})
    assert res.truth is not None
    offline = [a for a in res.alerts if a.get("kind") == "camera-offline"]
    # an outage counts once the camera streamed past its end (a restarted, lagging stream may not get there)
    pos = {c.camera_id: c.position_pts for st in res.stats for c in st.cameras}
    played = [cid for cid in silent if (pos.get(cid) or 0.0) - specs[cid].sim_epoch > specs[cid].sim_outages[0][1]]
    back = {"shards_answering": sum(1 for s in res.stats if not s.error), "shards": res.shards,
            "sink_answering": True, "store_running": _store_running()}  # run_cameras read its stats at the end
    return ChaosReport(
        duration_s=res.seconds, cameras=len(specs), shards=res.shards, kills=chaos.kills,
        expected=res.truth.expected, raised=res.truth.raised, lost=res.truth.lost,
        duplicated=res.truth.duplicated, unexpected=res.truth.unexpected, lost_examples=res.truth.lost_examples,
        undelivered_kept=res.undelivered,
        max_delivery_delay_s=res.truth.max_delay_s, offline_expected=len(played),
        offline_raised=len(offline), offline_recovered=sum(1 for a in offline if a.get("recovered_ts")),
        shard_restarts=sum(s.restarts for s in res.stats), back=back,
        sink=res.sink.model_dump(include={"received", "alerts", "duplicates", "index_ids", "index_s", "health"}),
        load_avg_1m=round(os.getloadavg()[0], 2))


def _store_running() -> bool:
    from cluster import store

    try:
        store.open_store()
        return True
    except Exception:
        return False
