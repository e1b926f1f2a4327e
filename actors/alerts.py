"""The alert sink: confirmed track decisions and camera-health events become alerts in the twin.

Shards send event batches (:meth:`AlertSinkCore.submit`, typed in :mod:`actors.events`): ``alert-decision``
events from the tracker's confirmer (with the evidence crop) and ``health`` events from the camera watchdogs.
For each new alert the sink, in this order,

1. stores the evidence crop as JPEG in the object-locked ``evidence`` bucket
   (``alerts/<city>/<date>/<alert_id>.jpg``: nobody can delete it within the retention period),
2. writes the alert record to the ``twin`` bucket (``alerts/<city>/records/<alert_id>.json``; the bucket is
   versioned, so every status change keeps the earlier record),
3. appends an audit event (``alert.raised``; suppressed decisions are audited as ``alert.suppressed``),
4. publishes it on its channels (:mod:`actors.channels`): bounded in-process queues and webhooks (HMAC-signed,
   retried with exponential back-off, failures kept as dead letters).

Delivery is at least once with exactly-once effect: shards keep every event until the sink has acknowledged
it (``submit`` returns after the record is stored) and re-send it after a timeout or a restart, and the sink
deduplicates by the deterministic alert id. A sink that starts (Ray's ``max_restarts`` re-runs the
constructor) rebuilds its index from **one listing** of ``alerts/<city>/`` in the ``twin`` bucket: the record
keys give the ids, ``open/<camera>/<alert id>`` markers the open camera-offline alerts and ``outbox/`` the
webhook items still to deliver; records themselves are read only when asked for (:meth:`AlertSinkCore.alerts`,
a status change). Webhook items are stored before they are sent (:mod:`actors.outbox`), so webhooks are
delivered at least once across restarts, each with a ``delivery_id`` for the receiver to dedupe. Operators
confirm or dismiss alerts with :meth:`AlertSinkCore.set_status`; :meth:`AlertSinkCore.commit` puts the alert
layer into the next twin snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from actors import RAY_NAMESPACE, start_named_actor
from actors.channels import QueueChannel, WebhookConfig
from actors.events import OFFLINE_KINDS, AlertDecisionEvent, CameraHealthEvent, ShardEvent, parse_events
from actors.outbox import WebhookOutbox
from serve.audit import AuditLog, write_ahead
from serve.errors import ConflictError, NotFoundError
from serve.imaging import encode_jpeg
from twin.evidence import put_evidence
from twin.kinds import AlertKind, label_alert_kind
from twin.layers import validate_rows
from twin.objectstore import TWIN_BUCKET, S3Settings, Store, connect_configured

log = logging.getLogger(__name__)

SINK_ACTOR = "ssz-alert-sink"

# What an operator can do to an alert (the CCOC console and POST /v1/alerts/{id}:<action>).
ALERT_ACTIONS = ("acknowledge", "confirm", "dismiss", "assign", "close")


def sink_name(city: str) -> str:
    """The named sink actor of one city (``ssz-alert-sink-<city>``): one owner of each city's alert state."""
    return f"{SINK_ACTOR}-{city}"


class AlertTaken(ConflictError):
    """An alert another operator holds, or a decision another operator made (HTTP 409; the message says who)."""


class AlertActionError(ConflictError):
    """An action that does not fit the alert's state (confirming a dismissed alert, closing an undecided one)."""



class CameraPlace(BaseModel):
    """Where a camera is, so its alerts land on the map and the street graph."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180, description="WGS84 longitude (degrees)")
    lat: float = Field(ge=-90, le=90, description="WGS84 latitude (degrees)")
    edge_u: int | None = Field(default=None, description="street-graph edge start node (OSM id) it stands on")
    edge_v: int | None = Field(default=None, description="street-graph edge end node (OSM id)")
    edge_key: int | None = Field(default=None, ge=0, description="parallel-edge key")
    edge_offset_m: float | None = Field(default=None, ge=0, description="metres from edge_u along the edge")


class AlertSinkConfig(BaseModel):
    """Settings of the alert sink of one city."""

    model_config = ConfigDict(extra="forbid")

    city: str = Field(description="the city id whose alerts this sink writes")
    cameras: dict[str, CameraPlace] = Field(default={}, description="camera id -> where it is (alerts land there "
                                                                      "on the map and the street graph)")
    audit_path: str = Field(description="the audit log file (JSON lines) of alerts raised, suppressed and decided")
    webhooks: list[WebhookConfig] = Field(default=[], description="CCOC endpoints that receive every alert and "
                                                                  "status change")
    subscriber_queue: int = Field(default=1000, ge=1, description="bound of each in-process queue (items, >= 1; "
                                                                  "the oldest drop when nobody polls)")
    jpeg_quality: int = Field(default=90, ge=30, le=100, description="JPEG quality of the evidence crops (30-100)")
    webhook_resend_s: float = Field(default=30.0, gt=0, description="send stored webhook items whose retries ran "
                                                                     "out again this often (s)")
    s3: S3Settings | None = Field(default=None, description="object store; None = SSZ_S3_* from the environment")
    mobile_cameras: list[str] = Field(default=[], description="cameras whose position comes from their GPS feed "
                                                              "(van, drone, body camera)")
    field_actor: str | None = Field(default=None, description="named field store actor (actors.field) that knows "
                                                              "where mobile cameras were; None = registry position")


class AlertStats(BaseModel):
    """Counters of the sink since it started."""

    received: int = 0
    alerts: int = 0
    duplicates: int = 0
    suppressed: int = 0
    health: int = 0
    recovered: int = Field(default=0, description="camera-offline alerts closed by a recovery")
    evidence_stored: int = 0
    evidence_conflicts: int = Field(default=0, description="crops and photos whose key someone else had written "
                                                           "first (other bytes): stored under a content-named key")
    webhook_delivered: int = 0
    webhook_failed: int = 0
    status_changes: int = 0
    index_ids: int = Field(default=0, description="alert ids the sink knew when it started (from one listing)")
    index_s: float = Field(default=0.0, description="seconds the start-up listing took")
    webhook_resent: int = Field(default=0, description="stored webhook items sent again (restart, receiver down)")
    latency_p50_ms: float | None = Field(default=None, description="frame decoded -> alert written, recent alerts")
    latency_p99_ms: float | None = None
    beyond_model_p50_ms: float | None = Field(default=None, description="latency minus the confirming frame's model "
                                                                        "time, recent alerts")
    beyond_model_p99_ms: float | None = None
    model_p50_ms: float | None = Field(default=None, description="model time of the confirming frames")
    model_p99_ms: float | None = None
    latency_alerts: int = Field(default=0, description="recent alerts the latency figures are taken over")
    stages_ms: dict[str, dict[str, float]] = Field(default={}, description=(
        "where the latency goes, per stage of the confirming frame (see LATENCY_STAGES): p50/p99/max in ms over "
        "the recent alerts that carried the shard's timeline"))
    slowest: list[dict[str, float]] = Field(default=[], description=(
        "the 3 slowest recent alerts, per stage in ms (and when their frame was decoded, Unix s)"))


# Kept in the stored record for operations, not part of the twin's alerts layer.
_NOT_IN_LAYER = {"open", "recovered_ts", "written_ts", "details", "evidence_version", "evidence_sha256",
                 "evidence_conflict"}


# Stages of an alert's confirming frame, as (name, from stamp, to stamp) of its timeline (the shard's stamps,
# :data:`actors.events.TIMELINE_STAGES`, then the sink's: call received, sink lock taken, record written).
LATENCY_STAGES = (
    ("gate_sample", "decoded", "queued"),  # motion gate, sampler, ROI crop and downsize (reader thread)
    ("queue_wait", "queued", "model_start"),  # camera queue, batch forming, waiting for a free detector slot
    ("model", "model_start", "model_end"),  # the detector call on the frame's batch
    ("apply_wait", "model_end", "applied"),  # waiting for earlier batches to be applied (dispatch order)
    ("track_confirm", "applied", "decided"),  # tracker and confirmer
    ("deliver_wait", "decided", "sent"),  # pending until the deliverer's (acknowledged) sink call
    ("transit", "sent", "received"),  # Ray call to the sink
    ("sink_lock_wait", "received", "locked"),  # behind other calls inside the sink
    ("sink_write", "locked", "written"),  # evidence, outbox, audit, record (and earlier events of its batch)
    ("total", "decoded", "written"),
)


def latency_stages(timelines: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """p50, p99 and max (ms) of every :data:`LATENCY_STAGES` stage over alert timelines (stamps in Unix s); a
    stage is left out when no timeline has both of its stamps."""
    out: dict[str, dict[str, float]] = {}
    for name, a, b in LATENCY_STAGES:
        ms = np.asarray([(t[b] - t[a]) * 1000 for t in timelines if a in t and b in t])
        if ms.size:
            out[name] = {"p50": round(float(np.percentile(ms, 50)), 1), "p99": round(float(np.percentile(ms, 99)), 1),
                         "max": round(float(ms.max()), 1)}
    return out


def slowest_alerts(timelines: list[dict[str, float]], n: int = 3) -> list[dict[str, float]]:
    """The ``n`` slowest alert timelines (stamps in Unix s) as their :data:`LATENCY_STAGES` in ms, slowest first,
    each with ``decoded`` (Unix s) to place it in the run."""
    full = sorted((t for t in timelines if "decoded" in t and "written" in t),
                  key=lambda t: t["written"] - t["decoded"], reverse=True)[:n]
    return [{"decoded": round(t["decoded"], 3),
             **{name: round((t[b] - t[a]) * 1000, 1) for name, a, b in LATENCY_STAGES if a in t and b in t}}
            for t in full]


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime) else v


def alert_row(event: ShardEvent | dict[str, Any], city: str, *, evidence_key: str | None = None,
              position: tuple[float, float] | None = None) -> dict[str, Any]:
    """One row of the twin's ``alerts`` layer (:data:`twin.schemas.ALERTS`) from a shard event.

    Parameters
    ----------
    event
        An :class:`~actors.events.AlertDecisionEvent` with decision ``alert`` or an offline
        :class:`~actors.events.CameraHealthEvent` (which carries its outage's alert id), or the same as a dict.
    city
        The city id.
    evidence_key
        Object key of the stored evidence crop (the sink stores it first).
    position
        The camera's (lon, lat) from the registry.

    Raises
    ------
    ValueError
        When the event is not an alert (a suppressed decision, a recovery).
    """
    (ev,) = parse_events([event])
    if isinstance(ev, CameraHealthEvent):
        if ev.kind not in OFFLINE_KINDS:
            raise ValueError(f"only {'/'.join(OFFLINE_KINDS)} health events are alerts, got {ev.kind!r}")
        kind, subject, score, track, frames, start = AlertKind.camera_offline, None, None, None, None, None
        alert, ts = ev.alert_id, ev.ts
    elif ev.decision == "alert":
        kind, subject, score, track, frames = label_alert_kind(ev.label), ev.subject_id, float(ev.score), \
            ev.track_id, int(ev.n_matches)
        start, alert, ts = ev.track_start_pts, ev.alert_id, ev.frame_ts if ev.frame_ts is not None else ev.ts
    else:
        raise ValueError(f"event is not an alert (decision {ev.decision!r}): audit it, do not write it")
    return {
        "alert_id": alert, "camera_id": ev.camera_id, "ts": _utc(float(ts)), "kind": kind.value,
        "subject_id": subject, "score": None if score is None else min(1.0, max(0.0, score)),
        "evidence_key": evidence_key, "status": "new", "status_by": None, "status_ts": None, "city": city,
        "track_id": track, "frames": frames, "track_start_pts": start,
        "lon": position[0] if position else None, "lat": position[1] if position else None,
    }


class AlertSinkCore:
    """All of the sink's logic; :class:`AlertSink` is the Ray actor around it."""

    def __init__(self, config: AlertSinkConfig, store: Store | None = None) -> None:
        """Connect to the store and rebuild the alert set from the stored records (idempotent restarts)."""
        self.cfg = config
        self.store = store or connect_configured(config.s3, "the alert sink")
        self.audit = AuditLog(config.audit_path, name=f"alerts-{config.city}", store=self.store)
        self.stats = AlertStats()
        self._lock = threading.RLock()
        self._alerts: dict[str, dict[str, Any]] = {}  # records read or written by this process
        self._open: Counter[str] = Counter()  # status -> records in _alerts not closed, kept as they change
        self._known: set[str] = set()  # every stored alert id (the index)
        self._queues: dict[str, QueueChannel] = {}
        self._outbox = WebhookOutbox(store, f"{self._prefix}outbox/", list(config.webhooks),
                                     on_result=self._webhook_result, resend_every_s=config.webhook_resend_s)
        self._open_offline: dict[str, str] = {}
        self._published = threading.Condition(self._lock)
        self._version = time.time_ns() // 1000  # grows with every published change: see open_counts
        self.dead_letters: deque[dict[str, Any]] = deque(maxlen=1000)
        self._latency_ms: deque[float] = deque(maxlen=2000)
        self._model_ms: deque[float] = deque(maxlen=2000)
        self._timelines: deque[dict[str, float]] = deque(maxlen=2000)
        self._reload()

    # ---------------------------------------------------------------- storage
    @property
    def _prefix(self) -> str:
        return f"alerts/{self.cfg.city}/"

    def _record_key(self, alert_id: str) -> str:
        return f"{self._prefix}records/{alert_id}.json"

    def _open_key(self, camera_id: str, alert_id: str) -> str:
        return f"{self._prefix}open/{quote(camera_id, safe='')}/{alert_id}"

    def _reload(self) -> None:
        """Rebuild the index from one listing: record ids, open offline alerts, webhook items to deliver."""
        t0 = time.perf_counter()
        prefix = self._prefix
        outbox: list[str] = []
        for obj in self.store.client.list_objects(TWIN_BUCKET, prefix=prefix, recursive=True):
            rel = obj.object_name[len(prefix):]
            if rel.startswith("records/") and rel.endswith(".json"):
                self._known.add(rel[len("records/"):-len(".json")])
            elif rel.startswith("open/") and rel.count("/") == 2:
                _, cam, aid = rel.split("/")
                self._open_offline[unquote(cam)] = aid
            elif rel.startswith("outbox/"):
                outbox.append(obj.object_name)
        self.stats.index_ids = len(self._known)
        self.stats.index_s = round(time.perf_counter() - t0, 3)
        if outbox:
            self.stats.webhook_resent += self._outbox.resend(outbox)

    @staticmethod
    def _parse_record(body: bytes) -> dict[str, Any]:
        rec = json.loads(body)
        for k in ("ts", "status_ts", "recovered_ts", "written_ts", "closed_ts"):
            if rec.get(k):
                rec[k] = dt.datetime.fromisoformat(rec[k])
        return rec

    def _record(self, alert_id: str) -> dict[str, Any]:
        """The alert's record (read from the store the first time it is asked for)."""
        rec = self._alerts.get(alert_id)
        if rec is None:
            rec = self._parse_record(self.store.get_bytes(TWIN_BUCKET, self._record_key(alert_id)))
            self._keep(alert_id, rec)
        return rec

    def _keep(self, alert_id: str, rec: dict[str, Any]) -> None:
        """Hold a record read or written by this process, counted in the open counts."""
        self._alerts[alert_id] = rec
        self._recount(None, rec)

    def _recount(self, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        """Move the running open counts (:meth:`open_counts`) from a record's state ``before`` (None: a record
        new to this process) to ``after``; closed records are not counted."""
        for rec, step in ((before, -1), (after, 1)):
            if rec is not None and rec.get("closed_ts") is None:
                self._open[rec["status"]] += step

    def _load_all(self) -> None:
        """Read every indexed record not read yet (concurrently)."""
        if len(self._alerts) == len(self._known):  # every record held is indexed: all are read (no set to build)
            return
        missing = sorted(self._known - set(self._alerts))
        if not missing:
            return
        with ThreadPoolExecutor(max_workers=8) as pool:
            bodies = list(pool.map(lambda a: self.store.get_bytes(TWIN_BUCKET, self._record_key(a)), missing))
        for aid, body in zip(missing, bodies, strict=True):
            self._keep(aid, self._parse_record(body))

    def _save(self, rec: dict[str, Any]) -> None:
        body = json.dumps({k: _iso(v) for k, v in rec.items()}, ensure_ascii=False).encode()
        self.store.put_bytes(TWIN_BUCKET, self._record_key(rec["alert_id"]), body, content_type="application/json")

    def _evidence(self, alert_id: str, ts: dt.datetime, crop: Any) -> dict[str, Any]:
        """Store the crop once; returns the record's evidence fields (``evidence_key``, ``evidence_version``,
        ``evidence_sha256``; ``evidence_conflict`` names a key someone else wrote first), {} for no image."""
        img = np.ascontiguousarray(np.asarray(crop, dtype=np.uint8))
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 2:
            log.warning("alert %s: evidence crop of shape %s is not an RGB image; not stored", alert_id, img.shape)
            return {}
        key = f"alerts/{self.cfg.city}/{ts:%Y-%m-%d}/{alert_id}.jpg"
        # written once; the same bytes again (a re-delivery, a lost reply) is the same write
        stored = put_evidence(self.store, key, encode_jpeg(img, self.cfg.jpeg_quality), "image/jpeg")
        self.stats.evidence_stored += 1
        return stored.record_fields()

    # ---------------------------------------------------------------- intake
    def submit(self, events: list[ShardEvent | dict[str, Any]]) -> dict[str, int]:
        """Take a batch of shard events; returns how many became new alerts and how many were duplicates.

        Raises
        ------
        pydantic.ValidationError
            When an event given as a dict is not a shard event (unknown ``type``, missing fields).
        """
        new = dup = 0
        received = time.time()
        with self._lock:
            arrival = {"received": received, "locked": time.time()}
            for ev in parse_events(events):
                self.stats.received += 1
                made = self._decision(ev, arrival) if isinstance(ev, AlertDecisionEvent) else self._health(ev)
                if made is True:
                    new += 1
                elif made is False:
                    dup += 1
        return {"new": new, "duplicates": dup}

    def _camera_fields(self, camera_id: str, ts: float | None = None) -> dict[str, Any]:
        if camera_id in self.cfg.mobile_cameras and self.cfg.field_actor and ts is not None:
            pos = self._mobile_position(camera_id, ts)
            if pos is not None:  # where the van / drone / body camera was when the frame was taken
                return {"lon": pos[0], "lat": pos[1]}
        place = self.cfg.cameras.get(camera_id)
        return place.model_dump() if place else {}

    def _mobile_position(self, camera_id: str, ts: float) -> tuple[float, float] | None:
        import ray

        try:
            field = ray.get_actor(self.cfg.field_actor, namespace=RAY_NAMESPACE)
            return ray.get(field.position_at.remote(camera_id, ts), timeout=5)
        except Exception as e:  # no GPS yet, or the field store is down: the registry position stands
            log.warning("no GPS position of mobile camera %s at %.0f: %s", camera_id, ts, e)
            return None

    def _raise(self, rec: dict[str, Any], crop: Any = None, details: dict[str, Any] | None = None,
               frame_ts: float | None = None, model_s: float | None = None,
               timeline: dict[str, float] | None = None) -> bool:
        aid = rec["alert_id"]
        if aid in self._known:
            self.stats.duplicates += 1
            return False
        # a field alert may carry its own evidence (a citizen's photo, already in the locked bucket)
        rec.update(self._evidence(aid, rec["ts"], crop) if crop is not None else {})
        rec.setdefault("evidence_key", None)
        if rec.get("evidence_conflict"):  # logged where it was found (twin.evidence.put_evidence); audited below
            self.stats.evidence_conflicts += 1
        checked = validate_rows("alerts", [{k: v for k, v in rec.items() if k not in _NOT_IN_LAYER}],
                                city=self.cfg.city)
        if checked.rejected:
            raise ValueError(f"alert {aid} does not fit the alerts layer: {checked.rejected[0]}")
        rec["written_ts"] = dt.datetime.now(dt.UTC)
        item = {"event": "alert", "delivery_id": f"{aid}.alert", **{k: _iso(v) for k, v in rec.items()}}
        # Order = exactly-once effect across crashes: the webhook item is stored before anything else happens
        # (at least once, deduped downstream by delivery_id), the audit event before the record, and the record
        # last: it is the commit point that makes a re-delivered event a duplicate.
        self._outbox.put(item)
        self.audit.append("system:alert-sink", "alert.raised", aid,
                          {"kind": rec["kind"], "camera_id": rec["camera_id"], "subject_id": rec.get("subject_id"),
                           "score": rec.get("score"), **(details or {}),
                           **({"evidence_conflict": rec["evidence_conflict"]} if rec.get("evidence_conflict") else {})})
        self._save(rec)
        durable = time.time()  # the record is stored: the commit point, "alert written"
        self._keep(aid, rec)
        self._known.add(aid)
        if frame_ts is not None:
            self._latency_ms.append((durable - frame_ts) * 1000)
            self._model_ms.append((model_s or 0.0) * 1000)
            if timeline:
                self._timelines.append({**timeline, "written": durable})
        self.stats.alerts += 1
        self._publish(item)
        return True

    def _decision(self, ev: AlertDecisionEvent, arrival: dict[str, float] | None = None) -> bool | None:
        if ev.decision != "alert":
            self.stats.suppressed += 1
            self.audit.append("system:tracker", f"alert.{ev.decision}", ev.alert_id,
                              {"camera_id": ev.camera_id, "subject_id": ev.subject_id,
                               "reason": ev.reason, "duplicate_of": ev.duplicate_of})
            return None
        at = ev.frame_ts if ev.frame_ts is not None else ev.ts
        rec = {**alert_row(ev, self.cfg.city), **self._camera_fields(ev.camera_id, at)}
        return self._raise(rec, ev.crop, {"reason": ev.reason, "shard_id": ev.shard_id}, frame_ts=ev.frame_ts,
                           model_s=ev.model_s, timeline={**ev.timeline, **(arrival or {})})

    def _health(self, ev: CameraHealthEvent) -> bool | None:
        self.stats.health += 1
        cam = ev.camera_id
        if ev.kind in OFFLINE_KINDS:
            rec = {**alert_row(ev, self.cfg.city), "open": True, **self._camera_fields(cam)}
            aid = rec["alert_id"]
            held = self._open_offline.get(cam)
            if held is not None and held != aid:
                # the camera's outage is alerted and still open (no recovery came): the same outage seen again,
                # e.g. by a restarted shard or as a permanent failure after the silence; one alert per outage
                self.stats.duplicates += 1
                return False
            if aid not in self._known:  # the marker first: a crash after the record still finds it open
                self.store.put_bytes(TWIN_BUCKET, self._open_key(cam, aid), b"")
            made = self._raise(rec, details={"detail": ev.detail, "offline_for_s": ev.offline_for_s})
            if made:
                self._open_offline[cam] = aid
            return made
        if ev.kind == "camera-recovered":
            aid = self._open_offline.get(cam)
            if aid and aid in self._known and self._record(aid).get("open"):
                rec = self._record(aid)
                rec["open"] = False
                rec["recovered_ts"] = _utc(float(ev.ts))
                item = {"event": "camera-recovered", "delivery_id": f"{aid}.recovered", "alert_id": aid,
                        "camera_id": cam, "ts": _iso(rec["recovered_ts"])}
                self._outbox.put(item)
                self.audit.append("system:watchdog", "camera.recovered", aid, {"camera_id": cam})
                self._save(rec)
                self._publish(item)
            if aid:
                self.store.client.remove_object(TWIN_BUCKET, self._open_key(cam, aid))
                self._open_offline.pop(cam, None)
                self.stats.recovered += 1
        elif ev.kind == "camera-reconfigured":  # new picture size or a restarted stream clock: said, not an alert
            self.audit.append("system:watchdog", "camera.reconfigured", cam, {"detail": ev.detail})
            self._publish({"event": "camera-reconfigured", "camera_id": cam, "ts": _iso(_utc(float(ev.ts))),
                           "detail": ev.detail})
        return None

    # ---------------------------------------------------------------- operators
    def set_status(self, alert_id: str, status: Literal["confirmed", "dismissed"], actor: str,
                   note: str = "") -> dict[str, Any]:
        """An operator confirms or dismisses an alert; audited, stored (versioned) and published."""
        if status not in {"confirmed", "dismissed"}:
            raise ValueError(f"status must be 'confirmed' or 'dismissed', not {status!r}")
        if not actor.strip():
            raise ValueError("a status change needs the operator's name (actor)")
        with self._lock:
            if alert_id not in self._known:
                raise KeyError(f"alert {alert_id!r} is not known to the sink of {self.cfg.city}")
            rec = self._record(alert_id)
            if rec["status"] != "new":
                raise ValueError(f"alert {alert_id} was already {rec['status']} by {rec['status_by']}")
            before = dict(rec)

            def undo() -> None:
                rec.clear()
                rec.update(before)

            # Audited before it takes effect: a failed audit write (AuditWriteError) changes nothing.
            with write_ahead(self.audit, actor, f"alert.{status}", alert_id, {"note": note} if note else {}, undo=undo):
                rec.update(status=status, status_by=actor, status_ts=dt.datetime.now(dt.UTC))
                self._save(rec)
            self._recount(before, rec)
            self.stats.status_changes += 1
            item = {"event": "status", "delivery_id": f"{alert_id}.{status}", "alert_id": alert_id,
                    "status": status, "by": actor, "ts": _iso(rec["status_ts"])}
            self._outbox.put(item)
            self._publish(item)
            return {k: _iso(v) for k, v in rec.items()}

    def raise_field_alert(self, row: dict[str, Any], details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Raise an alert from a field input (an SOS press, a citizen report); a repeated id is a duplicate.

        Parameters
        ----------
        row
            A row of the alerts layer (``alert_id``, ``camera_id`` = pole or source, ``ts``, ``kind``, ``lon``,
            ``lat`` ...); ``status`` is set to ``new``.
        details
            What the console shows beside it (text, category, reporter, pole), kept in the stored record.

        Returns
        -------
        dict
            The stored record (JSON-able) with ``duplicate`` True when the id was already known.
        """
        with self._lock:
            aid = row["alert_id"]
            if aid in self._known:
                self.stats.duplicates += 1
                return {**{k: _iso(v) for k, v in self._record(aid).items()}, "duplicate": True}
            rec = {"status": "new", "city": self.cfg.city, **row, "details": dict(details or {})}
            self._raise(rec, details={"source": "field", **{k: v for k, v in (details or {}).items()
                                                            if k in ("category", "pole_id", "source")}})
            return {**{k: _iso(v) for k, v in self._alerts[aid].items()}, "duplicate": False}

    def get(self, alert_id: str) -> dict[str, Any]:
        """One alert's stored record (JSON-able); KeyError when unknown."""
        with self._lock:
            if alert_id not in self._known:
                raise NotFoundError(f"alert {alert_id!r} is not known to the sink of {self.cfg.city}")
            return {k: _iso(v) for k, v in self._record(alert_id).items()}

    def act(self, alert_id: str, action: str, actor: str, reason: str | None = None,
            unit: str | None = None) -> dict[str, Any]:
        """An operator's action on an alert: audited before it takes effect, stored (versioned) and published.

        States: ``new`` -> ``acknowledged`` (the operator takes the alert) -> ``confirmed`` / ``dismissed`` (with a
        reason code); ``assign`` records the patrol unit sent, ``close`` ends a decided case. Whoever
        acknowledged or decided an alert holds it: another operator's action is refused (:class:`AlertTaken`,
        naming who holds it). Repeating an action that has already taken effect (same operator, same reason or
        unit) changes nothing and is not audited again (idempotent retries).

        Returns
        -------
        dict
            The record after the action, JSON-able, with ``changed`` False for an idempotent repeat.

        Raises
        ------
        serve.errors.NotFoundError
            Unknown alert.
        AlertTaken
            Another operator holds (or decided) the alert.
        AlertActionError
            The action does not fit the alert's state, or misses its reason / unit.
        serve.audit.AuditWriteError
            The audit event could not be written: nothing changed.
        """
        if action not in ALERT_ACTIONS:
            raise AlertActionError(f"unknown action {action!r}: one of {', '.join(ALERT_ACTIONS)}")
        if not actor.strip():
            raise AlertActionError("an action needs the operator's name (actor)")
        with self._lock:
            if alert_id not in self._known:
                raise NotFoundError(f"alert {alert_id!r} is not known to the sink of {self.cfg.city}")
            rec = self._record(alert_id)
            status, holder = rec["status"], rec.get("status_by")
            if status != "new" and holder and holder != actor:
                when = _iso(rec.get("status_ts")) or "?"
                raise AlertTaken(f"alert {alert_id} is held by {holder} ({status} at {when}): ask them, or a "
                                 "supervisor, before acting on it")
            change: dict[str, Any] = {}
            now = dt.datetime.now(dt.UTC)
            if action == "acknowledge":
                if status == "new":
                    change = {"status": "acknowledged", "status_by": actor, "status_ts": now}
                elif status != "acknowledged":
                    raise AlertActionError(f"alert {alert_id} is already {status}: nothing to acknowledge")
            elif action in ("confirm", "dismiss"):
                target = "confirmed" if action == "confirm" else "dismissed"
                if action == "dismiss" and not (reason or "").strip():
                    raise AlertActionError("dismissing needs a reason code (e.g. wrong-person, test, duplicate)")
                if status == target and (action == "confirm" or rec.get("status_reason") == reason):
                    change = {}
                elif status in ("new", "acknowledged"):
                    change = {"status": target, "status_by": actor, "status_ts": now, "status_reason": reason or None}
                else:
                    raise AlertActionError(f"alert {alert_id} is already {status} (reason "
                                           f"{rec.get('status_reason') or '-'}): it cannot be {target} now")
                if rec.get("closed_ts") is not None and change:
                    raise AlertActionError(f"alert {alert_id} is closed")
            elif action == "assign":
                if not (unit or "").strip():
                    raise AlertActionError("assigning needs the patrol unit (unit)")
                if rec.get("closed_ts") is not None:
                    raise AlertActionError(f"alert {alert_id} is closed: it cannot be assigned")
                if status == "dismissed":
                    raise AlertActionError(f"alert {alert_id} was dismissed: nothing to send a unit to")
                if rec.get("assigned_unit") != unit:
                    change = {"assigned_unit": unit}
                    if status == "new":
                        change.update(status="acknowledged", status_by=actor, status_ts=now)
            elif action == "close":
                if status not in ("confirmed", "dismissed"):
                    raise AlertActionError(f"alert {alert_id} is {status}: confirm or dismiss it before closing")
                if rec.get("closed_ts") is None:
                    change = {"closed_ts": now}
            if not change:
                return {**{k: _iso(v) for k, v in rec.items()}, "changed": False}
            before = dict(rec)

            def undo() -> None:
                rec.clear()
                rec.update(before)

            details = {k: v for k, v in (("reason", reason), ("unit", unit)) if v}
            # Audited before it takes effect: a failed audit write (AuditWriteError) changes nothing.
            with write_ahead(self.audit, actor, f"alert.{action}", alert_id, details, undo=undo):
                rec.update(change)
                self._save(rec)
            self._recount(before, rec)
            self.stats.status_changes += 1
            out = {k: _iso(v) for k, v in rec.items()}
            self._publish({"event": "update", "action": action, "by": actor, **out})
            return {**out, "changed": True}

    def alerts(self, written: bool = False) -> list[dict[str, Any]]:
        """All alerts as layer rows, oldest first; ``written`` adds ``written_ts`` (when the record was stored,
        for latency and for telling one run's alerts from earlier ones) and ``recovered_ts`` (when an offline
        camera came back; None while it is out)."""
        drop = _NOT_IN_LAYER - ({"written_ts", "recovered_ts"} if written else set())
        with self._lock:
            self._load_all()
            return sorted(({k: v for k, v in r.items() if k not in drop}
                           for r in self._alerts.values()), key=lambda r: (r["ts"], r["alert_id"]))

    def table(self) -> pa.Table:
        """The twin's alerts layer (validated)."""
        res = validate_rows("alerts", self.alerts(), city=self.cfg.city)
        if res.rejected:
            raise ValueError(f"stored alerts do not fit the layer: {res.rejected[:3]}")
        return res.table

    def commit(self, message: str = "alerts", author: str = "system:alert-sink", retries: int = 5) -> str:
        """Put the alerts layer into the next twin snapshot (read-modify-write, re-read on a conflict)."""
        from twin.snapshots import SnapshotStore

        def put(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
            return {**tables, "alerts": self.table()}

        return SnapshotStore(self.store, self.cfg.city).update(put, message=message, author=author,
                                                               attempts=retries).id

    def current_stats(self) -> AlertStats:
        """Counters plus p50/p99 of frame-decoded-to-alert-written latency over the recent alerts."""
        with self._lock:
            self.stats.webhook_resent = max(self.stats.webhook_resent, self._outbox.resent)
            lat = list(self._latency_ms)
            if lat:
                self.stats.latency_p50_ms = round(float(np.percentile(lat, 50)), 1)
                self.stats.latency_p99_ms = round(float(np.percentile(lat, 99)), 1)
                rest = np.asarray(lat) - np.asarray(self._model_ms)
                self.stats.beyond_model_p50_ms = round(float(np.percentile(rest, 50)), 1)
                self.stats.beyond_model_p99_ms = round(float(np.percentile(rest, 99)), 1)
                self.stats.model_p50_ms = round(float(np.percentile(list(self._model_ms), 50)), 1)
                self.stats.model_p99_ms = round(float(np.percentile(list(self._model_ms), 99)), 1)
                self.stats.latency_alerts = len(lat)
            self.stats.stages_ms = latency_stages(list(self._timelines))
            self.stats.slowest = slowest_alerts(list(self._timelines))
            return self.stats.model_copy()

    # ---------------------------------------------------------------- publishing
    def subscribe(self, name: str) -> None:
        """Open a bounded in-process queue ``name`` (oldest items drop when nobody polls)."""
        with self._lock:
            if name not in self._queues:
                self._queues[name] = QueueChannel(name, self.cfg.subscriber_queue)

    def poll(self, name: str, max_n: int = 100, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Take up to ``max_n`` published items from queue ``name``, waiting up to ``wait_s`` seconds for the first
        one (a long poll: a CCOC screen sees a new alert as soon as it is written)."""
        with self._lock:
            q = self._queues.get(name)
            if q is None:
                raise KeyError(f"no subscriber queue {name!r}: call subscribe first")
            items = q.poll(max_n)
            if not items and wait_s > 0:
                self._published.wait(wait_s)
                items = q.poll(max_n)
            return items

    def open_counts(self) -> dict[str, Any]:
        """The open (not closed) alerts counted by status, for the console's badges.

        Returns
        -------
        dict
            ``{"total": open alerts, "counts": {status: open alerts}, "version": int}``. ``version`` grows with
            every change this sink publishes (microseconds since the epoch, at least one more than the last: a
            whole number a browser holds exactly, as nanoseconds, beyond 2**53, were not), so of two answers of
            this sink the one with the higher version is the newer; a restarted sink starts from its clock's time,
            so its versions follow the old sink's only as far as the two clocks agree. The first call reads every
            stored record not read yet (as :meth:`alerts` does); the counts are kept as records change, so a call
            costs the same with 100 or 300,000 records (the stream asks after each batch of published items, from
            every API replica, while the sink's lock is held).
        """
        with self._lock:
            self._load_all()
            counts = {status: n for status, n in self._open.items() if n}
            return {"total": sum(counts.values()), "counts": counts, "version": self._version}

    def _publish(self, item: dict[str, Any]) -> None:
        """Publish on the in-process queues and send to the webhooks (an item with a ``delivery_id`` is already in
        the outbox: its effect's order put it there first)."""
        with self._lock:  # the change is made (callers hold the lock): the counts' version moves past it
            self._version = max(time.time_ns() // 1000, self._version + 1)
        for ch in self._queues.values():
            ch.publish(item)
        if "delivery_id" not in item:  # items without an effect of their own are stored here, sent at least once
            item = {**item, "delivery_id": uuid.uuid4().hex}
            self._outbox.put(item)
        with self._lock:
            self._published.notify_all()
        self._outbox.send(item)

    def _webhook_result(self, delivered: bool, dead_letter: dict[str, Any] | None) -> None:
        with self._lock:
            if delivered:
                self.stats.webhook_delivered += 1
            else:
                self.stats.webhook_failed += 1
                self.dead_letters.append(dead_letter or {})

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until queued webhook deliveries have finished (or failed)."""
        self._outbox.flush(timeout_s)

    def close(self) -> None:
        """Stop the webhook outbox's resend thread (a sink with webhooks runs one); stored items stay for the next
        sink. A sink that is dropped without it keeps retrying the store every ``webhook_resend_s``."""
        self._outbox.close()


class AlertSink:
    """Ray actor around :class:`AlertSinkCore` (name :data:`SINK_ACTOR` in namespace ``ssz``)."""

    def __init__(self, config: AlertSinkConfig, start_timeout_s: float = 600.0) -> None:
        """Build the core; on a restart it reloads its index, so re-deliveries stay duplicates.

        A store that does not answer yet (it restarts too) is waited for, up to ``start_timeout_s``: a
        constructor that raised would leave the actor dead instead of restarted. Calls queue meanwhile.
        """
        from pydantic import ValidationError
        from tenacity import Retrying, retry_if_not_exception_type, stop_after_delay, wait_exponential

        for attempt in Retrying(stop=stop_after_delay(start_timeout_s), wait=wait_exponential(0.5, max=5.0),
                                retry=retry_if_not_exception_type((ValidationError, ValueError)), reraise=True):
            with attempt:
                self.core = AlertSinkCore(config)

    def submit(self, events: list[ShardEvent | dict[str, Any]]) -> dict[str, int]:
        """See :meth:`AlertSinkCore.submit`."""
        return self.core.submit(events)

    def set_status(self, alert_id: str, status: Literal["confirmed", "dismissed"], actor: str,
                   note: str = "") -> dict[str, Any]:
        """See :meth:`AlertSinkCore.set_status`."""
        return self.core.set_status(alert_id, status, actor, note)

    def alerts(self, written: bool = False) -> list[dict[str, Any]]:
        """See :meth:`AlertSinkCore.alerts`."""
        return self.core.alerts(written)

    def commit(self, message: str = "alerts") -> str:
        """See :meth:`AlertSinkCore.commit`."""
        return self.core.commit(message)

    def subscribe(self, name: str) -> None:
        """See :meth:`AlertSinkCore.subscribe`."""
        self.core.subscribe(name)

    def poll(self, name: str, max_n: int = 100, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """See :meth:`AlertSinkCore.poll`."""
        return self.core.poll(name, max_n, wait_s)

    def act(self, alert_id: str, action: str, actor: str, reason: str | None = None,
            unit: str | None = None) -> dict[str, Any]:
        """See :meth:`AlertSinkCore.act`."""
        return self.core.act(alert_id, action, actor, reason, unit)

    def get(self, alert_id: str) -> dict[str, Any]:
        """See :meth:`AlertSinkCore.get`."""
        return self.core.get(alert_id)

    def raise_field_alert(self, row: dict[str, Any], details: dict[str, Any] | None = None) -> dict[str, Any]:
        """See :meth:`AlertSinkCore.raise_field_alert`."""
        return self.core.raise_field_alert(row, details)

    def activity(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest ``limit`` events of the city's alert audit log (who did what to which alert, when), newest
        first; the tracker's suppressed decisions are left out."""
        events = [e for e in self.core.audit.events() if not e.action.startswith(("alert.suppressed", "alert.cooldown",
                                                                                   "alert.neighbour"))]
        return [e.model_dump(mode="json", exclude={"hash", "prev_hash", "alg"}) for e in events[-limit:][::-1]]

    def records(self) -> list[dict[str, Any]]:
        """Every stored record, JSON-able (with the console's details), oldest first."""
        with self.core._lock:
            self.core._load_all()
            recs = sorted(self.core._alerts.values(), key=lambda r: (r["ts"], r["alert_id"]))
            return [{k: _iso(v) for k, v in r.items()} for r in recs]

    def open_counts(self) -> dict[str, Any]:
        """See :meth:`AlertSinkCore.open_counts`."""
        return self.core.open_counts()

    def stats(self) -> dict[str, Any]:
        """Counters (:class:`AlertStats`) with the current alert latency percentiles."""
        return self.core.current_stats().model_dump()

    def flush(self) -> None:
        """Wait for pending webhook deliveries."""
        self.core.flush()


def start_sink(config: AlertSinkConfig, max_restarts: int = -1) -> Any:
    """Create (or get) the city's named alert sink actor (:func:`sink_name` in the ``ssz`` namespace).

    It restarts on crashes and reloads its alerts from the store, so re-deliveries stay duplicates.

    Parameters
    ----------
    config
        The sink's settings (pickled whole: a JSON dump would mask the S3 secret).
    max_restarts
        Ray restarts after a crash (-1: always).

    Returns
    -------
    ray.actor.ActorHandle
    """
    return start_named_actor(AlertSink, sink_name(config.city), config, max_restarts)
