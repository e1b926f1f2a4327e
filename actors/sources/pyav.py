"""RTSP / HTTP(S) / file cameras decoded with PyAV (FFmpeg): the ``pyav`` source.

Network URLs get the transport and socket timeouts (PyAV's read timeout is the watchdog for stalled
sockets); corrupt packets are skipped and counted; files can loop and be paced at their frame rate, and
resume at a stream time after a restart. Every frame keeps its own geometry: a stream that changes resolution
(an NVR failing over to its sub-stream) is followed frame by frame, and the display matrix (phone and
body-camera rotation, EXIF orientation of MJPEG) is applied (:mod:`actors.sources.geometry`). Any codec FFmpeg
decodes is read (H.264, H.265/HEVC, MJPEG, MPEG-4 ...), greyscale / IR streams as RGB. Frame times: B-frames of
containers that store decode-order times (AVI) are put in display order; formats without timestamps (HTTP MJPEG,
raw H.264, image pipes) give ``pts=None`` (the wall clock times them). A file that cannot give a frame (empty,
damaged, truncated, no key frame, a picture over ``max_pixels``) raises a permanent :class:`SourceError` that
says why.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from actors.sources.base import SOURCE_REGISTRY, CameraSource, CameraSpec, Frame, SourceError
from actors.sources.geometry import DecodeOrderTimes, Turn, exif_turn, frame_turn, orient, swaps_axes
from serve.redact import redact


def _scaled_size(w: int, h: int, width: int | None) -> tuple[int, int]:
    if not width or width >= w:
        return w, h
    return width, max(2, round(h * width / w / 2) * 2)


def _decoded(f: Any, width: int | None, turn: Turn | None = None) -> np.ndarray:
    """One decoded frame as RGB (H, W, 3) in its own size and its display orientation (``turn``, else its display
    matrix), downscaled to ``width`` (of the displayed picture) when asked."""
    turn = frame_turn(f) if turn is None else turn
    fw, fh = f.width, f.height
    swap = swaps_axes(turn)
    w, h = _scaled_size(fh, fw, width) if swap else _scaled_size(fw, fh, width)
    img = f.to_ndarray(format="rgb24", width=h if swap else w, height=w if swap else h)
    return orient(img, turn)


class PyAVSource(CameraSource):
    """RTSP / HTTP / file decoding with PyAV (FFmpeg). Corrupt packets are skipped and counted."""

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self._container: object | None = None

    def open(self) -> None:
        """Open the container; network URLs get the transport and socket timeouts, files must exist.

        Raises
        ------
        SourceError
            The file is missing, a folder, empty, damaged or truncated, holds no video stream or one whose codec
            this FFmpeg cannot decode (all permanent for files: reading the file again gives the same); a network
            stream cannot be reached or read (not permanent: the reader reconnects). Metadata in another encoding
            than UTF-8 (a Thai NVR's TIS-620 title) is no error: it is read with replacement characters.
        """
        import av

        spec = self.spec
        options: dict[str, str] = {}
        target = spec.url
        file = spec.scheme == "file"
        if file:
            target = os.path.abspath(spec.path)  # FFmpeg reads "cam1:2.mp4" as protocol "cam1"; "/x/cam1:2.mp4" not
            if Path(target).is_dir():
                raise SourceError(f"camera {spec.id}: {target!r} is a folder, not a video file; give the path of "
                                  "one video file", permanent=True)
            if not Path(target).exists():
                raise SourceError(f"camera {spec.id}: video file {target!r} does not exist", permanent=True)
            if not Path(target).is_file():
                raise SourceError(f"camera {spec.id}: {target!r} is not a regular file (a pipe or a device?); give "
                                  "a video file, or stream the camera over RTSP or HTTP", permanent=True)
            if Path(target).stat().st_size == 0:
                raise SourceError(f"camera {spec.id}: video file {target!r} is empty (0 bytes): an interrupted copy "
                                  "or export? copy it again", permanent=True)
        elif spec.scheme in ("rtsp", "rtsps"):
            options = {"rtsp_transport": spec.rtsp_transport, "timeout": str(int(spec.read_timeout_s * 1e6))}
        elif spec.scheme in ("http", "https"):
            options = {"rw_timeout": str(int(spec.read_timeout_s * 1e6)), "reconnect": "0"}
        damaged = " (the file is damaged or truncated)" if file else ""
        try:
            self._container = av.open(target, options=options, timeout=(spec.open_timeout_s, spec.read_timeout_s),
                                      metadata_errors="replace")
        except av.error.InvalidDataError as e:
            raise SourceError(f"camera {spec.id}: {target!r} is not a decodable video stream ({e})",
                              permanent=file) from e
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise SourceError(f"camera {spec.id}: cannot open {target!r}: {e}{damaged}", permanent=file) from e
        streams = self._container.streams.video  # type: ignore[attr-defined]
        if not streams:
            self.close()
            raise SourceError(f"camera {spec.id}: {target!r} has no video stream", permanent=file)
        cc = streams[0].codec_context
        if cc is None:  # FFmpeg has no decoder for it (or a damaged index names none)
            self.close()
            raise SourceError(f"camera {spec.id}: the video stream of {target!r} is in a codec this FFmpeg cannot "
                              f"decode{damaged}; set the camera to H.264, H.265 or MJPEG", permanent=file)
        if cc.width * cc.height > spec.max_pixels:
            self.close()
            raise SourceError(f"camera {spec.id}: {target!r} says its pictures are {cc.width}x{cc.height} "
                              f"({cc.width * cc.height / 1e6:.3g} MP), more than max_pixels "
                              f"({spec.max_pixels / 1e6:.3g} MP): a damaged header, or set the camera to a lower "
                              "resolution (or raise the camera's max_pixels; in `ssz run`: --max-megapixels, or "
                              "cameras.max_megapixels in the city's config)", permanent=file)
        # a later frame that grows over the limit is refused; FFmpeg checks the size its buffers are aligned to
        # (2592 px wide: 2624), so a picture at the limit gets that headroom (else every frame was 'corrupt')
        aligned = -(-cc.width // 64) * 64 * (-(-cc.height // 64) * 64)
        cc.options = {**cc.options, "max_pixels": str(max(spec.max_pixels, aligned))}

    def frames(self) -> Iterator[Frame]:
        """Demux and decode packet by packet; loop files when asked; pace files when ``realtime`` (at their stream
        time, again from the frame where the clock went back or jumped ahead by more than ``grace_s``).

        ``start_pts`` (a reader reconnect, a shard restart) resumes a file after that stream time: a looped file in
        the lap it falls in (lap ``k`` is offset by ``k`` times the last frame's time + ``1 / spec.fps``), seeked
        on the video stream back to the key frame before it and decoded from there, frames before it skipped. A
        resume pass that decodes nothing starts over from the file's start (decoding and skipping), and a lap that
        passes without reaching the resume point drops it: a resume never spins and never fails the camera.

        Raises
        ------
        SourceError
            When a pass over the stream (a file, one lap of a looped file, or a network session) ends without one
            cleanly decoded frame (see :meth:`_undecodable`).
        """
        import av

        if self._container is None:
            raise SourceError(f"camera {self.spec.id}: frames() before open()")
        container = self._container
        stream = container.streams.video[0]  # type: ignore[attr-defined]
        stream.thread_type = "AUTO"
        t0: float | None = None
        pts0: float | None = None
        offset = 0.0
        last_pts = 0.0
        paced = step = 0.0  # stream time of the last paced frame, and the step to it
        skip_until = self.spec.start_pts if self.spec.scheme == "file" else None
        times = DecodeOrderTimes()  # AVI's decode-order times of B-frame streams, put in display order
        jpeg = stream.codec_context.name == "mjpeg"
        fmt = container.format  # type: ignore[attr-defined]
        # formats without timestamps (AVFMT_NOTIMESTAMPS: an HTTP MJPEG camera's multipart stream, raw H.264) and
        # image pipes (concatenated JPEGs): FFmpeg numbers their frames at an assumed 25 fps, whatever the camera
        # sends (a 5 fps camera's stream clock ran five times too slow); they are timed by the wall clock
        untimed = bool(fmt.flags & av.format.Flags.no_timestamps.value) or fmt.name.endswith("_pipe") or \
            fmt.name == "image2pipe"
        turns: dict[int | None, Turn | None] = {}  # MJPEG: each packet's EXIF orientation, by its pts
        resuming = bool(skip_until) and not untimed  # this pass resumes after a seek (it may decode nothing)
        if not resuming:
            skip_until = None
        elif skip_until is not None:
            # a lap lasts its last frame's time + 1/fps (the offset of the next lap, below); resume in the lap
            # where start_pts falls, at its time in the file
            lap = self._lap_s(container, stream) if self.spec.loop else None
            if lap:
                offset = int((skip_until + 1e-6) // lap) * lap
                skip_until -= offset
            with contextlib.suppress(av.error.FFmpegError, OSError):
                # on the video stream, backwards: to the key frame at or before the resume point (a seek in
                # AV_TIME_BASE put MPEG-TS on non-key packets: nothing decoded)
                container.seek(int(skip_until / stream.time_base), stream=stream,  # type: ignore[attr-defined]
                               backward=True)
        lapped = seek_failed = False  # looped files: a lap was done; the last lap after a seek gave nothing
        damaged = "damaged in the file" if self.spec.scheme == "file" else "damaged or lost on the way"
        mp = f"{self.spec.max_pixels / 1e6:.3g} MP"
        while True:
            good = 0  # frames of this pass that decoded cleanly (emitted or skipped while resuming)
            for packet in container.demux(stream):  # type: ignore[attr-defined]
                if self._stop.is_set():
                    return
                if packet.is_corrupt:
                    self.stats.corrupt += 1
                    continue
                try:
                    decoded = packet.decode()
                except (av.error.InvalidDataError, av.error.UndefinedError, ValueError) as e:
                    self.stats.corrupt += 1
                    cc = stream.codec_context  # a picture that grew over max_pixels: the decoder has its size
                    why = (f"a picture of {cc.width}x{cc.height} over max_pixels ({mp})"
                           if cc.width * cc.height > self.spec.max_pixels else damaged)
                    self.stats.last_error = redact(f"corrupt packet skipped ({why}): {e}")
                    continue
                if packet.pts is not None and packet.size and not packet.is_discard and not untimed:
                    times.push(float(packet.pts * packet.time_base), key=packet.is_keyframe)
                if jpeg and packet.size:
                    if len(turns) > 64:  # pts of packets that gave no frame
                        turns.clear()
                    turns[packet.pts] = exif_turn(bytes(memoryview(packet)[:65536]))  # the EXIF block is in front
                reorders = bool(stream.codec_context.has_b_frames)
                for f in decoded:
                    t = times.take(float(f.time) if f.time is not None and not untimed else None, reorders)
                    turn = turns.pop(f.pts, None) if jpeg else None
                    if f.is_corrupt:  # decoded with concealed errors: skip it rather than feed garbage on
                        self.stats.corrupt += 1
                        continue
                    good += 1
                    pts = (t + offset) if t is not None else None
                    if pts is not None:
                        last_pts = pts  # skipped frames too: the next lap's offset follows the lap's last frame
                    if skip_until is not None and t is not None and t < skip_until - 1e-6:
                        continue  # resuming: decode from the key frame before the resume point, emit after it
                    skip_until = None
                    img = _decoded(f, self.spec.width, turn)
                    if self.spec.realtime:
                        # frames without pts (a raw .h264 file) are paced at the spec's fps
                        pt = pts if pts is not None else paced + (1.0 / self.spec.fps if t0 is not None else 0.0)
                        if t0 is None or pts0 is None or pt < paced - 1e-6 or \
                                (pt - pts0) - (time.monotonic() - t0) > self.spec.grace_s:
                            # the first frame, the stream's clock restarted (else the rest went out unpaced at
                            # once), or a gap in the recording longer than the camera's grace (else it stalled)
                            t0, pts0 = time.monotonic(), pt - (step if t0 is not None else 0.0)
                        elif pt > paced:
                            step = pt - paced
                        paced = pt
                        wait = (pt - pts0) - (time.monotonic() - t0)
                        if wait > 0 and self._stop.wait(wait):
                            return
                    yield self._frame(img, pts)
                    if self.spec.max_frames and self.stats.decoded >= self.spec.max_frames:
                        return
            if resuming:
                resuming = False
                if not good:  # the seek landed where nothing decodes: from the start, decoding and skipping
                    container, stream = self._restart(container, stream, reopen=False)
                    times.reset()
                    continue
            elif not good and not (lapped and not seek_failed):
                self._undecodable()  # nothing at all, or nothing even from a file opened again
            skip_until = None  # a whole lap passed without reaching the resume point (past its last frame)
            if not (self.spec.loop and self.spec.scheme == "file"):
                return
            # a lap that decoded nothing after a seek (an image pipe: a JPEG photo looped): laps open the file again
            seek_failed, lapped = seek_failed or (lapped and not good), True
            container, stream = self._restart(container, stream, reopen=seek_failed)
            times.reset()
            offset = last_pts + 1.0 / self.spec.fps

    def _restart(self, container: Any, stream: Any, reopen: bool) -> tuple[Any, Any]:
        """The container and its video stream at the file's start (:meth:`_rewind`)."""
        reopened = self._rewind(reopen=reopen)
        if reopened is container:
            return container, stream
        stream = reopened.streams.video[0]
        stream.thread_type = "AUTO"
        return reopened, stream

    def _lap_s(self, container: Any, stream: Any) -> float | None:
        """How long one lap of a looped file lasts on the stream clock: its last frame's time + ``1 / spec.fps``,
        the offset each lap gets (not the container's duration: a 5 fps file's lap at fps 10 is 0.1 s shorter);
        None where the end cannot be read (the file is not seekable)."""
        import av

        last: float | None = None
        try:
            container.seek(2**62, stream=stream, backward=True)  # the last key frame
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    t = float(packet.pts * packet.time_base)
                    last = t if last is None else max(last, t)
        except (av.error.FFmpegError, OSError, OverflowError):
            return None
        return None if last is None else last + 1.0 / self.spec.fps

    def _rewind(self, reopen: bool = False) -> Any:
        """The container at its start for the next lap of a looped file: seeked to 0, or opened again (``reopen``,
        or where the format cannot seek: a raw .h264 / .hevc elementary stream raised PermissionError, which the
        reader took for a broken connection: it reopened after a back-off, counted a reconnect and showed the
        error)."""
        import av

        if not reopen:
            try:
                self._container.seek(0)  # type: ignore[union-attr]
                return self._container
            except (av.error.FFmpegError, OSError):
                pass
        self.close()
        self.open()
        return self._container

    def _undecodable(self) -> None:
        """A pass over the stream ended without one cleanly decoded frame (every packet corrupt, a picture size
        the decoder refuses, no key frame): raise rather than end quietly, or spin on a looped file for ever.

        Raises
        ------
        SourceError
            Always; permanent for files (reading the file again gives the same), not for network streams (the
            reader reconnects and the message becomes the camera's health detail).
        """
        spec = self.spec
        where = repr(spec.path) if spec.scheme == "file" else redact(spec.url)
        last = f"; last decoder error: {self.stats.last_error}" if self.stats.last_error else ""
        file = spec.scheme == "file"
        why = (f"{self.stats.corrupt} corrupt or undecodable packets skipped{last}" if self.stats.corrupt else
               f"the {'file' if file else 'session'} ended before its first whole frame")
        advice = ("the video is damaged or truncated, has a picture size the decoder refuses, or has no key frame; "
                  "check the recording" if file else
                  "no key frame came before the stream ended, packets were lost, or the picture size is refused; "
                  "check the camera's encoder settings (key frame interval, codec H.264 / H.265 / MJPEG, "
                  "resolution) and the network")
        raise SourceError(f"camera {spec.id}: no frame of {where} could be decoded ({why}): {advice}",
                          permanent=file)

    def close(self) -> None:
        """Close the container (idempotent)."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()  # type: ignore[attr-defined]
            self._container = None


SOURCE_REGISTRY["pyav"] = PyAVSource
