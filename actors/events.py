"""What a camera shard sends to the alert sink: typed events, one pydantic union discriminated on ``type``.

* :class:`AlertDecisionEvent` (``type: alert-decision``): the confirmer decided on a track that matched a
  listed subject: an alert, or one suppressed by the cooldown or by a neighbouring camera (audited, not
  written). It carries the evidence crop of an alert and the stream time of the track's first frame
  (``track_start_pts``), so nobody needs to read times out of ids.
* :class:`CameraHealthEvent` (``type: health``): a camera went offline (or failed to open: also an offline
  alert, with the outage's deterministic alert id) or recovered.

:data:`ShardEvent` is the union; :func:`parse_events` validates a batch (events built as dicts, e.g. by tests or
another language, become the same models).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter

from actors.sources.health import HealthEvent
from actors.tracker import AlertDecision
from twin.kinds import AlertKind
from twin.schemas import alert_id as twin_alert_id

# The shard's stamps on an alert's confirming frame, in order (:attr:`AlertDecisionEvent.timeline`): decoded, passed
# gate + sampler + downsize (queued for the detector), model call start and end, results applied (tracker), alert
# decided (confirmer), handed to the sink (the deliverer's call that was acknowledged).
TIMELINE_STAGES = ("decoded", "queued", "model_start", "model_end", "applied", "decided", "sent")

# Health changes that raise a ``camera-offline`` alert (a camera that cannot even be opened is offline too).
OFFLINE_KINDS = ("camera-offline", "camera-failed")


class AlertDecisionEvent(AlertDecision):
    """A confirmer decision as the shard sends it: the decision plus where and when its frame came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    type: Literal["alert-decision"] = "alert-decision"
    shard_id: str = Field(default="", description="the shard that decided")
    ts: float = Field(description="wall-clock time (Unix s) at which the confirming frame was decoded")
    stream_ts: float | None = Field(default=None, description="stream time (s) of the confirming frame")
    track_start_pts: float | None = Field(default=None, description=(
        "stream time (s) of the track's first frame, on the camera's clock (Unix time for simulated cameras)"))
    frame_ts: float | None = Field(default=None, description="wall-clock decode time of the confirming frame")
    frame_pts: float | None = Field(default=None, description="stream time of the confirming frame")
    frame_seq: int | None = Field(default=None, description="the confirming frame's number in its stream")
    decided_at: float | None = Field(default=None, description="wall-clock time of the decision")
    model_s: float | None = Field(default=None, description="seconds the confirming frame's batch spent in the "
                                                         "detector (model time, for latency breakdowns)")
    crop: np.ndarray | None = Field(default=None, description="evidence: RGB uint8 crop (H, W, 3) of an alert")
    timeline: dict[str, float] = Field(default={}, description=(
        "wall-clock stamps (Unix s) of the confirming frame on its way, for latency breakdowns: "
        f"{', '.join(TIMELINE_STAGES)} (the shard's); the sink adds its own"))


class CameraHealthEvent(HealthEvent):
    """A camera health change as the shard sends it; an offline one carries its outage's alert id."""

    type: Literal["health"] = "health"
    shard_id: str = Field(default="", description="the shard that watches the camera")
    alert_id: str | None = Field(default=None, description="the twin alert id of an offline camera's outage")


ShardEvent = Annotated[AlertDecisionEvent | CameraHealthEvent, Field(discriminator="type")]
_EVENTS: TypeAdapter[list[ShardEvent]] = TypeAdapter(list[ShardEvent])


def parse_events(events: list[ShardEvent | dict[str, Any]]) -> list[ShardEvent]:
    """A batch of events as models (dicts are validated; models pass through).

    Raises
    ------
    pydantic.ValidationError
        An event of an unknown ``type`` or with missing fields.
    """
    if all(isinstance(e, AlertDecisionEvent | CameraHealthEvent) for e in events):
        return list(events)  # type: ignore[arg-type]
    return _EVENTS.validate_python([e if isinstance(e, dict) else e.model_dump() for e in events])


def health_event(shard_id: str, e: HealthEvent) -> CameraHealthEvent:
    """A health change as a shard event; ``camera-offline`` (and ``camera-failed``) carry the twin alert id of
    the outage.

    The id is built from the camera and the time of the last frame before the outage (to the second), so the
    same outage seen twice gives the same id.
    """
    alert = None
    if e.kind in OFFLINE_KINDS:
        since = e.last_frame_ts if e.last_frame_ts is not None else e.ts - (e.offline_for_s or 0.0)
        alert = twin_alert_id(e.camera_id, AlertKind.camera_offline, None, f"offline@{int(since)}")
    return CameraHealthEvent(shard_id=shard_id, alert_id=alert, **e.model_dump())
