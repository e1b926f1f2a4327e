"""Routes of the CCOC console: the page, its static files, log-in into an HttpOnly cookie, and its JSON views.

::

    GET  /console                 none      the one page (HTML); it asks /console/me and shows a log-in form on 401
    GET  /console/static/{file}   none      the page's JavaScript and CSS (shipped in the package: no CDN)
    POST /console/login           none      {"token"}: a valid token (any role but device) is set as the HttpOnly,
                                            SameSite=Strict cookie ``ssz_token``; 401 otherwise; 403 without the
                                            header ``X-SSZ-Console: 1`` (a cross-site form cannot send it)
    POST /console/logout          none      clears the cookie (403 without ``X-SSZ-Console: 1``)
    GET  /console/me              analyst   who is logged in, the city, reason codes, units, procedures
    GET  /console/map             analyst   streets, cameras, places, zone outline (serve.desk.MapData)
    GET  /console/live            analyst   units (last position + 15-min trail), camera health, QR boxes missed
    GET  /console/search?q=       operator  alerts, warrants and hotlist entries matching a plate or warrant number
    GET  /console/activity        supervisor who did what to which alert, watchlist or hotlist entry or user, and
                                            when (the alert, watchlist, hotlist and access audit logs)
    GET  /console/kpi             analyst   People Poll per community vs the targets, alert and response counts
    GET  /metrics                 analyst   Prometheus text format (scrape with a bearer token)

The page is plain JavaScript and SVG (no framework, no map tiles), in Thai and English.

(No ``from __future__ import annotations``: FastAPI dependencies are defined here.)
"""

import asyncio
import datetime as dt
import statistics
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from serve.alerts_api import alert_view, desk_call, desk_of, queue_order
from serve.limits import read_body
from serve.metrics import CONTENT_TYPE
from serve.roles import CONSOLE_HEADER, COOKIE, Principal, authenticator, replica_attr, require_role

router = APIRouter()

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ANALYST = Depends(require_role("analyst"))
OPERATOR = Depends(require_role("operator"))
SUPERVISOR = Depends(require_role("supervisor"))
Analyst = Annotated[Principal, ANALYST]
FEAR_TARGET_PCT = 40.0
CONFIDENCE_TARGET_PCT = 80.0
# Content-Security-Policy of the page: its own scripts and styles only, images from itself (evidence crops).
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def console_page() -> Response:
    """The console page (log-in form until a token cookie is set)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"})


@router.get("/console/static/{name}", include_in_schema=False)
async def console_static(name: str) -> Response:
    """The page's own JavaScript and CSS files."""
    path = STATIC / name
    if path.suffix not in STATIC_TYPES or path.parent != STATIC or not path.is_file():
        raise HTTPException(404, f"no console file {name[:80]!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"X-Content-Type-Options": "nosniff",
                                                                            "Cache-Control": "no-cache"})


@router.post("/console/login", include_in_schema=False)
async def console_login(request: Request) -> JSONResponse:
    """Check a token and keep it in the HttpOnly cookie; field devices cannot log in to the console."""
    import json

    _console_only(request)
    raw = await read_body(request, 4096)
    try:
        token = str(json.loads(raw)["token"]).strip()
    except (ValueError, KeyError, TypeError, RecursionError):
        raise HTTPException(422, 'send {"token": "..."} as JSON') from None
    who = await authenticator(request).principal(f"Bearer {token}") if token else None
    if who is None:
        raise HTTPException(401, "unknown token: ask an admin for one (`ssz api token --user NAME --role operator`)")
    if who.role == "device":
        raise HTTPException(403, "a field device token cannot log in to the console")
    resp = JSONResponse({"user": who.user, "role": who.role})
    secure = request.url.scheme == "https"
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/", max_age=12 * 3600)
    return resp


@router.post("/console/logout", include_in_schema=False)
async def console_logout(request: Request) -> JSONResponse:
    """Forget the cookie."""
    _console_only(request)
    resp = JSONResponse({"logged_out": True})
    resp.delete_cookie(COOKIE, path="/")
    return resp


def _console_only(request: Request) -> None:
    """403 unless the request carries ``X-SSZ-Console: 1``: another site's page could otherwise post a form (with
    a text/plain body that reads as JSON) and log the operator's browser in as someone else, or out."""
    if request.headers.get(CONSOLE_HEADER) != "1":
        raise HTTPException(403, f"log in and out from the console page (it sends the header {CONSOLE_HEADER}: 1); "
                                 "API clients send 'Authorization: Bearer <token>' instead of logging in")


@router.get("/console/me", dependencies=[ANALYST])
async def console_me(request: Request, who: Analyst) -> JSONResponse:
    """Who is logged in, and what the page needs to know about the city."""
    desk = desk_of(request)
    c = desk.cfg
    return JSONResponse({"user": who.user, "role": who.role, "city": c.city, "name": c.name, "name_th": c.name_th,
                         "station_th": c.station_th, "dismiss_reasons": c.dismiss_reasons, "units": c.units,
                         "mobile_cameras": c.mobile_cameras, "procedures": c.procedures})


@router.get("/console/map", dependencies=[ANALYST])
async def console_map(request: Request, _: Analyst) -> JSONResponse:
    """The map's fixed layers (streets, cameras, places, zone)."""
    return JSONResponse(desk_of(request).cfg.map.model_dump(mode="json"))


@router.get("/console/live", dependencies=[ANALYST])
async def console_live(request: Request, _: Analyst) -> JSONResponse:
    """What moves: units with trails, cameras offline (open camera-offline alerts), the streamed cameras' health
    (fps, gate pass ratio, drops, last error, from the running shards), QR boxes missed."""
    desk = desk_of(request)
    units, last, recs, cams = await asyncio.gather(desk_call(desk, "field", "positions"),
                                                   desk_call(desk, "field", "last_scans"),
                                                   desk_call(desk, "sink", "records"), desk.camera_stats())
    offline = {r["camera_id"]: {"since": r["ts"], "alert_id": r["alert_id"]}
               for r in recs if r.get("kind") == "camera-offline" and r.get("open")}
    horizon = dt.datetime.now(dt.UTC).timestamp() - desk.cfg.qr_round_min * 60
    boxes = [p for p, v in desk.places.items() if v.get("kind") == "qr"]
    streamed = {c: {k: v.get(k) for k in ("health", "fps_decoded", "gate_pass_ratio", "dropped", "detections",
                                          "last_error", "last_frame_age_s")} for c, v in cams.items()}
    return JSONResponse({"units": units, "offline": offline, "streamed": streamed,
                         "qr": {b: {"last_scan": last.get(b), "missed": last.get(b, 0.0) < horizon} for b in boxes}})


QUEUE_CAP = 2000  # open alerts sent to a console at most (the most urgent): a page cannot work 100k cards anyway


@router.get("/console/queue", dependencies=[ANALYST])
async def console_queue(request: Request, _: Analyst) -> JSONResponse:
    """One snapshot of the open queue in queue order (priority, then newest first): ``{"items": [alert, ...]``
    (at most :data:`QUEUE_CAP`), ``"total"``: open alerts, ``"counts"``: ``{status: open alerts}``,
    ``"version"``: of the counts}`` (the sink's ``open_counts``, as the stream's ``counts`` events carry them: the
    page drops a stream count older than this snapshot, and this snapshot if it is older than the stream's last
    count). Paging /v1/alerts by offset while the queue changed skipped an open alert whenever one closed between
    two pages, and rebuilt the whole list for each page."""
    desk = desk_of(request)
    recs, counts = await asyncio.gather(desk_call(desk, "sink", "records"), desk_call(desk, "sink", "open_counts"))
    views = [v for v in (alert_view(r, desk) for r in recs) if v["state"] != "closed"]
    queue_order(views)
    return JSONResponse({"items": views[:QUEUE_CAP], **counts})


@router.get("/console/search", dependencies=[OPERATOR])
async def console_search(request: Request, _: Annotated[Principal, OPERATOR],
                         q: Annotated[str, Query(min_length=2, max_length=64)]) -> JSONResponse:
    """Alerts, warrants and hotlist entries whose plate, warrant number or name contains ``q`` (no spaces)."""
    desk = desk_of(request)
    needle = "".join(q.split()).lower()

    def hit(*vals: Any) -> bool:
        return any(v is not None and needle in "".join(str(v).split()).lower() for v in vals)

    recs = await desk_call(desk, "sink", "records")
    alerts = [r for r in recs if hit(r.get("subject_id"), r.get("camera_id"))][-50:][::-1]
    warrants: list[Any] = []
    plates: list[Any] = []
    face, plate = replica_attr("face"), replica_attr("plate")
    if face is not None:
        warrants = [w.model_dump(mode="json") for w in await face.warrants.remote(True)
                    if hit(w.warrant_no, w.name)][:50]
    if plate is not None:
        plates = [e.model_dump(mode="json") for e in await plate.hotlist_entries.remote(True)
                  if hit(getattr(e, "plate", None), e.id, getattr(e, "text", None))][:50]
    return JSONResponse({"alerts": alerts, "warrants": warrants, "hotlist": plates})


@router.get("/console/activity", dependencies=[SUPERVISOR])
async def console_activity(request: Request, _: Annotated[Principal, SUPERVISOR],
                           limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> JSONResponse:
    """The supervisor's activity trail: who raised, took, decided, assigned or closed which alert, who changed
    which watchlist or hotlist entry or user, and when (newest first)."""
    desk = desk_of(request)
    events = [{**e, "log": "alerts"} for e in await desk_call(desk, "sink", "activity", limit)]
    for name, path in desk.cfg.activity_logs.items():
        events += [{**e, "log": name} for e in await asyncio.to_thread(_tail_events, path, limit)]
    events.sort(key=lambda e: e["ts"], reverse=True)
    return JSONResponse({"events": events[:limit]})


def _tail_events(path: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events of a local audit log (JSON lines), without their chain fields; a torn or
    unreadable line is skipped (``ssz audit verify`` is where the chain is checked)."""
    from serve.audit import AuditEvent

    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_bytes().splitlines()[-limit:]:
        try:
            ev = AuditEvent.model_validate_json(line)
        except ValueError:
            continue
        out.append(ev.model_dump(mode="json", exclude={"hash", "prev_hash", "alg"}))
    return out


@router.get("/console/kpi", dependencies=[ANALYST])
async def console_kpi(request: Request, _: Analyst) -> JSONResponse:
    """People Poll results per community and month against the programme's targets, and alert counts with the
    median time from alert to decision per kind."""
    desk = desk_of(request)
    surveys = list(desk.cfg.surveys)
    store = replica_attr("store")
    if store is not None:
        surveys = await asyncio.to_thread(_survey_rows, store, desk.cfg.city) or surveys
    for s in surveys:
        s["fear_ok"] = s["fear_of_crime_pct"] < FEAR_TARGET_PCT
        s["confidence_ok"] = s["confidence_in_police_pct"] > CONFIDENCE_TARGET_PCT
    recs = await desk_call(desk, "sink", "records")
    counts: dict[str, dict[str, int]] = {}
    waits: dict[str, list[float]] = {}
    for r in recs:
        state = "closed" if r.get("closed_ts") else r.get("status", "new")
        counts.setdefault(r["kind"], {}).setdefault(state, 0)
        counts[r["kind"]][state] += 1
        if r.get("status") in ("confirmed", "dismissed") and r.get("status_ts"):
            w = (dt.datetime.fromisoformat(r["status_ts"]) - dt.datetime.fromisoformat(r["ts"])).total_seconds()
            waits.setdefault(r["kind"], []).append(w)
    return JSONResponse({"targets": {"fear_of_crime_pct_below": FEAR_TARGET_PCT,
                                     "confidence_in_police_pct_above": CONFIDENCE_TARGET_PCT},
                         "surveys": surveys, "alerts": counts,
                         "median_decision_s": {k: round(statistics.median(v), 1) for k, v in waits.items()}})


def _survey_rows(store: Any, city: str) -> list[dict[str, Any]]:
    """The ``survey_results`` layer of the city's latest snapshot (empty when there is none)."""
    from twin.snapshots import SnapshotStore

    snaps = SnapshotStore(store, city)
    head = snaps.latest()
    if head is None or "survey_results" not in head.layers:
        return []
    rows = snaps.open(head.id).table("survey_results").to_pylist()
    return [{**r, "month": str(r["month"])} for r in rows]


@router.get("/metrics", include_in_schema=False, dependencies=[ANALYST])
async def metrics(request: Request, _: Analyst) -> Response:
    """Prometheus metrics of this replica (alerts by kind and state, actions, time to decision, field ingest)."""
    desk = desk_of(request)
    recs, field, cams = await asyncio.gather(desk_call(desk, "sink", "records"), desk_call(desk, "field", "stats"),
                                             desk.camera_stats(), return_exceptions=True)
    body = desk.metrics.render(None if isinstance(recs, BaseException) else recs,
                               None if isinstance(field, BaseException) else field,
                               None if isinstance(cams, BaseException) else cams)
    return Response(body, media_type=CONTENT_TYPE)
