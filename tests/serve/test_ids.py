"""The one id rule (serve.ids) and error texts that keep their quotes (serve.errors.error_text)."""

import pytest

from serve.errors import error_text
from serve.ids import MAX_ID_CHARS, RecordIdError, check_record_id
from serve.plate.parse import PlateParseError, parse_plate


@pytest.mark.parametrize("value", ["จ.123/2567", "W-2026-0001", "HL/2567 ด่าน.1", "cam 7.north", "สภ.หาดใหญ่/กล้อง 12",
                                   "a" * MAX_ID_CHARS, "../x", "100%", "a?b#c"])
def test_real_ids_are_accepted_unchanged(value):
    assert check_record_id(value) == value


@pytest.mark.parametrize(("value", "says"), [("", "empty"), ("  ", "empty"), (" W-1", "white space"),
                                             ("W-1\t", "white space"), ("W\x001", "U+0000"), ("W\n1", "control"),
                                             ("W\u200b1", "U+200B"), ("W\x7f", "U+007F"), ("W\u2028x", "U+2028"),
                                             ("a" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS}")])
def test_what_cannot_be_an_id_is_refused_with_the_reason(value, says):
    with pytest.raises(RecordIdError, match="warrant number") as e:
        check_record_id(value, "warrant number")
    assert says in str(e.value)
    assert isinstance(e.value, ValueError)


def test_error_text_keeps_the_opening_quote():
    with pytest.raises(PlateParseError) as e:
        parse_plate("กขคง 123")  # four consonants (three are a motorcycle series)
    assert error_text(e.value).startswith("'กขคง 123' is not a Thai registration")
    assert error_text(KeyError("no hotlist entry 'H/1'")) == "no hotlist entry 'H/1'"
    assert error_text(ValueError("'x' is wrong")) == "'x' is wrong"
