"""A simulated camera that plays a scenario script: real empty-street footage with the passers-by drawn in.

:class:`ScenarioSource` (the ``scenario`` source) is the :class:`~actors.sources.base.CameraSource` of a
``sim://`` camera whose spec carries a :class:`~actors.sources.script.SimScript`. It renders each frame at the
scenario time it stands for:

* the background is the empty street of a real clip (opencv-doc's ``vtest.avi``: the per-pixel median of
  the clip, which removes its pedestrians), flipped and tinted per camera, with fresh sensor noise per frame;
  without the clip, a synthetic street;
* people are drawn where :class:`twin.optics.Optics` projects them: a body, and a head that is the
  person's photo scaled so the face is exactly the ground truth's height in pixels when they walk towards
  the camera, or the back of a head when they walk away (crowd agents have no known face);
* vehicles are a car body with the Thai plate rendered by :func:`serve.plate.render.plate_image` at the
  ground truth's plate width, in the lane lens of a plate camera (held-out fonts and backgrounds: the recogniser
  never saw them in training);
* night (the script's dark hours) darkens and flattens the CCTV picture; plate cameras have infrared
  illuminators, so their plates stay bright on a dark frame.

Frames carry the scenario time as ``pts`` (seconds since local midnight), so tracking, cooldowns and alerts
run on scenario time; between the script's windows a few empty frames stand for the skipped stretch.
With ``realtime`` frames are paced at ``fps``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from actors.sources.base import SOURCE_REGISTRY, CameraSource, CameraSpec, Frame, SourceError
from actors.sources.pyav import PyAVSource
from actors.sources.script import SimPass, SimScript
from twin.optics import FACE_HEIGHT_M, FACE_Z_M, LANE_M, PLATE_WIDTH_M, PLATE_Z_M, is_night, optics_for

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@functools.lru_cache(maxsize=4)
def empty_street(video: str, width: int, height: int) -> np.ndarray:
    """The empty street of a clip (RGB, ``width`` x ``height``): the per-pixel median of every 8th frame."""
    frames = []
    with PyAVSource(CameraSpec(id="background", url=video)) as src:
        for i, f in enumerate(src.frames()):
            if i % 8 == 0:
                frames.append(cv2.resize(f.image, (width, height), interpolation=cv2.INTER_AREA))
    if not frames:
        raise SourceError(f"background video {video!r} has no frames", permanent=True)
    return np.ascontiguousarray(np.median(np.stack(frames), axis=0).astype(np.uint8))


def _synthetic_street(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    yy = np.mgrid[0:height, 0:width][0].astype(np.float32)
    base = 90 + 70 * (yy / height)[..., None] + rng.normal(0, 5, (height, width, 1)).astype(np.float32)
    img = np.clip(base * np.array([1.0, 0.97, 0.9], np.float32), 0, 255).astype(np.uint8)
    img[int(height * 0.55):int(height * 0.57), :] = 210
    return img


@functools.lru_cache(maxsize=64)
def _head_crop(path: str, face_box: tuple[float, float, float, float] | None) -> tuple[np.ndarray, float, float, float]:
    """The head and shoulders of a photo (RGB) and, in that crop, the face centre (x, y) and face height."""
    from PIL import Image

    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"))
    h, w = photo.shape[:2]
    x0, y0, x1, y1 = face_box or (0.3, 0.2, 0.7, 0.6)
    fx0, fy0, fx1, fy1 = x0 * w, y0 * h, x1 * w, y1 * h
    fw, fh = fx1 - fx0, fy1 - fy0
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    # head and a little of the neck: 1.7 face widths wide, 1.6 face heights tall
    cx0, cx1 = int(max(0, cx - 0.85 * fw)), int(min(w, cx + 0.85 * fw))
    cy0, cy1 = int(max(0, cy - 0.75 * fh)), int(min(h, cy + 0.85 * fh))
    crop = np.ascontiguousarray(photo[cy0:cy1, cx0:cx1])
    # keep the cached crop modest: the face at most 200 px high
    s = min(1.0, 200.0 / max(fh, 1.0))
    if s < 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_AREA)
    return crop, (cx - cx0) * s, (cy - cy0) * s, fh * s


@functools.lru_cache(maxsize=64)
def _plate_image(text: str, seed: int) -> np.ndarray:
    """The plate (RGB) for a plate text: type, font and look drawn from ``seed`` among the HELD-OUT font families
    and backgrounds, which the plate recogniser never saw in training (so simulated recall is not measured on
    training renders)."""
    from serve.plate.parse import parse_plate
    from serve.plate.render import plate_image

    lines = text.split("\n")
    plate = parse_plate(lines[0], lines[1] if len(lines) > 1 else None)
    return np.ascontiguousarray(plate_image(plate, seed, fonts="heldout")[0][:, :, ::-1])


def _paste(img: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Paste ``patch`` with its top-left corner at (x, y), clipped to the frame."""
    h, w = img.shape[:2]
    ph, pw = patch.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


class ScenarioSource(CameraSource):
    """Renders a :class:`SimScript` (see the module docstring); deterministic for the spec's ``seed``."""

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        if spec.sim_script is None:
            raise SourceError(f"camera {spec.id}: ScenarioSource needs a sim_script", permanent=True)
        self.script: SimScript = spec.sim_script
        self.optics = optics_for(self.script.camera_kind)
        self._day: np.ndarray | None = None
        self._night: np.ndarray | None = None
        self._noise: list[np.ndarray] = []

    # --- setup ----------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Prepare the camera's background (day and night) and its sensor noise."""
        w, h = self.optics.width, self.optics.height
        rng = np.random.default_rng(self.spec.seed)
        video = self.script.background
        if video and not Path(video).is_file():
            raise SourceError(f"camera {self.spec.id}: background video {video!r} not found (install Debian's "
                              "opencv-doc, or leave background empty for a synthetic street)", permanent=True)
        bg = empty_street(video, w, h).copy() if video else _synthetic_street(w, h, rng)
        if rng.random() < 0.5:
            bg = bg[:, ::-1]
        tint = 0.85 + 0.3 * rng.random(3)
        self._day = np.ascontiguousarray(np.clip(bg * tint, 0, 255).astype(np.uint8))
        self._night = self._darken(self._day, self.script.camera_kind)
        self._noise = [rng.normal(0, 3.0, (h, w, 3)).astype(np.int16) for _ in range(4)]
        for p in self.script.passes:
            if p.photo and not self._photo_path(p).is_file():
                raise SourceError(f"camera {self.spec.id}: photo {p.photo!r} of pass {p.sighting_id} not found in "
                                  f"{self.script.assets_dir!r}", permanent=True)

    @staticmethod
    def _darken(img: np.ndarray, kind: str) -> np.ndarray:
        f = img.astype(np.float32) / 255.0
        if kind == "plate":  # infrared: grey, dark
            g = f.mean(axis=2, keepdims=True)
            return (np.repeat(g, 3, axis=2) * 0.35 * 255).astype(np.uint8)
        f = np.power(0.5 + (f - 0.5) * 0.5, 1.8) * 0.45  # low contrast, dark, warm street lights
        return np.clip(f * np.array([1.1, 0.95, 0.7]) * 255, 0, 255).astype(np.uint8)

    def _photo_path(self, p: SimPass) -> Path:
        return Path(self.script.assets_dir or ".") / str(p.photo)

    def is_night(self, t: float) -> bool:
        """True when scenario time ``t`` falls in the script's dark hours."""
        return bool(is_night(t, self.script.night))

    # --- drawing --------------------------------------------------------------------------------------------

    def render(self, t: float, n: int = 0) -> np.ndarray:
        """The frame (RGB) at scenario time ``t``; ``n`` picks the noise pattern."""
        assert self._day is not None and self._night is not None
        night = self.is_night(t)
        img = (self._night if night else self._day).copy()
        active = []
        for p in self.script.passes:
            if p.t[0] <= t <= p.t[-1]:
                a = float(np.interp(t, p.t, p.a))
                b = float(np.interp(t, p.t, p.b))
                k = min(int(np.searchsorted(p.t, t)), len(p.t) - 1)
                active.append((a, b, p.toward[k], p))
        for a, b, toward, p in sorted(active, key=lambda x: -x[0]):  # far ones first
            if p.agent_kind == "vehicle":
                self._draw_vehicle(img, a, b, p, night)
            else:
                self._draw_person(img, a, b, toward, p, night)
        out = img.astype(np.int16) + self._noise[n % len(self._noise)]
        return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))

    def _draw_person(self, img: np.ndarray, a: float, b: float, toward: bool, p: SimPass, night: bool) -> None:
        fov = self.script.fov_deg
        proj = self.optics.project
        u_head, v_head, ppm = (float(v[0]) for v in proj(np.array([a]), np.array([b]), FACE_Z_M, fov))
        if ppm * FACE_HEIGHT_M < 2:
            return
        _, v_feet, _ = proj(np.array([a]), np.array([b]), 0.0, fov)
        _, v_neck, _ = proj(np.array([a]), np.array([b]), FACE_Z_M - 0.17, fov)
        rng = np.random.default_rng(p.seed)
        shirt = tuple(int(c) for c in rng.integers(30, 220, 3))
        dim = 0.45 if night else 1.0
        half = int(0.22 * ppm)
        cv2.rectangle(img, (int(u_head) - half, int(v_neck[0])), (int(u_head) + half, int(v_feet[0])),
                      tuple(int(c * dim) for c in shirt), -1)
        face_px = ppm * FACE_HEIGHT_M
        if toward and p.photo:
            crop, fx, fy, fh = _head_crop(str(self._photo_path(p)), p.face_box)
            s = face_px / fh
            size = (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s)))
            head = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            if night:
                head = self._darken(head, "cctv")
            _paste(img, head, round(u_head - fx * s), round(v_head - fy * s))
        else:
            hair = (25, 22, 20) if not night else (10, 9, 8)
            cv2.ellipse(img, (int(u_head), int(v_head)), (max(1, int(0.09 * ppm)), max(1, int(0.12 * ppm))), 0, 0,
                        360, hair, -1)

    def _draw_vehicle(self, img: np.ndarray, a: float, b: float, p: SimPass, night: bool) -> None:
        fov = self.script.fov_deg
        b_lane = abs(b) - LANE_M
        proj = self.optics.project
        u, v_plate, ppm = (float(x[0]) for x in proj(np.array([a]), np.array([b_lane]), PLATE_Z_M, fov))
        if ppm * PLATE_WIDTH_M < 4:
            return
        _, v_roof, _ = proj(np.array([a]), np.array([b_lane]), 1.45, fov)
        _, v_ground, _ = proj(np.array([a]), np.array([b_lane]), 0.15, fov)
        rng = np.random.default_rng(p.seed)
        body = tuple(int(c * (0.4 if night else 1.0)) for c in rng.integers(20, 235, 3))
        half = int(0.87 * ppm)
        cv2.rectangle(img, (int(u) - half, int(v_roof[0])), (int(u) + half, int(v_ground[0])), body, -1)
        cv2.rectangle(img, (int(u) - int(0.7 * ppm), int(v_roof[0])),
                      (int(u) + int(0.7 * ppm), int(v_roof[0] + 0.35 * ppm)), (40, 42, 48), -1)  # windscreen
        if not p.plate:
            return
        plate = _plate_image(p.plate, p.seed)
        pw = ppm * PLATE_WIDTH_M
        ph = pw * plate.shape[0] / plate.shape[1]
        size = (max(2, round(pw)), max(2, round(ph)))
        small = cv2.resize(plate, size, interpolation=cv2.INTER_AREA)
        if night:  # retro-reflective plate under infrared: bright, slightly flat
            small = (small.astype(np.float32) * 0.85 + 20).astype(np.uint8)
        _paste(img, small, round(u - size[0] / 2), round(v_plate - size[1] / 2))

    # --- streaming ------------------------------------------------------------------------------------------

    def timeline(self) -> list[float]:
        """Scenario times of every frame: each window at ``fps``, ``gap_frames`` frames across each gap."""
        step = 1.0 / self.spec.fps
        out: list[float] = []
        prev: float | None = None
        for a, b in self.script.windows:
            if prev is not None and a - prev > step:
                gap = np.linspace(prev, a, self.script.gap_frames + 2)[1:-1]
                out += [float(x) for x in gap]
            n = max(1, math.floor((b - a) / step) + 1)
            out += [a + i * step for i in range(n)]
            prev = out[-1]
        return out

    def frames(self) -> Iterator[Frame]:
        """Yield the script's frames (paced at ``fps`` when ``realtime``), resuming after ``start_pts``."""
        times = self.timeline()
        if self.spec.start_pts is not None:
            times = [t for t in times if self.script.epoch + t > self.spec.start_pts + 1e-6]
        t0 = time.monotonic()
        for k, t in enumerate(times):
            if self._stop.is_set():
                return
            if self.spec.realtime:
                wait = k / self.spec.fps - (time.monotonic() - t0)
                if wait > 0 and self._stop.wait(wait):
                    return
            yield self._frame(self.render(t, k), self.script.epoch + t)
            if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                return


SOURCE_REGISTRY["scenario"] = ScenarioSource
