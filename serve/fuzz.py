"""A bounded fuzzer for the HTTP API: malformed requests to 127.0.0.1 only, counted by status.

:func:`run_fuzz` sends up to :data:`MAX_REQUESTS` requests built by :func:`cases` — bad and missing tokens,
wrong methods and unknown routes, lying and malformed ``Content-Length`` headers, bodies cut short, oversized
and empty bodies, JSON that is broken, too deep, of the wrong type or with bad ids and dates, images that are
truncated, of refused formats (GIF, TIFF, ICO, EPS), too small, too thin, or decompression bombs — each
deterministic for a seed. Requests go over raw sockets (so headers may lie) with a per-request deadline;
an answer that takes longer than ``hang_s`` counts as a hang. Afterwards ``/v1/health`` must still answer.
The result (JSON-able) holds counts by status, the number of 5xx answers, hangs, connection errors, the
slowest request and whether the service was alive after. Only loopback addresses are accepted as targets.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import random
import socket
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_REQUESTS = 10_000


class FuzzTargetError(ValueError):
    """The fuzz target is not a loopback HTTP URL."""


@dataclass(frozen=True)
class Case:
    """One request: method, path, headers, body, and how many body bytes to really send (None: all)."""

    kind: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    send_bytes: int | None = None


def check_target(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://`` URL on a loopback address (127.0.0.0/8, ::1, localhost), else an error."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise FuzzTargetError(f"{url!r}: give the API's http://127.0.0.1:PORT URL")
    host = parts.hostname
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise FuzzTargetError(f"{host} is not a loopback address: the fuzzer only targets this machine")
        except ValueError as e:
            raise FuzzTargetError(f"{host!r} is not an IP address: use 127.0.0.1") from e
    return ("127.0.0.1" if host == "localhost" else host), parts.port or 80


# ------------------------------------------------------------------------------------------------ payloads
def _png_header(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims ``w`` x ``h`` (a decompression bomb header) with one tiny IDAT."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def _image(fmt: str, w: int, h: int, seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    im = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _payloads(seed: int) -> dict[str, bytes]:
    jpg = _image("JPEG", 64, 64, seed)
    return {
        "jpeg": jpg, "jpeg_truncated": jpg[: len(jpg) // 2], "png_4x4": _image("PNG", 4, 4, seed),
        "png_thin": _image("PNG", 2000, 40, seed), "gif": _image("GIF", 64, 64, seed),
        "tiff": _image("TIFF", 64, 64, seed), "ico": _image("ICO", 32, 32, seed), "bmp": _image("BMP", 64, 64, seed),
        "webp": _image("WEBP", 64, 64, seed), "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "bomb_20000": _png_header(20000, 20000), "bomb_65535": _png_header(65535, 65535),
        "bomb_8000": _png_header(8000, 8000), "text": b"hello, this is not an image", "zeros": b"\x00" * 4096,
        "random": bytes(random.Random(seed).randrange(256) for _ in range(2048)),
    }


_ROUTES_IMAGE = ("/v1/faces:detect", "/v1/faces:identify", "/v1/plates:read")
_ROUTES_GET = ("/v1/watchlist", "/v1/hotlist", "/v1/users", "/v1/health", "/openapi.json", "/docs", "/redoc",
               "/v1/watchlist/W-1", "/v1/hotlist/H-1", "/v1/watchlist/%00", "/v1/watchlist/..%2F..%2Fetc",
               "/v1/hotlist/%20", "/v1/nope", "/", "/v1/faces:detect", "/v1/watchlist/" + "A" * 5000,
               # the command room: alerts, evidence, the console's pages and queries (never the long-lived streams
               # /v1/alerts:stream and /console/live, which would count as hangs)
               "/v1/alerts?limit=-1", "/v1/alerts?limit=abc", "/v1/alerts?since=yesterday", "/v1/alerts?kind=%00",
               "/v1/alerts/NOPE", "/v1/alerts/..%2F..%2Fetc", "/v1/alerts/NOPE/evidence", "/v1/alerts/%00/evidence",
               "/metrics", "/console", "/console/me", "/console/search?q=%00", "/console/search?q=" + "ก" * 3000,
               "/console/map?bbox=a,b,c", "/console/map?bbox=1e308,-1e308,0,0", "/console/kpi?days=-1",
               "/console/activity?limit=abc", "/console/static/..%2F..%2Fetc%2Fpasswd", "/console/static/%00",
               "/v1/field/gps", "/v1/field/sos")
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "text/plain", "application/json", "image/webp",
                "image/bmp", "", "image/jpeg; charset=utf-8", "multipart/form-data; boundary=x")


def _json_bodies(rng: random.Random, photo: str) -> list[tuple[str, str, Any]]:
    """(route, method, body) JSON cases with broken fields."""
    future = "2030-01-01"
    good = {"warrant_no": "W-FUZZ-1", "court": "c", "offence": "o", "expires": future,
            "photos": [{"name": "a.jpg", "data_b64": photo}]}
    deep = b"[" * 5000 + b"1" + b"]" * 5000  # json.dumps cannot even write it
    return [
        ("/v1/watchlist", "POST", {**good, "warrant_no": ""}),
        ("/v1/watchlist", "POST", {**good, "warrant_no": "   "}),
        ("/v1/watchlist", "POST", {**good, "warrant_no": "W/../../x\u0000"}),
        ("/v1/watchlist", "POST", {**good, "warrant_no": "A" * 500}),
        ("/v1/watchlist", "POST", {**good, "expires": "2001-01-01"}),
        ("/v1/watchlist", "POST", {**good, "expires": "31/12/2569"}),
        ("/v1/watchlist", "POST", {**good, "expires": "9999-99-99"}),
        ("/v1/watchlist", "POST", {**good, "photos": []}),
        ("/v1/watchlist", "POST", {**good, "photos": [{"name": "x", "data_b64": "@@@@"}]}),
        ("/v1/watchlist", "POST", {**good, "photos": [{"name": "x", "data_b64": base64.b64encode(b"GIF8").decode()}]}),
        ("/v1/watchlist", "POST", {**good, "photos": "nope"}),
        ("/v1/watchlist", "POST", {**good, "extra": 1}),
        ("/v1/watchlist", "POST", [good]),
        ("/v1/watchlist", "POST", deep),
        ("/v1/hotlist", "POST", b'{"plate": "1' + b'\\u0000' * 1000 + b'", "reason": "' + b"\xff\xfe" * 10 + b'"}'),
        ("/v1/watchlist", "POST", None),
        ("/v1/watchlist", "POST", "string"),
        ("/v1/watchlist", "POST", {"warrant_no": rng.random()}),
        ("/v1/watchlist/W-1", "PATCH", {"expires": "2001-01-01"}),
        ("/v1/watchlist/W-1", "PATCH", {}),
        ("/v1/watchlist/W-1", "PATCH", {"offence": ""}),
        ("/v1/hotlist", "POST", {"plate": "", "reason": "x"}),
        ("/v1/hotlist", "POST", {"plate": "1กข 1234", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}),
        ("/v1/hotlist", "POST", {"plate": "1กข 1234", "reason": "x", "expires_at": "2030-01-01T00:00:00"}),
        ("/v1/hotlist", "POST", {"plate": "1กข 1234", "reason": "x", "entry_id": " "}),
        ("/v1/hotlist", "POST", {"plate": "1กข 1234", "reason": "x", "max_distance": 1e308}),
        ("/v1/hotlist", "POST", {"plate": "\u0000" * 10, "reason": "x"}),
        ("/v1/hotlist", "POST", {"plate": "hello", "reason": "x"}),
        ("/v1/users", "POST", {"user": "", "role": "admin"}),
        ("/v1/users", "POST", {"user": "eve", "role": "root"}),
        # field ingest (device role): shapes, positions and times that must be refused, never crash the desk
        ("/v1/field/gps", "POST", {"locations": "nope"}),
        ("/v1/field/gps", "POST", {"locations": []}),
        ("/v1/field/gps", "POST", [1, 2, 3]),
        ("/v1/field/gps", "POST", {"locations": [{"unit_id": "u-fuzz", "lat": 0, "lon": 0,
                                                  "ts": "2026-01-01T00:00:00Z"}]}),
        ("/v1/field/gps", "POST", {"locations": [{"unit_id": "u-fuzz", "lat": "abc", "lon": None, "ts": 1e30}]}),
        ("/v1/field/gps", "POST", {"locations": [{"unit_id": "\u0000", "lat": 1e308, "lon": -1e308, "ts": -1}]}),
        ("/v1/field/sos", "POST", {"pole_id": ""}),
        ("/v1/field/sos", "POST", {"pole_id": "NOPE-\u0000"}),
        ("/v1/field/sos", "POST", {"lat": 91.0, "lon": 200.0}),
        ("/v1/field/sos", "POST", {"lat": "x", "lon": [1]}),
        ("/v1/field/sos", "POST", {"pole_id": "NOPE", "accuracy_m": -1}),
        ("/v1/field/sos", "POST", {"pole_id": "NOPE", "text": "A" * 3000}),
        ("/v1/field/sos", "POST", {"pole_id": "NOPE", "extra": 1}),
        ("/v1/field/reports", "POST", {"lat": 0.0, "lon": 0.0, "photo_b64": "@@@@"}),
        ("/v1/field/reports", "POST", {"pole_id": "x", "text": "t"}),
        ("/v1/field/reports", "POST", {"category": "c" * 100}),
        ("/v1/field/qr", "POST", {"scans": {}}),
        ("/v1/field/qr", "POST", {"scans": [{"checkpoint_id": "NOPE", "unit_id": "u", "ts": "x"}]}),
        ("/v1/field/qr", "POST", {"scans": [{"checkpoint_id": None}] * 3}),
        # alert decisions (operator role) on alerts that do not exist, with bad actions and bodies
        ("/v1/alerts/NOPE:explode", "POST", {}),
        ("/v1/alerts/NOPE:dismiss", "POST", {"reason": "bogus"}),
        ("/v1/alerts/NOPE:dismiss", "POST", {"reason": 5}),
        ("/v1/alerts/NOPE:assign", "POST", {"unit": "\u0000"}),
        ("/v1/alerts/%00:confirm", "POST", {"extra": [1]}),
        ("/v1/alerts/NOPE:acknowledge", "POST", "string"),
        ("/console/login", "POST", {"token": "x" * 5000}),
        ("/console/logout", "POST", [None]),
    ]


def cases(n: int, tokens: dict[str, str], seed: int = 0) -> Iterator[Case]:
    """``n`` malformed requests, deterministic for ``seed``. ``tokens`` maps role -> a valid token (may be
    empty: then only unauthenticated cases test the routes' front door)."""
    rng = random.Random(seed)
    pay = _payloads(seed)
    photo = base64.b64encode(pay["jpeg"]).decode()
    jsons = _json_bodies(rng, photo)
    good_tokens = list(tokens.values())
    auths = ["", "Bearer", "Bearer ", "Bearer x", "Basic YWRtaW46YWRtaW4=", "Bearer " + "A" * 43,
             "Bearer " + "A" * 10000, "bearer\t" + (good_tokens[0] if good_tokens else "x"), "Token abc"]
    for _i in range(n):
        pick = rng.random()
        auth = rng.choice(good_tokens) if good_tokens and rng.random() < 0.6 else rng.choice(auths)
        headers: list[tuple[str, str]] = [("Authorization", f"Bearer {auth}" if auth in good_tokens else auth)]
        headers = [h for h in headers if h[1]]
        if pick < 0.35:  # images
            name = rng.choice(list(pay))
            body = pay[name]
            route = rng.choice(_ROUTES_IMAGE) + rng.choice(["", "", "?top_k=0", "?top_k=abc", "?zoom=2", "?top_k=5"])
            headers.append(("Content-Type", rng.choice(_IMAGE_TYPES)))
            yield Case(f"image:{name}", "POST", route, tuple(headers), body)
        elif pick < 0.6:  # JSON
            route, method, doc = rng.choice(jsons)
            cut = b'{"warrant_no": "W-1", ' + b"x" * rng.randrange(50)
            whole = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
            body = whole if rng.random() < 0.9 else cut
            headers.append(("Content-Type", rng.choice(["application/json", "application/json", "text/plain", ""])))
            headers = [h for h in headers if h[1]]
            yield Case(f"json:{route}", method, route, tuple(headers), body)
        elif pick < 0.75:  # headers that lie: content-length larger than the body, cut short, not a number
            route = rng.choice((*_ROUTES_IMAGE, "/v1/watchlist", "/v1/hotlist"))
            body = pay["jpeg"]
            mode = rng.choice(["short", "huge", "nan", "negative"])
            if mode == "short":
                headers.append(("Content-Length", str(len(body) + 5000)))
                yield Case("lie:short-body", "POST", route, tuple(headers), body, send_bytes=len(body))
            elif mode == "huge":
                headers.append(("Content-Length", str(50 * 2**30)))
                yield Case("lie:50GiB", "POST", route, tuple(headers), body[:100], send_bytes=100)
            else:
                headers.append(("Content-Length", "abc" if mode == "nan" else "-5"))
                yield Case(f"lie:{mode}", "POST", route, tuple(headers), b"")
        elif pick < 0.85:  # oversized bodies (sent in full, 21-40 MiB)
            route = rng.choice((*_ROUTES_IMAGE, "/v1/watchlist", "/v1/hotlist", "/v1/users"))
            size = rng.choice([21, 33, 40]) * 2**20 if rng.random() < 0.3 else rng.choice([70_000, 200_000])
            headers.append(("Content-Type", "application/json" if "faces" not in route else "image/jpeg"))
            yield Case(f"big:{size}", "POST", route, tuple(headers), b"{" + b" " * (size - 2) + b"}")
        else:  # methods, routes, paths
            method = rng.choice(["GET", "GET", "DELETE", "PUT", "OPTIONS", "HEAD", "PATCH", "TRACE"])
            route = rng.choice(_ROUTES_GET) + rng.choice(["", "?include_expired=maybe", "?reason=" + "r" * 300,
                                                          "?x=1", "?%zz=1"])
            yield Case(f"route:{method}", method, route, tuple(headers), b"")


# ------------------------------------------------------------------------------------------------ sending
def _send(host: str, port: int, case: Case, hang_s: float) -> tuple[int | None, float, str | None]:
    """Send one case over a raw socket; (status or None, seconds, error)."""
    t0 = time.monotonic()
    deadline = t0 + hang_s
    hdrs = [f"{case.method} {case.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    names = {k.lower() for k, _ in case.headers}
    hdrs += [f"{k}: {v}" for k, v in case.headers]
    if "content-length" not in names and (case.body or case.method in {"POST", "PUT", "PATCH"}):
        hdrs.append(f"Content-Length: {len(case.body)}")
    head = ("\r\n".join(hdrs) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    body = case.body if case.send_bytes is None else case.body[: case.send_bytes]
    try:
        with socket.create_connection((host, port), timeout=hang_s) as s:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.sendall(head)
            try:
                view, sent = memoryview(body), 0
                while sent < len(body):
                    # The server may answer (401/413) and close before the whole body is sent: stop then.
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    sent += s.send(view[sent: sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass
            buf = b""
            while b"\r\n" not in buf:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        status = int(line[1]) if len(line) >= 2 and line[1].isdigit() else None
        return status, time.monotonic() - t0, None if status else f"no status line ({buf[:40]!r})"
    except TimeoutError:
        return None, time.monotonic() - t0, "hang"
    except OSError as e:
        return None, time.monotonic() - t0, f"{type(e).__name__}: {e}"


def _alive(host: str, port: int, timeout_s: float = 10.0) -> bool:
    status, _, _ = _send(host, port, Case("health", "GET", "/v1/health", ()), timeout_s)
    return status == 200


def run_fuzz(url: str, tokens: dict[str, str], requests: int = 1000, seed: int = 0, concurrency: int = 8,
             hang_s: float = 10.0) -> dict[str, Any]:
    """Send ``requests`` (at most :data:`MAX_REQUESTS`) fuzz cases to the API at ``url`` (loopback only).

    Returns ``{"requests", "by_status", "server_errors_5xx", "hangs", "connection_errors", "slowest_s",
    "slowest_kind", "alive_after", "examples_5xx", "examples_hangs", "seconds"}``; ``by_status`` keys are status
    codes as strings (``"none"`` when no status came back).
    """
    if not 0 < requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1..{MAX_REQUESTS}, not {requests}")
    host, port = check_target(url)
    if not _alive(host, port):
        raise FuzzTargetError(f"{url}/v1/health does not answer 200: start the API first (`ssz api up`)")
    t0 = time.monotonic()
    counts: Counter[str] = Counter()
    hangs = conn = 0
    slowest, slowest_kind = 0.0, ""
    bad: list[dict[str, Any]] = []
    slow: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = pool.map(lambda c: (c, *_send(host, port, c, hang_s)), cases(requests, tokens, seed))
        for case, status, secs, err in results:
            counts[str(status) if status else "none"] += 1
            if secs > slowest:
                slowest, slowest_kind = secs, case.kind
            if err == "hang" or secs >= hang_s:
                hangs += 1
                if len(slow) < 20:
                    slow.append({"kind": case.kind, "method": case.method, "path": case.path[:120],
                                 "status": status, "seconds": round(secs, 1)})
            elif status is None:
                conn += 1
            if status is not None and status >= 500 and len(bad) < 20:
                bad.append({"kind": case.kind, "method": case.method, "path": case.path[:120], "status": status})
    return {"requests": requests, "by_status": dict(sorted(counts.items())),
            "server_errors_5xx": sum(v for k, v in counts.items() if k.isdigit() and int(k) >= 500),
            "hangs": hangs, "connection_errors": conn, "slowest_s": round(slowest, 3), "slowest_kind": slowest_kind,
            "alive_after": _alive(host, port), "examples_5xx": bad, "examples_hangs": slow,
            "seconds": round(time.monotonic() - t0, 1)}
