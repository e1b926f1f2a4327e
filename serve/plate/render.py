"""Render synthetic Thai licence plates, as they appear on Thai roads and in photos, with ground truth.

Used to train the recogniser (:mod:`serve.plate.train`), to measure OCR quality per plate type and degradation
level on held-out fonts and backgrounds (:mod:`serve.plate.evaluate`), and to draw the simulated city's plates.
Everything is deterministic per seed.

Plate types (:data:`PLATE_TYPES`): ``private`` (black on white), ``green`` (commercial: green on white),
``yellow`` (taxi and public transport: black on yellow, with or without consonants: ``32-0394``), ``red``
(temporary dealer plates: red on white, ``ผ-9324``), ``blue`` (rental / buses), ``picture`` (special auction
plates on a picture background) and ``motorcycle`` (3 rows: series, province, number). Series: one or two
consonants with or without a leading digit, three consonants (motorcycles), digits only; numbers of 1-4
digits; the 77 provinces and region lines (เบตง).

Typefaces come from :mod:`serve.plate.fonts`; ``fonts="train"``, ``"heldout"`` or ``"validation"`` picks the split
(the held-out and validation families never reach training). Backgrounds come from :mod:`serve.plate.backgrounds`:
held-out with held-out fonts, the training ones otherwise (:func:`~serve.plate.backgrounds.background_split`).
Each glyph is drawn on its own, so weight (stroke), width (horizontal scale) and spacing vary per plate.

Photo effects (:class:`Degradation`): plate width in pixels, 3-D rotation (yaw/pitch up to ±30°) and roll,
defocus and motion blur, JPEG quality, sensor noise, night / IR greyscale, low contrast, glare, dirt, plate
frames, screws, shadow bands and partial occlusion.

Geometry: a car plate is drawn on a canonical ``PLATE_W`` × ``PLATE_H`` canvas (34 × 15 cm); a motorcycle
plate on ``MOTO_W`` × ``MOTO_H`` (22 × 17 cm). :data:`LINE_BOXES` gives the nominal car line boxes as fractions
of the canvas (the drawn lines jitter around them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from serve.plate.backgrounds import background_split, random_patch
from serve.plate.fonts import FontFace, FontsMissingError, FontSplit, font_faces
from serve.plate.parse import PLATE_CONSONANTS, Plate
from serve.plate.provinces import PROVINCES, REGIONS

__all__ = ["DEGRADATIONS", "LEVELS", "LINE_BOXES", "PLATE_ASPECT", "PLATE_H", "PLATE_TYPES", "PLATE_W",
           "STYLES", "FontsMissingError", "RenderedPlate", "RenderedScene", "composite_plate", "draw_plate",
           "encode_jpeg", "font_paths", "plate_image", "random_plate", "render_plate", "render_scene"]

PLATE_W, PLATE_H = 680, 300
PLATE_ASPECT = PLATE_W / PLATE_H
MOTO_W, MOTO_H = 440, 340
MOTO_ASPECT = MOTO_W / MOTO_H
# (x0, y0, x1, y1) fractions of the canonical car plate canvas.
LINE_BOXES: dict[str, tuple[float, float, float, float]] = {
    "registration": (0.05, 0.07, 0.95, 0.60),
    "province": (0.08, 0.61, 0.92, 0.92),
}
MOTO_BOXES: dict[str, tuple[float, float, float, float]] = {
    "series": (0.12, 0.06, 0.88, 0.36),
    "province": (0.08, 0.38, 0.92, 0.58),
    "number": (0.08, 0.60, 0.92, 0.94),
}

Level = Literal["clean", "mild", "moderate", "severe"]
LEVELS: tuple[Level, ...] = ("clean", "mild", "moderate", "severe")
PlateType = Literal["private", "green", "yellow", "red", "blue", "picture", "motorcycle"]
PLATE_TYPES: tuple[PlateType, ...] = ("private", "green", "yellow", "red", "blue", "picture", "motorcycle")
TYPE_P = (0.30, 0.12, 0.13, 0.10, 0.05, 0.12, 0.18)
"""How often each plate type is drawn when none is asked for (training and the test set)."""


@dataclass(frozen=True)
class PlateStyle:
    """Plate colours (RGB): background and text."""

    name: str
    background: tuple[int, int, int]
    text: tuple[int, int, int]


STYLES: tuple[PlateStyle, ...] = (
    PlateStyle("private", (250, 250, 247), (15, 15, 15)),  # white plate, black text: private cars
    PlateStyle("yellow", (250, 205, 20), (10, 10, 10)),  # yellow plate: taxis and public transport
    PlateStyle("green", (248, 250, 248), (0, 110, 45)),  # green text: commercial vehicles
    PlateStyle("blue", (248, 248, 250), (20, 50, 160)),  # blue text: rental and public buses
    PlateStyle("red", (250, 248, 246), (200, 20, 25)),  # red text: temporary dealer plates
    PlateStyle("picture", (245, 245, 245), (20, 20, 30)),  # auction plates: dark text on a picture
)
_STYLE_BY_NAME = {s.name: s for s in STYLES}


@dataclass(frozen=True)
class Degradation:
    """How a level spoils a plate photo: ranges are sampled uniformly per plate, ``*_p`` are probabilities."""

    width: tuple[int, int]  # plate width in pixels in the photo
    yaw: float  # max rotation about the vertical axis, degrees
    pitch: float  # max rotation about the horizontal axis, degrees
    roll: float  # max in-plane rotation, degrees
    blur_sigma: tuple[float, float]
    motion_p: float
    noise_sigma: tuple[float, float]
    jpeg_quality: tuple[int, int]
    night_p: float
    glare_p: float
    shadow_p: float
    dirt_p: float
    occlusion_p: float


DEGRADATIONS: dict[str, Degradation] = {
    "clean": Degradation((220, 300), 5, 5, 2, (0.0, 0.3), 0.0, (0.0, 1.5), (90, 95), 0.0, 0.0, 0.0, 0.0, 0.0),
    "mild": Degradation((130, 220), 15, 10, 5, (0.3, 0.9), 0.05, (2.0, 5.0), (55, 90), 0.15, 0.1, 0.2, 0.1, 0.0),
    "moderate": Degradation((90, 130), 25, 15, 8, (0.6, 1.3), 0.2, (4.0, 9.0), (35, 70), 0.3, 0.2, 0.3, 0.2,
                            0.05),
    "severe": Degradation((64, 96), 30, 20, 10, (0.9, 1.7), 0.35, (7.0, 13.0), (25, 55), 0.45, 0.3, 0.35, 0.3,
                          0.1),
}
TRAIN_DEGRADATION = Degradation((40, 320), 35, 25, 12, (0.0, 2.0), 0.25, (0.0, 14.0), (12, 95), 0.3, 0.25, 0.3,
                                0.3, 0.12)
"""The training mixture: wider than every test level on every axis."""


@dataclass
class RenderedPlate:
    """A plate photo crop and its truth: ``quad`` is the plate's corners (TL, TR, BR, BL) in ``image``."""

    image: np.ndarray  # BGR uint8, contiguous
    plate: Plate
    quad: np.ndarray  # (4, 2) float32
    style: str  # the plate type
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


def font_paths(split: FontSplit = "train") -> tuple[Path, ...]:
    """The font files of a split that draw Thai and digits alike (usable as ``draw_plate``'s ``font``); raises
    FontsMissingError if none is installed. Faces with a separate digit file are reached through ``font_faces``."""
    return tuple(f.thai for f in font_faces(split) if f.thai == f.digits)


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM
                              if _has_raqm() else ImageFont.Layout.BASIC)


@lru_cache(maxsize=1)
def _has_raqm() -> bool:
    from PIL import features

    return bool(features.check("raqm"))


def _consonants(rng: np.random.Generator, n: int) -> str:
    return "".join(PLATE_CONSONANTS[int(i)] for i in rng.integers(0, len(PLATE_CONSONANTS), n))


def _number(rng: np.random.Generator, max_digits: int = 4) -> str:
    digits = int(rng.choice(np.arange(1, max_digits + 1), p=np.array([1, 2, 3, 8][:max_digits]) /
                            sum([1, 2, 3, 8][:max_digits])))
    return str(int(rng.integers(10 ** (digits - 1) if digits > 1 else 1, 10 ** digits)))


def random_plate(rng: np.random.Generator, plate_type: PlateType | None = None) -> Plate:
    """A random valid plate of ``plate_type`` (default: private car series) with a province or region line."""
    t = plate_type or "private"
    line2 = {"province": PROVINCES[int(rng.integers(0, len(PROVINCES)))], "region": None}
    if rng.random() < 0.04:
        line2 = {"province": None, "region": list(REGIONS)[int(rng.integers(0, len(REGIONS)))]}
    if t == "motorcycle":
        r = rng.random()
        cat, letters = ("", _consonants(rng, 3)) if r < 0.4 else (str(rng.integers(1, 10)), _consonants(rng, 2)) \
            if r < 0.75 else ("", _consonants(rng, 2))
        return Plate(category=cat, letters=letters, number=_number(rng, 3), vehicle="motorcycle", **line2)
    if t in ("yellow", "blue") and rng.random() < 0.5:
        return Plate(category=str(rng.integers(10, 100)), letters="", number=f"{int(rng.integers(0, 10000)):04d}",
                     vehicle="car", **line2)
    if t == "red":
        letters = _consonants(rng, 1 if rng.random() < 0.7 else 2)
        return Plate(letters=letters, number=_number(rng), vehicle="car", **line2)
    cat = str(rng.integers(1, 10)) if rng.random() < 0.45 else ""
    letters = _consonants(rng, 2 if rng.random() < 0.85 else 1)
    return Plate(category=cat, letters=letters, number=_number(rng), vehicle="car", **line2)


# ---------------------------------------------------------------------------------------------- drawing text


@dataclass(frozen=True)
class TextLook:
    """How one plate's text is drawn: horizontal scale, letter spacing (fraction of height), stroke width, and the
    strength of each glyph's shape change (:func:`reshape_glyph`; 0 = the glyphs as the font draws them)."""

    x_scale: float = 1.0
    spacing: float = 0.06
    stroke: float = 0.0  # stroke width as a fraction of the font size
    reshape: float = 0.0

    @staticmethod
    def sample(rng: np.random.Generator) -> TextLook:
        """A random look: condensed to wide, tight to loose, regular to heavy."""
        return TextLook(float(rng.uniform(0.7, 1.25)), float(rng.uniform(-0.02, 0.16)),
                        float(rng.choice([0.0, 0.0, rng.uniform(0.005, 0.035)])))


_SIZE = 96  # font size glyphs are drawn at before scaling into the plate
_BASELINE = int(_SIZE * 1.15)
"""Row of the baseline in a glyph mask: room above it for the tallest glyph of any installed Thai face (1.01 em)."""
_GLYPH_H = int(_SIZE * 1.7)
"""Height of a glyph mask: room below the baseline for the deepest descender (ฎ ฏ ญ ฐ ฤ: 0.47 em) and a stroke."""


@lru_cache(maxsize=4096)
def _glyph_mask(path: str, char: str, stroke: int) -> np.ndarray:
    """Ink mask (uint8) of one character at ``_SIZE`` px, cropped to its ink horizontally, full line height.

    Every glyph sits on the same baseline (row :data:`_BASELINE` of a :data:`_GLYPH_H`-row mask), so a line's
    glyphs align and no descender is cut: drawn from the font's ascender line, the tails of ฎ ฏ ญ ฐ fell off the
    mask in 94 of 127 faces, and a clipped ฎ or ฏ is a ภ, a clipped ญ a ณ (a training label the image contradicts).
    """
    f = _font(path, _SIZE)
    img = Image.new("L", (_SIZE * 2, _GLYPH_H), 0)
    d = ImageDraw.Draw(img)
    d.text((_SIZE // 2, _BASELINE), char, font=f, fill=255, stroke_width=stroke, stroke_fill=255, anchor="ls")
    a = np.asarray(img)
    cols = np.flatnonzero(a.max(axis=0) > 0)
    if cols.size == 0:
        return np.zeros((a.shape[0], _SIZE // 3), np.uint8)
    return np.ascontiguousarray(a[:, cols[0]: cols[-1] + 1])


def reshape_glyph(g: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """One glyph's shape changed as a different typeface might draw it (training renders only, data version 8).

    ``g`` is a glyph mask of :func:`_glyph_mask` ((:data:`_GLYPH_H`, w) uint8, baseline at row :data:`_BASELINE`);
    ``strength`` in [0, 1] scales every change. The glyph is, about the middle of its baseline: scaled in width by
    up to ±15 % and in height by -10..+6 % (x-height), sheared by up to ±0.15 (slant), turned by up to ±3°, moved
    off the baseline by up to ±3 px (of 96 px glyphs), and bent by a smooth elastic field (displacements of typically
    under 3 px, correlated over about 24 px, so a stroke bends but keeps its topology: a loop stays a loop, a tail
    a tail). This follows the elastic distortion of Simard, Steinkraus & Platt (ICDAR 2003) for handwritten digits,
    here on printed glyphs; the smooth field is a coarse random grid enlarged by cubic interpolation rather than a
    Gaussian-smoothed dense one. Returns a mask of the same height, cropped to its ink horizontally.
    """
    h, w = g.shape
    pad = _SIZE // 4
    src = cv2.copyMakeBorder(g, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    ww = w + 2 * pad
    sx = 1 + strength * rng.uniform(-0.15, 0.15)
    sy = 1 + strength * rng.uniform(-0.10, 0.06)
    shear = strength * rng.uniform(-0.15, 0.15)
    turn = np.deg2rad(strength * rng.uniform(-3.0, 3.0))
    shift = strength * rng.uniform(-3.0, 3.0)
    cx, cy = ww / 2, float(_BASELINE)
    c, s = np.cos(turn), np.sin(turn)
    forward = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    inverse = np.linalg.inv(forward)
    ys, xs = np.mgrid[0:h, 0:ww].astype(np.float32)
    u, v = xs - cx, ys - cy - shift
    alpha = strength * rng.uniform(0.5, 1.5)
    bend = [cv2.resize(rng.standard_normal((h // 24 + 2, ww // 24 + 2)).astype(np.float32), (ww, h),
                        interpolation=cv2.INTER_CUBIC) * alpha for _ in range(2)]
    map_x = (inverse[0, 0] * u + inverse[0, 1] * v + cx + bend[0]).astype(np.float32)
    map_y = (inverse[1, 0] * u + inverse[1, 1] * v + cy + bend[1]).astype(np.float32)
    out = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cols = np.flatnonzero(out.max(axis=0) > 0)
    if cols.size == 0:
        return g
    return np.ascontiguousarray(out[:, cols[0]: cols[-1] + 1])


def _line_mask(text: str, face: FontFace, look: TextLook, rng: np.random.Generator | None = None) -> np.ndarray:
    """A registration-style line drawn glyph by glyph: Thai from the Thai file, digits/'-' from the digit file.

    A space is a gap of a third of the height. With ``rng`` and a ``look.reshape`` above 0 each glyph's shape is
    changed by :func:`reshape_glyph`. Returns the ink mask cropped to its ink rows and columns.
    """
    stroke = round(look.stroke * _SIZE)
    parts: list[np.ndarray] = []
    gap = max(1, round(look.spacing * _SIZE))
    h = _GLYPH_H
    for ch in text:
        if ch == " ":
            parts.append(np.zeros((h, _SIZE // 3), np.uint8))
            continue
        path = str(face.digits if (ch.isdigit() or ch == "-") else face.thai)
        g = _glyph_mask(path, ch, stroke)
        if rng is not None and look.reshape > 0:
            g = reshape_glyph(g, rng, look.reshape)
        if ch == "-":  # a dash narrower than a digit, centred
            parts.append(np.zeros((h, gap), np.uint8))
        parts.append(g)
        parts.append(np.zeros((h, max(0, gap)), np.uint8))
    m = np.hstack(parts[:-1]) if len(parts) > 1 else parts[0]
    return _crop_ink(m)


def _crop_ink(m: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(m.max(axis=1) > 0), np.flatnonzero(m.max(axis=0) > 0)
    if rows.size == 0:
        return m[:1, :1]
    return np.ascontiguousarray(m[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1])


@lru_cache(maxsize=2048)
def _word_mask(path: str, text: str, stroke: int) -> np.ndarray:
    """A Thai word (vowels and tone marks shaped by raqm) as an ink mask cropped to its ink."""
    f = _font(path, _SIZE)
    lf, t, r, b = f.getbbox(text, stroke_width=stroke)
    img = Image.new("L", (r - lf + 8, b - t + 8), 0)
    ImageDraw.Draw(img).text((4 - lf, 4 - t), text, font=f, fill=255, stroke_width=stroke, stroke_fill=255)
    return _crop_ink(np.asarray(img))


def _place(canvas_mask: np.ndarray, ink: np.ndarray, box: tuple[int, int, int, int], x_scale: float,
           height_frac: float, rng: np.random.Generator | None) -> None:
    """Scale ``ink`` into ``box`` (ink height = height_frac × box height, width ≤ box) and max-blend it in."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    ih, iw = ink.shape
    th = bh * height_frac
    tw = iw * (th / ih) * x_scale
    if tw > bw:
        th, tw = th * bw / tw, bw
    th_i, tw_i = max(2, round(th)), max(2, round(tw))
    g = cv2.resize(ink, (tw_i, th_i), interpolation=cv2.INTER_AREA)
    jx = rng.uniform(-0.5, 0.5) * (bw - tw_i) * 0.3 if rng is not None else 0.0
    jy = rng.uniform(-0.5, 0.5) * (bh - th_i) * 0.6 if rng is not None else 0.0
    px, py = round(x0 + (bw - tw_i) / 2 + jx), round(y0 + (bh - th_i) / 2 + jy)
    px, py = max(0, min(canvas_mask.shape[1] - tw_i, px)), max(0, min(canvas_mask.shape[0] - th_i, py))
    region = canvas_mask[py: py + th_i, px: px + tw_i]
    np.maximum(region, g[: region.shape[0], : region.shape[1]], out=region)


def _boxes(layout: str, w: int, h: int, rng: np.random.Generator | None) -> dict[str, tuple[int, int, int, int]]:
    base = MOTO_BOXES if layout == "motorcycle" else LINE_BOXES
    out = {}
    for k, (fx0, fy0, fx1, fy1) in base.items():
        j = rng.uniform(-0.025, 0.025, 4) if rng is not None else np.zeros(4)
        out[k] = (int((fx0 + j[0]) * w), int((fy0 + j[1]) * h), int((fx1 + j[2]) * w), int((fy1 + j[3]) * h))
    return out


def registration_text(plate: Plate, dash: bool = False) -> str:
    """The registration as drawn on a car plate: ``1กข 1234``, ``ผ-9324`` with ``dash``, ``32-0394``."""
    if not plate.letters:
        return f"{plate.category}-{plate.number}"
    return f"{plate.category}{plate.letters}{'-' if dash else ' '}{plate.number}"


def draw_plate(plate: Plate, font: FontFace | Path | str, style: PlateStyle | str = "private",
               layout: str | None = None, rng: np.random.Generator | None = None, scale: float = 1.0,
               picture: np.ndarray | None = None, dash: bool | None = None, film: bool = False,
               reshape: bool = False) -> np.ndarray:
    """The clean plate (BGR) on its canonical canvas (car ``PLATE_H`` × ``PLATE_W`` or motorcycle ``MOTO_H`` ×
    ``MOTO_W``, times ``scale``), with border, screws and text.

    ``font`` is a :class:`~serve.plate.fonts.FontFace` or a font file that has both Thai and digits. ``rng``
    varies the look (glyph width, spacing, weight, line positions, border); without it the look is nominal.
    ``picture`` is the background of an auction (picture) plate. ``layout`` defaults to the plate's vehicle.
    ``dash`` draws 'ผ-9324' instead of 'ผ 9324' (default: red dealer plates have the dash). ``film`` (with ``rng``)
    adds what real plates show beyond the print: embossed (raised, shaded) glyphs, the faint background pattern of
    the reflective film, ink colour and fading variation (used for training; the held-out test set is drawn
    without it so its figures stay comparable). ``reshape`` (with ``rng``, training only, like ``film``) changes the
    shape of each registration glyph (:func:`reshape_glyph`) at a strength drawn from 0.3-1 for the plate.
    """
    face = font if isinstance(font, FontFace) else FontFace(Path(font).stem, "file", Path(font), Path(font))
    st = _STYLE_BY_NAME[style] if isinstance(style, str) else style
    layout = layout or ("motorcycle" if plate.vehicle == "motorcycle" else "car")
    cw, ch = (MOTO_W, MOTO_H) if layout == "motorcycle" else (PLATE_W, PLATE_H)
    w, h = round(cw * scale), round(ch * scale)
    look = TextLook.sample(rng) if rng is not None else TextLook()
    if reshape and rng is not None:
        look = replace(look, reshape=float(rng.uniform(0.3, 1.0)))
    mask = np.zeros((h, w), np.uint8)
    boxes = _boxes(layout, w, h, rng)
    dash = st.name == "red" if dash is None else dash
    line2 = plate.line2 or ""
    stroke = round(look.stroke * _SIZE)
    if layout == "motorcycle":
        _place(mask, _line_mask(f"{plate.category}{plate.letters}", face, look, rng), boxes["series"],
               look.x_scale, 0.85, rng)
        _place(mask, _line_mask(plate.number, face, look, rng), boxes["number"], look.x_scale, 0.9, rng)
        prov_box = boxes["province"]
    else:
        _place(mask, _line_mask(registration_text(plate, dash), face, look, rng), boxes["registration"], look.x_scale,
               0.80 if rng is None else rng.uniform(0.7, 0.9), rng)
        prov_box = boxes["province"]
    if line2:
        _place(mask, _word_mask(str(face.thai), line2, max(0, stroke // 2)), prov_box, 1.0,
               0.85 if rng is None else rng.uniform(0.7, 0.95), rng)
    # background
    if st.name == "picture":
        bg = picture if picture is not None else _gradient(w, h, rng or np.random.default_rng(0))
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        wash = 0.35 if rng is None else rng.uniform(0.2, 0.6)
        img = bg * wash + 255.0 * (1 - wash)
    else:
        img = np.empty((h, w, 3), np.float32)
        img[:] = st.background[::-1]
    ink = np.asarray(st.text[::-1], np.float32)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    if film and rng is not None:
        img, ink, a = _film(img, ink, a, rng)
    img = img * (1 - a) + ink * a
    # border (sometimes doubled) and the two screw holes at the top
    bw_ = max(1, round(h * (0.02 if rng is None else rng.uniform(0.008, 0.03))))
    inset = max(2, round(h * 0.015))
    colour = tuple(float(c) for c in st.text[::-1])
    if rng is None or rng.random() < 0.9:
        cv2.rectangle(img, (inset, inset), (w - 1 - inset, h - 1 - inset), colour, bw_, cv2.LINE_AA)
    if rng is not None and rng.random() < 0.2:
        i2 = inset + 2 * bw_ + 1
        cv2.rectangle(img, (i2, i2), (w - 1 - i2, h - 1 - i2), colour, max(1, bw_ // 2), cv2.LINE_AA)
    if rng is not None and rng.random() < 0.6:
        r = max(1, round(h * 0.025))
        for sx in (0.2, 0.8) if layout == "car" else (0.12, 0.88):
            cv2.circle(img, (round(sx * w), round(0.045 * h) + r), r, (150.0, 150.0, 150.0), -1, cv2.LINE_AA)
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def _film(img: np.ndarray, ink: np.ndarray, a: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflective film and embossing: a faint background pattern, shaded raised glyphs, ink colour and fading."""
    h, w = img.shape[:2]
    if rng.random() < 0.5:  # the film's faint pattern (guilloche waves / emblem watermark), a few grey levels deep
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        f1, f2 = rng.uniform(0.02, 0.12, 2)
        pat = np.sin(xx * f1 + np.sin(yy * f2) * rng.uniform(1, 6)) * np.cos(yy * rng.uniform(0.01, 0.08))
        if rng.random() < 0.4:  # a round emblem watermark in the middle
            cx, cy, r = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.3, 0.7), h * rng.uniform(0.2, 0.4)
            pat += 1.5 * (np.abs(np.hypot(xx - cx, yy - cy) - r) < max(1.0, 0.03 * h))
        img = img - rng.uniform(4, 22) * pat[..., None]
    if rng.random() < 0.5:  # embossed glyphs: light on one side, shadow on the other
        d = max(1, round(h * rng.uniform(0.004, 0.012)))
        m = a[..., 0]
        lit = np.clip(np.roll(m, (-d, -d), (0, 1)) - m, 0, 1)
        shade = np.clip(np.roll(m, (d, d), (0, 1)) - m, 0, 1)
        img = img + (rng.uniform(20, 60) * lit - rng.uniform(20, 70) * shade)[..., None]
    ink = np.clip(ink + rng.normal(0, 12, 3) + rng.uniform(0, 45), 0, 255).astype(np.float32)  # faded / dirty ink
    a = a * rng.uniform(0.8, 1.0)
    return np.clip(img, 0, 255), ink, a


def _gradient(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    c0, c1 = rng.integers(60, 255, 3).astype(np.float32), rng.integers(60, 255, 3).astype(np.float32)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    return np.repeat((c0 * (1 - t) + c1 * t), h, axis=0).astype(np.uint8)


def plate_image(plate: Plate, seed: int, fonts: FontSplit = "heldout", plate_type: PlateType | None = None,
                scale: float = 1.0) -> tuple[np.ndarray, str]:
    """The clean plate image (BGR) of ``plate`` in a face, look and colours drawn from ``seed`` and ``fonts``.

    Returns (image, plate type). Used by the simulated city (held-out fonts and backgrounds by default).
    """
    rng = np.random.default_rng(seed)
    face = _pick_face(rng, fonts)
    ptype = plate_type or _type_for(plate, rng)
    style = "private" if ptype == "motorcycle" else ptype
    pic = random_patch(rng, 160, 80, background_split(fonts)) if style == "picture" else None
    layout = "motorcycle" if ptype == "motorcycle" or plate.vehicle == "motorcycle" else "car"
    return draw_plate(plate, face, style, layout, rng, scale, pic), ptype


def _type_for(plate: Plate, rng: np.random.Generator) -> PlateType:
    if plate.vehicle == "motorcycle" or len(plate.letters) == 3:
        return "motorcycle"
    if not plate.letters:
        return "yellow"
    names: tuple[PlateType, ...] = ("private", "green", "yellow", "red", "blue", "picture")
    p = np.array(TYPE_P[:6]) / sum(TYPE_P[:6])
    return names[int(rng.choice(len(names), p=p))]


def _pick_face(rng: np.random.Generator, fonts: FontSplit) -> FontFace:
    faces = font_faces(fonts)
    # families weigh the same whatever their number of weights
    fams = sorted({f.family for f in faces})
    fam = fams[int(rng.integers(len(fams)))]
    options = [f for f in faces if f.family == fam]
    bold = [f for f in options if f.weight in ("bold", "600", "700", "800")]
    pool = bold if bold and rng.random() < 0.75 else options
    return pool[int(rng.integers(len(pool)))]


# ---------------------------------------------------------------------------------------------- photo effects


def _project(w: float, h: float, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a ``w`` × ``h`` plate rotated in 3-D (degrees) and seen by a pinhole camera,
    centred on the origin, in units of the plate."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    pts = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]])
    pts = pts @ (rz @ rx @ ry).T
    f = 2.2 * w  # a normal lens a few plate widths away
    z = pts[:, 2] + f
    return np.stack([pts[:, 0] * f / z, pts[:, 1] * f / z], axis=1).astype(np.float32)


def _motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    k = cv2.warpAffine(k, m, (length, length))
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))


def spoil(img: np.ndarray, deg: Degradation, rng: np.random.Generator,
          quad: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Apply the camera: shadow, glare, dirt, night/IR, blur, noise, JPEG (in that order). Returns (image, night)."""
    h, w = img.shape[:2]
    f = img.astype(np.float32)
    if rng.random() < deg.shadow_p:  # a shadow band across the plate (a pole, the car's own body)
        x0 = rng.uniform(-0.3, 1.0) * w
        band = np.zeros((h, w), np.float32)
        pts = np.array([[x0, 0], [x0 + rng.uniform(0.1, 0.6) * w, 0],
                        [x0 + rng.uniform(0.1, 0.6) * w + rng.uniform(-0.3, 0.3) * w, h],
                        [x0 + rng.uniform(-0.3, 0.3) * w, h]], np.int32)
        cv2.fillPoly(band, [pts], 1.0)
        band = cv2.GaussianBlur(band, (0, 0), max(1.0, 0.02 * w))
        f *= (1 - rng.uniform(0.25, 0.6) * band)[..., None]
    if rng.random() < deg.glare_p:  # a specular spot
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        s = rng.uniform(0.05, 0.3) * w
        f += (rng.uniform(60, 180) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)))[..., None]
    if rng.random() < deg.dirt_p:  # mud specks
        n = int(rng.integers(5, 40))
        for _ in range(n):
            cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = max(1, int(rng.uniform(0.003, 0.015) * w))
            cv2.circle(f, (cx, cy), r, tuple(float(c) for c in rng.uniform(40, 110, 3)), -1, cv2.LINE_AA)
        f = f * rng.uniform(0.8, 1.0) + rng.uniform(0, 25)
    # exposure and contrast
    f = (f - 128) * rng.uniform(0.6, 1.2) + 128 + rng.uniform(-35, 35)
    night = bool(rng.random() < deg.night_p)
    if night:
        f = np.clip(f, 0, 255) / 255.0
        if rng.random() < 0.5:  # IR camera: greyscale, bright plate
            g = f.mean(axis=2, keepdims=True)
            f = np.repeat(np.power(g, rng.uniform(0.6, 1.0)), 3, axis=2)
        else:  # low light: low contrast, dark, warm cast
            f = 0.5 + (f - 0.5) * rng.uniform(0.35, 0.7)
            f = np.power(np.clip(f, 0, 1), rng.uniform(1.3, 2.2)) * rng.uniform(0.5, 0.85)
            f *= np.array([rng.uniform(0.7, 1.0), rng.uniform(0.85, 1.0), 1.0], np.float32)
        f *= 255.0
    f = np.clip(f, 0, 255)
    sigma = rng.uniform(*deg.blur_sigma)
    if sigma > 0.05:
        f = cv2.GaussianBlur(f, (0, 0), sigma)
    if rng.random() < deg.motion_p:
        f = _motion_blur(f, int(rng.integers(3, max(4, int(0.05 * w) + 4))), float(rng.uniform(-20, 20)))
    ns = rng.uniform(*deg.noise_sigma)
    if ns > 0:
        f = f + rng.normal(0, ns, f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    q = int(rng.integers(deg.jpeg_quality[0], deg.jpeg_quality[1] + 1))
    if q < 100:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(out), night


def _occlude(img: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> None:
    """Cover a little of the plate's edge (a tow bar, a bumper sticker, a bike's mudguard), in place."""
    tl, tr, br, bl = quad
    side = int(rng.integers(4))
    t0 = rng.uniform(0, 0.8)
    a, b = [(tl, tr), (tr, br), (br, bl), (bl, tl)][side]
    p0, p1 = a + (b - a) * t0, a + (b - a) * min(1.0, t0 + rng.uniform(0.1, 0.25))
    c = (tl + tr + br + bl) / 4
    depth = rng.uniform(0.05, 0.12)
    pts = np.array([p0, p1, p1 + (c - p1) * depth, p0 + (c - p0) * depth], np.int32)
    cv2.fillPoly(img, [pts], tuple(int(x) for x in rng.integers(10, 120, 3)), cv2.LINE_AA)


def photograph(plate_img: np.ndarray, deg: Degradation, rng: np.random.Generator, split: FontSplit = "train",
               margin: tuple[float, float] = (0.15, 0.6), frame_text: bool = False
               ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Put a clean plate image on a background patch in 3-D perspective and photograph it at ``deg``.

    ``frame_text`` sometimes gives the plate frame a dealer's strip of text below or above the plate (training).
    Returns (BGR photo, plate corners TL, TR, BR, BL in the photo, night).
    """
    ph, pw = plate_img.shape[:2]
    width = rng.uniform(*deg.width)
    hh = width * ph / pw
    quad = _project(width, hh, rng.uniform(-deg.yaw, deg.yaw), rng.uniform(-deg.pitch, deg.pitch),
                    rng.uniform(-deg.roll, deg.roll))
    m = rng.uniform(*margin) * width
    lo = quad.min(axis=0) - m * np.array([1.0, 0.6]) * rng.uniform(0.5, 1.0, 2)
    hi = quad.max(axis=0) + m * np.array([1.0, 0.6]) * rng.uniform(0.5, 1.0, 2)
    quad = (quad - lo).astype(np.float32)
    cw, ch = int(np.ceil(hi[0] - lo[0])), int(np.ceil(hi[1] - lo[1]))
    bg_split = background_split(split)
    r = rng.random()
    if r < 0.55:
        canvas = random_patch(rng, cw, ch, bg_split)
    else:  # a vehicle body around the plate: paint colour, a bumper edge, a light gradient
        canvas = np.empty((ch, cw, 3), np.uint8)
        canvas[:] = rng.integers(10, 240, 3)
        if rng.random() < 0.7:
            y = int(rng.uniform(0.6, 1.0) * ch)
            canvas[y:] = rng.integers(10, 80, 3)
        canvas = np.clip(canvas.astype(np.float32) * np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.9, 1.2), cw,
                                                                 dtype=np.float32)[None, :, None], 0, 255
                         ).astype(np.uint8)
    if rng.random() < 0.4:  # a plate frame (holder) a little outside the plate
        c = quad.mean(axis=0)
        fq = (c + (quad - c) * rng.uniform(1.04, 1.12)).astype(np.int32)
        cv2.fillPoly(canvas, [fq], tuple(int(x) for x in (rng.integers(0, 60, 3) if rng.random() < 0.6
                                                            else rng.integers(150, 230, 3))), cv2.LINE_AA)
        if frame_text and rng.random() < 0.5:  # a dealer's frame: a strip of small text below or above the plate
            _frame_strip(canvas, quad, rng)
    photo = composite_plate(canvas, plate_img, quad)
    if rng.random() < deg.occlusion_p:
        _occlude(photo, quad, rng)
    photo, night = spoil(photo, deg, rng, quad)
    return photo, quad, night


def _frame_strip(canvas: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> None:
    """Draw a dealer-frame strip with small Latin text just below (or above) the plate's quad, in place."""
    tl, tr, br, bl = quad
    below = rng.random() < 0.75
    a, b = (bl, br) if below else (tl, tr)
    h = float(np.linalg.norm(bl - tl)) * rng.uniform(0.12, 0.22)
    n = np.array([0.0, 1.0 if below else -1.0], np.float32) * h
    strip = np.array([a, b, b + n, a + n], np.int32)
    dark = rng.random() < 0.6
    cv2.fillPoly(canvas, [strip], tuple(int(x) for x in (rng.integers(0, 50, 3) if dark else
                                                          rng.integers(180, 240, 3))), cv2.LINE_AA)
    words = ["TOYOTA", "HONDA", "ISUZU", "NISSAN", "MAZDA", "MITSUBISHI", "FORD", "YAMAHA", "0 2555 1234"]
    text = words[int(rng.integers(len(words)))]
    scale = max(0.2, h / 30.0)
    org = (int(a[0] + (b[0] - a[0]) * rng.uniform(0.15, 0.4)), int(a[1] + n[1] * 0.8))
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (230, 230, 230) if dark else (20, 20, 20),
                max(1, int(scale * 1.5)), cv2.LINE_AA)


def render_plate(seed: int, level: str = "mild", fonts: FontSplit = "heldout", plate_type: PlateType | None = None,
                 plate: Plate | None = None) -> RenderedPlate:
    """A photographed plate crop at ``level`` (clean / mild / moderate / severe), deterministic per seed.

    ``fonts`` picks the font and background split: 'heldout' (default: tests, evaluation, simulation), 'train', or
    'validation' (unseen fonts on training backgrounds).
    ``plate_type`` defaults to a random type drawn with :data:`TYPE_P`. The crop keeps 15-60 % of the plate width
    of background around the plate; ``quad`` gives its true corners.
    """
    if level not in DEGRADATIONS:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    rng = np.random.default_rng(seed)
    ptype: PlateType = plate_type or PLATE_TYPES[int(rng.choice(len(PLATE_TYPES), p=TYPE_P))]
    plate = plate or random_plate(rng, ptype)
    face = _pick_face(rng, fonts)
    style = "private" if ptype == "motorcycle" else ptype
    if ptype == "motorcycle" and rng.random() < 0.25:
        style = "yellow"
    pic = random_patch(rng, 200, 90, background_split(fonts)) if style == "picture" else None
    layout = "motorcycle" if ptype == "motorcycle" else "car"
    clean = draw_plate(plate, face, style, layout, rng, 0.5, pic)
    photo, quad, night = photograph(clean, DEGRADATIONS[level], rng, fonts)
    return RenderedPlate(image=photo, plate=plate, quad=quad, style=ptype, font=face.name, level=level, seed=seed,
                         night=night)


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


# ---------------------------------------------------------------------------------------------- street scenes


def _car_scene(rng: np.random.Generator, w: int, h: int, split: FontSplit = "heldout",
               moto: bool = False) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A street background with a vehicle seen from behind; returns the image and the plate centre + body width."""
    img = random_patch(rng, w, h, background_split(split))
    cw = int(w * (rng.uniform(0.2, 0.3) if moto else rng.uniform(0.45, 0.6)))
    ch = int(cw * (rng.uniform(1.0, 1.3) if moto else rng.uniform(0.55, 0.7)))
    cx = int(rng.integers(cw // 2 + 5, w - cw // 2 - 5))
    cy = int(h * rng.uniform(0.55, 0.62))
    colour = tuple(int(c) for c in rng.integers(20, 235, 3))
    x0, y0, x1, y1 = cx - cw // 2, max(0, cy - ch // 2), cx + cw // 2, min(h - 1, cy + ch // 2)
    if moto:  # rear wheel, seat, tail light
        cv2.ellipse(img, (cx, y1), (cw // 5, ch // 4), 0, 0, 360, (20, 20, 20), -1)
        cv2.rectangle(img, (x0 + cw // 5, y0), (x1 - cw // 5, y0 + ch // 2), colour, -1)
        cv2.rectangle(img, (cx - cw // 8, y0 + ch // 8), (cx + cw // 8, y0 + ch // 5), (30, 30, 200), -1)
        return img, (cx, y0 + int(ch * 0.45), cw)
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


def render_scene(seed: int, level: str = "mild", size: tuple[int, int] = (640, 480), plate: Plate | None = None,
                 fonts: FontSplit = "heldout", plate_type: PlateType | None = None) -> RenderedScene:
    """A street scene (``size`` = width, height) with one vehicle whose plate is ``plate`` (random if None).

    The plate's on-screen width shrinks with the level and the whole frame gets the level's blur, noise,
    night contrast and JPEG compression, so the scene exercises localisation and OCR together.
    """
    rng = np.random.default_rng(seed)
    ptype: PlateType = plate_type or ("motorcycle" if plate is not None and plate.vehicle == "motorcycle" else
                                      "private" if plate is not None else
                                      PLATE_TYPES[int(rng.choice(len(PLATE_TYPES), p=TYPE_P))])
    plate = plate or random_plate(rng, ptype)
    deg = DEGRADATIONS[level]
    face = _pick_face(rng, fonts)
    w, h = size
    moto = ptype == "motorcycle"
    img, (px, py, car_w) = _car_scene(rng, w, h, fonts, moto)
    lo, hi = SCENE_PLATE_WIDTH[level]
    style = "private" if moto else ptype
    pic = random_patch(rng, 200, 90, background_split(fonts)) if style == "picture" else None
    clean = draw_plate(plate, face, style, "motorcycle" if moto else "car", rng, 0.5, pic)
    pw = min(car_w * (0.9 if moto else 0.6), w * rng.uniform(lo, hi) * (0.7 if moto else 1.0))
    ph = pw * clean.shape[0] / clean.shape[1]
    ang = deg.yaw * 0.5
    q = _project(pw, ph, rng.uniform(-ang, ang), rng.uniform(-ang / 2, ang / 2), rng.uniform(-deg.roll, deg.roll) / 2)
    quad = (q + np.float32([px, py])).astype(np.float32)
    img = composite_plate(img, clean, quad)
    img, night = spoil(img, Degradation(deg.width, 0, 0, 0, deg.blur_sigma, deg.motion_p / 2, deg.noise_sigma,
                                        deg.jpeg_quality, deg.night_p, deg.glare_p / 2, deg.shadow_p / 2, 0.0, 0.0),
                       rng)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return RenderedScene(image=img, plate=plate, quad=quad, box=(int(x0), int(y0), int(x1), int(y1)), level=level,
                         seed=seed, extra={"style": ptype, "font": face.name, "night": night})


def render_angled(seed: int, yaw: float, pitch: float = 0.0, plate: Plate | None = None,
                  plate_type: PlateType | None = None, size: tuple[int, int] = (1600, 1200),
                  fonts: FontSplit = "heldout") -> RenderedScene:
    """A phone photo (``size`` = width, height, BGR) of one plate seen at a steep angle: the plate (``plate``, random
    if None; ``plate_type`` or drawn) in a face of ``fonts``, turned ``yaw`` degrees about its vertical axis and
    ``pitch`` about its horizontal one (signs drawn from ``seed``), 280-420 px wide before foreshortening (a
    motorcycle plate 0.7 of that), on a background photo of the same split, lightly blurred and JPEG'd (quality
    80-92). The street scenes (:func:`render_scene`) turn plates by at most half a level's yaw; this is the phone
    photo taken from the kerb (yaw 45-60 degrees) or from above (pitch 45-55 degrees)."""
    rng = np.random.default_rng(seed)
    ptype: PlateType = plate_type or ("motorcycle" if plate is not None and plate.vehicle == "motorcycle" else
                                      "private" if plate is not None else
                                      PLATE_TYPES[int(rng.choice(len(PLATE_TYPES), p=TYPE_P))])
    plate = plate or random_plate(rng, ptype)
    face = _pick_face(rng, fonts)
    moto = ptype == "motorcycle"
    pic = random_patch(rng, 200, 90, background_split(fonts)) if ptype == "picture" else None
    clean = draw_plate(plate, face, "private" if moto else ptype, "motorcycle" if moto else "car", rng, 0.5, pic)
    w, h = size
    img = random_patch(rng, w, h, background_split(fonts))
    pw = rng.uniform(280, 420) * (0.7 if moto else 1.0)
    q = _project(pw, pw * clean.shape[0] / clean.shape[1], yaw * rng.choice([-1, 1]), pitch * rng.choice([-1, 1]),
                 rng.uniform(-4, 4))
    quad = (q + np.float32([w / 2 + rng.uniform(-0.18, 0.18) * w, h / 2 + rng.uniform(-0.16, 0.16) * h])
            ).astype(np.float32)
    img = composite_plate(img, clean, quad)
    img, _ = spoil(img, Degradation((0, 0), 0, 0, 0, (0.3, 0.8), 0.0, (1.0, 3.0), (80, 92), 0.0, 0.0, 0.0, 0.0, 0.0),
                   rng)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return RenderedScene(image=img, plate=plate, quad=quad, box=(int(x0), int(y0), int(x1), int(y1)), level="angled",
                         seed=seed, extra={"style": ptype, "font": face.name, "yaw": yaw, "pitch": pitch})


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image (for HTTP tests and the stream simulator)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return io.BytesIO(buf.tobytes()).getvalue()
