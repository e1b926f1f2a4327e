"""Field-ingest routes: SOS presses, citizen reports, the LINE webhook, patrol GPS and QR red-box scans.

::

    POST /v1/field/sos       device   {"pole_id"} or {"lon", "lat", "accuracy_m", "reporter_id"} (+ "ts", "text")
                                      -> an sos_reports row and an ``sos`` alert at the top of the queue
    POST /v1/field/reports   device   {"category", "text", "lon", "lat", "reporter_id", "photo_b64"?, "ts"?}
                                      -> an sos_reports row (citizen_app) and a ``citizen-report`` alert
    POST /v1/field/line      LINE     the LINE Messaging API webhook; ``X-Line-Signature`` (Base64 HMAC-SHA256
                                      of the raw body with the channel secret) is checked, in constant time,
                                      before the body is parsed: a wrong one answers 401 and stores nothing.
                                      Text and location messages become citizen reports.
    POST /v1/field/gps       device   {"locations": [{"id", "lat", "lon", "timestamp", "speed", "bearing",
                                      "accuracy"}, ...]} (OsmAnd / Traccar field names; speed in m/s; timestamp
                                      ISO-8601 or Unix seconds / milliseconds, 2000-2100) -> patrol_pings; mobile
                                      cameras (van, drone, body camera) report their position the same way
    POST /v1/field/qr        device   {"scans": [{"unit_id", "checkpoint_id", "ts", "lon"?, "lat"?}]} ->
                                      checkpoint_scans; the answer lists the boxes missed this round

Every batch is validated by the one field-input reader, :func:`twin.fieldinput.validate_frame` (no 0,0 fixes,
no points outside the city's streets, times no later than now + the city's clock-skew bound, bad rows counted
and named), then written durably by the city's field store (:mod:`actors.field`) before the answer: *accepted
means written*. A retried request (same ``Idempotency-Key`` header, or the same body when there is none) is
stored once and answered ``duplicate: true``. The store commits to a twin snapshot at least every minute.

(No ``from __future__ import annotations``: FastAPI dependencies are defined here.)
"""

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import math
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serve.alerts_api import desk_call, desk_of
from serve.desk import Desk
from serve.ids import RecordId
from serve.limits import read_body
from serve.roles import Principal, replica_attr, require_role
from twin.fieldspecs import SHOWN_ROWS
from twin.fieldvalues import CellError, unix_datetime
from twin.schemas import MAX_ACCURACY_M

router = APIRouter()
M = TypeVar("M", bound=BaseModel)

DEVICE = Depends(require_role("device"))
Device = Annotated[Principal, DEVICE]
MAX_GPS_BODY = 8 * 2**20
MAX_SMALL_BODY = 64 * 1024
MAX_REPORT_BODY = 12 * 2**20  # a citizen report may carry one photo
MAX_LINE_BODY = 1 * 2**20
QR_NEAR_M = 50.0
CATEGORIES = ("emergency", "crime", "suspicious", "accident", "risk_point", "nuisance", "other")


# ----------------------------------------------------------------------------------------- bodies
class SosRequest(BaseModel):
    """An SOS press: a pole's id, or a phone's position."""

    model_config = ConfigDict(extra="forbid")

    pole_id: RecordId | None = Field(default=None, description="the SOS pole (place id) pressed")
    lon: float | None = Field(default=None, description="phone SOS: WGS84 longitude")
    lat: float | None = Field(default=None, description="phone SOS: WGS84 latitude")
    accuracy_m: float | None = Field(default=None, ge=0, le=MAX_ACCURACY_M, allow_inf_nan=False,
                                     description="phone SOS: GPS accuracy (m, the 68 % radius; at most "
                                                 f"{MAX_ACCURACY_M:,.0f}: a coarser value is no position)")
    reporter_id: RecordId | None = Field(default=None, description="pseudonymous user id")
    ts: str | int | float | None = Field(default=None, description="when (ISO-8601 or Unix s/ms); default: now")
    text: str | None = Field(default=None, max_length=2000, description="what the caller said")
    category: str | None = Field(default=None, max_length=40, description="emergency (default), crime, ...")


class ReportRequest(SosRequest):
    """A citizen report (Police I Lert U style): category, text, position, an optional photo."""

    photo_b64: str | None = Field(default=None, description="base64 of one JPEG/PNG/WebP photo")


def _model(model: type[M], body: Any, route: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}" for err in e.errors())
        raise HTTPException(422, f"POST {route}: {msg}"[:2000]) from None


# ----------------------------------------------------------------------------------------- helpers
async def _json(request: Request, limit: int, route: str, desk: Desk) -> tuple[Any, bytes]:
    raw = await read_body(request, limit)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "media_type").inc()
        raise HTTPException(415, f"send the body as JSON with Content-Type application/json (got {ctype or 'none'!r})")
    try:
        return json.loads(raw), raw
    except (ValueError, UnicodeDecodeError) as e:
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "json").inc()
        raise HTTPException(422, f"the body is not valid JSON ({str(e)[:120]})") from None
    except RecursionError:  # [[[[...]]]]: Python's parser gives up before the body is read
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "json").inc()
        raise HTTPException(422, "the body's JSON is nested too deeply: send the documented flat objects") from None


def _key(request: Request, route: str, raw: bytes) -> str:
    """The idempotency key: the client's ``Idempotency-Key`` header, else the route and the body's hash."""
    given = request.headers.get("idempotency-key")
    if given is not None:
        if not 1 <= len(given) <= 200:
            raise HTTPException(422, "Idempotency-Key must be 1..200 characters")
        return f"{route}|key|{given}"
    return f"{route}|body|{hashlib.sha256(raw).hexdigest()}"


def _unix_to_iso(v: Any) -> Any:
    """A device time sent as a number, Unix seconds or milliseconds (as OsmAnd/Traccar and LINE send; the rules are
    :func:`twin.fieldvalues.unix_datetime`'s), as ISO-8601 UTC (``1796000000500`` ->
    ``2026-11-30T00:53:20.500000+00:00``); anything else (ISO-8601 text) unchanged, for the field-input reader.

    Raises
    ------
    twin.fieldvalues.CellError
        A number whose time is before 2000-01-01 or from 2100-01-01 UTC on (see :func:`_device_time`).
    """
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v
    return unix_datetime(v).isoformat()


CLOCK_HINT = ("What to do: send the time as Unix seconds or milliseconds since 1970 (UTC), or as ISO-8601; a 1970 "
              "date is a device clock that was reset: set the device's clock (NTP/GPS time) and send again")


def _device_time(desk: Desk, v: Any, route: str, where: str, rows: int = 1) -> Any:
    """:func:`_unix_to_iso` of a device's time field; a number outside 2000-2100 refuses the request with 422
    naming ``where`` (``row 3, field 'timestamp'``) and what to do, and counts its ``rows`` as invalid (the
    one-report routes; batches use :func:`_batch_times`)."""
    try:
        return _unix_to_iso(v)
    except CellError as e:
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "invalid").inc(rows)
        raise HTTPException(422, f"POST {route}: {where}: {e}. {CLOCK_HINT}") from None


def _batch_times(rows: list[dict[str, Any]], keys: tuple[str, ...]
                 ) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """A batch's device times (fields ``keys``) through :func:`_unix_to_iso`, for the routes that drop bad rows:
    a row with a number outside 2000-2100 is left out, not the batch (a tracker's first fix after boot often has a
    1970 clock, and it resends its buffer).

    Returns ``(kept rows, their 1-based row numbers in the batch, warnings)``; the warning names the rows left
    out (``row 2, field 'timestamp': 0 as Unix seconds is 1970-01-01 ...``) and what to do."""
    kept: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[str] = []
    for i, r in enumerate(rows):
        try:
            for k in keys:
                if k in r:
                    r[k] = _unix_to_iso(r[k])
        except CellError as e:
            problems.append(f"row {i + 1}, field {k!r}: {e}")
            continue
        kept.append(r)
        numbers.append(i + 1)
    warnings = []
    if problems:
        warnings.append(f"{len(problems)} of {len(rows)} rows have a device time outside 2000-2100 and were left out: "
                        + "; ".join(problems[:SHOWN_ROWS]) + (" …" if len(problems) > SHOWN_ROWS else "")
                        + f". {CLOCK_HINT}")
    return kept, numbers, warnings


def _validate(desk: Desk, rows: list[dict[str, Any]], kind: str, route: str, *, drop: bool,
              numbers: list[int] | None = None) -> Any:
    """Rows through :func:`twin.fieldinput.validate_frame` with the city's area and clock-skew bound; ``numbers``:
    each row's 1-based number in the batch sent, for messages (when some rows were left out before)."""
    from twin.fieldinput import validate_frame
    from twin.fieldspecs import InputError

    try:
        res = validate_frame(rows, kind, source=f"POST {route}", area=desk.area, outside="drop" if drop else "refuse",
                             on_bad_row="drop" if drop else "raise", max_future_s=desk.cfg.max_clock_skew_s,
                             max_age_s=desk.cfg.max_age_s, lines=numbers, line_word="row")
    except InputError as e:
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "invalid").inc(len(rows) or 1)
        raise HTTPException(422, str(e)[:2000]) from None
    refused = len(rows) - len(res.frame)
    if refused:
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "rows").inc(refused)
    return res


def _kept_rows(desk: Desk, kept: list[dict[str, Any]], numbers: list[int], sent: int, kind: str,
               route: str) -> tuple[pd.DataFrame, list[str]]:
    """:func:`_validate` (dropping bad rows) of the rows :func:`_batch_times` kept of ``sent``: ``(frame of the
    rows accepted, warnings)``; the rows it left out are counted as refused rows. None kept: an empty frame (the
    route answers 422 with the warnings)."""
    if len(kept) < sent:
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "rows").inc(sent - len(kept))
    if not kept:
        return pd.DataFrame(), []
    res = _validate(desk, kept, kind, route, drop=True, numbers=numbers)
    return res.frame, res.warnings


def _table(layer: str, frame: pd.DataFrame, city: str) -> pa.Table:
    from twin.layers import LayerError, validate_table
    from twin.schemas import schema

    sch = schema(layer)
    names = [n for n in sch.names if n in frame.columns]
    frame = frame[names].copy()
    for n in names:
        if pa.types.is_timestamp(sch.field(n).type):  # the twin keeps milliseconds
            frame[n] = pd.to_datetime(frame[n], utc=True).dt.floor("ms")
    try:
        res = validate_table(layer, pa.Table.from_pandas(frame, preserve_index=False), city)
    except LayerError as e:
        raise HTTPException(422, f"rows do not fit the {layer} layer: {e}"[:2000]) from None
    if res.rejected:
        raise HTTPException(422, f"rows do not fit the {layer} layer: {res.rejected[0]}")
    return res.table


async def _accept(desk: Desk, layer: str, table: pa.Table, key: str, route: str,
                  raw: bytes | None = None) -> dict[str, Any]:
    body = hashlib.sha256(raw).hexdigest() if raw is not None else None  # the same key with another body: 409
    res = await desk_call(desk, "field", "accept", layer, table, key, body)
    if res["duplicate"]:
        desk.metrics.field_duplicates.labels(desk.cfg.city, route).inc()
    else:
        desk.metrics.field_accepted.labels(desk.cfg.city, layer).inc(res["accepted"])
    return res


def _rows_of(body: Any, field: str, route: str) -> list[dict[str, Any]]:
    rows = body.get(field) if isinstance(body, dict) else body
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise HTTPException(422, f"POST {route}: send {{\"{field}\": [{{...}}, ...]}} with at least one object")
    return rows


# ----------------------------------------------------------------------------------------- GPS
@router.post("/v1/field/gps", dependencies=[DEVICE])
async def field_gps(request: Request, who: Device) -> JSONResponse:
    """A batch of patrol and mobile-camera positions (OsmAnd / Traccar fields)."""
    route = "/v1/field/gps"
    desk = desk_of(request)
    body, raw = await _json(request, MAX_GPS_BODY, route, desk)
    rows = _rows_of(body, "locations", route)
    if len(rows) > 50_000:
        raise HTTPException(413, f"{len(rows)} positions in one batch: send at most 50,000")
    kept, numbers, warnings = _batch_times(rows, ("timestamp", "ts", "time", "fixtime", "devicetime"))
    key = _key(request, route, raw)
    frame, more = await asyncio.to_thread(_kept_rows, desk, kept, numbers, len(rows), "gps_pings", route)
    warnings += more
    if frame.empty:
        raise HTTPException(422, f"POST {route}: none of the {len(rows)} positions could be accepted: "
                                 + "; ".join(warnings)[:1800])
    frame = frame.assign(city=desk.cfg.city)
    table = await asyncio.to_thread(_table, "patrol_pings", frame, desk.cfg.city)
    acc = await _accept(desk, "patrol_pings", table, key, route, raw)
    return JSONResponse({"accepted": acc["accepted"], "refused": len(rows) - len(frame),
                         "duplicate": acc["duplicate"], "units": sorted(set(frame["unit_id"])),
                         "warnings": warnings[:5]})


# ----------------------------------------------------------------------------------------- SOS and reports
def _report_row(desk: Desk, r: dict[str, Any], route: str) -> dict[str, Any]:
    """One SOS press or citizen report validated into canonical fields (``ts`` UTC, ``lon``/``lat``)."""
    r = dict(r)
    r.setdefault("ts", dt.datetime.now(dt.UTC).isoformat())
    r["ts"] = _device_time(desk, r["ts"], route, "field 'ts'")
    pole = r.get("pole_id")
    if pole is not None:
        place = desk.places.get(str(pole))
        if place is None or place.get("kind") != "sos":
            poles = sorted(p for p, v in desk.places.items() if v.get("kind") == "sos")
            raise HTTPException(422, f"POST {route}: {str(pole)[:80]!r} is not an SOS pole of {desk.cfg.city} "
                                     f"(poles: {', '.join(poles[:20]) or 'none'})")
        if r.get("lon") is None and r.get("lat") is None:
            r["lon"], r["lat"] = place["lon"], place["lat"]
    elif r.get("lon") is None or r.get("lat") is None:
        raise HTTPException(422, f"POST {route}: send pole_id (an SOS pole) or lon and lat of the phone")
    res = _validate(desk, [r], "field_reports", route, drop=False)
    row = res.frame.iloc[0].to_dict()
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


async def _raise_report(request: Request, desk: Desk, route: str, row: dict[str, Any], key: str, *, source: str,
                        alert_kind: str, evidence: bytes | None = None, raw: bytes | None = None) -> dict[str, Any]:
    """Store the report durably, then raise its alert (deterministic ids: a retry is the same report)."""
    from twin.schemas import alert_id

    prefix = "sos" if alert_kind == "sos" else "rep"
    report_id = f"{desk.cfg.city}-{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    ts = pd.Timestamp(row["ts"]).tz_convert("UTC").to_pydatetime()
    category = row.get("category") or ("emergency" if alert_kind == "sos" else "other")
    if category not in CATEGORIES:
        raise HTTPException(422, f"POST {route}: category {category!r} is not one of {', '.join(CATEGORIES)}")
    rep = {"report_id": report_id, "city": desk.cfg.city, "ts": ts, "source": source, "pole_id": row.get("pole_id"),
           "reporter_id": row.get("reporter_id"), "category": category, "text": row.get("text"), "status": "new",
           "lon": row["lon"], "lat": row["lat"]}
    table = _table("sos_reports", pd.DataFrame([rep]), desk.cfg.city)
    acc = await _accept(desk, "sos_reports", table, key, route, raw)
    stored: dict[str, Any] = {"evidence_key": None}
    store = replica_attr("store") or getattr(request.app.state, "store", None)
    if evidence is not None and store is not None:
        from twin.evidence import put_evidence

        # a retry of the same report sends the same photo: the same write; another photo under the report's key
        # (a reused Idempotency-Key, a key written first by someone else) is stored beside it and named
        photo = await asyncio.to_thread(put_evidence, store, f"field/{desk.cfg.city}/{ts:%Y-%m-%d}/{report_id}.jpg",
                                        evidence, "image/jpeg")
        stored = photo.record_fields()
    camera = row.get("pole_id") or f"{source}:{row.get('reporter_id') or 'anonymous'}"
    alert = {"alert_id": alert_id(str(camera), alert_kind, row.get("pole_id"), report_id), "camera_id": str(camera),
             "ts": ts, "kind": alert_kind, "subject_id": row.get("pole_id") or row.get("reporter_id"),
             "lon": row["lon"], "lat": row["lat"], "track_id": report_id, **stored}
    details = {"report_id": report_id, "category": category, "text": row.get("text"), "source": source,
               "pole_id": row.get("pole_id"), "reporter_id": row.get("reporter_id"),
               "accuracy_m": row.get("accuracy_m")}
    rec = await desk_call(desk, "sink", "raise_field_alert", alert, details)
    return {"report_id": report_id, "alert_id": rec["alert_id"], "duplicate": bool(acc["duplicate"])}


@router.post("/v1/field/sos", dependencies=[DEVICE])
async def field_sos(request: Request, who: Device) -> JSONResponse:
    """An SOS pole press (``pole_id``) or a phone SOS (``lon``, ``lat``, ``accuracy_m``): an ``sos`` alert."""
    route = "/v1/field/sos"
    desk = desk_of(request)
    body, raw = await _json(request, MAX_SMALL_BODY, route, desk)
    req = _model(SosRequest, body, route)
    row = _report_row(desk, req.model_dump(exclude_none=True), route)
    out = await _raise_report(request, desk, route, row, _key(request, route, raw),
                              source="sos_pole" if row.get("pole_id") else "citizen_app", alert_kind="sos", raw=raw)
    return JSONResponse(out, status_code=200 if out["duplicate"] else 201)


@router.post("/v1/field/reports", dependencies=[DEVICE])
async def field_report(request: Request, who: Device) -> JSONResponse:
    """A citizen report as the Police I Lert U app sends it (category, text, position, optional photo)."""
    from serve.imaging import ImageDecodeError, decode_image, encode_jpeg

    route = "/v1/field/reports"
    desk = desk_of(request)
    body, raw = await _json(request, MAX_REPORT_BODY, route, desk)
    req = _model(ReportRequest, body, route)
    if req.pole_id is not None:
        raise HTTPException(422, f"POST {route}: a citizen report has no pole_id (an SOS pole press goes to "
                                 "/v1/field/sos)")
    body = req.model_dump(exclude_none=True)
    photo = body.pop("photo_b64", None)
    evidence = None
    if photo is not None:
        try:
            img = decode_image(base64.b64decode(photo, validate=True))
        except (binascii.Error, ValueError, ImageDecodeError) as e:
            raise HTTPException(422, f"POST {route}: photo_b64 is not a base64 JPEG/PNG/WebP image ({e})") from None
        evidence = encode_jpeg(np.ascontiguousarray(img), 90)
    row = _report_row(desk, body, route)
    out = await _raise_report(request, desk, route, row, _key(request, route, raw), source="citizen_app",
                              alert_kind="citizen-report", evidence=evidence, raw=raw)
    return JSONResponse(out, status_code=200 if out["duplicate"] else 201)


# ----------------------------------------------------------------------------------------- LINE
def line_signature(secret: bytes, body: bytes) -> str:
    """The ``X-Line-Signature`` of ``body``: Base64 of HMAC-SHA256 with the channel secret."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


@router.post("/v1/field/line")
async def field_line(request: Request) -> JSONResponse:
    """The LINE Messaging API webhook: signature first (401, nothing stored), then text and location messages
    become citizen reports (a location message carries the position; text alone raises an alert without one)."""
    route = "/v1/field/line"
    desk = desk_of(request)
    secret = desk.line_secret()
    if secret is None:
        raise HTTPException(503, "the LINE channel secret is not configured: set SSZ_LINE_CHANNEL_SECRET (or the "
                                 "file named in the desk config) and redeploy with `ssz api up`")
    given = request.headers.get("x-line-signature", "")
    raw = await read_body(request, MAX_LINE_BODY)
    if not hmac.compare_digest(given.encode(), line_signature(secret, raw).encode()):
        desk.metrics.field_rejected.labels(desk.cfg.city, route, "signature").inc()
        raise HTTPException(401, "X-Line-Signature does not match the body: the request is not from LINE "
                                 "(or the channel secret is wrong); nothing was stored")
    try:
        body = json.loads(raw)
        events = body["events"]
        assert isinstance(events, list)
    except (ValueError, KeyError, TypeError, AssertionError, RecursionError):
        raise HTTPException(422, "a LINE webhook body is {\"destination\", \"events\": [...]}") from None
    stamps = [_device_time(desk, ev["timestamp"], route, f"event {i + 1}, field 'timestamp'")  # all before storing
              if isinstance(ev, dict) and ev.get("timestamp") is not None else None for i, ev in enumerate(events)]
    made = []
    for i, ev in enumerate(events):
        msg = ev.get("message") if isinstance(ev, dict) else None
        if not isinstance(msg, dict) or ev.get("type") != "message" or msg.get("type") not in ("text", "location"):
            continue
        user = str((ev.get("source") or {}).get("userId") or "anonymous")
        reporter = "line:" + hashlib.sha256(user.encode()).hexdigest()[:16]  # pseudonymous
        ts = stamps[i]
        key = f"{route}|{ev.get('webhookEventId') or hashlib.sha256(raw).hexdigest() + f'#{i}'}"
        if msg["type"] == "location":
            row = _report_row(desk, {"lon": msg.get("longitude"), "lat": msg.get("latitude"), "ts": ts,
                                     "reporter_id": reporter, "text": msg.get("address") or msg.get("title"),
                                     "category": "other"}, route)
            made.append(await _raise_report(request, desk, route, row, key, source="citizen_app",
                                             alert_kind="citizen-report"))
        else:
            made.append(await _line_text(desk, reporter, str(msg.get("text", ""))[:2000], ts, key))
    return JSONResponse({"reports": made})


async def _line_text(desk: Desk, reporter: str, text: str, ts: str | None, key: str) -> dict[str, Any]:
    """A LINE text message without a position: a ``citizen-report`` alert (the twin's report layer needs a
    position, so the alert record is where it is kept)."""
    from twin.fieldvalues import parse_datetime
    from twin.schemas import alert_id

    try:
        when = parse_datetime(ts) if ts else dt.datetime.now(dt.UTC)
    except CellError as e:  # a timestamp sent as text that is not a time
        raise HTTPException(422, f"the LINE event's timestamp {str(ts)[:40]!r} is not a time ({e})") from None
    if when > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=desk.cfg.max_clock_skew_s):
        raise HTTPException(422, "the LINE event is dated in the future: refused")
    if when < dt.datetime.now(dt.UTC) - dt.timedelta(seconds=desk.cfg.max_age_s):
        raise HTTPException(422, f"the LINE event is dated {when:%Y-%m-%d}, older than {desk.cfg.max_age_s / 86400:g} "
                                 "days: refused")
    report_id = f"{desk.cfg.city}-line-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    alert = {"alert_id": alert_id(reporter, "citizen-report", reporter, report_id), "camera_id": reporter,
             "ts": when, "kind": "citizen-report", "subject_id": reporter, "track_id": report_id}
    rec = await desk_call(desk, "sink", "raise_field_alert", alert,
                          {"report_id": report_id, "text": text, "source": "line", "reporter_id": reporter,
                           "category": "other"})
    desk.metrics.field_accepted.labels(desk.cfg.city, "line_text").inc()
    return {"report_id": report_id, "alert_id": rec["alert_id"], "duplicate": bool(rec.get("duplicate"))}


# ----------------------------------------------------------------------------------------- QR
@router.post("/v1/field/qr", dependencies=[DEVICE])
async def field_qr(request: Request, who: Device) -> JSONResponse:
    """QR red-box scans; the answer says which boxes of the city are missed this round (not scanned for the
    city's ``qr_round_min`` minutes)."""
    route = "/v1/field/qr"
    desk = desk_of(request)
    body, raw = await _json(request, MAX_SMALL_BODY * 16, route, desk)
    rows = _rows_of(body, "scans", route)
    kept, numbers, warnings = _batch_times(rows, ("ts",))
    frame, more = _kept_rows(desk, kept, numbers, len(rows), "qr_scans", route)
    warnings += more
    if frame.empty:
        raise HTTPException(422, f"POST {route}: none of the {len(rows)} scans could be accepted: "
                                 + "; ".join(warnings)[:1800])
    boxes = {p: v for p, v in desk.places.items() if v.get("kind") == "qr"}
    unknown = sorted(set(frame["checkpoint_id"]) - set(boxes))
    if unknown:
        raise HTTPException(422, f"POST {route}: unknown QR box(es) {unknown[:5]} (boxes of {desk.cfg.city}: "
                                 f"{', '.join(sorted(boxes)[:10])} ...)")
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    valid, lon, lat, scan_ids = [], [], [], []
    for r in frame.itertuples():
        box = boxes[r.checkpoint_id]
        x, y = getattr(r, "lon", None), getattr(r, "lat", None)
        has = x is not None and y is not None and not (isinstance(x, float) and math.isnan(x))
        if has:
            valid.append(bool(geod.inv(box["lon"], box["lat"], x, y)[2] <= QR_NEAR_M))
        else:
            valid.append(None)
        lon.append(x if has else box["lon"])
        lat.append(y if has else box["lat"])
        scan_ids.append(f"{r.unit_id}-{r.checkpoint_id}-{pd.Timestamp(r.ts).value // 1_000_000}")
    scans = pd.DataFrame({"scan_id": scan_ids, "checkpoint_id": frame["checkpoint_id"], "unit_id": frame["unit_id"],
                          "officer_id": frame.get("officer_id"),
                          "city": desk.cfg.city, "ts": frame["ts"], "valid": valid, "lon": lon, "lat": lat})
    table = _table("checkpoint_scans", scans, desk.cfg.city)
    acc = await _accept(desk, "checkpoint_scans", table, _key(request, route, raw), route, raw)
    last = await desk_call(desk, "field", "last_scans")
    horizon = dt.datetime.now(dt.UTC).timestamp() - desk.cfg.qr_round_min * 60
    missed = sorted(b for b in boxes if last.get(b, 0.0) < horizon)
    return JSONResponse({"accepted": acc["accepted"], "refused": len(rows) - len(frame), "duplicate": acc["duplicate"],
                         "invalid_position": int(sum(v is False for v in valid)), "missed": missed,
                         "warnings": warnings[:5]})
