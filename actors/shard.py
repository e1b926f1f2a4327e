"""CameraShard: one Ray actor owns N cameras and runs decode -> motion gate -> sample -> downsize -> batch -> detect.

Threads, not luck, keep cameras independent: every camera has its own reader thread (decode, gate and
sampling happen there; PyAV and OpenCV release the GIL while they work), frames that pass go into a small
per-camera queue that **drops the oldest frame** when it is full (and counts it), and one dispatcher thread
with its own asyncio loop takes frames round-robin across cameras into batches and awaits the
:class:`Detector` with at most ``max_inflight`` batches in flight. When the detector is saturated the
queues fill and old frames are dropped: memory is bounded by ``cameras x queue_size + max_inflight x
batch_size`` frames, whatever the detector does.

Results are applied in dispatch order to a per-camera :class:`~actors.tracker.IoUTracker` and a shard-wide
:class:`~actors.tracker.Confirmer`; alert decisions and camera health events go to an event outbox (and to
an alert-sink actor when one is named). Stream time (``pts``) is used for tracking, so a replay after a
restart gives the same track and alert ids.

State that must survive a restart (``max_restarts`` re-runs the constructor) lives outside the actor: the
camera specs are constructor arguments, and a detached :class:`ShardStateStore` actor keeps each shard's
*resume state* (per-camera position of the last frame whose results were delivered, the live tracks, the
confirmer's pending counts and cooldowns, and the recent alert ids). A restarted shard resumes files and
simulated cameras from their position, continues the same tracks, and keeps suppressing alerts it already
raised.

:class:`ShardCore` holds all the logic and runs in a plain process too (benchmarks compare the two);
:class:`CameraShard` is the Ray actor around it. Detectors plug in through
:class:`~actors.detectors.Detector` (:mod:`actors.detectors`); what the shard sends to the alert sink is typed
in :mod:`actors.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, RetryError, stop_after_attempt, wait_exponential

from actors import RAY_NAMESPACE
from actors.detectors import Detector, FrameItem
from actors.events import AlertDecisionEvent, ShardEvent, health_event
from actors.motion import MotionGate, MotionGateConfig
from actors.sampler import RateSampler, SamplerConfig
from actors.sources import CameraReader, CameraSpec, Frame, HealthEvent, StreamClock
from actors.tracker import Confirmer, ConfirmerConfig, Detection, IoUTracker, TrackerConfig

log = logging.getLogger(__name__)

STATE_ACTOR = "ssz-shard-state"



# ----------------------------------------------------------------------------------------------------------
# Configuration and statistics


class ShardConfig(BaseModel):
    """Everything a shard needs; passed to the constructor so that a restart resumes the same cameras."""

    model_config = ConfigDict(extra="forbid")

    shard_id: str = Field(min_length=1)
    cameras: list[CameraSpec]
    gate: MotionGateConfig = MotionGateConfig()
    sampler: SamplerConfig = SamplerConfig()
    sampler_by_camera: dict[str, SamplerConfig] = Field(
        default={}, description="camera id -> its own rate (plate cameras: a plate is in view for about a second)")
    tracker: TrackerConfig = TrackerConfig()
    confirmer: ConfirmerConfig = ConfirmerConfig()
    detect_width: int | None = Field(default=640, gt=15, description="downsize frames to this width for detection")
    roi: dict[str, tuple[float, float, float, float]] = Field(
        default={}, description="camera id -> (x1, y1, x2, y2) as fractions of the frame: crop before detection")
    queue_size: int = Field(default=4, ge=1, le=1000, description="frames queued per camera; oldest dropped")
    block_when_full: bool = Field(default=False, description="offline runs: wait for room instead of dropping")
    batch_size: int = Field(default=8, ge=1, le=256)
    batch_wait_s: float = Field(default=0.02, ge=0, description="wait this long to fill a batch")
    max_inflight: int = Field(default=2, ge=1, le=64, description="detector calls in flight")
    health_poll_s: float = Field(default=0.5, gt=0)
    state_every_s: float = Field(default=2.0, gt=0, description="save the resume state this often (s)")
    state_actor: str | None = Field(default=None, description="name of the detached ShardStateStore actor")
    sink_actor: str | None = Field(default=None, description="named actor with submit(events) -> ack")
    max_events: int = Field(default=10_000, ge=10, description="outbox bound (oldest events dropped, counted)")
    keep_crops: bool = Field(default=True, description="attach the detection crop of each alert as evidence")

    def camera_ids(self) -> list[str]:
        """Ids of the shard's cameras."""
        return [c.id for c in self.cameras]


class CameraStats(BaseModel):
    """Per-camera numbers shown by ``ssz status``."""

    camera_id: str
    health: str
    fps_decoded: float
    decoded: int
    gate_pass_ratio: float
    sampled: int
    queued: int
    dropped: int
    processed: int
    detector_errors: int
    detections: int
    alerts: int
    suppressed: int
    reconnects: int
    corrupt: int
    last_error: str | None
    last_frame_age_s: float | None
    position_pts: float | None


class ShardStats(BaseModel):
    """Per-shard numbers plus one :class:`CameraStats` per camera (``error`` says why a shard did not answer)."""

    shard_id: str
    pid: int
    node_id: str | None
    uptime_s: float
    restarts: int
    batches: int
    mean_batch: float
    detect_ms_p50: float | None
    detect_ms_p99: float | None
    inflight: int
    events_pending: int
    events_dropped: int
    cameras: list[CameraStats]
    error: str | None = None

    @classmethod
    def unreachable(cls, shard_id: str, error: str) -> ShardStats:
        """A shard that did not answer (dead, restarting, waiting for resources): no numbers, the reason."""
        return cls(shard_id=shard_id, pid=0, node_id=None, uptime_s=0.0, restarts=0, batches=0, mean_batch=0.0,
                   detect_ms_p50=None, detect_ms_p99=None, inflight=0, events_pending=0, events_dropped=0,
                   cameras=[], error=error)


@dataclass
class _Camera:
    spec: CameraSpec
    gate: MotionGate
    sampler: RateSampler
    tracker: IoUTracker
    queue: deque[FrameItem]
    cond: threading.Condition = field(default_factory=threading.Condition)
    reader: CameraReader | None = None
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    sampled: int = 0
    dropped: int = 0
    processed: int = 0
    detector_errors: int = 0
    detections: int = 0
    alerts: int = 0
    suppressed: int = 0
    position: float | None = None
    clock: StreamClock = field(default_factory=StreamClock)  # epochs of the stream's clock, kept over restarts
    geometry: tuple[int, int, int] | None = None  # (width, height, epoch) of the last frame (reader thread)
    tracked: tuple[int, int, int] | None = None  # the same, of the last frame tracked (dispatcher)


# ----------------------------------------------------------------------------------------------------------
# Checkpoint store (detached actor)


class ShardStateStore:
    """Checkpoints of all shards, kept in a detached named actor so that they outlive shard restarts."""

    def __init__(self) -> None:
        self._state: dict[str, dict[str, Any]] = {}

    def put(self, shard_id: str, state: dict[str, Any]) -> int:
        """Replace the shard's resume state; returns its version number."""
        old = self._state.get(shard_id, {})
        version = int(old.get("version", 0)) + 1
        self._state[shard_id] = {**state, "version": version, "starts": int(old.get("starts", 0))}
        return version

    def get(self, shard_id: str) -> dict[str, Any] | None:
        """The shard's last resume state, or None."""
        return self._state.get(shard_id)

    def bump_restarts(self, shard_id: str) -> int:
        """Count a (re)start of the shard and return how many starts came before this one."""
        st = self._state.setdefault(shard_id, {})
        n = int(st.get("starts", 0))
        st["starts"] = n + 1
        return n


def state_store(create: bool = True) -> Any:
    """Handle of the detached :class:`ShardStateStore` actor that keeps every shard's resume state.

    Parameters
    ----------
    create
        Create it (named :data:`STATE_ACTOR` in the ``ssz`` namespace) when it does not exist yet.

    Returns
    -------
    ray.actor.ActorHandle

    Raises
    ------
    ValueError
        When it does not exist and ``create`` is false.
    """
    import ray

    try:
        return ray.get_actor(STATE_ACTOR, namespace=RAY_NAMESPACE)
    except ValueError:
        if not create:
            raise
    cls = ray.remote(num_cpus=0, max_restarts=-1)(ShardStateStore)
    return cls.options(name=STATE_ACTOR, namespace=RAY_NAMESPACE, lifetime="detached",
                       get_if_exists=True).remote()


# ----------------------------------------------------------------------------------------------------------
# The pipeline


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


class ShardCore:
    """The shard pipeline (readers, gate, sampler, bounded queues, batching dispatcher, tracker, confirmer).

    ``start()`` launches the threads; ``stats()``, ``drain_events()`` and ``stop()`` may be called from any
    thread. ``resume_state``/``restore`` give the state that must outlive the process.
    """

    def __init__(self, config: ShardConfig, detector: Detector | None,
                 state_sink: Callable[[dict[str, Any]], None] | None = None,
                 event_sink: Callable[[list[ShardEvent]], Awaitable[Any] | Any] | None = None) -> None:
        ids = config.camera_ids()
        if len(set(ids)) != len(ids):
            raise ValueError(f"shard {config.shard_id}: duplicate camera ids in {ids}")
        self.config = config
        self.detector = detector
        self._state_sink = state_sink
        self._event_sink = event_sink
        self.cams: dict[str, _Camera] = {
            c.id: _Camera(spec=c, gate=MotionGate(config.gate),
                          sampler=RateSampler(config.sampler_by_camera.get(c.id, config.sampler)),
                          tracker=IoUTracker(c.id, config.tracker), queue=deque(maxlen=config.queue_size))
            for c in config.cameras}
        self.confirmer = Confirmer(config.confirmer)
        self._stop = threading.Event()
        self._wake_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []
        self._events: deque[ShardEvent] = deque(maxlen=config.max_events)
        self._events_lock = threading.Lock()
        self.events_dropped = 0
        self.started = time.time()
        self.restarts = 0
        self.batches = 0
        self.batch_items = 0
        self.inflight = 0
        self._detect_ms: deque[float] = deque(maxlen=512)
        self._rr = 0
        self._sent_ids: deque[str] = deque(maxlen=1000)

    # --- lifecycle -------------------------------------------------------------------------------------

    def restore(self, state: dict[str, Any] | None) -> None:
        """Resume from a saved state: camera positions, tracks, confirmer counts and cooldowns, alert ids."""
        if not state:
            return
        self.restarts = int(state.get("starts", 0))
        for cam_id, pos in (state.get("positions") or {}).items():
            cam = self.cams.get(cam_id)
            if cam is None or pos is None:
                continue
            cam.position = float(pos)
            if cam.spec.scheme in ("file", "sim"):
                cam.spec = cam.spec.model_copy(update={"start_pts": float(pos) + 1e-3})
        if state.get("confirmer"):
            self.confirmer.load_state(state["confirmer"])
        for cam_id, tracks in (state.get("tracks") or {}).items():
            if cam_id in self.cams:
                self.cams[cam_id].tracker.load_state(tracks)
        self._sent_ids.extend(state.get("sent_ids") or [])
        for cam_id, clock in (state.get("clocks") or {}).items():
            cam = self.cams.get(cam_id)
            if cam is None:
                continue
            cam.clock.load_state(clock)
            if cam.spec.scheme in ("file", "sim") and cam.position is not None:
                cam.clock.last_pts = cam.position  # it resumes right after the delivered position: same epoch

    def resume_state(self) -> dict[str, Any]:
        """The state to persist: positions of delivered frames, tracks, pending counts, cooldowns, alert ids.

        Call it on the dispatcher loop (or when the pipeline is stopped) so that the parts agree.
        """
        return {
            "shard_id": self.config.shard_id,
            "positions": {cid: c.position for cid, c in self.cams.items()},
            "tracks": {cid: c.tracker.state() for cid, c in self.cams.items()},
            "confirmer": self.confirmer.state(),
            "sent_ids": list(self._sent_ids),
            "clocks": {cid: c.clock.state() for cid, c in self.cams.items()},
            "ts": time.time(),
        }

    def start(self) -> ShardCore:
        """Start the dispatcher, health and state-saving threads and one reader thread per camera."""
        ready = threading.Event()
        t = threading.Thread(target=self._dispatcher_main, args=(ready,), name=f"shard-{self.config.shard_id}",
                             daemon=True)
        t.start()
        ready.wait(10)
        self._threads.append(t)
        for cam in self.cams.values():
            cam.reader = CameraReader(cam.spec, self._on_frame_cb(cam), clock=cam.clock).start()
        for target, name in ((self._health_main, "health"), (self._state_main, "state")):
            th = threading.Thread(target=target, name=f"shard-{self.config.shard_id}-{name}", daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop readers and threads, save the resume state a last time."""
        self._stop.set()
        for cam in self.cams.values():
            with cam.cond:
                cam.cond.notify_all()
            if cam.reader is not None:
                cam.reader.stop(timeout)
        self._kick()
        for t in self._threads:
            t.join(timeout)
        self._save_state()

    # --- reader side (one thread per camera) ------------------------------------------------------------

    def _prepare(self, cam: _Camera, frame: Frame) -> FrameItem:
        img = frame.image
        ox = oy = 0
        roi = self.config.roi.get(cam.spec.id)
        if roi is not None:
            h, w = img.shape[:2]
            x1, y1, x2, y2 = int(roi[0] * w), int(roi[1] * h), int(roi[2] * w), int(roi[3] * h)
            img, ox, oy = img[y1:y2, x1:x2], x1, y1
        scale = 1.0
        dw = self.config.detect_width
        if dw and img.shape[1] > dw:
            scale = dw / img.shape[1]
            img = cv2.resize(img, (dw, max(1, round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        return FrameItem(cam.spec.id, frame.seq, frame.ts, frame.pts, np.ascontiguousarray(img), scale, (ox, oy),
                         time.monotonic(), frame.epoch, (frame.image.shape[1], frame.image.shape[0]), frame.offset)

    def _on_frame_cb(self, cam: _Camera) -> Callable[[Frame], None]:
        def on_frame(frame: Frame) -> None:
            cam.arrivals.append(time.monotonic())
            geometry = (frame.image.shape[1], frame.image.shape[0], frame.epoch)
            if cam.geometry is not None and geometry != cam.geometry:  # new size or a restarted stream clock
                cam.gate.reset()
                cam.sampler.reset()
            cam.geometry = geometry
            t = frame.pts + frame.offset if frame.pts is not None else frame.ts
            if not cam.gate.check(frame.image, t).passed:
                return
            if not cam.sampler.take(t):
                return
            item = self._prepare(cam, frame)
            with cam.cond:
                if self.config.block_when_full:
                    while len(cam.queue) >= self.config.queue_size and not self._stop.is_set():
                        cam.cond.wait(0.5)
                elif len(cam.queue) == cam.queue.maxlen:
                    cam.dropped += 1  # the deque drops the oldest frame on append
                cam.queue.append(item)
                cam.sampled += 1
            self._kick()

        return on_frame

    def _kick(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    # --- dispatcher (one thread, one asyncio loop) ------------------------------------------------------

    def _dispatcher_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._wake = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._dispatch())
        finally:
            with contextlib.suppress(Exception):
                if self.detector is not None:
                    loop.run_until_complete(self.detector.aclose())
            loop.close()

    def _queued(self) -> int:
        return sum(len(c.queue) for c in self.cams.values())

    def _take_batch(self) -> list[FrameItem]:
        """Up to ``batch_size`` frames, one per camera per round, oldest first within a camera."""
        batch: list[FrameItem] = []
        cams = list(self.cams.values())
        if not cams:
            return batch
        progress = True
        while len(batch) < self.config.batch_size and progress:
            progress = False
            for i in range(len(cams)):
                cam = cams[(self._rr + i) % len(cams)]
                with cam.cond:
                    if cam.queue:
                        batch.append(cam.queue.popleft())
                        cam.cond.notify()
                        progress = True
                if len(batch) >= self.config.batch_size:
                    break
            self._rr = (self._rr + 1) % len(cams)
        return batch

    async def _dispatch(self) -> None:
        assert self._wake is not None
        sem = asyncio.Semaphore(self.config.max_inflight)
        order = 0
        next_apply = 0
        done: dict[int, tuple[list[FrameItem], list[list[Detection]] | None]] = {}
        tasks: set[asyncio.Task[None]] = set()

        async def run(n: int, batch: list[FrameItem]) -> None:
            nonlocal next_apply
            t0 = time.perf_counter()
            try:
                res: list[list[Detection]] | None = await self.detector.detect(batch) if self.detector else \
                    [[] for _ in batch]
            except Exception as e:
                log.warning("shard %s: detector failed on a batch of %d: %s", self.config.shard_id, len(batch), e)
                res = None
            self._detect_ms.append((time.perf_counter() - t0) * 1000)
            done[n] = (batch, res)
            # apply in dispatch order so each camera's tracker sees its frames in order
            while next_apply in done:
                b, r = done.pop(next_apply)
                next_apply += 1
                await self._apply(b, r)
            self.inflight -= 1
            sem.release()

        while not self._stop.is_set():
            await sem.acquire()
            while not self._queued() and not self._stop.is_set():
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.2)
            if self._stop.is_set():
                sem.release()
                break
            if self._queued() < self.config.batch_size and self.config.batch_wait_s > 0:
                await asyncio.sleep(self.config.batch_wait_s)
            batch = self._take_batch()
            if not batch:
                sem.release()
                continue
            self.batches += 1
            self.batch_items += len(batch)
            self.inflight += 1
            task = asyncio.create_task(run(order, batch))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            order += 1
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    async def _apply(self, batch: list[FrameItem], results: list[list[Detection]] | None) -> None:
        """Track, confirm and emit events for a finished batch; then advance the delivered positions."""
        events: list[ShardEvent] = []
        for i, item in enumerate(batch):
            cam = self.cams[item.camera_id]
            if results is None:
                cam.detector_errors += 1
                continue
            dets = [self._to_source(d, item) for d in results[i]]
            cam.processed += 1
            cam.detections += len(dets)
            geometry = (*(item.source_size or (0, 0)), item.epoch)
            if cam.tracked is not None and geometry != cam.tracked:
                cam.tracker.reset()  # boxes of another picture size or another stream clock continue nothing
            cam.tracked = geometry
            tracked = cam.tracker.update(dets, item.time, item.epoch)
            for dec in self.confirmer.observe_frame(item.camera_id, tracked, item.time):
                if dec.decision == "alert":
                    if dec.alert_id in self._sent_ids:
                        continue  # raised before a restart: already delivered
                    cam.alerts += 1
                    self._sent_ids.append(dec.alert_id)
                else:
                    cam.suppressed += 1
                # ``ts`` is wall-clock (when the confirming frame was decoded); the tracker's stream-time
                # fields are kept as ``stream_ts`` / ``first_ts`` (stream time of the track's first match)
                track = cam.tracker.tracks.get(dec.track_id)
                crop = None
                if self.config.keep_crops and dec.decision == "alert":
                    crop = _crop(item, next((d.box for t, d in tracked if t == dec.track_id), None))
                events.append(AlertDecisionEvent(**{**dec.model_dump(), "ts": item.ts}, shard_id=self.config.shard_id,
                                                 stream_ts=dec.ts,
                                                 track_start_pts=round(track.first_ts, 3) if track else None,
                                                 frame_ts=item.ts, frame_pts=item.pts, frame_seq=item.seq,
                                                 decided_at=time.time(), crop=crop))
        await self._deliver(events)
        for item in batch:  # only now are this batch's results safe: advance positions
            cam = self.cams[item.camera_id]
            if item.pts is not None and (cam.position is None or item.pts > cam.position):
                cam.position = item.pts
        if self._state_sink is not None and any(getattr(e, "decision", None) == "alert" for e in events):
            # an alert was delivered: persist its cooldown and id before going on, so that a crash now
            # neither loses it (delivered first) nor raises it again (the restart suppresses it)
            try:
                r = self._state_sink(self.resume_state())
                if isinstance(r, Awaitable):
                    await r
            except Exception as e:
                log.warning("shard %s: saving the resume state after an alert failed: %s", self.config.shard_id, e)

    @staticmethod
    def _to_source(d: Detection, item: FrameItem) -> Detection:
        x1, y1, x2, y2 = d.box
        s, (ox, oy) = item.scale, item.offset
        return Detection((x1 / s + ox, y1 / s + oy, x2 / s + ox, y2 / s + oy), d.score, d.label, d.subject_id,
                         d.match_score)

    async def _deliver(self, events: list[ShardEvent]) -> None:
        """Send events to the sink (5 tries, exponential back-off); what it does not take goes to the outbox."""
        if not events:
            return
        if self._event_sink is not None:
            sink = self._event_sink

            def _log(rs: RetryCallState) -> None:
                log.warning("shard %s: event sink failed (attempt %d): %s", self.config.shard_id, rs.attempt_number,
                            rs.outcome.exception() if rs.outcome else None)

            try:
                async for attempt in AsyncRetrying(stop=stop_after_attempt(5), wait=wait_exponential(0.1, max=2.0),
                                                   before_sleep=_log):
                    with attempt:
                        r = sink(events)
                        if isinstance(r, Awaitable):
                            await r
                return
            except RetryError:
                pass
        with self._events_lock:
            for ev in events:
                if len(self._events) == self._events.maxlen:
                    self.events_dropped += 1
                self._events.append(ev)

    # --- health and resume state ----------------------------------------------------------------------

    def _health_main(self) -> None:
        while not self._stop.wait(self.config.health_poll_s):
            evs: list[HealthEvent] = []
            for cam in self.cams.values():
                # a finite source that played to its end is not offline (what it raised before still goes out)
                if cam.reader is not None:
                    evs += cam.reader.health.drain() if cam.reader.stats.finished else cam.reader.health.poll()
            if evs:
                payload: list[ShardEvent] = [health_event(self.config.shard_id, e) for e in evs]
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    with contextlib.suppress(RuntimeError):
                        asyncio.run_coroutine_threadsafe(self._deliver(payload), loop)
                        continue
                with self._events_lock:
                    self._events.extend(payload)

    async def _state_on_loop(self) -> dict[str, Any]:
        return self.resume_state()

    def _save_state(self) -> None:
        if self._state_sink is None:
            return
        try:
            loop = self._loop
            if loop is not None and loop.is_running():  # take it on the dispatcher loop: a consistent state
                st = asyncio.run_coroutine_threadsafe(self._state_on_loop(), loop).result(timeout=10)
            else:
                st = self.resume_state()
            self._state_sink(st)
        except Exception as e:
            log.warning("shard %s: saving the resume state failed: %s", self.config.shard_id, e)

    def _state_main(self) -> None:
        while not self._stop.wait(self.config.state_every_s):
            self._save_state()

    # --- queries ----------------------------------------------------------------------------------------

    def drain_events(self, max_n: int = 10_000) -> list[ShardEvent]:
        """Take up to ``max_n`` pending events (alert decisions and health changes), oldest first."""
        with self._events_lock:
            n = min(max_n, len(self._events))
            return [self._events.popleft() for _ in range(n)]

    def stats(self) -> ShardStats:
        """Current per-camera and per-shard numbers."""
        now_m = time.monotonic()
        now = time.time()
        cams = []
        for cid, c in self.cams.items():
            arr = list(c.arrivals)
            fps = (len(arr) - 1) / (arr[-1] - arr[0]) if len(arr) > 1 and arr[-1] > arr[0] else 0.0
            if arr and now_m - arr[-1] > 2.0:
                fps = 0.0
            r = c.reader
            lf = r.health.last_frame if r is not None else None
            cams.append(CameraStats(
                camera_id=cid, health=str(r.health.state) if r else "stopped", fps_decoded=round(fps, 2),
                decoded=r.decoded if r else 0, gate_pass_ratio=round(c.gate.pass_ratio, 4), sampled=c.sampled,
                queued=len(c.queue), dropped=c.dropped, processed=c.processed, detector_errors=c.detector_errors,
                detections=c.detections, alerts=c.alerts, suppressed=c.suppressed,
                reconnects=r.stats.reconnects if r else 0, corrupt=r.corrupt if r else 0,
                last_error=r.stats.last_error if r else None,
                last_frame_age_s=round(now - lf, 3) if lf is not None else None, position_pts=c.position))
        ms = list(self._detect_ms)
        node = None
        with contextlib.suppress(Exception):
            import ray

            if ray.is_initialized():
                node = ray.get_runtime_context().get_node_id()
        return ShardStats(shard_id=self.config.shard_id, pid=os.getpid(), node_id=node,
                          uptime_s=round(now - self.started, 3), restarts=self.restarts, batches=self.batches,
                          mean_batch=round(self.batch_items / self.batches, 3) if self.batches else 0.0,
                          detect_ms_p50=_percentile(ms, 50), detect_ms_p99=_percentile(ms, 99),
                          inflight=self.inflight, events_pending=len(self._events),
                          events_dropped=self.events_dropped, cameras=cams)

    def finished(self) -> bool:
        """True when every camera's reader ended (finite files) and all queued frames were processed."""
        return all(c.reader is not None and not c.reader.alive for c in self.cams.values()) \
            and self._queued() == 0 and self.inflight == 0


def _crop(item: FrameItem, box: tuple[float, float, float, float] | None) -> np.ndarray | None:
    """The detection's crop from the detector image (evidence), contiguous; None without a box."""
    if box is None:
        return None
    s, (ox, oy) = item.scale, item.offset
    h, w = item.image.shape[:2]
    x1 = int(max(0, (box[0] - ox) * s))
    y1 = int(max(0, (box[1] - oy) * s))
    x2 = int(min(w, (box[2] - ox) * s))
    y2 = int(min(h, (box[3] - oy) * s))
    if x2 <= x1 or y2 <= y1:
        return None
    return np.ascontiguousarray(item.image[y1:y2, x1:x2])


# ----------------------------------------------------------------------------------------------------------
# The Ray actor


DetectorFactory = Callable[[], Detector]


class CameraShard:
    """Ray actor around :class:`ShardCore`. Create it with :func:`start_shard` (sets restarts and placement).

    The constructor starts the pipeline at once, so when Ray restarts the actor after a crash
    (``max_restarts``) its cameras resume from the saved state without anyone calling it.
    """

    def __init__(self, config: ShardConfig | dict[str, Any], detector_factory: DetectorFactory | None = None) -> None:
        cfg = config if isinstance(config, ShardConfig) else ShardConfig.model_validate(config)
        store = None
        state = None
        if cfg.state_actor:
            import ray

            store = ray.get_actor(cfg.state_actor, namespace=RAY_NAMESPACE)
            state = ray.get(store.get.remote(cfg.shard_id), timeout=30) or {}
            state["starts"] = ray.get(store.bump_restarts.remote(cfg.shard_id), timeout=30)
        sink = None
        if cfg.sink_actor:
            import ray

            sink_handle = ray.get_actor(cfg.sink_actor, namespace=RAY_NAMESPACE)

            def sink(events: list[ShardEvent]) -> Any:
                return sink_handle.submit.remote(events)

        self.core = ShardCore(cfg, detector_factory() if detector_factory else None,
                              state_sink=(lambda st: store.put.remote(cfg.shard_id, st)) if store else None,
                              event_sink=sink)
        self.core.restore(state)
        self.core.start()

    def stats(self) -> ShardStats:
        """Current per-camera and per-shard numbers."""
        return self.core.stats()

    def drain_events(self, max_n: int = 10_000) -> list[ShardEvent]:
        """Pending events (alert decisions with evidence crops, health changes)."""
        return self.core.drain_events(max_n)

    def finished(self) -> bool:
        """Whether all (finite) cameras ended and every frame was processed."""
        return self.core.finished()

    def save_state_now(self) -> dict[str, Any]:
        """Save the resume state now and return it."""
        self.core._save_state()
        return self.core.resume_state()

    def stop(self) -> bool:
        """Stop the cameras and threads (the actor stays until killed)."""
        self.core.stop()
        return True

    def pid(self) -> int:
        """The worker process id (tests kill it to simulate a crash)."""
        return os.getpid()


def start_shard(config: ShardConfig, detector_factory: DetectorFactory | None = None, *,
                ray_options: dict[str, Any] | None = None, max_restarts: int = -1) -> Any:
    """Create the :class:`CameraShard` actor for ``config`` with restarts and the given placement options.

    When ``config.state_actor`` is :data:`STATE_ACTOR` the detached state store is created if missing.

    Parameters
    ----------
    config
        The shard's cameras and pipeline settings (kept by Ray, so a restart resumes the same cameras).
    detector_factory
        Builds the detector inside the actor (Serve handles must be made there); None: no detection.
    ray_options
        Placement from ``cluster.sharding.shard_options`` (node affinity or a node resource, the actor name).
    max_restarts
        Ray restarts after a crash (-1: always).

    Returns
    -------
    ray.actor.ActorHandle
        The running shard (its constructor starts the cameras at once).
    """
    import ray

    if config.state_actor == STATE_ACTOR:
        state_store()
    opts: dict[str, Any] = {"num_cpus": 0.5, "max_restarts": max_restarts, "max_task_retries": 0,
                            "namespace": RAY_NAMESPACE}
    opts.update(ray_options or {})
    return ray.remote(CameraShard).options(**opts).remote(config, detector_factory)
