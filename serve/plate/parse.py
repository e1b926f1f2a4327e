"""Parse and normalise Thai licence plates.

A Thai plate carries a registration and a second line. Registrations (the grammar of :func:`parse_registration`):

- an optional category digit 1-9, one or two Thai consonants and 1-4 digits: ``1กข 1234``, ``ฒต 808``, and the
  red dealer plates written with a dash, ``ผ-9324``;
- three consonants and 1-4 digits, the motorcycle series: ``กขค 123``;
- digits only, two then four, the commercial (yellow) plates: ``32-0394``.

The second line is a province (one of the 77 names) or a region line that is not a province (``เบตง``, see
:data:`serve.plate.provinces.REGIONS`), kept as the plate's ``region``. :func:`parse_plate` turns text (typed by
an officer or read by OCR) into a :class:`Plate`; the second line is snapped to the nearest name because OCR
drops or swaps vowel and tone marks (ภูเก็ต comes back as ภูเกิต). A plate may carry its vehicle type (car or
motorcycle: the same registration can exist on both).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serve.plate.distance import levenshtein
from serve.plate.provinces import LINE2_NAMES, PROVINCES, REGIONS

# The 44 Thai consonants minus the obsolete ฃ and ฅ, which are never issued on plates.
PLATE_CONSONANTS = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ"
DIGITS = "0123456789"
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", DIGITS)
_REG_RE = re.compile(rf"^(?:(?P<cat>[1-9]?)(?P<letters>[{PLATE_CONSONANTS}]{{1,3}})|(?P<cat2>[1-9][0-9]))"
                     rf"(?P<number>[0-9]{{1,4}})$")
REGISTRATION_FORMS = ("an optional digit 1-9, one or two Thai consonants and 1-4 digits ('1กข 1234', 'ผ-9324'), "
                      "three consonants and 1-4 digits ('กขค 123') or two digits, a dash and four digits "
                      "('32-0394')")
Vehicle = Literal["car", "motorcycle"]
_THAI_BLOCK = re.compile(r"[^\u0E00-\u0E7F]")

# Names people and OCR write for a province that are far from the official spelling by edit distance.
PROVINCE_ALIASES: dict[str, str] = {
    "กรุงเทพ": "กรุงเทพมหานคร",
    "กรุงเทพฯ": "กรุงเทพมหานคร",
    "กทม": "กรุงเทพมหานคร",
    "อยุธยา": "พระนครศรีอยุธยา",
    "โคราช": "นครราชสีมา",
}
PROVINCE_PREFIX = "จังหวัด"
"""'Province' written before the name in labels and hotlist text ('จังหวัดภูเก็ต'; the short 'จ.' is one edit and
snaps anyway): dropped before snapping, as no plate prints it."""


class PlateParseError(ValueError):
    """The text is not a Thai plate; the message says what was expected."""


class Plate(BaseModel):
    """A normalised Thai plate: category, consonants, number, second line (province or region), vehicle type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = Field(default="", description="leading category digit 1-9, or the two digits of a digits-only "
                                                  "commercial plate ('32' of '32-0394'); '' when absent")
    letters: str = Field(default="", description="one to three Thai consonants, e.g. 'กข'; '' on digits-only plates")
    number: str = Field(description="1-4 digits as printed, e.g. '1234'")
    province: str | None = Field(default=None, description="one of the 77 province names, None when unknown")
    region: str | None = Field(default=None, description="a second line that is not a province (e.g. 'เบตง'), "
                                                         "None otherwise")
    vehicle: Vehicle | None = Field(default=None, description="'car' or 'motorcycle' when known")

    @field_validator("category")
    @classmethod
    def _check_category(cls, v: str) -> str:
        if v and not (v.isascii() and v.isdigit() and len(v) <= 2 and v[0] != "0"):
            raise ValueError(f"category must be one digit 1-9, two digits 10-99 or empty, got {v!r}")
        return v

    @field_validator("letters")
    @classmethod
    def _check_letters(cls, v: str) -> str:
        if len(v) > 3 or any(c not in PLATE_CONSONANTS for c in v):
            raise ValueError(f"letters must be up to three Thai consonants, got {v!r}")
        return v

    @field_validator("region")
    @classmethod
    def _check_region(cls, v: str | None) -> str | None:
        if v is not None and v not in REGIONS:
            raise ValueError(f"region {v!r} is not a known region line ({', '.join(REGIONS)})")
        return v

    @model_validator(mode="after")
    def _check_series(self) -> Plate:
        c, n = len(self.category), len(self.letters)
        if c == 2 and (n or len(self.number) != 4):
            raise ValueError("a two-digit category is the digits-only form: no consonants and four digits ('32-0394')")
        if c < 2 and n == 0:
            raise ValueError("letters are required unless the category has two digits (digits-only plate)")
        if n == 3 and c:
            raise ValueError("a three-consonant series has no category digit ('กขค 123')")
        if self.province is not None and self.region is not None:
            raise ValueError("a plate has a province or a region on its second line, not both")
        return self

    @property
    def line2(self) -> str | None:
        """The second line as printed: the province, else the region, else None."""
        return self.province or self.region

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
        """The registration as printed: ``1กข 1234``, or ``32-0394`` for a digits-only plate."""
        if not self.letters:
            return f"{self.category}-{self.number}"
        return f"{self.category}{self.letters} {self.number}"

    @property
    def key(self) -> str:
        """The registration without spaces (``1กข1234``): what hotlist matching compares."""
        return f"{self.category}{self.letters}{self.number}"

    @property
    def text(self) -> str:
        """Both lines joined by a newline (the second line is omitted when unknown)."""
        return self.registration if self.line2 is None else f"{self.registration}\n{self.line2}"


def normalise_text(text: str) -> str:
    """NFC-normalise, map Thai digits to ASCII and drop whitespace and punctuation (dashes, dots)."""
    t = unicodedata.normalize("NFC", text).translate(_THAI_DIGITS)
    return "".join(c for c in t if c.isalnum() or "\u0e00" <= c <= "\u0e7f")


def parse_registration(text: str, lenient: bool = False) -> tuple[str, str, str]:
    """Split a registration line into (category, letters, number); the forms are in the module docstring.

    With ``lenient`` (for OCR output) characters that can never appear on the line (Thai vowels, tone
    marks, Latin letters) are dropped first; without it they are an error. Raises PlateParseError.
    """
    t = normalise_text(text)
    if lenient:
        t = "".join(c for c in t if c in PLATE_CONSONANTS or c in DIGITS)
    m = _REG_RE.match(t)
    ok = m is not None and not (m["cat"] and len(m["letters"] or "") == 3) and not (m["cat2"] and len(m["number"]) != 4)
    if not ok or m is None:
        raise PlateParseError(f"{text!r} is not a Thai registration: expected {REGISTRATION_FORMS}")
    if m["cat2"]:
        return m["cat2"], "", m["number"]
    return m["cat"], m["letters"], m["number"]


def snap_province(text: str, max_ratio: float = 0.5, names: tuple[str, ...] = PROVINCES) -> tuple[str | None, int]:
    """The name of ``names`` (default: the 77 provinces) nearest to ``text`` by edit distance, and that distance.

    Only Thai characters of ``text`` count. Returns (None, distance) when even the nearest name needs
    more than ``max_ratio`` × its length edits, so noise is not forced onto a province. Ties go to the
    name whose length is closest to the text's.
    """
    t = _THAI_BLOCK.sub("", unicodedata.normalize("NFC", text))
    if t.startswith(PROVINCE_PREFIX) and len(t) > len(PROVINCE_PREFIX):
        t = t[len(PROVINCE_PREFIX):]
    if not t:
        return None, 0
    if t in PROVINCE_ALIASES:
        return PROVINCE_ALIASES[t], 0
    best, best_d = names[0], 10**9
    for name in names:
        d = levenshtein(t, name)
        if d < best_d or (d == best_d and abs(len(name) - len(t)) < abs(len(best) - len(t))):
            best, best_d = name, d
    if best_d > max_ratio * len(best):
        return None, best_d
    return best, best_d


def snap_line2(text: str, max_ratio: float = 0.5) -> tuple[str | None, str | None, int]:
    """(province, region, distance) of a second line: the nearest of the 77 provinces and the region lines.

    At most one of province and region is set; both are None when the text resembles no name.
    """
    name, d = snap_province(text, max_ratio, LINE2_NAMES)
    if name is None:
        return None, None, d
    return (None, name, d) if name in REGIONS else (name, None, d)


def parse_plate(registration: str, province: str | None = None, lenient: bool = False,
                vehicle: Vehicle | None = None) -> Plate:
    """Parse a registration line and an optional second line into a normalised :class:`Plate`.

    ``registration`` may hold both lines separated by a newline when ``province`` is None. The second line is
    snapped to the 77 provinces and the region lines (raises PlateParseError when it resembles none of them and
    ``lenient`` is off; with ``lenient`` an unreadable line becomes None).
    """
    if province is None and "\n" in registration.strip():
        registration, province = registration.strip().split("\n", 1)
    cat, letters, number = parse_registration(registration, lenient=lenient)
    prov: str | None = None
    region: str | None = None
    if province is not None and province.strip():
        prov, region, _ = snap_line2(province)
        if prov is None and region is None and not lenient:
            latin = "" if any("\u0e01" <= c <= "\u0e5b" for c in province) else " (it has no Thai letters)"
            raise PlateParseError(f"the second line {province!r} does not resemble any of the 77 Thai provinces "
                                  f"or the region lines {', '.join(REGIONS)}{latin}: write the province in Thai as "
                                  "on the plate, e.g. กรุงเทพมหานคร for Bangkok")
    try:
        return Plate(category=cat, letters=letters, number=number, province=prov, region=region, vehicle=vehicle)
    except ValueError as e:
        raise PlateParseError(f"not a Thai plate: {registration!r}; {e}") from e
