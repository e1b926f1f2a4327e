"""Webhook channel: signatures cover a timestamp and a delivery id (a captured request cannot be replayed), and
the delivery queue is bounded (a further item becomes a 'queue full' dead letter at once)."""

from __future__ import annotations

import http.server
import json
import threading
from typing import ClassVar

import pytest

from actors.channels import WebhookChannel, WebhookConfig, sign_webhook, verify_webhook


class _Slow(http.server.BaseHTTPRequestHandler):
    gate = threading.Event()
    got: ClassVar[list[tuple[bytes, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).gate.wait(30)  # an endpoint that hangs until the test lets it answer
        type(self).got.append((body, dict(self.headers)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def slow_hook():
    _Slow.gate, _Slow.got = threading.Event(), []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    _Slow.gate.set()
    srv.shutdown()


def test_a_signed_request_cannot_be_replayed_or_altered() -> None:
    body = json.dumps({"event": "alert", "alert_id": "a1"}).encode()
    h = {"X-SSZ-Delivery": "d1", **sign_webhook("k", body, "d1", now=1_800_000_000)}
    assert verify_webhook("k", h, body, now=1_800_000_100) == "d1"
    with pytest.raises(ValueError, match="replayed"):
        verify_webhook("k", h, body, now=1_800_000_000 + 301)  # the same request an hour later
    with pytest.raises(ValueError, match="does not match"):
        verify_webhook("k", {**h, "X-SSZ-Timestamp": "1800000300"}, body, now=1_800_000_300)  # a fresh stamp
    with pytest.raises(ValueError, match="does not match"):
        verify_webhook("k", h, body.replace(b"a1", b"a2"), now=1_800_000_000)
    with pytest.raises(ValueError, match="missing"):
        verify_webhook("k", {"X-SSZ-Signature": h["X-SSZ-Signature"]}, body)


def test_the_queue_is_bounded_and_overflow_becomes_dead_letters(slow_hook: str) -> None:
    results: list[tuple[bool, dict | None]] = []
    ch = WebhookChannel(WebhookConfig(url=slow_hook, secret="k", max_pending=3, max_retries=0, timeout_s=20),
                        on_result=lambda ok, dead: results.append((ok, dead)), workers=1)
    for i in range(5):
        ch.publish({"event": "alert", "alert_id": f"a{i}"})
    assert ch.pending == 3 and ch.refused_full == 2
    full = [d for ok, d in results if not ok]
    assert [d["item"]["alert_id"] for d in full] == ["a3", "a4"] and "queue full (3 items" in full[0]["error"]
    _Slow.gate.set()
    ch.flush(30)
    assert ch.pending == 0 and sum(ok for ok, _ in results) == 3
    for body, headers in _Slow.got:  # every delivered request verifies, each with its own delivery id
        verify_webhook("k", headers, body)
    assert len({h["X-SSZ-Delivery"] for _, h in _Slow.got}) == 3
