"""Edit distances for plate text: plain Levenshtein and a look-alike-aware weighted variant.

OCR of Thai plates at CCTV resolution mostly fails by swapping consonants that differ only by one small
stroke (a tail, a notch or the side of a head loop). Those swaps are what the hotlist must still catch, so
:func:`weighted_distance` charges them :data:`LOOKALIKE_COST` instead of 1.

The look-alike set (:data:`LOOKALIKE_PAIRS`) holds pairs whose glyphs differ by one short stroke that
vanishes below about 10 px of letter height:

- tail up / no tail: ผ/ฝ, พ/ฟ, บ/ป
- notch at the foot or top: ฎ/ฏ, ด/ต, อ/ฮ
- extra tail or serration on the right stem: ข/ช, ซ/ช, ค/ศ, ล/ส
- head loop inside or outside / extra loop: ถ/ภ, ม/ฆ
- ฌ against ณ, ญ and ฒ: the most frequent Tesseract confusions on rendered plates
  (``serve.plate.evaluate`` ``confusions``, 180 plates: ฌ→ณ 10, ฌ→ฒ 4, ฌ→ญ 3; next were ช→ซ 6 and
  ฎ→ฏ 5, already in the set)

Digits are deliberately not in the set: a misread number is a different registration.
"""

from __future__ import annotations

LOOKALIKE_COST = 0.5
"""Cost of substituting one letter of a look-alike pair for the other (any other edit costs 1)."""

LOOKALIKE_PAIRS: tuple[tuple[str, str], ...] = (
    ("ผ", "ฝ"),
    ("พ", "ฟ"),
    ("บ", "ป"),
    ("ฎ", "ฏ"),
    ("ด", "ต"),
    ("อ", "ฮ"),
    ("ข", "ช"),
    ("ซ", "ช"),
    ("ค", "ศ"),
    ("ล", "ส"),
    ("ถ", "ภ"),
    ("ม", "ฆ"),
    ("ฌ", "ณ"),
    ("ฌ", "ญ"),
    ("ฌ", "ฒ"),
)

_LOOKALIKE: frozenset[frozenset[str]] = frozenset(frozenset(p) for p in LOOKALIKE_PAIRS)


def substitution_cost(a: str, b: str) -> float:
    """Cost of reading ``b`` where ``a`` is printed: 0 if equal, 0.5 for a look-alike pair, else 1."""
    if a == b:
        return 0.0
    return LOOKALIKE_COST if frozenset((a, b)) in _LOOKALIKE else 1.0


def weighted_distance(a: str, b: str) -> float:
    """Levenshtein distance between ``a`` and ``b`` where look-alike substitutions cost 0.5.

    Insertions and deletions cost 1. Used by the hotlist so one misread look-alike letter (0.5) is
    tolerated by the default threshold while two (1.0) or any other single error (1.0) are not.
    """
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        cur = [float(i)] + [0.0] * len(b)
        for j, cb in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + substitution_cost(ca, cb))
        prev = cur
    return prev[-1]


def levenshtein(a: str, b: str) -> int:
    """Plain Levenshtein distance (unit costs), used to snap OCR'd province names to the 77 names."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]
