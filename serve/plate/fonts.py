"""Thai font faces for rendering plates, split into training, held-out and validation families.

Where the fonts come from (all installed by ``infra/install.sh``):

- Debian ``fonts-thai-tlwg`` (13 families), ``fonts-arundina`` (3) and ``fonts-noto-core`` (Noto Sans / Looped /
  Serif Thai; their digits come from Noto Sans / Noto Serif, the Thai files have none);
- OFL families from the npm registry's ``@fontsource`` packages, unpacked by the install into
  ``<venv>/share/ssz-fonts/<family>/`` (``$SSZ_FONT_DIR`` overrides): each weight has a ``thai`` subset file
  (Thai glyphs only) and a ``latin`` subset file, which draws the digits and the dash.

A :class:`FontFace` is one weight of one family: the file that draws the Thai consonants and vowels and the file
that draws digits and '-'. Every face is checked with fontTools: a file missing a glyph the plates need is
skipped (Pillow would silently draw an empty box).

Split: :data:`HELDOUT_FAMILIES` never reach training; the held-out rendered test set and the simulated city
draw only from them, so their figures are measured on typefaces the model never saw. :data:`VALIDATION_FAMILIES`
reach neither: they measure reading an unseen typeface while a stage is being chosen.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

FontSplit = Literal["train", "heldout", "validation", "all"]

HELDOUT_FAMILIES: frozenset[str] = frozenset({
    "waree", "kinnari", "arundina-sans", "k2d", "bai-jamjuree", "taviraj", "krub", "noto-sans-thai",
})
"""Families kept out of training: looped and loopless sans, a serif, and one condensed face."""
VALIDATION_FAMILIES: frozenset[str] = frozenset({"sriracha", "pattaya"})
"""Families kept out of training *and* of the held-out test: the 'validation' split, on which a training stage meant
to read unseen typefaces is chosen without looking at the held-out figures (a handwriting face and a display face,
the only Thai @fontsource families left once the others were split; added with data version 8)."""

DEBIAN_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
TLWG_FAMILIES = ("Garuda", "Kinnari", "Laksaman", "Loma", "Norasi", "Purisa", "Sawasdee", "TlwgMono",
                 "TlwgTypewriter", "TlwgTypist", "TlwgTypo", "Umpush", "Waree")
# family -> (Thai file stems, digit file stem or None = the same file), under truetype/{arundina,noto}
OTHER_DEBIAN: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "arundina-sans": ("arundina", ("ArundinaSans-Bold", "ArundinaSans"), None),
    "arundina-sans-mono": ("arundina", ("ArundinaSansMono-Bold", "ArundinaSansMono"), None),
    "arundina-serif": ("arundina", ("ArundinaSerif-Bold", "ArundinaSerif"), None),
    "noto-sans-thai": ("noto", ("NotoSansThai-Bold", "NotoSansThai-Regular"), "NotoSans-Bold"),
    "noto-looped-thai": ("noto", ("NotoLoopedThai-Bold", "NotoLoopedThai-Regular"), "NotoSans-Bold"),
    "noto-serif-thai": ("noto", ("NotoSerifThai-Bold", "NotoSerifThai-Regular"), "NotoSerif-Bold"),
}
NEEDED_THAI = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮะาำิีึืุูเแโใไ่้๊๋็์ั"
NEEDED_DIGITS = "0123456789-"


class FontsMissingError(RuntimeError):
    """No usable Thai font was found; the message says what to install."""


@dataclass(frozen=True)
class FontFace:
    """One weight of one family: ``thai`` draws Thai text, ``digits`` draws 0-9 and '-' (may be the same file)."""

    family: str
    weight: str
    thai: Path
    digits: Path

    @property
    def name(self) -> str:
        """``family-weight``, e.g. ``sarabun-700``."""
        return f"{self.family}-{self.weight}"


def font_dir() -> Path:
    """Where the install unpacked the @fontsource families (``$SSZ_FONT_DIR`` or ``<venv>/share/ssz-fonts``)."""
    env = os.environ.get("SSZ_FONT_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "ssz-fonts"


@lru_cache(maxsize=512)
def _covers(path: Path, chars: str) -> bool:
    """True when the font file maps every character of ``chars`` to a glyph."""
    from fontTools.ttLib import TTFont

    try:
        cmap = TTFont(str(path), lazy=True).getBestCmap() or {}
    except Exception:  # unreadable or not a font: not usable
        return False
    return all(ord(c) in cmap for c in chars)


def _find(stem: str, sub: str | None = None) -> Path | None:
    for d in DEBIAN_DIRS:
        for folder in ([d / sub] if sub else [d / "tlwg", d]):
            for ext in (".ttf", ".otf"):
                p = folder / f"{stem}{ext}"
                if p.is_file():
                    return p
    return None


def _debian_faces() -> list[FontFace]:
    faces: list[FontFace] = []
    for fam in TLWG_FAMILIES:
        for weight, stem in (("bold", f"{fam}-Bold"), ("regular", fam)):
            p = _find(stem)
            if p is not None:
                faces.append(FontFace(fam.lower(), weight, p, p))
    for fam, (sub, stems, digit_stem) in OTHER_DEBIAN.items():
        digits = _find(digit_stem, sub) if digit_stem else None
        for stem in stems:
            p = _find(stem, sub)
            if p is not None:
                faces.append(FontFace(fam, "bold" if "Bold" in stem else "regular", p, digits or p))
    return faces


def _fontsource_faces(root: Path) -> list[FontFace]:
    faces: list[FontFace] = []
    if not root.is_dir():
        return faces
    for fam_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        fam = fam_dir.name
        for thai in sorted(fam_dir.glob(f"{fam}-thai-*-normal.woff")):
            weight = thai.name[len(fam) + len("-thai-"):].split("-")[0]
            latin = fam_dir / f"{fam}-latin-{weight}-normal.woff"
            if latin.is_file():
                faces.append(FontFace(fam, weight, thai, latin))
    return faces


@lru_cache(maxsize=4)
def font_faces(split: FontSplit = "train") -> tuple[FontFace, ...]:
    """Usable faces of the ``split`` ('train', 'heldout', 'validation' or 'all'), sorted by name (deterministic
    order).

    Raises FontsMissingError when the split has no usable face (naming the packages to install).
    """
    faces = [f for f in _debian_faces() + _fontsource_faces(font_dir())
             if _covers(f.thai, NEEDED_THAI[:42]) and _covers(f.digits, NEEDED_DIGITS)]
    if split == "train":
        faces = [f for f in faces if f.family not in HELDOUT_FAMILIES | VALIDATION_FAMILIES]
    elif split == "heldout":
        faces = [f for f in faces if f.family in HELDOUT_FAMILIES]
    elif split == "validation":
        faces = [f for f in faces if f.family in VALIDATION_FAMILIES]
    if not faces:
        raise FontsMissingError(
            f"no usable Thai font for the {split!r} split: install Debian's fonts-thai-tlwg, fonts-arundina and "
            f"fonts-noto-core, and the @fontsource families into {font_dir()} (`bash infra/install.sh`)")
    return tuple(sorted(faces, key=lambda f: f.name))


def families(split: FontSplit = "train") -> tuple[str, ...]:
    """The family names of a split, sorted."""
    return tuple(sorted({f.family for f in font_faces(split)}))
