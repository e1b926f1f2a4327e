"""CameraShard: one Ray actor owns N cameras and runs decode -> motion gate -> sample -> downsize -> batch -> detect.

Threads, not luck, keep cameras independent: every camera has its own reader thread (decode, gate and
sampling happen there; PyAV and OpenCV release the GIL while they work), frames that pass go into a small
per-camera queue that **drops the oldest frame** when it is full (and counts it), and one dispatcher thread
with its own asyncio loop takes frames round-robin across cameras into batches and awaits the
:class:`Detector` with at most ``max_inflight`` batches in flight. When the detector is saturated the
queues fill and old frames are dropped: memory is bounded by ``cameras x queue_size + max_inflight x
batch_size`` frames, whatever the detector does.

Results are applied in dispatch order to a per-camera :class:`~actors.tracker.IoUTracker` and a shard-wide
:class:`~actors.tracker.Confirmer`; alert decisions and camera health events go to the shard's *pending
events*. Stream time (``pts``) is used for tracking, so a replay after a restart gives the same track and
alert ids.

Delivery to the alert sink is at least once with exactly-once effect: a deliverer task on the dispatcher
loop sends the pending events in batches and removes them (and marks their alert ids sent) only when the
sink acknowledged the batch (its ``submit`` returns after the records are stored); a failure or a timeout
keeps them, and they are sent again with back-off, without limit. The pending events are part of the resume
state (saved right after an alert is decided), so a crash loses none, and ``stop()`` drains them (what is
still undelivered after ``drain_timeout_s`` stays in the saved state for the next start). The sink
deduplicates by alert id, so the re-sends are harmless. Without a sink the pending events wait for
:meth:`ShardCore.drain_events`.

State that must survive a restart (``max_restarts`` re-runs the constructor) lives outside the actor: the
camera specs are constructor arguments, and a detached :class:`ShardStateStore` actor keeps each shard's
*resume state* (per-camera position of the last frame whose results were delivered, the live tracks, the
confirmer's pending counts and cooldowns, the recent alert ids, and the cameras' open outages). A restarted
shard resumes files and simulated cameras from their position, continues the same tracks and outages, and
keeps suppressing alerts it already raised.

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

from actors import RAY_NAMESPACE
from actors.detectors import Detector, FrameItem
from actors.events import AlertDecisionEvent, ShardEvent, health_event
from actors.motion import MotionGate, MotionGateConfig
from actors.sampler import RateSampler, SamplerConfig
from actors.sources import CameraReader, CameraSpec, Frame, HealthEvent, StreamClock
from actors.tracker import Confirmer, ConfirmerConfig, Detection, IoUTracker, TrackerConfig

log = logging.getLogger(__name__)

STATE_ACTOR = "ssz-shard-state"

# Live runs (``ssz run`` with the models, the latency bench): a queued frame older than this, with a newer one of
# its camera behind it, is dropped (ShardConfig.max_queue_age_s): at most about one sampling period of waiting.
LIVE_MAX_QUEUE_AGE_S = 0.5



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
    max_queue_age_s: float | None = Field(default=None, gt=0, description=(
        "live runs: a queued frame that waited longer than this (s) is dropped (counted as stale) when a newer "
        "frame of its camera waits behind it, so a burst of load costs frames, not seconds of alert latency; "
        "None keeps every queued frame (ignored with block_when_full)"))
    batch_size: int = Field(default=8, ge=1, le=256)
    batch_wait_s: float = Field(default=0.02, ge=0, description="wait this long to fill a batch")
    max_inflight: int = Field(default=2, ge=1, le=64, description="detector calls in flight")
    health_poll_s: float = Field(default=0.5, gt=0)
    state_every_s: float = Field(default=2.0, gt=0, description="save the resume state this often (s)")
    state_actor: str | None = Field(default=None, description="name of the detached ShardStateStore actor")
    sink_actor: str | None = Field(default=None, description="named actor with submit(events) -> ack")
    max_events: int = Field(default=10_000, ge=10, description=(
        "bound of pending events other than alerts (suppressed decisions, health changes: the oldest of those "
        "drop, counted); alerts are never dropped"))
    deliver_batch: int = Field(default=256, ge=1, description="events per sink call")
    deliver_timeout_s: float = Field(default=120.0, gt=0, description=(
        "a sink call unanswered this long is sent again; a busy sink is waited for (sending again would only add "
        "to its work), a dead one fails the call at once and the events are sent again after the back-off"))
    retry_max_s: float = Field(default=5.0, gt=0, description="longest wait between delivery retries (s)")
    drain_timeout_s: float = Field(default=30.0, ge=0, description="stop(): deliver pending events this long at most")
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
    stale: int = Field(default=0, description="of the dropped frames, those that waited past max_queue_age_s")
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
    reader_cpu_s: float = Field(default=0.0, description="CPU seconds of the camera's reader thread: decode (or "
                                                          "draw), motion gate, sampling, downsizing")


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
    events_delivered: int = Field(default=0, description="events the sink acknowledged")
    delivery_failures: int = Field(default=0, description="sink calls that failed or timed out (then retried)")
    detect_busy_s: float = Field(default=0.0, description="seconds spent in detector calls (summed over calls in "
                                                          "flight): over wall time, the detector's utilisation")
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
    stale: int = 0
    processed: int = 0
    detector_errors: int = 0
    detections: int = 0
    alerts: int = 0
    suppressed: int = 0
    position: float | None = None
    clock: StreamClock = field(default_factory=StreamClock)  # epochs of the stream's clock, kept over restarts
    outage: dict[str, float | None] | None = None  # an open outage (offline, alerted) carried over a restart
    geometry: tuple[int, int, int] | None = None  # (width, height, epoch) of the last frame (reader thread)
    tracked: tuple[int, int, int] | None = None  # the same, of the last frame tracked (dispatcher)
    cpu_s: float = 0.0


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

    def clear(self, shard_ids: list[str]) -> int:
        """Forget the states of ``shard_ids`` (a new run starts them afresh; a restart keeps them); returns how
        many were held."""
        return sum(1 for sid in shard_ids if self._state.pop(sid, None) is not None)

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
        # sampling phases k/n spread the cameras' sampled frames over each period (no bursts at the detector)
        self.cams: dict[str, _Camera] = {
            c.id: _Camera(spec=c, gate=MotionGate(config.gate),
                          sampler=RateSampler(config.sampler_by_camera.get(c.id, config.sampler), k / len(ids)),
                          tracker=IoUTracker(c.id, config.tracker), queue=deque(maxlen=config.queue_size))
            for k, c in enumerate(config.cameras)}
        self.confirmer = Confirmer(config.confirmer)
        self._stop = threading.Event()
        self._wake_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []
        # pending events by key, oldest first; kept until the sink acknowledges them (see the module docstring)
        self._pending: dict[str, ShardEvent] = {}
        self._events_lock = threading.Lock()
        self._deliver_wake: asyncio.Event | None = None
        self.events_dropped = 0
        self.events_delivered = 0
        self.delivery_failures = 0
        self.started = time.time()
        self.restarts = 0
        self.batches = 0
        self.batch_items = 0
        self.inflight = 0
        self._detect_ms: deque[float] = deque(maxlen=512)
        self.detect_busy_s = 0.0
        self._checkpoint: asyncio.Future[None] | None = None  # the after-alert checkpoint in flight (loop)
        self._checkpoint_again = False
        self._rr = 0
        self._sent_ids: deque[str] = deque(maxlen=5000)
        self._sent_set: set[str] = set()

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
        for aid in state.get("sent_ids") or []:
            self._mark_sent(aid)
        self._add_pending(list(state.get("pending") or []))
        for cam_id, outage in (state.get("outages") or {}).items():
            if cam_id in self.cams and outage:
                self.cams[cam_id].outage = dict(outage)
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
            # cameras offline now: a restarted shard continues their outage (no second camera-offline alert, and
            # the camera's return closes the alert raised before)
            "outages": {cid: o for cid, c in self.cams.items()
                        if (o := c.reader.health.outage() if c.reader is not None else c.outage) is not None},
            "pending": self.pending_events(),
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
            reader = CameraReader(cam.spec, self._on_frame_cb(cam), clock=cam.clock)
            if cam.outage is not None:
                # only files and simulated cameras replay from the delivered position; a live stream's next frame
                # is new whatever its stream time says
                replays = cam.spec.scheme in ("file", "sim")
                reader.health.resume_outage(cam.outage if replays else {**cam.outage, "last_stream_t": None})
            cam.reader = reader.start()
        for target, name in ((self._health_main, "health"), (self._state_main, "state")):
            th = threading.Thread(target=target, name=f"shard-{self.config.shard_id}-{name}", daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop readers, finish the batches in flight, drain the pending events to the sink (at most
        ``drain_timeout_s``), stop the threads and save the resume state a last time (with what is still
        undelivered)."""
        self._stop.set()
        for cam in self.cams.values():
            with cam.cond:
                cam.cond.notify_all()
            if cam.reader is not None:
                cam.reader.stop(timeout)
        self._kick()
        for t in self._threads:
            t.join(timeout + (self.config.drain_timeout_s if t.name == f"shard-{self.config.shard_id}" else 0))
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
                         time.time(), frame.epoch, (frame.image.shape[1], frame.image.shape[0]), frame.offset)

    def _on_frame_cb(self, cam: _Camera) -> Callable[[Frame], None]:
        def on_frame(frame: Frame) -> None:
            try:
                take(frame)
            finally:
                cam.cpu_s = time.thread_time()  # the reader thread's CPU so far (decode + gate + sample + prepare)

        def take(frame: Frame) -> None:
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
        self._deliver_wake = asyncio.Event()
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
        max_age = None if self.config.block_when_full else self.config.max_queue_age_s
        now = time.time()
        progress = True
        while len(batch) < self.config.batch_size and progress:
            progress = False
            for i in range(len(cams)):
                cam = cams[(self._rr + i) % len(cams)]
                with cam.cond:
                    while max_age is not None and len(cam.queue) > 1 and now - cam.queue[0].t_queued > max_age:
                        cam.queue.popleft()  # stale, and a newer frame of the camera waits behind it
                        cam.dropped += 1
                        cam.stale += 1
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
        done: dict[int, tuple[list[FrameItem], list[list[Detection]] | None, tuple[float, float]]] = {}
        tasks: set[asyncio.Task[None]] = set()
        deliverer = asyncio.create_task(self._deliver_main()) if self._event_sink is not None else None

        async def run(n: int, batch: list[FrameItem]) -> None:
            nonlocal next_apply
            t0 = time.time()
            try:
                res: list[list[Detection]] | None = await self.detector.detect(batch) if self.detector else \
                    [[] for _ in batch]
            except Exception as e:
                log.warning("shard %s: detector failed on a batch of %d: %s", self.config.shard_id, len(batch), e)
                res = None
            t1 = time.time()
            self._detect_ms.append((t1 - t0) * 1000)
            self.detect_busy_s += t1 - t0
            done[n] = (batch, res, (t0, t1))
            # apply in dispatch order so each camera's tracker sees its frames in order
            while next_apply in done:
                b, r, m = done.pop(next_apply)
                next_apply += 1
                await self._apply(b, r, m)
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
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._checkpoint), 10)
        if deliverer is not None:
            deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliverer
            await self._drain()

    async def _apply(self, batch: list[FrameItem], results: list[list[Detection]] | None,
                     model: tuple[float, float] | None = None) -> None:
        """Track, confirm and emit events for a finished batch; then advance the delivered positions.

        ``model`` is the wall-clock (start, end) of the detector call on the batch (Unix s).
        """
        applied = time.time()
        model_s = model[1] - model[0] if model else None
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
                    if dec.alert_id in self._sent_set or self._event_key_alert(dec.alert_id) in self._pending:
                        continue  # raised before a restart: delivered, or still pending
                    cam.alerts += 1
                else:
                    cam.suppressed += 1
                # ``ts`` is wall-clock (when the confirming frame was decoded); the tracker's stream-time
                # fields are kept as ``stream_ts`` / ``first_ts`` (stream time of the track's first match)
                track = cam.tracker.tracks.get(dec.track_id)
                crop = None
                if self.config.keep_crops and dec.decision == "alert":
                    crop = _crop(item, next((d.box for t, d in tracked if t == dec.track_id), None))
                decided = time.time()
                stamps = {"decoded": item.ts, "queued": item.t_queued, "applied": applied, "decided": decided}
                if model:
                    stamps.update(model_start=model[0], model_end=model[1])
                events.append(AlertDecisionEvent(**{**dec.model_dump(), "ts": item.ts}, shard_id=self.config.shard_id,
                                                 stream_ts=dec.ts,
                                                 track_start_pts=round(track.first_ts, 3) if track else None,
                                                 frame_ts=item.ts, frame_pts=item.pts, frame_seq=item.seq,
                                                 decided_at=decided, model_s=model_s, crop=crop, timeline=stamps))
        self._add_pending(events)
        for item in batch:  # the results are pending events now (kept in the resume state): advance positions
            cam = self.cams[item.camera_id]
            if item.pts is not None and (cam.position is None or item.pts > cam.position):
                cam.position = item.pts
        if self._state_sink is not None and any(getattr(e, "decision", None) == "alert" for e in events):
            # an alert was decided: checkpoint it (pending), its cooldown and the positions now, so that a crash
            # neither loses it (the restart re-sends it) nor decides it again
            self._checkpoint_now()

    def _checkpoint_now(self) -> None:
        """Send the resume state to the state store now, on the dispatcher loop, without waiting for its answer.

        Waiting made every later frame queue behind the store's round trip and bought nothing: the state is
        taken and sent at the same moment either way, saves leave this loop in order, and Ray runs one caller's
        calls to an actor in order. While one checkpoint is unanswered, further alerts make one more when it
        returns (with everything decided meanwhile), so a slow store is not flooded.
        """
        if self._checkpoint is not None and not self._checkpoint.done():
            self._checkpoint_again = True
            return
        self._checkpoint_again = False
        try:
            r = self._state_sink(self.resume_state()) if self._state_sink is not None else None
        except Exception as e:
            log.warning("shard %s: saving the resume state after an alert failed: %s", self.config.shard_id, e)
            return
        self._checkpoint = asyncio.ensure_future(self._checkpoint_answer(r))

    async def _checkpoint_answer(self, r: Any) -> None:
        try:
            if isinstance(r, Awaitable):
                await r
        except Exception as e:
            log.warning("shard %s: saving the resume state after an alert failed: %s", self.config.shard_id, e)
        self._checkpoint = None
        if self._checkpoint_again:
            self._checkpoint_now()

    @staticmethod
    def _to_source(d: Detection, item: FrameItem) -> Detection:
        x1, y1, x2, y2 = d.box
        s, (ox, oy) = item.scale, item.offset
        return Detection((x1 / s + ox, y1 / s + oy, x2 / s + ox, y2 / s + oy), d.score, d.label, d.subject_id,
                         d.match_score)

    # --- delivery (at least once; see the module docstring) ---------------------------------------------

    @staticmethod
    def _event_key_alert(alert_id: str) -> str:
        return f"alert:{alert_id}"

    @classmethod
    def _event_key(cls, ev: ShardEvent) -> str:
        if isinstance(ev, AlertDecisionEvent):
            return cls._event_key_alert(ev.alert_id) if ev.decision == "alert" else \
                f"{ev.decision}:{ev.alert_id}"
        return f"health:{ev.camera_id}:{ev.kind}:{ev.ts!r}"

    def _mark_sent(self, alert_id: str) -> None:
        if len(self._sent_ids) == self._sent_ids.maxlen:
            self._sent_set.discard(self._sent_ids[0])
        self._sent_ids.append(alert_id)
        self._sent_set.add(alert_id)

    def _add_pending(self, events: Sequence[ShardEvent]) -> None:
        """Keep events until the sink acknowledges them; over ``max_events``, the oldest non-alerts drop."""
        if not events:
            return
        with self._events_lock:
            for ev in events:
                self._pending[self._event_key(ev)] = ev
            excess = len(self._pending) - self.config.max_events
            if excess > 0:
                for k in [k for k in self._pending if not k.startswith("alert:")][:excess]:
                    del self._pending[k]
                    self.events_dropped += 1
        wake, loop = self._deliver_wake, self._loop
        if wake is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def pending_events(self) -> list[ShardEvent]:
        """Events not acknowledged by the sink yet, oldest first."""
        with self._events_lock:
            return list(self._pending.values())

    async def _send_pending(self, timeout_s: float | None = None) -> bool:
        """One sink call with up to ``deliver_batch`` pending events; True when they were acknowledged within
        ``timeout_s`` (default ``deliver_timeout_s``)."""
        assert self._event_sink is not None
        with self._events_lock:
            keys = list(self._pending)[: self.config.deliver_batch]
            events = [self._pending[k] for k in keys]
        if not events:
            return True
        sent = time.time()
        for ev in events:
            if isinstance(ev, AlertDecisionEvent) and ev.decision == "alert":
                ev.timeline["sent"] = sent  # the last attempt's: the one the sink acknowledges
        try:
            r = self._event_sink(events)
            if isinstance(r, Awaitable):
                await asyncio.wait_for(asyncio.ensure_future(r), timeout_s or self.config.deliver_timeout_s)
        except Exception as e:  # sink down, restarting, slow or failing: keep them, try again
            self.delivery_failures += 1
            log.warning("shard %s: delivering %d events failed (kept, retried): %s", self.config.shard_id,
                        len(events), str(e).splitlines()[0] if str(e) else type(e).__name__)
            return False
        with self._events_lock:
            for k, ev in zip(keys, events, strict=True):
                if self._pending.get(k) is ev:
                    del self._pending[k]
                if isinstance(ev, AlertDecisionEvent) and ev.decision == "alert":
                    self._mark_sent(ev.alert_id)
            self.events_delivered += len(events)
        return True

    async def _deliver_main(self) -> None:
        """Send pending events as they come; on failure back off (0.1 s doubling to ``retry_max_s``), forever."""
        assert self._deliver_wake is not None
        wait = 0.1
        while True:
            if not self._pending:
                self._deliver_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._deliver_wake.wait(), 0.5)
                continue
            if await self._send_pending():
                wait = 0.1
            else:
                await asyncio.sleep(wait)
                wait = min(self.config.retry_max_s, wait * 2)

    async def _drain(self) -> None:
        """At stop: deliver what is pending, for at most ``drain_timeout_s``."""
        deadline = time.monotonic() + self.config.drain_timeout_s
        wait = 0.1
        while self._pending and time.monotonic() < deadline:
            if not await self._send_pending(max(0.1, deadline - time.monotonic())):
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                wait = min(self.config.retry_max_s, wait * 2)
        if self._pending:
            log.warning("shard %s: %d events still undelivered at stop: kept in the resume state",
                        self.config.shard_id, len(self._pending))

    # --- health and resume state ----------------------------------------------------------------------

    def _health_main(self) -> None:
        while not self._stop.wait(self.config.health_poll_s):
            evs: list[HealthEvent] = []
            for cam in self.cams.values():
                # a finite source that played to its end is not offline (what it raised before still goes out)
                if cam.reader is not None:
                    evs += cam.reader.health.drain() if cam.reader.stats.finished else cam.reader.health.poll()
            if evs:
                self._add_pending([health_event(self.config.shard_id, e) for e in evs])

    async def _save_on_loop(self) -> None:
        assert self._state_sink is not None
        r = self._state_sink(self.resume_state())
        if isinstance(r, Awaitable):
            await r

    def _save_state(self) -> None:
        if self._state_sink is None:
            return
        try:
            loop = self._loop
            if loop is not None and loop.is_running():
                # taken *and sent* on the dispatcher loop: a consistent state, and saved in the order the states
                # were taken (one sent from this thread could overtake, and overwrite, a newer one saved by
                # ``_apply`` right after an alert)
                asyncio.run_coroutine_threadsafe(self._save_on_loop(), loop).result(timeout=30)
            else:
                self._state_sink(self.resume_state())
        except Exception as e:
            log.warning("shard %s: saving the resume state failed: %s", self.config.shard_id, e)

    def _state_main(self) -> None:
        while not self._stop.wait(self.config.state_every_s):
            self._save_state()

    # --- queries ----------------------------------------------------------------------------------------

    def drain_events(self, max_n: int = 10_000) -> list[ShardEvent]:
        """Take up to ``max_n`` pending events (alert decisions and health changes), oldest first: the way to
        read them from a shard without a sink (the caller now owns them; their alerts count as sent)."""
        with self._events_lock:
            keys = list(self._pending)[:max_n]
            out = [self._pending.pop(k) for k in keys]
        for ev in out:
            if isinstance(ev, AlertDecisionEvent) and ev.decision == "alert":
                self._mark_sent(ev.alert_id)
        return out

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
                queued=len(c.queue), dropped=c.dropped, stale=c.stale, processed=c.processed,
                detector_errors=c.detector_errors,
                detections=c.detections, alerts=c.alerts, suppressed=c.suppressed,
                reconnects=r.stats.reconnects if r else 0, corrupt=r.corrupt if r else 0,
                last_error=r.stats.last_error if r else None,
                last_frame_age_s=round(now - lf, 3) if lf is not None else None, position_pts=c.position,
                reader_cpu_s=round(c.cpu_s, 4)))
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
                          inflight=self.inflight, events_pending=len(self._pending),
                          events_dropped=self.events_dropped, events_delivered=self.events_delivered,
                          delivery_failures=self.delivery_failures, detect_busy_s=round(self.detect_busy_s, 3),
                          cameras=cams)

    def finished(self) -> bool:
        """True when every camera's reader ended (finite files) and all queued frames were processed."""
        return all(c.reader is not None and not c.reader.alive for c in self.cams.values()) \
            and self._queued() == 0 and self.inflight == 0 and (self._event_sink is None or not self._pending)


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
