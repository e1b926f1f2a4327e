"""Real photographs behind rendered plates (and inside picture plates), split into training and held-out sets.

Sources already on the machine (installed for other reasons): the sample images and videos of Debian's
``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data``) and the images shipped in ``scikit-image``.
The held-out split holds ``vtest.avi`` (the street the simulated city's cameras show) and a fixed set of still
images; training never sees them, so the held-out test set and the simulation are rendered on backgrounds
the recogniser was not trained on.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
HELDOUT_STILLS = frozenset({"building.jpg", "home.jpg", "fruits.jpg", "messi5.jpg", "leuvenA.jpg", "graf1.png",
                            "aero1.jpg", "stuff.jpg", "coffee.png", "rocket.jpg", "left01.jpg", "pic1.png"})
HELDOUT_VIDEOS = frozenset({"vtest.avi"})
MAX_SIDE = 720
Split = Literal["train", "heldout", "all"]


def background_split(fonts: str) -> Split:
    """The background split drawn beside a font split: held-out backgrounds with held-out fonts, the training
    backgrounds with every other split ('train', 'validation', 'all'; the validation split varies the typeface only).
    """
    return "heldout" if fonts == "heldout" else "train"


def _skimage_dir() -> Path | None:
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def _load(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or min(img.shape[:2]) < 64:
        return None
    s = min(1.0, MAX_SIDE / max(img.shape[:2]))
    if s < 1:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def _frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    out: list[np.ndarray] = []
    for i in range(n):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i * total / n))
        ok, f = cap.read()
        if ok and f is not None:
            img = _load_array(f)
            out.append(img)
    cap.release()
    return out


def _load_array(img: np.ndarray) -> np.ndarray:
    s = min(1.0, MAX_SIDE / max(img.shape[:2]))
    if s < 1:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


@lru_cache(maxsize=3)
def backgrounds(split: Split = "train") -> tuple[np.ndarray, ...]:
    """BGR photographs of the split (at most 720 px on a side); empty when no source is installed."""
    files: list[Path] = []
    if OPENCV_DATA.is_dir():
        files += sorted(p for p in OPENCV_DATA.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    sk = _skimage_dir()
    if sk is not None and sk.is_dir():
        files += sorted(p for p in sk.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    out: list[np.ndarray] = []
    for p in files:
        held = p.name in HELDOUT_STILLS
        if split == "all" or (split == "heldout") == held:
            img = _load(p)
            if img is not None:
                out.append(img)
    if OPENCV_DATA.is_dir():
        for v in sorted(OPENCV_DATA.glob("*.avi")):
            held = v.name in HELDOUT_VIDEOS
            if (split == "all" or (split == "heldout") == held) and "bugy" not in v.name:
                out += _frames(v, 12)
    return tuple(out)


def random_patch(rng: np.random.Generator, w: int, h: int, split: Split = "train") -> np.ndarray:
    """A ``h`` × ``w`` BGR patch cut from a random background of ``split`` (random scale, flip);
    a flat grey-brown texture when no background image is installed."""
    bgs = backgrounds(split)
    if not bgs:
        base = np.empty((h, w, 3), np.uint8)
        base[:] = rng.integers(40, 200, 3)
        return base
    src = bgs[int(rng.integers(len(bgs)))]
    sh, sw = src.shape[:2]
    scale = max(w / sw, h / sh) * rng.uniform(1.0, 2.5)
    cw, ch = min(sw, max(2, round(w / scale))), min(sh, max(2, round(h / scale)))
    x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    patch = cv2.resize(src[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)
