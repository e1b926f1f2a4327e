"""CameraShard on real video and real Ray: frames flow, stats add up, backpressure drops, restarts resume."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from ray import cloudpickle

from actors.detectors import LocalDetector
from actors.events import AlertDecisionEvent, CameraHealthEvent
from actors.motion import MotionGate, MotionGateConfig
from actors.sampler import RateSampler, SamplerConfig
from actors.shard import ShardConfig, ShardCore, start_shard, state_store
from actors.sources import CameraSpec, PyAVSource
from actors.tracker import ConfirmerConfig, Detection
from tests.conftest import stats_if_restarted

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # detectors/collectors below run in Ray workers


def wanted_everywhere(images: list[np.ndarray]) -> list[list[Detection]]:
    """A stand-in detector: one watchlisted face at a fixed place of every frame (exercises the whole path)."""
    return [[Detection((10, 10, 50, 90), 0.99, "face", "wanted-1", 0.9)] for _ in images]


def slow_detector(images: list[np.ndarray]) -> list[list[Detection]]:
    """A saturated model: 0.3 s per batch whatever its size."""
    time.sleep(0.3)
    return [[] for _ in images]


def wait_for(fn: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s")


def expected_sampled(vtest: Path, n: int, gate: MotionGateConfig, sampler: SamplerConfig,
                     phase: float = 0.0) -> tuple[int, float]:
    """The same gate and sampler (at the camera's phase in its shard) run over the same frames outside the shard:
    how many frames are sampled and the stream time of the last one."""
    g, s = MotionGate(gate), RateSampler(sampler, phase)
    with PyAVSource(CameraSpec(id="x", url=str(vtest), width=320, max_frames=n)) as src:
        taken = [f.pts for f in src.frames() if g.check(f.image, f.pts).passed and s.take(f.pts)]
    return len(taken), taken[-1]


@pytest.mark.services
def test_core_in_process_frames_flow_and_stats_add_up(vtest: Path) -> None:
    cams = [CameraSpec(id=f"c{i}", url=str(vtest), width=320, max_frames=300) for i in range(2)]
    cams.append(CameraSpec(id="sim1", url="sim://s1", max_frames=200, sim_size=(160, 120)))
    cfg = ShardConfig(shard_id="t0", cameras=cams, block_when_full=True, sampler=SamplerConfig(rate_fps=5),
                      confirmer=ConfirmerConfig(min_matches=3), detect_width=256)
    seen_shapes: list[tuple[int, ...]] = []

    def det(images: list[np.ndarray]) -> list[list[Detection]]:
        seen_shapes.extend(i.shape for i in images)
        assert all(i.flags["C_CONTIGUOUS"] for i in images)
        return wanted_everywhere(images)

    core = ShardCore(cfg, LocalDetector(det)).start()
    try:
        wait_for(core.finished, 60)
    finally:
        core.stop()
    st = {c.camera_id: c for c in core.stats().cameras}
    for k, cid in enumerate(("c0", "c1")):
        c = st[cid]
        want, last = expected_sampled(vtest, 300, cfg.gate, cfg.sampler, phase=k / 3)  # the shard's phases k/n
        assert c.decoded == 300 and c.dropped == 0 and c.queued == 0
        assert c.sampled == want == c.processed == c.detections
        assert c.alerts == 1 and c.position_pts == pytest.approx(last)  # last sampled frame (5 fps)
    assert [st[c].position_pts for c in ("c0", "c1")] == [pytest.approx(29.8), pytest.approx(29.9)]
    assert st["sim1"].decoded == 200 and 0 < st["sim1"].gate_pass_ratio < 1
    assert set(seen_shapes) >= {(192, 256, 3), (120, 160, 3)}  # vtest downsized to 256 wide; sim kept
    events = core.drain_events()
    alerts = [e for e in events if isinstance(e, AlertDecisionEvent) and e.decision == "alert"]
    assert sorted(e.camera_id for e in alerts) == ["c0", "c1", "sim1"]
    a = next(e for e in alerts if e.camera_id == "c0")
    # boxes were mapped back to source pixels (320 wide) and the evidence crop cut from the detector image
    assert a.crop is not None and a.crop.shape == (80, 40, 3) and a.n_matches == 3 and a.subject_id == "wanted-1"
    # the alert carries the stream time of its track's first frame (the track id's time, to the millisecond)
    assert a.track_start_pts == pytest.approx(int(a.track_id.split(":")[1]) / 1000) and a.track_start_pts <= a.stream_ts


def test_shard_actor_on_ray_with_a_file_camera(ray_cluster: str, vtest: Path) -> None:
    from cluster import sharding

    nodes = sharding.nodes_from_ray()
    a = sharding.assign(["cam-a", "cam-b"], nodes, cameras_per_shard=8)
    shard_id = next(iter(a.shard_node))
    cfg = ShardConfig(shard_id=shard_id,
                      cameras=[CameraSpec(id=c, url=str(vtest), width=320, max_frames=150) for c in ("cam-a", "cam-b")],
                      block_when_full=True, sampler=SamplerConfig(rate_fps=4), confirmer=ConfirmerConfig(min_matches=2))
    opts = sharding.shard_options(a, shard_id, num_cpus=0.5)
    shard = start_shard(cfg, lambda: LocalDetector(wanted_everywhere), ray_options=opts)
    try:
        wait_for(lambda: ray.get(shard.finished.remote(), timeout=30), 90)
        st = ray.get(shard.stats.remote())
        assert st.node_id == nodes[0].ray_node_id
        for k, c in enumerate(st.cameras):
            want, _ = expected_sampled(vtest, 150, cfg.gate, cfg.sampler, phase=k / 2)
            assert c.decoded == 150 and c.processed == c.sampled == want and c.dropped == 0
            assert c.health == "online" and c.alerts == 1
        assert st.batches >= 1 and st.detect_ms_p50 is not None
        ev = ray.get(shard.drain_events.remote())
        alerts = [e for e in ev if isinstance(e, AlertDecisionEvent) and e.decision == "alert"]
        assert {e.camera_id for e in alerts} == {"cam-a", "cam-b"}
        assert all(e.crop is not None and e.crop.flags["C_CONTIGUOUS"] for e in alerts)
        assert ray.get(ray.get_actor(f"ssz-shard:{shard_id}", namespace="ssz").pid.remote()) == \
            ray.get(shard.pid.remote())
    finally:
        ray.kill(shard)


def test_slow_detector_drops_oldest_frames_with_bounded_queues(ray_cluster: str) -> None:
    cams = [CameraSpec(id=f"s{i}", url=f"sim://s{i}", realtime=True, fps=30, sim_size=(96, 72), seed=i)
            for i in range(3)]
    cfg = ShardConfig(shard_id="slow", cameras=cams, gate=MotionGateConfig(enabled=False),
                      sampler=SamplerConfig(rate_fps=30), queue_size=3, batch_size=2, max_inflight=1)
    shard = start_shard(cfg, lambda: LocalDetector(slow_detector))
    try:
        samples = []
        for _ in range(12):
            time.sleep(0.4)
            samples.append(ray.get(shard.stats.remote()))
        last = samples[-1]
        for c in last.cameras:
            assert c.decoded >= 80  # decoding is not held back by the slow detector
            assert c.dropped > 0.5 * c.sampled  # most frames had to be dropped
            # every sampled frame is accounted for: processed, dropped, queued, or in the one batch in flight
            assert c.sampled - c.processed - c.dropped - c.queued <= cfg.batch_size * cfg.max_inflight
        assert all(c.queued <= cfg.queue_size for s in samples for c in s.cameras)
        processed = [sum(c.processed for c in s.cameras) for s in samples]
        assert processed[-1] > processed[0] and last.inflight <= cfg.max_inflight
        # about 2 frames per 0.3 s get through, whatever the cameras deliver
        assert processed[-1] - processed[0] <= (0.4 * 11 / 0.3 + 2) * cfg.batch_size
    finally:
        ray.kill(shard)


@ray.remote(num_cpus=0)
class Collector:
    """A stand-in alert sink: remembers every event it acknowledged."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def submit(self, events: list[Any]) -> int:
        self.events.extend(e.model_dump(exclude={"crop"}) for e in events)
        return len(events)

    def all(self) -> list[dict[str, Any]]:
        return self.events


def test_killed_shard_restarts_resumes_and_raises_no_duplicate_alert(ray_cluster: str) -> None:
    state_store()
    sink = Collector.options(name="test-sink", namespace="ssz").remote()
    cams = [CameraSpec(id="k0", url="sim://k0", realtime=True, fps=10, sim_size=(96, 72))]
    cfg = ShardConfig(shard_id="killme", cameras=cams, gate=MotionGateConfig(enabled=False),
                      confirmer=ConfirmerConfig(min_matches=3, cooldown_s=600), state_actor="ssz-shard-state",
                      sink_actor="test-sink", state_every_s=0.3)
    shard = start_shard(cfg, lambda: LocalDetector(wanted_everywhere))
    try:
        wait_for(lambda: any(e.get("decision") == "alert" for e in ray.get(sink.all.remote())), 30)
        time.sleep(1.0)
        before = ray.get(shard.stats.remote())
        pid = ray.get(shard.pid.remote())
        os.kill(pid, signal.SIGKILL)
        after = wait_for(lambda: stats_if_restarted(shard, pid), 60)
        assert after.restarts == 1
        pos0 = before.cameras[0].position_pts
        wait_for(lambda: (ray.get(shard.stats.remote()).cameras[0].processed or 0) >= 6, 30)
        resumed = ray.get(shard.stats.remote()).cameras[0]
        assert resumed.position_pts > pos0  # continued from the saved state, not from 0
        time.sleep(2.0)  # the same subject keeps matching after the restart: its restored track goes on
        events = ray.get(sink.all.remote())
        decisions = [(e["decision"], e["track_id"]) for e in events if e["type"] == "alert-decision"]
        assert [d for d, _ in decisions].count("alert") == 1  # not raised again
        assert len({t for _, t in decisions}) == 1  # one track across the crash
        ckpt = ray.get(ray.get_actor("ssz-shard-state", namespace="ssz").get.remote("killme"))
        assert [t["track_id"] for t in ckpt["tracks"]["k0"]] == [decisions[0][1]]
    finally:
        ray.kill(shard)
        ray.kill(sink)


def test_launch_shards_from_an_assignment(ray_cluster: str) -> None:
    from cluster import sharding
    from cluster.sharding import launch_shards

    cams = [f"hy-{i}" for i in range(4)]
    a = sharding.assign(cams, sharding.nodes_from_ray(), cameras_per_shard=2)
    specs = {c: CameraSpec(id=c, url=f"sim://{c}", seed=i, max_frames=30, sim_size=(64, 48))
             for i, c in enumerate(cams)}
    handles = launch_shards(a, specs, lambda: LocalDetector(wanted_everywhere), num_cpus=0.25,
                            block_when_full=True)
    try:
        assert set(handles) == set(a.shard_node) and len(handles) == 2
        for sid, h in handles.items():
            wait_for(lambda h=h: ray.get(h.finished.remote()), 60)
            st = ray.get(h.stats.remote())
            assert st.shard_id == sid
            assert sorted(c.camera_id for c in st.cameras) == a.shard_cameras()[sid]
            assert all(c.decoded == 30 for c in st.cameras)
        with pytest.raises(ValueError, match="no CameraSpec"):
            launch_shards(a, {}, None)
    finally:
        for h in handles.values():
            ray.kill(h)


@pytest.mark.services
def test_shard_turns_a_camera_outage_into_offline_and_recovery_events() -> None:
    cams = [CameraSpec(id="flaky", url="sim://f", realtime=True, fps=20, sim_size=(64, 48), grace_s=0.5,
                       sim_outages=[(0.5, 2.5)]),
            CameraSpec(id="steady", url="sim://s", realtime=True, fps=20, sim_size=(64, 48), grace_s=0.5)]
    core = ShardCore(ShardConfig(shard_id="h", cameras=cams, health_poll_s=0.1), LocalDetector(wanted_everywhere))
    core.start()

    def health() -> dict[str, str]:
        return {c.camera_id: c.health for c in core.stats().cameras}

    events: list[tuple[str, str]] = []

    def seen(kind: str) -> bool:
        events.extend((e.camera_id, e.kind) for e in core.drain_events() if isinstance(e, CameraHealthEvent))
        return ("flaky", kind) in events

    try:
        wait_for(lambda: seen("camera-offline"), 8, every=0.05)
        assert health() == {"flaky": "offline", "steady": "online"}
        wait_for(lambda: seen("camera-recovered"), 8, every=0.05)
        assert health()["flaky"] in ("recovered", "online") and health()["steady"] == "online"
    finally:
        core.stop()
    seen("none")
    assert events == [("flaky", "camera-offline"), ("flaky", "camera-recovered")]


def test_face_serve_detector_converts_identify_answers() -> None:
    """serve/face's ImageFaces -> detections: watchlist match becomes the subject, weak faces are dropped."""
    import datetime

    from actors.detectors import FaceServeDetector
    from serve.face.schemas import Candidate, FaceMatch, ImageFaces
    from serve.face.schemas import FaceDetection as FaceDet

    def cand(no: str, match: bool) -> Candidate:
        return Candidate(warrant_no=no, name="n", court="c", offence="o", expires=datetime.date(2030, 1, 1),
                         distance=0.3 if match else 0.9, score=0.7 if match else 0.1, match=match)

    def face(prob: float, cands: list[Candidate]) -> FaceMatch:
        return FaceMatch(detection=FaceDet(box=(1, 2, 30, 40), prob=prob, landmarks=[(0, 0)] * 5), candidates=cands)

    im = ImageFaces(width=64, height=64, faces=[face(0.99, [cand("W2", False), cand("W1", True)]),
                                                face(0.97, [cand("W3", False)]), face(0.5, [cand("W1", True)])])
    for answer in (im, im.model_dump()):
        dets = FaceServeDetector.to_detections(answer, 0.95)
        assert [(d.subject_id, d.score, d.match_score) for d in dets] == [("W1", 0.99, 0.7), (None, 0.97, 0.0)]
        assert dets[0].box == (1.0, 2.0, 30.0, 40.0) and dets[0].label == "face"


def test_alert_rows_fit_the_twin_alert_schema() -> None:
    import pyarrow as pa

    from actors.alerts import alert_row
    from actors.events import health_event
    from actors.sources import HealthEvent
    from actors.tracker import Confirmer
    from twin.schemas import ALERTS
    from twin.schemas import alert_id as twin_alert_id

    dec = Confirmer(ConfirmerConfig(min_matches=1)).observe("cam1", "cam1:1000:0", "W-17", 0.83, 12.0)
    assert dec is not None and dec.alert_id == twin_alert_id("cam1", "face", "W-17", "cam1:1000:0")
    ev = {"type": "alert-decision", "frame_ts": 1_763_800_000.5, **dec.model_dump()}
    off = health_event("s0", HealthEvent(camera_id="cam2", kind="camera-offline", ts=1_763_800_010.0,
                                         last_frame_ts=1_763_800_000.2, offline_for_s=9.8))
    assert off.alert_id == health_event("s0", HealthEvent(
        camera_id="cam2", kind="camera-offline", ts=1_763_800_030.0, last_frame_ts=1_763_800_000.9)).alert_id
    rows = [alert_row(ev, "hatyai", evidence_key="evidence/cam1/x.jpg", position=(100.47, 7.0)),
            alert_row(off, "hatyai")]
    table = pa.Table.from_pylist(rows, schema=ALERTS)
    assert table.num_rows == 2
    assert table.column("kind").to_pylist() == ["face", "camera-offline"]
    assert table.column("subject_id").to_pylist() == ["W-17", None]
    with pytest.raises(ValueError, match="not an alert"):
        alert_row({**ev, "decision": "suppressed-cooldown"}, "hatyai")
