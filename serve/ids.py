"""Record ids: the one rule for every id a user types or a device sends (warrant numbers, hotlist entries, users,
cameras, patrol units).

A real id may hold any printable character: Thai letters and vowels, ".", "/", spaces ("จ.123/2567",
"สภ.หาดใหญ่ cam 7", "HY/0042"). An id is refused only when it cannot be an id at all:

- empty (or only white space);
- white space at either end (it would be a different id that looks the same; strip it first);
- a control or format character (C0/C1 controls, DEL, zero-width or bidi marks, line/paragraph separators);
- longer than :data:`MAX_ID_CHARS` characters.

Routes take ids in the path with Starlette's ``{name:path}`` converter (so an encoded or raw "/" is part of
the id) and check them with :func:`check_record_id`; request bodies use :data:`RecordId`.
"""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

from twin.schemas import MAX_ID_CHARS

__all__ = ["MAX_ID_CHARS", "RecordId", "RecordIdError", "check_record_id", "find_control"]


class RecordIdError(ValueError):
    """A value cannot be an id; the message says why and what to send."""


def check_record_id(value: str, what: str = "id") -> str:
    """``value`` when it can be a record id, else :class:`RecordIdError` (a ValueError).

    Parameters
    ----------
    value : str
        The id as received (already percent-decoded).
    what : str
        What the id names, for the message ("warrant number", "hotlist entry id", ...).

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    RecordIdError
        Empty, white space at an end, a control/format character, or over :data:`MAX_ID_CHARS` characters.
    """
    if not isinstance(value, str) or not value.strip():
        raise RecordIdError(f"{what} is empty: send the id, e.g. จ.123/2567")
    if len(value) > MAX_ID_CHARS:
        raise RecordIdError(f"{what} has {len(value)} characters: at most {MAX_ID_CHARS}")
    if value != value.strip():
        raise RecordIdError(f"{what} {value!r} starts or ends with white space: send it without")
    i = find_control(value)
    if i is not None:
        raise RecordIdError(f"{what} holds a control character (U+{ord(value[i]):04X} at position {i + 1}): "
                            "send printable characters only")
    return value


def find_control(value: str) -> int | None:
    """Index of the first control or format character of ``value`` (Unicode Cc, Cf, Zl, Zp), or None."""
    for i, ch in enumerate(value):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return i
    return None


def _record_id(value: str) -> str:
    return check_record_id(value)


RecordId = Annotated[str, AfterValidator(_record_id)]
"""A pydantic field type for an id (the rule of :func:`check_record_id`)."""
