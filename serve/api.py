"""The HTTP API: FastAPI as the Ray Serve ingress in front of the face and plate deployments.

Routes (role needed, see :mod:`serve.roles`; the OpenAPI document needs a token, the HTML docs are off)::

    GET    /v1/health                              none      {"status": "ok"} and nothing else
    GET    /openapi.json                           any role  the OpenAPI document
    POST   /v1/faces:detect                        operator  body = image bytes (JPEG/PNG/WebP/BMP/HEIC), or a
                                                              multipart/form-data form with one image file -> faces
    POST   /v1/faces:identify?top_k=5              operator  body = image bytes -> faces with watchlist candidates
    POST   /v1/plates:read                         operator  body = image bytes -> plates read and hotlist hits
    GET    /v1/watchlist, /v1/watchlist/{no}       operator  warrant records (never embeddings)
    POST   /v1/watchlist                           supervisor enrol a warrant with 1..n base64 photos
    PATCH  /v1/watchlist/{no}                      supervisor change name/court/offence/expiry
    DELETE /v1/watchlist/{no}?reason=...           supervisor
    GET    /v1/hotlist, /v1/hotlist/{id}           operator
    POST   /v1/hotlist, DELETE /v1/hotlist/{id}    supervisor
    GET    /v1/users                               admin     users and roles (never tokens)
    ?list=NAME on the watchlist, hotlist, identify and plates routes: a named list (a simulation's own lists,
    e.g. sim-hatyai) instead of the operational ones
    POST   /v1/users                               admin     issue or rotate a user's token: {"user", "role"}
    DELETE /v1/users/{user}                        admin     revoke a user's token

With a city (``ssz api up --city``), the command room's routes join them (own modules, wired in
:func:`_wire_ccoc`): alerts and their live stream (:mod:`serve.alerts_api`), field ingest (:mod:`serve.field`),
the console and ``/metrics`` (:mod:`serve.console.routes`).

Order of checks on every request: the role (``Authorization`` header only: 401/403 before a byte of the
body is read), then query parameters, then the body (413 over the route's limit, 408 when it stalls, 415 for
a wrong type, 422 for a bad JSON body), then the work. Every error, unknown routes included, has the shape
``{"error": {"status", "code", "message"}}``; a change whose audit event cannot be written answers 503 and is
not made. Serve's HTTP proxy binds 127.0.0.1 unless configured otherwise (see ``cluster.serving``).
"""


import asyncio
import base64
import binascii
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from serve.errors import ConflictError, NotFoundError, UnavailableError, error_text
from serve.face.schemas import ImageFaces, WarrantRecord
from serve.face.watchlist import LIST_NAME_PATTERN
from serve.ids import MAX_ID_CHARS, RecordId, check_record_id, find_control
from serve.imaging import MIN_SIDE, PLATE_MIN_SIDE, ImageDecodeError, decode_image
from serve.limits import BodyLimitMiddleware, BodyTimeout, BodyTooLarge, json_body, read_body
from serve.plate.hotlist import DEFAULT_MAX_DISTANCE, HotlistEntry
from serve.plate.service import PlateRead
from serve.roles import ANY, Principal, Role, replica_attr, require_role
from twin.objectstore import StoreError

log = logging.getLogger(__name__)

API_VERSION = "1"
# Ids (warrant numbers such as "จ.123/2567", hotlist entry ids, user names) follow one rule, serve.ids: any
# printable characters ("/", ".", spaces, Thai), taken from the path with the {name:path} converter.
_MIB = 2**20


class ApiLimits(BaseModel):
    """Upload limits of the ingress (every route has one; the middleware enforces the largest)."""

    model_config = ConfigDict(extra="forbid")

    max_upload_mb: float = Field(default=20.0, gt=0, le=200, description="largest image body (and photo), MiB")
    max_json_mb: float = Field(default=32.0, gt=0, le=256, description="largest enrolment body (base64 photos), MiB")
    max_small_json_kb: int = Field(default=64, gt=0, le=4096, description="largest body of other JSON routes, KiB")
    max_pixels: int = Field(default=40_000_000, gt=0, description="largest decoded image, pixels")
    max_plate_upload_mb: float = Field(default=64.0, gt=0, le=512, description="largest body of POST /v1/plates:read "
                                       "(a 50 MP phone photo as JPEG is 10-30 MiB), MiB")
    max_plate_pixels: int = Field(default=120_000_000, gt=0, description="largest decoded photo of POST "
                                  "/v1/plates:read, pixels (50 MP phone photos are read; larger claims are refused "
                                  "from the header, before decoding: the decompression-bomb guard)")
    max_photos: int = Field(default=10, ge=1, le=50, description="photos per enrolment")
    read_timeout_s: float = Field(default=5.0, gt=0, le=120, description="longest wait for the next body chunk, s")

    @property
    def max_image_bytes(self) -> int:
        """Image body limit in bytes."""
        return int(self.max_upload_mb * _MIB)

    @property
    def max_plate_image_bytes(self) -> int:
        """Plate photo body limit in bytes."""
        return int(self.max_plate_upload_mb * _MIB)

    @property
    def max_json_bytes(self) -> int:
        """Enrolment body limit in bytes."""
        return int(self.max_json_mb * _MIB)

    @property
    def max_small_json_bytes(self) -> int:
        """Limit of the other JSON bodies in bytes."""
        return self.max_small_json_kb * 1024


class ApiConfig(BaseModel):
    """Settings of the ingress: limits, where the token table and the access audit log are."""

    model_config = ConfigDict(extra="forbid")

    limits: ApiLimits = Field(default_factory=ApiLimits, description="upload limits")
    store_settings_file: str | None = Field(default=None, description="0600 JSON with the platform user's S3 "
                                            "settings (embedded store); None = SSZ_S3_* of the replica")
    access_audit_path: str = Field(description="local JSON-lines audit log of user and role changes")
    desk: dict[str, Any] | None = Field(default=None, description="the city's command room (serve.desk.DeskConfig): "
                                                                  "alerts, field ingest and the console; None = none")
    token_reload_s: float = Field(default=2.0, gt=0, le=60, description="how often the token table is re-checked")


class Photo(BaseModel):
    """One enrolment photo, base64-encoded JPEG/PNG/WebP/BMP bytes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="file name, quoted in errors")
    data_b64: str = Field(min_length=4, description="base64 of the image file")


def _today() -> date:
    return datetime.now(UTC).date()


class EnrolRequest(BaseModel):
    """Enrol a person with an arrest warrant and 1..n photos showing exactly one face each."""

    model_config = ConfigDict(extra="forbid")

    warrant_no: RecordId = Field(description="warrant number, e.g. จ.123/2567 (any printable characters)")
    name: str = Field(default="", max_length=200, description="the wanted person's name")
    court: str = Field(min_length=1, max_length=200, description="issuing court")
    offence: str = Field(min_length=1, max_length=500, description="offence on the warrant")
    expires: date = Field(description="last day the warrant is valid (today or later)")
    photos: list[Photo] = Field(min_length=1, max_length=50, description="1..n photos with one face each")

    @field_validator("court", "offence")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("expires")
    @classmethod
    def _not_expired(cls, v: date) -> date:
        if v < _today():
            raise ValueError(f"the warrant expired on {v.isoformat()}: an expired warrant cannot be enrolled")
        return v


class WarrantPatch(BaseModel):
    """Fields of a warrant that may change after enrolment."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200, description="new name")
    court: str | None = Field(default=None, min_length=1, max_length=200, description="new court")
    offence: str | None = Field(default=None, min_length=1, max_length=500, description="new offence")
    expires: date | None = Field(default=None, description="new last valid day (today or later)")

    @field_validator("expires")
    @classmethod
    def _not_expired(cls, v: date | None) -> date | None:
        if v is not None and v < _today():
            raise ValueError(f"{v.isoformat()} is in the past: to end a warrant, DELETE it with a reason")
        return v


class HotlistRequest(BaseModel):
    """Hot-list a plate: text such as ``1กข 1234 ภูเก็ต`` (province optional), why, until when, how fuzzy."""

    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=2, max_length=64, description="registration and optional province")
    reason: str = Field(min_length=1, max_length=200, description="why, e.g. 'stolen'")
    expires_at: datetime | None = Field(default=None, description="UTC, in the future, e.g. 2026-12-31T00:00:00Z")
    max_distance: float = Field(default=DEFAULT_MAX_DISTANCE, ge=0.0, le=2.0, description="fuzziness of matching")
    entry_id: RecordId | None = Field(default=None, description="id (any printable characters); None = generated")
    note: str = Field(default="", max_length=500, description="free text")
    vehicle: Literal["car", "motorcycle"] | None = Field(
        default=None, description="vehicle type: the same registration on a car and on a motorcycle are different "
                                  "vehicles; None matches reads of either type")

    @field_validator("plate", "reason")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("expires_at")
    @classmethod
    def _future_utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        if v.tzinfo is None:
            raise ValueError("give a UTC time with its zone, e.g. 2026-12-31T00:00:00Z")
        if v <= datetime.now(UTC):
            raise ValueError(f"{v.isoformat()} is already past: give a future time")
        return v


class UserRequest(BaseModel):
    """Issue (or rotate) a user's token with a role."""

    model_config = ConfigDict(extra="forbid")

    user: RecordId = Field(description="user name (any printable characters)")
    role: Role = Field(description="admin, supervisor, operator, analyst or device")


class IssuedToken(BaseModel):
    """A newly issued token: shown once, stored only as a keyed hash."""

    user: str = Field(description="user name")
    role: Role = Field(description="the user's role")
    token: str = Field(description="the bearer token (keep it secret; the previous one no longer works)")


class UserInfo(BaseModel):
    """A user with a token (never the token or its hash)."""

    user: str = Field(description="user name")
    role: Role = Field(description="role")
    issued_at: datetime = Field(description="when the current token was issued")
    issued_by: str = Field(description="who issued it")


class PlateReads(BaseModel):
    """Plates read in one image (each with its hotlist hits)."""

    width: int = Field(description="image width, px")
    height: int = Field(description="image height, px")
    plates: list[PlateRead] = Field(description="plates found")


class ErrorBody(BaseModel):
    """The JSON shape of every error answer: ``{"error": ErrorBody}``."""

    status: int = Field(description="the HTTP status")
    code: str = Field(description="a stable code, e.g. unauthorized, forbidden, not_found, too_large")
    message: str = Field(description="what is wrong and what to send instead")


class Health(BaseModel):
    """Liveness only: no versions, sizes or process ids."""

    status: str = Field(description="'ok' when the API answers")


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          408: "timeout", 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
          429: "too_many_requests", 500: "internal_error", 503: "unavailable"}
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (400, 401, 403, 413, 415, 422, 503)}

# redirect_slashes off: Starlette's 307 to the path without the slash has an empty body and most clients do not
# resend a POST body on it; the 404 handler below names the route instead.
app = FastAPI(title="Smart Safety Zone API", version=API_VERSION, openapi_url=None, docs_url=None, redoc_url=None,
              redirect_slashes=False,
              description="Face (warrant watchlist) and plate (hotlist) recognition for the CCOC and field tools.")
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body read by :func:`serve.limits.json_body`."""
    _BODY_MODELS[model.__name__] = model
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


_IMAGE_BODY = {"requestBody": {"required": True, "content": {
    **{t: {"schema": {"type": "string", "format": "binary"}} for t in ("image/jpeg", "image/png", "image/webp",
                                                                       "image/bmp", "image/heic")},
    "multipart/form-data": {"schema": {"type": "object", "description": "one file (any field name), the image",
                                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The documented error answer."""
    body = ErrorBody(status=status, code=_CODES.get(status, "error"), message=message)
    return JSONResponse(status_code=status, content={"error": body.model_dump()}, headers=headers)


@app.exception_handler(RequestValidationError)
async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", ""))
        msg = "unknown field" if e.get("type") == "extra_forbidden" else e.get("msg", "invalid")
        if e.get("type") == "value_error":
            msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc or 'body'}: {msg}")
    return error_response(422, "; ".join(parts)[:2000])


@app.exception_handler(StarletteHTTPException)
async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        path = request.scope.get("path", "")  # decoded; request.url drops tabs and newlines
        i = find_control(path)
        if i is not None:  # a path converter's ".*" stops at a newline: say what is wrong, not "no route"
            return error_response(422, f"the path holds a control character (U+{ord(path[i]):04X}): ids (warrant "
                                       "numbers, hotlist entries, users) hold printable characters only")
        message = f"no route {request.method} {request.url.path[:200]}: see /openapi.json (with a token) for the routes"
        bare = path.rstrip("/")
        if bare != path and bare and any(r.matches({**request.scope, "path": bare})[0] != Match.NONE
                                         for r in request.app.router.routes):
            message = (f"no route {request.method} {request.url.path[:200]}: drop the trailing slash "
                       f"({request.method} {bare[:200]})")
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path[:200]}"
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


@app.exception_handler(BodyTooLarge)
async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
    return error_response(413, str(exc), headers={"Connection": "close"})


@app.exception_handler(BodyTimeout)
async def _timeout(_: Request, exc: BodyTimeout) -> JSONResponse:
    return error_response(408, str(exc), headers={"Connection": "close"})


@app.exception_handler(ImageDecodeError)
async def _image(_: Request, exc: ImageDecodeError) -> JSONResponse:
    return error_response(exc.status, str(exc))


@app.exception_handler(UnavailableError)
async def _unavailable(_: Request, exc: UnavailableError) -> JSONResponse:
    return error_response(503, str(exc), headers={"Retry-After": "5"})


@app.exception_handler(StoreError)
async def _store(_: Request, exc: StoreError) -> JSONResponse:
    return error_response(503, f"{exc}; send the same request again once the store is back",
                          headers={"Retry-After": "5"})


@app.exception_handler(Exception)
async def _internal(_: Request, exc: Exception) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    log.error("internal error %s: %r", ref, exc, exc_info=exc)
    return error_response(500, f"internal error (reference {ref}); the request was not completed")


def only_params(*allowed: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing query parameters other than ``allowed`` (422)."""

    async def dependency(request: Request) -> None:
        unknown = set(request.query_params) - set(allowed)
        if unknown:
            raise HTTPException(422, f"unknown query parameter(s) {sorted(unknown)[:10]}; allowed: "
                                     f"{sorted(allowed) or 'none'}")

    return dependency


def _status_of(err: BaseException) -> int | None:
    """The 4xx/503 status of a user error raised in a model replica (None: a server fault, re-raised as 500)."""
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, ConflictError):
        return 409
    if isinstance(err, UnavailableError):
        return 503
    if isinstance(err, ValueError | LookupError):
        return 400 if isinstance(err, ValueError) else 404
    return None


async def _call(resp: Any) -> Any:
    try:
        return await resp
    except Exception as e:  # errors raised in a replica arrive wrapped; map user errors to 4xx / 503
        cause = getattr(e, "cause", None) or e
        status = _status_of(cause)
        if status is None:
            raise
        raise HTTPException(status, error_text(cause)[:2000]) from e


def _wire_ccoc(target: FastAPI) -> None:
    """The command room's routes: alerts, field ingest, the console and /metrics (serve.alerts_api, serve.field,
    serve.console)."""
    from serve import alerts_api, field
    from serve.console import routes as console

    target.include_router(alerts_api.router)
    target.include_router(field.router)
    target.include_router(console.router)


def current_limits() -> ApiLimits:
    """The limits of the replica serving this request (the defaults outside Serve)."""
    cfg = replica_attr("cfg")
    return cfg.limits if cfg is not None else ApiLimits()


def _limit(attr: str) -> Callable[[], int]:
    return lambda: getattr(current_limits(), attr)


def _body_limit() -> tuple[int, float]:
    """The largest body any route takes and the body read timeout, from the replica's limits."""
    limits = current_limits()
    return (max(limits.max_image_bytes, limits.max_plate_image_bytes, limits.max_json_bytes,
                limits.max_small_json_bytes), limits.read_timeout_s)


# Before the ingress class: @serve.ingress freezes a copy of the app, later additions would be lost.
app.add_middleware(BodyLimitMiddleware, limits=_body_limit)
_wire_ccoc(app)


async def _image_body(request: Request, plate: bool = False) -> Any:
    """The decoded upload; the plate route takes bigger photos (``max_plate_*``) than the face routes. The image is
    the raw body, or the one file of a ``multipart/form-data`` body (``curl -F file=@photo.jpg``, a browser form,
    Postman's form-data, ``requests.post(files=...)``)."""
    limits = current_limits()
    max_bytes = limits.max_plate_image_bytes if plate else limits.max_image_bytes
    body = await read_body(request, max_bytes)
    ctype = request.headers.get("content-type")
    if (ctype or "").split(";")[0].strip().lower() == "multipart/form-data":
        body, ctype = await _form_image(request, body)
    return decode_image(body, ctype, max_bytes=max_bytes,
                        max_pixels=limits.max_plate_pixels if plate else limits.max_pixels,
                        min_side=PLATE_MIN_SIDE if plate else MIN_SIDE)


async def _form_image(request: Request, body: bytes) -> tuple[bytes, str | None]:
    """The bytes and declared type of the one file in the ``multipart/form-data`` ``body`` (any field name), or an
    ImageDecodeError (400) saying what to send: a form with no file, more than one file or a broken encoding."""
    from starlette.formparsers import MultiPartParser

    async def once() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=20).parse()
    except Exception as e:  # any parser failure on an untrusted form is the sender's problem, as in decode_image
        raise ImageDecodeError(f"the multipart/form-data body cannot be read ({e}): send one image file in the "
                               "form (e.g. curl -F file=@photo.jpg), or the raw image bytes with Content-Type "
                               "image/jpeg") from None
    try:
        files = [v for _, v in form.multi_items() if not isinstance(v, str)]
        if not files:
            raise ImageDecodeError("the multipart/form-data body holds no file: attach the photo as a file "
                                   "(e.g. curl -F file=@photo.jpg), or send the raw image bytes with Content-Type "
                                   "image/jpeg")
        data = await files[0].read()
        part_type = (files[0].content_type or "").split(";")[0].strip().lower()
    finally:
        await form.close()
    # A form part's type is often a guess from the file name (or application/octet-stream): the bytes are sniffed
    # and decoded as for a raw body; only a declared non-image type is refused, by decode_image.
    return data, part_type or None


# One dependency object per role, so that a route listing it in ``dependencies`` (to run it first, before the
# query-parameter check) and taking the caller as a parameter runs it once (FastAPI caches it per request).
_ROLE = {r: Depends(require_role(r)) for r in (ANY, "admin", "supervisor", "operator")}
Anyone = Annotated[Principal, _ROLE[ANY]]
Operator = Annotated[Principal, _ROLE["operator"]]
Supervisor = Annotated[Principal, _ROLE["supervisor"]]
Admin = Annotated[Principal, _ROLE["admin"]]


def guard(role: str, *params: str) -> list[Any]:
    """Route dependencies in the order they must run: the role (headers only), then the query parameters."""
    return [_ROLE[role], Depends(only_params(*params))]
EnrolBody = Annotated[EnrolRequest, Depends(json_body(EnrolRequest, _limit("max_json_bytes")))]
PatchBody = Annotated[WarrantPatch, Depends(json_body(WarrantPatch, _limit("max_small_json_bytes")))]
HotlistBody = Annotated[HotlistRequest, Depends(json_body(HotlistRequest, _limit("max_small_json_bytes")))]
UserBody = Annotated[UserRequest, Depends(json_body(UserRequest, _limit("max_small_json_bytes")))]


def _path_id(what: str) -> Any:
    """A path parameter holding an id (``{name:path}`` in the route, so "/" belongs to the id)."""
    return Annotated[str, Path(description=f"{what} (URL-encoded; any printable characters, at most "
                                           f"{MAX_ID_CHARS})"), AfterValidator(lambda v: check_record_id(v, what))]


WarrantNo = _path_id("warrant number")
EntryId = _path_id("hotlist entry id")
UserName = _path_id("user name")
Reason = Annotated[str, Query(max_length=200, description="why (audited)")]
ListName = Annotated[str | None, Query(alias="list", pattern=LIST_NAME_PATTERN,
                                       description="a named list (e.g. a simulation's sim-hatyai) instead of the "
                                                   "operational watchlist / hotlist")]


@serve.deployment(name="ApiIngress", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
@serve.ingress(app)
class ApiIngress:
    """The Serve ingress replica: authorises, validates and decodes, then calls the model deployments."""

    def __init__(self, face: DeploymentHandle | None, plate: DeploymentHandle | None, config: dict[str, Any],
                 services: Any = None) -> None:
        """Keep the model handles; open the token table and the access audit log in the store; with a desk in
        the config, the city's command room (``services`` starts or finds its actors, see ``cluster.ccoc``)."""
        from serve.audit import AuditLog
        from serve.auth import Authenticator, TokenStore
        from serve.listeners import bind_replica_grpc_to_node_ip
        from serve.replica import store_settings
        from twin.objectstore import connect

        bind_replica_grpc_to_node_ip()
        self.face = face
        self.plate = plate
        self.cfg = ApiConfig.model_validate(config)
        store = connect(store_settings(self.cfg.store_settings_file), check=False)
        self.store = store  # serve.roles.replica_attr("store"): evidence crops, report photos
        self.desk = None
        if self.cfg.desk is not None:
            from serve.desk import Desk, DeskConfig

            self.desk = Desk(DeskConfig.model_validate(self.cfg.desk), services)
        self.tokens = TokenStore(store, audit=AuditLog(self.cfg.access_audit_path, name="access", store=store))
        self.auth = Authenticator(self.tokens, reload_s=self.cfg.token_reload_s)  # serve.roles.authenticator

    def _need(self, handle: DeploymentHandle | None, what: str) -> DeploymentHandle:
        if handle is None:
            raise HTTPException(503, f"the {what} service is not deployed in this application")
        return handle

    # ----------------------------------------------------------------- service
    @app.get("/v1/health", response_model=Health)
    async def health(self) -> Health:
        """Whether the API answers; no token needed, nothing else said."""
        return Health(status="ok")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(self, _: Anyone) -> JSONResponse:
        """The OpenAPI document (any valid token)."""
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _BODY_MODELS.items():
            doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(doc.pop("$defs", {}))
            schemas[name] = doc
        return JSONResponse(spec)

    # ----------------------------------------------------------------- recognition
    @app.post("/v1/faces:detect", response_model=ImageFaces, responses=ERRORS, openapi_extra=_IMAGE_BODY,
              dependencies=guard("operator"))
    async def faces_detect(self, _: Operator, request: Request) -> ImageFaces:
        """Faces (box, probability, landmarks) in one uploaded image."""
        img = await _image_body(request)
        return await _call(self._need(self.face, "face").detect.remote(img))

    @app.post("/v1/faces:identify", response_model=ImageFaces, responses=ERRORS, openapi_extra=_IMAGE_BODY,
              dependencies=guard("operator", "top_k", "list"))
    async def faces_identify(self, _: Operator, request: Request,
                             top_k: Annotated[int, Query(ge=1, le=50)] = 5, list_name: ListName = None) -> ImageFaces:
        """Faces in one uploaded image with their best watchlist candidates (probe embeddings are not kept)."""
        img = await _image_body(request)
        res: ImageFaces = await _call(self._need(self.face, "face").identify.remote(img, list_name=list_name))
        for f in res.faces:
            f.candidates = f.candidates[:top_k]
        return res

    @app.post("/v1/plates:read", response_model=PlateReads, responses=ERRORS, openapi_extra=_IMAGE_BODY,
              dependencies=guard("operator", "list"))
    async def plates_read(self, _: Operator, request: Request, list_name: ListName = None) -> PlateReads:
        """Thai plates in one uploaded image (phone photos up to ``max_plate_pixels``): box, raw text, parsed plate,
        confidence, hotlist hits."""
        img = await _image_body(request, plate=True)
        plate = self._need(self.plate, "plate")
        reads = await _call(plate.read_photo.remote(img, list_name=list_name))  # on its side too: EXIF dropped
        return PlateReads(width=img.shape[1], height=img.shape[0], plates=reads)

    # ----------------------------------------------------------------- watchlist
    @app.get("/v1/watchlist", response_model=list[WarrantRecord], responses=ERRORS,
             dependencies=guard("operator", "include_expired", "list"))
    async def watchlist(self, _: Operator, include_expired: bool = True, list_name: ListName = None
                        ) -> list[WarrantRecord]:
        """All warrant records (no embeddings)."""
        return await _call(self._need(self.face, "face").warrants.remote(include_expired, list_name=list_name))

    @app.post("/v1/watchlist", response_model=WarrantRecord, status_code=201, openapi_extra=_body_doc(EnrolRequest),
              responses={**ERRORS, 409: {"model": ErrorBody}}, dependencies=guard("supervisor", "list"))
    async def enrol(self, who: Supervisor, req: EnrolBody, list_name: ListName = None) -> WarrantRecord:
        """Enrol a wanted person; each photo must show exactly one face. Audited with the token's user."""
        limits = self.cfg.limits
        if len(req.photos) > limits.max_photos:
            raise HTTPException(422, f"{len(req.photos)} photos: at most {limits.max_photos} per enrolment")
        photos = {}
        for p in req.photos:
            try:
                raw = base64.b64decode(p.data_b64, validate=True)
            except (binascii.Error, ValueError) as e:
                raise HTTPException(400, f"photo {p.name!r}: data_b64 is not valid base64") from e
            try:
                photos[p.name] = decode_image(raw, None, max_bytes=limits.max_image_bytes,
                                              max_pixels=limits.max_pixels)
            except ImageDecodeError as e:
                raise HTTPException(e.status, f"photo {p.name!r}: {e}") from e
        record = WarrantRecord(warrant_no=req.warrant_no, name=req.name, court=req.court, offence=req.offence,
                               expires=req.expires)
        return await _call(self._need(self.face, "face").enrol.remote(record, photos, who.actor, list_name=list_name))

    @app.get("/v1/watchlist/{warrant_no:path}", response_model=WarrantRecord, responses=ERRORS,
             dependencies=guard("operator", "list"))
    async def warrant(self, _: Operator, warrant_no: WarrantNo, list_name: ListName = None) -> WarrantRecord:
        """One warrant record."""
        records: list[WarrantRecord] = await _call(self._need(self.face, "face").warrants.remote(
            True, list_name=list_name))
        for r in records:
            if r.warrant_no == warrant_no:
                return r
        raise HTTPException(404, f"warrant {warrant_no!r} is not on the watchlist")

    @app.patch("/v1/watchlist/{warrant_no:path}", response_model=WarrantRecord, responses=ERRORS,
               openapi_extra=_body_doc(WarrantPatch), dependencies=guard("supervisor", "list"))
    async def update_warrant(self, who: Supervisor, warrant_no: WarrantNo, patch: PatchBody,
                             list_name: ListName = None) -> WarrantRecord:
        """Change a warrant's name, court, offence or expiry; audited."""
        fields = patch.model_dump(exclude_none=True)
        if not fields:
            raise HTTPException(422, "nothing to change: send at least one of name, court, offence, expires")
        return await _call(self._need(self.face, "face").update.remote(warrant_no, who.actor, fields,
                                                                         list_name=list_name))

    @app.delete("/v1/watchlist/{warrant_no:path}", response_model=WarrantRecord, responses=ERRORS,
                dependencies=guard("supervisor", "reason", "list"))
    async def remove_warrant(self, who: Supervisor, warrant_no: WarrantNo, reason: Reason = "",
                             list_name: ListName = None) -> WarrantRecord:
        """Remove a warrant and its embeddings everywhere; audited."""
        return await _call(self._need(self.face, "face").remove.remote(warrant_no, who.actor, reason,
                                                                         list_name=list_name))

    # ----------------------------------------------------------------- hotlist
    @app.get("/v1/hotlist", response_model=list[HotlistEntry], responses=ERRORS,
             dependencies=guard("operator", "include_expired", "list"))
    async def hotlist(self, _: Operator, include_expired: bool = False, list_name: ListName = None
                      ) -> list[HotlistEntry]:
        """Hot-listed plates (active ones unless ``include_expired``)."""
        return await _call(self._need(self.plate, "plate").hotlist_entries.remote(include_expired,
                                                                                  list_name=list_name))

    @app.post("/v1/hotlist", response_model=HotlistEntry, status_code=201, openapi_extra=_body_doc(HotlistRequest),
              responses={**ERRORS, 409: {"model": ErrorBody}}, dependencies=guard("supervisor", "list"))
    async def hotlist_add(self, who: Supervisor, req: HotlistBody, list_name: ListName = None) -> HotlistEntry:
        """Hot-list a plate; audited with the token's user."""
        return await _call(self._need(self.plate, "plate").hotlist_add.remote(
            req.plate, req.reason, who.actor, expires_at=req.expires_at, max_distance=req.max_distance,
            entry_id=req.entry_id, note=req.note, list_name=list_name, vehicle=req.vehicle))

    @app.get("/v1/hotlist/{entry_id:path}", response_model=HotlistEntry, responses=ERRORS,
             dependencies=guard("operator", "list"))
    async def hotlist_get(self, _: Operator, entry_id: EntryId, list_name: ListName = None) -> HotlistEntry:
        """One hotlist entry."""
        return await _call(self._need(self.plate, "plate").hotlist_get.remote(entry_id, list_name=list_name))

    @app.delete("/v1/hotlist/{entry_id:path}", response_model=HotlistEntry, responses=ERRORS,
                dependencies=guard("supervisor", "reason", "list"))
    async def hotlist_remove(self, who: Supervisor, entry_id: EntryId, reason: Reason = "",
                             list_name: ListName = None) -> HotlistEntry:
        """Remove a hotlist entry; audited."""
        return await _call(self._need(self.plate, "plate").hotlist_remove.remote(entry_id, who.actor, reason,
                                                                                 list_name=list_name))

    # ----------------------------------------------------------------- users and roles
    @app.get("/v1/users", response_model=list[UserInfo], responses=ERRORS, dependencies=guard("admin"))
    async def users(self, _: Admin) -> list[UserInfo]:
        """Users with a token and their roles (never tokens or hashes)."""
        users = await asyncio.to_thread(self.tokens.users)
        return [UserInfo(user=u, **info) for u, info in users.items()]

    @app.post("/v1/users", response_model=IssuedToken, status_code=201, openapi_extra=_body_doc(UserRequest),
              responses=ERRORS, dependencies=guard("admin"))
    async def issue(self, who: Admin,
                    req: UserBody) -> IssuedToken:
        """Issue or rotate a user's token (the old one stops working within seconds); audited."""
        token = await asyncio.to_thread(self.tokens.issue, req.user, req.role, who.actor)
        self.auth.invalidate()
        return IssuedToken(user=req.user, role=req.role, token=token)

    @app.delete("/v1/users/{user:path}", response_model=UserInfo, responses=ERRORS,
                dependencies=guard("admin", "reason"))
    async def revoke(self, who: Admin, user: UserName,
                     reason: Reason = "") -> UserInfo:
        """Revoke a user's token; audited."""
        try:
            rec = await asyncio.to_thread(self.tokens.revoke, user, who.actor, reason)
        except NotFoundError as e:
            raise HTTPException(404, str(e)) from e
        self.auth.invalidate()
        return UserInfo(user=user, role=rec.role, issued_at=rec.issued_at, issued_by=rec.issued_by)


def build_api_app(face_app: Any | None, plate_app: Any | None, config: ApiConfig,
                  services: Any = None) -> serve.Application:
    """Bind the ingress to bound face/plate deployments (``serve.run(app, name="ssz", route_prefix="/")``);
    ``services`` starts or finds the city's actors when ``config.desk`` is set (``cluster.ccoc.CityServices``)."""
    return ApiIngress.bind(face_app, plate_app, config.model_dump(mode="json"), services)

