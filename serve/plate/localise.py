"""Find Thai plates in a frame and rectify them to the canonical layout the OCR engines read.

Two localisers share one output type, :class:`PlateCandidate`:

- :class:`ContourLocaliser` (default): edges → contours → convex quadrilaterals with a plate's aspect
  ratio (34 × 15 cm ≈ 2.27, allowing perspective), kept only when the rectified registration line holds
  2-9 glyph-sized dark blobs on a light plate. Gives the plate's four corners, so perspective is undone.
- :class:`CascadeLocaliser`: OpenCV's Haar plate cascade (``haarcascade_russian_plate_number.xml``,
  shipped in OpenCV 4 wheels), trained on one-line Russian plates; it returns axis-aligned boxes only, and
  the contour step then looks for the quad inside each box. Measured on rendered scenes it finds far fewer
  two-line Thai plates (see :mod:`serve.plate.evaluate`), so it is an option, not the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from serve.plate.ocr import RECT_H, RECT_W, binarise, line_crop

ASPECT_RANGE = (1.5, 3.4)


@dataclass
class PlateCandidate:
    """A located plate: corners (TL, TR, BR, BL) in frame pixels, its bounding box and a plate-ness score."""

    quad: np.ndarray  # (4, 2) float32
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    score: float


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Order four points as top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.float32([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])


READ_PAD = 0.0
"""Context ring (fraction of the canvas) kept around a located quad when rectifying for OCR. Measured on 40
rendered plates per level: 0.02 lost more (moderate crops 50% -> 38% exact) than it gained, so none."""


def rectify(image: np.ndarray, quad: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """Warp the plate at ``quad`` to the canonical ``RECT_H`` × ``RECT_W`` layout (cubic upsampling).

    With ``pad`` > 0 the quad maps to the canvas inset by that fraction, keeping a ring of context.
    """
    px, py = pad * RECT_W, pad * RECT_H
    dst = np.float32([[px, py], [RECT_W - px, py], [RECT_W - px, RECT_H - py], [px, RECT_H - py]])
    m = cv2.getPerspectiveTransform(order_corners(quad), dst)
    return cv2.warpPerspective(image, m, (RECT_W, RECT_H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def glyph_count(rect: np.ndarray) -> int:
    """How many glyph-sized dark blobs the rectified registration line holds (plates have 2-7)."""
    b = binarise(line_crop(rect, "registration"), 48)
    n, _, stats, _ = cv2.connectedComponentsWithStats(255 - b, connectivity=8)
    h = b.shape[0] - 20
    return int(sum(1 for i in range(1, n) if 0.35 * h <= stats[i, cv2.CC_STAT_HEIGHT] <= 1.0 * h
                   and stats[i, cv2.CC_STAT_WIDTH] <= 0.6 * h * 2))


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class ContourLocaliser:
    """Edge/contour plate finder returning perspective quads (see module docstring)."""

    name = "contour"

    def __init__(self, min_width: int = 40, max_candidates: int = 5, min_contrast: float = 45.0) -> None:
        """``min_width``: smallest plate width in pixels worth reading; ``max_candidates`` per frame;
        ``min_contrast``: least grey-level spread (5th-95th percentile) of a plate's print."""
        self.min_width = min_width
        self.min_contrast = min_contrast
        self.max_candidates = max_candidates

    def _quads(self, gray: np.ndarray) -> list[np.ndarray]:
        quads: list[np.ndarray] = []
        for lo, hi in ((50, 150), (20, 60)):
            edges = cv2.Canny(gray, lo, hi)
            edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
            contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                if cv2.contourArea(c) < (self.min_width ** 2) / 3.4:
                    continue
                (_, _), (rw, rh), _ = rect = cv2.minAreaRect(c)
                if min(rw, rh) < 1:
                    continue
                aspect = max(rw, rh) / min(rw, rh)
                if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1] or max(rw, rh) < self.min_width:
                    continue
                hull = cv2.convexHull(c)
                if cv2.contourArea(hull) < 0.75 * rw * rh:
                    continue
                approx = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True)
                pts = approx.reshape(-1, 2) if len(approx) == 4 else cv2.boxPoints(rect)
                quads.append(order_corners(pts))
        return quads

    def locate(self, image: np.ndarray) -> list[PlateCandidate]:
        """Plate candidates in a BGR frame, best first, overlapping duplicates removed."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        h, w = gray.shape
        cands: list[PlateCandidate] = []
        for q in self._quads(gray):
            if q[:, 0].min() < 1 or q[:, 1].min() < 1 or q[:, 0].max() > w - 2 or q[:, 1].max() > h - 2:
                continue  # runs along the frame edge: the frame border itself, or a plate cut off by it
            rect = rectify(image, q)
            g = cv2.cvtColor(rect, cv2.COLOR_BGR2GRAY)
            lo, hi = np.percentile(g, (5, 95))
            if hi - lo < self.min_contrast:  # tail lights, uniform panels: no dark print on a light plate
                continue
            n = glyph_count(rect)
            if not 2 <= n <= 9:
                continue
            x0, y0 = np.floor(q.min(axis=0)).astype(int)
            x1, y1 = np.ceil(q.max(axis=0)).astype(int)
            area = float(cv2.contourArea(q))
            cands.append(PlateCandidate(quad=q, box=(int(x0), int(y0), int(x1), int(y1)), score=area))
        # prefer the largest quad of a nested group (outer plate edge over inner border / text blobs)
        cands.sort(key=lambda c: -c.score)
        kept: list[PlateCandidate] = []
        for c in cands:
            if all(_iou(c.box, k.box) < 0.3 for k in kept):
                kept.append(c)
        top = kept[: self.max_candidates]
        amax = max((c.score for c in top), default=1.0)
        for c in top:
            c.score = round(c.score / amax, 4)
        return top


class CascadeLocaliser:
    """OpenCV Haar plate cascade, refined by the contour localiser inside each (enlarged) hit."""

    name = "cascade"

    def __init__(self, cascade_file: str | Path | None = None, min_width: int = 40) -> None:
        """Load the cascade (default: OpenCV's shipped Russian plate cascade); clear error when missing."""
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError("this OpenCV has no CascadeClassifier (OpenCV 5): install opencv-python-headless<5")
        default = Path(cv2.data.haarcascades) / "haarcascade_russian_plate_number.xml"
        path = Path(cascade_file) if cascade_file else default
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise RuntimeError(f"could not load the plate cascade from {path}")
        self.min_width = min_width
        self._refine = ContourLocaliser(min_width=min_width)

    def locate(self, image: np.ndarray) -> list[PlateCandidate]:
        """Cascade hits, each refined to a quad by the contour localiser (or kept as its box)."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        hits = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3,
                                             minSize=(self.min_width, self.min_width // 4))
        h, w = gray.shape
        out: list[PlateCandidate] = []
        for x, y, bw, bh in hits:
            mx, my = int(bw * 0.3), int(bh * 0.8)
            x0, y0, x1, y1 = max(0, x - mx), max(0, y - my), min(w, x + bw + mx), min(h, y + bh + my)
            sub = self._refine.locate(image[y0:y1, x0:x1])
            if sub:
                q = sub[0].quad + np.float32([x0, y0])
                b = sub[0].box
                out.append(PlateCandidate(quad=q, box=(b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0), score=1.0))
        return out


def locate_in_crop(crop: np.ndarray) -> np.ndarray:
    """The plate quad inside a plate crop (a detector's box with margin); the whole crop if none is found."""
    cands = ContourLocaliser(min_width=max(20, crop.shape[1] // 4)).locate(crop)
    if cands:
        return cands[0].quad
    h, w = crop.shape[:2]
    return np.float32([[0, 0], [w, 0], [w, h], [0, h]])


def make_localiser(name: str = "contour", **kwargs: object) -> ContourLocaliser | CascadeLocaliser:
    """Build a localiser by name ('contour' or 'cascade')."""
    if name == "contour":
        return ContourLocaliser(**kwargs)  # type: ignore[arg-type]
    if name == "cascade":
        return CascadeLocaliser(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown localiser {name!r}: use 'contour' or 'cascade'")
