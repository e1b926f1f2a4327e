"""City configs load and validate; a broken file is reported with file, field and reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cluster.config import ConfigError, list_cities, load_city, load_city_file

BETONG_POINTS = ["หน้าโรงแรมเมอร์ลิน", "แยกหอนาฬิกา", "แยกโรงแรมศรีเบตง", "แยกเหลี่ยนหยู", "แยกตลาดสด",
                 "หน้า 7-11 สาขาจันทโรทัย"]


def test_every_bundled_city_loads():
    cities = list_cities()
    assert set(cities) >= {"hatyai", "betong", "sukhothai", "chiangmai"}
    for cid in cities:
        assert load_city(cid).id == cid


def test_camera_counts_and_zones():
    hatyai, betong = load_city("hatyai"), load_city("betong")
    assert hatyai.cameras.count == 617 and hatyai.cameras.plate_count > 0
    assert hatyai.zone.area_km2 == pytest.approx(0.47)
    assert hatyai.station_th == "สภ.หาดใหญ่"
    assert betong.cameras.count == 204
    assert betong.station_th == "สภ.เบตง"


def test_betong_report_points_and_sos_pole():
    betong = load_city("betong")
    points = [p.name for p in betong.places if p.kind == "report_point"]
    assert points == BETONG_POINTS
    assert all(p.location is None and p.source == "generated" for p in betong.places if p.kind == "report_point")
    assert [s.kind for s in betong.sos_poles] == ["tourist_police"]


def test_sukhothai_zone():
    s = load_city("sukhothai")
    assert s.zone.area_km2 == pytest.approx(0.69)
    assert s.zone.name_th == "ตำบลธานี"
    assert {c.name: c.population for c in s.zone.communities} == {
        "ราชธานี": 655, "ประชาร่วมใจ": 665, "วิเชียรจำนงค์": 680}
    assert {k.value: v for k, v in s.key_places.items()} == {
        "school": 3, "market": 2, "gold_shop": 8, "bank": 2, "government": 2, "hotel": 4, "temple": 1}


def test_chiangmai_uses_the_shared_osm_extract(shared_data):
    from cluster.config import city_path

    c = load_city("chiangmai")
    path = c.street_graph.resolved_path(city_path("chiangmai").parent)
    assert path == shared_data / "osm_thai_cities" / "chiangmai_suthep_nimman_roads.osm.gz"
    assert path.exists()


def _write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


def _broken(tmp_path: Path, name: str, replace: tuple[str, str]) -> Path:
    text = (Path(__file__).resolve().parents[2] / "cluster" / "cities" / "betong.yaml").read_text(encoding="utf-8")
    assert replace[0] in text
    text = text.replace("id: betong", f"id: {name}").replace(*replace)
    p = tmp_path / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("replace", "field", "reason"),
    [
        (("  count: 204", "  count: -4"), "cameras.count", "greater than or equal to 0"),
        (("  count: 204", "  count: many"), "cameras.count", "valid integer"),
        (("  sample_fps: 2", "  sample_fps: 2\n  zoom: 3"), "cameras.zoom", "unknown field"),
        (("  area_km2: 0.5", "  area_km2: 0"), "zone.area_km2", "greater than 0"),
        (("station: {lon: 101.0713, lat: 5.7745}", "station: {lon: 201.0, lat: 5.7745}"), "station.lon",
         "less than or equal to 180"),
        (("  kind: generated", "  kind: osm_file"), "street_graph", "needs the field 'path'"),
        (("  fps: 15", "  fps: 1"), "cameras", "sample_fps (2.0) cannot exceed fps"),
        (("  fps: 15", "  fps: 15\n  max_megapixels: 0"), "cameras.max_megapixels",
         "max megapixels must be between 0.01 and 1000 (the largest picture a camera may send"),
        (("  fps: 15", "  fps: 15\n  max_megapixels: -5"), "cameras.max_megapixels",
         "leave it out for the default: the city's cameras.max_megapixels, else 130 MP), not -5"),
        (("  fps: 15", "  fps: 15\n  max_megapixels: 1e9"), "cameras.max_megapixels", "not 1e+09"),
        (("  fps: 15", "  fps: 15\n  max_megapixels: .nan"), "cameras.max_megapixels", "not nan"),
    ],
)
def test_broken_config_names_file_field_and_reason(tmp_path, replace, field, reason):
    p = _broken(tmp_path, "broken", replace)
    with pytest.raises(ConfigError) as info:
        load_city_file(p)
    msg = str(info.value)
    assert str(p) in msg
    assert f"field '{field}" in msg
    assert reason in msg


def test_unreadable_files_are_named(tmp_path):
    p = _write(tmp_path, "x", "id: x\nzone: [unclosed\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: not valid YAML"):
        load_city_file(p)
    with pytest.raises(ConfigError, match="file not found"):
        load_city_file(tmp_path / "missing.yaml")
    q = _broken(tmp_path, "other", ("  count: 204", "  count: 204"))
    q = q.rename(tmp_path / "renamed.yaml")
    with pytest.raises(ConfigError, match="field 'id': 'other' must match the file name 'renamed'"):
        load_city_file(q)
    with pytest.raises(ConfigError, match="unknown city 'atlantis'"):
        load_city("atlantis")


def _undescribed(model: type, seen: set[type] | None = None) -> list[str]:
    """Fields of ``model`` and of the models nested in it (lists, dicts, optionals) that have no description."""
    import typing

    from pydantic import BaseModel

    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, f in model.model_fields.items():
        if not (f.description or "").strip():
            out.append(f"{model.__name__}.{name}")
        stack = [f.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                out += _undescribed(t, seen)
            stack += list(typing.get_args(t))
    return out


def test_every_operator_facing_field_says_what_it_is() -> None:
    from cluster.cli.config import operator_models

    models = operator_models()
    assert set(models) == {"city", "alert-sink"}
    missing = [m for model in models.values() for m in _undescribed(model)]
    assert not missing, f"operator-facing fields without a description: {missing}"
    # the walk reaches the nested models (zone, graph, fleet, places, webhooks), so the check covers them
    seen: set[type] = set()
    for model in models.values():
        _undescribed(model, seen)
    assert {"ZoneConfig", "GraphSpec", "CameraFleet", "PlaceSpec", "MobileCamera", "GeoPoint", "Community",
            "WebhookConfig", "CameraPlace"} <= {t.__name__ for t in seen}


def test_config_schema_prints_the_described_json_schema() -> None:
    import json

    from typer.testing import CliRunner

    from cluster.cli import app

    res = CliRunner().invoke(app, ["config", "schema"])
    assert res.exit_code == 0, res.output
    schema = json.loads(res.output)
    zone = schema["$defs"]["ZoneConfig"]["properties"]["area_km2"]
    assert "km²" in zone["description"] and zone["exclusiveMinimum"] == 0 and zone["maximum"] == 100
    res = CliRunner().invoke(app, ["config", "schema", "alert-sink"])
    assert res.exit_code == 0 and "X-SSZ-Signature" in json.loads(res.output)["$defs"]["WebhookConfig"]["properties"][
        "secret"]["description"]
    res = CliRunner().invoke(app, ["config", "schema", "bogus"])
    assert res.exit_code == 2 and "unknown model 'bogus'" in res.output


def test_chosen_city_is_ssz_city_else_the_notebooks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.config import CITY_ENV, chosen_city

    monkeypatch.delenv(CITY_ENV, raising=False)
    assert chosen_city("hatyai") == "hatyai"
    monkeypatch.setenv(CITY_ENV, " betong ")
    assert chosen_city("hatyai") == "betong"
    monkeypatch.setenv(CITY_ENV, "nowhere")
    with pytest.raises(ConfigError, match="SSZ_CITY=nowhere: unknown city 'nowhere': bundled cities are "
                                          "betong, chiangmai, hatyai, sukhothai"):
        chosen_city("hatyai")
