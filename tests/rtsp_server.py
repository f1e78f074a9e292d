#!/usr/bin/python3
"""A real RTSP server for tests: GStreamer's RTSP server serving a video file on loopback.

Run it with Debian's `/usr/bin/python3` (python3-gi and gir1.2-gst-rtsp-server-1.0), not the venv:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --media ../shared/media/videos/WolfgangLanger_Pexels.mp4 \
        [--name cam] [--user alice --password s3cret] [--loop]

Mount points:
    /<name>         open to anyone.
    /<name>-secure  only with the basic-auth user/password (present when --user is given), so tests can
                    check that a password in an RTSP URL never leaks.

The file (mp4 or mov, like everything in shared/media/videos) is demuxed, and its video track decoded and
re-encoded with x264 (zerolatency, a keyframe every `--gop` frames) so a client that (re)connects
mid-stream gets a picture within a fraction of a second, four slices per frame (`sliced-threads=true
threads=4`), with the parameter sets repeated before every keyframe slice, as hardware encoders and restreamers
send them (FFmpeg's parser splits such pictures; the reader joins them again: pipeline/sources/_pictures.py).
`--passthrough CODEC` (h264 or h265) serves the file's coded video as it is instead, the way restreamers
(DeepStream, Jetson, gst-rtsp-server setups) relay a camera: `CODECparse config-interval=-1 !
rtpCODECpay config-interval=-1`, which repeats the parameter sets before every keyframe slice, so a
multi-slice file reaches the client as multi-slice pictures (tests/test_rtsp_interop.py encodes them with
ffmpeg). Each client gets its own pipeline
starting at the beginning of the file; `--loop` replays the file forever instead of ending the stream
(timestamps start again from 0 at each loop, as after a camera reboot).
Once the server listens it prints `READY <port>` on stdout (the fixture waits for that line).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

REQUIRED_ELEMENTS = (
    "filesrc",
    "qtdemux",
    "decodebin",
    "videoconvert",
    "x264enc",
    "h264parse",
    "rtph264pay",
    "parsebin",
    "h265parse",
    "rtph265pay",
)


def _launch(media: str, gop: int, fps: int | None, passthrough: str | None = None) -> str:
    if passthrough:
        # parsebin picks the demuxer (mp4, mkv, MPEG-TS) and hands out the coded stream untouched.
        return (
            f'( filesrc location="{media}" ! parsebin ! {passthrough}parse config-interval=-1 ! '
            f"rtp{passthrough}pay name=pay0 pt=96 config-interval=-1 )"
        )
    # Only the video track is linked: an audio branch left dangling inside decodebin ended the stream early.
    # Quotes keep paths with spaces in one property value.
    rate = f"videorate ! video/x-raw,framerate={fps}/1 ! " if fps else ""
    return (
        f'( filesrc location="{media}" ! qtdemux name=demux demux.video_0 ! queue ! decodebin name=dec ! videoconvert ! {rate}'
        f"x264enc tune=zerolatency sliced-threads=true threads=4 speed-preset=ultrafast key-int-max={gop} bitrate=1500 ! "
        "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """A factory whose media seeks back to the start at end of stream instead of ending it."""

    def __init__(self, loop: bool) -> None:
        super().__init__()
        self._loop = loop
        if loop:
            self.connect("media-configure", self._on_configure)

    def _on_configure(self, _factory, media) -> None:
        element = media.get_element()
        dec = element.get_by_name("dec")
        if dec is None:
            return
        # Decodebin exposes its pad late; catch EOS on whatever comes out of it and rewind the file instead.
        dec.connect("pad-added", self._on_pad, element)

    def _on_pad(self, _dec, pad, element) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not caps.to_string().startswith("video/"):
            return  # an audio track ends at its own time; only the picture's end rewinds the file
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._on_event, element)

    def _on_event(self, _pad, info, element):
        if info.get_event().type != Gst.EventType.EOS:
            return Gst.PadProbeReturn.OK
        # Seeking from the streaming thread would deadlock: do it from the main loop.
        GLib.idle_add(self._rewind, element)
        return Gst.PadProbeReturn.DROP

    @staticmethod
    def _rewind(element) -> bool:
        element.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        return False


def build_server(args: argparse.Namespace) -> GstRtspServer.RTSPServer:
    """Create the server with its mount points (not yet attached to the main loop)."""
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    launch = _launch(args.media, args.gop, args.fps, args.passthrough)

    open_factory = LoopingFactory(args.loop)
    open_factory.set_launch(launch)
    mounts.add_factory(f"/{args.name}", open_factory)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        anonymous = GstRtspServer.RTSPToken()
        anonymous.set_string("media.factory.role", "anonymous")
        auth.set_default_token(anonymous)
        user = GstRtspServer.RTSPToken()
        user.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), user)
        server.set_auth(auth)

        for role in ("anonymous", "user"):
            open_factory.add_role_from_structure(_role(role))
        secure = LoopingFactory(args.loop)
        secure.set_launch(launch)
        secure.add_role_from_structure(_role("user"))
        # Anonymous clients may see the mount but not construct it: the server answers 401 (not 404), so
        # clients retry with the credentials of their URL, as they do with real cameras.
        secure.add_role_from_structure(_role("anonymous", construct=False))
        mounts.add_factory(f"/{args.name}-secure", secure)
    return server


def _role(name: str, construct: bool = True) -> Gst.Structure:
    flag = "true" if construct else "false"
    structure, _ = Gst.Structure.from_string(
        f"{name}, media.factory.access=(boolean)true, media.factory.construct=(boolean){flag}"
    )
    return structure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", required=True, help="video file to serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="cam", help="mount point name")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    parser.add_argument("--gop", type=int, default=12, help="frames between keyframes")
    parser.add_argument("--fps", type=int, default=None, help="resample to this frame rate")
    parser.add_argument("--loop", action="store_true", help="replay the file forever")
    parser.add_argument(
        "--passthrough",
        choices=("h264", "h265"),
        default=None,
        help="serve the file's coded video as it is (no re-encoding)",
    )
    args = parser.parse_args(argv)

    Gst.init(None)
    missing = [e for e in REQUIRED_ELEMENTS if Gst.ElementFactory.find(e) is None]
    if missing:
        print(f"missing GStreamer elements: {', '.join(missing)}", file=sys.stderr)
        return 2
    server = build_server(args)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 3
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
