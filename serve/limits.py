"""Request-body limits: an ASGI middleware on every route, and the helpers routes read bodies with.

:class:`BodyLimitMiddleware` wraps every HTTP request's ``receive``: a declared ``Content-Length`` over the
limit, or a body that streams past it (chunked uploads, lying headers), raises :class:`BodyTooLarge` (413)
the moment the application tries to read the body — not before, so a route's role check (which reads only
headers) answers 401/403 first and an unauthenticated caller never gets a byte of its body read. A body
that stops arriving for ``read_timeout_s`` raises :class:`BodyTimeout` (408), so a slow or lying client
cannot hold a request open; once the whole body has arrived, waiting for the client to disconnect (what a
streaming response such as the alert stream does) is not limited. A ``Content-Length`` that is not a number
is answered 400 at once.

Routes read bodies through :func:`read_body` (a per-route limit below the global one) and
:func:`json_body` (a dependency that parses and validates a pydantic model; list it after the role check).
"""


import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body is over its limit (413)."""

    def __init__(self, size: int | None, limit: int) -> None:
        self.size, self.limit = size, limit
        got = f"{size / 2**20:.1f} MiB" if size is not None else "more"
        super().__init__(f"the request body is {got}, over the {limit / 2**20:.2f} MiB limit of this route: "
                         "send a smaller body (downscale images to at most 1920 px, JPEG quality 85)")


class BodyTimeout(Exception):
    """The client stopped sending the body it announced (408)."""


def _declared_length(scope: Scope) -> int | str | None:
    for k, v in scope.get("headers", []):
        if k == b"content-length":
            s = v.decode("latin-1").strip()
            return int(s) if s.isdigit() else s
    return None


class BodyLimitMiddleware:
    """Pure ASGI middleware: at most ``limits()[0]`` bytes of body on every route, no body chunk awaited longer
    than ``limits()[1]`` seconds; the route-level limit of :func:`read_body` may be lower. ``limits`` is called
    per request, so the replica's configured limits apply."""

    def __init__(self, app: Any, limits: Callable[[], tuple[int, float]]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``receive`` of HTTP requests; answer a malformed Content-Length with 400."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if isinstance(declared, str):
            await _send_error(send, 400, "bad_request", f"Content-Length {declared[:40]!r} is not a number")
            return
        seen = 0
        body_done = False
        limit, timeout = self.limits()

        async def limited() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the whole body: a streaming response waits here for the client to disconnect
                return await receive()
            if declared is not None and declared > limit:
                raise BodyTooLarge(declared, limit)
            try:
                msg = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise BodyTimeout(f"no request body arrived for {timeout:g} s: send the whole body at once "
                                  "with a correct Content-Length") from None
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(None, limit)
                body_done = not msg.get("more_body", False)
            return msg

        await self.app(scope, limited, send)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    import json

    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, or BodyTooLarge as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared), limit)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise BodyTooLarge(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(model: type[M], limit: Callable[[], int]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads the body (at most ``limit()`` bytes) as ``model``.

    Answers 415 when the body is not declared JSON, 413 over the limit, 422 (the documented error shape,
    field: reason) when it is not valid JSON or not a valid ``model``.
    """

    async def dependency(request: Request) -> M:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPException(415, f"send the body as JSON with Content-Type application/json (got "
                                     f"{ctype or 'none'!r})")
        raw = await read_body(request, limit())
        try:
            return model.model_validate_json(raw)
        except ValidationError as e:
            raise RequestValidationError(e.errors(include_url=False)) from None

    dependency.__name__ = f"json_{model.__name__}"
    return dependency
