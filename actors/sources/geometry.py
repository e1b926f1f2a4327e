"""The true geometry of a decoded frame, and one camera's stream clock.

- :func:`display_turn` and :func:`orient`: a frame's display matrix (MP4/MOV ``tkhd`` rotation of phone and
  body-camera clips, or a JPEG's EXIF orientation, which FFmpeg's MJPEG decoder exports the same way) applied
  to the pixels, as FFmpeg's own ``-autorotate`` does (``transpose`` / ``hflip`` / ``vflip``); :func:`exif_turn`
  reads an MJPEG frame's EXIF orientation itself (mirrored ones included).
- :func:`as_rgb`: greyscale / IR (H, W) and RGBA frames as contiguous RGB (H, W, 3).
- :class:`StreamClock`: stream times (pts) of one camera over reconnects. A pts that goes back far (a restarted
  encoder, an NVR clock reset, a new RTSP session, a looped file) starts a new *epoch*; track and alert ids carry
  the epoch so ids of the old and the new stream never collide. A small, quick step back (timestamp jitter)
  keeps the epoch, the pipeline's time held at the last time. A stream without pts is timed by the wall clock.
- :class:`DecodeOrderTimes`: the true times of frames of a container that stores them in decode order (H.264
  with B-frames in AVI, as NVRs export it), where FFmpeg's frame times go back and forth.
"""

from __future__ import annotations

import heapq
import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Turn = Literal["none", "clock", "cclock", "180", "transpose", "antitranspose", "hflip", "vflip"]


def display_turn(rotation: float, matrix: Sequence[int] | None = None) -> Turn:
    """How to turn decoded pixels so they show as intended, from FFmpeg's display matrix.

    Parameters
    ----------
    rotation : float
        ``av_display_rotation_get`` of the matrix, degrees counter-clockwise (PyAV's ``VideoFrame.rotation``;
        -90 for a clip that must be turned 90° clockwise).
    matrix : sequence of 9 int or None
        The display matrix itself (16.16 fixed point), when readable: it tells mirrored orientations apart.

    Returns
    -------
    str
        ``none``, ``clock`` (90° clockwise), ``cclock``, ``180``, ``transpose`` (mirror on the main diagonal),
        ``antitranspose``, ``hflip`` or ``vflip`` (the same choice as FFmpeg's ``ffmpeg -autorotate``).
    """
    theta = -float(round(rotation))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    m = list(matrix) if matrix is not None and len(matrix) == 9 else None
    if abs(theta - 90) < 1:
        return "transpose" if m is not None and m[3] > 0 else "clock"
    if abs(theta - 270) < 1:
        return "antitranspose" if m is not None and m[3] < 0 else "cclock"
    if abs(theta - 180) < 1:
        if m is None:
            return "180"
        h, v = m[0] < 0, m[4] < 0
        return "180" if h and v else "hflip" if h else "vflip" if v else "none"
    if m is not None and m[4] < 0:
        return "vflip"
    return "none"


def orient(image: np.ndarray, turn: Turn) -> np.ndarray:
    """``image`` (H, W[, C]) turned as :func:`display_turn` says, contiguous (a 90° turn swaps H and W)."""
    if turn == "none":
        return image
    out = {"clock": lambda a: np.rot90(a, -1), "cclock": lambda a: np.rot90(a, 1), "180": lambda a: a[::-1, ::-1],
           "transpose": lambda a: a.swapaxes(0, 1), "antitranspose": lambda a: np.rot90(a, -1)[::-1],
           "hflip": lambda a: a[:, ::-1], "vflip": lambda a: a[::-1]}[turn](image)
    return np.ascontiguousarray(out)


def swaps_axes(turn: Turn) -> bool:
    """Whether the turn exchanges width and height."""
    return turn in ("clock", "cclock", "transpose", "antitranspose")


def frame_turn(frame: Any) -> Turn:
    """The turn of a PyAV ``VideoFrame`` from its display-matrix side data (``none`` without any)."""
    rotation = float(getattr(frame, "rotation", 0) or 0)
    matrix = None
    try:  # PyAV raises on side data of a type it does not know (EXIF blocks of newer FFmpeg): the angle remains
        from av.sidedata.sidedata import Type

        sd = frame.side_data.get(Type.DISPLAYMATRIX)
        if sd is not None:
            matrix = struct.unpack("=9i", bytes(sd)[:36])
    except Exception:  # rotation alone still covers every unmirrored orientation
        matrix = None
    if not rotation and matrix is None:
        return "none"
    return display_turn(rotation, matrix)


EXIF_TURNS: dict[int, Turn] = {1: "none", 2: "hflip", 3: "180", 4: "vflip", 5: "transpose", 6: "clock",
                                7: "antitranspose", 8: "cclock"}
"""EXIF orientation (tag 0x0112, 1-8) -> the turn that shows the picture as intended."""


def exif_turn(jpeg: bytes) -> Turn | None:
    """The turn of one JPEG picture (an MJPEG camera's frame) from its EXIF orientation; None without one.

    FFmpeg exports the orientation as a display matrix, but PyAV cannot read the matrix of a frame that also
    carries the EXIF block (an unknown side-data type), and the angle alone turns the mirrored orientations
    (2, 4, 5, 7) wrong: 2 (mirrored) came out upside down. Only the first 64 KB are read (the EXIF block is an
    APP1 segment near the start, at most 64 KB): a caller may pass just those.
    """
    if not jpeg.startswith(b"\xff\xd8") or b"Exif" not in jpeg[:65536]:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(jpeg)) as im:
            orientation = im.getexif().get(0x0112)
    except Exception:  # a damaged header: the decoder's own reading stands
        return None
    return EXIF_TURNS.get(orientation) if isinstance(orientation, int) else None


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A frame as contiguous RGB uint8 (H, W, 3): greyscale / IR (H, W) or (H, W, 1) is repeated on three
    channels, RGBA loses its alpha.

    Raises
    ------
    ValueError
        Any other shape (the message gives it).
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.uint8)


@dataclass
class StreamClock:
    """The stream time of one camera across frames and reconnects (kept by the camera's reader).

    :meth:`stamp` gives each frame its epoch and the epoch's ``offset``: a pts lower than the last one by more
    than ``back_tolerance_s`` starts a new epoch, whose offset puts ``pts + offset`` just after the old epoch's
    last time (by the wall-clock gap), so the pipeline's clock (``pts + offset``: tracks, cooldowns, sampling)
    never runs backwards while ``pts`` stays the camera's own. A pts lower by at most ``back_tolerance_s`` that
    comes at most ``back_tolerance_s`` (wall clock) after the frame of the last time is jitter (an RTSP camera or
    an NVR export whose times step back a frame or two once): the frame keeps the epoch and its own pts, and its
    offset holds ``pts + offset`` at the last time (the pipeline's clock holds still until the camera's times
    pass it again, as it does for cameras that repeat a pts), so tracks are not cut in two. A step back after a
    longer wall-clock gap (a new RTSP session that restarted its times after an outage) or a hold that lasts
    longer (a camera clock that drifts back) starts a new epoch instead, its clock on by that gap. A frame
    without pts after timed frames continues the stream's clock by the wall-clock gap; a stream that never had
    pts stays untimed (the pipeline uses the wall clock). When pts appear after untimed frames (an RTSP
    session's first frames often come without), the epoch stays and its offset makes ``pts + offset`` continue
    the wall-clock time those frames had: else the pipeline's clock would jump from the wall clock (about 1.7e9
    s) back to the stream's few seconds, and the tracks and cooldowns of that time would never age.
    """

    epoch: int = 0
    last_pts: float | None = None
    """The latest stream time of the epoch (s; a held frame's own pts is lower)."""
    last_ts: float | None = None
    """Wall-clock time (Unix s) of the frame that gave ``last_pts``."""
    offset: float = 0.0
    back_tolerance_s: float = 0.5
    """The largest step back (s) taken for jitter, not a restart: two frame intervals of a 4 fps camera (of a
    25 fps one: 12), while a restart or a loop goes back by the seconds to hours the stream had run."""
    untimed: bool = False
    """Whether frames without pts came (timed by the wall clock) while the stream has had none."""

    def stamp(self, pts: float | None, ts: float) -> tuple[float | None, int, float, bool]:
        """(stream time, epoch, offset, whether this frame started a new epoch) of a frame with ``pts`` decoded
        at wall-clock ``ts`` (Unix s); the stream time is ``pts`` itself but for a frame without one (continued
        from the last). ``pts + offset`` is the pipeline's clock (a jittered frame's offset holds it at the last
        time)."""
        new = False
        gap = max(ts - self.last_ts, 1e-3) if self.last_ts is not None else 1e-3
        if pts is None:
            if self.last_pts is not None:
                pts = self.last_pts + gap
            else:
                self.untimed = True
        elif self.last_pts is not None and pts < self.last_pts:
            if self.last_pts - pts <= self.back_tolerance_s + 1e-9 and gap <= self.back_tolerance_s:  # jitter
                return pts, self.epoch, self.offset + self.last_pts - pts, False  # held at the last time
            self.offset = self.last_pts + self.offset + gap - pts
            self.epoch += 1
            new = True
        elif self.last_pts is None and self.untimed:  # the first pts after untimed frames
            self.offset = ts - pts
        if pts is not None:
            self.last_pts, self.last_ts, self.untimed = pts, ts, False
        return pts, self.epoch, self.offset, new

    def state(self) -> dict[str, float | int | bool | None]:
        """What a restarted shard needs to continue the clock (epoch, offset, last stream and wall time)."""
        return {"epoch": self.epoch, "last_pts": self.last_pts, "last_ts": self.last_ts, "offset": self.offset,
                "untimed": self.untimed}

    def load_state(self, st: dict[str, Any] | None) -> None:
        """Continue from :meth:`state`."""
        if st:
            self.epoch = int(st.get("epoch") or 0)
            self.offset = float(st.get("offset") or 0.0)
            self.last_pts = None if st.get("last_pts") is None else float(st["last_pts"])
            self.last_ts = None if st.get("last_ts") is None else float(st["last_ts"])
            self.untimed = bool(st.get("untimed"))


@dataclass
class DecodeOrderTimes:
    """Frame times of a stream whose container gives its packets times in decode order (AVI has no presentation
    times; FFmpeg numbers its packets): with B-frames the decoder outputs frames in display order but each keeps
    its packet's time, so the times go back and forth (0.1, 0.4, 0.3, 0.5, 0.2 ...) and every step back looked
    like a restarted stream. As long as the packets' times only increase, a frame out of a decoder that reorders
    is shown at the smallest time of the packets whose frames have not come out yet: :meth:`take` gives it.
    Streams whose packet times are in display order (MP4, MPEG-TS, Matroska with B-frames: they go back in
    decode order) keep their frames' own times.

    Packets that give no frame would leave their times waiting and every later frame an older time: packets
    before the first key frame (an AVI export cut between key frames, a live stream joined mid-GOP) are not
    counted, nor are empty ones (AVI drop chunks: the caller pushes only packets with data), and a waiting time
    more than :attr:`reorder_window` packet steps older than the frame's own time is dropped (a reordering
    decoder shows a frame at most ``has_b_frames`` packets before or after its own packet's time; decoder
    threads delay frames but do not change that).

    ``push`` each packet's time (s) as it goes to the decoder, ``take`` each frame the decoder gives (corrupt
    ones too), ``reset`` after a seek.
    """

    max_pending: int = 64
    """More packet times than this waiting for frames: packets the decoder dropped; the frames' own times are used."""
    reorder_window: int = 5
    """Packet steps a frame's time may lie before its own time (``has_b_frames``, at most 3 in practice, + slack)."""
    in_order: bool = True
    """Whether every packet time so far was higher than the one before."""
    _last_in: float | None = None
    _pending: list[float] | None = None
    _keyed: bool = False
    _step: float = 0.0

    def push(self, t: float | None, key: bool = True) -> None:
        """A packet of time ``t`` (s; None without one) was sent to the decoder; ``key``: a key frame's packet
        (those before the first key frame give no frame)."""
        self._keyed = self._keyed or key
        if t is None or not self.in_order or not self._keyed:
            return
        if self._last_in is not None and t <= self._last_in:
            self.in_order, self._pending = False, None  # display-order times: the frames' own are right
            return
        if self._last_in is not None:
            self._step = max(self._step, t - self._last_in) if self._step else t - self._last_in
        self._last_in = t
        self._pending = self._pending or []
        heapq.heappush(self._pending, t)
        if len(self._pending) > self.max_pending:
            self.in_order, self._pending = False, None

    def take(self, own: float | None, reorders: bool) -> float | None:
        """The time (s) of the next frame out of the decoder, whose own time is ``own``; ``reorders``: whether the
        decoder delays frames to reorder them (``codec_context.has_b_frames``)."""
        if own is None or not self.in_order or not self._pending:
            return own
        oldest = own - self.reorder_window * self._step - 1e-9
        while len(self._pending) > 1 and self._pending[0] < oldest:  # packets that gave no frame
            heapq.heappop(self._pending)
        t = heapq.heappop(self._pending)
        return t if reorders else own

    def reset(self) -> None:
        """The stream was seeked: times start again."""
        self.in_order, self._last_in, self._pending, self._keyed, self._step = True, None, None, False, 0.0
