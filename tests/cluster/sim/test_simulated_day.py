"""The simulated city: deterministic ground truth, camera geometry, scripts and twin layers (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from cluster.sim.city import SimConfig, build
from cluster.sim.run import twin_layers
from cluster.sim.scenario import ScenarioConfig
from cluster.sim.scripts import scripts, watched
from twin.optics import target_box

pytestmark = pytest.mark.services  # a simulated city, rendered frames: slow on its own


@pytest.fixture(scope="module")
def sim():
    return build(SimConfig(city="hatyai", face_cameras=3, plate_cameras=1, stream_s=40,
                           scenario=ScenarioConfig(seed=3)))


def test_ground_truth_is_deterministic_per_seed(sim):
    again = build(SimConfig(city="hatyai", face_cameras=3, plate_cameras=1, stream_s=40,
                            scenario=ScenarioConfig(seed=3)))
    assert again.rendered_cameras == sim.rendered_cameras
    assert again.scenario.fingerprint() == sim.scenario.fingerprint()
    cols = ["sighting_id", "camera_id", "agent_id", "t_in", "t_out", "max_px", "recognisable"]
    assert again.scenario.sightings[cols].equals(sim.scenario.sightings[cols])
    other = build(SimConfig(city="hatyai", face_cameras=3, plate_cameras=1, scenario=ScenarioConfig(seed=4)))
    assert other.scenario.fingerprint() != sim.scenario.fingerprint()


def test_agents_lists_and_photos(sim):
    ag = sim.scenario.agents
    wanted = ag[(ag["kind"] == "person") & ag["listed"]]
    assert len(wanted) == 4 and wanted["subject_id"].str.startswith("SIM-W-hatyai-").all()
    assert len(ag[(ag["kind"] == "vehicle") & ag["listed"]]) == 4
    assert ag.loc[~ag["listed"], "subject_id"].isna().all()
    for r in wanted.itertuples():  # cameras see other photos than the ones on the warrant
        assert len(r.enrol_photos) >= 2 and r.photos and not set(r.enrol_photos) & set(r.photos)
    # every identity is one agent: a wanted person's face never belongs to an unlisted agent
    persons = ag[ag["kind"] == "person"]
    assert persons["identity"].is_unique


def test_sightings_follow_the_camera_geometry(sim):
    cams = sim.registry.cameras_frame().set_index("id")
    s = sim.scenario.sightings
    assert len(s) > 500 and set(s["camera_kind"]) == {"cctv", "plate"}
    for r in s.sample(200, random_state=0).itertuples():
        a, b = np.asarray(r.a), np.asarray(r.b)
        cam = cams.loc[r.camera_id]
        assert (np.hypot(a, b) <= cam["range_m"] + 1e-6).all()
        assert (np.degrees(np.abs(np.arctan2(b, a))) <= cam["fov_deg"] / 2 + 1e-6).all()
        assert r.t_in <= r.t_out and np.all(np.diff(r.t) > 0)
        _, _, px, inside = target_box(r.camera_kind, a, b, float(cam["fov_deg"]))
        usable = inside & np.asarray(r.toward) & (r.camera_kind == "plate" or r.agent_kind != "vehicle")
        assert r.max_px == pytest.approx(float(px[usable].max()) if usable.any() else 0.0, abs=0.06)
        if r.recognisable:
            assert r.facing and (r.camera_kind == "plate" or not r.night)
    crowd = s[s["agent_kind"] == "crowd"]
    assert len(crowd) and not crowd["recognisable"].any()  # unknown faces are never drawn
    # cameras watch their own kind: people at CCTV, vehicles at plate cameras
    assert set(s.loc[s["camera_kind"] == "plate", "agent_kind"]) == {"vehicle"}
    traffic = s[(s["camera_kind"] == "cctv") & (s["agent_kind"] == "vehicle")]  # CCTV sees the traffic too
    assert len(traffic) > 20 and not traffic["recognisable"].any() and (traffic["max_px"] == 0).all()
    assert not watched(traffic).any() and watched(s[s["agent_kind"] == "person"]).all()
    # the focus cameras see the wanted: passes routed past them
    focus = s[s["camera_id"].isin(sim.rendered_cameras)]
    assert focus["listed"].sum() >= 8 and (focus["listed"] & focus["recognisable"]).sum() >= 3


def test_scripts_keep_footage_budget_and_listed_passes_first(sim):
    specs, sg = scripts(sim)
    assert list(specs) == sim.rendered_cameras
    for cam, spec in specs.items():
        script = spec.sim_script
        assert spec.url == f"sim://{cam}" and spec.realtime
        played = sum(b - a for a, b in script.windows)
        assert 0 < played <= 40 + 2 * 60  # budget, plus passes that overlap a chosen window
        mine = sg[sg["camera_id"] == cam]
        for r in mine[mine["played"]].itertuples():  # a rendered pass's close part lies in a window
            assert any(a <= r.window[0] and r.window[1] <= b for a, b in script.windows)
        drawn = {p.sighting_id for p in script.passes}
        assert set(mine.loc[mine["played"], "sighting_id"]) <= drawn
        # priority: when a camera has listed recognisable passes, they are the first it renders
        lr = mine[mine["listed"] & mine["recognisable"] & mine["window"].notna()]
        if len(lr):
            assert mine.loc[lr.index, "played"].any()
    first = specs[sim.rendered_cameras[0]]
    assert first.model_validate_json(first.model_dump_json()) == first


def test_patrols_qr_scans_and_sos_fit_the_twin(sim):
    tables = twin_layers(sim)
    places = sim.registry.places_frame()
    qr = set(places.loc[places["kind"] == "qr", "id"])
    scans = tables["checkpoint_scans"].to_pandas()
    assert len(scans) > 10 and set(scans["checkpoint_id"]) <= qr
    pings = tables["patrol_pings"].to_pandas()
    assert pings["unit_id"].nunique() == sim.city.patrol_units
    assert (pings["ts"].dt.tz_convert("Asia/Bangkok").dt.date == sim.scenario.config.day).mean() > 0.9
    trips = tables["patrol_trips"].to_pandas()
    assert (trips["checkpoints_scanned"] <= trips["checkpoints_planned"]).all()
    sos = tables["sos_reports"].to_pandas()
    alerts = tables["sos_alerts"].to_pandas()
    assert len(sos) == 4 and (alerts["kind"] == "sos").all() and set(alerts["subject_id"]) == set(sos["pole_id"])
