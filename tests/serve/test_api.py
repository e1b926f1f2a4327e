"""The HTTP API over real Serve, real weights: auth, enrolment round trip, and every bad input gets a 4xx."""

from __future__ import annotations

import base64
import io
from datetime import date, timedelta

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
    """The deployed `ssz` application (face + plate + API) exactly as `ssz api up` builds it (session-wide)."""
    from cluster import serving

    st, token = ssz_api
    assert st.running and st.users == ["somchai"]
    assert serving.status().url == st.url  # `ssz api up` records where it listens
    client = httpx.Client(base_url=st.url, timeout=120, headers={"Authorization": f"Bearer {token}"})
    yield client, serving
    client.close()


def _post_image(client: httpx.Client, path: str, data: bytes, ctype: str = "image/jpeg", **kw) -> httpx.Response:
    return client.post(path, content=data, headers={"Content-Type": ctype}, **kw)


def test_health_needs_no_token_and_listens_on_loopback(api):
    client, _ = api
    r = httpx.get(f"{client.base_url}/v1/health", timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["face"]["engine"]
    assert client.base_url.host == "127.0.0.1"


def test_every_other_route_needs_a_token(api):
    client, _ = api
    jpg = encode_jpeg(_astronaut())
    for method, path in (("POST", "/v1/faces:detect"), ("POST", "/v1/faces:identify"), ("GET", "/v1/watchlist"),
                         ("DELETE", "/v1/watchlist/W-1")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            r = httpx.request(method, f"{client.base_url}{path}", content=jpg,
                              headers={"Content-Type": "image/jpeg", **headers}, timeout=60)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.json()["error"]["code"] == "unauthorized"


def test_detect_astronaut_over_http(api):
    client, _ = api
    r = _post_image(client, "/v1/faces:detect", encode_jpeg(_astronaut()))
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 1 and faces[0]["detection"]["prob"] > 0.99


def test_enrol_identify_round_trip(api):
    client, serving = api
    astro = _astronaut()
    body = {"warrant_no": "W-API-1", "name": "Eileen", "court": "ศาลจังหวัดสงขลา", "offence": "ฉ้อโกง",
            "expires": str(date.today() + timedelta(days=30)),
            "photos": [{"name": "front.jpg", "data_b64": base64.b64encode(encode_jpeg(astro)).decode()}]}
    r = client.post("/v1/watchlist", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["photos"] == 1
    assert client.post("/v1/watchlist", json=body).status_code == 409  # duplicate warrant
    r = _post_image(client, "/v1/faces:identify", encode_jpeg(np.ascontiguousarray(astro[:, ::-1])))
    assert r.status_code == 200, r.text
    cands = r.json()["faces"][0]["candidates"]
    assert cands and cands[0]["warrant_no"] == "W-API-1" and cands[0]["match"] is True
    assert client.get("/v1/watchlist/W-API-1").json()["court"] == "ศาลจังหวัดสงขลา"
    r = client.patch("/v1/watchlist/W-API-1", json={"offence": "ลักทรัพย์"})
    assert r.status_code == 200 and r.json()["offence"] == "ลักทรัพย์"
    r = client.delete("/v1/watchlist/W-API-1", params={"reason": "arrested"})
    assert r.status_code == 200
    assert client.get("/v1/watchlist/W-API-1").status_code == 404
    r = _post_image(client, "/v1/faces:identify", encode_jpeg(astro))
    assert all(not c["match"] for f in r.json()["faces"] for c in f["candidates"])
    from serve.audit import AuditLog

    actions = [(e.actor, e.action) for e in AuditLog(serving._paths()["watchlist_audit"]).events("W-API-1")]
    assert [a for _, a in actions][:1] == ["enrol"] and actions[-1][1] == "remove"
    assert all(actor == "api:somchai" for actor, _ in actions)


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "ctype", "status"),
    [
        ("not an image", lambda: b"hello, this is text", "image/jpeg", 400),
        ("truncated jpeg", lambda: encode_jpeg(_astronaut())[:4000], "image/jpeg", 400),
        ("empty body", lambda: b"", "image/jpeg", 400),
        ("tiny image", lambda: _png(4, 4), "image/png", 400),
        ("50 megapixels", lambda: _png(10000, 5000), "image/png", 413),
        ("wrong content type", lambda: encode_jpeg(_astronaut()), "text/plain", 415),
    ],
)
def test_bad_images_get_4xx_and_service_keeps_serving(api, name, make, ctype, status):
    client, _ = api
    r = _post_image(client, "/v1/faces:detect", make(), ctype)
    assert r.status_code == status, (name, r.text)
    assert r.json()["error"]["message"]
    ok = _post_image(client, "/v1/faces:detect", encode_jpeg(_astronaut()))
    assert ok.status_code == 200 and len(ok.json()["faces"]) == 1


def test_malformed_json_and_unknown_fields(api):
    client, _ = api
    good = {"warrant_no": "W-X", "court": "c", "offence": "o", "expires": "2030-01-01",
            "photos": [{"name": "a.jpg", "data_b64": base64.b64encode(encode_jpeg(_astronaut())).decode()}]}
    r = client.post("/v1/watchlist", json={**good, "nickname": "x"})
    assert r.status_code == 422 and "nickname: unknown field" in r.json()["error"]["message"]
    r = client.post("/v1/watchlist", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.post("/v1/watchlist", json={**good, "photos": [{"name": "a.jpg", "data_b64": "@@@@"}]})
    assert r.status_code == 400 and "base64" in r.json()["error"]["message"]
    r = client.post("/v1/watchlist", json={**good, "photos": [
        {"name": "blank.jpg", "data_b64": base64.b64encode(encode_jpeg(np.zeros((200, 200, 3), np.uint8))).decode()}]})
    assert r.status_code == 400 and "blank.jpg" in r.json()["error"]["message"]
    r = _post_image(client, "/v1/faces:detect", encode_jpeg(_astronaut()), params={"zoom": "2"})
    assert r.status_code == 422 and "zoom" in r.json()["error"]["message"]
    assert client.patch("/v1/watchlist/W-none", json={"offence": "x"}).status_code == 404
    assert client.get("/v1/health").status_code == 200


def test_openapi_is_published(api):
    client, _ = api
    spec = client.get("/openapi.json").json()
    assert {"/v1/faces:detect", "/v1/faces:identify", "/v1/plates:read", "/v1/watchlist", "/v1/hotlist",
            "/v1/health"} <= set(spec["paths"])


def _scene_with_plate(seed: int) -> np.ndarray:
    from serve.plate.parse import Plate
    from serve.plate.render import render_scene

    scene = render_scene(seed, level="clean", plate=Plate(category="1", letters="กข", number="1234",
                                                          province="ภูเก็ต"))
    return np.ascontiguousarray(scene.image[..., ::-1])  # the renderer draws BGR


def test_plate_read_and_hotlist_over_http(api):
    client, serving = api
    r = client.post("/v1/hotlist", json={"plate": "1กข 1234 ภูเก็ต", "reason": "stolen", "entry_id": "H-1"})
    assert r.status_code == 201, r.text
    assert client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x", "entry_id": "H-1"}).status_code == 409
    assert client.post("/v1/hotlist", json={"plate": "hello", "reason": "x"}).status_code == 400
    assert client.post("/v1/hotlist", json={"plate": "1กข 1234", "reason": "x", "colour": "red"}).status_code == 422
    assert [e["id"] for e in client.get("/v1/hotlist").json()] == ["H-1"]
    img = _scene_with_plate(seed=3)
    r = _post_image(client, "/v1/plates:read", encode_jpeg(img, quality=95))
    assert r.status_code == 200, r.text
    plates = r.json()["plates"]
    assert plates and plates[0]["plate"]["letters"] == "กข" and plates[0]["plate"]["number"] == "1234"
    assert plates[0]["hotlist"] and plates[0]["hotlist"][0]["entry"]["id"] == "H-1"
    assert _post_image(client, "/v1/plates:read", b"GIF89a-nonsense").status_code == 400
    assert client.delete("/v1/hotlist/H-1", params={"reason": "recovered"}).status_code == 200
    assert client.get("/v1/hotlist/H-1").status_code == 404
    assert client.delete("/v1/hotlist/H-1").status_code == 404
    from serve.audit import AuditLog

    log = AuditLog(serving._paths()["hotlist_audit"])
    assert [(e.actor, e.action) for e in log.events("H-1")] == [("api:somchai", "hotlist.add"),
                                                                ("api:somchai", "hotlist.remove")]
    assert log.verify() >= 2
