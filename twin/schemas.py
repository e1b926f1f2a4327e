"""The Arrow schema of every twin layer, defined once.

Each layer is a ``pyarrow.Schema`` in :data:`LAYERS` (name -> schema). Point layers carry their geometry as
WGS84 ``lon``/``lat`` plus the snapped street-graph edge (``edge_u``, ``edge_v``, ``edge_key``) and
``edge_offset_m`` (metres from ``u`` along the edge geometry); zones carry a WKB polygon too. Times are
``timestamp[ms, UTC]``, calendar days are ``date32``.

Constraints live in the field metadata, so the schema stays the one definition that the appenders in
:mod:`twin.layers` check rows against:

- ``enum``: allowed values, comma separated (e.g. alert ``status``: ``new,acknowledged,confirmed,dismissed``);
- ``min`` / ``max``: numeric bounds (inclusive);
- non-nullable fields are required.

:data:`KEYS` names each layer's primary key (used by snapshot diffs); :data:`ALERTS` is the contract the
stream actors write (see :func:`alert_id` for its deterministic id).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pyarrow as pa

from twin.kinds import AlertKind, CameraKind

TS = pa.timestamp("ms", tz="UTC")

MAX_ACCURACY_M = 10_000.0
"""Coarsest GPS accuracy (the 68 % radius a phone or tracker reports, m) a fix may carry: a network fix is 20-3000 m;
a "fix" coarser than 10 km cannot place a unit or a caller in a zone of about 0.5-0.7 km2, and is a tracker's
placeholder (99999, 1e9) rather than a position."""

MAX_ID_CHARS = 128
"""Longest id accepted in any layer or by any route, in characters (a unit, box, officer, camera or risk point id; a
Thai warrant number is about 12): field imports check it (:mod:`twin.fieldinput`), and :mod:`serve.ids` takes it
from here."""

ALERT_KINDS = tuple(k.value for k in AlertKind)
CAMERA_KINDS = tuple(k.value for k in CameraKind)
# An alert's verdict: new -> acknowledged (an operator took it) -> confirmed / dismissed. Dispatch (assigned_unit)
# and closing (closed_ts) are recorded beside the verdict, so a closed case keeps whether it was confirmed.
ALERT_STATUS = ("new", "acknowledged", "confirmed", "dismissed")
RISK_KINDS = ("lighting", "vegetation", "abandoned", "other")
RISK_STATUS = ("reported", "scheduled", "fixed")
OWNERS = ("police", "government", "private")


def _f(name: str, typ: pa.DataType, nullable: bool = True, enum: tuple[str, ...] | None = None,
       lo: float | None = None, hi: float | None = None, doc: str = "") -> pa.Field:
    meta: dict[str, str] = {}
    if enum is not None:
        meta["enum"] = ",".join(enum)
    if lo is not None:
        meta["min"] = repr(lo)
    if hi is not None:
        meta["max"] = repr(hi)
    if doc:
        meta["doc"] = doc
    return pa.field(name, typ, nullable=nullable, metadata=meta or None)


def _geo(required: bool = True) -> list[pa.Field]:
    """WGS84 position plus the snapped street edge (filled by :mod:`twin.snap`)."""
    return [
        _f("lon", pa.float64(), not required, lo=-180.0, hi=180.0, doc="WGS84 longitude"),
        _f("lat", pa.float64(), not required, lo=-90.0, hi=90.0, doc="WGS84 latitude"),
        _f("edge_u", pa.int64(), doc="street-graph edge start node (OSM id)"),
        _f("edge_v", pa.int64(), doc="street-graph edge end node (OSM id)"),
        _f("edge_key", pa.int32(), lo=0, doc="parallel-edge key"),
        _f("edge_offset_m", pa.float64(), lo=0.0, doc="metres from edge_u along the edge geometry"),
    ]


def _city() -> pa.Field:
    return _f("city", pa.string(), False, doc="city id, e.g. chiangmai")


ZONES = pa.schema([
    _f("zone_id", pa.string(), False),
    _city(),
    _f("name", pa.string(), False),
    _f("name_th", pa.string()),
    _f("kind", pa.string(), False, enum=("zone", "community", "beat", "other")),
    _f("area_km2", pa.float64(), lo=0.0),
    _f("population", pa.int64(), lo=0),
    _f("geometry", pa.binary(), False, doc="WKB polygon, WGS84"),
    _f("lon", pa.float64(), False, lo=-180.0, hi=180.0, doc="centroid longitude"),
    _f("lat", pa.float64(), False, lo=-90.0, hi=90.0, doc="centroid latitude"),
])

PLACES = pa.schema([
    _f("place_id", pa.string(), False),
    _city(),
    _f("name", pa.string(), False),
    _f("kind", pa.string(), False, doc="police_station, school, gold_shop, sos, qr, report_point, ..."),
    _f("in_zone", pa.bool_()),
    _f("source", pa.string(), enum=("surveyed", "approximate", "generated", "osm", "reported")),
    *_geo(),
])

CAMERAS = pa.schema([
    _f("camera_id", pa.string(), False),
    _city(),
    _f("kind", pa.string(), False, enum=CAMERA_KINDS),
    _f("mount", pa.string(), False, enum=("fixed", "mobile")),
    _f("mobile_kind", pa.string(), enum=("van", "drone", "bodycam")),
    _f("owner", pa.string(), False, enum=OWNERS),
    _f("heading_deg", pa.float64(), False, lo=0.0, hi=360.0, doc="compass bearing of the view axis"),
    _f("fov_deg", pa.float64(), False, lo=0.0, hi=360.0, doc="horizontal field of view"),
    _f("range_m", pa.float64(), False, lo=0.0, hi=1000.0, doc="useful recognition range"),
    _f("faces", pa.bool_()),
    _f("plates", pa.bool_()),
    _f("in_zone", pa.bool_()),
    _f("online", pa.bool_()),
    _f("source", pa.string(), enum=("surveyed", "approximate", "generated", "osm", "reported")),
    *_geo(),
])

DETECTIONS = pa.schema([
    _f("detection_id", pa.string(), False),
    _f("camera_id", pa.string(), False),
    _city(),
    _f("ts", TS, False),
    _f("kind", pa.string(), False, enum=("face", "plate", "person", "vehicle")),
    _f("track_id", pa.string()),
    _f("score", pa.float32(), False, lo=0.0, hi=1.0),
    _f("subject_id", pa.string(), doc="matched watchlist/hotlist record; null when unmatched"),
    _f("plate_text", pa.string()),
    _f("bbox_x1", pa.int32(), lo=0), _f("bbox_y1", pa.int32(), lo=0),
    _f("bbox_x2", pa.int32(), lo=0), _f("bbox_y2", pa.int32(), lo=0),
    *_geo(required=False),
])

ALERTS = pa.schema([
    _f("alert_id", pa.string(), False, doc="deterministic id (twin.schemas.alert_id), for dedupe"),
    _f("camera_id", pa.string(), False),
    _f("ts", TS, False),
    _f("kind", pa.string(), False, enum=ALERT_KINDS),
    _f("subject_id", pa.string(), doc="matched record id (watchlist person, hotlist plate, SOS pole)"),
    _f("score", pa.float32(), lo=0.0, hi=1.0),
    _f("evidence_key", pa.string(), doc="object key of the crop in the evidence bucket"),
    _f("status", pa.string(), False, enum=ALERT_STATUS),
    _f("status_by", pa.string(), doc="operator who confirmed/dismissed"),
    _f("status_ts", TS),
    _f("lon", pa.float64(), lo=-180.0, hi=180.0),
    _f("lat", pa.float64(), lo=-90.0, hi=90.0),
    _city(),
    _f("track_id", pa.string()),
    _f("frames", pa.int32(), lo=0, doc="frames of the track that supported the alert"),
    *_geo()[2:],
    _f("status_reason", pa.string(), doc="reason code of the operator's decision (from the city's list, e.g. "
                                         "wrong-person, look-alike-plate, test, duplicate)"),
    _f("track_start_pts", pa.float64(), doc="stream time (s) of the track's first frame, on the camera's own clock "
                                             "(Unix time for simulated cameras, seconds from stream start for files)"),
    _f("assigned_unit", pa.string(), doc="patrol unit the alert was sent to (CCOC dispatch)"),
    _f("closed_ts", TS, doc="when the case was closed (null: open)"),
])

PATROL_PINGS = pa.schema([
    _f("unit_id", pa.string(), False),
    _city(),
    _f("ts", TS, False),
    _f("trip_id", pa.string()),
    _f("speed_mps", pa.float32(), lo=0.0, hi=100.0),
    _f("heading_deg", pa.float32(), lo=0.0, hi=360.0),
    _f("accuracy_m", pa.float32(), lo=0.0, hi=MAX_ACCURACY_M),
    *_geo(),
])

PATROL_TRIPS = pa.schema([
    _f("trip_id", pa.string(), False),
    _f("unit_id", pa.string(), False),
    _city(),
    _f("start_ts", TS, False),
    _f("end_ts", TS, False),
    _f("distance_m", pa.float64(), lo=0.0),
    _f("n_pings", pa.int32(), lo=0),
    _f("checkpoints_planned", pa.int32(), lo=0),
    _f("checkpoints_scanned", pa.int32(), lo=0),
    _f("path_lon", pa.list_(pa.float64()), doc="trip polyline longitudes"),
    _f("path_lat", pa.list_(pa.float64()), doc="trip polyline latitudes"),
    _f("path_ts", pa.list_(TS), doc="time at each polyline vertex (kepler trip layer)"),
])

CHECKPOINT_SCANS = pa.schema([
    _f("scan_id", pa.string(), False),
    _f("checkpoint_id", pa.string(), False, doc="place_id of the QR red box"),
    _f("unit_id", pa.string(), False),
    _f("officer_id", pa.string()),
    _city(),
    _f("ts", TS, False),
    _f("trip_id", pa.string()),
    _f("valid", pa.bool_(), doc="the scan's GPS was near the box"),
    *_geo(),
])

SOS_REPORTS = pa.schema([
    _f("report_id", pa.string(), False),
    _city(),
    _f("ts", TS, False),
    _f("source", pa.string(), False, enum=("sos_pole", "citizen_app", "hotline", "patrol")),
    _f("pole_id", pa.string(), doc="place_id of the SOS pole, for source=sos_pole"),
    _f("reporter_id", pa.string(), doc="pseudonymous app user id"),
    _f("category", pa.string(), False,
       enum=("emergency", "crime", "suspicious", "accident", "risk_point", "nuisance", "other")),
    _f("text", pa.string()),
    _f("status", pa.string(), False, enum=("new", "dispatched", "resolved", "false_alarm")),
    _f("status_by", pa.string()),
    _f("status_ts", TS),
    *_geo(),
])

RISK_POINTS = pa.schema([
    _f("risk_id", pa.string(), False),
    _city(),
    _f("kind", pa.string(), False, enum=RISK_KINDS),
    _f("status", pa.string(), False, enum=RISK_STATUS),
    _f("description", pa.string()),
    _f("reported_date", pa.date32(), False),
    _f("scheduled_date", pa.date32(), doc="required once status is scheduled or fixed"),
    _f("fixed_date", pa.date32(), doc="required once status is fixed"),
    _f("reported_by", pa.string()),
    _f("agency", pa.string(), doc="who fixes it (municipality, PEA, ...)"),
    *_geo(),
])

SURVEY_RESULTS = pa.schema([
    _city(),
    _f("community", pa.string(), False),
    _f("month", pa.date32(), False, doc="first day of the survey month"),
    _f("respondents", pa.int32(), False, lo=1),
    _f("fear_of_crime_pct", pa.float64(), False, lo=0.0, hi=100.0, doc="target below 40"),
    _f("confidence_in_police_pct", pa.float64(), False, lo=0.0, hi=100.0, doc="target above 80"),
    _f("source", pa.string(), doc="e.g. People Poll"),
])

LAYERS: dict[str, pa.Schema] = {
    "zones": ZONES,
    "places": PLACES,
    "cameras": CAMERAS,
    "detections": DETECTIONS,
    "alerts": ALERTS,
    "patrol_pings": PATROL_PINGS,
    "patrol_trips": PATROL_TRIPS,
    "checkpoint_scans": CHECKPOINT_SCANS,
    "sos_reports": SOS_REPORTS,
    "risk_points": RISK_POINTS,
    "survey_results": SURVEY_RESULTS,
}

# Primary key of each layer (snapshot diffs match rows on it).
KEYS: dict[str, tuple[str, ...]] = {
    "zones": ("zone_id",),
    "places": ("place_id",),
    "cameras": ("camera_id",),
    "detections": ("detection_id",),
    "alerts": ("alert_id",),
    "patrol_pings": ("unit_id", "ts"),
    "patrol_trips": ("trip_id",),
    "checkpoint_scans": ("scan_id",),
    "sos_reports": ("report_id",),
    "risk_points": ("risk_id",),
    "survey_results": ("city", "community", "month"),
}


def schema(layer: str) -> pa.Schema:
    """The schema of a layer by name.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the known layers).
    """
    try:
        return LAYERS[layer]
    except KeyError:
        raise KeyError(f"unknown twin layer {layer!r}: known layers are {', '.join(LAYERS)}") from None


def enum_values(field: pa.Field) -> tuple[str, ...] | None:
    """The allowed values of an enumerated field (from its metadata), or None when not enumerated.
    """
    raw = (field.metadata or {}).get(b"enum")
    return tuple(raw.decode().split(",")) if raw else None


def bounds(field: pa.Field) -> tuple[float | None, float | None]:
    """The inclusive ``(min, max)`` bounds of a numeric field from its metadata (None where unbounded).
    """
    meta = field.metadata or {}
    lo, hi = meta.get(b"min"), meta.get(b"max")
    return (float(lo) if lo else None, float(hi) if hi else None)


def empty(layer: str) -> pa.Table:
    """An empty table of a layer (its schema, no rows).
    """
    return schema(layer).empty_table()


def alert_id(camera_id: str, kind: str, subject_id: str | None, track_id: str | None, ts: datetime | None = None,
             bucket_s: int = 60) -> str:
    """Deterministic alert id: the same camera, kind, subject and track give the same id, so retries dedupe.

    Without a track id the time (bucketed to ``bucket_s`` seconds) stands in for it, so one subject seen
    twice by the same camera in the same minute is one alert.

    Parameters
    ----------
    camera_id
        The camera (or SOS pole).
    kind
        The alert kind (:class:`twin.kinds.AlertKind`).
    subject_id, track_id
        The subject matched (None for none) and the track (None: use ``ts``).
    ts
        The alert time, when there is no track.
    bucket_s
        Width of the time bucket standing in for a track (s).

    Returns
    -------
    str
        ``<kind>-<16 hex digits>``.

    Raises
    ------
    ValueError
        With neither a track id nor a time.
    """
    if track_id is None:
        if ts is None:
            raise ValueError("alert_id needs a track_id or a ts")
        track_id = f"t{int(ts.timestamp()) // bucket_s}"
    raw = "|".join((camera_id, kind, subject_id or "-", track_id))
    return f"{kind}-{hashlib.sha1(raw.encode()).hexdigest()[:16]}"
