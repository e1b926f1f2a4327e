"""Shard -> sink delivery: at least once with exactly-once effect (in process, no Ray; one S3 test for the sink).

The sink acknowledges by returning; a sink that raises or does not answer keeps the events pending, they are
retried without limit, kept in the resume state across a restart, and drained at stop.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from actors.detectors import Detector, FrameItem
from actors.events import AlertDecisionEvent, ShardEvent
from actors.motion import MotionGateConfig
from actors.sampler import SamplerConfig
from actors.shard import ShardConfig, ShardCore
from actors.sources import CameraSpec
from actors.tracker import ConfirmerConfig, Detection


class FlakySink:
    """A sink that is down (raises) while ``down`` is set; records every acknowledged batch."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.calls = 0
        self.acked: list[ShardEvent] = []

    def __call__(self, events: Sequence[ShardEvent]) -> dict[str, int]:
        self.calls += 1
        if self.down.is_set():
            raise ConnectionError("sink restarting")
        self.acked.extend(events)
        return {"new": len(events), "duplicates": 0}

    def alert_ids(self) -> list[str]:
        return [e.alert_id for e in self.acked if isinstance(e, AlertDecisionEvent) and e.decision == "alert"]


def _config(n_frames: int, **kw: Any) -> ShardConfig:
    # 10 fps, every frame sampled; a new watchlisted person every 2 s of stream time (see per_window)
    cam = CameraSpec(id="cam-d", url="sim://d", fps=10, sim_size=(96, 72), max_frames=n_frames)
    return ShardConfig(shard_id="d0", cameras=[cam], gate=MotionGateConfig(enabled=False),
                       sampler=SamplerConfig(rate_fps=10), block_when_full=True,
                       confirmer=ConfirmerConfig(min_matches=3, cooldown_s=600), retry_max_s=0.2, **kw)


class PerWindow(Detector):
    """W-k stands in view in the k-th 2-second window of stream time."""

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        return [[Detection((20, 10, 60, 60), 0.99, "face", f"W-{int((b.pts or 0) // 2)}", 0.9)] for b in batch]


def _wait(fn: Any, timeout: float) -> None:
    deadline = time.time() + timeout
    while not fn():
        if time.time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        time.sleep(0.05)


def test_alerts_are_kept_while_the_sink_is_down_and_marked_sent_only_after_its_ack() -> None:
    sink = FlakySink()
    sink.down.set()
    core = ShardCore(_config(80), PerWindow(), event_sink=sink).start()  # 8 s of stream: W-0 .. W-3
    try:
        _wait(lambda: core._queued() == 0 and all(not c.reader.alive for c in core.cams.values()), 30)
        _wait(lambda: sink.calls >= 3, 10)  # retried (the first tries failed)
        st = core.stats()
        assert st.delivery_failures >= 3 and st.events_delivered == 0
        pending = [e.subject_id for e in core.pending_events() if isinstance(e, AlertDecisionEvent)]
        assert pending == ["W-0", "W-1", "W-2", "W-3"]
        assert core._sent_set == set()  # nothing counts as sent before the sink acknowledged it
        sink.down.clear()  # the sink is back
        _wait(lambda: not core.pending_events(), 10)
    finally:
        core.stop()
    assert sorted(e.subject_id for e in sink.acked) == ["W-0", "W-1", "W-2", "W-3"]
    assert core._sent_set == set(sink.alert_ids()) and core.stats().events_delivered == 4


def test_undelivered_alerts_survive_a_restart_in_the_resume_state_and_are_not_raised_twice() -> None:
    sink = FlakySink()
    sink.down.set()
    core = ShardCore(_config(60, drain_timeout_s=0.5), PerWindow(), event_sink=sink).start()  # W-0 .. W-2
    _wait(lambda: len(core.pending_events()) == 3, 30)
    core.stop()  # the drain at stop gives up after 0.5 s: the alerts stay in the saved state
    state = core.resume_state()
    assert [e.subject_id for e in state["pending"]] == ["W-0", "W-1", "W-2"] and state["sent_ids"] == []
    sink.down.clear()
    # the restarted shard (same stream, 20 more frames: W-3) re-sends the kept alerts and raises only the new one
    again = ShardCore(_config(80), PerWindow(), event_sink=sink)
    again.restore(state)
    again.start()
    try:
        _wait(lambda: len(sink.alert_ids()) == 4 and not again.pending_events(), 30)
    finally:
        again.stop()
    assert sorted(sink.alert_ids()) == sorted(set(sink.alert_ids()))  # each alert delivered once
    assert sorted(e.subject_id for e in sink.acked) == ["W-0", "W-1", "W-2", "W-3"]


def test_stop_drains_pending_alerts_to_a_slow_sink() -> None:
    acked: list[str] = []

    async def slow_sink(events: Sequence[ShardEvent]) -> None:
        import asyncio

        await asyncio.sleep(0.3)
        acked.extend(e.alert_id for e in events if isinstance(e, AlertDecisionEvent))

    core = ShardCore(_config(40), PerWindow(), event_sink=slow_sink).start()  # W-0, W-1
    _wait(lambda: all(not c.reader.alive for c in core.cams.values()) and core._queued() == 0, 30)
    core.stop()
    assert len(acked) == 2 and not core.pending_events()


def test_a_sink_call_that_never_answers_times_out_and_is_retried() -> None:
    import asyncio

    answered: list[int] = []

    async def hanging_then_ok(events: Sequence[ShardEvent]) -> None:
        if not answered:
            answered.append(0)
            await asyncio.sleep(3600)  # the first call hangs (a sink stuck in its reload)
        answered.append(len(events))

    core = ShardCore(_config(30, deliver_timeout_s=0.3), PerWindow(), event_sink=hanging_then_ok).start()
    try:
        _wait(lambda: core.stats().events_delivered >= 1 and not core.pending_events(), 20)
    finally:
        core.stop()
    assert core.stats().delivery_failures >= 1 and sum(answered) == core.stats().events_delivered


# ------------------------------------------------------------------------------------------------ the sink


def _decision(track: str) -> dict[str, Any]:
    from twin.schemas import alert_id

    rng = np.random.default_rng(0)
    return {"type": "alert-decision", "shard_id": "s0", "alert_id": alert_id("cam-1", "face", "W-1", track),
            "decision": "alert", "camera_id": "cam-1", "track_id": track, "subject_id": "W-1", "label": "face",
            "ts": 1_700_000_000.0, "first_ts": 1_699_999_999.0, "score": 0.91, "n_matches": 3, "reason": "3",
            "crop": rng.integers(0, 255, (32, 24, 3), dtype=np.uint8)}


class _CountingStore:
    """The real store, counting reads of single objects."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.gets = inner, 0

    def get_bytes(self, *a: Any, **k: Any) -> bytes:
        self.gets += 1
        return self._inner.get_bytes(*a, **k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Receiver(http.server.BaseHTTPRequestHandler):
    up: ClassVar[bool] = False
    got: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).up:
            type(self).got.append((self.headers.get("X-SSZ-Delivery", ""), body))
            self.send_response(200)
        else:
            self.send_response(503)
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


def test_sink_restart_reads_its_index_in_one_listing_and_webhooks_survive_it(s3_store: Any, tmp_path: Any) -> None:
    from actors.alerts import AlertSinkConfig, AlertSinkCore
    from actors.channels import WebhookConfig

    _Receiver.up, _Receiver.got = False, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        hook = WebhookConfig(url=f"http://127.0.0.1:{srv.server_address[1]}/a", max_retries=0, backoff_s=0.01)
        cfg = AlertSinkConfig(city=f"o{uuid.uuid4().hex[:8]}", audit_path=str(tmp_path / "audit.jsonl"),
                              webhooks=[hook], webhook_resend_s=3600)
        first = AlertSinkCore(cfg, store=s3_store)
        assert first.submit([_decision(f"t{i}") for i in range(3)]) == {"new": 3, "duplicates": 0}
        first.flush()
        assert first.stats.webhook_failed == 3 and not _Receiver.got  # receiver down: kept in the outbox
        first.close()
        _Receiver.up = True
        counting = _CountingStore(s3_store)
        second = AlertSinkCore(cfg, store=counting)  # the restarted sink
        st = second.current_stats()
        assert st.index_ids == 3 and counting.gets == 3  # one listing; the only reads are the 3 webhook items
        assert second.submit([_decision("t0"), _decision("t3")]) == {"new": 1, "duplicates": 1}
        second.flush()
        ids = sorted(d for d, _ in _Receiver.got)
        aid = {json.loads(json.dumps(b))["alert_id"] for _, b in _Receiver.got}
        assert len(ids) == 4 and len(aid) == 4 and all(d.endswith(".alert") for d in ids)
        assert all(b["delivery_id"] == d for d, b in _Receiver.got)
        assert second._outbox.stored_keys() == []  # delivered items leave the outbox
        assert len(second.alerts()) == 4  # records are read when asked for
        second.close()
    finally:
        srv.shutdown()


class _RecordingSink:
    """The real sink core as a shard's event sink, recording the health kinds each call carried."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.kinds: list[str] = []

    def __call__(self, events: Sequence[ShardEvent]) -> dict[str, int]:
        self.kinds += [e.kind for e in events if not isinstance(e, AlertDecisionEvent)]
        return self.core.submit(list(events))


def test_a_shard_restarted_during_an_outage_raises_its_offline_alert_once_and_closes_it(s3_store: Any,
                                                                                         tmp_path: Any) -> None:
    from actors.alerts import AlertSinkConfig, AlertSinkCore

    # silent from 1 s to 6 s of stream time; offline after 0.5 s (1 s when it never delivered a frame)
    cam = CameraSpec(id="cam-o", url="sim://o", realtime=True, fps=20, sim_size=(64, 48), grace_s=0.5,
                     open_timeout_s=0.5, sim_outages=[(1.0, 6.0)])
    cfg = ShardConfig(shard_id="o0", cameras=[cam], health_poll_s=0.1, gate=MotionGateConfig(enabled=False))
    sink = AlertSinkCore(AlertSinkConfig(city=f"o{uuid.uuid4().hex[:8]}", audit_path=str(tmp_path / "a.jsonl")),
                         store=s3_store)
    first = _RecordingSink(sink)
    core = ShardCore(cfg, None, event_sink=first).start()
    try:
        _wait(lambda: sink.stats.alerts == 1, 15)
    finally:
        core.stop()
    state = core.resume_state()  # what the state store holds when the shard dies in the outage
    assert first.kinds == ["camera-offline"] and list(state["outages"]) == ["cam-o"]
    # the restarted shard replays the frames after the last delivered position (before the outage: they do
    # not end it), then 5 s more of silence, then the camera is back
    second = _RecordingSink(sink)
    again = ShardCore(cfg, None, event_sink=second)
    again.restore(state)
    again.start()
    try:
        _wait(lambda: sink.stats.recovered == 1, 20)
        assert again.stats().cameras[0].health in ("recovered", "online")
    finally:
        again.stop()
    assert second.kinds == ["camera-recovered"]  # no second camera-offline for the same outage
    [rec] = sink.alerts(written=True)
    assert rec["kind"] == "camera-offline" and rec["recovered_ts"] is not None
    assert sink.stats.alerts == 1 and sink.stats.duplicates == 0 and sink.stats.recovered == 1


def test_the_sink_keeps_one_offline_alert_per_open_outage_whatever_its_id(s3_store: Any, tmp_path: Any) -> None:
    from actors.alerts import AlertSinkConfig, AlertSinkCore
    from actors.events import health_event
    from actors.sources import HealthEvent

    def offline(last_frame: float | None, ts: float) -> Any:
        return health_event("s0", HealthEvent(camera_id="cam-x", kind="camera-offline", ts=ts,
                                              last_frame_ts=last_frame, offline_for_s=ts - (last_frame or ts - 9)))

    cfg = AlertSinkConfig(city=f"o{uuid.uuid4().hex[:8]}", audit_path=str(tmp_path / "a.jsonl"))
    sink = AlertSinkCore(cfg, store=s3_store)
    first, other = offline(1_763_800_000.0, 1_763_800_010.0), offline(None, 1_763_800_040.0)
    assert first.alert_id != other.alert_id  # a watchdog that never saw the last frame names another outage
    assert sink.submit([first]) == {"new": 1, "duplicates": 0}
    assert sink.submit([other]) == {"new": 0, "duplicates": 1}  # still open: the same outage
    # a restarted sink (index from the store's listing) knows the open outage too
    again = AlertSinkCore(cfg, store=s3_store)
    assert again.submit([other]) == {"new": 0, "duplicates": 1}
    back = health_event("s0", HealthEvent(camera_id="cam-x", kind="camera-recovered", ts=1_763_800_050.0))
    again.submit([back])
    later = offline(1_763_800_060.0, 1_763_800_070.0)  # a new outage after the recovery is a new alert
    assert again.submit([later]) == {"new": 1, "duplicates": 0}
    recs = {r["alert_id"]: r for r in again.alerts(written=True)}
    assert set(recs) == {first.alert_id, later.alert_id}
    assert recs[first.alert_id]["recovered_ts"] is not None and recs[later.alert_id].get("recovered_ts") is None


def test_live_queues_drop_frames_that_waited_too_long_when_a_newer_one_waits_behind() -> None:
    from actors.detectors import FrameItem

    def item(cam: str, seq: int, age_s: float) -> FrameItem:
        return FrameItem(cam, seq, 0.0, seq / 10, np.zeros((4, 4, 3), np.uint8), t_queued=time.time() - age_s)

    cams = [CameraSpec(id=c, url=f"sim://{c}", fps=10, sim_size=(8, 8)) for c in ("a", "b")]
    core = ShardCore(ShardConfig(shard_id="q", cameras=cams, batch_size=4, max_queue_age_s=0.5), None)
    core.cams["a"].queue.extend([item("a", 1, 2.0), item("a", 2, 1.0), item("a", 3, 0.1)])
    core.cams["b"].queue.extend([item("b", 1, 3.0)])  # stale but the camera's newest: kept
    batch = core._take_batch()
    assert sorted((b.camera_id, b.seq) for b in batch) == [("a", 3), ("b", 1)]
    assert (core.cams["a"].stale, core.cams["a"].dropped, core.cams["b"].stale) == (2, 2, 0)
    # lossless runs keep every frame whatever its age
    slow = ShardCore(ShardConfig(shard_id="q", cameras=cams, batch_size=4, max_queue_age_s=0.5,
                                 block_when_full=True), None)
    slow.cams["a"].queue.extend([item("a", 1, 2.0), item("a", 2, 1.0)])
    assert [b.seq for b in slow._take_batch()] == [1, 2] and slow.cams["a"].stale == 0
