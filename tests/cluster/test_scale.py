"""City scale on this machine: the truth detector (alerts known in advance) through the real shards and sink."""

from __future__ import annotations

import pytest

from actors.detectors import TruthDetector, expected_truth_alerts, frame_number, make_detector, truth_walkers
from actors.sources import CameraSpec
from actors.sources.synthetic import SimulatedSource
from cluster.cli.run import parse_cameras
from cluster.pipeline import RunConfig, run


def test_truth_detector_sees_what_the_synthetic_camera_draws() -> None:
    import asyncio

    from actors.detectors import FrameItem

    spec = CameraSpec(id="c7", url="sim://c7", fps=2, seed=7, sim_epoch=1_000_000.0, sim_size=(160, 120))
    src = SimulatedSource(spec)
    src.open()
    det = make_detector("truth", cameras={"c7": spec}, wanted_every=1)
    assert isinstance(det, TruthDetector)
    hits = 0
    for n in range(0, 60):
        img = src.draw(n)
        pts = spec.sim_epoch + n / spec.fps
        assert frame_number(spec, pts) == n
        [dets] = asyncio.run(det.detect([FrameItem("c7", n, 0.0, pts, img, 0.5, (0, 0))]))
        assert len(dets) == len(truth_walkers(spec, n))
        for d in dets:  # the box (in the half-size detector image) covers the walker's pixels
            x1, y1, x2, y2 = (round(v / 0.5) for v in d.box)
            patch = img[y1:y2, x1:x2].reshape(-1, 3)
            assert (patch == patch[0]).all() and (patch[0] <= 40).all() | (patch[0] >= 215).all()
            hits += 1
    assert hits > 10
    exp = expected_truth_alerts(spec, 59, wanted_every=1, min_matches=3)
    assert sorted(exp) == ["GT-7-0", "GT-7-1", "GT-7-2"]  # a walker every 12 s: 3 in 30 s, all listed
    # a camera that is silent while a walker crosses does not see it: no alert is expected for it
    silent = spec.model_copy(update={"sim_outages": [(0.0, 20.0)]})
    assert sorted(expected_truth_alerts(silent, 59, wanted_every=1, min_matches=3)) == ["GT-7-2"]
    with pytest.raises(ValueError, match="synthetic"):
        TruthDetector({"x": CameraSpec(id="x", url="/tmp/a.mp4")})


def test_cameras_option_reads_all_and_counts() -> None:
    assert parse_cameras("all", None) == (None, None)
    assert parse_cameras("8", None) == (8, 2)
    assert parse_cameras("all", "0") == (None, 0)
    with pytest.raises(ValueError, match="'all' or a whole number"):
        parse_cameras("many", None)


def test_truth_run_raises_every_expected_alert_once(ray_cluster: str, s3_store: object) -> None:
    summary = run(RunConfig(city="betong", cameras=12, plate_cameras=2, duration_s=40, detect="truth", fps=2,
                            wanted_every=2))
    assert (summary.cameras, summary.shards) == (14, 1)
    t = summary.truth
    assert t is not None and t.expected >= 8, t
    assert (t.lost, t.duplicated, t.unexpected) == (0, 0, 0), t
    assert t.raised == t.expected == summary.alerts
    m = summary.metrics
    assert m is not None and m.cameras == 14 and 0 < m.memory_mb_per_camera < 200 and m.shard_start_s is not None
    assert m.cpu_pct_per_camera_reader > 0 and m.status_ms_p50 is not None
    assert m.sink_cpu_pct is not None and m.sink_cpu_pct > 0  # the sink sampled on its own, not as control plane
    assert summary.cameras_online == 14 and summary.starved == 0
