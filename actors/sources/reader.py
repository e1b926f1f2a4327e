"""One camera on its own thread: :class:`CameraReader` opens the camera's source, hands each frame to a
callback, reconnects with exponential back-off (one bad camera never blocks another) and keeps the camera's
:class:`~actors.sources.health.CameraHealth`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.sources.base import CameraSource, CameraSpec, Frame, SourceError, source_for
from actors.sources.geometry import StreamClock
from actors.sources.health import CameraHealth
from serve.redact import redact

log = logging.getLogger(__name__)


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
                 health: CameraHealth | None = None, clock: StreamClock | None = None) -> None:
        self.spec = spec
        self.clock = clock or StreamClock()
        self.size: tuple[int, int] | None = None
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
        delivered: float | None = None  # the source's own stream time of the last frame handed on
        while not self._stop.is_set():
            spec = self.spec
            if delivered is not None and spec.scheme in ("file", "sim"):
                # reconnecting a file: go on after the last frame handed on; from its start, the frames already
                # handed on came again under a new epoch (new track and alert ids: the same people alerted twice)
                spec = spec.model_copy(update={"start_pts": delivered + 1e-3})
            src = source_for(spec)
            self._source = src
            got = 0
            try:
                src.open()
                for frame in src.frames():
                    got += 1
                    own = frame.pts
                    self._stamp(frame)
                    self.health.on_frame(frame.ts, frame.pts + frame.offset if frame.pts is not None else None)
                    self.on_frame(frame)
                    if own is not None:
                        delivered = own
                    if self._stop.is_set():
                        break
                if self.spec.scheme in ("file", "sim") or self.spec.max_frames:
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

    def _stamp(self, frame: Frame) -> None:
        """Give the frame its epoch (and a stream time when it has none after timed frames); report a change of
        picture size or a restart of the stream's clock as ``camera-reconfigured``."""
        old = self.clock.last_pts
        frame.pts, frame.epoch, frame.offset, restarted = self.clock.stamp(frame.pts, frame.ts)
        if restarted:
            self.health.on_reconfigured(f"stream time went back from {old:.3f} s to {frame.pts:.3f} s (a restarted "
                                        f"stream): epoch {frame.epoch}, tracks start again", frame.ts)
        size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
        if self.size is not None and size != self.size:
            self.health.on_reconfigured(f"picture size changed from {self.size[0]}x{self.size[1]} to "
                                        f"{size[0]}x{size[1]}: motion gate, sampler and tracks reset", frame.ts)
        self.size = size

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
