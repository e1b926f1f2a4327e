"""Frames keep their true geometry and their stream time: resolution changes mid-stream, display-matrix rotation,
EXIF orientation, H.265, streams whose clock goes back or that have no pts, variable frame rate, greyscale / IR.
Every clip is encoded here with PyAV (tests/actors/sources/clips.py) and decoded by the real PyAV source."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest

from actors.detectors import LocalDetector
from actors.events import AlertDecisionEvent, CameraHealthEvent
from actors.motion import MotionGateConfig
from actors.sampler import RateSampler, SamplerConfig
from actors.shard import ShardConfig, ShardCore
from actors.sources import CameraReader, CameraSpec, PyAVSource, StreamClock
from actors.sources.geometry import DecodeOrderTimes, as_rgb, display_turn, orient
from actors.tracker import ConfirmerConfig, Detection
from tests.actors.sources.clips import disc_box, edge_index, encode, exif_mjpeg, moving_edge, rotate_mp4


def _frames(path: Path, **spec: object) -> list:
    with PyAVSource(CameraSpec(id="cam 1/จ", url=str(path), **spec)) as src:
        return list(src.frames())


def _round(img: np.ndarray) -> None:
    _, _, w, h = disc_box(img)
    assert abs(w - h) <= 2, f"the disc is {w} x {h} px: stretched"


def test_a_resolution_change_mid_stream_is_followed(tmp_path: Path) -> None:
    clip = encode(tmp_path / "failover.ts", [(640, 360)] * 8 + [(320, 240)] * 8, fmt="mpegts")
    frames = _frames(clip)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 8 + [(240, 320, 3)] * 8
    for f in frames:
        _round(f.image)  # never stretched to the first frame's size
    cx, cy, _, _ = disc_box(frames[-1].image)
    assert (cx, cy) == pytest.approx((320 / 3, 240 / 3), abs=2)
    half = _frames(clip, width=320)  # decode-time downscale keeps each frame's own aspect
    assert [f.image.shape for f in half] == [(180, 320, 3)] * 8 + [(240, 320, 3)] * 8


def test_the_reader_reports_the_change_as_camera_reconfigured(tmp_path: Path) -> None:
    clip = encode(tmp_path / "failover.ts", [(640, 360)] * 4 + [(320, 240)] * 4, fmt="mpegts")
    got: list = []
    reader = CameraReader(CameraSpec(id="nvr-7", url=str(clip)), got.append).start()
    deadline = time.time() + 30
    while not reader.stats.finished and time.time() < deadline:
        time.sleep(0.05)
    events = [e for e in reader.health.poll() if e.kind == "camera-reconfigured"]
    assert len(got) == 8 and len(events) == 1
    assert "640x360 to 320x240" in (events[0].detail or "")


@pytest.mark.parametrize(("degrees", "shape", "centre"), [
    (90, (320, 240, 3), (240 - 1 - 80, 320 // 3)),      # turned clockwise: x' = H-1-y, y' = x
    (180, (240, 320, 3), (320 - 1 - 106, 240 - 1 - 80)),
    (270, (320, 240, 3), (80, 320 - 1 - 106)),
])
def test_display_matrix_rotation_is_applied(tmp_path: Path, degrees: int, shape: tuple, centre: tuple) -> None:
    clip = rotate_mp4(encode(tmp_path / f"phone{degrees}.mp4", [(320, 240)] * 3), degrees)
    frames = _frames(clip)
    assert all(f.image.shape == shape for f in frames)
    cx, cy, _, _ = disc_box(frames[0].image)
    assert (cx, cy) == pytest.approx(centre, abs=2)
    _round(frames[0].image)
    scaled = _frames(clip, width=120)  # the requested width is the displayed picture's
    assert scaled[0].image.shape[1] == 120 and scaled[0].image.shape[0] == round(120 * shape[0] / shape[1] / 2) * 2


def test_exif_orientation_of_mjpeg_is_applied(tmp_path: Path) -> None:
    clip = exif_mjpeg(tmp_path / "cam.mjpeg", (320, 240), orientation=6)  # 6: turn 90° clockwise to view
    frames = _frames(clip)
    assert len(frames) == 3 and frames[0].image.shape == (320, 240, 3)
    assert disc_box(frames[0].image)[:2] == pytest.approx((159, 106), abs=2)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_of_mjpeg_matches_pillow(tmp_path: Path, orientation: int) -> None:
    """All eight EXIF orientations, the mirrored ones (2, 4, 5, 7) too: PyAV cannot read the display matrix of a
    frame that carries an EXIF block, and the angle alone showed 2 (mirrored) upside down and 4, 5, 7 unmirrored."""
    from PIL import Image, ImageOps

    clip = exif_mjpeg(tmp_path / "cam.mjpeg", (320, 240), orientation=orientation, n=2)
    with Image.open(clip) as im:  # the first JPEG of the stream, as Pillow shows it
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    for width in (None, 120):
        frames = _frames(clip, width=width)
        assert len(frames) == 2
        if width is None:
            assert frames[0].image.shape == want.shape
            assert np.abs(frames[0].image.astype(int) - want).mean() < 1
        else:  # downscaled in its displayed orientation: the disc stays where Pillow shows it
            assert frames[0].image.shape[1] == 120
            cx, cy, _, _ = disc_box(frames[0].image)
            wx, wy, _, _ = disc_box(want)
            assert (cx, cy) == pytest.approx((wx * 120 / want.shape[1], wy * 120 / want.shape[1]), abs=2)


def test_display_turns_match_ffmpeg_autorotate() -> None:
    one = 0x10000
    assert display_turn(-90) == "clock" and display_turn(90) == "cclock" and display_turn(180) == "180"
    assert display_turn(0, [one, 0, 0, 0, -one, 0, 0, 0, 1 << 30]) == "vflip"
    assert display_turn(180, [-one, 0, 0, 0, one, 0, 0, 0, 1 << 30]) == "hflip"  # a mirrored front camera
    assert display_turn(-90, [0, one, 0, one, 0, 0, 0, 0, 1 << 30]) == "transpose"
    img = np.arange(6).reshape(2, 3)
    assert orient(img, "clock").tolist() == [[3, 0], [4, 1], [5, 2]]
    assert orient(img, "cclock").tolist() == [[2, 5], [1, 4], [0, 3]]
    assert orient(img, "transpose").tolist() == [[0, 3], [1, 4], [2, 5]]
    assert orient(img, "hflip").tolist() == [[2, 1, 0], [5, 4, 3]]


@pytest.mark.skipif("libx265" not in av.codecs_available, reason="this FFmpeg has no H.265 encoder")
def test_hevc_streams_decode(tmp_path: Path) -> None:
    clip = encode(tmp_path / "h265.mp4", [(320, 240)] * 5, codec="libx265")
    with av.open(str(clip)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
    frames = _frames(clip)
    assert len(frames) == 5 and all(f.image.shape == (240, 320, 3) for f in frames)
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    _round(frames[2].image)


def test_variable_frame_rate_keeps_each_frame_time(tmp_path: Path) -> None:
    clip = encode(tmp_path / "vfr.mp4", [(320, 240)] * 6, pts_ms=[0, 40, 200, 230, 900, 1000])
    frames = _frames(clip)
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.04, 0.2, 0.23, 0.9, 1.0])
    s = RateSampler(SamplerConfig(rate_fps=2))  # 2 per second of stream time, not per frame count
    assert [s.take(f.pts) for f in frames] == [True, False, False, False, True, False]


@pytest.mark.parametrize(("fmt", "ext"), [("avi", "avi"), ("mpegts", "ts"), ("mp4", "mp4"), ("flv", "flv")])
def test_b_frames_keep_display_order_times_in_every_container(tmp_path: Path, fmt: str, ext: str) -> None:
    """H.264 with B-frames: AVI stores its times in decode order, and the frames came out 0.1, 0.4, 0.3, 0.5,
    0.2 ...: nine "restarted stream" epochs and camera-reconfigured events in two seconds, tracks reset each time.
    Every container now gives the frames in display order at evenly rising times, and the reader no new epoch."""
    clip = moving_edge(tmp_path / f"nvr export.{ext}", fmt=fmt, options={"bf": "3"})
    frames = _frames(clip)
    assert [edge_index(f.image) for f in frames] == list(range(20))  # display order
    steps = np.diff([f.pts for f in frames])
    assert steps == pytest.approx([0.1] * 19, abs=1e-6)
    got: list = []
    reader = CameraReader(CameraSpec(id="nvr", url=str(clip)), got.append).start()
    deadline = time.time() + 30
    while not reader.stats.finished and time.time() < deadline:
        time.sleep(0.05)
    assert len(got) == 20 and {f.epoch for f in got} == {0}
    assert [e.kind for e in reader.health.poll() if e.kind == "camera-reconfigured"] == []
    looped = _frames(clip, loop=True, max_frames=50)  # laps of the AVI keep rising
    assert all(b > a for a, b in zip([f.pts for f in looped], [f.pts for f in looped][1:], strict=False))


def test_decode_order_times() -> None:
    avi = DecodeOrderTimes()  # AVI: packets numbered in decode order; out of the decoder in display order
    for t in (0.1, 0.2, 0.3):
        avi.push(t)
    assert [avi.take(own, True) for own in (0.1, 0.3)] == [0.1, 0.2]  # the frame whose own time is 0.3 shows 2nd
    avi.push(0.4)
    assert [avi.take(own, True) for own in (0.2, 0.4)] == [0.3, 0.4] and avi.in_order
    mp4 = DecodeOrderTimes()  # display-order times go back in decode order: the frames' own times stay
    for t in (0.0, 0.3, 0.1):
        mp4.push(t)
    assert not mp4.in_order and mp4.take(0.0, True) == 0.0 and mp4.take(0.1, True) == 0.1
    plain = DecodeOrderTimes()  # a decoder that does not reorder: own times
    plain.push(0.5)
    assert plain.take(0.5, False) == 0.5 and plain.take(None, True) is None
    lost = DecodeOrderTimes(max_pending=3)  # the decoder dropped packets: stop guessing
    for t in (1.0, 2.0, 3.0, 4.0):
        lost.push(t)
    assert not lost.in_order and lost.take(3.0, True) == 3.0
    lost.reset()
    assert lost.in_order


def test_decode_order_times_of_packets_that_give_no_frame_are_dropped() -> None:
    """'The k-th frame gets the k-th packet time' assumed one frame per packet: times of packets that give none
    stayed waiting and every later frame got an older time (1.9 s early after an AVI cut before its key frame)."""
    cut = DecodeOrderTimes()  # joined between key frames: the packets before the first key frame give no frame
    for k in range(1, 20):
        cut.push(k / 10, key=False)
    for k, t in enumerate((2.0, 2.1, 2.2, 2.3)):
        cut.push(t, key=k == 0)
    assert [cut.take(own, True) for own in (2.0, 2.2, 2.3, 2.1)] == [2.0, 2.1, 2.2, 2.3]
    dropped = DecodeOrderTimes()  # mid-stream packets the decoder swallowed: times far behind the frame's own
    for k in range(12):
        dropped.push(k / 10)
    assert dropped.take(0.0, True) == 0.0
    # older than 5 packet steps before the frame's own time: dropped; within: kept
    assert [dropped.take(own, True) for own in (0.9, 1.1, 1.0)] == [0.4, 0.6, 0.7]
    cut.reset()
    cut.push(5.0, key=False)
    assert cut.take(5.0, True) == 5.0  # after a seek, again only from a key frame: the frame's own time


def test_an_avi_cut_before_its_key_frame_keeps_its_frames_times(tmp_path: Path) -> None:
    """An AVI with B-frames whose first packets are not a key frame (a cut NVR export) gives each frame its true
    time (its picture number / 10 + the file's start), not one 1.9 s early."""
    src = moving_edge(tmp_path / "bf.avi", fmt="avi", n=40, options={"bf": "2", "g": "20"})
    for drop in (0, 1, 3):
        out = tmp_path / f"cut{drop}.avi"
        with av.open(str(src)) as i, av.open(str(out), "w", format="avi") as o:
            s, k = i.streams.video[0], 0
            os_ = o.add_stream_from_template(s)
            for pk in i.demux(s):
                if pk.size == 0:
                    continue
                k += 1
                if k > drop:
                    pk.stream = os_
                    o.mux(pk)
        frames = [(f.pts, edge_index(f.image)) for f in _frames(out)]
        assert [n for _, n in frames] == list(range(0 if drop == 0 else 20, 40)), drop
        assert {round(t - n / 10, 6) for t, n in frames} == {0.1}, drop


def test_greyscale_ir_streams_become_rgb(tmp_path: Path) -> None:
    clip = encode(tmp_path / "ir.mkv", [(320, 240)] * 3, codec="ffv1", pix_fmt="gray", fmt="matroska")
    with av.open(str(clip)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
    frames = _frames(clip)
    img = frames[0].image
    assert img.shape == (240, 320, 3) and img.flags["C_CONTIGUOUS"]
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    assert as_rgb(np.full((4, 5), 7, np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="got"):
        as_rgb(np.zeros((4, 5, 2), np.uint8))


def test_stream_clock_epochs_and_missing_pts() -> None:
    c = StreamClock()
    assert c.stamp(5.0, 101.0) == (5.0, 0, 0.0, False)  # a timed stream from its first frame: epoch 0, its own pts
    assert c.stamp(None, 101.5)[:2] == (pytest.approx(5.5), 0)  # a frame without pts continues the clock
    pts, epoch, offset, new = c.stamp(0.2, 102.0)  # went back: a restarted stream, epoch 1
    assert (pts, epoch, new) == (0.2, 1, True) and pts + offset == pytest.approx(5.5 + 0.5)  # the clock runs on
    assert c.stamp(0.3, 102.1)[:3] == (0.3, 1, pytest.approx(5.8))
    assert c.stamp(2.3, 104.1)[:3] == (2.3, 1, pytest.approx(5.8))
    c2 = StreamClock()
    c2.load_state(c.state())  # a restarted shard continues the epochs and the clock
    pts, epoch, offset, new = c2.stamp(0.1, 110.0)
    assert (epoch, new) == (2, True) and pts + offset == pytest.approx(2.3 + 5.8 + 5.9)


def test_stream_clock_holds_still_over_a_small_step_back() -> None:
    """Timestamps that step back by up to back_tolerance_s (0.5 s, that included) are jitter: same epoch, the
    frame keeps its own pts and its offset holds the pipeline's clock (pts + offset) at the last time (never
    earlier); a step back further is a restarted stream (a new epoch), as any step back was before."""
    c = StreamClock()
    assert [c.stamp(t, 100 + t)[:2] for t in (1.0, 1.1, 1.2)] == [(1.0, 0), (1.1, 0), (1.2, 0)]
    pts, epoch, offset, new = c.stamp(0.71, 101.3)  # 0.49 s back: its own pts, the clock held at 1.2
    assert (pts, epoch, new) == (0.71, 0, False) and pts + offset == pytest.approx(1.2)
    pts, epoch, offset, new = c.stamp(1.0, 101.4)  # still behind the last time given
    assert (pts, epoch, new) == (1.0, 0, False) and pts + offset == pytest.approx(1.2)
    assert c.stamp(1.3, 101.5) == (1.3, 0, 0.0, False)  # the camera's own times again
    pts, epoch, offset, new = c.stamp(0.8, 101.6)  # exactly 0.5 s back: still jitter
    assert (pts, epoch, new) == (0.8, 0, False) and pts + offset == pytest.approx(1.3)
    pts, epoch, offset, new = c.stamp(0.79, 101.7)  # 0.51 s back: a restart
    assert (pts, epoch, new) == (0.79, 1, True) and pts + offset == pytest.approx(1.3 + 0.2)  # 0.2 s on


def test_stream_clock_a_small_step_back_after_an_outage_is_a_new_epoch() -> None:
    """An RTSP session that dropped 0.3 s into the stream and came back 30 s later with its times from 0 went
    back only 0.3 s, but after 30 s: a restarted stream (a new epoch whose clock runs on by the outage, so
    tracks do not join across it and cooldowns age), not jitter."""
    c = StreamClock()
    for t in (0.0, 0.1, 0.2, 0.3):
        c.stamp(t, 100 + t)
    pts, epoch, offset, new = c.stamp(0.0, 130.3)
    assert (pts, epoch, new) == (0.0, 1, True) and pts + offset == pytest.approx(0.3 + 30.0)


def test_stream_clock_a_hold_lasts_at_most_back_tolerance_s() -> None:
    """A camera clock that drifts back (0.001 s a frame at 25 fps) stayed held at one time for 500 frames (20 s):
    the sampler took one frame. A frame held more than back_tolerance_s (wall clock) after the frame of the
    last time starts a new epoch (camera-reconfigured) whose clock runs on by that time; a shard restarted
    during a hold continues it."""
    c = StreamClock()
    c.stamp(10.0, 1000.0)
    clocks, epochs = [], []
    for i in range(1, 51):  # 2 s at 25 fps
        pts, epoch, offset, _ = c.stamp(10.0 - 0.001 * i, 1000.0 + 0.04 * i)
        clocks.append(pts + offset)
        epochs.append(epoch)
        if i == 5:
            c2 = StreamClock()
            c2.load_state(c.state())
            assert c2.stamp(10.0 - 0.006, 1000.0 + 0.04 * 12)[1] == 0
            assert c2.stamp(10.0 - 0.007, 1000.0 + 0.04 * 13)[1] == 1  # 0.52 s after the last time's frame
    assert epochs[:12] == [0] * 12 and epochs[12] == 1  # held 0.04 .. 0.48 s, a new epoch at 0.52 s
    assert clocks[:12] == pytest.approx([10.0] * 12) and clocks[12] == pytest.approx(10.52)
    assert epochs[-1] == 3 and clocks[-1] == pytest.approx(10.0 + 3 * 0.52)
    assert all(0.04 * i - (t - 10.0) <= 0.5 + 1e-9 for i, t in enumerate(clocks, 1))  # never 0.5 s behind the wall


def test_a_camera_whose_times_step_back_once_keeps_its_epoch(tmp_path: Path) -> None:
    """An MPEG-TS whose times go back two frame intervals once (0.9 s, then 0.7 s: a camera's or an NVR's
    timestamp jitter) and later restart at 0 (a camera clock reset): the reader keeps epoch 0 over the jitter,
    holding the frames that came back at 0.9 s, and starts epoch 1 (one camera-reconfigured) at the reset only;
    the pipeline's clock (pts + offset) never goes back."""
    segments = [range(0, 1000, 100), range(700, 1700, 100), range(0, 500, 100)]
    clip = tmp_path / "jitter.ts"
    clip.write_bytes(b"".join(encode(tmp_path / f"part{i}.ts", [(160, 120)] * len(ms), fmt="mpegts",
                                     pts_ms=list(ms), options={"bf": "0"}).read_bytes()
                              for i, ms in enumerate(segments)))
    assert [f.pts for f in _frames(clip)] == pytest.approx([t / 1000 for ms in segments for t in ms])
    got: list = []
    reader = CameraReader(CameraSpec(id="nvr", url=str(clip)), got.append).start()
    deadline = time.time() + 30
    while not reader.stats.finished and time.time() < deadline:
        time.sleep(0.05)
    assert [f.epoch for f in got] == [0] * 20 + [1] * 5
    assert [f.pts for f in got] == pytest.approx([t / 1000 for ms in segments for t in ms])  # the camera's own
    clock = [f.pts + f.offset for f in got]
    assert clock[10:13] == pytest.approx([0.9, 0.9, 0.9])  # the frames that came back: held at 0.9 s
    assert (np.diff(clock) >= 0).all() and clock[20] > clock[19]
    events = [e for e in reader.health.poll() if e.kind == "camera-reconfigured"]
    assert len(events) == 1 and "from 1.600 s to 0.000 s" in events[0].detail


def test_stream_clock_pts_that_begin_after_untimed_frames_continue_the_wall_clock() -> None:
    """Frames without pts are timed by the wall clock (about 1.7e9 s); when pts begin (5 s), the offset keeps the
    pipeline's clock running on from the wall clock instead of jumping back decades (stale tracks never aged);
    that is no restart of the stream (no new epoch, no camera-reconfigured)."""
    c = StreamClock()
    assert c.stamp(None, 1.7e9) == (None, 0, 0.0, False)  # a stream with no pts stays on the wall clock
    assert c.stamp(None, 1.7e9 + 1.0) == (None, 0, 0.0, False)
    c2 = StreamClock()
    c2.load_state(c.state())  # a shard restarted between the untimed frames and the first pts
    for clock in (c, c2):
        pts, epoch, offset, new = clock.stamp(5.0, 1.7e9 + 2.0)
        assert (pts, epoch, new) == (5.0, 0, False) and pts + offset == pytest.approx(1.7e9 + 2.0)
        pts, epoch, offset, new = clock.stamp(5.04, 1.7e9 + 2.05)  # then the stream's own pts drive the clock
        assert (epoch, new) == (0, False) and pts + offset == pytest.approx(1.7e9 + 2.04)
        pts, epoch, offset, new = clock.stamp(0.1, 1.7e9 + 3.0)  # a restart later is a new epoch as before
        assert (epoch, new) == (1, True) and pts + offset == pytest.approx(1.7e9 + 2.04 + 0.95)


def test_streams_without_pts_are_timed_by_the_wall_clock(tmp_path: Path) -> None:
    clip = encode(tmp_path / "raw.h264", [(320, 240)] * 6, fmt="h264")  # an elementary stream: no timestamps
    frames = _frames(clip)
    assert len(frames) == 6 and all(f.pts is None for f in frames)
    got: list = []
    reader = CameraReader(CameraSpec(id="raw", url=str(clip)), got.append).start()
    deadline = time.time() + 30
    while not reader.stats.finished and time.time() < deadline:
        time.sleep(0.05)
    assert len(got) == 6 and all(f.pts is None and f.epoch == 0 for f in got)


def _wanted(images: list[np.ndarray]) -> list[list[Detection]]:
    return [[Detection((10, 10, 50, 90), 0.99, "face", "W/1", 0.9)] for _ in images]


def _play(clip: Path, camera_id: str, cooldown_s: float = 0.0
          ) -> tuple[ShardCore, list[AlertDecisionEvent], list[CameraHealthEvent]]:
    """Play a clip through a shard (every frame to a detector that sees one wanted face at a fixed place): the
    shard, its alert decisions (alerts and suppressed ones) and its camera-reconfigured events."""
    cfg = ShardConfig(shard_id="geometry", cameras=[CameraSpec(id=camera_id, url=str(clip))], block_when_full=True,
                      gate=MotionGateConfig(enabled=False), sampler=SamplerConfig(rate_fps=100),
                      confirmer=ConfirmerConfig(min_matches=3, cooldown_s=cooldown_s))
    core = ShardCore(cfg, LocalDetector(_wanted)).start()
    try:
        deadline = time.time() + 60
        while not core.finished() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(cfg.health_poll_s * 3)
    finally:
        core.stop()
    events = core.drain_events()
    return (core, [e for e in events if isinstance(e, AlertDecisionEvent)],
            [e for e in events if isinstance(e, CameraHealthEvent) and e.kind == "camera-reconfigured"])


def test_a_restarted_stream_never_reuses_track_or_alert_ids(tmp_path: Path) -> None:
    """The same clip twice in one stream (its clock restarts at the join): two epochs, two alerts, distinct ids,
    a camera-reconfigured event, and the tracker started again."""
    part = encode(tmp_path / "part.ts", [(320, 240)] * 12, fmt="mpegts")
    joined = tmp_path / "restarted.ts"
    joined.write_bytes(part.read_bytes() * 2)
    core, alerts, reconf = _play(joined, "cam/1")
    assert len(alerts) == 2 and len({a.alert_id for a in alerts}) == 2, [a.track_id for a in alerts]
    assert [a.track_id.endswith(":e1") for a in alerts] == [False, True]
    assert len(reconf) == 1 and "epoch 1" in (reconf[0].detail or "")
    assert core.resume_state()["clocks"]["cam/1"]["epoch"] == 1
    assert alerts[1].stream_ts > alerts[0].stream_ts  # the pipeline's clock ran on over the restart
    # with a cooldown, the same person on the same camera right after the restart is suppressed, not re-alerted
    _, decisions, _ = _play(joined, "cam/2", cooldown_s=300)
    assert [d.decision for d in decisions] == ["alert", "suppressed-cooldown"]
    assert decisions[1].duplicate_of == decisions[0].alert_id != decisions[1].alert_id


def test_the_shard_starts_tracks_again_after_a_resolution_change(tmp_path: Path) -> None:
    clip = encode(tmp_path / "failover.ts", [(640, 360)] * 10 + [(320, 240)] * 10, fmt="mpegts")
    core, alerts, reconf = _play(clip, "nvr 2")
    assert len(alerts) == 2 and alerts[0].track_id != alerts[1].track_id  # the old track was ended, not continued
    assert core.cams["nvr 2"].tracker.ended >= 1
    assert len(reconf) == 1 and "640x360 to 320x240" in (reconf[0].detail or "")


def test_a_paced_file_stays_paced_when_its_clock_restarts_or_jumps(tmp_path: Path) -> None:
    """`realtime` files (what `ssz run --source file` plays) are paced at their stream time: after the clock went
    back (a recording of a restarted stream) the rest went out at once, unpaced (a live shard dropped it); a gap in
    the recording longer than the camera's grace stalled the camera (and raised camera-offline) for its length."""
    part = encode(tmp_path / "part.ts", [(160, 120)] * 6, fmt="mpegts")
    joined = tmp_path / "restarted.ts"
    joined.write_bytes(part.read_bytes() * 3)
    got: list[tuple[float, float]] = []
    t0 = time.monotonic()
    with PyAVSource(CameraSpec(id="c", url=str(joined), realtime=True)) as src:
        got = [(f.pts, time.monotonic() - t0) for f in src.frames()]
    assert len(got) >= 15 and sum(1 for a, b in itertools.pairwise(got) if b[0] < a[0]) == 2
    gaps = np.diff([t for _, t in got])
    assert gaps.min() > 0.05 and gaps.max() < 0.3  # one or two frame periods (0.1 s; a frame is lost at a join)
    gap = encode(tmp_path / "motion.mkv", [(160, 120)] * 4, fmt="matroska", pts_ms=[0, 100, 60_000, 60_100])
    t0 = time.monotonic()
    with PyAVSource(CameraSpec(id="c", url=str(gap), realtime=True, grace_s=1)) as src:
        pts = [f.pts for f in src.frames()]
    assert pts == pytest.approx([0.0, 0.1, 60.0, 60.1]) and time.monotonic() - t0 < 3  # the minute is skipped


def test_a_looped_file_without_pts_or_seeking_is_paced_at_the_spec_fps(tmp_path: Path) -> None:
    """A raw H.264 elementary stream (no timestamps, no seeking) looped in real time: its second lap raised
    PermissionError from seek (the reader reopened it after a back-off, as if the connection broke) and its
    frames went out unpaced. Now it laps by reopening, at ``fps`` frames a second."""
    import threading

    clip = encode(tmp_path / "cam.h264", [(160, 120)] * 4, fmt="h264")
    src = PyAVSource(CameraSpec(id="c", url=str(clip), loop=True, realtime=True, fps=20))
    timer = threading.Timer(1.5, src.stop)
    with src:
        timer.start()
        frames = list(src.frames())
    assert 24 <= len(frames) <= 32 and all(f.pts is None for f in frames)  # 1.5 s at 20 fps: six laps of four
    assert src.stats.corrupt == 0 and src.stats.last_error is None


def test_an_http_mjpeg_camera_is_timed_by_the_wall_clock(tmp_path: Path) -> None:
    """An HTTP MJPEG camera (multipart/x-mixed-replace, served here at 5 fps, turned by EXIF, changing its size):
    FFmpeg numbered its frames at an assumed 25 fps (0.04 s apart), so the camera's stream clock ran five times
    too slow (sampling, tracks, cooldowns); it has no timestamps and is now timed by the wall clock."""
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from PIL import Image

    from tests.actors.sources.clips import disc_frame

    def jpeg(size: tuple[int, int]) -> bytes:
        buf, exif = io.BytesIO(), Image.Exif()
        exif[0x0112] = 6  # turn 90° clockwise to view
        Image.fromarray(disc_frame(*size)).save(buf, "JPEG", exif=exif.tobytes())
        return buf.getvalue()

    class Camera(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for size in [(320, 240)] * 4 + [(640, 360)] * 4:
                data = jpeg(size)
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(data), data))
                self.wfile.flush()
                time.sleep(0.2)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    got: list = []
    reader = CameraReader(CameraSpec(id="mjpeg", url=f"http://127.0.0.1:{server.server_address[1]}/video"),
                          got.append)
    try:
        reader.start()
        deadline = time.time() + 20
        while len(got) < 8 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        reader.stop(5)
        server.shutdown()
    frames = got[:8]
    assert [f.image.shape for f in frames] == [(320, 240, 3)] * 4 + [(640, 360, 3)] * 4  # EXIF turn, new size
    assert all(f.pts is None and f.epoch == 0 for f in frames)
    # the camera's own pace (0.2 s), not an assumed 25 fps (0.04 s); the median, as a loaded machine or FFmpeg's
    # probe can hand two frames over together
    assert float(np.median(np.diff([f.ts for f in frames]))) == pytest.approx(0.2, abs=0.08)
    events = [e for e in reader.health.poll() if e.kind == "camera-reconfigured"]
    assert len(events) == 1 and "240x320 to 360x640" in (events[0].detail or "")


def test_a_looped_photo_plays_as_a_still_camera(tmp_path: Path) -> None:
    """A JPEG photo given as a looped, paced camera (a placeholder for a camera not installed yet): its second lap
    decoded nothing after the seek, so the camera failed (before: spun on the empty laps for ever, one core busy).
    Laps now open it again: one frame every 1/fps s."""
    import threading

    from PIL import Image

    from tests.actors.sources.clips import disc_frame

    photo = tmp_path / "placeholder.jpg"
    Image.fromarray(disc_frame(320, 240)).save(photo)
    src = PyAVSource(CameraSpec(id="c", url=str(photo), loop=True, realtime=True, fps=20))
    timer = threading.Timer(1.0, src.stop)
    with src:
        timer.start()
        frames = list(src.frames())
    assert 15 <= len(frames) <= 22 and all(f.image.shape == (240, 320, 3) for f in frames)
    times = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(times))  # each lap one frame period after the last
