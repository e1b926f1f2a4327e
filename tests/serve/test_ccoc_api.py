"""The CCOC routes over real Serve, real Ray actors, real S3: alert queue and actions, the live stream, field
ingest (SOS, reports, LINE, GPS, QR), durability across a killed field store, metrics."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
import uuid

import httpx
import pytest


@pytest.fixture
def ccoc(hatyai_desk):
    """(base url, {role: token}, the map) of the session's API serving Hat Yai's command room."""
    return hatyai_desk


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CONSOLE = {"X-SSZ-Console": "1"}  # what the console page sends with every request


def _now(offset_s: float = 0.0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)).isoformat()


def _centre(m: dict) -> tuple[float, float]:
    xs, ys = [p[0] for p in m["zone"]], [p[1] for p in m["zone"]]
    return sum(xs) / len(xs), sum(ys) / len(ys)


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    return body["error"]["message"]


class Stream:
    """Reads /v1/alerts:stream in a thread and keeps (arrival time, event, data)."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[float, str, dict]] = []
        self.ready = threading.Event()
        self.opened = time.monotonic()
        self.ended: float | None = None
        self._stop = False
        self._t = threading.Thread(target=self._run, args=(url, token), daemon=True)
        self._t.start()
        assert self.ready.wait(30), "the alert stream did not open"

    def _run(self, url: str, token: str) -> None:
        with httpx.stream("GET", f"{url}/v1/alerts:stream", headers=_auth(token), timeout=None) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    self.ready.set()
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    self.events.append((time.monotonic(), name or "", json.loads(line[6:])))
                if self._stop:
                    return
        self.ended = time.monotonic()

    def wait_for(self, pred, timeout_s: float = 5.0) -> tuple[float, str, dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for ev in self.events:
                if pred(ev[1], ev[2]):
                    return ev
            time.sleep(0.02)
        raise AssertionError(f"no such event within {timeout_s} s: {[e[1:] for e in self.events][-5:]}")

    def close(self) -> None:
        self._stop = True


def test_sos_reaches_the_stream_and_operators_act_on_it(ccoc):
    url, tokens, m = ccoc
    from cluster import serving

    other = serving.issue_token("test-operator-b", "operator", actor="test")
    stream = Stream(url, tokens["operator"])
    pole = next(p for p in m["places"] if p["kind"] == "sos")
    t0 = time.monotonic()
    r = httpx.post(f"{url}/v1/field/sos", headers=_auth(tokens["device"]),
                   json={"pole_id": pole["id"], "text": f"test {uuid.uuid4().hex[:6]}"}, timeout=30)
    assert r.status_code == 201, r.text
    aid = r.json()["alert_id"]
    arrived, _, data = stream.wait_for(lambda n, d: n == "alert" and d.get("alert_id") == aid, 2.0)
    t_sos = arrived - t0
    assert t_sos < 2.0 and data["kind"] == "sos" and data["priority"] == 0
    assert data["lon"] == pytest.approx(pole["lon"]) and data["procedure"]

    # the queue: SOS first; the same press retried (same body) is the same alert, stored once
    again = httpx.post(f"{url}/v1/field/sos", content=r.request.content, timeout=30,
                       headers={**_auth(tokens["device"]), "Content-Type": "application/json"})
    assert again.status_code == 200 and again.json() == {**r.json(), "duplicate": True}
    page = httpx.get(f"{url}/v1/alerts", params={"status": "new", "limit": 5}, headers=_auth(tokens["analyst"]),
                     timeout=30).json()
    assert page["items"][0]["kind"] == "sos" and aid in {a["alert_id"] for a in page["items"]}

    # roles: an analyst may read but not act; a device may not read alerts
    _error(httpx.post(f"{url}/v1/alerts/{aid}:confirm", headers=_auth(tokens["analyst"]), timeout=30), 403)
    _error(httpx.get(f"{url}/v1/alerts", headers=_auth(tokens["device"]), timeout=30), 403)

    op, op_b = _auth(tokens["operator"]), _auth(other)
    r = httpx.post(f"{url}/v1/alerts/{aid}:acknowledge", headers=op, timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["changed"] is True
    assert httpx.post(f"{url}/v1/alerts/{aid}:acknowledge", headers=op, timeout=30).json()["changed"] is False
    msg = _error(httpx.post(f"{url}/v1/alerts/{aid}:confirm", headers=op_b, json={"reason": "seen"}, timeout=30), 409)
    assert "api:test-operator" in msg
    msg = _error(httpx.post(f"{url}/v1/alerts/{aid}:dismiss", headers=op, json={"reason": "not-a-code"},
                            timeout=30), 422)
    assert "wrong-person" in msg
    r = httpx.post(f"{url}/v1/alerts/{aid}:confirm", headers=op, json={"reason": "caller on camera 12"}, timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
    t1 = time.monotonic()
    arrived, _, _ = stream.wait_for(lambda n, d: n == "update" and d.get("alert_id") == aid
                                    and d.get("status") == "confirmed", 5.0)
    print(f"SOS in the stream {t_sos:.2f} s after the request; the confirmation {arrived - t1:.2f} s after its answer")
    _error(httpx.post(f"{url}/v1/alerts/{aid}:dismiss", headers=op, json={"reason": "test"}, timeout=30), 409)
    r = httpx.post(f"{url}/v1/alerts/{aid}:assign", headers=op, json={"unit": "hatyai-patrol-01"}, timeout=30)
    assert r.json()["assigned_unit"] == "hatyai-patrol-01"
    r = httpx.post(f"{url}/v1/alerts/{aid}:close", headers=op, timeout=30)
    assert r.json()["state"] == "closed" and r.json()["closed_ts"]
    _error(httpx.post(f"{url}/v1/alerts/{aid}:explode", headers=op, timeout=30), 404)
    msg = _error(httpx.get(f"{url}/v1/alerts/face/HY%2F0042", headers=op, timeout=30), 404)  # ids may hold "/"
    assert "face/HY/0042" in msg
    _error(httpx.get(f"{url}/v1/alerts/%20x", headers=op, timeout=30), 422)  # white space at an end: not an id
    time.sleep(max(0.0, 6.5 - (time.monotonic() - stream.opened)))
    assert stream.ended is None, "the alert stream closed by itself (the body read timeout must not apply)"
    stream.close()

    # every change audited with the user, in order, and readable by a supervisor only
    _error(httpx.get(f"{url}/console/activity", headers=op, timeout=30), 403)
    events = httpx.get(f"{url}/console/activity", headers=_auth(tokens["supervisor"]), timeout=30).json()["events"]
    mine = [(e["actor"], e["action"]) for e in events if e["subject"] == aid][::-1]
    assert mine == [("system:alert-sink", "alert.raised"), ("api:test-operator", "alert.acknowledge"),
                    ("api:test-operator", "alert.confirm"), ("api:test-operator", "alert.assign"),
                    ("api:test-operator", "alert.close")]
    # the trail also names watchlist / hotlist changes (their own audit logs)
    sup = _auth(tokens["supervisor"])
    entry = f"T-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{url}/v1/hotlist", headers=sup, timeout=60,
                   json={"plate": "1กข 1234", "reason": "stolen (test)", "entry_id": entry})
    assert r.status_code == 201, r.text
    events = httpx.get(f"{url}/console/activity", headers=sup, timeout=30).json()["events"]
    assert any(e["log"] == "hotlist" and e["subject"] == entry and e["actor"] == "api:test-supervisor"
               for e in events)
    httpx.delete(f"{url}/v1/hotlist/{entry}", headers=sup, params={"reason": "test done"}, timeout=60)
    one = httpx.get(f"{url}/v1/alerts/{aid}", headers=_auth(tokens["analyst"]), timeout=30).json()
    assert one["status_reason"] == "caller on camera 12" and one["status_by"] == "api:test-operator"


def test_console_routes_need_the_cookie_the_role_and_the_console_header(ccoc):
    """Log-in and log-out need the console's header (another site's form cannot log the browser in as someone
    else); the cookie it sets is HttpOnly and SameSite=Strict; every console view refuses a request without a
    token (401) and one whose role is too low (403); a change made with the cookie needs the header too."""
    url, tokens, _ = ccoc
    body = json.dumps({"token": tokens["operator"]})
    r = httpx.post(f"{url}/console/login", content=body, headers={"Content-Type": "text/plain"}, timeout=30)
    assert "X-SSZ-Console: 1" in _error(r, 403) and "set-cookie" not in r.headers
    _error(httpx.post(f"{url}/console/logout", timeout=30), 403)
    r = httpx.post(f"{url}/console/login", content=body, headers=CONSOLE, timeout=30)
    assert r.status_code == 200 and r.json() == {"user": "test-operator", "role": "operator"}, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "ssz_token=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    jar = {"ssz_token": tokens["operator"]}
    assert httpx.get(f"{url}/console/me", cookies=jar, timeout=30).json()["role"] == "operator"
    for path in ("/console/me", "/console/map", "/console/live", "/console/queue", "/console/kpi",
                 "/console/search?q=ab", "/console/activity", "/metrics", "/v1/alerts", "/v1/alerts:stream"):
        _error(httpx.get(f"{url}{path}", timeout=30), 401)
    _error(httpx.get(f"{url}/console/activity", cookies=jar, timeout=30), 403)
    _error(httpx.get(f"{url}/console/search?q=ab", cookies={"ssz_token": tokens["analyst"]}, timeout=30), 403)
    _error(httpx.post(f"{url}/v1/alerts/nope-0:confirm", cookies=jar, timeout=30), 403)
    _error(httpx.post(f"{url}/v1/alerts/nope-0:confirm", cookies={"ssz_token": tokens["analyst"]}, headers=CONSOLE,
                      timeout=30), 403)
    assert httpx.post(f"{url}/console/logout", headers=CONSOLE, timeout=30).status_code == 200


def test_console_queue_is_one_snapshot_of_every_open_alert_in_queue_order(ccoc):
    """/console/queue answers the open queue in one response (paging by offset skipped an alert that a close
    between two pages moved up): the same alerts in the same order as /v1/alerts?status=open, counts by status,
    the same counts the stream sends after the SOS (the console's badges)."""
    url, tokens, m = ccoc
    pole = next(p["id"] for p in m["places"] if p["kind"] == "sos")
    stream = Stream(url, tokens["analyst"])
    sos = httpx.post(f"{url}/v1/field/sos", headers=_auth(tokens["device"]), json={"pole_id": pole}, timeout=30)
    assert sos.status_code == 201, sos.text
    auth = _auth(tokens["analyst"])
    q = httpx.get(f"{url}/console/queue", headers=auth, timeout=30).json()
    paged: list[dict] = []
    while True:
        page = httpx.get(f"{url}/v1/alerts", params={"status": "open", "limit": 500, "offset": len(paged)},
                         headers=auth, timeout=30).json()
        paged += page["items"]
        if not page["items"] or len(paged) >= page["total"]:
            break
    assert q["total"] == len(paged) == len(q["items"]) >= 1  # a test city's queue is far below the cap
    assert [a["alert_id"] for a in q["items"]] == [a["alert_id"] for a in paged]
    assert sos.json()["alert_id"] in {a["alert_id"] for a in q["items"]}
    assert all(a["state"] != "closed" for a in q["items"])
    counts: dict[str, int] = {}
    for a in paged:
        counts[a["status"]] = counts.get(a["status"], 0) + 1
    assert q["counts"] == counts
    try:
        _, _, live = stream.wait_for(lambda n, d: n == "counts" and d["version"] >= q["version"])
    finally:
        stream.close()
    assert (live["total"], live["counts"]) == (q["total"], counts)


def test_line_webhook_checks_its_signature_before_storing(ccoc, ssz_api):
    import hashlib
    import hmac

    from cluster.ccoc import line_secret_file

    url, tokens, m = ccoc
    secret = "0123456789abcdef0123456789abcdef"
    line_secret_file().write_text(secret)
    lon, lat = _centre(m)
    body = json.dumps({"destination": "U0", "events": [
        {"type": "message", "webhookEventId": f"ev-{uuid.uuid4().hex}", "timestamp": int(time.time() * 1000),
         "source": {"type": "user", "userId": "U-line-user-1"},
         "message": {"type": "location", "id": "1", "latitude": lat, "longitude": lon, "address": "ตลาดกิมหยง"}},
        {"type": "message", "webhookEventId": f"ev-{uuid.uuid4().hex}", "timestamp": int(time.time() * 1000),
         "source": {"type": "user", "userId": "U-line-user-1"}, "message": {"type": "text", "id": "2",
                                                                            "text": "มีคนทะเลาะกันหน้าร้าน"}}]}).encode()
    good = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    before = httpx.get(f"{url}/v1/alerts", params={"kind": "citizen-report", "limit": 1},
                       headers=_auth(tokens["analyst"]), timeout=30).json()["total"]
    for bad in ("", good[:-4] + "AAAA", base64.b64encode(b"x" * 32).decode()):
        r = httpx.post(f"{url}/v1/field/line", content=body, timeout=30,
                       headers={"Content-Type": "application/json", "X-Line-Signature": bad})
        _error(r, 401)
    after = httpx.get(f"{url}/v1/alerts", params={"kind": "citizen-report", "limit": 1},
                      headers=_auth(tokens["analyst"]), timeout=30).json()["total"]
    assert after == before  # nothing stored
    r = httpx.post(f"{url}/v1/field/line", content=body, timeout=30,
                   headers={"Content-Type": "application/json", "X-Line-Signature": good})
    assert r.status_code == 200, r.text
    made = r.json()["reports"]
    assert len(made) == 2 and not any(x["duplicate"] for x in made)
    page = httpx.get(f"{url}/v1/alerts", params={"kind": "citizen-report", "status": "new"},
                     headers=_auth(tokens["analyst"]), timeout=30).json()
    texts = {a["alert_id"]: (a.get("details") or {}).get("text") for a in page["items"]}
    assert texts[made[0]["alert_id"]] == "ตลาดกิมหยง" and texts[made[1]["alert_id"]] == "มีคนทะเลาะกันหน้าร้าน"

    # the located report is in the next snapshot's sos_reports layer
    import ray

    from actors.field import field_name
    from cluster import store
    from twin.snapshots import SnapshotStore

    snap = ray.get(ray.get_actor(field_name("hatyai"), namespace="ssz").commit.remote("test"), timeout=120)
    assert snap is not None
    rep = SnapshotStore(store.open_store(), "hatyai").open(snap).table("sos_reports").to_pylist()
    assert made[0]["report_id"] in {x["report_id"] for x in rep}


def test_gps_batches_are_durable_deduplicated_and_move_units(ccoc):
    import ray

    from actors.field import field_name
    from cluster import store
    from twin.snapshots import SnapshotStore

    url, tokens, m = ccoc
    dev = _auth(tokens["device"])
    lon, lat = _centre(m)
    unit = f"hatyai-test-{uuid.uuid4().hex[:6]}"
    t0 = time.time() - 300
    locs = [{"id": unit, "lat": lat + i * 1e-5, "lon": lon + i * 1e-5, "timestamp": t0 + i, "speed": 5.0,
             "bearing": 45, "accuracy": 4} for i in range(200)]
    locs += [{"id": unit, "lat": 0.0, "lon": 0.0, "timestamp": t0 + 500},  # no fix
             {"id": unit, "lat": lat, "lon": lon, "timestamp": time.time() + 3600},  # device clock an hour ahead
             {"id": unit, "lat": 13.75, "lon": 100.5, "timestamp": t0 + 600}]  # Bangkok: not this city
    key = uuid.uuid4().hex
    r = httpx.post(f"{url}/v1/field/gps", json={"locations": locs}, headers={**dev, "Idempotency-Key": key},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 200 and r.json()["refused"] == 3 and r.json()["duplicate"] is False
    r2 = httpx.post(f"{url}/v1/field/gps", json={"locations": locs}, headers={**dev, "Idempotency-Key": key},
                    timeout=60)
    assert r2.json()["duplicate"] is True
    _error(httpx.post(f"{url}/v1/field/gps", json={"locations": [locs[-1]]}, headers=dev, timeout=60), 422)
    _error(httpx.post(f"{url}/v1/field/gps", json={"locations": locs[:2]}, headers=_auth(tokens["operator"]),
                      timeout=60), 403)
    live = httpx.get(f"{url}/console/live", headers=_auth(tokens["analyst"]), timeout=30).json()
    assert live["units"][unit]["lon"] == pytest.approx(lon + 199e-5) and len(live["units"][unit]["trail"]) == 200

    # kill the field store before it commits: nothing accepted is lost, nothing doubled
    actor = ray.get_actor(field_name("hatyai"), namespace="ssz")
    old_pid = ray.get(actor.stats.remote())["pid"]
    ray.kill(actor, no_restart=False)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            st = ray.get(actor.stats.remote(), timeout=10)
            if st["pid"] != old_pid:
                break
        except ray.exceptions.RayActorError:
            pass
        time.sleep(0.5)
    assert st["pid"] != old_pid and st["reloaded_batches"] >= 1
    snap = ray.get(actor.commit.remote("test"), timeout=120)
    pings = SnapshotStore(store.open_store(), "hatyai").open(snap).table("patrol_pings")
    mine = [u for u in pings["unit_id"].to_pylist() if u == unit]
    assert len(mine) == 200


def test_qr_scans_and_missed_boxes_and_metrics(ccoc):
    url, tokens, m = ccoc
    boxes = [p for p in m["places"] if p["kind"] == "qr"]
    box = boxes[0]
    scan = {"unit_id": "hatyai-patrol-01", "checkpoint_id": box["id"], "ts": _now(-5), "lon": box["lon"],
            "lat": box["lat"]}
    r = httpx.post(f"{url}/v1/field/qr", json={"scans": [scan]}, headers=_auth(tokens["device"]), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 1 and box["id"] not in body["missed"] and boxes[-1]["id"] in body["missed"]
    assert body["invalid_position"] == 0
    _error(httpx.post(f"{url}/v1/field/qr", json={"scans": [{**scan, "checkpoint_id": "nope"}]},
                      headers=_auth(tokens["device"]), timeout=60), 422)
    metrics = httpx.get(f"{url}/metrics", headers=_auth(tokens["analyst"]), timeout=30)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'ssz_field_accepted_rows_total{city="hatyai",layer="checkpoint_scans"}' in text
    assert 'ssz_alerts{city="hatyai",kind="sos",state="closed"}' in text
    _error(httpx.get(f"{url}/metrics", timeout=30), 401)


def test_citizen_report_with_photo_has_evidence(ccoc):
    from serve.imaging import encode_jpeg

    url, tokens, m = ccoc
    import numpy as np

    lon, lat = _centre(m)
    img = np.zeros((64, 96, 3), np.uint8)
    img[:, :48] = (200, 30, 30)
    photo = base64.b64encode(encode_jpeg(img)).decode()
    r = httpx.post(f"{url}/v1/field/reports", headers=_auth(tokens["device"]), timeout=60,
                   json={"category": "risk_point", "text": "ไฟดับทั้งซอย", "lon": lon, "lat": lat,
                         "reporter_id": "app-user-7", "photo_b64": photo})
    assert r.status_code == 201, r.text
    aid = r.json()["alert_id"]
    ev = httpx.get(f"{url}/v1/alerts/{aid}/evidence", headers=_auth(tokens["analyst"]), timeout=30)
    assert ev.status_code == 200 and ev.headers["content-type"] == "image/jpeg" and ev.content[:2] == b"\xff\xd8"
    # the platform's own S3 identity cannot delete the locked crop; what it can write over it (a new version, a
    # delete marker) hides nothing: the route serves the original
    from minio.error import S3Error

    from cluster import store
    from twin.objectstore import EVIDENCE_BUCKET

    s3 = store.open_store()
    rec = httpx.get(f"{url}/v1/alerts/{aid}", headers=_auth(tokens["analyst"]), timeout=30).json()
    key = rec["evidence_key"]
    [first] = s3.key_versions(EVIDENCE_BUCKET, key)
    # the record pins the version written and its hash (the route fetches that version: no listing)
    assert rec["evidence_version"] == first.version_id and rec["evidence_sha256"] == hashlib.sha256(
        ev.content).hexdigest() and "evidence_conflict" not in rec
    with pytest.raises(S3Error, match="AccessDenied"):
        s3.client.remove_object(EVIDENCE_BUCKET, key, version_id=first.version_id)
    from twin.evidence import rewritten

    assert list(rewritten(s3, prefix=key)) == []  # the photo was written once
    s3.put_bytes(EVIDENCE_BUCKET, key, b"tampered", "image/jpeg")
    again = httpx.get(f"{url}/v1/alerts/{aid}/evidence", headers=_auth(tokens["analyst"]), timeout=30)
    assert again.status_code == 200 and again.content == ev.content
    [found] = rewritten(s3, prefix=key)  # `ssz audit evidence` names it
    assert found.key == key and found.versions[0].version_id == first.version_id and len(found.versions) == 2
    s3.client.remove_object(EVIDENCE_BUCKET, key)  # a delete marker over the versions
    again = httpx.get(f"{url}/v1/alerts/{aid}/evidence", headers=_auth(tokens["analyst"]), timeout=30)
    assert again.status_code == 200 and again.content == ev.content
    _error(httpx.post(f"{url}/v1/field/reports", headers=_auth(tokens["device"]), timeout=60,
                      json={"category": "risk_point", "text": "x", "lon": 0.0, "lat": 0.0}), 422)
    for bad in ({"lon": lon, "lat": lat, "photo_b64": 5}, {"lon": lon, "lat": lat, "photo_b64": "@@"},
                {"lon": "x", "lat": lat}, {"lon": lon, "lat": lat, "extra": 1}, [1],
                {"lon": lon, "lat": lat, "ts": 1e30}, {"lon": lon, "lat": lat, "category": "zzz"}):
        _error(httpx.post(f"{url}/v1/field/reports", headers=_auth(tokens["device"]), json=bad, timeout=60), 422)


def test_field_inputs_a_device_gets_wrong_are_refused_with_what_to_do(ccoc):
    """Bodies nested past the JSON parser's depth, ids that are objects or hold control characters, and times
    from a device clock reset to 1970 answer 422 saying what is wrong; nothing of them is stored."""
    url, tokens, m = ccoc
    dev = _auth(tokens["device"])
    lon, lat = _centre(m)
    deep = b'{"locations": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    msg = _error(httpx.post(f"{url}/v1/field/gps", content=deep, headers={**dev, "Content-Type": "application/json"},
                            timeout=60), 422)
    assert "nested too deeply" in msg
    login = b'{"token": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    assert "send {\"token\": \"...\"} as JSON" in _error(httpx.post(f"{url}/console/login", content=login,
                                                                    headers=CONSOLE, timeout=60), 422)
    for unit, problem in (({"a": 1}, "expected text, got an object"), ("car\x00-1", "control character (U+0000")):
        msg = _error(httpx.post(f"{url}/v1/field/gps", headers=dev, timeout=60,
                                json={"locations": [{"id": unit, "lat": lat, "lon": lon, "timestamp": time.time()}]}),
                     422)
        assert problem in msg and "field 'unit_id'" in msg, msg
    msg = _error(httpx.post(f"{url}/v1/field/gps", headers=dev, timeout=60,
                            json={"locations": [{"id": "car-1", "lat": lat, "lon": lon, "timestamp": 0}]}), 422)
    assert "row 1, field 'timestamp': 0 as Unix seconds is 1970-01-01" in msg, msg
    assert "read from 2000-01-01 to before 2100" in msg, msg
    # in a batch, the row with the 1970 time is left out and said; the others are taken
    r = httpx.post(f"{url}/v1/field/gps", headers=dev, timeout=60,
                   json={"locations": [{"id": "car-7", "lat": lat, "lon": lon, "timestamp": time.time() - 5},
                                       {"id": "car-8", "lat": lat, "lon": lon, "timestamp": 0}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["refused"] == 1, r.text
    assert r.json()["units"] == ["car-7"] and "row 2, field 'timestamp': 0 as Unix" in r.json()["warnings"][0], r.text
    msg = _error(httpx.post(f"{url}/v1/field/sos", headers=dev, timeout=60, json={"lon": lon, "lat": lat, "ts": 0}),
                 422)
    assert "field 'ts': 0 as Unix seconds is 1970-01-01" in msg and "set the device's clock" in msg, msg
    msg = _error(httpx.post(f"{url}/v1/field/sos", headers=dev, timeout=60,
                            json={"lon": lon, "lat": lat, "ts": (time.time() - 30 * 86400) * 1000}), 422)
    assert "older than the 7 days accepted" in msg and "set the device's clock" in msg, msg
    # a device reusing its Idempotency-Key for a new batch is told so (it was answered "duplicate" and lost)
    key = {**dev, "Idempotency-Key": uuid.uuid4().hex}
    first = [{"id": "car-1", "lat": lat, "lon": lon, "timestamp": time.time() - 10}]
    for dup in (False, True):
        r = httpx.post(f"{url}/v1/field/gps", headers=key, json={"locations": first}, timeout=60)
        assert r.status_code == 200 and r.json()["duplicate"] is dup, r.text
    msg = _error(httpx.post(f"{url}/v1/field/gps", headers=key, timeout=60,
                            json={"locations": [{**first[0], "timestamp": time.time() - 5}]}), 409)
    assert "Idempotency-Key was used" in msg and "for another batch: nothing was stored" in msg, msg
    # a misspelt filter or an unknown kind is said, not answered with every alert
    ana = _auth(tokens["analyst"])
    assert "unknown query parameter(s) ['stauts']" in _error(httpx.get(f"{url}/v1/alerts?stauts=new", headers=ana,
                                                                       timeout=60), 422)
    assert "is not an alert kind" in _error(httpx.get(f"{url}/v1/alerts?kind=sso", headers=ana, timeout=60), 422)
    assert httpx.get(f"{url}/v1/alerts?kind=sos&status=open", headers=ana, timeout=60).status_code == 200


def test_store_unreachable_answers_503_and_loses_nothing(ccoc):
    """The object store stopped under a GPS upload, an SOS press and an alert decision: each answers 503 with
    what to do, the decision is not taken (its audit could not be written), and the same requests succeed once
    the store is back."""
    from cluster import store

    url, tokens, m = ccoc
    dev = _auth(tokens["device"])
    lon, lat = _centre(m)
    pole = next(p["id"] for p in m["places"] if p["kind"] == "sos")
    r = httpx.post(f"{url}/v1/field/sos", headers=dev, json={"pole_id": pole, "text": uuid.uuid4().hex}, timeout=60)
    assert r.status_code == 201, r.text
    aid = r.json()["alert_id"]
    unit = f"hatyai-down-{uuid.uuid4().hex[:6]}"
    gps = {"locations": [{"id": unit, "lat": lat, "lon": lon, "timestamp": time.time() - 5}]}
    sos = {"pole_id": pole, "text": f"down {uuid.uuid4().hex}"}
    assert not store.down().running
    try:
        for path, body in (("/v1/field/gps", gps), ("/v1/field/sos", sos)):
            msg = _error(httpx.post(f"{url}{path}", headers=dev, json=body, timeout=60), 503)
            assert "unreachable" in msg and "send the same request again" in msg, msg
        msg = _error(httpx.post(f"{url}/v1/alerts/{aid}:acknowledge", headers=_auth(tokens["operator"]),
                                timeout=60), 503)
        assert "the change was not made" in msg, msg
        # a user/role change cannot be made (nor half-made) either
        admin = _auth(tokens["admin"])
        msg = _error(httpx.post(f"{url}/v1/users", headers=admin, json={"user": "down-user", "role": "operator"},
                                timeout=60), 503)
        assert "unreachable" in msg and "send the same request again" in msg, msg
        _error(httpx.delete(f"{url}/v1/users/test-device", headers=admin, timeout=60), 503)
    finally:
        assert store.up().running
    rec = httpx.get(f"{url}/v1/alerts/{aid}", headers=_auth(tokens["analyst"]), timeout=60).json()
    assert rec["status"] == "new" and rec.get("status_by") is None
    r = httpx.post(f"{url}/v1/field/gps", headers=dev, json=gps, timeout=60)
    assert r.status_code == 200 and r.json() == {**r.json(), "accepted": 1, "duplicate": False}, r.text
    assert httpx.post(f"{url}/v1/field/sos", headers=dev, json=sos, timeout=60).status_code == 201
    r = httpx.post(f"{url}/v1/alerts/{aid}:acknowledge", headers=_auth(tokens["operator"]), timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text


def test_a_sink_starting_while_the_store_is_down_answers_503_not_a_hang(ccoc):
    """The alert sink restarted while the object store is down cannot start: calls to it answer 503 saying so
    (they answered 500, or hung until Serve cancelled them while the sink waited for the store), and the queue
    answers again once the store is back."""
    import ray

    from actors.alerts import sink_name
    from cluster import store

    url, tokens, _ = ccoc
    ana = _auth(tokens["analyst"])
    assert httpx.get(f"{url}/v1/alerts?limit=1", headers=ana, timeout=60).status_code == 200
    assert not store.down().running
    try:
        ray.kill(ray.get_actor(sink_name("hatyai"), namespace="ssz"), no_restart=False)
        t0 = time.monotonic()
        msg = _error(httpx.get(f"{url}/v1/alerts?limit=1", headers=ana, timeout=120), 503)
        assert time.monotonic() - t0 < 58 and "again" in msg and "ssz store status" in msg, msg
        assert "did not answer within 45 s" in msg or "is not running and could not be started" in msg, msg
    finally:
        assert store.up().running
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/v1/alerts?limit=1", headers=ana, timeout=120)
        if r.status_code == 200:
            break
        time.sleep(2)
    assert r.status_code == 200, r.text
