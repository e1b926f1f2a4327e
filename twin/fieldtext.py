"""Text helpers of the field-input reader: cell text normalised (Thai digits, zero-width characters, look-alike
Thai spellings), headers reduced for matching and made unique, and what counts as an empty cell.

Used by :mod:`twin.fieldspecs`, :mod:`twin.fieldfiles`, :mod:`twin.fieldvalues` and :mod:`twin.fieldinput`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

import pandas as pd

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_ZW = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)
_ZW_AND_DIGITS = {**_THAI_DIGITS, **_ZW}

THAI_CHAR = re.compile(r"[\u0e01-\u0e5b]")
"""One Thai character (letters, vowels, tone marks, Thai digits)."""

_THAI_TYPING = (("\u0e4d\u0e32", "\u0e33"), ("\u0e40\u0e40", "\u0e41"))  # ํ+า is ำ, เ+เ is แ (they look the same)


def normalize_text(s: str) -> str:
    """Thai digits to ASCII, zero-width characters and BOMs removed, Unicode NFC, outer spaces stripped, and the
    Thai spellings that look alike but differ in code points made one: nikhahit + sara aa (``จํานวน``, what text
    copied from a PDF holds) is sara am (``จำนวน``), two sara e (``เเจ้ง``) are sara ae (``แจ้ง``)."""
    s = str(s)
    if s.isascii():  # most cells: nothing to normalise but the outer spaces
        return s.strip()
    s = unicodedata.normalize("NFC", s).translate(_ZW_AND_DIGITS).strip()
    for a, b in _THAI_TYPING:
        s = s.replace(a, b)
    return s


def header_key(s: str) -> str:
    """A header reduced for matching: lower case, no spaces/underscores/dashes/dots, no ``(unit)`` suffix."""
    s = normalize_text(s).lower()
    s = re.sub(r"\(.*?\)|\[.*?\]", "", s)
    return re.sub(r"[\s_\-./:%]+", "", s)


def is_missing(v: Any) -> bool:
    """True for an empty cell: None, NaN/NaT, or text that is blank or an empty marker (``-``, ``nan``, ``null``)."""
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if not isinstance(v, str):
        return False
    t = v.strip()
    if len(t) > 4 and t.isprintable():  # longer than every empty marker, and nothing normalize_text removes
        return False
    return normalize_text(t) in ("", "-", "–", "nan", "NaN", "null", "NULL", "None")


def unique_headers(headers: list[str]) -> list[str]:
    """Headers made unique: a repeated one gets ``" (2)"``, ``" (3)"`` (which :func:`header_key` drops, so two
    headers for one declared column are still refused as such); two 'หมายเหตุ' columns are both kept."""
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out

