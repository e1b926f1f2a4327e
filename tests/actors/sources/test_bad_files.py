"""Video files a user may feed a camera that cannot give a picture, and those that can despite their oddities:
each bad one gets a clear, permanent error and a ``camera-failed`` event (never a quiet end, never a looped file
spinning on nothing), while the shard's other cameras go on. Clips are encoded here with PyAV
(tests/actors/sources/clips.py) and read by the real PyAV source."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from actors.detectors import LocalDetector
from actors.events import AlertDecisionEvent, CameraHealthEvent
from actors.motion import MotionGateConfig
from actors.sampler import SamplerConfig
from actors.shard import ShardConfig, ShardCore
from actors.sources import CameraReader, CameraSpec, HealthState, PyAVSource, SourceError
from actors.tracker import ConfirmerConfig, Detection
from tests.actors.sources.clips import audio_only, edge_index, encode, headless_ts, moving_edge


def test_a_file_without_a_decodable_frame_fails_with_a_clear_error(tmp_path: Path) -> None:
    clip = headless_ts(tmp_path / "no key frame.ts")
    for loop in (False, True):  # looped (as `ssz run --source file` plays), it used to spin on the file for ever
        src = PyAVSource(CameraSpec(id="c", url=str(clip), loop=loop))
        t0 = time.monotonic()
        with src, pytest.raises(SourceError, match=r"no frame of .* could be decoded") as e:
            list(src.frames())
        assert e.value.permanent and time.monotonic() - t0 < 10
        assert src.stats.decoded == 0 and src.stats.corrupt > 0 and f"{src.stats.corrupt} corrupt" in str(e.value)
        assert "no key frame" in str(e.value)
    reader = CameraReader(CameraSpec(id="c", url=str(clip), loop=True), lambda f: None).start()
    deadline = time.time() + 10
    while reader.alive and time.time() < deadline:  # a permanent error ends the reader by itself
        time.sleep(0.05)
    assert not reader.alive and reader.health.state == HealthState.failed
    events = reader.health.poll()
    assert [ev.kind for ev in events] == ["camera-failed"] and "could be decoded" in (events[0].detail or "")


def test_a_huge_picture_size_in_the_header_fails_without_allocating_it(tmp_path: Path) -> None:
    """A JPEG stream whose frame header claims 40000 x 40000 px (a damaged MJPEG camera): refused, not decoded."""
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (64, 48), "white").save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = (40000).to_bytes(2, "big") * 2
    clip = tmp_path / "huge.mjpeg"
    clip.write_bytes(bytes(jpeg) * 3)
    with PyAVSource(CameraSpec(id="c", url=str(clip), width=320)) as src, \
            pytest.raises(SourceError, match="could be decoded") as e:
        list(src.frames())
    assert e.value.permanent and src.stats.corrupt == 3


def test_an_audio_only_file_is_refused_as_such(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="has no video stream") as e:
        PyAVSource(CameraSpec(id="c", url=str(audio_only(tmp_path / "sound.m4a")))).open()
    assert e.value.permanent


def test_a_stream_that_starts_between_key_frames_plays_from_the_next_one(tmp_path: Path) -> None:
    import av

    from tests.actors.sources.clips import disc_frame

    path = tmp_path / "gop10.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        st = out.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
        st.codec_context.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "0"}
        for i in range(30):
            f = av.VideoFrame.from_ndarray(disc_frame(320, 240), format="rgb24")
            f.pts = i
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    data = path.read_bytes()
    cut = tmp_path / "joined late.ts"
    cut.write_bytes(data[(len(data) // 188 // 6) * 188:])  # inside the first GOP
    with PyAVSource(CameraSpec(id="c", url=str(cut))) as src:
        frames = list(src.frames())
    assert len(frames) == 20 and all(f.image.shape == (240, 320, 3) for f in frames)
    assert [f.pts for f in frames] == pytest.approx([1.0 + i / 10 for i in range(20)])


def test_a_bad_file_fails_its_camera_and_the_shards_other_camera_goes_on(tmp_path: Path) -> None:
    good = encode(tmp_path / "good.mp4", [(320, 240)] * 12)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    headless = headless_ts(tmp_path / "no key frame.ts")
    cams = [CameraSpec(id="good", url=str(good)), CameraSpec(id="headless", url=str(headless), loop=True),
            CameraSpec(id="empty", url=str(empty))]
    cfg = ShardConfig(shard_id="bad-files", cameras=cams, block_when_full=True, gate=MotionGateConfig(enabled=False),
                      sampler=SamplerConfig(rate_fps=100), confirmer=ConfirmerConfig(min_matches=3))
    core = ShardCore(cfg, LocalDetector(lambda images: [[Detection((10, 10, 50, 90), 0.99, "face", "W/1", 0.9)]
                                                        for _ in images])).start()
    try:
        deadline = time.time() + 60
        while not core.finished() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(cfg.health_poll_s * 3)
        stats = {c.camera_id: c for c in core.stats().cameras}
    finally:
        core.stop()
    events = core.drain_events()
    assert [e.camera_id for e in events if isinstance(e, AlertDecisionEvent) and e.decision == "alert"] == ["good"]
    failed = {e.camera_id: e.detail or "" for e in events if isinstance(e, CameraHealthEvent)
              and e.kind == "camera-failed"}
    assert set(failed) == {"headless", "empty"}
    assert "could be decoded" in failed["headless"] and "is empty (0 bytes)" in failed["empty"]
    assert stats["good"].decoded == 12 and stats["good"].processed == 12
    assert stats["headless"].health == "failed" and stats["headless"].decoded == 0


def test_file_urls_with_thai_names_and_spaces_are_read(tmp_path: Path) -> None:
    """A path with Thai characters and spaces works as given and as the file:// URL ``Path.as_uri()`` writes
    (percent-encoded); a folder is refused as a folder, not reported missing."""
    clip = encode(tmp_path / "กล้อง หน้า สน. 1.mp4", [(320, 240)] * 3)
    assert "%20" in clip.as_uri()
    for url in (str(clip), clip.as_uri(), f"file://{clip}"):
        spec = CameraSpec(id="c", url=url)
        assert spec.scheme == "file" and spec.path == str(clip)
        with PyAVSource(spec) as src:
            assert [f.image.shape for f in src.frames()] == [(240, 320, 3)] * 3
    with pytest.raises(SourceError, match="is a folder, not a video file") as e:
        PyAVSource(CameraSpec(id="c", url=str(tmp_path))).open()
    assert e.value.permanent
    os.mkfifo(tmp_path / "pipe")  # it exists: "does not exist" was wrong
    with pytest.raises(SourceError, match="is not a regular file"):
        PyAVSource(CameraSpec(id="c", url=str(tmp_path / "pipe"))).open()


def test_metadata_in_a_thai_windows_encoding_does_not_stop_the_video(tmp_path: Path) -> None:
    """A Thai NVR's export with its title and track name in TIS-620 / cp874, not UTF-8: PyAV refused to open it
    (UnicodeDecodeError), which the reader took for a network error and retried for ever."""
    import av

    for fmt, ext in (("matroska", "mkv"), ("mp4", "mp4")):
        path = tmp_path / f"export.{ext}"
        with av.open(str(path), "w", format=fmt, metadata_encoding="cp874") as out:
            out.metadata["title"] = "กล้อง สน.หาดใหญ่ 1"
            st = out.add_stream("libx264", rate=10)
            st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
            st.metadata["handler_name"] = "กล้อง"
            for i in range(3):
                f = av.VideoFrame.from_ndarray(np.zeros((240, 320, 3), np.uint8), format="rgb24")
                f.pts = i
                for p in st.encode(f):
                    out.mux(p)
            for p in st.encode(None):
                out.mux(p)
        with pytest.raises(UnicodeDecodeError):  # what PyAV does by default
            av.open(str(path)).close()
        with PyAVSource(CameraSpec(id="c", url=str(path))) as src:
            assert [f.image.shape for f in src.frames()] == [(240, 320, 3)] * 3


@pytest.mark.parametrize(("fmt", "ext"), [("mp4", "mp4"), ("matroska", "mkv"), ("webm", "webm")])
def test_a_file_cut_anywhere_gives_frames_or_a_permanent_error(tmp_path: Path, fmt: str, ext: str) -> None:
    """A recording copied or exported only in part, cut at 40 places: each gives its whole frames (never more
    than the clip has) or a permanent SourceError (never another exception, never a transient error that the
    reader would retry for ever: "End of file", "Input/output error" and "Decoder not found" were)."""
    codec = "libvpx-vp9" if ext == "webm" else "libx264"
    data = encode(tmp_path / f"full.{ext}", [(320, 240)] * 20, fmt=fmt, codec=codec).read_bytes()
    outcomes = set()
    for cut in np.linspace(0, len(data) - 1, 40).astype(int):
        part = tmp_path / f"cut.{ext}"
        part.write_bytes(data[:cut])
        try:
            with PyAVSource(CameraSpec(id="c", url=str(part))) as src:
                frames = list(src.frames())
            assert 0 < len(frames) <= 20 and all(f.image.shape == (240, 320, 3) for f in frames)
            outcomes.add("frames")
        except SourceError as e:
            assert e.permanent, str(e)
            outcomes.add("error")
    assert outcomes == {"frames", "error"}


def test_pictures_over_max_pixels_are_refused_before_they_are_decoded(tmp_path: Path) -> None:
    """``max_pixels`` (default 130 MP: above any camera, a 61 MP Avigilon H5 Pro passes; 40 MP refused it) bounds
    what one camera may allocate: a header over it is refused at open with its size; a stream that grows over it
    mid-stream keeps its frames below the limit and counts the rest. A picture exactly at the limit decodes:
    FFmpeg checks its width rounded up to its buffer alignment (330 -> 384), and every frame of a camera that
    passed the open check was refused as 'damaged'."""
    assert CameraSpec(id="c", url="x.mp4").max_pixels == 130_000_000 > 9344 * 6552
    odd = encode(tmp_path / "odd.ts", [(330, 250)] * 3, fmt="mpegts")
    with PyAVSource(CameraSpec(id="c", url=str(odd), max_pixels=330 * 250)) as src:
        assert [f.image.shape for f in src.frames()] == [(250, 330, 3)] * 3
    assert src.stats.corrupt == 0
    small = encode(tmp_path / "small.mp4", [(320, 240)] * 3)
    with pytest.raises(SourceError, match=r"320x240 \(0.0768 MP\), more than max_pixels \(0.05 MP\)") as e:
        PyAVSource(CameraSpec(id="c", url=str(small), max_pixels=50_000)).open()
    assert e.value.permanent
    grows = encode(tmp_path / "grows.ts", [(320, 240)] * 4 + [(640, 360)] * 4, fmt="mpegts")
    with PyAVSource(CameraSpec(id="c", url=str(grows), max_pixels=100_000)) as src:
        frames = list(src.frames())
    assert frames and {f.image.shape for f in frames} == {(240, 320, 3)}
    assert src.stats.corrupt > 0 and "max_pixels" in (src.stats.last_error or "")
    assert "a picture of 640x360 over max_pixels (0.1 MP)" in (src.stats.last_error or "")


def test_file_names_with_colons_and_other_spellings_of_a_path(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """NVR exports named by time ("CH01 10:00:00.mp4", "cam1:2024.mp4") were "unsupported URL"s (the part before
    the colon read as a scheme) or, given whole, opened by FFmpeg as protocol "cam1"; ``file:/x``, ``FILE:///x``,
    ``file://localhost/x`` and ``~/x`` were reported missing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("CH01 10:00:00.mp4", "cam1:2024.mp4"):
        encode(tmp_path / name, [(320, 240)] * 2)
        for url in (name, str(tmp_path / name)):
            spec = CameraSpec(id="c", url=url)
            assert spec.scheme == "file"
            with PyAVSource(spec) as src:
                assert len(list(src.frames())) == 2
    clip = tmp_path / "cam1:2024.mp4"
    for url in (f"file:{clip}", f"FILE://{clip}", f"file://localhost{clip}", "~/cam1:2024.mp4"):
        assert CameraSpec(id="c", url=url).path == str(clip), url
    for name in ("c:/nvr/a.mp4", "C:\\nvr\\a.mp4", "me@home.mp4", "./nvr.local:554", "rec:12:30.mp4",
                 "./srt:10.0.0.5:9000", "cam:12:30/a.mp4", "rec:12:30"):
        assert CameraSpec(id="c", url=name).scheme == "file", name
    with pytest.raises(ValueError, match="unsupported URL"):
        CameraSpec(id="c", url="ftp://nvr/a.mp4")


@pytest.mark.parametrize("url", ["nvr.local:554/cam1", "cam.hatyai.go.th:8080/video.mjpg", "10.0.0.5:554/s",
                                 "cam1:554", "admin:Secr3t@10.0.0.5:554/Streaming/Channels/101",
                                 "admin:Secr3t@nvr/s"])
def test_a_stream_address_without_its_scheme_is_refused_without_its_password(url: str) -> None:
    """``host:port/path`` and ``user:pass@host/...`` typed without ``rtsp://`` were taken for files: the camera
    failed with 'video file '/.../admin:Secr3t@10.0.0.5:554/...' does not exist' (shown by ssz status), password
    and all. They are refused at validation, the password redacted."""
    with pytest.raises(ValueError, match="unsupported URL") as e:
        CameraSpec(id="c", url=url)
    assert "Secr3t" not in str(e.value)


@pytest.mark.parametrize(("url", "write"), [("srt:10.0.0.5:9000", "srt://10.0.0.5:9000"),
                                           ("udp:239.0.0.1:1234", "udp://239.0.0.1:1234"),
                                           ("tcp:nvr:554/live", "tcp://nvr:554/live"),
                                           ("SRT:[::1]:9000", "SRT://[::1]:9000"),
                                           ("srt:10.0.0.5:9000#x", "srt://10.0.0.5:9000#x")])
def test_a_stream_address_without_its_slashes_is_refused_saying_how_to_write_it(url: str, write: str) -> None:
    """``srt:10.0.0.5:9000`` (``scheme:host:port`` without ``//``) was taken for a file path and reported missing
    when the camera started; it is refused at validation with the address written whole, and told that such
    streams are not read here (RTSP or HTTP are) or how to name a file of that name."""
    with pytest.raises(ValueError, match="is a stream address without '//'") as e:
        CameraSpec(id="c", url=url)
    assert f"(write {write!r}), but {url.split(':')[0]} streams are not read here" in str(e.value)
    assert f"a video file of this name: ./{url}" in str(e.value)


@pytest.mark.parametrize("url", ["srt:10.0.0.5:9000?passphrase=Secr3t", "srt:10.0.0.5:9000?streamid=Secr3t",
                                 "srt:admin:Secr3t@10.0.0.5:9000"])
def test_a_stream_address_without_its_slashes_is_refused_without_its_secret(url: str) -> None:
    """An SRT passphrase (or stream id, or a password) in an address without ``//`` was printed three times."""
    with pytest.raises(ValueError, match="is a stream address without '//'") as e:
        CameraSpec(id="c", url=url)
    assert "Secr3t" not in str(e.value)


def test_a_file_reconnected_after_a_fault_goes_on_where_it_was(tmp_path: Path) -> None:
    """A fault mid-file (here the consumer raises once at the 5th frame) makes the reader reconnect; it reopened the
    file from its start, so the frames already handed on came again under a new epoch: new track and alert ids,
    the same people alerted twice. It now resumes after the last frame it handed on."""
    clip = encode(tmp_path / "cam.mp4", [(160, 120)] * 12)
    got: list = []
    calls = 0

    def on_frame(frame: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("a transient fault downstream")
        got.append(frame)

    reader = CameraReader(CameraSpec(id="c", url=str(clip), backoff_initial_s=0.05), on_frame).start()
    deadline = time.time() + 30
    while not reader.stats.finished and time.time() < deadline:
        time.sleep(0.05)
    assert reader.stats.reconnects == 1 and "transient fault" in (reader.stats.last_error or "")
    assert [round(f.pts, 3) for f in got] == [round(i / 10, 3) for i in range(12)]  # each frame once, in order
    assert {f.epoch for f in got} == {0}
    assert [e.kind for e in reader.health.poll() if e.kind == "camera-reconfigured"] == []


def _looped(clip: Path, **spec: object) -> list[tuple[float, int]]:
    with PyAVSource(CameraSpec(id="c", url=str(clip), loop=True, **spec)) as src:  # type: ignore[arg-type]
        return [(round(f.pts, 3), edge_index(f.image)) for f in src.frames()]


@pytest.mark.parametrize(("fmt", "ext", "fps"), [("mp4", "mp4", 5), ("mp4", "mp4", 25), ("mpegts", "ts", 10)])
def test_a_looped_file_resumes_right_after_the_frame_it_handed_on(tmp_path: Path, fmt: str, ext: str,
                                                                  fps: int) -> None:
    """A looped file resumed at ``start_pts`` (a reader reconnect after a fault, a shard restart) gives exactly the
    frames the unbroken loop gives after that time. The lap was computed from the container's duration, but a lap
    lasts the last frame's time + 1/spec.fps (ssz run's file cameras: fps 10): a 5 fps file handed a picture on
    twice, a 25 fps file pictures 12-18 again, and a lap count too small decoded every lap and emitted nothing,
    for ever. MPEG-TS (start time 0.2 s here) resumed nothing and failed the camera as 'damaged': the seek in
    AV_TIME_BASE landed on non-key packets."""
    clip = moving_edge(tmp_path / f"cam.{ext}", fmt=fmt, n=20, fps=fps)
    unbroken = _looped(clip, max_frames=75)
    assert [n for _, n in unbroken] == [i % 20 for i in range(75)]
    for k in (0, 3, 19, 20, 41, 59, 60, 70):  # within a lap, its last frame, the first of the next
        assert _looped(clip, start_pts=unbroken[k][0] + 1e-3, max_frames=3) == unbroken[k + 1:k + 4], k
    # between a lap's last frame and the next lap's first: the next lap
    assert _looped(clip, start_pts=(unbroken[19][0] + unbroken[20][0]) / 2, max_frames=2) == unbroken[20:22]
    with PyAVSource(CameraSpec(id="c", url=str(clip), start_pts=unbroken[5][0] + 1e-3)) as src:  # not looped
        assert [(round(f.pts, 3), edge_index(f.image)) for f in src.frames()] == unbroken[6:20]
    with PyAVSource(CameraSpec(id="c", url=str(clip), start_pts=unbroken[19][0] + 1)) as src:  # past its end
        assert list(src.frames()) == [] and src.stats.corrupt == 0


def test_a_resume_that_cannot_find_its_lap_does_not_spin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the lap's length cannot be read, the file is decoded from its start and skipped up to the resume
    point; a whole lap that passes without reaching it drops it (the next lap is handed on): it decoded every lap
    and emitted nothing, for ever, at 100 % CPU with health 'online'."""
    clip = moving_edge(tmp_path / "cam.mp4", fmt="mp4", n=20, fps=5)
    unbroken = _looped(clip, max_frames=25)
    monkeypatch.setattr(PyAVSource, "_lap_s", lambda self, container, stream: None)
    assert _looped(clip, start_pts=unbroken[3][0] + 1e-3, max_frames=3) == unbroken[4:7]  # in the first lap
    assert _looped(clip, start_pts=1000.0, max_frames=3) == unbroken[20:23]  # never reached: the next lap


def test_a_resumed_mpegts_file_whose_seek_decodes_nothing_starts_over_and_skips(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume pass that decodes nothing (a seek that lands where no key frame follows) is no 'damaged file':
    the file is read from its start, decoding and skipping up to the resume point."""
    clip = moving_edge(tmp_path / "cam.ts", fmt="mpegts", n=20, fps=10)
    with PyAVSource(CameraSpec(id="c", url=str(clip))) as src:
        unbroken = [(round(f.pts, 3), edge_index(f.image)) for f in src.frames()]

    class OffKey:  # the container, whose seek to the resume point lands on a non-key packet (as MPEG-TS did)
        def __init__(self, container: object) -> None:
            self._c = container

        def __getattr__(self, name: str) -> object:
            return getattr(self._c, name)

        def seek(self, ts: int, **kw: object) -> None:
            self._c.seek(ts, **({**kw, "any_frame": True} if ts else kw))  # type: ignore[attr-defined]

    class Source(PyAVSource):
        def open(self) -> None:
            super().open()
            self._container = OffKey(self._container)

    for loop in (False, True):
        with Source(CameraSpec(id="c", url=str(clip), loop=loop, start_pts=unbroken[5][0] + 1e-3, max_frames=3)) as s:
            assert [(round(f.pts, 3), edge_index(f.image)) for f in s.frames()] == unbroken[6:9]


def test_a_live_session_without_a_frame_is_told_about_the_camera_not_a_recording() -> None:
    """A live session that ended before its first key frame was told to 'check the recording ... damaged or
    truncated'; it is told about the camera's encoder and the network, is not permanent, and holds no password."""
    src = PyAVSource(CameraSpec(id="c", url="rtsp://admin:Secr3t@10.0.0.5/s"))
    with pytest.raises(SourceError) as e:
        src._undecodable()
    msg = str(e.value)
    assert not e.value.permanent and "Secr3t" not in msg
    assert "the session ended before its first whole frame" in msg and "encoder settings" in msg
    assert "recording" not in msg and "truncated" not in msg
