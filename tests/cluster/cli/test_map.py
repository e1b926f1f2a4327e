"""``ssz twin map`` (cluster.cli.twin.map_cmd) against the session's real S3 store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cluster.city import CityModel, load_city_graph
from cluster.cli.twin import map_cmd
from cluster.config import load_city
from cluster.registry import build_registry
from cluster.sim.fielddata import demo_layers
from twin.schemas import LAYERS


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    a.command()(map_cmd)
    return a


def _model(html: str) -> dict:
    return json.loads(html.split('id="ssz-kepler-model">', 1)[1].split("</script>", 1)[0])


def test_map_of_the_latest_snapshot(app: typer.Typer, s3_store: object, tmp_path: Path) -> None:
    from cluster.citytwin import build_twin

    built = build_twin("hatyai", message="test_maps_cli")
    out = tmp_path / "nested" / "map.html"
    res = CliRunner().invoke(app, ["--city", "hatyai", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["snapshot"] >= built["snapshot"]
    assert summary["source"] == f"snapshot {summary['snapshot']}"
    # Cameras come from the snapshot; the layers a fresh twin has no rows for are demo layers.
    assert "cameras" not in summary["demo_layers"]
    assert summary["layers"]["cameras"] == built["layers"]["cameras"] == load_city("hatyai").camera_count
    assert summary["bytes"] == out.stat().st_size
    model = _model(out.read_text(encoding="utf-8"))
    cams = model["data"]["cameras"]["data"]
    assert len(cams["data"]) == built["layers"]["cameras"]
    assert "Safety Zone twin" in out.read_text(encoding="utf-8")[:2000]


def test_map_of_a_given_snapshot_and_bad_input(app: typer.Typer, s3_store: object, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["--city", "hatyai", "--out", str(tmp_path / "m.html"), "--snapshot", "987654"])
    assert res.exit_code == 2 and "no snapshot 0000987654" in res.output
    res = CliRunner().invoke(app, ["--city", "atlantis", "--out", str(tmp_path / "m.html")])
    assert res.exit_code == 2 and "unknown city 'atlantis'" in res.output
    res = CliRunner().invoke(app, ["--city", "hatyai", "--out", str(tmp_path / "m.html"), "--no-from-store",
                                   "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["snapshot"] is None
    assert summary["demo_layers"] == ["cameras", "alerts", "patrol_pings", "risk_points"]


@pytest.mark.services
def test_demo_layers_fit_the_twin_schemas_and_are_deterministic() -> None:
    city = load_city("betong")
    G = load_city_graph(city)
    reg = build_registry(city, G)
    a = demo_layers(CityModel(city, G, reg), seed=5)
    b = demo_layers(CityModel(city, G, reg), seed=5)
    c = demo_layers(CityModel(city, G, reg), seed=6)
    for name, df in a.items():
        assert list(df.columns) == LAYERS[name].names
        pd.testing.assert_frame_equal(df, b[name])
    assert not a["alerts"]["alert_id"].equals(c["alerts"]["alert_id"])
    al = a["alerts"]
    assert al["camera_id"].isin(reg.cameras_frame()["id"]).all()
    decided = al["status"] != "new"
    assert al.loc[decided, "status_by"].notna().all() and (al.loc[decided, "status_ts"] >= al.loc[decided, "ts"]).all()
    pings = a["patrol_pings"]
    assert pings["unit_id"].nunique() == city.patrol_units
    for _, g in pings.groupby("unit_id"):
        assert g["ts"].is_monotonic_increasing and len(g) > 10
    rp = a["risk_points"]
    fixed = rp[rp["status"] == "fixed"]
    assert (pd.to_datetime(fixed["fixed_date"]) >= pd.to_datetime(fixed["reported_date"])).all()


def test_map_without_out_goes_to_the_state_folder_not_the_current_one(app: typer.Typer, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The default was ./map.html: run from the checkout, it wrote into the repository."""
    from cluster.state import state_dir

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["--city", "hatyai", "--no-from-store", "--json"])
    assert res.exit_code == 0, res.output
    out = state_dir("out") / "hatyai" / "map.html"
    assert json.loads(res.stdout)["out"] == str(out) and out.stat().st_size > 100_000
    assert list(tmp_path.iterdir()) == []
