"""Camera sources on real media: file decoding, corrupt data, bad URLs, simulated cameras, health watchdog."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from actors.sources import (
    CameraHealth,
    CameraReader,
    CameraSpec,
    HealthState,
    PyAVSource,
    SimulatedSource,
    SourceError,
)


@pytest.mark.services
def test_file_source_decodes_vtest_as_contiguous_rgb(vtest: Path) -> None:
    src = PyAVSource(CameraSpec(id="c1", url=str(vtest), width=320, max_frames=40))
    with src:
        frames = list(src.frames())
    assert len(frames) == 40 == src.stats.decoded
    f = frames[-1]
    assert f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 and f.image.flags["C_CONTIGUOUS"]
    assert [x.seq for x in frames] == list(range(1, 41))
    assert frames[1].pts == pytest.approx(0.1) and frames[-1].pts == pytest.approx(3.9)
    assert 20 < f.image.mean() < 235  # a real picture, not blank


@pytest.mark.services
def test_file_loop_continues_past_the_end_with_increasing_pts(vtest: Path) -> None:
    src = PyAVSource(CameraSpec(id="c1", url=str(vtest), width=64, loop=True, max_frames=900))
    with src:
        pts = [f.pts for f in src.frames()]
    assert len(pts) == 900
    assert all(b > a for a, b in itertools.pairwise(pts))


@pytest.mark.services
def test_corrupt_frames_are_skipped_and_counted(vtest: Path, tmp_path: Path) -> None:
    data = bytearray(vtest.read_bytes())
    rng = np.random.default_rng(0)
    for off in rng.integers(200_000, len(data) - 1000, 60):
        data[off:off + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(bytes(data))
    src = PyAVSource(CameraSpec(id="c1", url=str(bad), width=160))
    with src:
        n = sum(1 for _ in src.frames())
    assert src.stats.corrupt > 0
    assert n + src.stats.corrupt >= 780  # everything else still decodes


def test_bad_urls_and_missing_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unsupported URL"):
        CameraSpec(id="c", url="ftp://x/y")
    with pytest.raises(ValidationError, match="has no host"):
        CameraSpec(id="c", url="rtsp:///stream1")
    with pytest.raises(SourceError, match="does not exist") as e:
        PyAVSource(CameraSpec(id="c", url=str(tmp_path / "nope.mp4"))).open()
    assert e.value.permanent
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="not a decodable video"):
        PyAVSource(CameraSpec(id="c", url=str(junk))).open()
    # a reader on a missing file stops (no retry storm) and marks the camera failed
    r = CameraReader(CameraSpec(id="c", url=str(tmp_path / "nope.mp4")), lambda f: None).start()
    r.stop(timeout=5)
    assert not r.alive and r.health.state == HealthState.failed
    assert [e.kind for e in r.health.poll()] == ["camera-failed"]


def test_simulated_source_is_deterministic_and_moves() -> None:
    spec = CameraSpec(id="s1", url="sim://s1", seed=3, max_frames=240, fps=10)
    a, b = SimulatedSource(spec), SimulatedSource(spec)
    with a, b:
        fa, fb = list(a.frames()), list(b.frames())
    assert all(np.array_equal(x.image, y.image) for x, y in zip(fa, fb, strict=True))
    changed = sum(not np.array_equal(x.image, y.image) for x, y in itertools.pairwise(fa))
    assert 0 < changed < len(fa) - 1  # walkers come and go; static in between
    other = SimulatedSource(spec.model_copy(update={"seed": 4}))
    with other:
        assert not np.array_equal(next(other.frames()).image, fa[0].image)


def test_simulated_video_loops_a_file(vtest: Path) -> None:
    src = SimulatedSource(CameraSpec(id="s", url="sim://v", sim_video=str(vtest), width=96, max_frames=10))
    with src:
        frames = list(src.frames())
    assert len(frames) == 10 and frames[0].image.shape == (72, 96, 3)


def test_health_state_machine_with_a_clock() -> None:
    now = [1000.0]
    h = CameraHealth("c", grace_s=5, clock=lambda: now[0])
    assert h.state == HealthState.starting and h.poll() == []
    now[0] += 6
    ev = h.poll()
    assert [e.kind for e in ev] == ["camera-offline"] and h.state == HealthState.offline  # never came up
    h.on_frame(now[0])
    ev = h.poll()
    assert [e.kind for e in ev] == ["camera-recovered"] and h.state == HealthState.recovered
    assert ev[0].offline_for_s == pytest.approx(6)
    now[0] += 1
    h.on_frame()
    now[0] += 3
    assert h.poll() == [] and h.state == HealthState.recovered
    now[0] += 1.5
    assert h.poll() == [] and h.state == HealthState.online
    now[0] += 10
    assert [e.kind for e in h.poll()] == ["camera-offline"] and h.poll() == []


def test_a_resumed_outage_stays_one_outage_until_a_frame_after_it() -> None:
    now = [1000.0]
    first = CameraHealth("c", grace_s=5, clock=lambda: now[0])
    first.on_frame(now[0], stream_t=40.0)
    now[0] += 6
    assert [e.kind for e in first.poll()] == ["camera-offline"]
    outage = first.outage()
    assert outage == {"offline_since": 1000.0, "last_frame": 1000.0, "last_stream_t": 40.0}
    # the watchdog of the restarted process: offline at once, nothing raised again
    again = CameraHealth("c", grace_s=5, clock=lambda: now[0])
    again.resume_outage(outage)
    now[0] += 30
    assert again.poll() == [] and again.state == HealthState.offline
    again.on_frame(now[0], stream_t=39.5)  # a replay of what came before the outage
    assert again.poll() == [] and again.state == HealthState.offline
    again.on_frame(now[0], stream_t=66.0)  # the camera is back
    [back] = again.poll()
    assert back.kind == "camera-recovered" and back.offline_for_s == pytest.approx(36)
    assert again.outage() is None
    live = CameraHealth("c", grace_s=5, clock=lambda: now[0])  # a live stream: no stream time to go by
    live.resume_outage({**outage, "last_stream_t": None})
    live.on_frame(now[0], stream_t=1.0)
    assert [e.kind for e in live.poll()] == ["camera-recovered"]


@pytest.mark.services
def test_simulated_outage_goes_offline_and_recovers_while_other_camera_flows() -> None:
    got: dict[str, int] = {"out": 0, "ok": 0}
    lock = threading.Lock()

    def count(key: str):
        def cb(_f: object) -> None:
            with lock:
                got[key] += 1
        return cb

    out = CameraReader(CameraSpec(id="out", url="sim://out", realtime=True, fps=20, sim_size=(64, 48),
                                  grace_s=0.6, sim_outages=[(0.5, 2.0)]), count("out")).start()
    # an unreachable RTSP camera keeps retrying in its own thread without blocking the others
    dead = CameraReader(CameraSpec(id="dead", url="rtsp://127.0.0.1:9/none", grace_s=0.6, open_timeout_s=0.5,
                                   read_timeout_s=0.5, backoff_initial_s=0.1, backoff_max_s=0.4), count("ok")).start()
    ok = CameraReader(CameraSpec(id="ok", url="sim://ok", realtime=True, fps=20, sim_size=(64, 48), grace_s=0.6),
                      count("ok")).start()
    events: list[str] = []
    t0 = time.time()
    while time.time() - t0 < 3.0:
        for r in (out, dead, ok):
            events += [f"{e.camera_id}:{e.kind}" for e in r.health.poll()]
        time.sleep(0.05)
    for r in (out, dead, ok):
        r.stop()
    assert events.count("out:camera-offline") == 1 and events.count("out:camera-recovered") == 1
    assert events.index("out:camera-offline") < events.index("out:camera-recovered")
    assert "dead:camera-offline" in events and dead.stats.reconnects >= 3 and dead.stats.last_error
    assert not any(e.startswith("ok:") for e in events)
    assert got["ok"] >= 40  # ~20 fps for 3 s, unaffected by the dead camera
