"""Find Thai plates in a photo and rectify them for the OCR engines: cheap candidates, verified by the reader.

Candidates come cheaply and in numbers; the recogniser decides (:class:`~serve.plate.service.PlateService` keeps
only reads that pass the plate grammar with a confidence above the engine's threshold, which was chosen on the
rendered validation set). So a localiser's job is recall, and grilles, badges and signs are dropped later.

:class:`ContourLocaliser` (default, ``contour``):

1. a photo larger than ``work_max_side`` (1600 px) is searched on a downscaled copy (a 50 MP phone photo takes
   the same time as a 2 MP one) and the quads are mapped back, so the plate is rectified from the full-resolution
   pixels;
2. **edge quads**: Canny at two thresholds -> contours -> convex quadrilaterals with the aspect of a car plate
   (34 × 15 cm ≈ 2.27) or a motorcycle plate (22 × 17 cm ≈ 1.29), allowing perspective;
3. **text clusters**: dark strokes on a light plate (black-hat morphology), joined into lines and stacked lines,
   whose box has a plate's aspect: plates whose edge does not stand out (a white plate on a white car);
   **light blobs**: the print closed over, the plate stands out as a light rectangle against what surrounds it
   (white-hat morphology, Otsu): plates whose edge is lost to blur or noise (night, far away; plates are white or
   yellow and retroreflective);
4. **the whole image and its centre**: for close-ups and crops where the plate fills the frame;
5. a contrast test (a plate has dark print on a light ground), overlap suppression, best first by a score of
   size, contrast and closeness to a plate's aspect.

Each candidate carries its layout guess (``car`` / ``motorcycle`` from the aspect), which sets the rectified size.
:class:`CascadeLocaliser` (``cascade``): OpenCV's Haar plate cascade (one-line Russian plates) refined by the
contour step; kept as an option. Localisers are built by name with :func:`make_localiser` from
:data:`LOCALISER_REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

RECT_W, RECT_H = 340, 150
"""Size of a rectified car plate handed to engines (half the renderer's canonical canvas, same layout)."""
MOTO_RECT_W, MOTO_RECT_H = 220, 170
"""Size of a rectified motorcycle plate (22 × 17 cm)."""
CAR_ASPECT, MOTO_ASPECT = 680 / 300, 440 / 340
ASPECT_RANGE = (0.45, 4.2)
"""Width / height (:func:`quad_aspect`) of a quad the localiser proposes: a plate's shape foreshortened by the camera's
angle. A motorcycle plate (22 x 17 cm, 1.29) seen from the kerb at 60 degrees of yaw is 0.65, at 70 degrees 0.49; a
car plate (34 x 15 cm, 2.27) seen from above at 55 degrees of pitch is 3.9. The lower end was 0.6 until photos at
70 degrees of yaw were measured (``render_angled``, held-out fonts, seeds 980000-980019, whole plate right and
verified): motorcycle plates 0 -> 15 of 20 (none was proposed: only the edge quads admit an upright shape, and the
plate's true quad read alone was right 20 times), any plate type (seeds 990000-990019) 14 -> 17; unchanged: yaw 60
motorcycle 19 -> 19, flat 20 -> 20, held-out moderate scenes (``render_scene`` 10000-10159, 640 x 480) 143 -> 143
right first, no plate on 80 plate-free 1600 x 1200 backgrounds (held-out 100-179) either way, for about 1.3 % more
candidates (2550 -> 2581 on those scenes, 1243 -> 1260 on the backgrounds). Before 0.6-4.2 it was 1.0-3.6 (with
:data:`EDGE_FILL` 0.75 and ``REGRESSED_ASPECT`` 1.0-3.0) until phone photos at steep angles were measured
(:func:`serve.plate.render.render_angled`, held-out fonts, whole plate right of 40 a setting; the three chosen on
seeds 900000-900039 and 950000-950039). With all three and the regressor on usual candidates (:data:`USUAL_FILL`),
measured after on seeds 980000-980039: yaw 50 degrees 26 -> 39 (every miss before a motorcycle plate, not found at
all), pitch 52: 21 -> 38, yaw 40 with pitch 35: 30 -> 38, flat 39 -> 39; on 950000-950039: yaw 50 32 -> 38, pitch 52
22 -> 35, yaw 40 with pitch 35 34 -> 40, yaw 65 27 -> 34, flat 40 -> 39 (a picture plate). Plates turned less read
the same within a plate or two (seeds 960000-960119: flat 115 -> 115, yaw 25 with pitch 15 115 -> 114); street
scenes read the same (``render_scene`` 600000-600119, 1280 x 960: moderate 111 -> 112, severe 95 -> 95; held-out
moderate scenes 10000-10399, 640 x 480: 357 -> 357 right first), and no plate was read on 120 background photos
either way. The cost: about 7 % more candidates on street scenes (15.9 -> 17.0 a frame, 13.1 -> 15.2 on background
photos) and about 6 % more time a frame (307 -> 325 ms, 2 busy cores)."""
MOTO_MAX_ASPECT = 1.75
"""Quads narrower than this (width / height) are read as motorcycle plates."""
LIGHT_MAX_SIDE = 800
"""Longer side (px) of the copy the light-blob proposals are searched on (:meth:`ContourLocaliser._light_quads`):
a 1600 x 1200 work copy costs about 8 ms there instead of 35 ms at full size (2 cores)."""
LIGHT_MIN_ASPECT = 1.0
"""Least width / height of a light blob proposed as a plate (:meth:`ContourLocaliser._light_quads`): landscape only,
so light doors, windows and shirts are not proposed; a plate turned far enough to look upright is left to the edge
quads and the plate-corner regressor (:data:`ASPECT_RANGE`)."""
EDGE_FILL = 0.6
"""Least share of its rotated box an edge contour's convex hull fills to be a plate candidate. A plate turned about
both axes is a skewed quadrilateral that fills less of its box than a rectangle: at 0.75 (until then) motorcycle
plates at 40 degrees of yaw and 35 of pitch were not found, and whole plates were read 34 of 40 times; at 0.6, 40
(``render_angled``, held-out fonts, seeds 950000-950039, with :data:`ASPECT_RANGE` as now), for about 3 % more
candidates on street scenes."""
USUAL_ASPECT = (1.0, 3.6)
USUAL_FILL = 0.75
"""A candidate outside :data:`USUAL_ASPECT`, or an edge contour filling less than :data:`USUAL_FILL` of its box, is
admitted only by the steep-angle rules (:data:`ASPECT_RANGE`, :data:`EDGE_FILL`) and marked ``relaxed``: it is read
like the others, but the plate-corner regressor refines the best candidates that are not relaxed
(``PlateServiceConfig.frame_corner_candidates``). Relaxed quads are mostly car bodies and doors, and big ones scored
above the plate: among the regressor's first four they left out the plate's, and held-out moderate scenes 10188 and
10264 were read wrong (357 -> 355 of 400 right first; 357 again with the regressor on usual candidates)."""
SAME_REGION_IOU = 0.7
"""Box IoU at or above which two candidates are one region: the localiser keeps the better, the zoom pass merges
the same region found by two tiles (:func:`serve.plate.service.merge_tile_candidates`)."""


@dataclass
class PlateCandidate:
    """A located plate: corners (TL, TR, BR, BL) in image pixels, its box, a score in 0..1, its layout guess and
    whether only the steep-angle rules admitted it (``relaxed``: :data:`USUAL_FILL`)."""

    quad: np.ndarray  # (4, 2) float32
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    score: float
    kind: str = "car"  # "car" or "motorcycle"
    relaxed: bool = False


class Localiser(Protocol):
    """Anything with a name that turns an image into plate candidates."""

    name: str

    def locate(self, image: np.ndarray) -> list[PlateCandidate]:
        """Plate candidates in a BGR image, best first."""


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Order four points as top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.float32([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])


READ_PAD = 0.0
"""Context ring (fraction of the canvas) kept around a quad of a plate crop when rectifying it for OCR
(:meth:`~serve.plate.service.PlateService.read_crops`: the crop carries its own margin; 0.05 cost 2-4 points of
whole plate on held-out crops). Quads found in whole frames get ``PlateServiceConfig.locate_pad``."""


def quad_aspect(quad: np.ndarray) -> float:
    """Width / height of a quad (mean of opposite sides); 0 for a degenerate quad."""
    q = np.asarray(quad, np.float32)
    w = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return float(w / h) if h > 0 else 0.0


def kind_of(quad: np.ndarray) -> str:
    """'motorcycle' for a quad with a motorcycle plate's aspect, else 'car'."""
    return "motorcycle" if 0 < quad_aspect(quad) < MOTO_MAX_ASPECT else "car"


WARP_MAX_SIDE = 32766
"""Longest side (px) of an image OpenCV's ``warpPerspective`` takes: its ``remap`` asserts every side of the source
is under ``SHRT_MAX`` (32767). A 40000 x 2500 panorama (100 MP, 16:1: within the plate route's limits) or a crop
longer than that made :func:`rectify` raise ``cv2.error``; it now warps from the part of the image the canvas
reads (:func:`_warp_source`)."""
WARP_MARGIN = 4
"""Pixels kept around the part of an image a warp reads (:func:`_warp_source`): bicubic interpolation reads 2 px
beyond a sampled point."""


def _warp_source(image: np.ndarray, quad: np.ndarray, m: np.ndarray, size: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``image`` that warping it by ``m`` (``quad``'s corners to the canvas, 3 x 3) onto a canvas of
    ``size`` (width, height) reads, at most :data:`WARP_MAX_SIDE` px a side, and ``quad`` in that part's pixels.

    The part is the box of the canvas's corners mapped back to the image, with :data:`WARP_MARGIN` px more a side
    and clipped to the image (the whole image when the mapping does not keep the canvas in front of the camera), so
    the warp of a quad that fits reads the very same pixels (border replication included, at the image's own edges).
    A part still too long (a quad longer than the limit) is area-downscaled to the limit first."""
    H, W = image.shape[:2]
    cw, ch = size
    back = np.float64([[0, 0, 1], [cw, 0, 1], [cw, ch, 1], [0, ch, 1]]) @ np.linalg.pinv(m).T
    # the canvas stays in front when its corners' w share one sign (w is linear over the canvas; which sign depends
    # on the side of the quad's vanishing line the image's origin lies: a plate receding to the left, right of that
    # line, maps with w < 0 everywhere, and its points are no less finite for it)
    w = back[:, 2] * np.sign(back[0, 2])
    if np.all(np.isfinite(back)) and np.all(w > 1e-12):
        xy = back[:, :2] / back[:, 2:]
        lo = np.floor(xy.min(axis=0)) - WARP_MARGIN
        hi = np.ceil(xy.max(axis=0)) + WARP_MARGIN + 1
        x0, y0 = int(np.clip(lo[0], 0, W - 1)), int(np.clip(lo[1], 0, H - 1))
        x1, y1 = int(np.clip(hi[0], x0 + 1, W)), int(np.clip(hi[1], y0 + 1, H))
    else:
        x0, y0, x1, y1 = 0, 0, W, H
    part = image[y0:y1, x0:x1]
    q = (quad - np.float32([x0, y0])).astype(np.float32)
    ph, pw = part.shape[:2]
    if max(ph, pw) > WARP_MAX_SIDE:
        f = WARP_MAX_SIDE / max(ph, pw)
        nw, nh = max(1, min(WARP_MAX_SIDE, round(pw * f))), max(1, min(WARP_MAX_SIDE, round(ph * f)))
        part = cv2.resize(part, (nw, nh), interpolation=cv2.INTER_AREA)
        scale = np.float32([nw / pw, nh / ph])
        q = ((q + 0.5) * scale - 0.5).astype(np.float32)  # cv2.resize maps pixel centres
    return part, q


def rectify(image: np.ndarray, quad: np.ndarray, pad: float | Sequence[float] = 0.0,
            kind: str | None = None) -> np.ndarray:
    """Warp the plate at ``quad`` to the canonical canvas (car ``RECT_H`` × ``RECT_W``, motorcycle ``MOTO_RECT_H``
    × ``MOTO_RECT_W``; ``kind`` defaults to the quad's aspect). Shrinking is area-filtered, enlarging cubic. An image
    over :data:`WARP_MAX_SIDE` px on a side (OpenCV's limit) is warped from the part the canvas reads
    (:func:`_warp_source`).

    With ``pad`` > 0 the quad maps to the canvas inset by that fraction of the canvas a side, keeping a ring of
    context; a (across, down) pair pads the two axes apart; a negative pad maps the quad beyond the canvas (its
    edges are cut: a closer look).

    Raises
    ------
    ValueError
        for a pad that is not one number or an (across, down) pair of numbers, each finite and in (-0.5, 0.5) (at
        0.5 the quad would shrink to nothing).
    """
    try:
        pads = np.atleast_1d(np.asarray(pad, dtype=np.float64)) if not isinstance(pad, str) else np.array([])
    except (TypeError, ValueError):
        pads = np.array([])
    if pads.shape not in ((1,), (2,)) or not np.all(np.isfinite(pads)) or np.any(np.abs(pads) >= 0.5):
        raise ValueError(f"pad {pad!r} must be a number or an (across, down) pair, each a fraction of the canvas a "
                         "side in (-0.5, 0.5): 0.03 keeps a 3 % ring of context, -0.02 looks 2 % closer")
    pad_x, pad_y = (float(pads[0]), float(pads[-1]))
    kind = kind or kind_of(quad)
    w, h = (MOTO_RECT_W, MOTO_RECT_H) if kind == "motorcycle" else (RECT_W, RECT_H)
    q = order_corners(quad)
    qw = float(np.linalg.norm(q[1] - q[0]))
    k = max(1, min(4, int(qw / w)))  # warp at k x the output size, then area-resize: no aliasing on big photos
    px, py = pad_x * w * k, pad_y * h * k
    dst = np.float32([[px, py], [w * k - px, py], [w * k - px, h * k - py], [px, h * k - py]])
    m = cv2.getPerspectiveTransform(q, dst)
    if max(image.shape[:2]) > WARP_MAX_SIDE:  # a panorama or a very long crop: OpenCV would refuse to warp it
        image, q = _warp_source(image, q, m, (w * k, h * k))
        m = cv2.getPerspectiveTransform(q, dst)
    out = cv2.warpPerspective(image, m, (w * k, h * k), flags=cv2.INTER_CUBIC if k == 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return out if k == 1 else cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box(q: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(q.min(axis=0)).astype(int)
    x1, y1 = np.ceil(q.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def odd_kernel(shape: tuple[int, ...], divisor: int, least: int) -> int:
    """An odd morphology kernel side: the image's shorter side (``shape`` (H, W, ...)) over ``divisor``, at least
    ``least`` px."""
    return max(least, (min(shape[:2]) // divisor) | 1)


def shrink_to(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``gray`` (H, W) area-downscaled so its longer side is at most ``max_side`` px (each side at least 1 px), and
    the scale applied (1.0 and ``gray`` itself when it is small enough already)."""
    H, W = gray.shape[:2]
    s = min(1.0, max_side / max(H, W))
    if s == 1.0:
        return gray, s
    return cv2.resize(gray, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA), s


def normalise_scores(cands: list[PlateCandidate]) -> None:
    """Scale scores to 0..1 by the largest, in place; all-zero (or no) scores stay as they are (never divides by 0)."""
    top = max((c.score for c in cands), default=0.0)
    if top > 0:
        for c in cands:
            c.score = round(c.score / top, 4)


class ContourLocaliser:
    """Edge quads + text clusters + light blobs + whole image, on a downscaled copy of big photos (module docstring)."""

    name = "contour"

    def __init__(self, min_width: int = 40, max_candidates: int = 16, min_contrast: float = 35.0,
                 work_max_side: int = 1600, whole_image: bool = True) -> None:
        """``min_width``: smallest plate width in pixels (of the searched copy) worth reading; ``max_candidates``
        per image; ``min_contrast``: least grey-level spread (5th-95th percentile) of a plate; ``work_max_side``:
        longer side of the copy searched; ``whole_image``: also propose the whole image and its centre."""
        self.min_width = min_width
        self.min_contrast = min_contrast
        self.max_candidates = max_candidates
        self.work_max_side = work_max_side
        self.whole_image = whole_image

    def _edge_quads(self, gray: np.ndarray) -> list[tuple[np.ndarray, bool]]:
        """Convex quads of edge contours with a plate's aspect (:data:`ASPECT_RANGE`) filling at least
        :data:`EDGE_FILL` of their rotated box, each with whether it fills less than :data:`USUAL_FILL` (relaxed)."""
        quads: list[tuple[np.ndarray, bool]] = []
        for lo, hi in ((50, 150), (20, 60)):
            edges = cv2.Canny(gray, lo, hi)
            edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
            contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                if cv2.contourArea(c) < (self.min_width ** 2) / 3.6:
                    continue
                (_, _), (rw, rh), _ = rect = cv2.minAreaRect(c)
                if min(rw, rh) < 1:
                    continue
                aspect = max(rw, rh) / min(rw, rh)
                if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1] or max(rw, rh) < self.min_width:
                    continue
                hull = cv2.convexHull(c)
                fill = cv2.contourArea(hull) / (rw * rh)
                if fill < EDGE_FILL:
                    continue
                approx = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True)
                pts = approx.reshape(-1, 2) if len(approx) == 4 else cv2.boxPoints(rect)
                q = order_corners(pts)
                if ASPECT_RANGE[0] <= quad_aspect(q) <= ASPECT_RANGE[1]:
                    quads.append((q, fill < USUAL_FILL))
        return quads

    def _text_quads(self, gray: np.ndarray) -> list[np.ndarray]:
        """Boxes of dark-print clusters with a plate's aspect (lines of glyphs, stacked)."""
        out: list[np.ndarray] = []
        for k in sorted({odd_kernel(gray.shape, 24, 7), odd_kernel(gray.shape, 10, 7)}):
            bh = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
            _, b = cv2.threshold(bh, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            if (b > 0).mean() > 0.3:
                continue
            b = cv2.morphologyEx(b, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, max(3, k // 2))))
            contours, _ = cv2.findContours(b, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                x, y, bw, bh_ = cv2.boundingRect(c)
                if bw < self.min_width * 0.8 or bh_ < 8 or not 0.9 <= bw / bh_ <= 4.5:
                    continue
                fill = cv2.contourArea(c) / float(bw * bh_)
                if fill < 0.35:
                    continue
                mx, my = 0.08 * bw, 0.12 * bh_
                out.append(np.float32([[x - mx, y - my], [x + bw + mx, y - my], [x + bw + mx, y + bh_ + my],
                                       [x - mx, y + bh_ + my]]))
        return out

    def _light_quads(self, gray: np.ndarray) -> list[np.ndarray]:
        """Light plate-shaped blobs in ``gray`` (H, W uint8): the print closed over (kernels of 1/60 and 1/30 of
        the image's shorter side), a white top-hat against what surrounds it (1/6 of the shorter side), Otsu;
        blobs filling >= 70 % of their rotated box, at least 8 px high and ``min_width`` wide, with a plate's
        (landscape) aspect. Searched on a copy at most ``LIGHT_MAX_SIDE`` px long (a light blob needs no fine
        detail; the top-hat's cost grows with its kernel), so the 8 px floor is in that copy's pixels.

        Returns (4, 2) float32 corner arrays (TL, TR, BR, BL) in ``gray``'s pixels."""
        small, f = shrink_to(gray, LIGHT_MAX_SIDE)
        smooth = cv2.GaussianBlur(small, (0, 0), 1.0)
        around = cv2.getStructuringElement(cv2.MORPH_RECT, (odd_kernel(small.shape, 6, 31),) * 2)
        out: list[np.ndarray] = []
        for k in sorted({odd_kernel(small.shape, 60, 5), odd_kernel(small.shape, 30, 7)}):
            closed = cv2.morphologyEx(smooth, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
            light = cv2.morphologyEx(closed, cv2.MORPH_TOPHAT, around)
            _, b = cv2.threshold(light, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            b = cv2.morphologyEx(b, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            contours, _ = cv2.findContours(b, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                (_, _), (rw, rh), _ = rect = cv2.minAreaRect(c)
                if min(rw, rh) < 8 or max(rw, rh) < self.min_width * f or cv2.contourArea(c) < 0.7 * rw * rh:
                    continue
                q = order_corners(cv2.boxPoints(rect))
                if LIGHT_MIN_ASPECT <= quad_aspect(q) <= ASPECT_RANGE[1]:  # landscape: no doors, windows, shirts
                    out.append(q / f)
        return out

    def locate(self, image: np.ndarray) -> list[PlateCandidate]:
        """Plate candidates in a BGR (or grey) image, best first, in the image's own pixel coordinates."""
        gray_full = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        H, W = gray_full.shape
        gray, s = shrink_to(gray_full, self.work_max_side)
        h, w = gray.shape
        proposals = [(q, 1.0, relaxed) for q, relaxed in self._edge_quads(gray)]
        proposals += [(q, 0.6, False) for q in self._text_quads(gray) + self._light_quads(gray)]
        cands: list[PlateCandidate] = []
        for q, weight, relaxed in proposals:
            q = np.clip(q, 0, [w - 1, h - 1]).astype(np.float32)
            x0, y0, x1, y1 = _box(q)
            if x1 - x0 < self.min_width * 0.8 or y1 - y0 < 8:
                continue
            patch = gray[y0:y1, x0:x1]
            lo, hi = np.percentile(patch, (5, 95))
            if hi - lo < self.min_contrast:  # tail lights, uniform panels: no dark print on a light plate
                continue
            a = quad_aspect(q)
            fit = np.exp(-min(abs(np.log(a / CAR_ASPECT)), abs(np.log(a / MOTO_ASPECT)))) if a > 0 else 0.0
            relaxed = relaxed or not USUAL_ASPECT[0] <= a <= USUAL_ASPECT[1]
            score = weight * fit * float(np.sqrt(cv2.contourArea(q))) * (hi - lo) / 255.0
            cands.append(PlateCandidate(quad=q / s, box=_box(q / s), score=score, kind=kind_of(q), relaxed=relaxed))
        cands.sort(key=lambda c: -c.score)
        kept: list[PlateCandidate] = []
        for c in cands:
            if len(kept) >= self.max_candidates:  # the rest would be cut: do not compare them with every kept one
                break
            if all(_iou(c.box, k.box) < SAME_REGION_IOU for k in kept):
                kept.append(c)
        if self.whole_image:  # close-ups and crops: the plate may fill the frame
            for f in (0.0, 0.15):
                q = np.float32([[W * f, H * f], [W * (1 - f), H * f], [W * (1 - f), H * (1 - f)],
                                [W * f, H * (1 - f)]])
                # USUAL_ASPECT, not ASPECT_RANGE: a portrait photo is not a close-up of a plate
                if USUAL_ASPECT[0] * 0.8 <= quad_aspect(q) <= USUAL_ASPECT[1] * 1.2:
                    kept.append(PlateCandidate(quad=q, box=_box(q), score=0.0, kind=kind_of(q)))
        normalise_scores(kept)
        return kept


class CascadeLocaliser:
    """OpenCV Haar plate cascade, refined by the contour localiser inside each (enlarged) hit."""

    name = "cascade"

    def __init__(self, cascade_file: str | Path | None = None, min_width: int = 40, max_candidates: int = 12) -> None:
        """Load the cascade (default: OpenCV's shipped Russian plate cascade); clear error when missing."""
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError("this OpenCV has no CascadeClassifier (OpenCV 5): install opencv-python-headless<5")
        default = Path(cv2.data.haarcascades) / "haarcascade_russian_plate_number.xml"
        path = Path(cascade_file) if cascade_file else default
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise RuntimeError(f"could not load the plate cascade from {path}")
        self.min_width = min_width
        self.max_candidates = max_candidates
        self._refine = ContourLocaliser(min_width=min_width, whole_image=False)

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
                out.append(PlateCandidate(quad=q, box=_box(q), score=1.0, kind=sub[0].kind))
            else:
                q = np.float32([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]])
                out.append(PlateCandidate(quad=q, box=_box(q), score=0.5, kind="car"))
        return out[: self.max_candidates]


def crop_candidates(crop: np.ndarray) -> list[np.ndarray]:
    """Quads worth reading inside a plate crop (a detector's box with margin): the contour localiser's best few,
    then the whole crop and a slightly inset crop (the reader picks the most confident)."""
    h, w = crop.shape[:2]
    loc = ContourLocaliser(min_width=max(20, w // 4), max_candidates=3, whole_image=False)
    quads = [c.quad for c in loc.locate(crop)]
    for f in (0.0, 0.08):
        quads.append(np.float32([[w * f, h * f], [w * (1 - f), h * f], [w * (1 - f), h * (1 - f)],
                                 [w * f, h * (1 - f)]]))
    return quads


def locate_in_crop(crop: np.ndarray) -> np.ndarray:
    """The single plate quad inside a plate crop; the whole crop if none is found."""
    return crop_candidates(crop)[0]


LOCALISER_REGISTRY: dict[str, Callable[..., Any]] = {
    "contour": ContourLocaliser,
    "cascade": CascadeLocaliser,
}
"""Localiser name -> constructor; :func:`make_localiser` builds from it."""


def make_localiser(name: str = "contour", **options: Any) -> Localiser:
    """Build the localiser registered as ``name``; ``options`` go to its constructor.

    Raises ValueError naming the known localisers when ``name`` is not registered.
    """
    try:
        factory = LOCALISER_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown localiser {name!r}: known localisers are "
                         f"{', '.join(sorted(LOCALISER_REGISTRY))}") from None
    return factory(**options)  # type: ignore[no-any-return]
