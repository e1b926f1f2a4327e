"""The camera-source interface: what a camera is (:class:`CameraSpec`), what it yields (:class:`Frame`), the
:class:`CameraSource` every source implements, and the registry of sources by name.

A source is ``open()``, iterate ``frames()`` (each frame a contiguous RGB ``uint8`` array with a wall-clock
timestamp and a stream time), ``close()``. The sources register themselves in :data:`SOURCE_REGISTRY`:

* ``pyav`` (:mod:`actors.sources.pyav`): RTSP, HTTP(S) and video files through PyAV;
* ``synthetic`` (:mod:`actors.sources.synthetic`): deterministic synthetic frames, or a looped video;
* ``scenario`` (:mod:`actors.sources.scenario`): a simulated camera that plays a scenario script.

:func:`make_source` builds one by name; :func:`source_for` picks the name from a spec's URL.
"""

from __future__ import annotations

import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlparse

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors.sources.geometry import as_rgb
from actors.sources.script import SimScript
from serve.ids import RecordId
from serve.plugins import make
from serve.redact import redact

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")


class SourceError(RuntimeError):
    """A camera source failed. ``permanent`` errors (bad URL, missing file) are not retried. The message never
    holds URL credentials (``rtsp://user:pass@`` becomes ``rtsp://***@``)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(redact(message))
        self.permanent = permanent


class CameraSpec(BaseModel):
    """One camera as a shard opens it. Kept outside the actor so that a restarted shard resumes it."""

    # hide_input_in_errors: a validation error must not echo a URL with its password
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    id: RecordId = Field(description="camera id (serve.ids: any printable characters)")
    url: str = Field(description="rtsp://, rtsps://, http(s)://, a file path or file://, or sim://<name>")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    loop: bool = Field(default=False, description="files and simulated video: start over at the end")
    realtime: bool = Field(default=False, description="files and sim: pace frames at the stream's frame rate")
    fps: float = Field(default=10.0, gt=0, le=120, description="frame rate of simulated cameras / paced files")
    width: int | None = Field(default=None, gt=15, description="decode-time downscale to this width (keeps aspect)")
    max_pixels: int = Field(default=130_000_000, gt=0, description=(
        "refuse pictures larger than this (width x height, px): a damaged header's size is never allocated; "
        "the default is above any camera (a 61 MP Avigilon H5 Pro is 9344x6552)"))
    open_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0, description="watchdog: a read stalled this long reconnects")
    grace_s: float = Field(default=10.0, gt=0, description="no frames this long => camera-offline")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    seed: int = 0
    sim_video: str | None = Field(default=None, description="sim://: loop this video file instead of drawing")
    sim_size: tuple[int, int] = (320, 240)
    sim_outages: list[tuple[float, float]] = Field(
        default=[], description="sim://: (start_s, end_s) windows after start in which the camera sends nothing")
    sim_epoch: float = Field(default=0.0, ge=0, description=(
        "sim:// without a script: stream time (s) of frame 0; a run's start time keeps track and alert ids "
        "unique across runs"))
    sim_script: SimScript | None = Field(
        default=None, description="sim://: play this scenario script (actors.sources.scenario), not blobs")
    max_frames: int | None = Field(default=None, gt=0, description="stop after this many frames (tests, benches)")
    start_pts: float | None = Field(default=None, ge=0, description="files and sim: resume at this stream time (s)")

    @model_validator(mode="after")
    def _check_url(self) -> CameraSpec:
        scheme = self.scheme
        if scheme == "unsupported" and (m := _SCHEME_HOST_PORT.match(self.url)):
            name = m.group(1)
            raise ValueError(f"camera {self.id}: {redact(self.url)!r} is a stream address without '//' after "
                             f"'{name}:' (write {redact(name + '://' + self.url[len(name) + 1:])!r}), but {name} "
                             "streams are not read here: stream the camera over RTSP or HTTP (e.g. "
                             f"rtsp://host:554/path); a video file of this name: ./{redact(self.url)}")
        if scheme == "unsupported":
            raise ValueError(f"camera {self.id}: unsupported URL {redact(self.url)!r}; use rtsp://host/path, "
                             "http(s)://host/path, a video file path (or file://; a file named like host:port: "
                             "./name), or sim://<name>")
        if scheme in NETWORK_SCHEMES and not urlparse(self.url).hostname:
            raise ValueError(f"camera {self.id}: URL {redact(self.url)!r} has no host; expected e.g. "
                             "rtsp://10.0.0.5:554/stream1")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self

    @property
    def scheme(self) -> str:
        """How the camera is read, from its URL: ``rtsp``, ``rtsps``, ``http``, ``https``, ``file``, ``sim`` or
        ``unsupported``."""
        u = urlparse(self.url)
        if u.scheme in NETWORK_SCHEMES or u.scheme == "sim":
            return u.scheme
        if u.scheme == "file" or ":" not in self.url.split("/", 1)[0]:
            return "file"
        if not self.url[len(u.scheme) + 1:].startswith("//") and _colon_in_name(self.url) and \
                not _SCHEME_HOST_PORT.match(self.url):
            return "file"  # a drive (C:\\v\\a.mp4, c:/v/a.mp4) or a colon in a name ("CH01 10:00.mp4", "cam1:2.mp4")
        return "unsupported"

    @property
    def path(self) -> str:
        """Local path of a file camera: a plain path as given (``~`` expanded); a ``file:`` URL
        (``file:///srv/a%20b.mp4`` as ``Path.as_uri()`` writes it, ``file:/srv/a.mp4``, ``FILE://localhost/...``)
        stripped and percent-decoded (spaces, Thai names)."""
        u = urlparse(self.url)
        return os.path.expanduser(unquote(u.path) if u.scheme == "file" else self.url)


_HOST_PORT = re.compile(r"[^:/\\]*:\d+(?:/|$)")
_SCHEME_HOST_PORT = re.compile(r"(?i)(srt|udp|tcp|rtp|rtmps?|rist|mms[ht]):(?:[^/@\s]*@)?(?:\[[^\]/]*\]|[^:/\\@\s\[]+)"
                               r":\d+(?:[/?#]|$)")
"""``srt:10.0.0.5:9000``, ``udp:239.0.0.1:1234``, ``srt:[::1]:9000``: an address of a known stream protocol whose
``//`` was left out (as a file path it was reported missing); not ``cam:12:30/a.mp4`` nor ``rec:12:30`` (files),
nor ``admin:pass@host:554`` (a scheme-less address with a password, refused as such)."""


def _colon_in_name(url: str) -> bool:
    """Whether a URL-like string with a colon and no ``//`` is a file path (a drive letter, a colon in a file
    name) rather than a stream address without its scheme: ``nvr.local:554/cam1``, ``10.0.0.5:554/s`` and
    ``admin:pass@10.0.0.5/s`` are addresses (as files they were reported missing with their password in the
    message). An address: the part before the first ``/`` holds an ``@``, or its part before the colon holds a
    ``.`` (a host name or IP), or the colon is followed by digits and then ``/`` or the end (a port)."""
    head = url.split("/", 1)[0]
    if "@" in head:
        return False
    return "." not in head.split(":", 1)[0] and not _HOST_PORT.match(url)


@dataclass(slots=True)
class Frame:
    """One decoded frame: contiguous RGB uint8 ``(H, W, 3)`` in its true geometry (display rotation applied; the
    size may change mid-stream), wall-clock ``ts`` and stream time ``pts`` (s); ``epoch`` counts restarts of the
    stream's clock and ``offset`` makes ``pts + offset`` continuous over them (set by the camera's reader,
    :class:`actors.sources.geometry.StreamClock`)."""

    camera_id: str
    seq: int
    ts: float
    pts: float | None
    image: np.ndarray
    epoch: int = 0
    offset: float = 0.0


@dataclass
class SourceStats:
    """Counters of one source (summed over reconnects by :class:`CameraReader`)."""

    decoded: int = 0
    corrupt: int = 0
    reconnects: int = 0
    last_error: str | None = None


class CameraSource(ABC):
    """A camera: ``open()``, iterate ``frames()``, ``close()``. Not thread-safe; one reader thread each."""

    def __init__(self, spec: CameraSpec) -> None:
        self.spec = spec
        self.stats = SourceStats()
        self._seq = 0
        self._stop = threading.Event()

    @abstractmethod
    def open(self) -> None:
        """Connect / open the stream; raises :class:`SourceError` with a clear message on failure."""

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames until the stream ends, :meth:`stop` is called, or an error is raised."""

    def close(self) -> None:
        """Release the stream (idempotent); the base class only stops iteration."""
        self._stop.set()

    def stop(self) -> None:
        """Ask :meth:`frames` to return at the next frame (callable from another thread)."""
        self._stop.set()

    def _frame(self, image: np.ndarray, pts: float | None) -> Frame:
        self._seq += 1
        self.stats.decoded += 1
        return Frame(self.spec.id, self._seq, time.time(), pts, as_rgb(image))

    def __enter__(self) -> CameraSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SOURCE_REGISTRY: dict[str, Callable[..., CameraSource]] = {}
"""Camera sources by name (``pyav``, ``synthetic``, ``scenario``); each source module registers itself."""


def make_source(name: str, **options: object) -> CameraSource:
    """The camera source registered as ``name``, built with ``options`` (``spec=CameraSpec(...)``).

    Raises
    ------
    ValueError
        When no source of that name is registered (the message lists the known names).
    """
    return make(SOURCE_REGISTRY, "camera source", name, **options)


def source_name(spec: CameraSpec) -> str:
    """The registered source that plays a spec: ``scenario`` for a ``sim://`` camera with a script,
    ``synthetic`` for other ``sim://`` cameras, ``pyav`` for streams and files."""
    if spec.scheme == "sim":
        return "scenario" if spec.sim_script is not None else "synthetic"
    return "pyav"


def source_for(spec: CameraSpec) -> CameraSource:
    """The source implementation for a spec (see :func:`source_name`)."""
    return make_source(source_name(spec), spec=spec)
