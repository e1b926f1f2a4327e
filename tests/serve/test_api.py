"""The HTTP API over real Serve, real weights, real HTTP: roles, tokens, limits, error shape, audit, fuzz."""

from __future__ import annotations

import base64
import io
import socket
import struct
import time
import zlib
from datetime import date, timedelta
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from PIL import Image

from serve.imaging import encode_jpeg


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def api(ssz_api):
    """(client as supervisor, serving module, {role: token}, base url) of the session's `ssz` application."""
    from cluster import serving

    st, tokens = ssz_api
    assert st.running and {f"test-{r}" for r in tokens} <= set(st.users)
    assert serving.status().url == st.url  # `ssz api up` records where it listens
    client = httpx.Client(base_url=st.url, timeout=120, headers={"Authorization": f"Bearer {tokens['supervisor']}"})
    yield client, serving, tokens, st.url
    client.close()


def _as(api, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api[2][role]}"}


def _post_image(client: httpx.Client, path: str, data: bytes, ctype: str = "image/jpeg", **kw) -> httpx.Response:
    return client.post(path, content=data, headers={"Content-Type": ctype, **kw.pop("headers", {})}, **kw)


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["code"], body
    assert body["error"]["message"], body
    return body["error"]["message"]


def test_health_is_bland_and_needs_no_token(api):
    r = httpx.get(f"{api[3]}/v1/health", timeout=60)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert httpx.URL(api[3]).host == "127.0.0.1"


def test_docs_need_a_token_or_are_off(api):
    base = api[3]
    _error(httpx.get(f"{base}/openapi.json", timeout=60), 401)
    for path in ("/docs", "/redoc"):
        _error(httpx.get(f"{base}{path}", headers=_as(api, "analyst"), timeout=60), 404)
    spec = httpx.get(f"{base}/openapi.json", headers=_as(api, "device"), timeout=60).json()
    assert {"/v1/faces:detect", "/v1/faces:identify", "/v1/plates:read", "/v1/watchlist", "/v1/hotlist",
            "/v1/health", "/v1/users"} <= set(spec["paths"])
    enrol = spec["paths"]["/v1/watchlist"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert enrol["$ref"].endswith("/EnrolRequest") and "Photo" in spec["components"]["schemas"]


def test_no_token_gets_401_before_any_body_is_read(api):
    """A 30 MiB announced body: the 401 comes back after the headers, with the body never sent."""
    base = httpx.URL(api[3])
    for path in ("/v1/watchlist", "/v1/faces:detect", "/v1/hotlist"):
        with socket.create_connection((base.host, base.port), timeout=30) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {30 * 2**20}\r\n\r\n".encode() + b"{" * 1000)
            s.settimeout(30)
            head = b""
            while b'"unauthorized"' not in head:
                chunk = s.recv(65536)
                if not chunk:
                    break
                head += chunk
        assert head.startswith(b"HTTP/1.1 401"), head[:200]
        assert b"www-authenticate: Bearer" in head.lower().replace(b"bearer", b"Bearer") and b'"unauthorized"' in head


def test_every_route_needs_a_token(api):
    base, jpg = api[3], encode_jpeg(_astronaut())
    for method, path in (("POST", "/v1/faces:detect"), ("POST", "/v1/faces:identify"), ("GET", "/v1/watchlist"),
                         ("DELETE", "/v1/watchlist/W-1"), ("POST", "/v1/plates:read"), ("GET", "/v1/users"),
                         ("GET", "/v1/hotlist/H-1?zoom=1")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"},
                        {"Authorization": "Bearer " + "A" * 43}):
            r = httpx.request(method, f"{base}{path}", content=jpg, headers={"Content-Type": "image/jpeg", **headers},
                              timeout=60)
            _error(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("role", "method", "path", "status"), [
    ("operator", "POST", "/v1/watchlist", 403),
    ("operator", "DELETE", "/v1/hotlist/H-1", 403),
    ("analyst", "POST", "/v1/faces:identify", 403),
    ("analyst", "GET", "/v1/watchlist", 403),
    ("device", "GET", "/v1/hotlist", 403),
    ("supervisor", "GET", "/v1/users", 403),
    ("operator", "GET", "/v1/watchlist", 200),
    ("admin", "GET", "/v1/users", 200),
])
def test_roles_are_enforced_per_route(api, role, method, path, status):
    body = b'{"warrant_no": "W-ROLE", "court": "c", "offence": "o", "expires": "2099-01-01", "photos": []}'
    r = httpx.request(method, f"{api[3]}{path}", content=body,
                      headers={"Content-Type": "application/json", **_as(api, role)}, timeout=60)
    if status == 200:
        assert r.status_code == 200, r.text
    else:
        assert role in _error(r, status)


def test_token_rotation_and_revocation_need_no_redeploy(api):
    from cluster import serving

    base = api[3]
    first = serving.issue_token("rotator", "operator", actor="test:rotation")
    assert len(first) >= 43
    ok = httpx.get(f"{base}/v1/hotlist", headers={"Authorization": f"Bearer {first}"}, timeout=60)
    assert ok.status_code == 200, ok.text
    second = serving.issue_token("rotator", "operator", actor="test:rotation")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the table is re-checked every 2 s
        if httpx.get(f"{base}/v1/hotlist", headers={"Authorization": f"Bearer {first}"}, timeout=60).status_code == 401:
            break
        time.sleep(0.5)
    _error(httpx.get(f"{base}/v1/hotlist", headers={"Authorization": f"Bearer {first}"}, timeout=60), 401)
    assert httpx.get(f"{base}/v1/hotlist", headers={"Authorization": f"Bearer {second}"}, timeout=60).status_code == 200
    # An admin can do the same over HTTP; the token table holds only keyed hashes.
    r = httpx.post(f"{base}/v1/users", json={"user": "rotator", "role": "analyst"}, headers=_as(api, "admin"),
                   timeout=60)
    assert r.status_code == 201 and r.json()["role"] == "analyst"
    third = r.json()["token"]
    from twin.objectstore import MODELS_BUCKET

    table = api[1].token_store().store.get_bytes(MODELS_BUCKET, "access/tokens.json").decode()
    assert first not in table and second not in table and third not in table
    assert httpx.delete(f"{base}/v1/users/rotator", headers=_as(api, "admin"), timeout=60).status_code == 200
    time.sleep(2.5)
    _error(httpx.get(f"{base}/openapi.json", headers={"Authorization": f"Bearer {third}"}, timeout=60), 401)
    from serve.audit import AuditLog

    actions = [e.action for e in AuditLog(serving._paths()["access_audit"], name="access").events("rotator")]
    assert actions == ["user.token", "user.token", "user.token", "user.revoke"]


def test_user_names_with_any_printable_characters(api):
    """A user name with Thai, a space, "/" and "." is issued, listed and revoked by its URL-encoded name."""
    base, name = api[3], "ร.ต.อ. สมชาย/หาดใหญ่"
    r = httpx.post(f"{base}/v1/users", json={"user": name, "role": "operator"}, headers=_as(api, "admin"), timeout=60)
    assert r.status_code == 201, r.text
    assert name in {u["user"] for u in httpx.get(f"{base}/v1/users", headers=_as(api, "admin"), timeout=60).json()}
    r = httpx.delete(f"{base}/v1/users/{quote(name, safe='')}", headers=_as(api, "admin"), timeout=60)
    assert r.status_code == 200 and r.json()["user"] == name
    assert name not in {u["user"] for u in httpx.get(f"{base}/v1/users", headers=_as(api, "admin"), timeout=60).json()}


def test_detect_astronaut_over_http(api):
    client = api[0]
    r = _post_image(client, "/v1/faces:detect", encode_jpeg(_astronaut()))
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 1 and faces[0]["detection"]["prob"] > 0.99


def test_enrol_identify_round_trip(api):
    client, serving = api[0], api[1]
    astro = _astronaut()
    body = {"warrant_no": "จ.123/2567", "name": "Eileen", "court": "ศาลจังหวัดสงขลา", "offence": "ฉ้อโกง",
            "expires": str(date.today() + timedelta(days=30)),
            "photos": [{"name": "front.jpg", "data_b64": base64.b64encode(encode_jpeg(astro)).decode()}]}
    r = client.post("/v1/watchlist", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["photos"] == 1
    assert "already enrolled" in _error(client.post("/v1/watchlist", json=body), 409)
    r = _post_image(client, "/v1/faces:identify", encode_jpeg(np.ascontiguousarray(astro[:, ::-1])))
    assert r.status_code == 200, r.text
    cands = r.json()["faces"][0]["candidates"]
    assert cands and cands[0]["warrant_no"] == "จ.123/2567" and cands[0]["match"] is True
    assert client.get("/v1/watchlist/จ.123/2567").json()["court"] == "ศาลจังหวัดสงขลา"  # a raw "/" is the id's
    enc = "/v1/watchlist/" + quote("จ.123/2567", safe="")  # %E0%B8%88.123%2F2567: what a client library sends
    assert "%2F" in enc and client.get(enc).json()["warrant_no"] == "จ.123/2567"
    r = client.patch(enc, json={"offence": "ลักทรัพย์"})
    assert r.status_code == 200 and r.json()["offence"] == "ลักทรัพย์"
    r = client.delete(enc, params={"reason": "arrested"})
    assert r.status_code == 200 and r.json()["warrant_no"] == "จ.123/2567"
    _error(client.get(enc), 404)
    _error(client.get("/v1/watchlist/จ.123/2567"), 404)
    r = _post_image(client, "/v1/faces:identify", encode_jpeg(astro))
    assert all(not c["match"] for f in r.json()["faces"] for c in f["candidates"])
    from serve.audit import AuditLog

    log = AuditLog(serving._paths()["watchlist_audit"], name="warrants")
    actions = [(e.actor, e.action) for e in log.events("จ.123/2567")]
    assert [a for _, a in actions] == ["enrol", "update", "remove"]
    assert all(actor == "api:test-supervisor" for actor, _ in actions)
    from cluster import audits, store

    reports = {r.name: r for r in audits.verify_all(store.open_store())}
    assert reports["warrants"].ok and reports["warrants"].mirrored == reports["warrants"].events >= 3


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _png_claiming(w: int, h: int) -> bytes:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _other_format(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "ctype", "status", "says"),
    [
        ("not an image", lambda: b"hello, this is text", "image/jpeg", 400, "not a readable image"),
        ("truncated jpeg", lambda: encode_jpeg(_astronaut())[:4000], "image/jpeg", 400, "truncated"),
        ("empty body", lambda: b"", "image/jpeg", 400, "empty"),
        ("tiny image", lambda: _png(4, 4), "image/png", 400, "px, too small for"),
        ("thin image", lambda: _png(2000, 40), "image/png", 400, "too thin"),
        ("50 megapixels", lambda: _png(10000, 5000), "image/png", 413, "megapixels"),  # faces; plates read it
        ("bomb header 20000x20000", lambda: _png_claiming(20000, 20000), "image/png", 413, "decompression bomb"),
        ("gif", lambda: _other_format("GIF"), "image/jpeg", 415, "GIF"),
        ("tiff", lambda: _other_format("TIFF"), "image/png", 415, "TIFF"),
        ("eps", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n", "application/octet-stream", 415, "EPS"),
        ("wrong content type", lambda: encode_jpeg(_astronaut()), "text/plain", 415, "image/jpeg"),
        ("over 20 MiB", lambda: b"\xff" * (21 * 2**20), "image/jpeg", 413, "limit"),  # faces; plates take 64 MiB
        ("over 64 MiB", lambda: b"\xff" * (65 * 2**20), "image/jpeg", 413, "limit"),
    ],
)
def test_bad_images_get_4xx_with_advice_and_service_keeps_serving(api, name, make, ctype, status, says):
    client = api[0]
    # plate photos may be bigger (ApiLimits.max_plate_*: a 50 MP phone photo is read; tests/serve/test_plate_api.py)
    routes = ("/v1/faces:detect",) if name in ("50 megapixels", "over 20 MiB") else ("/v1/faces:detect",
                                                                                    "/v1/plates:read")
    for route in routes:
        assert says in _error(_post_image(client, route, make(), ctype), status), (name, route)
    ok = _post_image(client, "/v1/faces:detect", encode_jpeg(_astronaut()))
    assert ok.status_code == 200 and len(ok.json()["faces"]) == 1


def test_bad_json_ids_and_dates_are_refused_at_the_schema(api):
    client = api[0]
    photo = base64.b64encode(encode_jpeg(_astronaut())).decode()
    good = {"warrant_no": "W-X", "court": "c", "offence": "o", "expires": "2099-01-01",
            "photos": [{"name": "a.jpg", "data_b64": photo}]}
    assert "nickname: unknown field" in _error(client.post("/v1/watchlist", json={**good, "nickname": "x"}), 422)
    _error(client.post("/v1/watchlist", content=b"{not json", headers={"Content-Type": "application/json"}), 422)
    _error(client.post("/v1/watchlist", content=b"{}", headers={"Content-Type": "text/plain"}), 415)
    for bad, says in (("", "empty"), ("   ", "empty"), (" W-1", "white space"), ("W-1\x00", "control"),
                      ("W\n1", "control"), ("W\u200b1", "control"), ("A" * 129, "at most 128")):
        msg = _error(client.post("/v1/watchlist", json={**good, "warrant_no": bad}), 422)
        assert "warrant_no" in msg and says in msg, (bad, msg)
    # The same rule on every id in a path: empty, control characters and over-long ids are 422 with the reason.
    for path, says in (("/v1/watchlist/W%0A1", "control"), ("/v1/hotlist/H%00", "control"),
                       ("/v1/hotlist/" + "H" * 129, "at most 128"), ("/v1/watchlist/%20", "empty")):
        assert says in _error(client.get(path), 422), path
    assert "control" in _error(client.delete("/v1/users/bob%07", headers=_as(api, "admin")), 422)
    assert "expired" in _error(client.post("/v1/watchlist", json={**good, "expires": "2020-01-01"}), 422)
    assert "blank" in _error(client.post("/v1/watchlist", json={**good, "court": "  "}), 422)
    assert "DELETE" in _error(client.patch("/v1/watchlist/W-none", json={"expires": "2020-01-01"}), 422)
    bad_b64 = {**good, "photos": [{"name": "a", "data_b64": "@@@@"}]}
    assert "base64" in _error(client.post("/v1/watchlist", json=bad_b64), 400)
    r = client.post("/v1/watchlist", json={**good, "photos": [
        {"name": "blank.jpg", "data_b64": base64.b64encode(encode_jpeg(np.zeros((200, 200, 3), np.uint8))).decode()}]})
    assert "blank.jpg" in _error(r, 400)
    assert "zoom" in _error(_post_image(client, "/v1/faces:detect", encode_jpeg(_astronaut()), params={"zoom": "2"}),
                            422)
    _error(client.patch("/v1/watchlist/W-none", json={"offence": "x"}), 404)
    _error(client.get("/v1/hotlist/%20"), 422)
    assert "past" in _error(client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x",
                                                             "expires_at": "2020-01-01T00:00:00Z"}), 422)
    assert "zone" in _error(client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x",
                                                             "expires_at": "2099-01-01T00:00:00"}), 422)
    big = b'{"plate": "1", "reason": "' + b"x" * 100_000 + b'"}'
    assert "limit" in _error(client.post("/v1/hotlist", content=big, headers={"Content-Type": "application/json"}), 413)
    assert client.get("/v1/health").status_code == 200


def test_unknown_routes_and_methods_have_the_error_shape(api):
    client = api[0]
    assert "no route" in _error(client.get("/v1/nope"), 404)
    # a trailing slash is not redirected (a 307 with an empty body that most clients do not resend a POST on)
    slash = _error(client.post("/v1/plates:read/", content=b"x", headers={"Content-Type": "image/jpeg"}), 404)
    assert "drop the trailing slash (POST /v1/plates:read)" in slash, slash
    assert "trailing slash" not in _error(client.get("/v1/nope/"), 404)
    _error(client.get("/"), 404)
    _error(client.put("/v1/watchlist"), 405)
    _error(httpx.get(f"{api[3]}/v1/nope", timeout=60), 404)


def _scene_with_plate(seed: int) -> np.ndarray:
    from serve.plate.parse import Plate
    from serve.plate.render import render_scene

    scene = render_scene(seed, level="clean", plate=Plate(category="1", letters="กข", number="1234",
                                                          province="ภูเก็ต"))
    return np.ascontiguousarray(scene.image[..., ::-1])  # the renderer draws BGR


def test_plate_read_and_hotlist_over_http(api):
    """A hotlist id with "/", a space, Thai and "." is added, read, matched and withdrawn by its encoded id."""
    HID = "HL/2567 ด่าน.1"
    client, serving = api[0], api[1]
    r = client.post("/v1/hotlist", json={"plate": "1กข 1234 ภูเก็ต", "reason": "stolen", "entry_id": HID})
    assert r.status_code == 201, r.text
    _error(client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x", "entry_id": HID}), 409)
    _error(client.post("/v1/hotlist", json={"plate": "hello", "reason": "x"}), 400)
    msg = _error(client.post("/v1/hotlist", json={"plate": "กขคง 123", "reason": "x"}), 400)
    assert msg.startswith("'กขคง 123' is not a Thai registration"), msg  # the opening quote is kept
    _error(client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x", "colour": "red"}), 422)
    assert [e["id"] for e in client.get("/v1/hotlist").json()] == [HID]
    assert client.get(f"/v1/hotlist/{quote(HID, safe='')}").json()["plate"]["province"] == "ภูเก็ต"
    img = _scene_with_plate(seed=3)
    r = _post_image(client, "/v1/plates:read", encode_jpeg(img, quality=95))
    assert r.status_code == 200, r.text
    plates = r.json()["plates"]
    assert plates and plates[0]["plate"]["letters"] == "กข" and plates[0]["plate"]["number"] == "1234"
    assert plates[0]["hotlist"] and plates[0]["hotlist"][0]["entry"]["id"] == HID
    enc = f"/v1/hotlist/{quote(HID, safe='')}"
    assert client.delete(enc, params={"reason": "recovered"}).status_code == 200
    _error(client.get(enc), 404)
    _error(client.delete(enc), 404)
    r = _post_image(client, "/v1/plates:read", encode_jpeg(img, quality=95))  # withdrawn: the plate no longer hits
    assert r.status_code == 200 and r.json()["plates"] and not r.json()["plates"][0]["hotlist"]
    from serve.audit import AuditLog

    log = AuditLog(serving._paths()["hotlist_audit"], name="hotlist")
    assert [(e.actor, e.action) for e in log.events(HID)] == [("api:test-supervisor", "hotlist.add"),
                                                                ("api:test-supervisor", "hotlist.remove")]
    assert log.verify() >= 2


def test_a_failed_audit_write_answers_503_and_changes_nothing(api):
    """The hotlist's audit log cannot be written (its last line is not an event): 503, and no entry is added."""
    client, serving = api[0], api[1]
    from pathlib import Path

    p = Path(serving._paths()["hotlist_audit"])
    before = p.read_bytes()
    try:
        p.write_bytes(before + b"not an audit event\n")
        msg = _error(client.post("/v1/hotlist", json={"plate": "1กข 9999", "reason": "x", "entry_id": "H-503"}), 503)
        assert "audit" in msg
        _error(client.get("/v1/hotlist/H-503"), 404)
    finally:
        p.write_bytes(before)
    assert client.post("/v1/hotlist", json={"plate": "1กข 9999", "reason": "x", "entry_id": "H-503"}).status_code == 201
    assert client.delete("/v1/hotlist/H-503").status_code == 200


def test_fuzz_a_few_hundred_malformed_requests(api):
    from serve.fuzz import run_fuzz

    res = run_fuzz(api[3], api[2], requests=300, seed=7, concurrency=4)
    assert res["requests"] == 300 and sum(res["by_status"].values()) == 300
    assert res["server_errors_5xx"] == 0, res["examples_5xx"]
    assert res["hangs"] == 0 and res["alive_after"], res
    assert {"401", "403", "413", "415", "422"} <= set(res["by_status"]), res["by_status"]


def test_fuzz_refuses_other_hosts():
    from serve.fuzz import FuzzTargetError, check_target

    for url in ("http://10.0.0.1:8000", "http://example.com", "https://127.0.0.1:8000", "ftp://127.0.0.1"):
        with pytest.raises(FuzzTargetError):
            check_target(url)
    assert check_target("http://localhost:8000") == ("127.0.0.1", 8000)
