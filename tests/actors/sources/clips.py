"""Small test clips encoded with PyAV in a temporary folder: a white disc (round when the geometry is true) at a
third of the width and height of each frame, in the sizes, codecs, containers and timings a test asks for."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def disc_frame(w: int, h: int, grey: bool = False) -> np.ndarray:
    """(h, w, 3) black RGB frame with a white disc of radius min(w, h) / 4 centred at (w / 3, h / 3)."""
    yy, xx = np.mgrid[:h, :w]
    r = min(w, h) // 4
    img = np.zeros((h, w, 3), np.uint8)
    img[(xx - w // 3) ** 2 + (yy - h // 3) ** 2 <= r * r] = 255
    return img[..., 0].copy() if grey else img


def disc_box(img: np.ndarray) -> tuple[float, float, int, int]:
    """(centre x, centre y, width, height) of the bright pixels of an RGB or grey frame."""
    a = img if img.ndim == 2 else img.mean(axis=2)
    ys, xs = np.nonzero(a > 128)
    return float(xs.mean()), float(ys.mean()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def encode(path: Path, sizes: Sequence[tuple[int, int]], *, codec: str = "libx264", fmt: str | None = None,
           pix_fmt: str = "yuv420p", fps: int = 10, pts_ms: Sequence[int] | None = None,
           options: dict[str, str] | None = None) -> Path:
    """Encode one disc frame per entry of ``sizes`` ((w, h) each); a new size starts a new encoder on the same
    stream (what an NVR failing over to its sub-stream sends; use ``fmt="mpegts"``). ``pts_ms`` gives each
    frame's time in ms (variable frame rate) instead of one frame per 1/fps. ``options``: the encoder's (``bf``:
    B-frames)."""
    out = av.open(str(path), "w", format=fmt)
    st = out.add_stream(codec, rate=fps)
    st.width, st.height = sizes[0]
    st.pix_fmt = pix_fmt
    if codec in ("libx265", "hevc"):
        st.codec_context.options = {"x265-params": "log-level=error"}
    st.codec_context.options = {**st.codec_context.options, **(options or {})}
    if pts_ms is not None:
        st.time_base = Fraction(1, 1000)
        st.codec_context.time_base = Fraction(1, 1000)
    ctx, cur = st.codec_context, sizes[0]

    def mux(packets: list) -> None:
        for p in packets:
            p.stream = st
            out.mux(p)

    for i, size in enumerate(sizes):
        if size != cur:
            mux(ctx.encode(None))
            ctx = av.CodecContext.create(codec, "w")
            ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], pix_fmt
            ctx.time_base, ctx.framerate = st.codec_context.time_base, Fraction(fps)
            cur = size
        grey = pix_fmt.startswith("gray")
        f = av.VideoFrame.from_ndarray(disc_frame(*size, grey=grey), format="gray" if grey else "rgb24")
        f = f.reformat(format=pix_fmt)
        f.pts = pts_ms[i] if pts_ms is not None else i
        f.time_base = Fraction(1, 1000) if pts_ms is not None else Fraction(1, fps)
        mux(ctx.encode(f))
    mux(ctx.encode(None))
    out.close()
    return path


def rotate_mp4(path: Path, degrees: int) -> Path:
    """Write a display matrix turning the picture ``degrees`` clockwise into the MP4's track header (``tkhd``),
    as phones and body cameras do instead of turning the pixels."""
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    version = data[i + 4]
    m_off = i + 8 + (32 if version == 1 else 20) + 8 + 8
    cos, sin = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees % 360]
    one = 0x10000
    data[m_off:m_off + 36] = struct.pack(">9i", cos * one, sin * one, 0, -sin * one, cos * one, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def exif_mjpeg(path: Path, size: tuple[int, int], orientation: int, n: int = 3) -> Path:
    """An MJPEG stream (concatenated JPEGs, as HTTP cameras send) whose frames carry an EXIF orientation tag."""
    buf = io.BytesIO()
    for _ in range(n):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(disc_frame(*size)).save(buf, "JPEG", exif=exif.tobytes())
    path.write_bytes(buf.getvalue())
    return path


def headless_ts(path: Path) -> Path:
    """An MPEG-TS of 30 frames cut after its only key frame (x264's default GOP is 250): what a recorder that lost
    the start of a recording leaves. Every packet decodes to an error or a concealed (corrupt) picture."""
    full = encode(path.with_name("full-" + path.name), [(320, 240)] * 30, fmt="mpegts").read_bytes()
    path.write_bytes(full[(len(full) // 188 // 3) * 188:])
    return path


def audio_only(path: Path) -> Path:
    """An AAC file (M4A) of half a second of silence: a file with no video stream."""
    with av.open(str(path), "w") as out:
        st = out.add_stream("aac", rate=16000)
        for i in range(8):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return path


def moving_edge(path: Path, *, fmt: str, codec: str = "libx264", n: int = 20, fps: int = 10,
                options: dict[str, str] | None = None) -> Path:
    """``n`` frames of 320 x 240 whose left ``8 * i`` columns are grey (128) in frame ``i``: the display order
    of decoded frames can be read back from them (:func:`edge_index`). ``options``: the encoder's (``bf``: B-frames)."""
    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
        st.codec_context.options = options or {}
        for i in range(n):
            img = disc_frame(320, 240)
            img[:, : 8 * i] = 128
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return path


def edge_index(img: np.ndarray) -> int:
    """The frame number :func:`moving_edge` drew in an RGB frame (its grey columns / 8)."""
    return int(np.round((np.abs(img[200, :, 0].astype(int) - 128) < 12).sum() / 8))
