"""The simulated city end to end on real Ray, Serve (MTCNN + dlib, Tesseract) and the S3 store.

One scripted run checks the promises one by one: a wanted person walking up to a camera in daylight is alerted,
a person who is not on the watchlist walking the same way is never alerted and nothing of theirs is stored,
a hot-listed car passing a plate camera is alerted. One scenario run (the generated day) checks the evaluation,
the report and the twin snapshot.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from cluster.sim.city import SimConfig, build
from cluster.sim.run import api_client, commit_layers, enrol, own_list, run, withdraw
from cluster.sim.scenario import ScenarioConfig

NOON = 12 * 3600.0


@pytest.fixture(scope="module")
def sim():
    return build(SimConfig(city="hatyai", face_cameras=2, plate_cameras=1, stream_s=30,
                           scenario=ScenarioConfig(seed=0, day="2026-11-01")))


def _keys(store, bucket: str, prefix: str) -> list[str]:
    return [o.object_name for o in store.client.list_objects(bucket, prefix=prefix, recursive=True)]


def _walk_in(t0: float, seconds: float, start_m: float, end_m: float, b: float, step: float = 0.25):
    t = np.arange(0.0, seconds + 1e-9, step)
    return list(t0 + t), list(start_m + (end_m - start_m) * t / seconds), [b] * len(t)


@pytest.fixture(scope="module", autouse=True)
def lists_left_clean(ssz_api, sim):
    """The simulation never touches the session's operational lists (other tests own them): before and after the
    module they hold no simulated entry; the simulation's own list is emptied at the end."""
    def operational(client):
        return ([r["warrant_no"] for r in client.get("/v1/watchlist").json() if r["warrant_no"].startswith("SIM-")]
                + [r["id"] for r in client.get("/v1/hotlist", params={"include_expired": True}).json()
                   if r["id"].startswith("SIM-")])

    with api_client(ssz_api[0].url) as client:
        before = operational(client)
    yield
    with api_client(ssz_api[0].url) as client:
        assert operational(client) == before == []
        withdraw(client, list_name=own_list(sim))
        assert withdraw(client, list_name=own_list(sim)) == []


@pytest.fixture(scope="module")
def scripted(sim, ssz_api, ray_cluster, s3_store):
    """A wanted and an unlisted person walk up to a face camera at noon, a hot-listed car passes a plate camera."""
    from actors.sources import CameraSpec, SimPass, SimScript
    from cluster.pipeline import run_cameras
    from cluster.sim.run import _epoch

    st, _ = ssz_api
    client = api_client(st.url)
    enrolled = enrol(sim, client)
    client.close()
    ag = sim.scenario.agents
    wanted = ag[(ag["kind"] == "person") & ag["listed"]].iloc[0]
    other = ag[(ag["kind"] == "person") & ~ag["listed"]].iloc[0]
    car = ag[(ag["kind"] == "vehicle") & ag["listed"]].iloc[0]
    face_cam, plate_cam = sim.rendered_cameras[0], sim.rendered_cameras[-1]
    epoch = _epoch("2026-10-01")
    passes = []
    for sid, person, t0 in (("w", wanted, NOON), ("u", other, NOON + 20)):
        t, a, b = _walk_in(t0, 9.0, 10.0, 1.6, 0.3)
        passes.append(SimPass(sighting_id=sid, agent_kind="person", t=t, a=a, b=b, toward=[True] * len(t),
                              photo=person["photos"][0], seed=len(passes)))
    t, a, b = _walk_in(NOON, 3.0, 11.0, 5.0, -1.75)
    car_pass = SimPass(sighting_id="c", agent_kind="vehicle", t=t, a=a, b=b, toward=[True] * len(t),
                       plate=car["plate"], seed=5)
    specs = {
        face_cam: CameraSpec(id=face_cam, url=f"sim://{face_cam}", realtime=True, fps=5.0, sim_script=SimScript(
            camera_kind="cctv", fov_deg=70.0, windows=[(NOON - 2, NOON + 10), (NOON + 18, NOON + 30)], passes=passes,
            assets_dir=str(sim.faces_dir), epoch=epoch)),
        plate_cam: CameraSpec(id=plate_cam, url=f"sim://{plate_cam}", realtime=True, fps=10.0, sim_script=SimScript(
            camera_kind="plate", fov_deg=35.0, windows=[(NOON - 1, NOON + 4)], passes=[car_pass], epoch=epoch)),
    }
    res = run_cameras(sim.city, sim.registry, specs, duration_s=300, until_done=True, sample_fps=3.0,
                      shard_options={"block_when_full": True}, commit=False, list_name=own_list(sim))
    mine = [a for a in res.alerts if a["camera_id"] in specs and str(a.get("track_id", "")).count(":") == 2
            and abs(float(a["track_id"].split(":")[1]) / 1000 - epoch - NOON) < 60]
    return {"alerts": mine, "wanted": wanted, "other": other, "car": car, "face_cam": face_cam,
            "plate_cam": plate_cam, "enrolled": enrolled, "result": res}


def test_wanted_person_walking_up_in_daylight_is_alerted(scripted):
    faces = [a for a in scripted["alerts"] if a["kind"] == "face"]
    assert [a["subject_id"] for a in faces] == [scripted["wanted"]["subject_id"]]
    a = faces[0]
    assert a["camera_id"] == scripted["face_cam"] and a["status"] == "new" and a["evidence_key"]
    assert a["frames"] >= 3 and 0.5 < a["score"] <= 1.0  # k-frame confirmation, match score 1 - distance


def test_unlisted_person_is_never_alerted_and_nothing_of_theirs_is_stored(scripted, sim, s3_store, dlib_embedder,
                                                                          face_detector):
    from cluster import serving
    from serve.face.images import load_rgb
    from twin.objectstore import EVIDENCE_BUCKET, TWIN_BUCKET

    other = scripted["other"]
    assert all(a["subject_id"] != other["identity"] for a in scripted["alerts"])
    stats = {c.camera_id: c for s in scripted["result"].stats for c in s.cameras}
    assert stats[scripted["face_cam"]].detections > 0  # both faces were seen, only one was alerted
    # the simulation's own watchlist holds the enrolled photos' embeddings and nothing else
    own = Path(serving.status().watchlist_path).parent / "lists" / own_list(sim) / "warrants.json"
    doc = json.loads(own.read_text(encoding="utf-8"))
    ag = sim.scenario.agents.set_index("subject_id")
    stored = []
    for rec in doc["records"]:
        if rec["record"]["warrant_no"].startswith("SIM-"):
            assert rec["n"] == len(ag.loc[rec["record"]["warrant_no"], "enrol_photos"])
        stored.append(np.frombuffer(base64.b64decode(rec["embeddings"]), "<f4").reshape(rec["n"], -1))
    stored = np.concatenate(stored)
    photo = load_rgb(str(sim.faces_dir / other["photos"][0]))
    dets = face_detector.detect([photo])[0]
    probe = dlib_embedder.embed(dlib_embedder.chips(photo, dets[:1]))
    assert np.linalg.norm(stored - probe, axis=1).min() > 0.3  # not theirs (a stored copy would be ~0)
    # evidence and alert records exist only for the alerts raised
    ids = {a["alert_id"] for a in scripted["alerts"]}
    evidence = [k for k in _keys(s3_store, EVIDENCE_BUCKET, f"alerts/{sim.city.id}/") if any(i in k for i in ids)]
    assert len(evidence) == len(ids)
    for key in _keys(s3_store, TWIN_BUCKET, f"alerts/{sim.city.id}/records/"):
        rec = json.loads(s3_store.get_bytes(TWIN_BUCKET, key))
        assert "embedding" not in json.dumps(rec).lower()
        assert rec.get("subject_id") in (None, *scripted["enrolled"]["watchlist"], *scripted["enrolled"]["hotlist"],
                                         "W-API-1", "H-1")


def test_hot_listed_plate_passing_a_plate_camera_is_alerted(scripted):
    plates = [a for a in scripted["alerts"] if a["kind"] == "plate"]
    assert [a["subject_id"] for a in plates] == [scripted["car"]["subject_id"]]
    assert plates[0]["camera_id"] == scripted["plate_cam"]


def test_scenario_run_evaluation_report_and_twin(sim, scripted, ssz_api, ray_cluster, s3_store, tmp_path):
    from cluster.sim.evaluation import evaluate
    from cluster.sim.report import write_report
    from twin.snapshots import SnapshotStore

    st, _ = ssz_api
    r = run(sim, api_url=st.url)
    earlier = {a["alert_id"] for a in scripted["result"].alerts}  # the same city's sink still holds these
    assert earlier and not earlier & {a["alert_id"] for a in r.result.alerts}  # a run reports its own alerts
    with api_client(st.url) as client:  # the simulated warrants were withdrawn from its own list when it ended
        assert r.enrolled["watchlist"] and r.enrolled["hotlist"]
        lst = {"list": own_list(sim)}
        assert not [w for w in client.get("/v1/watchlist", params=lst).json() if w["warrant_no"].startswith("SIM-")]
        assert not [h for h in client.get("/v1/hotlist", params={"include_expired": True, **lst}).json()
                    if h["id"].startswith("SIM-")]
    res = evaluate(sim, r)
    face, plate = res.metrics
    assert face.kind == "face" and plate.kind == "plate"
    assert face.listed_sightings > 0 and face.recognisable > 0 and face.camera_hours > 0
    assert face.unlisted_alerted == 0 and plate.unlisted_alerted == 0  # privacy
    assert face.false_alerts <= 1 and (face.precision is None or face.precision >= 0.5)
    assert res.frames_dropped == 0 and res.frames_decoded > res.frames_processed > 0  # lossless, gated
    assert set(res.alerts["true"]) <= {True, False} and res.alerts["true"].sum() == face.true_alerts + plate.true_alerts
    rend = res.sightings[res.sightings["played"]]
    assert len(rend) and rend["camera_id"].isin(sim.rendered_cameras).all()
    files = write_report(res, tmp_path / "report")
    html = Path(files.html).read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and sim.rendered_cameras[0] in html
    snap = commit_layers(sim, "test: simulated day")
    tables = SnapshotStore(s3_store, sim.city.id).open(snap).tables()
    kinds = set(tables["alerts"].column("kind").to_pylist())
    assert "sos" in kinds and tables["patrol_pings"].num_rows > 100 and tables["checkpoint_scans"].num_rows > 10
