"""Parse and normalise Thai licence plates.

A Thai plate has two lines: the registration (an optional category digit, one or two Thai consonants and
1-4 digits, e.g. ``1กข 1234`` or ``ฒต 808``) and the province (one of the 77 names). :func:`parse_plate`
turns text (typed by an officer or read by OCR) into a :class:`Plate`; the province is snapped to the
nearest official name because OCR drops or swaps vowel and tone marks (ภูเก็ต comes back as ภูเกิต).
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serve.plate.distance import levenshtein
from serve.plate.provinces import PROVINCES

# The 44 Thai consonants minus the obsolete ฃ and ฅ, which are never issued on plates.
PLATE_CONSONANTS = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ"
DIGITS = "0123456789"
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", DIGITS)
_REG_RE = re.compile(rf"^([1-9]?)([{PLATE_CONSONANTS}]{{1,2}})([0-9]{{1,4}})$")
_THAI_BLOCK = re.compile(r"[^\u0E00-\u0E7F]")

# Names people and OCR write for a province that are far from the official spelling by edit distance.
PROVINCE_ALIASES: dict[str, str] = {
    "กรุงเทพ": "กรุงเทพมหานคร",
    "กรุงเทพฯ": "กรุงเทพมหานคร",
    "กทม": "กรุงเทพมหานคร",
    "อยุธยา": "พระนครศรีอยุธยา",
}


class PlateParseError(ValueError):
    """The text is not a Thai plate; the message says what was expected."""


class Plate(BaseModel):
    """A normalised Thai plate: category digit, consonants, number and (snapped) province."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = Field(default="", description="optional leading category digit 1-9, '' when absent")
    letters: str = Field(description="one or two Thai consonants, e.g. 'กข'")
    number: str = Field(description="1-4 digits as printed, e.g. '1234'")
    province: str | None = Field(default=None, description="one of the 77 province names, None when unknown")

    @field_validator("category")
    @classmethod
    def _check_category(cls, v: str) -> str:
        if v and (len(v) != 1 or v not in "123456789"):
            raise ValueError(f"category must be one digit 1-9 or empty, got {v!r}")
        return v

    @field_validator("letters")
    @classmethod
    def _check_letters(cls, v: str) -> str:
        if not 1 <= len(v) <= 2 or any(c not in PLATE_CONSONANTS for c in v):
            raise ValueError(f"letters must be one or two Thai consonants, got {v!r}")
        return v

    @field_validator("number")
    @classmethod
    def _check_number(cls, v: str) -> str:
        if not 1 <= len(v) <= 4 or not v.isascii() or not v.isdigit():
            raise ValueError(f"number must be 1-4 digits, got {v!r}")
        return v

    @field_validator("province")
    @classmethod
    def _check_province(cls, v: str | None) -> str | None:
        if v is not None and v not in PROVINCES:
            raise ValueError(f"province {v!r} is not one of the 77 names; use snap_province() on OCR text")
        return v

    @property
    def registration(self) -> str:
        """The first line as printed: ``1กข 1234``."""
        return f"{self.category}{self.letters} {self.number}"

    @property
    def key(self) -> str:
        """The registration without spaces (``1กข1234``): what hotlist matching compares."""
        return f"{self.category}{self.letters}{self.number}"

    @property
    def text(self) -> str:
        """Both lines joined by a newline (the province line is omitted when unknown)."""
        return self.registration if self.province is None else f"{self.registration}\n{self.province}"


def normalise_text(text: str) -> str:
    """NFC-normalise, map Thai digits to ASCII and drop whitespace and punctuation (dashes, dots)."""
    t = unicodedata.normalize("NFC", text).translate(_THAI_DIGITS)
    return "".join(c for c in t if c.isalnum() or "\u0e00" <= c <= "\u0e7f")


def parse_registration(text: str, lenient: bool = False) -> tuple[str, str, str]:
    """Split a registration line into (category, letters, number).

    With ``lenient`` (for OCR output) characters that can never appear on the line (Thai vowels, tone
    marks, Latin letters) are dropped first; without it they are an error. Raises PlateParseError.
    """
    t = normalise_text(text)
    if lenient:
        t = "".join(c for c in t if c in PLATE_CONSONANTS or c in DIGITS)
    m = _REG_RE.match(t)
    if not m:
        raise PlateParseError(
            f"{text!r} is not a Thai registration: expected an optional digit 1-9, one or two Thai "
            "consonants and 1-4 digits, e.g. '1กข 1234' or 'ฒต 808'"
        )
    return m.group(1), m.group(2), m.group(3)


def snap_province(text: str, max_ratio: float = 0.5) -> tuple[str | None, int]:
    """The province name nearest to ``text`` by edit distance and that distance.

    Only Thai characters of ``text`` count. Returns (None, distance) when even the nearest name needs
    more than ``max_ratio`` × its length edits, so noise is not forced onto a province. Ties go to the
    name whose length is closest to the text's.
    """
    t = _THAI_BLOCK.sub("", unicodedata.normalize("NFC", text))
    if not t:
        return None, 0
    if t in PROVINCE_ALIASES:
        return PROVINCE_ALIASES[t], 0
    best, best_d = PROVINCES[0], 10**9
    for name in PROVINCES:
        d = levenshtein(t, name)
        if d < best_d or (d == best_d and abs(len(name) - len(t)) < abs(len(best) - len(t))):
            best, best_d = name, d
    if best_d > max_ratio * len(best):
        return None, best_d
    return best, best_d


def parse_plate(registration: str, province: str | None = None, lenient: bool = False) -> Plate:
    """Parse a registration line and an optional province line into a normalised :class:`Plate`.

    ``registration`` may hold both lines separated by a newline when ``province`` is None. The province is
    snapped to the 77 names (raises PlateParseError when it resembles none of them and ``lenient`` is off;
    with ``lenient`` an unreadable province becomes None).
    """
    if province is None and "\n" in registration.strip():
        registration, province = registration.strip().split("\n", 1)
    cat, letters, number = parse_registration(registration, lenient=lenient)
    prov: str | None = None
    if province is not None and province.strip():
        prov, d = snap_province(province)
        if prov is None and not lenient:
            raise PlateParseError(f"{province!r} does not resemble any of the 77 Thai provinces (distance {d})")
    return Plate(category=cat, letters=letters, number=number, province=prov)
