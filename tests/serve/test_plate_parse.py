"""Thai plate parsing, normalising, province snapping and look-alike distances (pure functions)."""

from __future__ import annotations

import pytest

from serve.plate.distance import levenshtein, weighted_distance
from serve.plate.parse import Plate, PlateParseError, parse_plate, parse_registration, snap_province
from serve.plate.provinces import PROVINCES


def test_provinces_are_the_77_names_of_the_shared_list(shared_data):
    names = [n.strip() for n in (shared_data / "thai_provinces" / "provinces_th_77.txt").read_text().splitlines()
             if n.strip()]
    assert len(PROVINCES) == 77 and set(PROVINCES) == set(names)
    assert {"กรุงเทพมหานคร", "ภูเก็ต", "สงขลา", "พะเยา", "บึงกาฬ"} <= set(PROVINCES)


@pytest.mark.parametrize(("text", "expected"), [
    ("1กข 1234", ("1", "กข", "1234")),
    ("ฒต 808", ("", "ฒต", "808")),
    ("ก 1", ("", "ก", "1")),
    ("9ฮ9999", ("9", "ฮ", "9999")),
    ("  1กข-1234 ", ("1", "กข", "1234")),
    ("๑กข ๑๒๓๔", ("1", "กข", "1234")),  # Thai digits
])
def test_registration_forms(text, expected):
    assert parse_registration(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("กขค 123", ("", "กขค", "123")),  # motorcycle three-consonant series
    ("ผ-9324", ("", "ผ", "9324")),  # red dealer plate
    ("32-0394", ("32", "", "0394")),  # digits-only commercial plate
    ("320394", ("32", "", "0394")),
])
def test_new_registration_forms(text, expected):
    assert parse_registration(text) == expected


@pytest.mark.parametrize("bad", ["", "1234", "1กขค 12", "1กข 12345", "0กข 12", "AB 1234", "กข", "12กข 1", "ฃก 12",
                                 "32-039", "กขคง 1"])
def test_registration_rejects_non_plates_with_a_clear_message(bad):
    with pytest.raises(PlateParseError, match=r"is not a Thai registration: expected an optional digit 1-9") as e:
        parse_registration(bad)
    assert str(e.value).startswith(f"{bad!r} is not")


def test_lenient_parsing_drops_vowels_and_marks_that_ocr_adds():
    assert parse_registration("1กข่ 1234", lenient=True) == ("1", "กข", "1234")
    with pytest.raises(PlateParseError):
        parse_registration("1กข่ 1234")


def test_province_snapping_restores_ocr_damage():
    assert snap_province("ภูเกิต") == ("ภูเก็ต", 1)
    assert snap_province("สงขลา") == ("สงขลา", 0)
    assert snap_province("เชียงใหม") == ("เชียงใหม่", 1)
    assert snap_province("กทม")[0] == "กรุงเทพมหานคร"
    assert snap_province("Phuket 83000") == (None, 0)  # no Thai at all
    assert snap_province("ฮฮฮฮฮฮฮฮ")[0] is None  # Thai noise resembling nothing


def test_parse_plate_two_lines_and_model():
    p = parse_plate("1กข 1234\nภูเกิต")
    assert p == Plate(category="1", letters="กข", number="1234", province="ภูเก็ต")
    assert p.registration == "1กข 1234" and p.key == "1กข1234" and p.text == "1กข 1234\nภูเก็ต"
    q = parse_plate("ฒต 808", "")
    assert q.category == "" and q.province is None and q.text == "ฒต 808"
    with pytest.raises(PlateParseError, match="77 Thai provinces or the region lines"):
        parse_plate("ฒต 808", "ฮฮฮฮฮฮฮฮ")
    assert parse_plate("ฒต 808", "ฮฮฮฮฮฮฮฮ", lenient=True).province is None
    with pytest.raises(PlateParseError) as e:  # an English name: say to write it in Thai, no meaningless distance
        parse_plate("กข 1234", "Bangkok")
    assert str(e.value).endswith("(it has no Thai letters): write the province in Thai as on the plate, e.g. "
                                 "กรุงเทพมหานคร for Bangkok") and "distance" not in str(e.value)
    with pytest.raises(ValueError, match="not one of the 77"):
        Plate(letters="กข", number="1", province="ภูเกิต")


def test_weighted_distance_charges_lookalikes_half():
    assert weighted_distance("1ผข1234", "1ผข1234") == 0
    assert weighted_distance("1ผข1234", "1ฝข1234") == 0.5  # ผ/ฝ
    assert weighted_distance("1ผข1234", "1ฝช1234") == 1.0  # ผ/ฝ and ข/ช
    assert weighted_distance("1ผข1234", "1กข1234") == 1.0  # not a look-alike
    assert weighted_distance("ฎ1", "ฏ1") == 0.5
    assert weighted_distance("1ผข1234", "1ผข123") == 1.0  # a deletion
    assert levenshtein("ภูเกิต", "ภูเก็ต") == 1


def test_region_lines_and_vehicle_types():
    betong = parse_plate("กข 1234\nเบตง", vehicle="car")
    assert betong.region == "เบตง" and betong.province is None and betong.line2 == "เบตง"
    assert betong.text == "กข 1234\nเบตง" and betong.vehicle == "car"
    assert parse_plate("กข 1234", "เบดง").region == "เบตง"  # OCR damage snaps to the region line too
    moto = parse_plate("กขค 123 ", "ยะลา", vehicle="motorcycle")
    assert (moto.letters, moto.number, moto.vehicle, moto.key) == ("กขค", "123", "motorcycle", "กขค123")
    digits = parse_plate("32-0394\nสงขลา")
    assert digits.registration == "32-0394" and digits.key == "320394" and digits.letters == ""
    with pytest.raises(ValueError, match="region"):
        Plate(letters="กข", number="1", region="หาดใหญ่")
    with pytest.raises(ValueError, match="three-consonant series has no category"):
        Plate(category="1", letters="กขค", number="1")
    with pytest.raises(ValueError, match="vehicle"):
        Plate(letters="กข", number="1", vehicle="truck")


def test_a_province_written_with_its_prefix_or_common_name_is_snapped():
    """Labels and hotlist text say 'จังหวัดภูเก็ต' (the short 'จ.ภูเก็ต' snapped already) or โคราช for นครราชสีมา;
    these were refused as no province."""
    from serve.plate.hotlist import _parse_entry_text

    assert _parse_entry_text("กข 1234 จังหวัดภูเก็ต").province == "ภูเก็ต"
    assert _parse_entry_text("กข 1234 จ.ภูเก็ต").province == "ภูเก็ต"
    assert parse_plate("1กข 1234", "โคราช").province == "นครราชสีมา"
    assert snap_province("จังหวัด")[0] is None  # the word alone is no province


def test_a_plate_written_in_its_printed_row_order_is_parsed():
    """A motorcycle plate prints its letters, the province, then the number: labels and hotlist text copied row by
    row ('1กข ภูเก็ต 123', or one row a line in an Excel cell) were refused as no registration."""
    from serve.plate.hotlist import HotlistError, _parse_entry_text

    for text in ("1กข ภูเก็ต 123", "1กข\nภูเก็ต\n123", "ภูเก็ต 1กข 123", "1กข 123 ภูเก็ต"):
        assert _parse_entry_text(text).text == "1กข 123\nภูเก็ต", text
    assert _parse_entry_text("กขค\nเบตง\n12").text == "กขค 12\nเบตง"
    with pytest.raises(HotlistError, match="'กข ภูเก็ต' is not a Thai registration"):
        _parse_entry_text("กข ภูเก็ต")
