"""Camera sources behind one interface: RTSP/HTTP/file streams through PyAV, and a simulated camera.

* :class:`CameraSpec` describes a camera (id, URL, options); it is what a shard receives and what must be
  persisted outside the actor, so a restarted shard re-opens the same cameras.
* :class:`CameraSource` is the interface: ``open()``, ``frames()`` (an iterator of :class:`Frame`, each a
  contiguous RGB ``uint8`` array with a wall-clock timestamp), ``close()``.
  :class:`PyAVSource` decodes ``rtsp://``, ``rtsps://``, ``http(s)://`` and files; :class:`SimulatedSource`
  draws deterministic synthetic frames (a static street with people-sized blobs walking through it), or
  loops a video file.
* :class:`CameraReader` runs one camera on its own thread: it reconnects with exponential back-off,
  relies on PyAV's read timeout as a watchdog for stalled sockets, skips and counts corrupt packets and
  hands frames to a callback. One bad camera therefore never blocks another.
* :class:`CameraHealth` turns frame arrival times into states (``starting``, ``online``, ``offline`` after a
  grace time without frames, ``recovered`` when frames return) and emits :class:`HealthEvent`s that the shard
  turns into ``camera-offline`` alerts and recovery events.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors.simscript import SimScript
from serve.redact import redact

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")


class SourceError(RuntimeError):
    """A camera source failed. ``permanent`` errors (bad URL, missing file) are not retried. The message never
    holds URL credentials (``rtsp://user:pass@`` becomes ``rtsp://***@``)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(redact(message))
        self.permanent = permanent


class CameraSpec(BaseModel):
    """One camera as a shard opens it. Kept outside the actor so that a restarted shard resumes it."""

    # hide_input_in_errors: a validation error must not echo a URL with its password
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    url: str = Field(description="rtsp://, rtsps://, http(s)://, a file path or file://, or sim://<name>")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    loop: bool = Field(default=False, description="files and simulated video: start over at the end")
    realtime: bool = Field(default=False, description="files and sim: pace frames at the stream's frame rate")
    fps: float = Field(default=10.0, gt=0, le=120, description="frame rate of simulated cameras / paced files")
    width: int | None = Field(default=None, gt=15, description="decode-time downscale to this width (keeps aspect)")
    open_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0, description="watchdog: a read stalled this long reconnects")
    grace_s: float = Field(default=10.0, gt=0, description="no frames this long => camera-offline")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    seed: int = 0
    sim_video: str | None = Field(default=None, description="sim://: loop this video file instead of drawing")
    sim_size: tuple[int, int] = (320, 240)
    sim_outages: list[tuple[float, float]] = Field(
        default=[], description="sim://: (start_s, end_s) windows after start in which the camera sends nothing")
    sim_script: SimScript | None = Field(
        default=None, description="sim://: play this scenario script (actors.simcam) instead of drawing blobs")
    max_frames: int | None = Field(default=None, gt=0, description="stop after this many frames (tests, benches)")
    start_pts: float | None = Field(default=None, ge=0, description="files and sim: resume at this stream time (s)")

    @model_validator(mode="after")
    def _check_url(self) -> CameraSpec:
        kind = self.kind
        if kind == "unsupported":
            raise ValueError(f"camera {self.id}: unsupported URL {redact(self.url)!r}; use rtsp://host/path, "
                             "http(s)://host/path, a video file path (or file://), or sim://<name>")
        if kind in NETWORK_SCHEMES and not urlparse(self.url).hostname:
            raise ValueError(f"camera {self.id}: URL {redact(self.url)!r} has no host; expected e.g. "
                             "rtsp://10.0.0.5:554/stream1")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self

    @property
    def kind(self) -> str:
        """``rtsp``, ``rtsps``, ``http``, ``https``, ``file``, ``sim`` or ``unsupported``."""
        u = urlparse(self.url)
        if u.scheme in NETWORK_SCHEMES or u.scheme == "sim":
            return u.scheme
        if u.scheme in ("", "file") or (len(u.scheme) == 1 and self.url[1:3] == ":\\"):
            return "file"
        return "unsupported"

    @property
    def path(self) -> str:
        """Local path of a file camera (``file://`` stripped)."""
        return urlparse(self.url).path if self.url.startswith("file://") else self.url


@dataclass(slots=True)
class Frame:
    """One decoded frame: contiguous RGB uint8 ``(H, W, 3)``, wall-clock ``ts`` and stream time ``pts`` (s)."""

    camera_id: str
    seq: int
    ts: float
    pts: float | None
    image: np.ndarray


@dataclass
class SourceStats:
    """Counters of one source (summed over reconnects by :class:`CameraReader`)."""

    decoded: int = 0
    corrupt: int = 0
    reconnects: int = 0
    last_error: str | None = None


class CameraSource(ABC):
    """A camera: ``open()``, iterate ``frames()``, ``close()``. Not thread-safe; one reader thread each."""

    def __init__(self, spec: CameraSpec) -> None:
        self.spec = spec
        self.stats = SourceStats()
        self._seq = 0
        self._stop = threading.Event()

    @abstractmethod
    def open(self) -> None:
        """Connect / open the stream; raises :class:`SourceError` with a clear message on failure."""

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames until the stream ends, :meth:`stop` is called, or an error is raised."""

    def close(self) -> None:
        """Release the stream (idempotent); the base class only stops iteration."""
        self._stop.set()

    def stop(self) -> None:
        """Ask :meth:`frames` to return at the next frame (callable from another thread)."""
        self._stop.set()

    def _frame(self, image: np.ndarray, pts: float | None) -> Frame:
        self._seq += 1
        self.stats.decoded += 1
        return Frame(self.spec.id, self._seq, time.time(), pts, np.ascontiguousarray(image, dtype=np.uint8))

    def __enter__(self) -> CameraSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scaled_size(w: int, h: int, width: int | None) -> tuple[int, int]:
    if not width or width >= w:
        return w, h
    return width, max(2, round(h * width / w / 2) * 2)


class PyAVSource(CameraSource):
    """RTSP / HTTP / file decoding with PyAV (FFmpeg). Corrupt packets are skipped and counted."""

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self._container: object | None = None

    def open(self) -> None:
        """Open the container; network URLs get the transport and socket timeouts, files must exist."""
        import av

        spec = self.spec
        options: dict[str, str] = {}
        target = spec.url
        if spec.kind == "file":
            target = spec.path
            if not Path(target).is_file():
                raise SourceError(f"camera {spec.id}: video file {target!r} does not exist", permanent=True)
        elif spec.kind in ("rtsp", "rtsps"):
            options = {"rtsp_transport": spec.rtsp_transport, "timeout": str(int(spec.read_timeout_s * 1e6))}
        elif spec.kind in ("http", "https"):
            options = {"rw_timeout": str(int(spec.read_timeout_s * 1e6)), "reconnect": "0"}
        try:
            self._container = av.open(target, options=options, timeout=(spec.open_timeout_s, spec.read_timeout_s))
        except av.error.InvalidDataError as e:
            raise SourceError(f"camera {spec.id}: {target!r} is not a decodable video stream ({e})",
                              permanent=spec.kind == "file") from e
        except (av.error.FFmpegError, OSError) as e:
            raise SourceError(f"camera {spec.id}: cannot open {target!r}: {e}") from e
        if not self._container.streams.video:  # type: ignore[attr-defined]
            self.close()
            raise SourceError(f"camera {spec.id}: {target!r} has no video stream", permanent=spec.kind == "file")

    def frames(self) -> Iterator[Frame]:
        """Demux and decode packet by packet; loop files when asked; pace files when ``realtime``."""
        import av

        if self._container is None:
            raise SourceError(f"camera {self.spec.id}: frames() before open()")
        container = self._container
        stream = container.streams.video[0]  # type: ignore[attr-defined]
        stream.thread_type = "AUTO"
        size: tuple[int, int] | None = None
        t0: float | None = None
        pts0: float | None = None
        offset = 0.0
        last_pts = 0.0
        skip_until = self.spec.start_pts if self.spec.kind == "file" else None
        if skip_until:
            dur = float(container.duration) / 1e6 if container.duration else None  # type: ignore[attr-defined]
            if self.spec.loop and dur:
                laps = int(skip_until // dur)
                offset = laps * dur  # a lap lasts the duration: last pts + one frame
                skip_until -= offset
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(int(skip_until * 1e6))  # type: ignore[attr-defined]
        while True:
            for packet in container.demux(stream):  # type: ignore[attr-defined]
                if self._stop.is_set():
                    return
                if packet.is_corrupt:
                    self.stats.corrupt += 1
                    continue
                try:
                    decoded = packet.decode()
                except (av.error.InvalidDataError, av.error.UndefinedError, ValueError) as e:
                    self.stats.corrupt += 1
                    self.stats.last_error = redact(f"corrupt packet skipped: {e}")
                    continue
                for f in decoded:
                    if f.is_corrupt:  # decoded with concealed errors: skip it rather than feed garbage on
                        self.stats.corrupt += 1
                        continue
                    if size is None:
                        size = _scaled_size(f.width, f.height, self.spec.width)
                    img = f.to_ndarray(format="rgb24", width=size[0], height=size[1])
                    if skip_until is not None and f.time is not None and float(f.time) < skip_until - 1e-6:
                        continue  # resuming: decode from the key frame before the checkpoint, emit after it
                    skip_until = None
                    pts = (float(f.time) + offset) if f.time is not None else None
                    if pts is not None:
                        last_pts = pts
                    if self.spec.realtime and pts is not None:
                        if t0 is None or pts0 is None:
                            t0, pts0 = time.monotonic(), pts
                        wait = (pts - pts0) - (time.monotonic() - t0)
                        if wait > 0 and self._stop.wait(wait):
                            return
                    yield self._frame(img, pts)
                    if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                        return
            if not (self.spec.loop and self.spec.kind == "file"):
                return
            container.seek(0)  # type: ignore[attr-defined]
            offset = last_pts + 1.0 / self.spec.fps

    def close(self) -> None:
        """Close the container (idempotent)."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()  # type: ignore[attr-defined]
            self._container = None


class SimulatedSource(CameraSource):
    """A deterministic synthetic camera: a static textured street and walkers, or a looped video file.

    Frames depend only on ``seed`` and the frame number, so tests and benchmarks are reproducible.
    ``sim_outages`` makes the camera go silent in given windows (to exercise offline alerts).
    """

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self._video: PyAVSource | None = None
        self._bg: np.ndarray | None = None

    def open(self) -> None:
        """Prepare the background (or open the looped video)."""
        if self.spec.sim_video:
            vspec = self.spec.model_copy(update={"url": self.spec.sim_video, "loop": True})
            self._video = PyAVSource(vspec)
            self._video.open()
            return
        w, h = self.spec.sim_size
        rng = np.random.default_rng(self.spec.seed)
        yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
        base = 90 + 60 * (yy / h)[..., None] + rng.normal(0, 6, (h, w, 1)).astype(np.float32)
        tint = np.array([1.0, 0.95, 0.85], np.float32) * (0.9 + 0.2 * rng.random(3, dtype=np.float32))
        bg = np.clip(base * tint, 0, 255).astype(np.uint8)
        bg[int(h * 0.6):int(h * 0.62), :] = 200  # a kerb line
        self._bg = np.ascontiguousarray(bg)

    def draw(self, n: int) -> np.ndarray:
        """Frame ``n`` (0-based): background plus the walkers visible at that time (deterministic)."""
        assert self._bg is not None
        img = self._bg.copy()
        w, h = self.spec.sim_size
        period = int(self.spec.fps * 12)  # a walker enters every 12 s and takes 6 s to cross
        for k in range(n // period - 1, n // period + 1):
            if k < 0:
                continue
            r = random.Random(f"{self.spec.seed}:{k}")
            start = k * period + r.randrange(period // 2)
            life = int(self.spec.fps * 6)
            if not start <= n < start + life:
                continue
            frac = (n - start) / life
            bw, bh = max(4, w // 12), max(8, h // 4)
            x = int(-bw + frac * (w + bw)) if r.random() < 0.5 else int(w - frac * (w + bw))
            y = r.randrange(h // 4, h - bh)
            color = [r.randrange(0, 255) for _ in range(3)]
            img[y:y + bh, max(0, x):max(0, min(w, x + bw))] = color
        return img

    def frames(self) -> Iterator[Frame]:
        """Yield frames at ``fps`` (if ``realtime``), silent during outages; forever unless ``max_frames``."""
        if self._video is not None:
            for f in self._video.frames():
                if self._stop.is_set():
                    return
                self.stats.decoded += 1
                self._seq += 1
                yield Frame(self.spec.id, self._seq, f.ts, f.pts, f.image)
                if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                    return
            return
        t0 = time.monotonic()
        n = math.ceil((self.spec.start_pts or 0.0) * self.spec.fps - 1e-6)  # first frame at/after start_pts
        t0 -= n / self.spec.fps
        while not self._stop.is_set():
            t = n / self.spec.fps
            if self.spec.realtime:
                wait = t - (time.monotonic() - t0)
                if wait > 0 and self._stop.wait(wait):
                    return
            silent = any(a <= t < b for a, b in self.spec.sim_outages)
            if not silent:
                yield self._frame(self.draw(n), t)
                if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                    return
            n += 1

    def close(self) -> None:
        """Close the looped video, if any."""
        if self._video is not None:
            self._video.close()
            self._video = None


def make_source(spec: CameraSpec) -> CameraSource:
    """The source implementation for a spec's URL scheme (a ``sim://`` spec with a script plays the scenario)."""
    if spec.kind == "sim" and spec.sim_script is not None:
        from actors.simcam import ScenarioSource

        return ScenarioSource(spec)
    return SimulatedSource(spec) if spec.kind == "sim" else PyAVSource(spec)


class HealthState(StrEnum):
    """Camera health as the CCOC sees it."""

    starting = "starting"
    online = "online"
    offline = "offline"
    recovered = "recovered"
    failed = "failed"


class HealthEvent(BaseModel):
    """A change of camera health; ``kind`` ``camera-offline`` becomes an alert, ``camera-recovered`` closes it."""

    camera_id: str
    kind: Literal["camera-offline", "camera-recovered", "camera-failed"]
    ts: float
    last_frame_ts: float | None = None
    offline_for_s: float | None = None
    detail: str | None = None


class CameraHealth:
    """Frame-arrival watchdog of one camera (thread-safe).

    ``offline`` after ``grace_s`` without frames (or ``startup_grace_s`` when the camera never delivered one:
    connecting takes a few seconds), ``recovered`` on the first frame after that, ``online`` again once
    frames flowed for another ``grace_s``.
    """

    def __init__(self, camera_id: str, grace_s: float, *, startup_grace_s: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.camera_id = camera_id
        self.grace_s = grace_s
        self.startup_grace_s = grace_s if startup_grace_s is None else startup_grace_s
        self._clock = clock
        self._lock = threading.Lock()
        self.state = HealthState.starting
        self.started = clock()
        self.last_frame: float | None = None
        self.offline_since: float | None = None
        self.recovered_at: float | None = None
        self.detail: str | None = None
        self.offline_count = 0
        self._events: list[HealthEvent] = []

    def on_frame(self, ts: float | None = None) -> None:
        """Record a frame arrival (at ``ts`` or now)."""
        now = self._clock() if ts is None else ts
        with self._lock:
            if self.state == HealthState.offline:
                since = self.offline_since or now
                self._events.append(HealthEvent(camera_id=self.camera_id, kind="camera-recovered", ts=now,
                                                last_frame_ts=self.last_frame, offline_for_s=now - since))
                self.state = HealthState.recovered
                self.recovered_at = now
                self.offline_since = None
            elif self.state == HealthState.starting:
                self.state = HealthState.online
            self.last_frame = now

    def on_error(self, detail: str, permanent: bool = False) -> None:
        """Remember the last error (shown in status); a permanent one marks the camera ``failed``."""
        detail = redact(detail)  # errors from the decoder may quote the camera URL with its password
        with self._lock:
            self.detail = detail
            if permanent and self.state != HealthState.failed:
                self.state = HealthState.failed
                self._events.append(HealthEvent(camera_id=self.camera_id, kind="camera-failed", ts=self._clock(),
                                                last_frame_ts=self.last_frame, detail=detail))

    def poll(self, now: float | None = None) -> list[HealthEvent]:
        """Advance the state machine to ``now`` and return (and clear) the events raised since the last poll."""
        now = self._clock() if now is None else now
        with self._lock:
            ref = self.last_frame if self.last_frame is not None else self.started
            grace = self.startup_grace_s if self.state == HealthState.starting else self.grace_s
            if self.state in (HealthState.starting, HealthState.online, HealthState.recovered) \
                    and now - ref >= grace:
                self.state = HealthState.offline
                self.offline_since = ref
                self.offline_count += 1
                self._events.append(HealthEvent(camera_id=self.camera_id, kind="camera-offline", ts=now,
                                                last_frame_ts=self.last_frame, offline_for_s=now - ref,
                                                detail=self.detail))
            elif self.state == HealthState.recovered and self.recovered_at is not None \
                    and now - self.recovered_at >= self.grace_s:
                self.state = HealthState.online
            events, self._events = self._events, []
            return events


@dataclass
class ReaderStats:
    """What :class:`CameraReader` reports: frames, corrupt packets, reconnects, errors, health."""

    decoded: int = 0
    corrupt: int = 0
    reconnects: int = 0
    last_error: str | None = None
    finished: bool = False
    started: float = field(default_factory=time.time)


class CameraReader:
    """Runs one camera on its own daemon thread and hands each frame to ``on_frame``.

    Reconnects with exponential back-off (``backoff_initial_s`` doubling up to ``backoff_max_s``, with
    jitter) after any failure; a permanent error (missing file, unsupported URL) stops it. ``on_frame``
    must be quick (the shard's callback only appends to a bounded queue).
    """

    def __init__(self, spec: CameraSpec, on_frame: Callable[[Frame], None],
                 health: CameraHealth | None = None) -> None:
        self.spec = spec
        self.on_frame = on_frame
        self.health = health or CameraHealth(spec.id, spec.grace_s,
                                             startup_grace_s=spec.grace_s + spec.open_timeout_s)
        self.stats = ReaderStats()
        self._stop = threading.Event()
        self._source: CameraSource | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera-{spec.id}", daemon=True)

    def start(self) -> CameraReader:
        """Start the reader thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading and wait up to ``timeout`` seconds for the thread to end."""
        self._stop.set()
        src = self._source
        if src is not None:
            src.stop()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the reader thread is running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = self.spec.backoff_initial_s
        rng = random.Random(self.spec.id)
        while not self._stop.is_set():
            src = make_source(self.spec)
            self._source = src
            got = 0
            try:
                src.open()
                for frame in src.frames():
                    got += 1
                    self.health.on_frame(frame.ts)
                    self.on_frame(frame)
                    if self._stop.is_set():
                        break
                if self.spec.kind in ("file", "sim") or self.spec.max_frames:
                    self.stats.finished = not self._stop.is_set()
                    return
                self.stats.last_error = "stream ended"
            except SourceError as e:
                self.stats.last_error = str(e)
                self.health.on_error(str(e), permanent=e.permanent)
                if e.permanent:
                    log.error("%s", e)
                    return
            except Exception as e:  # network drops, timeouts, decoder failures: reconnect
                self.stats.last_error = redact(f"{type(e).__name__}: {e}")
                self.health.on_error(self.stats.last_error)
            finally:
                src.close()
                self.stats.decoded += src.stats.decoded
                self.stats.corrupt += src.stats.corrupt
                self._source = None
            if got:
                delay = self.spec.backoff_initial_s
            self.stats.reconnects += 1
            if self._stop.wait(delay * rng.uniform(0.8, 1.0)):
                return
            delay = min(delay * 2, self.spec.backoff_max_s)

    @property
    def decoded(self) -> int:
        """Frames decoded so far, including the current connection."""
        src = self._source
        return self.stats.decoded + (src.stats.decoded if src is not None else 0)

    @property
    def corrupt(self) -> int:
        """Corrupt packets skipped so far, including the current connection."""
        src = self._source
        return self.stats.corrupt + (src.stats.corrupt if src is not None else 0)
