"""Real RTSP: GStreamer serves vtest.avi on 127.0.0.1; PyAV decodes it; kill => offline; restart => recovers."""

from __future__ import annotations

import threading
import time

from actors.sources import CameraReader, CameraSpec, HealthState


def _wait(cond, timeout: float, reader: CameraReader, events: list[str]) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        events += [e.kind for e in reader.health.poll()]
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_rtsp_camera_goes_offline_when_server_dies_and_recovers_by_itself(rtsp_server) -> None:
    rtsp_server.start()
    frames: list[tuple[int, tuple[int, ...]]] = []
    lock = threading.Lock()

    def on_frame(f) -> None:
        with lock:
            frames.append((f.seq, f.image.shape))

    spec = CameraSpec(id="rtsp1", url=rtsp_server.url, rtsp_transport="tcp", grace_s=2.0, open_timeout_s=5,
                      read_timeout_s=1.5, backoff_initial_s=0.2, backoff_max_s=1.0)
    reader = CameraReader(spec, on_frame).start()
    events: list[str] = []
    try:
        assert _wait(lambda: len(frames) >= 20, 30, reader, events), f"no RTSP frames: {reader.stats}"
        assert frames[0][1] == (240, 320, 3)
        assert reader.health.state == HealthState.online and events == []

        rtsp_server.stop()
        t_kill = time.time()
        assert _wait(lambda: "camera-offline" in events, 20, reader, events), f"never offline: {reader.stats}"
        took = time.time() - t_kill
        assert 1.5 <= took <= 10, took  # after the grace time, not before and not much later
        assert reader.health.state == HealthState.offline
        n_before = len(frames)
        time.sleep(1.0)
        assert reader.stats.reconnects >= 1 and reader.alive  # keeps retrying with back-off

        rtsp_server.start()
        assert _wait(lambda: "camera-recovered" in events, 40, reader, events), f"never recovered: {reader.stats}"
        assert _wait(lambda: len(frames) >= n_before + 10, 20, reader, events)
        assert reader.health.state in (HealthState.recovered, HealthState.online)
        assert events == ["camera-offline", "camera-recovered"]
    finally:
        reader.stop()
