"""The face app on real Ray Serve: batched detect/identify through handles, enrolment, and calls from an actor.

One Serve application for the whole module (models load once in its replica).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import ray
from ray import serve

from serve.face.deployment import FaceAppConfig, build_face_app, face_handle
from serve.face.schemas import ImageFaces, WarrantRecord
from serve.face.service import FaceServiceConfig

APP = "face-test"


@pytest.fixture(scope="module")
def face_app(serve_url, tmp_path_factory):
    """The face app deployed once for this module, with a private watchlist; deleted afterwards."""
    d = tmp_path_factory.mktemp("face-serve")
    cfg = FaceAppConfig(
        service=FaceServiceConfig(watchlist_name="serve-test", watchlist_path=str(d / "watchlist.json"),
                                  audit_path=str(d / "audit.jsonl")),
        max_batch_size=4, batch_wait_timeout_s=0.5, num_cpus=0.5, num_gpus=0)
    handle = serve.run(build_face_app(cfg), name=APP, route_prefix=None)
    yield handle
    serve.delete(APP)


def test_deployment_options_follow_config():
    app_cfg = FaceAppConfig(max_batch_size=16, num_gpus=1, max_ongoing_requests=4)
    app = build_face_app(app_cfg)
    dep = app._bound_deployment
    assert dep.max_ongoing_requests >= 16
    assert dep.ray_actor_options["num_gpus"] == 1


def test_batched_detect_and_identify_through_handle(face_app, astronaut, astronaut_mirror):
    rec = face_app.enrol.remote(
        WarrantRecord(warrant_no="W-SERVE-1", court="Betong Provincial Court", offence="drug trafficking",
                      expires=date.today() + timedelta(days=30)).model_dump(mode="json"),
        {"astronaut.png": astronaut}, "officer:test").result()
    assert rec.warrant_no == "W-SERVE-1" and rec.photos == 1
    blank = np.zeros((200, 200, 3), np.uint8)
    responses = [face_app.detect.remote(im) for im in (astronaut, astronaut_mirror, blank, astronaut)]
    dets = [r.result(timeout_s=120) for r in responses]
    assert all(isinstance(x, ImageFaces) for x in dets)
    assert [len(x.faces) for x in dets] == [1, 1, 0, 1] and dets[0].faces[0].detection.prob > 0.99
    ids = [face_app.identify.remote(im) for im in (astronaut_mirror, blank)]
    got = [r.result(timeout_s=120) for r in ids]
    assert got[0].faces[0].candidates[0].warrant_no == "W-SERVE-1" and got[0].faces[0].candidates[0].match
    assert got[1].faces == []
    health = face_app.health.remote().result()
    assert health["engine"]["engine"] == "dlib" and health["watchlist"]["size"] == 1
    assert max(health["recent_batch_sizes"]) > 1, health["recent_batch_sizes"]


def test_bad_image_fails_only_its_request(face_app, astronaut):
    bad = face_app.detect.remote(np.zeros((10, 10), np.float32))
    good = face_app.detect.remote(astronaut)
    with pytest.raises(Exception, match="uint8"):
        bad.result(timeout_s=120)
    assert len(good.result(timeout_s=120).faces) == 1


@ray.remote(num_cpus=0)
class _Caller:
    """Stands in for a camera actor: gets the handle inside the actor and sends a frame."""

    def detect(self, img: np.ndarray) -> int:
        h = face_handle(APP)
        return len(h.detect.remote(img).result(timeout_s=120).faces)


def test_handle_usable_from_an_actor(face_app, astronaut):
    caller = _Caller.remote()
    assert ray.get(caller.detect.remote(astronaut), timeout=180) == 1
    ray.kill(caller)


def test_serve_bench_on_the_running_app(face_app):
    from serve.face.bench import bench_faces_serve

    rep = bench_faces_serve(batch_sizes=(1, 2), faces_per_size=2, width=320, height=260, handle=face_app)
    assert rep["batch_sizes"]["1"]["faces"] == 2 and rep["batch_sizes"]["2"]["faces"] == 4
    fps = {int(k): v["faces_per_s"] for k, v in rep["batch_sizes"].items()}
    assert rep["best_batch_size"] == max(fps, key=fps.get)
    assert rep["batched_unbatched_ratio"] == pytest.approx(fps[rep["best_batch_size"]] / fps[1], abs=1e-3)
    assert rep["batched_unbatched_ratio"] >= 1.0
    # the replica reports the batches Serve formed: none larger than the app's max_batch_size (4)
    tail = rep["observed_batch_sizes_tail"]
    assert tail and all(1 <= b <= 4 for b in tail)
