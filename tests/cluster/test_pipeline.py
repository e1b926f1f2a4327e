"""`ssz run` wiring on real Ray and the real store: registry -> sources -> shards -> sink -> snapshot."""

from __future__ import annotations

import pytest

from cluster.pipeline import RunConfig, camera_specs, run, status


def test_camera_specs_per_source():
    from cluster.city import load_city_graph
    from cluster.config import load_city
    from cluster.registry import build_registry

    city = load_city("betong")
    reg = build_registry(city, load_city_graph(city))
    sim = camera_specs(city, reg, RunConfig(city="betong", cameras=5))
    assert list(sim) == [c.id for c in reg.cameras if c.kind == "cctv"][:5]
    assert all(s.url == f"sim://{cid}" and s.realtime for cid, s in sim.items())
    rtsp = camera_specs(city, reg, RunConfig(city="betong", cameras=2, source="rtsp",
                                             url_template="rtsp://nvr.internal:554/{camera_id}"))
    assert [s.url for s in rtsp.values()] == [f"rtsp://nvr.internal:554/{cid}" for cid in rtsp]
    with pytest.raises(ValueError, match="url-template"):
        camera_specs(city, reg, RunConfig(city="betong", source="rtsp"))
    assert len(camera_specs(city, reg, RunConfig(city="betong"))) == 204


def test_run_streams_every_camera_and_reports(ray_cluster, s3_store):
    reports = []
    summary = run(RunConfig(city="betong", cameras=4, duration_s=8, detect="none"), report=reports.append,
                  report_every_s=3)
    assert (summary.cameras, summary.shards, summary.nodes) == (4, 1, 1)
    assert summary.frames_decoded > 4 * 20  # 4 simulated cameras at 10 fps for several seconds
    assert summary.frames_processed > 0 and summary.alerts == 0 and summary.snapshot is None
    assert reports, "run reports the status while it runs"
    cams = {c["camera_id"]: c for st in reports[-1] for c in st["cameras"]}
    assert len(cams) == 4 and all(c["health"] in {"online", "starting"} for c in cams.values())
    assert status() == []  # shards are stopped and removed at the end
