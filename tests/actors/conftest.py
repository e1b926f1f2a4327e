"""Fixtures of the actors tests: the real vtest.avi from Debian's opencv-doc and an RTSP server launcher."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="session")
def vtest() -> Path:
    """Path of opencv-doc's vtest.avi (pedestrian CCTV footage, 795 frames at 10 fps, 768x576)."""
    assert VTEST.is_file(), "vtest.avi is missing: install the Debian package opencv-doc"
    return VTEST


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """actors/rtsp_server.py run by the system python; start() waits for its READY line."""

    def __init__(self, video: Path, port: int, path: str = "/cam1", width: int | None = 320, fps: float = 10) -> None:
        self.video, self.port, self.path, self.width, self.fps = video, port, path, width, fps
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout: float = 30.0) -> RtspServer:
        cmd = [SYSTEM_PYTHON, str(REPO / "actors" / "rtsp_server.py"), "--file", str(self.video),
               "--port", str(self.port), "--path", self.path, "--fps", str(self.fps)]
        if self.width:
            cmd += ["--width", str(self.width)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY") or time.time() > deadline:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"RTSP server did not start: {line!r} {err[-2000:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture()
def rtsp_server(vtest: Path) -> Iterator[RtspServer]:
    """A (not yet started) RTSP server streaming vtest.avi at 320x240 on a free loopback port."""
    srv = RtspServer(vtest, free_port())
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def vtest_frames(vtest: Path):
    """All 795 frames of vtest.avi decoded by PyAV at 320x240 RGB (a (795, 240, 320, 3) uint8 array)."""
    import numpy as np

    from actors.sources import CameraSpec, PyAVSource

    with PyAVSource(CameraSpec(id="vtest", url=str(vtest), width=320)) as src:
        return np.stack([f.image for f in src.frames()])


@pytest.fixture(scope="session")
def empty_street(vtest_frames):
    """vtest's street without people: the per-pixel median over the clip (a real static CCTV scene)."""
    import numpy as np

    return np.ascontiguousarray(np.median(vtest_frames[::8], axis=0).astype(np.uint8))
