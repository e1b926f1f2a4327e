"""The HTTP API: FastAPI as the Ray Serve ingress in front of the face and plate deployments.

Routes (OpenAPI at ``/openapi.json``, docs at ``/docs``)::

    GET    /v1/health                       no token: liveness and model/watchlist summary
    POST   /v1/faces:detect                 body = image bytes (image/jpeg|png|webp) -> faces
    POST   /v1/faces:identify?top_k=5       body = image bytes -> faces with watchlist candidates
    POST   /v1/plates:read                  body = image bytes -> plates read and hotlist hits
    GET    /v1/watchlist                    warrant records (never embeddings)
    POST   /v1/watchlist                    enrol a warrant with 1..n base64 photos
    GET    /v1/watchlist/{warrant_no}
    PATCH  /v1/watchlist/{warrant_no}       change name/court/offence/expiry
    DELETE /v1/watchlist/{warrant_no}?reason=...
    GET    /v1/hotlist, POST /v1/hotlist, GET|DELETE /v1/hotlist/{entry_id}

Every route but health needs ``Authorization: Bearer <token>``; the token's user is the audited actor.
Bad input gets a JSON error ``{"error": {"status", "code", "message"}}`` with a 4xx status and the service
keeps serving. Serve's HTTP proxy binds to 127.0.0.1 unless configured otherwise (see cluster).
"""


import base64
import binascii
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.auth import TokenTable
from serve.errors import ConflictError
from serve.face.schemas import ImageFaces, WarrantRecord
from serve.imaging import ImageDecodeError, decode_image
from serve.plate.hotlist import DEFAULT_MAX_DISTANCE, HotlistEntry
from serve.plate.service import PlateRead

API_VERSION = "1"


class ApiConfig(BaseModel):
    """Settings of the ingress: token digests and upload limits."""

    model_config = ConfigDict(extra="forbid")

    tokens: TokenTable
    max_upload_mb: float = Field(default=20.0, gt=0, le=200)
    max_pixels: int = Field(default=40_000_000, gt=0)
    max_photos: int = Field(default=10, ge=1, le=50)


class Photo(BaseModel):
    """One enrolment photo, base64-encoded JPEG/PNG bytes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    data_b64: str = Field(min_length=4, description="base64 of the JPEG/PNG file")


class EnrolRequest(BaseModel):
    """Enrol a person with an arrest warrant and 1..n photos showing exactly one face each."""

    model_config = ConfigDict(extra="forbid")

    warrant_no: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    court: str = Field(min_length=1, max_length=200)
    offence: str = Field(min_length=1, max_length=500)
    expires: date
    photos: list[Photo] = Field(min_length=1, max_length=50)


class WarrantPatch(BaseModel):
    """Fields of a warrant that may change after enrolment."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    court: str | None = Field(default=None, min_length=1, max_length=200)
    offence: str | None = Field(default=None, min_length=1, max_length=500)
    expires: date | None = None


class HotlistRequest(BaseModel):
    """Hot-list a plate: text such as ``1กข 1234 ภูเก็ต`` (province optional), why, until when, how fuzzy."""

    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=2, max_length=64)
    reason: str = Field(min_length=1, max_length=200)
    expires_at: datetime | None = Field(default=None, description="UTC, e.g. 2026-12-31T00:00:00Z")
    max_distance: float = Field(default=DEFAULT_MAX_DISTANCE, ge=0.0, le=2.0)
    entry_id: str | None = Field(default=None, min_length=1, max_length=64)
    note: str = Field(default="", max_length=500)


class PlateReads(BaseModel):
    """Plates read in one image (each with its hotlist hits)."""

    width: int
    height: int
    plates: list[PlateRead]


class ErrorBody(BaseModel):
    """The JSON shape of every error answer."""

    status: int
    code: str
    message: str


class Health(BaseModel):
    """Liveness and a summary of the models behind the API."""

    status: str
    version: str
    face: dict[str, Any] | None = None
    plate: dict[str, Any] | None = None


app = FastAPI(title="Smart Safety Zone API", version=API_VERSION,
              description="Face (warrant watchlist) and plate (hotlist) recognition for the CCOC and field tools.")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": ErrorBody(status=status, code=code,
                                                                         message=message).model_dump()})


@app.exception_handler(RequestValidationError)
async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        msg = "unknown field" if e.get("type") == "extra_forbidden" else e.get("msg", "invalid")
        parts.append(f"{loc or 'body'}: {msg}")
    return _error(422, "invalid_request", "; ".join(parts))


@app.exception_handler(HTTPException)
async def _http(_: Request, exc: HTTPException) -> JSONResponse:
    code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
            413: "too_large", 415: "unsupported_media_type", 422: "invalid_request"}.get(exc.status_code, "error")
    resp = _error(exc.status_code, code, str(exc.detail))
    if exc.status_code == 401:
        resp.headers["WWW-Authenticate"] = "Bearer"
    return resp


def _bad(e: Exception, status: int = 400) -> HTTPException:
    return HTTPException(status_code=getattr(e, "status", status), detail=str(e))


async def _read_image(request: Request, cfg: ApiConfig) -> Any:
    limit = int(cfg.max_upload_mb * 2**20)
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > limit:
        raise HTTPException(413, f"the upload is {int(size) / 2**20:.1f} MiB, over the {cfg.max_upload_mb:g} MiB limit")
    body = await request.body()
    try:
        return decode_image(body, request.headers.get("content-type"), max_bytes=limit, max_pixels=cfg.max_pixels)
    except ImageDecodeError as e:
        raise _bad(e) from e


def _status_of(err: BaseException) -> int | None:
    """The 4xx status of a user error raised in a model replica (None: a server fault, re-raised as 500)."""
    if isinstance(err, LookupError):
        return 404
    if isinstance(err, ConflictError):
        return 409
    if isinstance(err, ValueError):
        return 400
    return None


def _only_params(request: Request, allowed: set[str]) -> None:
    unknown = set(request.query_params) - allowed
    if unknown:
        raise HTTPException(422, f"unknown query parameter(s) {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")


@serve.deployment(name="ApiIngress", ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class ApiIngress:
    """The Serve ingress replica: authenticates, validates and decodes, then calls the model deployments."""

    def __init__(self, face: DeploymentHandle | None, plate: DeploymentHandle | None, config: dict[str, Any]) -> None:
        """Keep the handles of the face and plate deployments (either may be absent) and the API settings."""
        self.face = face
        self.plate = plate
        self.cfg = ApiConfig.model_validate(config)

    # ----------------------------------------------------------------- helpers
    def _user(self, authorization: str | None) -> str:
        user = self.cfg.tokens.user(authorization)
        if user is None:
            raise HTTPException(401, "missing or unknown API token: send 'Authorization: Bearer <token>' "
                                     "(`ssz api token` prints yours)")
        return user

    def _need(self, handle: DeploymentHandle | None, what: str) -> DeploymentHandle:
        if handle is None:
            raise HTTPException(503, f"the {what} service is not deployed in this application")
        return handle

    @staticmethod
    async def _call(resp: Any) -> Any:
        try:
            return await resp
        except Exception as e:  # errors raised in a replica arrive wrapped; map user errors to 4xx
            cause = getattr(e, "cause", None) or e
            status = _status_of(cause)
            if status is None:
                raise
            raise HTTPException(status, str(cause).strip("'\"")) from e

    # ----------------------------------------------------------------- routes
    @app.get("/v1/health", response_model=Health)
    async def health(self) -> Health:
        """Liveness plus face/plate model summaries; no token needed."""
        face = await self._call(self.face.health.remote()) if self.face else None
        plate = await self._call(self.plate.health.remote()) if self.plate else None
        return Health(status="ok", version=API_VERSION, face=face, plate=plate)

    @app.post("/v1/faces:detect", response_model=ImageFaces,
              responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
                         415: {"model": ErrorBody}})
    async def faces_detect(self, request: Request,
                           authorization: Annotated[str | None, Header()] = None) -> ImageFaces:
        """Faces (box, probability, landmarks) in one uploaded image."""
        self._user(authorization)
        _only_params(request, set())
        img = await _read_image(request, self.cfg)
        return await self._call(self._need(self.face, "face").detect.remote(img))

    @app.post("/v1/faces:identify", response_model=ImageFaces,
              responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
                         415: {"model": ErrorBody}})
    async def faces_identify(self, request: Request, top_k: Annotated[int, Query(ge=1, le=50)] = 5,
                             authorization: Annotated[str | None, Header()] = None) -> ImageFaces:
        """Faces in one uploaded image with their best watchlist candidates (probe embeddings are not kept)."""
        self._user(authorization)
        _only_params(request, {"top_k"})
        img = await _read_image(request, self.cfg)
        res: ImageFaces = await self._call(self._need(self.face, "face").identify.remote(img))
        for f in res.faces:
            f.candidates = f.candidates[:top_k]
        return res

    @app.get("/v1/watchlist", response_model=list[WarrantRecord])
    async def watchlist(self, include_expired: bool = True,
                        authorization: Annotated[str | None, Header()] = None) -> list[WarrantRecord]:
        """All warrant records (no embeddings)."""
        self._user(authorization)
        return await self._call(self._need(self.face, "face").warrants.remote(include_expired))

    @app.post("/v1/watchlist", response_model=WarrantRecord, status_code=201,
              responses={400: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def enrol(self, req: EnrolRequest,
                    authorization: Annotated[str | None, Header()] = None) -> WarrantRecord:
        """Enrol a wanted person; each photo must show exactly one face. Audited with the token's user."""
        user = self._user(authorization)
        if len(req.photos) > self.cfg.max_photos:
            raise HTTPException(422, f"{len(req.photos)} photos: at most {self.cfg.max_photos} per enrolment")
        photos = {}
        for p in req.photos:
            try:
                raw = base64.b64decode(p.data_b64, validate=True)
            except (binascii.Error, ValueError) as e:
                raise HTTPException(400, f"photo {p.name!r}: data_b64 is not valid base64") from e
            try:
                photos[p.name] = decode_image(raw, None, max_bytes=int(self.cfg.max_upload_mb * 2**20),
                                              max_pixels=self.cfg.max_pixels)
            except ImageDecodeError as e:
                raise HTTPException(e.status, f"photo {p.name!r}: {e}") from e
        record = WarrantRecord(warrant_no=req.warrant_no, name=req.name, court=req.court, offence=req.offence,
                               expires=req.expires)
        return await self._call(self._need(self.face, "face").enrol.remote(record, photos, f"api:{user}"))

    @app.get("/v1/watchlist/{warrant_no}", response_model=WarrantRecord, responses={404: {"model": ErrorBody}})
    async def warrant(self, warrant_no: str,
                      authorization: Annotated[str | None, Header()] = None) -> WarrantRecord:
        """One warrant record."""
        self._user(authorization)
        records: list[WarrantRecord] = await self._call(self._need(self.face, "face").warrants.remote(True))
        for r in records:
            if r.warrant_no == warrant_no:
                return r
        raise HTTPException(404, f"warrant {warrant_no!r} is not on the watchlist")

    @app.patch("/v1/watchlist/{warrant_no}", response_model=WarrantRecord, responses={404: {"model": ErrorBody}})
    async def update_warrant(self, warrant_no: str, patch: WarrantPatch,
                             authorization: Annotated[str | None, Header()] = None) -> WarrantRecord:
        """Change a warrant's name, court, offence or expiry; audited."""
        user = self._user(authorization)
        fields = patch.model_dump(exclude_none=True)
        if not fields:
            raise HTTPException(422, "nothing to change: send at least one of name, court, offence, expires")
        return await self._call(self._need(self.face, "face").update.remote(warrant_no, f"api:{user}", fields))

    @app.delete("/v1/watchlist/{warrant_no}", response_model=WarrantRecord, responses={404: {"model": ErrorBody}})
    async def remove_warrant(self, warrant_no: str, reason: str = "",
                             authorization: Annotated[str | None, Header()] = None) -> WarrantRecord:
        """Remove a warrant and its embeddings everywhere; audited."""
        user = self._user(authorization)
        return await self._call(self._need(self.face, "face").remove.remote(warrant_no, f"api:{user}", reason))


    @app.post("/v1/plates:read", response_model=PlateReads,
              responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
                         415: {"model": ErrorBody}})
    async def plates_read(self, request: Request,
                          authorization: Annotated[str | None, Header()] = None) -> PlateReads:
        """Thai plates in one uploaded image: box, raw text, parsed plate, confidence, hotlist hits."""
        self._user(authorization)
        _only_params(request, set())
        img = await _read_image(request, self.cfg)
        reads = await self._call(self._need(self.plate, "plate").read.remote(img))
        return PlateReads(width=img.shape[1], height=img.shape[0], plates=reads)

    @app.get("/v1/hotlist", response_model=list[HotlistEntry])
    async def hotlist(self, include_expired: bool = False,
                      authorization: Annotated[str | None, Header()] = None) -> list[HotlistEntry]:
        """Hot-listed plates (active ones unless ``include_expired``)."""
        self._user(authorization)
        return await self._call(self._need(self.plate, "plate").hotlist_entries.remote(include_expired))

    @app.post("/v1/hotlist", response_model=HotlistEntry, status_code=201,
              responses={400: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def hotlist_add(self, req: HotlistRequest,
                          authorization: Annotated[str | None, Header()] = None) -> HotlistEntry:
        """Hot-list a plate; audited with the token's user."""
        user = self._user(authorization)
        return await self._call(self._need(self.plate, "plate").hotlist_add.remote(
            req.plate, req.reason, f"api:{user}", expires_at=req.expires_at, max_distance=req.max_distance,
            entry_id=req.entry_id, note=req.note))

    @app.get("/v1/hotlist/{entry_id}", response_model=HotlistEntry, responses={404: {"model": ErrorBody}})
    async def hotlist_get(self, entry_id: str,
                          authorization: Annotated[str | None, Header()] = None) -> HotlistEntry:
        """One hotlist entry."""
        self._user(authorization)
        return await self._call(self._need(self.plate, "plate").hotlist_get.remote(entry_id))

    @app.delete("/v1/hotlist/{entry_id}", response_model=HotlistEntry, responses={404: {"model": ErrorBody}})
    async def hotlist_remove(self, entry_id: str, reason: str = "",
                             authorization: Annotated[str | None, Header()] = None) -> HotlistEntry:
        """Remove a hotlist entry; audited."""
        user = self._user(authorization)
        return await self._call(self._need(self.plate, "plate").hotlist_remove.remote(entry_id, f"api:{user}", reason))


def build_api_app(face_app: Any | None, plate_app: Any | None, config: ApiConfig) -> serve.Application:
    """Bind the ingress to bound face/plate deployments (``serve.run(app, name="ssz", route_prefix="/")``)."""
    return ApiIngress.bind(face_app, plate_app, config.model_dump(mode="json"))


