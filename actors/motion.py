"""A cheap motion gate: most CCTV frames are static, so only frames that differ from the scene pass on.

Each frame is shrunk to a tiny grayscale image (160x90 by default, a few microseconds of work), compared
with a running-average background (``cv2.accumulateWeighted``), and passes when the fraction of pixels
whose difference exceeds ``pixel_threshold`` is at least ``min_changed_fraction``. After motion the gate
stays open for ``hold_frames`` frames, so the tail of an event (a face turning towards the camera as the
person slows down) still reaches the detectors. A ``heartbeat_s`` lets one frame through now and then, so a
person standing still is re-checked. The defaults were tuned on vtest.avi so that the gate loses no face
event that MTCNN finds without it (see ``actors.bench``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class MotionGateConfig(BaseModel):
    """Motion gate parameters (per camera)."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=160, ge=8, le=1280, description="analysis width in pixels")
    height: int = Field(default=90, ge=8, le=720, description="analysis height in pixels")
    alpha: float = Field(default=0.05, gt=0, le=1, description="background learning rate per frame")
    pixel_threshold: float = Field(default=15.0, gt=0, le=255, description="grey-level change that counts")
    min_changed_fraction: float = Field(default=0.0015, ge=0, le=1, description="changed pixels needed to pass")
    blur: int = Field(default=3, ge=0, le=15, description="box blur kernel (0 = none) against sensor noise")
    hold_frames: int = Field(default=5, ge=0, description="frames kept open after motion")
    heartbeat_s: float = Field(default=2.0, ge=0, description="let a frame pass at least this often (0 = never): "
                               "a person standing still is re-checked")
    enabled: bool = True


@dataclass(slots=True)
class GateDecision:
    """Whether a frame passed and the fraction of changed pixels that decided it."""

    passed: bool
    changed_fraction: float
    reason: str


class MotionGate:
    """Running-average background subtraction on a tiny grayscale copy of each frame (one per camera)."""

    def __init__(self, config: MotionGateConfig | None = None) -> None:
        self.config = config or MotionGateConfig()
        self._bg: np.ndarray | None = None
        self._hold = 0
        self._last_pass_ts: float | None = None
        self.seen = 0
        self.passed = 0

    def small(self, image: np.ndarray) -> np.ndarray:
        """The frame as float32 grayscale at the analysis size (RGB or gray uint8 input)."""
        if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] in (3, 4)):
            raise ValueError(f"motion gate expects an HxW or HxWx3 image, got shape {image.shape}")
        c = self.config
        # decimate big frames by striding to about twice the analysis size first: INTER_AREA on a full HD
        # frame costs milliseconds, on the decimated one a fraction of that, with the same result after blur
        step = max(1, min(image.shape[1] // (2 * c.width), image.shape[0] // (2 * c.height)))
        src = image[::step, ::step] if step > 1 else image
        tiny = cv2.resize(src, (c.width, c.height), interpolation=cv2.INTER_AREA)
        if tiny.ndim == 3:
            tiny = cv2.cvtColor(tiny, cv2.COLOR_RGB2GRAY if tiny.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
        if c.blur > 1:
            tiny = cv2.blur(tiny, (c.blur, c.blur))
        return tiny.astype(np.float32)

    def check(self, image: np.ndarray, ts: float | None = None) -> GateDecision:
        """Decide for one frame and update the background."""
        c = self.config
        self.seen += 1
        if not c.enabled:
            self.passed += 1
            return GateDecision(True, 1.0, "disabled")
        g = self.small(image)
        if self._bg is None:
            self._bg = g.copy()
            return self._pass(1.0, "first", ts)
        diff = cv2.absdiff(g, self._bg)
        frac = float(np.count_nonzero(diff > c.pixel_threshold)) / diff.size
        cv2.accumulateWeighted(g, self._bg, c.alpha)
        if frac >= c.min_changed_fraction and frac > 0:
            self._hold = c.hold_frames
            return self._pass(frac, "motion", ts)
        if self._hold > 0:
            self._hold -= 1
            return self._pass(frac, "hold", ts)
        if c.heartbeat_s > 0 and ts is not None and (self._last_pass_ts is None
                                                     or ts - self._last_pass_ts >= c.heartbeat_s):
            return self._pass(frac, "heartbeat", ts)
        return GateDecision(False, frac, "static")

    def _pass(self, frac: float, reason: str, ts: float | None) -> GateDecision:
        self.passed += 1
        if ts is not None:
            self._last_pass_ts = ts
        return GateDecision(True, frac, reason)

    @property
    def pass_ratio(self) -> float:
        """Fraction of frames passed so far (1.0 before any frame)."""
        return self.passed / self.seen if self.seen else 1.0

    @property
    def skip_ratio(self) -> float:
        """Fraction of frames skipped so far."""
        return 1.0 - self.pass_ratio

    def reset(self) -> None:
        """Forget the background (e.g. after a reconnect, when the view may have changed)."""
        self._bg = None
        self._hold = 0
