"""kepler.gl map builders on the real Hat Yai registry, and the offline page rendered in headless Chromium."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer

from cluster.city import CityModel, load_city_graph
from cluster.citymap import build_map
from cluster.config import load_city
from cluster.registry import build_registry
from cluster.sim.fielddata import demo_layers
from twin import maps
from twin.kepler_offline import offline_html

GEOD = Geod(ellps="WGS84")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def hatyai():
    """Hat Yai's generated street graph, its registry and a schema-valid demo day of layers."""
    city = load_city("hatyai")
    G = load_city_graph(city)
    reg = build_registry(city, G)
    return city, G, reg, demo_layers(CityModel(reg.city, G, reg), seed=3)


def _utm_area(poly: shapely.Polygon) -> float:
    return maps.project_wgs84(poly, 32647).area


def test_coverage_wedge_is_a_sector_pointing_along_the_heading() -> None:
    lon, lat = 100.4679, 7.0046
    w = maps.coverage_wedges([lon], [lat], [90.0], [60.0], [40.0], arc_points=61)[0]
    # A 60° sector of 40 m: pi r² / 6, within the arc's chord approximation.
    assert _utm_area(w) == pytest.approx(math.pi * 40**2 / 6, rel=0.01)
    east = GEOD.fwd(lon, lat, 90.0, 20.0)
    west = GEOD.fwd(lon, lat, -90.0, 20.0)
    north = GEOD.fwd(lon, lat, 0.0, 20.0)
    east_far = GEOD.fwd(lon, lat, 90.0, 45.0)
    assert w.contains(shapely.Point(east[0], east[1]))
    assert not w.contains(shapely.Point(west[0], west[1]))
    assert not w.contains(shapely.Point(north[0], north[1]))
    assert not w.contains(shapely.Point(east_far[0], east_far[1]))
    disc = maps.coverage_wedges([lon], [lat], [0.0], [360.0], [30.0], arc_points=121)[0]
    assert _utm_area(disc) == pytest.approx(math.pi * 30**2, rel=0.01)
    # Coverage share of a zone: one 360° camera of 30 m in the middle of a 60 m square covers pi/4 of it.
    sq = maps.project_wgs84(shapely.Point(lon, lat), 32647).buffer(30, cap_style="square")
    t = Transformer.from_crs(32647, 4326, always_xy=True)
    sq_wgs = shapely.transform(sq, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    one = pd.DataFrame({"lon": [lon], "lat": [lat], "heading_deg": [0.0], "fov_deg": [360.0], "range_m": [30.0]})
    assert maps.coverage_share(one, sq_wgs, 32647) == pytest.approx(math.pi / 4, rel=0.01)
    with pytest.raises(maps.MapInputError, match="range_m and fov_deg must be > 0"):
        maps.coverage_wedges([lon], [lat], [0.0], [60.0], [0.0])


@pytest.mark.services
def test_camera_part_on_the_real_registry(hatyai) -> None:
    _, _, reg, _ = hatyai
    cams = reg.cameras_frame()  # registry columns: id, lon, lat, heading_deg, fov_deg, range_m, owner, ...
    part = maps.cameras(cams)
    points, cov = part.datasets["cameras"], part.datasets["cameras_coverage"]
    assert len(points) == len(cams) == reg.city.camera_count
    assert set(points["camera_id"]) == set(cams["id"])
    assert len(cov["features"]) == len(cams)
    assert [ly["type"] for ly in part.layers] == ["geojson", "point"]
    pt = part.layers[1]["config"]
    assert pt["columns"] == {"lat": "lat", "lng": "lon"}
    assert part.layers[1]["visualChannels"]["colorField"] == {"name": "owner", "type": "string"}
    cmap = dict(pt["visConfig"]["colorRange"]["colorMap"])
    assert cmap["police"] == maps.OWNER_COLORS["police"]
    assert set(cmap) == set(cams["owner"])
    # Every wedge holds the point half way along its camera's view axis and not the point behind it.
    for f, c in zip(cov["features"][:50], cams.itertuples(), strict=False):
        w = shapely.geometry.shape(f["geometry"])
        ahead = GEOD.fwd(c.lon, c.lat, c.heading_deg, c.range_m / 2)
        behind = GEOD.fwd(c.lon, c.lat, c.heading_deg + 180.0, c.range_m / 2)
        assert f["properties"]["camera_id"] == c.id
        assert w.contains(shapely.Point(ahead[0], ahead[1]))
        assert not w.contains(shapely.Point(behind[0], behind[1]))
        assert _utm_area(w) == pytest.approx(math.pi * c.range_m**2 * c.fov_deg / 360, rel=0.03)


@pytest.mark.services
def test_alerts_trips_risk_and_density_configs(hatyai) -> None:
    _, _, reg, layers = hatyai
    al = layers["alerts"]
    part = maps.alerts(al, color_by="status")
    pts = part.datasets["alerts"]
    assert len(pts) == len(al.dropna(subset=["lon", "lat"]))
    local = pd.to_datetime(al["ts"], utc=True).dt.tz_convert("Asia/Bangkok")
    assert sorted(pts["ts"]) == sorted(local.dt.strftime("%Y-%m-%d %H:%M:%S"))
    (flt,) = part.filters
    assert flt["type"] == "timeRange" and flt["name"] == ["ts"] and flt["dataId"] == ["alerts"]
    lo = pd.Timestamp(local.min().tz_localize(None).floor("s"), tz="UTC")
    assert flt["value"][0] == int(lo.timestamp() * 1000)
    cmap = dict(part.layers[0]["config"]["visConfig"]["colorRange"]["colorMap"])
    assert set(cmap) == set(al["status"]) and cmap["confirmed"] == maps.ALERT_STATUS_COLORS["confirmed"]

    pings = layers["patrol_pings"]
    trips = maps.patrol_trips(pings)
    gj = trips.datasets["patrol_trips"]
    assert len(gj["features"]) == pings["trip_id"].nunique() == reg.city.patrol_units
    assert trips.layers[0]["type"] == "trip" and trips.layers[0]["config"]["columns"] == {"geojson": "_geojson"}
    for f in gj["features"]:
        coords = np.array(f["geometry"]["coordinates"])
        assert coords.shape[1] == 4  # lon, lat, altitude, time
        assert np.all(np.diff(coords[:, 3]) > 0)
        own = pings[pings["trip_id"] == f["properties"]["trip_id"]]
        assert len(coords) == len(own)
        first_utc = pd.Timestamp(own["ts"].min()).tz_convert("UTC").timestamp()
        assert coords[0, 3] - first_utc == pytest.approx(7 * 3600)  # local Bangkok wall clock (UTC+7)
    utc = maps.trips_geojson(pings, tz=None)
    t0 = min(f["geometry"]["coordinates"][0][3] for f in utc["features"])
    assert t0 == pytest.approx(pd.Timestamp(pings["ts"].min()).timestamp())

    risk = maps.risk_points(layers["risk_points"])
    assert risk.layers[0]["visualChannels"]["colorField"]["name"] == "status"
    assert set(risk.datasets["risk_points"]["reported_date"].str.len()) == {10}

    hexes = maps.incident_density(al, cell_m=50)
    assert hexes.layers[0]["type"] == "hexagon"
    assert hexes.layers[0]["config"]["visConfig"]["worldUnitSize"] == pytest.approx(0.05)
    assert maps.incident_density(al, kind="heatmap").layers[0]["type"] == "heatmap"


@pytest.mark.services
def test_bad_input_says_what_is_wrong(hatyai) -> None:
    _, _, reg, layers = hatyai
    with pytest.raises(maps.MapInputError, match=r"missing column.*heading_deg"):
        maps.cameras(reg.cameras_frame().drop(columns=["heading_deg"]))
    bad = layers["risk_points"].copy()
    bad.loc[2, "lat"] = 123.0
    with pytest.raises(maps.MapInputError, match="row 2 has no valid WGS84 lat"):
        maps.risk_points(bad)
    with pytest.raises(maps.MapInputError, match="basemap"):
        maps.TwinMap(centre=(100.0, 7.0), basemap="satellite")
    m = maps.TwinMap(centre=(100.0, 7.0)).add(maps.alerts(layers["alerts"]), maps.alerts(layers["alerts"]))
    with pytest.raises(maps.MapInputError, match="used twice"):
        _ = m.datasets


@pytest.mark.services
def test_map_config_and_jupyter_widget(hatyai) -> None:
    _, G, reg, layers = hatyai
    m, demo = build_map(CityModel(reg.city, G, reg), layers)
    assert demo == []
    cfg = m.config()["config"]
    data = m.datasets
    assert cfg["mapStyle"]["styleType"] == "no_map"
    ids = [ly["config"]["dataId"] for ly in cfg["visState"]["layers"]]
    assert set(ids) == set(data)
    assert ids[0] == "alerts" and ids[-1] == "streets"  # first listed is drawn on top
    for ly in cfg["visState"]["layers"]:
        ds = data[ly["config"]["dataId"]]
        for col in ly["config"]["columns"].values():
            assert col == "_geojson" if isinstance(ds, dict) else col in ds.columns
    assert cfg["visState"]["animationConfig"]["currentTime"] > 1e12  # ms, the end of the trips
    (lon, lat), zoom = m.centre, m.zoom
    assert reg.zone.contains(shapely.Point(lon, lat)) and 14 < zoom < 18

    w = m.widget(height=500)
    assert w.height == 500 and set(w.data) == set(data)
    assert w.config["config"]["visState"]["layers"] == cfg["visState"]["layers"]
    from keplergl.serializers import data_to_json

    wire = data_to_json(w.data, w)
    assert {v["format"] for v in wire.values()} == {"df", "geojson"}
    json.dumps(wire, default=str)


@pytest.mark.services
def test_offline_page_is_self_contained(hatyai) -> None:
    _, G, reg, layers = hatyai
    m, _ = build_map(CityModel(reg.city, G, reg), layers)
    html = offline_html(m.datasets, m.config(), title="t")
    low = html.lower()
    assert "<script src=" not in low and "<link" not in low and "unpkg.com/kepler" not in low.split(
        'id="ssz-kepler-bundle"')[0]
    assert 'type="module"' in html and "DecompressionStream" in html
    # The datasets are inline, and no '</script' can end an element early.
    model = html.split('id="ssz-kepler-model">', 1)[1].split("</script>", 1)[0]
    state = json.loads(model)
    assert set(state["data"]) == set(m.datasets)
    assert state["config"]["config"]["mapStyle"]["styleType"] == "no_map"


def _screenshot(html: Path, png: Path, tmp: Path) -> None:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all, even where the machine has some
           "--run-all-compositor-stages-before-draw",  # deck.gl's canvas gets the page's real size
           f"--user-data-dir={tmp / 'chromium-profile'}", "--window-size=1280,800",
           "--virtual-time-budget=20000", f"--screenshot={png}", html.as_uri()]
    subprocess.run(cmd, check=True, timeout=180, capture_output=True)


def _near(img: np.ndarray, color: str, tol: int = 14) -> int:
    rgb = np.array(maps.hex_rgb(color))
    return int((np.abs(img.astype(int) - rgb).max(axis=2) <= tol).sum())


@pytest.mark.services
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium for the offline render test")
def test_exported_map_renders_offline_in_chromium(hatyai, tmp_path: Path) -> None:
    from PIL import Image

    _, G, reg, layers = hatyai
    m, _ = build_map(CityModel(reg.city, G, reg), layers)
    page = m.to_html(tmp_path / "hatyai.html")
    png = tmp_path / "hatyai.png"
    _screenshot(page, png, tmp_path)
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (800, 1280, 3)
    # The page started (no error banner) and drew the data layers in their configured colours.
    assert _near(img, "#A31515", tol=4) < 500, "the page shows its error banner"
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours > 400, f"only {colours} distinct colours: the map looks blank"
    seen = {name: _near(img, c) for name, c in {
        "police cameras": maps.OWNER_COLORS["police"], "streets": maps.STREET_COLOR,
        "face alerts": maps.ALERT_KIND_COLORS["face"], "patrol trips": maps.TRIP_COLORS[0],
        "zone boundary": maps.ZONE_COLOR}.items()}
    assert all(n > 30 for n in seen.values()), seen
    # Control: the same page without datasets shows none of those colours.
    empty = maps.TwinMap(centre=m.centre, zoom=m.zoom).to_html(tmp_path / "empty.html")
    _screenshot(empty, tmp_path / "empty.png", tmp_path)
    blank = np.asarray(Image.open(tmp_path / "empty.png").convert("RGB"))
    assert _near(blank, maps.OWNER_COLORS["police"]) < 5 and _near(blank, maps.ALERT_KIND_COLORS["face"]) < 5


@pytest.mark.services
def test_places_part_keeps_the_patrol_round(hatyai) -> None:
    city, _, reg, _ = hatyai
    part = maps.places(reg.places_frame(), kinds=["qr", "sos"])
    pts = part.datasets["places"]
    assert (pts["kind"] == "qr").sum() == city.checkpoints
    assert (pts["kind"] == "sos").sum() == len(city.sos_poles)
    cmap = dict(part.layers[0]["config"]["visConfig"]["colorRange"]["colorMap"])
    assert cmap == {"qr": maps.PLACE_KIND_COLORS["qr"], "sos": maps.PLACE_KIND_COLORS["sos"]}
