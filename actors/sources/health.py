"""Camera health: frame arrival times become states (``starting``, ``online``, ``offline`` after a grace time
without frames, ``recovered`` when frames return, ``failed`` on a permanent error) and :class:`HealthEvent`s
that the shard turns into ``camera-offline`` alerts and recovery events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel

from serve.redact import redact


class HealthState(StrEnum):
    """Camera health as the CCOC sees it."""

    starting = "starting"
    online = "online"
    offline = "offline"
    recovered = "recovered"
    failed = "failed"


class HealthEvent(BaseModel):
    """A change of camera health; ``kind`` ``camera-offline`` becomes an alert, ``camera-recovered`` closes it,
    ``camera-reconfigured`` says the stream changed its picture size or restarted its clock (``detail``)."""

    camera_id: str
    kind: Literal["camera-offline", "camera-recovered", "camera-failed", "camera-reconfigured"]
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
        self.last_stream_t: float | None = None  # stream time of the last frame (continued over restarts)
        self._replay_until: float | None = None  # a resumed outage: frames up to this stream time are replays
        self.offline_since: float | None = None
        self.recovered_at: float | None = None
        self.detail: str | None = None
        self.offline_count = 0
        self._events: list[HealthEvent] = []

    def on_frame(self, ts: float | None = None, stream_t: float | None = None) -> None:
        """Record a frame arrival (at ``ts`` or now) of stream time ``stream_t`` (s, when known).

        After :meth:`resume_outage`, frames up to the outage's last stream time are replays of what came before
        it (a restarted reader resumes from the last delivered position): they neither end the outage nor count.
        """
        now = self._clock() if ts is None else ts
        with self._lock:
            if self._replay_until is not None and stream_t is not None and stream_t <= self._replay_until + 1e-6:
                return
            self._replay_until = None
            if stream_t is not None:
                self.last_stream_t = stream_t
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

    def outage(self) -> dict[str, float | None] | None:
        """The open outage to carry over a restart of the process that watches the camera: ``offline_since`` and
        ``last_frame`` (Unix s; None before any frame) and ``last_stream_t`` (stream time of the last frame before
        it), or None while the camera is not offline."""
        with self._lock:
            if self.state != HealthState.offline:
                return None
            return {"offline_since": self.offline_since, "last_frame": self.last_frame,
                    "last_stream_t": self.last_stream_t}

    def resume_outage(self, outage: dict[str, float | None]) -> None:
        """Continue an outage that an earlier watchdog of this camera raised (see :meth:`outage`): the camera is
        offline at once, without raising ``camera-offline`` again, and its first frame after the outage (replays
        of earlier stream time do not count) raises ``camera-recovered`` (which closes the alert raised before)."""
        with self._lock:
            self.state = HealthState.offline
            self.offline_since = outage.get("offline_since") or self.started
            self.last_frame = outage.get("last_frame")
            self.last_stream_t = self._replay_until = outage.get("last_stream_t")

    def on_reconfigured(self, detail: str, ts: float | None = None) -> None:
        """The stream changed (picture size, or its clock went back: a new epoch); ``detail`` says how."""
        with self._lock:
            self._events.append(HealthEvent(camera_id=self.camera_id, kind="camera-reconfigured",
                                            ts=self._clock() if ts is None else ts, last_frame_ts=self.last_frame,
                                            detail=detail))

    def on_error(self, detail: str, permanent: bool = False) -> None:
        """Remember the last error (shown in status); a permanent one marks the camera ``failed``."""
        detail = redact(detail)  # errors from the decoder may quote the camera URL with its password
        with self._lock:
            self.detail = detail
            if permanent and self.state != HealthState.failed:
                self.state = HealthState.failed
                self._events.append(HealthEvent(camera_id=self.camera_id, kind="camera-failed", ts=self._clock(),
                                                last_frame_ts=self.last_frame, detail=detail))

    def drain(self) -> list[HealthEvent]:
        """The events raised since the last poll, without advancing the state (a stream that played to its end)."""
        with self._lock:
            events, self._events = self._events, []
            return events

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
