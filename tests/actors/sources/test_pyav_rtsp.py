"""Real RTSP: GStreamer serves vtest.avi on 127.0.0.1; the shard decodes it; kill => offline; restart => recovers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from actors.detectors import LocalDetector
from actors.events import CameraHealthEvent
from actors.shard import ShardConfig, ShardCore
from actors.sources import CameraSpec
from actors.tracker import Detection


def _no_faces(images: list[np.ndarray]) -> list[list[Detection]]:
    return [[] for _ in images]


def test_rtsp_camera_goes_offline_when_server_dies_and_recovers_by_itself(rtsp_server: Any) -> None:
    rtsp_server.start()
    spec = CameraSpec(id="rtsp1", url=rtsp_server.url, rtsp_transport="tcp", grace_s=2.0, open_timeout_s=5,
                      read_timeout_s=1.5, backoff_initial_s=0.2, backoff_max_s=1.0)
    steady = CameraSpec(id="sim-steady", url="sim://steady", realtime=True, fps=10, sim_size=(64, 48), grace_s=2.0)
    core = ShardCore(ShardConfig(shard_id="rtsp", cameras=[spec, steady], health_poll_s=0.1),
                     LocalDetector(_no_faces)).start()
    events: list[str] = []

    def cam(cid: str = "rtsp1") -> Any:
        return next(c for c in core.stats().cameras if c.camera_id == cid)

    def until(cond: Any, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            events.extend(f"{e.camera_id}:{e.kind}" for e in core.drain_events() if isinstance(e, CameraHealthEvent))
            if cond():
                return True
            time.sleep(0.1)
        return False

    try:
        assert until(lambda: cam().decoded >= 20 and cam().processed >= 2, 30), f"no RTSP frames: {cam()}"
        assert cam().health == "online" and events == []
        assert cam().gate_pass_ratio > 0.9  # people walk through vtest all the time

        rtsp_server.stop()
        t_kill = time.time()
        assert until(lambda: "rtsp1:camera-offline" in events, 20), f"never offline: {cam()}"
        took = time.time() - t_kill
        assert 1.5 <= took <= 10, took  # after the grace time, not before and not much later
        assert cam().health == "offline" and cam().last_error
        decoded_before = cam().decoded
        time.sleep(1.0)
        assert cam().reconnects >= 1 and cam("sim-steady").health == "online"  # retrying; others unaffected

        rtsp_server.start()
        assert until(lambda: "rtsp1:camera-recovered" in events, 40), f"never recovered: {cam()}"
        assert until(lambda: cam().decoded >= decoded_before + 10, 20)
        assert cam().health in ("recovered", "online")
        # the new RTSP session restarts the stream clock: a new epoch, said once (tracks cannot reuse old ids)
        assert until(lambda: "rtsp1:camera-reconfigured" in events, 10)
        assert events == ["rtsp1:camera-offline", "rtsp1:camera-recovered", "rtsp1:camera-reconfigured"]
        assert core.resume_state()["clocks"]["rtsp1"]["epoch"] == 1
    finally:
        core.stop()
