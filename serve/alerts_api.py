"""Alert routes of the API: the CCOC queue, one alert, its evidence, operator actions and the live stream.

::

    GET  /v1/alerts?status=&kind=&camera=&since=&until=&limit=&offset=         analyst   a page of alerts
    GET  /v1/alerts:stream                                                     analyst   server-sent events (new
                                                                                         alerts, actions, counts)
    GET  /v1/alerts/{id}                                                       analyst   one alert
    GET  /v1/alerts/{id}/evidence                                              analyst   the crop (JPEG) from the
                                                                                         locked evidence bucket
    POST /v1/alerts/{id}:acknowledge|:confirm|:dismiss|:assign|:close           operator  {"reason", "unit"}

Alert state lives in one place, the city's alert sink actor (records in the versioned ``twin`` bucket, its
alerts layer in the twin snapshots; see :mod:`actors.alerts`): these routes call it through
:class:`serve.desk.Desk`. An action is audited with the token's user before it takes effect (a failed audit
write answers 503 and changes nothing); repeating it changes nothing (200, ``changed: false``); an alert that
another operator holds answers 409 naming them. A dismissal needs a reason code from the city's list. Ids may
contain ``/`` (path converters).

(No ``from __future__ import annotations``: FastAPI dependencies are defined here.)
"""

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from serve.desk import Desk, priority
from serve.errors import ConflictError, NotFoundError, UnavailableError
from serve.ids import RecordId, check_record_id
from serve.limits import read_body
from serve.roles import Principal, replica_attr, require_role
from twin.evidence import EvidenceMissing, read_original
from twin.objectstore import Store, StoreError

router = APIRouter()
log = logging.getLogger("ray.serve")

ACTIONS = ("acknowledge", "confirm", "dismiss", "assign", "close")
MAX_ACTION_BODY = 4096
ANALYST = Depends(require_role("analyst"))
OPERATOR = Depends(require_role("operator"))
Analyst = Annotated[Principal, ANALYST]
Operator = Annotated[Principal, OPERATOR]
AlertId = Annotated[str, Path(description="alert id (URL-encoded; may contain '/')"),
                    AfterValidator(lambda v: check_record_id(v, "alert id"))]


class ActionRequest(BaseModel):
    """What an operator sends with an action (all optional but the dismissal's reason and the unit to assign)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200, description="why: a reason code from the city's list "
                                                                         "for a dismissal, free text otherwise")
    unit: RecordId | None = Field(default=None, description="the patrol unit to send (assign)")


class AlertPage(BaseModel):
    """One page of alerts, queue order (priority, then newest first)."""

    items: list[dict[str, Any]] = Field(description="alert records")
    total: int = Field(description="alerts matching the filters")
    offset: int = Field(description="index of the first item")
    limit: int = Field(description="page size")


def desk_of(request: Request) -> Desk:
    """The :class:`serve.desk.Desk` of this replica (503 when the API was deployed without a city)."""
    desk = replica_attr("desk") or getattr(request.app.state, "desk", None)
    if desk is None:
        raise HTTPException(503, "this API serves no city's command room: deploy it with `ssz api up --city CITY`")
    return desk


async def desk_call(desk: Desk, which: str, method: str, *args: Any) -> Any:
    """Call an actor method of the desk, mapping service errors to HTTP (404, 409, 503)."""
    try:
        return await desk.call(which, method, *args)
    except NotFoundError as e:
        raise HTTPException(404, _cause(e)) from None
    except ConflictError as e:
        raise HTTPException(409, _cause(e)) from None
    except UnavailableError as e:
        raise HTTPException(503, _cause(e)) from None
    except StoreError as e:  # the actor could not reach the object store: nothing it was asked to write is half-done
        raise HTTPException(503, f"{_cause(e)}; send the same request again once the store is back (a repeated "
                                 "request is stored once)") from None


def _cause(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    return str(cause).strip("'\"")[:2000]


def alert_view(rec: dict[str, Any], desk: Desk) -> dict[str, Any]:
    """A record as the console shows it: plus its priority (0 most urgent), procedure text, the place's name and
    its ``state`` (``closed`` once closed, else its status)."""
    out = {k: v for k, v in rec.items() if k not in ("open", "written_ts")}
    out["priority"] = priority(rec.get("kind", "other"))
    out["procedure"] = desk.cfg.procedures.get(rec.get("kind", ""), "")
    place = desk.places.get(str(rec.get("camera_id")))
    if place is not None:
        out["place"] = place.get("name")
    out["state"] = "closed" if rec.get("closed_ts") else rec.get("status", "new")
    return out


def queue_order(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``views`` (of :func:`alert_view`) sorted in place in queue order, most urgent priority first, then newest."""
    views.sort(key=lambda r: r["ts"], reverse=True)
    views.sort(key=lambda r: r["priority"])
    return views


def _ts(v: str | None, what: str) -> dt.datetime | None:
    if v is None:
        return None
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"{what}: {v[:40]!r} is not an ISO-8601 time, e.g. 2026-11-30T08:00:00Z") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


_LIST_PARAMS = frozenset({"status", "kind", "camera", "since", "until", "limit", "offset"})


@router.get("/v1/alerts", response_model=AlertPage, dependencies=[ANALYST])
async def list_alerts(request: Request, _: Analyst,
                      status: Annotated[Literal["new", "acknowledged", "confirmed", "dismissed", "closed",
                                                "open"] | None, Query(description="state; open = not closed")] = None,
                      kind: Annotated[str | None, Query(max_length=40)] = None,
                      camera: Annotated[str | None, Query(max_length=200)] = None,
                      since: Annotated[str | None, Query(description="ISO time, inclusive")] = None,
                      until: Annotated[str | None, Query(description="ISO time, exclusive")] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      offset: Annotated[int, Query(ge=0)] = 0) -> AlertPage:
    """A page of the city's alerts, filtered, in queue order (SOS first, then newest first)."""
    from twin.schemas import ALERT_KINDS

    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:  # a misspelt filter (stauts=new) would otherwise list every alert
        raise HTTPException(422, f"unknown query parameter(s) {unknown[:10]}; allowed: {sorted(_LIST_PARAMS)}")
    if kind is not None and kind not in ALERT_KINDS:
        raise HTTPException(422, f"kind {kind[:40]!r} is not an alert kind: one of {', '.join(ALERT_KINDS)}")
    desk = desk_of(request)
    t0, t1 = _ts(since, "since"), _ts(until, "until")
    recs = await desk_call(desk, "sink", "records")
    out = []
    for rec in recs:
        v = alert_view(rec, desk)
        if status == "open" and v["state"] == "closed":
            continue
        if status not in (None, "open") and v["state"] != status:
            continue
        if kind and rec.get("kind") != kind:
            continue
        if camera and rec.get("camera_id") != camera:
            continue
        ts = dt.datetime.fromisoformat(rec["ts"])
        if (t0 and ts < t0) or (t1 and ts >= t1):
            continue
        out.append(v)
    queue_order(out)
    return AlertPage(items=out[offset:offset + limit], total=len(out), offset=offset, limit=limit)


@router.get("/v1/alerts:stream", dependencies=[ANALYST], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_alerts(request: Request, _: Analyst) -> StreamingResponse:
    """Server-sent events: ``event: alert`` for each new alert, ``event: update`` for each action, ``event:
    counts`` after each batch of those (the open alerts by status, ``{"total", "counts": {status: n}, "version"}``:
    each replaces the last; keep /console/queue's counts only while their version is higher), ``: ping`` every
    15 s. Reconnect with the browser's EventSource; reload the list after a reconnect."""
    desk = desk_of(request)
    q = await desk.subscribe()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), timeout=15.0)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                name = item["event"] if item.get("event") in ("alert", "counts") else "update"
                body = {k: v for k, v in item.items() if k != "event"}
                if "alert_id" in body and "kind" in body:
                    body = alert_view(body, desk) | {k: body[k] for k in ("action", "by") if k in body}
                yield f"event: {name}\ndata: {json.dumps(body, ensure_ascii=False, default=str)}\n\n".encode()
        except Exception:
            log.exception("alert stream of %s failed", desk.cfg.city)
            raise
        finally:
            desk.unsubscribe(q)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/v1/alerts/{alert_id:path}/evidence", dependencies=[ANALYST],
            responses={200: {"content": {"image/jpeg": {}}}})
async def alert_evidence(request: Request, _: Analyst, alert_id: AlertId) -> Response:
    """The alert's evidence crop (JPEG) from the object-locked evidence bucket (its first version: see
    :func:`original_evidence`)."""
    desk = desk_of(request)
    rec = await desk_call(desk, "sink", "get", alert_id)
    key = rec.get("evidence_key")
    store = replica_attr("store") or getattr(request.app.state, "store", None)
    if not key:
        raise HTTPException(404, f"alert {alert_id} has no evidence crop (SOS presses and camera outages have none)")
    if store is None:
        raise HTTPException(503, "this API replica has no object store")
    data = await asyncio.to_thread(original_evidence, store, key, rec.get("evidence_version"))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def original_evidence(store: Store, key: str, version_id: str | None = None) -> bytes:
    """The crop stored with the alert, locked: the version ``version_id`` the record keeps, or (records from
    before it was kept) the first version written under ``key`` in the evidence bucket
    (:func:`twin.evidence.read_original`: a later version or delete marker under the key is ignored).

    Raises HTTPException 404 when no version exists, and StoreError when the store cannot be read.
    """
    try:
        return read_original(store, key, version_id)
    except EvidenceMissing as e:
        raise HTTPException(404, f"{e}: report it to the platform's administrator (the audit log names the "
                                 "alert)") from e


async def _action_body(request: Request) -> ActionRequest:
    raw = await read_body(request, MAX_ACTION_BODY)
    if not raw.strip():
        return ActionRequest()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPException(415, f"send the body as JSON with Content-Type application/json (got {ctype or 'none'!r})")
    try:
        return ActionRequest.model_validate_json(raw)
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}" for err in e.errors())
        raise HTTPException(422, msg[:2000]) from None


@router.post("/v1/alerts/{alert_id:path}:{action}", dependencies=[OPERATOR],
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                 "schema": ActionRequest.model_json_schema()}}}})
async def alert_action(request: Request, who: Operator, alert_id: AlertId,
                       action: Annotated[str, Path(description="acknowledge, confirm, dismiss, assign or close")]
                       ) -> JSONResponse:
    """Acknowledge (take), confirm, dismiss (reason code), assign (unit) or close an alert; audited first."""
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r} on alerts: use one of {', '.join(ACTIONS)}")
    desk = desk_of(request)
    body = await _action_body(request)
    reason = (body.reason or "").strip() or None
    if action == "dismiss" and reason not in desk.cfg.dismiss_reasons:
        raise HTTPException(422, f"dismissing needs a reason code, one of {', '.join(desk.cfg.dismiss_reasons)} "
                                 f"({f'got {reason!r}' if reason else 'none was chosen'})")
    unit = (body.unit or "").strip() or None
    if action == "assign":
        known = set(desk.cfg.units) | set(desk.cfg.mobile_cameras)
        if unit is None or (known and unit not in known):
            raise HTTPException(422, f"assigning needs a patrol unit, one of {', '.join(sorted(known)) or '-'} "
                                     f"({f'got {unit!r}' if unit else 'none was chosen'})")
    rec = await desk_call(desk, "sink", "act", alert_id, action, who.actor, reason, unit)
    if rec.get("changed"):
        desk.metrics.observe_action(rec, action)
    return JSONResponse(alert_view(rec, desk) | {"changed": rec.get("changed", False)})


@router.get("/v1/alerts/{alert_id:path}", dependencies=[ANALYST])
async def get_alert(request: Request, _: Analyst, alert_id: AlertId) -> JSONResponse:
    """One alert record (with its procedure text and priority)."""
    desk = desk_of(request)
    return JSONResponse(alert_view(await desk_call(desk, "sink", "get", alert_id), desk))
