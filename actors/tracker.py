"""Tracking and alert confirmation: one person or vehicle crossing a view is one track and at most one alert.

* :class:`IoUTracker` (one per camera) links detections frame to frame by Hungarian assignment
  (``scipy.optimize.linear_sum_assignment``) on box overlap, with a centre-distance fallback because
  sampled frames (2 fps) can be far apart for a walking person. Track ids are derived from the camera and
  the first frame's timestamp, so a restarted shard replaying the same frames produces the same ids.
* :class:`Confirmer` turns per-frame watchlist/hotlist matches into alert decisions: an alert needs
  ``min_matches`` frames of one track matching the same subject (Frigate's ``min_faces``), is held back by a
  cooldown per (subject, camera), and is deduplicated across neighbouring cameras (explicit neighbour list or
  a distance, within a time window). Every decision, suppressed or not, is returned with its reason, so the
  alert sink can audit it. Alert ids are deterministic (stable hash of camera, track and subject), which lets
  the sink write at least once and deduplicate by id; they follow the twin's contract
  (:func:`twin.schemas.alert_id`).

Pure Python (numpy + scipy), no Ray; the shard actor owns one tracker per camera.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pyproj import Geod
from scipy.optimize import linear_sum_assignment

from serve.boxes import Box, iou_matrix
from twin.kinds import label_alert_kind
from twin.schemas import alert_id as twin_alert_id

WGS84 = Geod(ellps="WGS84")


class TrackerConfig(BaseModel):
    """Per-camera tracker parameters."""

    model_config = ConfigDict(extra="forbid")

    iou_threshold: float = Field(default=0.2, ge=0, le=1, description="overlap needed to continue a track")
    center_gate: float = Field(default=1.0, ge=0, description="fallback: centre shift <= this x box diagonal")
    max_age_s: float = Field(default=2.0, gt=0, description="a track unseen this long ends")
    link_by_subject: bool = Field(default=True, description=(
        "a detection matched to a subject continues the live track last matched to that subject even when the "
        "box jumped (a fast car between sampled frames): the read plate or face is the stronger evidence"))


@dataclass(slots=True)
class Detection:
    """One detection in a frame: box (x1, y1, x2, y2) in pixels, detector score, optional label and match."""

    box: Box
    score: float = 1.0
    label: str = "face"
    subject_id: str | None = None
    match_score: float = 0.0


@dataclass
class Track:
    """A tracked object on one camera."""

    track_id: str
    camera_id: str
    label: str
    box: Box
    first_ts: float
    last_ts: float
    hits: int = 1
    subject_id: str | None = None  # the subject its last matched detection named


def _centre_similarity(a: Sequence[Box], b: Sequence[Box], gate: float) -> np.ndarray:
    """1 - centre distance / (gate * mean diagonal), clipped at 0: a weak link for boxes that do not overlap."""
    if not a or not b or gate <= 0:
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, dtype=np.float64)
    B = np.asarray(b, dtype=np.float64)
    ca = (A[:, :2] + A[:, 2:]) / 2
    cb = (B[:, :2] + B[:, 2:]) / 2
    da = np.hypot(A[:, 2] - A[:, 0], A[:, 3] - A[:, 1])
    db = np.hypot(B[:, 2] - B[:, 0], B[:, 3] - B[:, 1])
    dist = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
    scale = gate * (da[:, None] + db[None, :]) / 2
    return np.clip(1 - dist / np.where(scale > 0, scale, 1), 0, None)


class IoUTracker:
    """Greedy-free (Hungarian) IoU tracker for one camera; labels never mix (a face never continues a car)."""

    def __init__(self, camera_id: str, config: TrackerConfig | None = None) -> None:
        self.camera_id = camera_id
        self.config = config or TrackerConfig()
        self.tracks: dict[str, Track] = {}
        self.ended: int = 0

    def state(self) -> list[dict[str, object]]:
        """Live tracks as plain data (for the shard's resume state)."""
        return [{"track_id": t.track_id, "label": t.label, "box": list(t.box), "first_ts": t.first_ts,
                 "last_ts": t.last_ts, "hits": t.hits, "subject_id": t.subject_id} for t in self.tracks.values()]

    def load_state(self, tracks: Sequence[Mapping[str, object]]) -> None:
        """Restore tracks saved by :meth:`state` (a restarted shard continues the same tracks and ids)."""
        self.tracks = {}
        for t in tracks:
            box = tuple(float(v) for v in t["box"])  # type: ignore[union-attr]
            self.tracks[str(t["track_id"])] = Track(str(t["track_id"]), self.camera_id, str(t["label"]),
                                                    box, float(t["first_ts"]), float(t["last_ts"]),  # type: ignore[arg-type]
                                                    int(t["hits"]),  # type: ignore[call-overload]
                                                    t.get("subject_id"))  # type: ignore[arg-type]

    def reset(self) -> None:
        """End every track (the camera's picture size changed or its stream restarted)."""
        self.ended += len(self.tracks)
        self.tracks = {}

    def update(self, detections: Sequence[Detection], ts: float, epoch: int = 0) -> list[tuple[str, Detection]]:
        """Assign each detection of the frame at ``ts`` to a track (new or continued); returns (track_id, det).

        New track ids are ``<camera>:<ms of ts>:<i>``, plus ``:e<epoch>`` once the stream's clock restarted
        (epoch > 0), so tracks (and alert ids made from them) of a restarted stream never reuse an old id.
        """
        c = self.config
        for tid in [t for t, tr in self.tracks.items() if ts - tr.last_ts > c.max_age_s or ts < tr.first_ts]:
            del self.tracks[tid]
            self.ended += 1
        live = list(self.tracks.values())
        out: list[tuple[str, Detection] | None] = [None] * len(detections)
        if live and detections:
            tb = [t.box for t in live]
            db = [d.box for d in detections]
            iou = iou_matrix(tb, db)
            near = _centre_similarity(tb, db, c.center_gate)
            # overlap dominates; centre proximity only links boxes that do not overlap enough
            sim = np.where(iou >= c.iou_threshold, 1.0 + iou, np.where(near > 0, near, 0.0))
            same = np.array([[t.label == d.label for d in detections] for t in live])
            sim = np.where(same, sim, 0.0)
            rows, cols = linear_sum_assignment(-sim)
            for r, col in zip(rows, cols, strict=True):
                if sim[r, col] <= 0:
                    continue
                tr = live[r]
                tr.box, tr.last_ts, tr.hits = detections[col].box, ts, tr.hits + 1
                out[col] = (tr.track_id, detections[col])
        if c.link_by_subject and live:
            taken = {o[0] for o in out if o is not None}
            for i, d in enumerate(detections):
                if out[i] is not None or d.subject_id is None:
                    continue
                same = [t for t in live if t.track_id not in taken and t.label == d.label
                        and t.subject_id == d.subject_id]
                if same:
                    tr = max(same, key=lambda t: t.last_ts)
                    tr.box, tr.last_ts, tr.hits = d.box, ts, tr.hits + 1
                    taken.add(tr.track_id)
                    out[i] = (tr.track_id, d)
        for i, d in enumerate(detections):
            if out[i] is None:
                tid = f"{self.camera_id}:{round(ts * 1000)}:{i}" + (f":e{epoch}" if epoch else "")
                self.tracks[tid] = Track(tid, self.camera_id, d.label, d.box, ts, ts)
                out[i] = (tid, d)
        for o in out:
            if o is not None and o[1].subject_id is not None:
                self.tracks[o[0]].subject_id = o[1].subject_id
        return [x for x in out if x is not None]


class ConfirmerConfig(BaseModel):
    """Alert confirmation, cooldown and cross-camera dedupe."""

    model_config = ConfigDict(extra="forbid")

    min_matches: int = Field(default=3, ge=1, description="frames of one track matching one subject (min_faces)")
    min_matches_by_label: dict[str, int] = Field(default={}, description=(
        "per detection label (face, plate), overriding min_matches (the city's cameras.plate_min_reads)"))
    min_match_score: float = Field(default=0.0, ge=0, description="matches below this score do not count")
    cooldown_s: float = Field(default=300.0, ge=0, description="no new alert for a (subject, camera) this long")
    neighbour_window_s: float = Field(default=60.0, ge=0, description="dedupe window across neighbouring cameras")
    neighbour_distance_m: float = Field(default=0.0, ge=0, description="cameras this close are neighbours (0=off)")
    neighbours: dict[str, list[str]] = Field(default={}, description="explicit neighbour lists (symmetric)")
    track_ttl_s: float = Field(default=600.0, gt=0, description="forget per-track counts after this long")


class AlertDecision(BaseModel):
    """What the confirmer decided for a track that reached ``min_matches`` for a subject."""

    alert_id: str
    decision: Literal["alert", "suppressed-cooldown", "suppressed-neighbour"]
    camera_id: str
    track_id: str
    subject_id: str
    label: str
    ts: float = Field(description="time of the confirming frame")
    first_ts: float = Field(description="time of the track's first matching frame")
    score: float = Field(description="best match score of the track for this subject")
    n_matches: int
    duplicate_of: str | None = None
    reason: str


def alert_id(camera_id: str, track_id: str, subject_id: str, label: str = "face") -> str:
    """Deterministic alert id (the twin's contract, :func:`twin.schemas.alert_id`): same track and subject, same id.

    ``label`` is the detection label; its alert kind is :func:`twin.kinds.label_alert_kind`'s.
    """
    return twin_alert_id(camera_id, label_alert_kind(label).value, subject_id, track_id)


@dataclass
class _Count:
    n: int = 0
    best: float = 0.0
    first_ts: float = 0.0
    last_ts: float = 0.0
    decided: bool = False


@dataclass
class _Sent:
    alert_id: str
    ts: float


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance (m) between two (lon, lat) points on the WGS84 ellipsoid."""
    return float(WGS84.inv(a[0], a[1], b[0], b[1])[2])


@dataclass
class Confirmer:
    """Track-level confirmation across the cameras of a shard (or of a whole city in the alert sink).

    ``positions`` (camera id -> (lon, lat)) enables distance-based neighbours. ``observe`` is called once per
    (track, matched detection); it returns a decision the first time a track reaches ``min_matches`` frames
    for one subject, else None.

    Times are each camera's stream time, and the cameras of one shard do not share a clock (an RTSP stream's pts
    starts where its stream started, a file at 0, a simulated camera at its scenario time): counts, cooldowns and
    recent alerts age on the clock of their own camera (the time it observed last), never on another camera's.
    A camera whose time goes back (a stream restarted at pts 0 without the shard's
    :class:`~actors.sources.geometry.StreamClock`) continues its clock: what it held is moved back by the jump,
    so it ages on from the restart as if the stream had run on (its counts expire ``track_ttl_s`` after their last
    frame, its cooldowns end ``cooldown_s`` after the alert), not hours later or at once.
    """

    config: ConfirmerConfig = field(default_factory=ConfirmerConfig)
    positions: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    _counts: dict[tuple[str, str, str], _Count] = field(default_factory=dict)
    _last_alert: dict[tuple[str, str], _Sent] = field(default_factory=dict)
    _recent_by_subject: dict[str, list[tuple[str, _Sent]]] = field(default_factory=dict)
    _clock: dict[str, float] = field(default_factory=dict)  # camera id -> the latest time it observed

    def neighbours_of(self, camera_id: str) -> set[str]:
        """Cameras whose alerts for the same subject are duplicates of this camera's (within the window)."""
        c = self.config
        out = set(c.neighbours.get(camera_id, []))
        out |= {cam for cam, ns in c.neighbours.items() if camera_id in ns}
        if c.neighbour_distance_m > 0 and camera_id in self.positions:
            here = self.positions[camera_id]
            out |= {cam for cam, p in self.positions.items()
                    if cam != camera_id and _distance_m(here, p) <= c.neighbour_distance_m}
        return out

    def observe(self, camera_id: str, track_id: str, subject_id: str, score: float, ts: float,
                label: str = "face") -> AlertDecision | None:
        """Count one matching frame of ``track_id`` for ``subject_id``; decide once ``min_matches`` is reached."""
        c = self.config
        if score < c.min_match_score:
            return None
        self._expire(camera_id, ts)
        key = (camera_id, track_id, subject_id)
        cnt = self._counts.get(key)
        if cnt is None:
            cnt = self._counts[key] = _Count(first_ts=ts)
        cnt.n += 1
        cnt.best = max(cnt.best, score)
        cnt.last_ts = ts
        if cnt.decided or cnt.n < c.min_matches_by_label.get(label, c.min_matches):
            return None
        cnt.decided = True
        aid = alert_id(camera_id, track_id, subject_id, label)
        base = {"alert_id": aid, "camera_id": camera_id, "track_id": track_id, "subject_id": subject_id,
                "label": label, "ts": ts, "first_ts": cnt.first_ts, "score": cnt.best, "n_matches": cnt.n}
        prev = self._last_alert.get((subject_id, camera_id))
        if prev is not None and ts - prev.ts < c.cooldown_s:
            return AlertDecision(**base, decision="suppressed-cooldown", duplicate_of=prev.alert_id,
                                 reason=f"{subject_id} alerted on {camera_id} {ts - prev.ts:.0f}s ago "
                                        f"(cooldown {c.cooldown_s:.0f}s)")
        near = self.neighbours_of(camera_id)
        for cam, sent in reversed(self._recent_by_subject.get(subject_id, [])):
            # either order: another camera's alert is on its own clock, which may be far ahead of this one's
            if cam in near and abs(ts - sent.ts) < c.neighbour_window_s:
                when = f"{ts - sent.ts:.0f}s ago" if ts >= sent.ts else f"{sent.ts - ts:.0f}s after this frame"
                return AlertDecision(**base, decision="suppressed-neighbour", duplicate_of=sent.alert_id,
                                     reason=f"{subject_id} alerted on neighbouring camera {cam} "
                                            f"{when} (window {c.neighbour_window_s:.0f}s)")
        sent = _Sent(aid, ts)
        self._last_alert[(subject_id, camera_id)] = sent
        self._recent_by_subject.setdefault(subject_id, []).append((camera_id, sent))
        return AlertDecision(**base, decision="alert",
                             reason=f"{cnt.n} frames of track {track_id} matched {subject_id}")

    def state(self) -> dict[str, object]:
        """Pending per-track counts, cooldowns and recent alerts as plain data (for the shard's resume state)."""
        return {
            "counts": [[*k, v.n, v.best, v.first_ts, v.last_ts, v.decided] for k, v in self._counts.items()],
            "last_alert": [[s, c, v.alert_id, v.ts] for (s, c), v in self._last_alert.items()],
            "recent": [[subj, cam, v.alert_id, v.ts] for subj, lst in self._recent_by_subject.items()
                       for cam, v in lst],
            "clocks": dict(self._clock),
        }

    def load_state(self, st: Mapping[str, object]) -> None:
        """Restore what :meth:`state` saved."""
        self._counts = {(str(c), str(t), str(s)): _Count(int(n), float(b), float(f), float(la), bool(d))
                        for c, t, s, n, b, f, la, d in st.get("counts", [])}  # type: ignore[attr-defined]
        self._last_alert = {(str(s), str(c)): _Sent(str(a), float(ts))
                            for s, c, a, ts in st.get("last_alert", [])}  # type: ignore[attr-defined]
        self._recent_by_subject = {}
        for subj, cam, a, ts in st.get("recent", []):  # type: ignore[attr-defined]
            self._recent_by_subject.setdefault(str(subj), []).append((str(cam), _Sent(str(a), float(ts))))
        # each camera's clock; a state saved without it: the latest time of what the camera holds
        held = [(cam, v.last_ts) for (cam, _, _), v in self._counts.items()]
        held += [(cam, v.ts) for (_, cam), v in self._last_alert.items()]
        held += [(cam, v.ts) for lst in self._recent_by_subject.values() for cam, v in lst]
        self._clock = {}
        for cam, t in held:
            self._clock[cam] = max(t, self._clock.get(cam, t))
        saved: Mapping[str, float] = st.get("clocks") or {}  # type: ignore[assignment]
        self._clock.update({str(cam): float(t) for cam, t in saved.items()})

    def observe_frame(self, camera_id: str, tracked: Iterable[tuple[str, Detection]], ts: float) -> list[AlertDecision]:
        """Feed every matched detection of a tracked frame; returns the decisions it produced."""
        out = []
        for track_id, det in tracked:
            if det.subject_id is not None:
                d = self.observe(camera_id, track_id, det.subject_id, det.match_score, ts, det.label)
                if d is not None:
                    out.append(d)
        return out

    def _age(self, camera_id: str, ts: float) -> float:
        """How long ago ``ts`` was on ``camera_id``'s own clock (0 for a camera that observed nothing since)."""
        return self._clock.get(camera_id, ts) - ts

    def _rebase(self, camera_id: str, shift: float) -> None:
        """Move every time ``camera_id`` holds (counts, cooldowns, recent alerts) by ``shift`` seconds."""
        for (cam, _, _), v in self._counts.items():
            if cam == camera_id:
                v.first_ts, v.last_ts = v.first_ts + shift, v.last_ts + shift
        # new _Sent objects: the cooldown and the recent list share one, which must move once
        self._last_alert = {k: _Sent(v.alert_id, v.ts + shift) if k[1] == camera_id else v
                            for k, v in self._last_alert.items()}
        self._recent_by_subject = {subj: [(c, _Sent(s.alert_id, s.ts + shift) if c == camera_id else s)
                                          for c, s in lst] for subj, lst in self._recent_by_subject.items()}

    def _expire(self, camera_id: str, now: float) -> None:
        """Advance ``camera_id``'s clock to ``now`` and forget what is old on its own camera's clock.

        A ``now`` before the clock (the camera's stream restarted) moves what the camera holds back by the jump
        first, so that nothing it holds lies after ``now``.
        """
        last = self._clock.get(camera_id)
        if last is not None and now < last:
            self._rebase(camera_id, now - last)
        self._clock[camera_id] = now
        ttl = self.config.track_ttl_s
        first = itertools.islice(self._counts.items(), 16)
        if len(self._counts) > 1000 or any(self._age(k[0], v.last_ts) > ttl for k, v in first):
            self._counts = {k: v for k, v in self._counts.items() if self._age(k[0], v.last_ts) <= ttl}
        cool = self.config.cooldown_s
        if len(self._last_alert) > 1000:
            self._last_alert = {k: v for k, v in self._last_alert.items() if self._age(k[1], v.ts) < cool}
        keep = max(self.config.neighbour_window_s, 1.0)
        for subj in list(self._recent_by_subject):
            lst = [(c, s) for c, s in self._recent_by_subject[subj] if self._age(c, s.ts) < keep]
            if lst:
                self._recent_by_subject[subj] = lst
            else:
                del self._recent_by_subject[subj]
