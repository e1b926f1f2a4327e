"""Render synthetic Thai licence plates (and street scenes holding one) with ground truth.

Used to measure OCR quality per degradation level and to feed the streaming tests a frame with a known
plate in it. Everything is deterministic per seed. Fonts come from Debian's ``fonts-thai-tlwg``.

Geometry: a plate is drawn on a canonical ``PLATE_W`` × ``PLATE_H`` canvas (34 × 15 cm, the Thai car plate);
:data:`LINE_BOXES` gives the registration and province line boxes as fractions of that canvas, so a reader
that rectifies a plate to the canonical canvas can crop each line without detecting text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from serve.plate.parse import PLATE_CONSONANTS, Plate
from serve.plate.provinces import PROVINCES

PLATE_W, PLATE_H = 680, 300
PLATE_ASPECT = PLATE_W / PLATE_H
# (x0, y0, x1, y1) fractions of the canonical plate canvas.
LINE_BOXES: dict[str, tuple[float, float, float, float]] = {
    "registration": (0.05, 0.07, 0.95, 0.60),
    "province": (0.08, 0.61, 0.92, 0.92),
}
FONT_DIRS = (Path("/usr/share/fonts/truetype/tlwg"), Path("/usr/share/fonts/opentype/tlwg"))
FONT_FILES = (
    "Garuda-Bold", "Loma-Bold", "Waree-Bold", "Umpush-Bold", "TlwgTypo-Bold", "Norasi-Bold",
    "Kinnari-Bold",
)

Level = Literal["clean", "mild", "moderate", "severe"]
LEVELS: tuple[Level, ...] = ("clean", "mild", "moderate", "severe")


@dataclass(frozen=True)
class PlateStyle:
    """Plate colours (RGB): background, text and border."""

    name: str
    background: tuple[int, int, int]
    text: tuple[int, int, int]


STYLES: tuple[PlateStyle, ...] = (
    PlateStyle("private", (250, 250, 247), (15, 15, 15)),  # white plate, black text: private cars
    PlateStyle("taxi", (250, 205, 20), (10, 10, 10)),  # yellow plate: taxis and public transport
    PlateStyle("pickup", (248, 250, 248), (0, 110, 45)),  # green text: private pick-ups / small trucks
    PlateStyle("public", (248, 248, 250), (20, 50, 160)),  # blue text: rental and public buses
)
_STYLE_P = (0.55, 0.2, 0.15, 0.1)


@dataclass(frozen=True)
class Degradation:
    """How one degradation level spoils a plate: ranges are sampled uniformly per plate."""

    plate_height: tuple[int, int]  # plate height in pixels after resampling
    blur_sigma: tuple[float, float]
    noise_sigma: tuple[float, float]
    perspective: float  # max corner jitter as a fraction of plate width
    night_p: float  # probability of a low-contrast night capture
    jpeg_quality: tuple[int, int]


DEGRADATIONS: dict[str, Degradation] = {
    "clean": Degradation((150, 150), (0.0, 0.0), (0.0, 0.0), 0.0, 0.0, (100, 100)),
    "mild": Degradation((70, 100), (0.3, 0.8), (2.0, 5.0), 0.03, 0.15, (80, 95)),
    "moderate": Degradation((45, 65), (0.7, 1.2), (5.0, 9.0), 0.06, 0.35, (60, 85)),
    "severe": Degradation((28, 42), (1.0, 1.7), (8.0, 15.0), 0.10, 0.6, (40, 70)),
}


@dataclass
class RenderedPlate:
    """A rendered plate crop and its truth: ``quad`` is the plate's corners (TL, TR, BR, BL) in ``image``."""

    image: np.ndarray  # BGR uint8, contiguous
    plate: Plate
    quad: np.ndarray  # (4, 2) float32
    style: str
    font: str
    level: str
    seed: int
    night: bool = False


@dataclass
class RenderedScene:
    """A street scene (BGR) with one composited plate: ``quad`` locates the plate, ``box`` is its bbox."""

    image: np.ndarray
    plate: Plate
    quad: np.ndarray
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    level: str
    seed: int
    extra: dict[str, object] = field(default_factory=dict)


class FontsMissingError(RuntimeError):
    """No Thai font was found; install Debian's fonts-thai-tlwg."""


@lru_cache(maxsize=1)
def font_paths() -> tuple[Path, ...]:
    """The Thai TLWG font files used for rendering (raises FontsMissingError if none is installed)."""
    found: list[Path] = []
    for name in FONT_FILES:
        for d in FONT_DIRS:
            for ext in (".ttf", ".otf"):
                p = d / f"{name}{ext}"
                if p.is_file():
                    found.append(p)
                    break
            else:
                continue
            break
    if not found:
        raise FontsMissingError(
            f"no Thai TLWG fonts in {', '.join(map(str, FONT_DIRS))}: install them with "
            "`apt-get install fonts-thai-tlwg`"
        )
    return tuple(found)


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM
                              if _has_raqm() else ImageFont.Layout.BASIC)


@lru_cache(maxsize=1)
def _has_raqm() -> bool:
    from PIL import features

    return bool(features.check("raqm"))


def random_plate(rng: np.random.Generator) -> Plate:
    """A random valid plate: category digit half the time, 1-2 consonants, number 1-9999, a province."""
    cat = str(rng.integers(1, 10)) if rng.random() < 0.5 else ""
    n_letters = 2 if rng.random() < 0.75 else 1
    letters = "".join(PLATE_CONSONANTS[int(i)] for i in rng.integers(0, len(PLATE_CONSONANTS), n_letters))
    number = str(int(rng.integers(1, 10000)))
    province = PROVINCES[int(rng.integers(0, len(PROVINCES)))]
    return Plate(category=cat, letters=letters, number=number, province=province)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font_path: str, box: tuple[int, int, int, int],
              fill: tuple[int, int, int], height_frac: float) -> None:
    """Draw ``text`` as large as fits ``box`` (ink height ≤ height_frac × box height), ink-centred."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    size = int(bh * 1.2)
    while size > 6:
        f = _font(font_path, size)
        lf, t, r, b = draw.textbbox((0, 0), text, font=f)
        if r - lf <= bw * 0.96 and b - t <= bh * height_frac:
            break
        size = int(size * 0.94)
    f = _font(font_path, size)
    lf, t, r, b = draw.textbbox((0, 0), text, font=f)
    draw.text((x0 + (bw - (r - lf)) / 2 - lf, y0 + (bh - (b - t)) / 2 - t), text, font=f, fill=fill)


def draw_plate(plate: Plate, font: Path | str, style: PlateStyle) -> np.ndarray:
    """The clean canonical plate (``PLATE_H`` × ``PLATE_W`` BGR) with border, registration and province."""
    img = Image.new("RGB", (PLATE_W, PLATE_H), style.background)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((4, 4, PLATE_W - 5, PLATE_H - 5), radius=18, outline=style.text, width=6)
    for line, text, frac in (("registration", plate.registration, 0.80), ("province", plate.province or "", 0.85)):
        fx0, fy0, fx1, fy1 = LINE_BOXES[line]
        box = (int(fx0 * PLATE_W), int(fy0 * PLATE_H), int(fx1 * PLATE_W), int(fy1 * PLATE_H))
        if text:
            _fit_text(d, text, str(font), box, style.text, frac)
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def _night(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Low light: compress contrast, darken with a gamma, leave a faint glare gradient."""
    f = img.astype(np.float32) / 255.0
    contrast = rng.uniform(0.35, 0.6)
    f = 0.5 + (f - 0.5) * contrast
    f = np.power(np.clip(f, 0, 1), rng.uniform(1.4, 2.2)) * rng.uniform(0.55, 0.85)
    w = f.shape[1]
    glare = np.linspace(rng.uniform(0, 0.08), 0, w, dtype=np.float32)[None, :, None]
    return np.clip((f + glare) * 255.0, 0, 255).astype(np.uint8)


def _spoil(img: np.ndarray, deg: Degradation, rng: np.random.Generator, night: bool) -> np.ndarray:
    """Blur, night contrast, sensor noise and JPEG compression (in that order, like a camera)."""
    sigma = rng.uniform(*deg.blur_sigma)
    if sigma > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if night:
        img = _night(img, rng)
    ns = rng.uniform(*deg.noise_sigma)
    if ns > 0:
        img = np.clip(img.astype(np.float32) + rng.normal(0, ns, img.shape), 0, 255).astype(np.uint8)
    q = int(rng.integers(deg.jpeg_quality[0], deg.jpeg_quality[1] + 1))
    if q < 100:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(img)


def _pick(rng: np.random.Generator, level: str) -> tuple[Degradation, PlateStyle, Path]:
    if level not in DEGRADATIONS:
        raise ValueError(f"unknown degradation level {level!r}: use one of {', '.join(LEVELS)}")
    style = STYLES[int(rng.choice(len(STYLES), p=_STYLE_P))]
    fonts = font_paths()
    return DEGRADATIONS[level], style, fonts[int(rng.integers(0, len(fonts)))]


def render_plate(seed: int, level: str = "mild", plate: Plate | None = None, margin: float = 0.12) -> RenderedPlate:
    """A plate crop as a plate detector would hand it to OCR: plate plus a margin of car around it.

    The plate text (unless given), font, colours, perspective, resolution, blur, night contrast, noise and
    JPEG quality are drawn from ``seed`` within the ranges of ``level`` (clean, mild, moderate, severe).
    """
    rng = np.random.default_rng(seed)
    plate = plate or random_plate(rng)
    deg, style, font = _pick(rng, level)
    clean = draw_plate(plate, font, style)
    mx, my = int(margin * PLATE_W), int(margin * PLATE_W)
    bg = np.array(rng.integers(30, 200, 3), dtype=np.uint8)
    canvas = np.empty((PLATE_H + 2 * my, PLATE_W + 2 * mx, 3), np.uint8)
    canvas[:] = bg
    src = np.float32([[0, 0], [PLATE_W, 0], [PLATE_W, PLATE_H], [0, PLATE_H]])
    jitter = rng.uniform(-deg.perspective, deg.perspective, (4, 2)) * PLATE_W
    dst = (src + np.float32([mx, my]) + jitter).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(clean, m, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((PLATE_H, PLATE_W), 255, np.uint8), m, (canvas.shape[1], canvas.shape[0]))
    canvas[mask > 127] = warped[mask > 127]
    target_h = int(rng.integers(deg.plate_height[0], deg.plate_height[1] + 1))
    scale = target_h / PLATE_H
    out = cv2.resize(canvas, (round(canvas.shape[1] * scale), round(canvas.shape[0] * scale)),
                     interpolation=cv2.INTER_AREA)
    night = bool(rng.random() < deg.night_p)
    out = _spoil(out, deg, rng, night)
    return RenderedPlate(image=out, plate=plate, quad=(dst * scale).astype(np.float32), style=style.name,
                         font=font.stem, level=level, seed=seed, night=night)


def composite_plate(background: np.ndarray, plate_img: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp a canonical plate image onto ``background`` (BGR) at ``quad`` (TL, TR, BR, BL); returns a copy."""
    h, w = background.shape[:2]
    ph, pw = plate_img.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    m = cv2.getPerspectiveTransform(src, np.asarray(quad, np.float32))
    warped = cv2.warpPerspective(plate_img, m, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (w, h), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    out = background.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha
    return np.ascontiguousarray(out.astype(np.uint8))


def _car_scene(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A street background with a car seen from behind; returns the image and the bumper centre + width."""
    img = np.zeros((h, w, 3), np.uint8)
    sky = np.linspace(rng.integers(150, 220), rng.integers(90, 150), h // 2).astype(np.uint8)
    img[: h // 2] = sky[:, None, None]
    img[h // 2:] = np.array(rng.integers(60, 110, 3), np.uint8)  # road
    for _ in range(int(rng.integers(3, 7))):  # buildings / poles / signs
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h // 2))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(20, w // 3)), h // 2),
                      tuple(int(c) for c in rng.integers(40, 230, 3)), -1)
    cv2.line(img, (0, int(h * 0.8)), (w, int(h * 0.78)), (220, 220, 220), 3)  # lane marking
    cw = int(w * rng.uniform(0.45, 0.6))
    ch = int(cw * rng.uniform(0.55, 0.7))
    cx = int(rng.integers(cw // 2 + 5, w - cw // 2 - 5))
    cy = int(h * rng.uniform(0.55, 0.62))
    colour = tuple(int(c) for c in rng.integers(20, 235, 3))
    x0, y0, x1, y1 = cx - cw // 2, cy - ch // 2, cx + cw // 2, cy + ch // 2
    for wx in (x0 + cw // 8, x1 - cw // 8):  # wheels
        cv2.ellipse(img, (wx, y1), (cw // 10, ch // 8), 0, 0, 360, (20, 20, 20), -1)
    cv2.rectangle(img, (x0, y0 + ch // 3), (x1, y1), colour, -1)  # body
    pts = np.array([[x0 + cw // 8, y0 + ch // 3], [x0 + cw // 4, y0], [x1 - cw // 4, y0], [x1 - cw // 8, y0 + ch // 3]])
    cv2.fillPoly(img, [pts], colour)  # cabin
    win = np.array([[x0 + cw // 6, y0 + ch // 3 - 4], [x0 + cw // 4 + 6, y0 + 6], [x1 - cw // 4 - 6, y0 + 6],
                    [x1 - cw // 6, y0 + ch // 3 - 4]])
    cv2.fillPoly(img, [win], (50, 45, 40))  # rear window
    for lx in (x0 + 6, x1 - 6 - cw // 7):  # tail lights
        cv2.rectangle(img, (lx, y0 + ch // 2 - 6), (lx + cw // 7, y0 + ch // 2 + 10), (30, 30, 200), -1)
    cv2.rectangle(img, (x0 - 4, y1 - ch // 7), (x1 + 4, y1), (35, 35, 35), -1)  # bumper
    return img, (cx, y0 + int(ch * 0.72), cw)


SCENE_PLATE_WIDTH = {"clean": (0.34, 0.40), "mild": (0.26, 0.32), "moderate": (0.19, 0.24), "severe": (0.13, 0.17)}


def render_scene(seed: int, level: str = "mild", size: tuple[int, int] = (640, 480),
                 plate: Plate | None = None) -> RenderedScene:
    """A street scene (``size`` = width, height) with one car whose plate is ``plate`` (random if None).

    The plate's on-screen width shrinks with the level and the whole frame gets the level's blur, noise,
    night contrast and JPEG compression, so the scene exercises localisation and OCR together.
    """
    rng = np.random.default_rng(seed)
    plate = plate or random_plate(rng)
    deg, style, font = _pick(rng, level)
    w, h = size
    img, (px, py, car_w) = _car_scene(rng, w, h)
    lo, hi = SCENE_PLATE_WIDTH[level]
    pw = min(car_w * 0.6, w * rng.uniform(lo, hi))
    ph = pw / PLATE_ASPECT
    base = np.float32([[px - pw / 2, py - ph / 2], [px + pw / 2, py - ph / 2], [px + pw / 2, py + ph / 2],
                       [px - pw / 2, py + ph / 2]])
    quad = (base + rng.uniform(-deg.perspective, deg.perspective, (4, 2)) * pw).astype(np.float32)
    img = composite_plate(img, draw_plate(plate, font, style), quad)
    night = bool(rng.random() < deg.night_p)
    img = _spoil(img, DEGRADATIONS[level], rng, night)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return RenderedScene(image=img, plate=plate, quad=quad, box=(int(x0), int(y0), int(x1), int(y1)), level=level,
                         seed=seed, extra={"style": style.name, "font": font.stem, "night": night})


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image (for HTTP tests and the stream simulator)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return io.BytesIO(buf.tobytes()).getvalue()
