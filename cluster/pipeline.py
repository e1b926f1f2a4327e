"""``ssz run`` and ``ssz status``: the city's camera pipeline on the Ray cluster.

``run`` builds the city's camera registry, opens one source per camera (simulated, a video file looped in
real time, or RTSP URLs from a template), assigns cameras to shards and shards to nodes (weighted rendezvous
hashing, :mod:`cluster.sharding`), starts the :class:`~actors.alerts.AlertSink` and one pinned, restartable
:class:`~actors.shard.CameraShard` per shard, and feeds face frames to the face deployment of the ``ssz``
Serve application (deployed on demand, watchlist in ``<state>/serve``). It prints the status every few
seconds, and at the end commits the alerts into a twin snapshot and stops the shards. ``status`` reads the
running shards' numbers from any process connected to the same cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from actors.alerts import AlertStats
from actors.shard import ShardStats
from cluster.config import CityConfig
from cluster.registry import Registry
from cluster.sharding import status
from twin.kinds import CameraKind

if TYPE_CHECKING:
    from actors.detectors import Detector

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


class RunConfig(BaseModel):
    """What ``ssz run`` runs."""

    city: str
    cameras: int | None = Field(default=None, ge=1, description="first N face cameras (None = all)")
    plate_cameras: int | None = Field(default=None, ge=0, description="first N plate cameras (None = all)")
    source: Literal["sim", "file", "rtsp"] = "sim"
    url_template: str | None = Field(default=None, description="rtsp: e.g. rtsp://nvr.internal/{camera_id}")
    video: str = str(VTEST)
    duration_s: float = Field(default=60.0, ge=0, description="0 = until interrupted")
    detect: Literal["faces", "none"] = "faces"
    cameras_per_shard: int = Field(default=32, ge=1)
    sample_fps: float | None = Field(default=None, gt=0, description="None = the city's sample_fps")
    width: int = Field(default=320, gt=15, description="decode width of file/sim cameras")


class RunSummary(BaseModel):
    """What a run did."""

    city: str
    cameras: int
    shards: int
    nodes: int
    seconds: float
    frames_decoded: int
    frames_processed: int
    frames_dropped: int
    alerts: int
    snapshot: str | None


def camera_specs(city: CityConfig, reg: Registry, cfg: RunConfig) -> dict[str, Any]:
    """One :class:`~actors.sources.CameraSpec` per fixed camera (face cameras, then plate cameras)."""
    from actors.sources import CameraSpec

    cams = [c for c in reg.cameras if c.kind == CameraKind.cctv][: cfg.cameras]
    cams += [c for c in reg.cameras if c.kind == CameraKind.plate][: cfg.plate_cameras]
    if cfg.source == "rtsp" and not cfg.url_template:
        raise ValueError("--source rtsp needs --url-template, e.g. rtsp://nvr.internal/{camera_id}")
    if cfg.source == "file" and not Path(cfg.video).is_file():
        raise ValueError(f"--source file: {cfg.video} not found (install Debian's opencv-doc or pass --video)")
    specs = {}
    for i, c in enumerate(cams):
        if cfg.source == "sim":
            spec = CameraSpec(id=c.id, url=f"sim://{c.id}", realtime=True, fps=min(city.cameras.fps, 10.0), seed=i,
                              sim_size=(cfg.width, cfg.width * 3 // 4))
        elif cfg.source == "file":
            spec = CameraSpec(id=c.id, url=cfg.video, loop=True, realtime=True, width=cfg.width)
        else:
            assert cfg.url_template is not None
            spec = CameraSpec(id=c.id, url=cfg.url_template.format(camera_id=quote(c.id, safe="")))
        specs[c.id] = spec
    return specs


def _detector_factory(detect: str, camera_kind: dict[str, str], list_name: str | None = None
                      ) -> Callable[[], Detector]:
    """Face cameras' frames go to the face deployment, plate cameras' to the plate deployment (app ``ssz``),
    matched against the operational lists or the named lists ``list_name`` (a simulation's); ``none`` detects
    nothing. The factory runs inside each shard actor (handles are made there)."""
    from actors.detectors import make_detector

    if detect == "faces":
        return lambda: make_detector("routing", routes={
            CameraKind.cctv: make_detector("faces", app_name="ssz", list_name=list_name),
            CameraKind.plate: make_detector("plates", app_name="ssz", list_name=list_name)}, camera_kind=camera_kind)
    return lambda: make_detector("none")


class RunResult(BaseModel):
    """What :func:`run_cameras` leaves: the shards' final numbers, the alerts and the sink's statistics."""

    stats: list[ShardStats] = Field(description="the shards' final numbers, per camera")
    alerts: list[dict[str, Any]] = Field(description="rows of the twin's alerts layer written during the run, "
                                                     "with written_ts (when the record was stored)")
    sink: AlertStats = Field(description="the alert sink's counters")
    snapshot: str | None
    nodes: int
    shards: int
    seconds: float


def run(cfg: RunConfig, report: Callable[[list[ShardStats]], None] | None = None,
        report_every_s: float = 5.0) -> RunSummary:
    """Run the city's pipeline for ``cfg.duration_s`` (needs a Ray connection and the object store).

    Raises
    ------
    cluster.config.ConfigError, ValueError
        A bad city, or a source that cannot be opened as configured (no URL template, no video file).
    """
    from cluster.city import CityModel

    t0 = time.monotonic()
    model = CityModel.load(cfg.city)
    city, reg = model.config, model.registry
    specs = camera_specs(city, reg, cfg)
    if not specs:
        raise ValueError(f"{city.id} has no fixed cameras to run")
    res = run_cameras(city, reg, specs, detect=cfg.detect, duration_s=cfg.duration_s,
                      sample_fps=cfg.sample_fps, cameras_per_shard=cfg.cameras_per_shard, report=report,
                      report_every_s=report_every_s, message=f"ssz run {city.id}")
    cams = [c for s in res.stats for c in s.cameras]
    return RunSummary(city=city.id, cameras=len(specs), shards=res.shards, nodes=res.nodes,
                      seconds=round(time.monotonic() - t0, 1), frames_decoded=sum(c.decoded for c in cams),
                      frames_processed=sum(c.processed for c in cams),
                      frames_dropped=sum(c.dropped for c in cams), alerts=len(res.alerts), snapshot=res.snapshot)


def run_cameras(city: CityConfig, reg: Registry, specs: dict[str, Any], *, detect: str = "faces",
                duration_s: float = 60.0, until_done: bool = False, sample_fps: float | None = None,
                cameras_per_shard: int = 32, report: Callable[[list[ShardStats]], None] | None = None,
                report_every_s: float = 5.0, message: str = "ssz run", commit: bool = True,
                shard_options: dict[str, Any] | None = None, list_name: str | None = None) -> RunResult:
    """Stream ``specs`` (camera id -> CameraSpec of cameras in ``reg``) through shards into the alert sink.

    Runs for ``duration_s`` (0 = until interrupted), or, with ``until_done``, until every shard has played
    its finite sources to the end and drained its queues (``duration_s`` is then the limit). Commits the
    alerts into a twin snapshot when ``commit`` and this run raised any, and stops the shards and the sink.
    ``list_name``: match faces and plates against that named list (a simulation's) instead of the operational
    watchlist and hotlist.
    ``alerts`` are the ones written during this run (the sink also holds the city's earlier alerts).
    """
    import datetime as dt

    import ray

    from actors.alerts import AlertSinkConfig, CameraPlace, sink_name, start_sink
    from actors.field import field_name
    from actors.sampler import SamplerConfig
    from actors.shard import STATE_ACTOR, state_store
    from actors.tracker import ConfirmerConfig
    from cluster import serving, store
    from cluster.sharding import assign, launch_shards, nodes_from_ray
    from cluster.state import state_dir

    t0 = time.monotonic()
    started = dt.datetime.now(dt.UTC)
    if detect == "faces":
        serving.ensure_up()
    places = {c.id: CameraPlace(lon=c.lon, lat=c.lat, edge_u=c.edge_u, edge_v=c.edge_v, edge_key=c.edge_key)
              for c in reg.cameras if c.id in specs}
    sink = start_sink(AlertSinkConfig(city=city.id, cameras=places, s3=store.settings(),
                                      mobile_cameras=[m.id for m in city.cameras.mobile],
                                      field_actor=field_name(city.id),
                                      audit_path=str(state_dir("alerts") / f"{city.id}-audit.jsonl")))
    state_store()
    nodes = nodes_from_ray()
    assignment = assign(list(specs), nodes, cameras_per_shard=cameras_per_shard)
    sampler = SamplerConfig(rate_fps=sample_fps or city.cameras.sample_fps)
    kinds = {c.id: CameraKind(c.kind) for c in reg.cameras if c.id in specs}
    plate_rate = SamplerConfig(rate_fps=max(sampler.rate_fps, city.cameras.plate_sample_fps))
    options = {"confirmer": ConfirmerConfig(min_matches_by_label={"plate": city.cameras.plate_min_reads}),
               **(shard_options or {})}
    handles = launch_shards(assignment, specs, _detector_factory(detect, kinds, list_name), num_cpus=0.1,
                            state_actor=STATE_ACTOR, sink_actor=sink_name(city.id), sampler=sampler,
                            sampler_by_camera={c: plate_rate for c, k in kinds.items() if k == CameraKind.plate},
                            **options)
    stats: list[ShardStats] = []
    try:
        # The streaming time counts from when every shard has started (its actor constructed and its cameras
        # opened): on a loaded machine starting them can take longer than a short run itself.
        ray.get([h.pid.remote() for h in handles.values()], timeout=300)
        deadline = time.monotonic() + duration_s if duration_s else float("inf")
        next_report = time.monotonic() + report_every_s
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            if until_done and all(ray.get([h.finished.remote() for h in handles.values()], timeout=60)):
                break
            if report is not None and time.monotonic() >= next_report:
                report(status())
                next_report += report_every_s
    except KeyboardInterrupt:
        pass
    finally:
        stats = [st for st in status(timeout_s=60) if st.shard_id in handles]
        ray.get([h.stop.remote() for h in handles.values()], timeout=60)
        ray.get(sink.flush.remote(), timeout=60)
        alerts = [a for a in ray.get(sink.alerts.remote(written=True), timeout=60)
                  if a.get("written_ts") is not None and a["written_ts"] >= started]
        sink_stats = AlertStats.model_validate(ray.get(sink.stats.remote(), timeout=60))
        snapshot = ray.get(sink.commit.remote(message), timeout=120) if alerts and commit else None
        for h in handles.values():
            ray.kill(h)
        ray.kill(sink)  # its state is in the store; the next run's sink reloads it
    return RunResult(stats=stats, alerts=alerts, sink=sink_stats, snapshot=snapshot, nodes=len(nodes),
                     shards=len(handles), seconds=round(time.monotonic() - t0, 1))
