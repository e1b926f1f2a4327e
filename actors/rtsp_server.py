#!/usr/bin/env python3
"""A small RTSP server that streams a video file in an endless loop (H.264 over RTP), for tests and demos.

Run it with the SYSTEM python (it needs GStreamer's Python bindings from Debian, not the venv)::

    /usr/bin/python3 actors/rtsp_server.py --file /usr/share/doc/opencv-doc/examples/data/vtest.avi \\
        --port 8554 --path /cam1

then open ``rtsp://127.0.0.1:8554/cam1``. Debian packages: gstreamer1.0-tools,
gstreamer1.0-plugins-{base,good,bad,ugly}, gstreamer1.0-libav, gstreamer1.0-rtsp, gir1.2-gst-rtsp-server-1.0,
python3-gi, python3-gst-1.0.

How it loops: each client's media has its own reader pipeline (filesrc ! decodebin ! videoconvert !
appsink); frames are pushed into an ``appsrc`` with fresh, monotonic timestamps, and when the reader hits
the end of the file it seeks back to the start. The server binds 127.0.0.1 unless told otherwise. It
prints ``READY rtsp://...`` on stdout once it listens, which the tests wait for.

This file imports only the standard library and ``gi`` so that it runs outside the project's venv.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtspServer  # noqa: E402

_ = GstApp  # registers the appsink/appsrc methods used below


class LoopingFileFactory(GstRtspServer.RTSPMediaFactory):
    """Media factory whose media re-stamp and loop the frames of one file."""

    def __init__(self, path: str, fps: float, width: int | None, bitrate_kbps: int) -> None:
        super().__init__()
        self.path = path
        self.fps = fps
        self.width = width
        self.bitrate = bitrate_kbps
        self.set_shared(True)

    def do_create_element(self, url: GstRtspServer.RTSPUrl) -> Gst.Element:
        """The streaming half: appsrc -> H.264 (x264, zero latency) -> RTP payloader ``pay0``."""
        launch = (
            "( appsrc name=src is-live=true block=true format=time "
            "! queue max-size-buffers=4 ! videoconvert ! video/x-raw,format=I420 "
            f"! x264enc tune=zerolatency speed-preset=ultrafast bitrate={self.bitrate} key-int-max={int(self.fps)} "
            "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        return Gst.parse_launch(launch)

    def do_configure(self, media: GstRtspServer.RTSPMedia) -> None:
        """Attach a reader pipeline for the file and feed its frames to the media's appsrc."""
        element = media.get_element()
        appsrc = element.get_child_by_name("src")
        scale = f"! videoscale ! video/x-raw,format=I420,width={self.width},pixel-aspect-ratio=1/1" if self.width \
            else "! video/x-raw,format=I420"
        reader = Gst.parse_launch(
            f'filesrc location="{self.path}" ! decodebin ! videoconvert {scale} '
            "! appsink name=sink sync=false max-buffers=8"
        )
        sink = reader.get_by_name("sink")
        reader.set_state(Gst.State.PLAYING)
        reader.get_state(Gst.CLOCK_TIME_NONE)
        first = sink.emit("pull-preroll")
        if first is None:
            sys.stderr.write(f"cannot decode {self.path}\n")
            return
        appsrc.set_property("caps", first.get_caps())
        state = {"n": 0}
        duration = int(Gst.SECOND / self.fps)

        def need_data(src: Gst.Element, _length: int) -> None:
            sample = sink.emit("try-pull-sample", Gst.SECOND)
            if sample is None:  # end of file: rewind and read the first frame again
                reader.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
                sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
                if sample is None:
                    src.emit("end-of-stream")
                    return
            buf = sample.get_buffer().copy()
            buf.pts = state["n"] * duration
            buf.dts = buf.pts
            buf.duration = duration
            state["n"] += 1
            src.emit("push-buffer", buf)

        appsrc.connect("need-data", need_data)
        media.connect("unprepared", lambda *_: reader.set_state(Gst.State.NULL))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the RTSP server and run the GLib main loop until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", required=True, help="video file to stream in a loop")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--path", default="/cam", help="mount path, e.g. /cam1")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    ap.add_argument("--fps", type=float, default=10.0, help="frame rate to stream at")
    ap.add_argument("--width", type=int, default=None, help="downscale to this width (keeps aspect)")
    ap.add_argument("--bitrate", type=int, default=1500, help="H.264 bitrate in kbit/s")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.file):
        sys.stderr.write(f"no such video file: {args.file}\n")
        return 2
    if not args.path.startswith("/"):
        args.path = "/" + args.path
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path,
                                          LoopingFileFactory(os.path.abspath(args.file), args.fps, args.width,
                                                             args.bitrate))
    if server.attach(None) == 0:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port} (port in use?)\n")
        return 3
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://{args.host}:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
