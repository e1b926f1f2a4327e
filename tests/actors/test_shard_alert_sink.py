"""Shard + the real AlertSink (real S3, real Ray): killing the shard mid-stream loses no alert, duplicates none."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray import cloudpickle

from actors.detectors import Detector, FrameItem
from actors.motion import MotionGateConfig
from actors.shard import ShardConfig, start_shard, state_store
from actors.sources import CameraSpec
from actors.tracker import ConfirmerConfig, Detection
from tests.conftest import stats_if_restarted

cloudpickle.register_pickle_by_value(sys.modules[__name__])

WINDOW_S = 2.0


class WatchlistWalkers(Detector):
    """A new watchlisted person stands in view every ``WINDOW_S`` seconds of stream time (W-0, W-1, ...)."""

    name = "walkers"

    async def detect(self, batch: Sequence[FrameItem]) -> list[list[Detection]]:
        out = []
        for item in batch:
            k = int((item.pts or 0.0) // WINDOW_S)
            out.append([Detection((20, 10, 60, 90), 0.99, "face", f"W-{k}", 0.9)])
        return out


def test_killed_shard_loses_no_alert_and_writes_no_duplicate(ray_cluster: str, s3_store: Any,
                                                              tmp_path: Path) -> None:
    from actors.alerts import AlertSinkConfig, sink_name, start_sink

    city = f"k{uuid.uuid4().hex[:8]}"
    sink = start_sink(AlertSinkConfig(city=city, audit_path=str(tmp_path / "audit.jsonl"), s3=s3_store.settings))
    state_store()
    cam = CameraSpec(id="cam-k", url="sim://k", realtime=True, fps=10, sim_size=(96, 72))
    cfg = ShardConfig(shard_id=f"kill-{city}", cameras=[cam], gate=MotionGateConfig(enabled=False),
                      confirmer=ConfirmerConfig(min_matches=4, cooldown_s=600), state_actor="ssz-shard-state",
                      sink_actor=sink_name(city), state_every_s=0.5)
    shard = start_shard(cfg, WatchlistWalkers)
    try:
        deadline = time.time() + 40
        # kill in the middle of W-1's window (2 of the 4 matches it needs seen, at 2 fps): after the restart
        # only 3 sampled frames of the window remain, so W-1 is alerted only if the pending count survived
        while time.time() < deadline:
            pos = ray.get(shard.stats.remote()).cameras[0].position_pts or 0.0
            if pos >= WINDOW_S + 0.4:
                break
            time.sleep(0.05)
        pid = ray.get(shard.pid.remote())
        pos = ray.get(shard.save_state_now.remote())["positions"]["cam-k"]  # crash right after saving the state
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 60
        st = None
        while st is None and time.time() < deadline:
            st = stats_if_restarted(shard, pid)
            time.sleep(0.2)
        assert st is not None and st.restarts >= 1
        deadline = time.time() + 40
        while time.time() < deadline:  # run on until W-3's window is over
            pos = ray.get(shard.stats.remote()).cameras[0].position_pts or 0.0
            if pos >= 4 * WINDOW_S + 0.5:
                break
            time.sleep(0.2)
        alerts = [a for a in ray.get(sink.alerts.remote()) if a["kind"] == "face"]
        subjects = sorted(a["subject_id"] for a in alerts)
        assert subjects == ["W-0", "W-1", "W-2", "W-3"]  # none lost, none twice
        assert len({a["alert_id"] for a in alerts}) == 4
        assert all(a["camera_id"] == "cam-k" and a["evidence_key"] for a in alerts)
    finally:
        ray.kill(shard)
        ray.kill(sink)
