"""Credentials in URLs never reach a message, a log line, a health event or the camera status."""

from __future__ import annotations

import logging
import socket

import pytest

from serve.redact import RedactingFilter, redact, redact_obj


@pytest.mark.parametrize(("text", "expected"), [
    ("rtsp://admin:hunter2@10.0.0.7:554/ch1", "rtsp://***@10.0.0.7:554/ch1"),
    ("cannot open 'rtsps://u%40x:p%3Aw@nvr.internal/s?token=abc&fps=5': refused",
     "cannot open 'rtsps://***@nvr.internal/s?token=***&fps=5': refused"),
    ("http://user@cam/x and https://a:b@c/d?sig=zz", "http://***@cam/x and https://***@c/d?sig=***"),
    ("rtsp://10.0.0.7/ch1 has no credentials", "rtsp://10.0.0.7/ch1 has no credentials"),
    ("mail me at somchai@police.go.th", "mail me at somchai@police.go.th"),
    # a camera address typed without its scheme, alone or inside a path
    ("admin:Secr3t@10.0.0.5:554/Streaming/Channels/101", "***@10.0.0.5:554/Streaming/Channels/101"),
    ("video file '/srv/admin:Secr3t@10.0.0.5:554/s' is missing", "video file '/srv/***@10.0.0.5:554/s' is missing"),
    ("url=admin:Secr3t@nvr.local/s", "url=***@nvr.local/s"),
    ("CH01 10:00:00.mp4 at 10:00", "CH01 10:00:00.mp4 at 10:00"),
    # SRT's passphrase and stream id (srt://host:port?passphrase=...&streamid=...)
    ("srt://10.0.0.5:9000?passphrase=Secr3t&streamid=%23!::u=cam,r=live&latency=200",
     "srt://10.0.0.5:9000?passphrase=***&streamid=***&latency=200"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_nested_values_and_log_records(caplog):
    assert redact_obj({"a": ["rtsp://u:p@h/x", 3], "b": ("s3://k:s@h",)}) == {"a": ["rtsp://***@h/x", 3],
                                                                            "b": ("s3://***@h",)}
    logger = logging.getLogger("ssz-test-redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.WARNING, logger="ssz-test-redact"):
        logger.warning("camera %s offline", "rtsp://admin:hunter2@10.0.0.7/ch1")
    assert "hunter2" not in caplog.text and "rtsp://***@10.0.0.7/ch1" in caplog.text


def test_a_camera_with_a_password_fails_without_telling_it():
    """A real RTSP open (PyAV) of a refused port: the error, the health detail and the status carry no password."""
    from actors.sources import CameraHealth, CameraSpec, PyAVSource, SourceError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = CameraSpec(id="cam-1", url=f"rtsp://admin:hunter2@127.0.0.1:{port}/ch1", open_timeout_s=3,
                      read_timeout_s=3)
    with pytest.raises(SourceError) as info:
        PyAVSource(spec).open()
    assert "hunter2" not in str(info.value) and "rtsp://***@127.0.0.1" in str(info.value)
    health = CameraHealth("cam-1", grace_s=0.0, clock=lambda: 100.0)
    health.on_error(f"HTTPError: cannot reach {spec.url}")
    (offline,) = health.poll(now=200.0)
    assert offline.kind == "camera-offline" and "hunter2" not in (offline.detail or "")
    with pytest.raises(ValueError) as bad:
        CameraSpec(id="cam-2", url="gopher://admin:hunter2@x/y")
    assert "hunter2" not in str(bad.value)
