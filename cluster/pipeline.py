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

import string
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field, field_validator

from actors.alerts import AlertStats
from actors.shard import ShardStats
from cluster.config import MEGAPIXELS_SPAN, CityConfig, MegaPixels
from cluster.registry import Registry
from cluster.scale import ScaleMetrics, TruthReport
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
    video: str = Field(default=str(VTEST), description="file: the video file every camera loops (a path or file://)")
    duration_s: float = Field(default=60.0, ge=0, description="0 = until interrupted")
    detect: Literal["faces", "none", "truth"] = Field(default="faces", description=(
        "faces: the face and plate models on Serve; truth: read the synthetic cameras' ground truth "
        "(TruthDetector, no model); none: detect nothing"))
    fps: float | None = Field(default=None, gt=0, le=30, description="sim: camera frame rate (None = the city's, "
                                                                     "at most 10)")
    wanted_every: int = Field(default=10, ge=1, description="truth: one walker in this many is listed")
    cameras_per_shard: int = Field(default=32, ge=1)
    sample_fps: float | None = Field(default=None, gt=0, description="None = the city's sample_fps")
    width: int = Field(default=320, gt=15, description="decode width of file/sim cameras")
    max_megapixels: MegaPixels | None = Field(default=None, description=(
        f"file/rtsp: largest picture a camera may send (MP, {MEGAPIXELS_SPAN}; None = the city's "
        "cameras.max_megapixels, else 130 MP)"))

    @field_validator("url_template")
    @classmethod
    def _one_field_camera_id(cls, v: str | None) -> str | None:
        """The template names ``{camera_id}`` and no other field (each camera needs its own URL)."""
        if v is None:
            return v
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"--url-template is not a valid template ({e}); write a literal brace as {{{{ or }}}}"
                             ) from None
        if fields != {"camera_id"}:
            other = sorted(fields - {"camera_id"})
            raise ValueError("--url-template must hold {camera_id} (each camera its own stream)"
                             + (f" and no other field, not {', '.join('{' + f + '}' for f in other)}" if other else
                                "") + ", e.g. rtsp://nvr.internal/{camera_id}")
        return v


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
    cameras_online: int = Field(default=0, description="cameras that delivered frames in the last seconds of the run")
    starved: int = Field(default=0, description="cameras that dropped frames or had none processed")
    fps_decoded_min: float = Field(default=0.0, description="the slowest camera's recent decode rate at the end (a "
                                                            "starved camera falls below the others; lossless runs "
                                                            "wait instead of dropping)")
    metrics: ScaleMetrics | None = Field(default=None, description="memory, CPU, control plane, start, status")
    truth: TruthReport | None = Field(default=None, description="detect=truth: alerts against the ground truth")


def camera_specs(city: CityConfig, reg: Registry, cfg: RunConfig, epoch: float | None = None, *,
                 source_checked: bool = False) -> dict[str, Any]:
    """One :class:`~actors.sources.CameraSpec` per fixed camera (face cameras, then plate cameras).

    Simulated cameras start their stream time at ``epoch`` (default: now, to the second), so track and alert
    ids of one run never collide with an earlier run's. The source is checked first (:func:`check_source`: a file
    camera's video is opened and a frame decoded) unless ``source_checked`` says the caller did it already.

    Raises
    ------
    ValueError, pydantic.ValidationError
        ``--detect truth`` without simulated cameras, or a source that cannot be opened (:func:`check_source`).
    """
    from actors.sources import CameraSpec

    if cfg.detect == "truth" and cfg.source != "sim":
        raise ValueError("--detect truth reads the ground truth of simulated cameras: use it with --source sim")
    epoch = float(int(time.time())) if epoch is None else epoch

    cams = [c for c in reg.cameras if c.kind == CameraKind.cctv][: cfg.cameras]
    cams += [c for c in reg.cameras if c.kind == CameraKind.plate][: cfg.plate_cameras]
    if not source_checked:
        check_source(cfg, city)
    bound = decode_bound(city, cfg)
    specs = {}
    for i, c in enumerate(cams):
        if cfg.source == "sim":
            spec = CameraSpec(id=c.id, url=f"sim://{c.id}", realtime=True, fps=cfg.fps or min(city.cameras.fps, 10.0),
                              seed=i, sim_size=(cfg.width, cfg.width * 3 // 4), sim_epoch=epoch)
        elif cfg.source == "file":
            spec = CameraSpec(id=c.id, url=cfg.video, loop=True, realtime=True, width=cfg.width, **bound)
        else:
            assert cfg.url_template is not None
            spec = CameraSpec(id=c.id, url=cfg.url_template.format(camera_id=quote(c.id, safe="")), **bound)
        specs[c.id] = spec
    return specs


def decode_bound(city: CityConfig, cfg: RunConfig) -> dict[str, int]:
    """The ``max_pixels`` (px) of a run's decoded cameras as CameraSpec arguments: ``cfg.max_megapixels``, else the
    city's ``cameras.max_megapixels``, else nothing (``{}``: CameraSpec's default, 130 MP)."""
    mp = cfg.max_megapixels if cfg.max_megapixels is not None else city.cameras.max_megapixels
    return {} if mp is None else {"max_pixels": round(mp * 1e6)}


def check_camera_counts(cfg: RunConfig, city: CityConfig) -> None:
    """Refuse more face or plate cameras than the city has (``--cameras 100000`` silently ran all of them).

    Raises
    ------
    ValueError
        ``cfg.cameras`` over ``city.cameras.count`` or ``cfg.plate_cameras`` over ``city.cameras.plate_count``.
    """
    for option, asked, has, what in (("--cameras", cfg.cameras, city.cameras.count, "face (CCTV)"),
                                     ("--plate-cameras", cfg.plate_cameras, city.cameras.plate_count, "plate")):
        if asked is not None and asked > has:
            raise ValueError(f"{option} {asked}: {city.id} has {has} {what} cameras; give at most {has}, or 'all'")


def check_source(cfg: RunConfig, city: CityConfig) -> None:
    """Refuse a run whose cameras cannot be opened as configured, before anything starts: ``rtsp`` without
    ``url_template``, ``file`` with a video that is missing or undecodable, or whose pictures are over the run's
    max megapixels (:func:`check_video`, :func:`decode_bound`: ``city`` gives its default), a video, URL template or
    max megapixels given for a source that does not use it (it would be ignored).

    Raises
    ------
    ValueError, pydantic.ValidationError
        What is wrong and what to pass instead.
    """
    from actors.sources import CameraSpec

    if cfg.source == "rtsp" and not cfg.url_template:
        raise ValueError("--source rtsp needs --url-template, e.g. rtsp://nvr.internal/{camera_id}")
    if "video" in cfg.model_fields_set and cfg.source != "file":
        raise ValueError(f"--video plays with --source file, not --source {cfg.source}")
    if cfg.url_template and cfg.source != "rtsp":
        raise ValueError(f"--url-template is for --source rtsp, not --source {cfg.source}")
    if cfg.max_megapixels is not None and cfg.source == "sim":
        raise ValueError("--max-megapixels is for --source file or rtsp (decoded cameras), not --source sim")
    if cfg.source == "file":
        check_video(CameraSpec(id="--video", url=cfg.video, width=cfg.width, **decode_bound(city, cfg)))


def check_video(spec: Any) -> None:
    """Decode the first frame of a file camera's video (``spec``: a :class:`~actors.sources.CameraSpec`; its
    ``start_pts`` is ignored) so that a missing, empty or undecodable file is refused before any shard starts.

    Raises
    ------
    ValueError
        The file does not exist, is a folder, holds no video stream or no decodable frame (the message says which
        and what to pass instead).
    """
    from actors.sources import PyAVSource, SourceError

    probe = spec.model_copy(update={"max_frames": 1, "loop": False, "realtime": False, "start_pts": None})
    if probe.scheme == "file" and probe.path == str(VTEST) and not VTEST.is_file():
        raise ValueError(f"--source file: {VTEST} not found (install Debian's opencv-doc or pass --video FILE)")
    try:
        with PyAVSource(probe) as src:
            if next(iter(src.frames()), None) is None:  # frames() raises first (PyAVSource._undecodable): a guard
                raise SourceError(f"camera {spec.id}: {probe.path!r} has no frame", permanent=True)
    except SourceError as e:
        raise ValueError(f"--source file: {e}") from None


def _detector_factory(detect: str, camera_kind: dict[str, str], list_name: str | None = None,
                      specs: dict[str, Any] | None = None, wanted_every: int = 10) -> Callable[[], Detector]:
    """Face cameras' frames go to the face deployment, plate cameras' to the plate deployment (app ``ssz``),
    matched against the operational lists or the named lists ``list_name`` (a simulation's); ``truth`` reads
    the ground truth of the synthetic cameras ``specs``; ``none`` detects nothing. The factory runs inside each
    shard actor (handles are made there)."""
    from actors.detectors import make_detector

    if detect == "truth":
        labels = truth_labels(camera_kind)
        return lambda: make_detector("truth", cameras=specs or {}, labels=labels, wanted_every=wanted_every)

    if detect == "faces":
        return lambda: make_detector("routing", routes={
            CameraKind.cctv: make_detector("faces", app_name="ssz", list_name=list_name),
            CameraKind.plate: make_detector("plates", app_name="ssz", list_name=list_name)}, camera_kind=camera_kind)
    return lambda: make_detector("none")


def truth_labels(camera_kind: dict[str, str]) -> dict[str, str]:
    """Camera id -> the detection label the truth detector gives it (plate cameras read plates)."""
    return {c: "plate" if k == CameraKind.plate else "face" for c, k in camera_kind.items()}


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
    metrics: ScaleMetrics | None = Field(default=None, description="measure=True: memory, CPU, start, status")
    truth: TruthReport | None = Field(default=None, description="detect=truth: alerts against the ground truth")
    undelivered: int = Field(default=0, description="events the shards still kept (undelivered) after their drain "
                                                    "at stop: in their resume state, sent at the next start")


def run(cfg: RunConfig, report: Callable[[list[ShardStats]], None] | None = None,
        report_every_s: float = 5.0, *, source_checked: bool = False, city: CityConfig | None = None) -> RunSummary:
    """Run the city's pipeline for ``cfg.duration_s`` (needs a Ray connection and the object store).
    ``source_checked``: the caller ran :func:`check_source` on ``cfg`` already (``ssz run`` does, before the store
    and Ray start), so a file camera's video is not decoded a second time; ``city``: ``cfg.city`` as the caller
    loaded it for that check (else it is loaded here).

    Raises
    ------
    cluster.config.ConfigError, ValueError
        A bad city, or a source that cannot be opened as configured (no URL template, no video file).
    """
    from cluster.city import CityModel

    t0 = time.monotonic()
    model = CityModel.load(city or cfg.city)
    city, reg = model.config, model.registry
    specs = camera_specs(city, reg, cfg, source_checked=source_checked)
    if not specs:
        raise ValueError(f"{city.id} has no fixed cameras to run")
    res = run_cameras(city, reg, specs, detect=cfg.detect, duration_s=cfg.duration_s,
                      sample_fps=cfg.sample_fps, cameras_per_shard=cfg.cameras_per_shard, report=report,
                      report_every_s=report_every_s, message=f"ssz run {city.id}", wanted_every=cfg.wanted_every,
                      measure=True)
    cams = [c for s in res.stats for c in s.cameras]
    return RunSummary(city=city.id, cameras=len(specs), shards=res.shards, nodes=res.nodes,
                      seconds=round(time.monotonic() - t0, 1), frames_decoded=sum(c.decoded for c in cams),
                      frames_processed=sum(c.processed for c in cams),
                      frames_dropped=sum(c.dropped for c in cams), alerts=len(res.alerts), snapshot=res.snapshot,
                      cameras_online=sum(1 for c in cams if c.last_frame_age_s is not None
                                         and c.last_frame_age_s < max(5.0, 3 / (cfg.fps or 1.0))),
                      starved=sum(1 for c in cams if c.dropped or not c.processed),
                      fps_decoded_min=min((c.fps_decoded for c in cams), default=0.0),
                      metrics=res.metrics, truth=res.truth)


def run_cameras(city: CityConfig, reg: Registry, specs: dict[str, Any], *, detect: str = "faces",
                duration_s: float = 60.0, until_done: bool = False, sample_fps: float | None = None,
                cameras_per_shard: int = 32, report: Callable[[list[ShardStats]], None] | None = None,
                report_every_s: float = 5.0, message: str = "ssz run", commit: bool = True,
                shard_options: dict[str, Any] | None = None, list_name: str | None = None,
                wanted_every: int = 10, measure: bool = False,
                during: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Stream ``specs`` (camera id -> CameraSpec of cameras in ``reg``) through shards into the alert sink.

    Runs for ``duration_s`` (0 = until interrupted), or, with ``until_done``, until every shard has played
    its finite sources to the end and drained its queues (``duration_s`` is then the limit). Commits the
    alerts into a twin snapshot when ``commit`` and this run raised any, and stops the shards and the sink.
    ``list_name``: match faces and plates against that named list (a simulation's) instead of the operational
    watchlist and hotlist.
    ``alerts`` are the ones written during this run (the sink also holds the city's earlier alerts).
    ``measure``: sample memory, CPU, control plane, shard start time and status round trips (``metrics``).
    ``during``: called about every half second with the shard handles and the sink (``{"shards", "sink"}``),
    e.g. to kill parts of the pipeline (``ssz bench chaos``).

    Raises :class:`~cluster.sharding.ShardingError` (before starting anything) when another run's shards are
    running on the cluster.
    """
    import datetime as dt

    import ray

    from actors.alerts import AlertSinkConfig, CameraPlace, sink_name, start_sink
    from actors.field import field_name
    from actors.sampler import SamplerConfig
    from actors.shard import LIVE_MAX_QUEUE_AGE_S, STATE_ACTOR, state_store
    from actors.tracker import ConfirmerConfig
    from cluster import serving, store
    from cluster.scale import UsageMeter, truth_check
    from cluster.sharding import assign, ensure_no_shards, launch_shards, nodes_from_ray
    from cluster.state import state_dir

    ensure_no_shards()  # before anything is started or cleared: a running pipeline's resume states stay
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
               # the truth detector's accounting is exact only when no frame is dropped: readers wait for room
               # (a starved shard makes its simulated cameras fall behind instead of losing frames)
               # live runs with the models: a frame that waited past LIVE_MAX_QUEUE_AGE_S behind a newer one of its
               # camera is dropped, so a burst of load costs frames, not seconds of alert latency
               **({"block_when_full": True} if detect == "truth" else {"max_queue_age_s": LIVE_MAX_QUEUE_AGE_S}),
               **(shard_options or {})}
    # a new run is not a restart: the resume states an earlier run left under the same shard ids (positions on
    # another stream clock, its pending and sent alerts) must not be taken up by this run's shards
    ray.get(state_store().clear.remote(list(assignment.shard_cameras())), timeout=60)
    n_shards = len(assignment.shard_cameras())
    # a sliver of a CPU each (they mostly wait), never more than half the cluster's CPUs for all of them
    cpus = max(0.01, round(min(0.1, 0.5 * sum(n.cpus for n in nodes) / max(1, n_shards)), 3))
    t_launch = time.monotonic()
    handles = launch_shards(assignment, specs,
                            _detector_factory(detect, kinds, list_name, specs=specs, wanted_every=wanted_every),
                            num_cpus=cpus,
                            state_actor=STATE_ACTOR, sink_actor=sink_name(city.id), sampler=sampler,
                            sampler_by_camera={c: plate_rate for c, k in kinds.items() if k == CameraKind.plate},
                            **options)
    stats: list[ShardStats] = []
    meter = UsageMeter() if measure else None
    status_ms: list[float] = []
    shard_start_s: float | None = None
    try:
        # The streaming time counts from when every shard has started (its actor constructed and its cameras
        # opened): on a loaded machine starting them can take longer than a short run itself.
        ray.get([h.pid.remote() for h in handles.values()], timeout=300)
        deadline = time.monotonic() + duration_s if duration_s else float("inf")
        next_report = time.monotonic() + report_every_s
        next_look = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            if during is not None:
                during({"shards": handles, "sink": sink})
            if until_done and all(ray.get([h.finished.remote() for h in handles.values()], timeout=60)):
                break
            if (meter is not None or report is not None) and time.monotonic() >= min(next_report, next_look):
                t_s = time.perf_counter()
                now = [st for st in status() if st.shard_id in handles]
                status_ms.append((time.perf_counter() - t_s) * 1000)
                if meter is not None and not meter.started and all(not s.error for s in now) and \
                        sum(1 for s in now for c in s.cameras if c.decoded > 0) == len(specs):
                    shard_start_s = time.monotonic() - t_launch
                    meter.begin(now, sink_pid=_actor_pid(sink))
                next_look = time.monotonic() + 2.0
                if report is not None and time.monotonic() >= next_report:
                    report(now)
                    next_report += report_every_s
    except KeyboardInterrupt:
        pass
    finally:
        stats = [st for st in status(timeout_s=60) if st.shard_id in handles]
        metrics = meter.end(stats, shard_start_s, status_ms) if meter is not None and meter.started else None
        ray.get([h.stop.remote() for h in handles.values()], timeout=120)  # drains their pending events
        final = [st for st in status(timeout_s=60) if st.shard_id in handles]  # positions after the drain
        ray.get(sink.flush.remote(), timeout=60)
        alerts = [a for a in ray.get(sink.alerts.remote(written=True), timeout=60)
                  if a.get("written_ts") is not None and a["written_ts"] >= started]
        sink_stats = AlertStats.model_validate(ray.get(sink.stats.remote(), timeout=60))
        snapshot = ray.get(sink.commit.remote(message), timeout=120) if alerts and commit else None
        for h in handles.values():
            ray.kill(h)
        ray.kill(sink)  # its state is in the store; the next run's sink reloads it
    truth = None
    if detect == "truth":
        conf = ConfirmerConfig.model_validate(options["confirmer"])
        truth = truth_check(specs, final, alerts, wanted_every=wanted_every, labels=truth_labels(kinds),
                            min_matches={"face": conf.min_matches,
                                         "plate": conf.min_matches_by_label.get("plate", conf.min_matches)})
    return RunResult(stats=stats, alerts=alerts, sink=sink_stats, snapshot=snapshot, nodes=len(nodes),
                     shards=len(handles), seconds=round(time.monotonic() - t0, 1), metrics=metrics, truth=truth,
                     undelivered=sum(s.events_pending for s in final))


def _actor_pid(handle: Any) -> int:
    """The process id of an actor (0 when it does not answer)."""
    import os

    import ray

    try:
        return int(ray.get(handle.__ray_call__.remote(lambda self: os.getpid()), timeout=10))
    except Exception:
        return 0
