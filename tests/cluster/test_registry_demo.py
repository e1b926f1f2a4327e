"""Camera/place registry on the street graph, and the `ssz demo` main job end to end."""

from __future__ import annotations

import json

import pytest
import shapely
from typer.testing import CliRunner

from cluster.city import load_city_graph
from cluster.cli import app
from cluster.config import load_city
from cluster.registry import build_registry


@pytest.fixture(scope="module")
def hatyai():
    city = load_city("hatyai")
    return city, build_registry(city, load_city_graph(city))


@pytest.mark.services
def test_hatyai_registry_counts_and_marks(hatyai):
    city, reg = hatyai
    cams = reg.cameras_frame()
    assert (cams["kind"] == "cctv").sum() == 617
    assert (cams["kind"] == "plate").sum() == city.cameras.plate_count
    assert (cams["kind"] == "mobile").sum() == 3
    fixed = cams[cams["mount"] == "fixed"]
    assert (fixed["source"] == "generated").all()
    assert cams["id"].is_unique
    in_zone = fixed[fixed["kind"] == "cctv"]["in_zone"].mean()
    assert in_zone == pytest.approx(city.cameras.in_zone_share, abs=0.03)
    assert fixed["fov_deg"].between(*city.cameras.fov_deg).all() or (fixed["kind"] == "plate").any()
    # in_zone flags agree with the zone polygon.
    pts = shapely.points(fixed["lon"], fixed["lat"])
    assert (shapely.contains(reg.zone, pts) == fixed["in_zone"].to_numpy()).mean() > 0.99
    # Zone polygon has the configured area (measured in UTM).
    from cluster.registry import zone_polygon

    assert zone_polygon(city)[1].area / 1e6 == pytest.approx(0.47, rel=0.01)


@pytest.mark.services
def test_registry_is_deterministic(hatyai):
    city, reg = hatyai
    again = build_registry(city, load_city_graph(city))
    assert reg.cameras_frame().equals(again.cameras_frame())
    assert reg.places_frame().equals(again.places_frame())


@pytest.mark.services
def test_betong_places_generated_on_the_graph():
    city = load_city("betong")
    reg = build_registry(city, load_city_graph(city))
    places = reg.places_frame()
    rp = places[places["kind"] == "report_point"]
    assert len(rp) == 6 and (rp["source"] == "generated").all() and rp["in_zone"].all()
    assert (places["kind"] == "sos").sum() == 1
    assert (places["kind"] == "qr").sum() == city.checkpoints
    assert (reg.cameras_frame()["kind"] == "cctv").sum() == 204


@pytest.mark.services
def test_chiangmai_registry_on_real_osm(shared_data):
    city = load_city("chiangmai")
    G = load_city_graph(city)
    assert len(G) > 1500
    reg = build_registry(city, G)
    cams = reg.cameras_frame()
    assert (cams["kind"] == "cctv").sum() == 150
    edges = set(G.edges(keys=True))
    fixed = cams[cams["mount"] == "fixed"]
    assert all((int(u), int(v), int(k)) in edges or (int(v), int(u), int(k)) in edges
               for u, v, k in zip(fixed["edge_u"], fixed["edge_v"], fixed["edge_key"], strict=True))


def test_demo_main_job(s3_store, ray_cluster, tmp_path):
    res = CliRunner().invoke(app, ["demo", "--city", "betong", "--out", str(tmp_path), "--quick", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["cameras"]["cctv"] == 204
    assert summary["graph_nodes"] > 100
    assert "s3://twin/cities/betong/registry/cameras.parquet" in summary["objects"]
    import pyarrow.parquet as pq

    from twin.objectstore import TWIN_BUCKET

    data = s3_store.get_bytes(TWIN_BUCKET, "cities/betong/registry/cameras.parquet")
    assert (tmp_path / "cameras.parquet").read_bytes() == data
    assert pq.read_table(tmp_path / "cameras.parquet").num_rows == summary["cameras"]["cctv"] + summary[
        "cameras"]["plate"]


def test_cli_config_validate_reports_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: x\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["config", "validate", "hatyai", str(bad)])
    assert res.exit_code == 1
    lines = " ".join(res.output.split()).replace(" ok ", "\nok ").replace(" invalid ", "\ninvalid ").splitlines()
    assert any(ln.startswith("ok ") and "hatyai.yaml: hatyai, 668 cameras" in ln for ln in lines), res.output
    assert any(ln.startswith("invalid ") and "bad.yaml" in ln and "field 'name_th'" in ln for ln in lines), res.output


def test_demo_runs_the_whole_product(s3_store, ray_cluster, ssz_api, tmp_path):
    """`ssz demo` (small): models, a simulated day streamed through the shards, snapshot, map, report, summary."""
    from cluster.sim.run import api_client, withdraw

    try:
        res = CliRunner().invoke(app, ["demo", "--city", "betong", "--out", str(tmp_path), "--face-cameras", "1",
                                       "--plate-cameras", "1", "--stream-s", "15", "--json"])
    finally:
        with api_client(ssz_api[0].url) as client:
            assert withdraw(client) == []  # the demo used its own list, never the session's operational ones
            withdraw(client, list_name="sim-betong")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert len(summary["rendered_cameras"]) == 2 and summary["snapshot"]
    assert {m["kind"] for m in summary["evaluation"]} == {"face", "plate"}
    assert summary["simulation"]["cameras in the city"] == 204 + summary["cameras"].get("plate", 0)
    for name in ("map.html", "summary.txt", "report/report.html", "report/report.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    text = (tmp_path / "summary.txt").read_text(encoding="utf-8")
    assert "ground truth" in text and "alert latency" in text and "rendered live" in text
    from twin.snapshots import SnapshotStore

    tables = SnapshotStore(s3_store, "betong").open(summary["snapshot"]).tables()
    assert tables["cameras"].num_rows > 200 and tables["patrol_pings"].num_rows > 0
    assert "sos" in set(tables["alerts"].column("kind").to_pylist())
