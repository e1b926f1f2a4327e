"""A deterministic synthetic camera (a static street with people-sized blobs walking through it), or a looped
video file: the ``synthetic`` source of ``sim://`` cameras without a script.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from actors.sources.base import SOURCE_REGISTRY, CameraSource, CameraSpec, Frame
from actors.sources.pyav import PyAVSource


@dataclass(frozen=True, slots=True)
class Walker:
    """One walker of a synthetic camera in one frame: which one (``k``: the k-th of the camera's day), where
    (``box``: x1, y1, x2, y2 in pixels, clipped to the frame; ``full_width`` before clipping) and its colour."""

    k: int
    box: tuple[int, int, int, int]
    full_width: int
    color: tuple[int, int, int]


def _walker(spec: CameraSpec, k: int) -> tuple[random.Random, int, int]:
    """Walker ``k``'s random stream (positioned after its start), first frame and length in frames."""
    period = max(2, int(spec.fps * 12))  # a walker enters every 12 s and takes 6 s to cross
    r = random.Random(f"{spec.seed}:{k}")
    return r, k * period + r.randrange(period // 2), max(1, int(spec.fps * 6))


def walkers(spec: CameraSpec, n: int) -> list[Walker]:
    """The walkers visible in frame ``n`` of a synthetic camera: the ground truth of what it draws.

    A walker enters every 12 s (at a random offset within the first half of its 12 s slot) and takes 6 s to
    cross, left to right or right to left, in dark or bright clothes; everything follows from the spec's
    ``seed``, ``fps`` and ``sim_size`` and the frame number, so a detector can read the truth
    (:class:`actors.detectors.TruthDetector`).
    """
    w, h = spec.sim_size
    period = max(2, int(spec.fps * 12))
    out = []
    for k in range(max(0, n // period - 1), n // period + 1):
        r, start, life = _walker(spec, k)
        if not start <= n < start + life:
            continue
        frac = (n - start) / life
        bw, bh = max(4, w // 12), max(8, h // 4)
        x = int(-bw + frac * (w + bw)) if r.random() < 0.5 else int(w - frac * (w + bw))
        y = r.randrange(h // 4, h - bh)
        # dark or bright clothes: a walker always stands out from the street (grey ~80-165) for the motion gate
        lo, hi = (0, 40) if r.random() < 0.5 else (215, 255)
        color = (r.randrange(lo, hi), r.randrange(lo, hi), r.randrange(lo, hi))
        x1, x2 = max(0, x), max(0, min(w, x + bw))
        if x2 > x1:
            out.append(Walker(k, (x1, y, x2, y + bh), bw, color))
    return out


def walker_frames(spec: CameraSpec, k: int) -> range:
    """Frame numbers in which walker ``k`` of a synthetic camera may be in the picture (its 6 s crossing)."""
    _, start, life = _walker(spec, k)
    return range(start, start + life)


class SimulatedSource(CameraSource):
    """A deterministic synthetic camera: a static textured street and walkers, or a looped video file.

    Frames depend only on ``seed`` and the frame number, so tests and benchmarks are reproducible.
    ``sim_outages`` makes the camera go silent in given windows (to exercise offline alerts).
    """

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self._video: PyAVSource | None = None
        self._bg: np.ndarray | None = None

    def open(self) -> None:
        """Prepare the background (or open the looped video)."""
        if self.spec.sim_video:
            vspec = self.spec.model_copy(update={"url": self.spec.sim_video, "loop": True})
            self._video = PyAVSource(vspec)
            self._video.open()
            return
        w, h = self.spec.sim_size
        rng = np.random.default_rng(self.spec.seed)
        yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
        base = 90 + 60 * (yy / h)[..., None] + rng.normal(0, 6, (h, w, 1)).astype(np.float32)
        tint = np.array([1.0, 0.95, 0.85], np.float32) * (0.9 + 0.2 * rng.random(3, dtype=np.float32))
        bg = np.clip(base * tint, 0, 255).astype(np.uint8)
        bg[int(h * 0.6):int(h * 0.62), :] = 200  # a kerb line
        self._bg = np.ascontiguousarray(bg)

    def draw(self, n: int) -> np.ndarray:
        """Frame ``n`` (0-based): background plus the walkers visible at that time (deterministic)."""
        assert self._bg is not None
        img = self._bg.copy()
        for w in walkers(self.spec, n):
            x1, y1, x2, y2 = w.box
            img[y1:y2, x1:x2] = w.color
        return img

    def frames(self) -> Iterator[Frame]:
        """Yield frames at ``fps`` (if ``realtime``), silent during outages; forever unless ``max_frames``."""
        if self._video is not None:
            for f in self._video.frames():
                if self._stop.is_set():
                    return
                self.stats.decoded += 1
                self._seq += 1
                yield Frame(self.spec.id, self._seq, f.ts, f.pts, f.image)
                if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                    return
            return
        t0 = time.monotonic()
        start = max(0.0, (self.spec.start_pts or 0.0) - self.spec.sim_epoch)
        n = math.ceil(start * self.spec.fps - 1e-6)  # first frame at/after start_pts
        t0 -= n / self.spec.fps
        while not self._stop.is_set():
            t = n / self.spec.fps
            if self.spec.realtime:
                wait = t - (time.monotonic() - t0)
                if wait > 0 and self._stop.wait(wait):
                    return
            silent = any(a <= t < b for a, b in self.spec.sim_outages)
            if not silent:
                yield self._frame(self.draw(n), self.spec.sim_epoch + t)
                if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                    return
            n += 1

    def close(self) -> None:
        """Close the looped video, if any."""
        if self._video is not None:
            self._video.close()
            self._video = None


SOURCE_REGISTRY["synthetic"] = SimulatedSource
