"""Cameras as camera teams run them: RTSP servers nobody here wrote, media in the shapes cameras send.

Servers: gst-rtsp-server relaying the coded video untouched (`tests/rtsp_server.py --passthrough`, the
shape of DeepStream/Jetson/GStreamer restreamers: parameter sets before every keyframe slice) and VLC's
RTSP output (UDP only). Media: encoded here by ffmpeg from a shared clip (`tests/rtsp_interop.SHAPES`, and a
resolution change mid-stream). For each: every picture sent is decoded once, whole (found among the file's
own frames), corrupt frames are counted and never delivered, and the share of frames with a face is
within 2% of the same media read as a file. Each test prints one `interop:` line (docs/cameras.md).
"""

from __future__ import annotations

import pytest

from tests.conftest import need_shared
from tests.rtsp_fixtures import RtspServer, free_port, need_gstreamer
from tests.rtsp_interop import (
    CODECS,
    RESIZE,
    SHAPES,
    VLC_PACKAGES,
    LossyRelay,
    Reading,
    VlcServer,
    encode,
    need_tool,
    read_camera,
    read_file,
)

pytestmark = pytest.mark.rtsp

FRAMES = 240  # 10 s at 23.976 fps
# A stream that ends must not be reconnected while the test reads what the first connection delivered.
ONE_CONNECTION = {"backoff_first_s": 30.0, "backoff_cap_s": 30.0}


@pytest.fixture(scope="module")
def detector():
    from affectstream.pipeline.frames.detect import FaceDetector

    return FaceDetector(need_shared("models", "scrfd_500m.onnx"), input_size="auto")


@pytest.fixture(scope="module")
def media(tmp_path_factory, detector):
    """shape -> (clip, the clip read as a file); each clip encoded once per module, on first use."""
    need_tool("ffmpeg", "ffmpeg")
    src = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    out = tmp_path_factory.mktemp("clips")
    made: dict[str, tuple] = {}

    def get(shape: str):
        if shape not in made:
            clip = encode(src, out, shape, FRAMES)
            made[shape] = (clip, read_file(clip, detector))
        return made[shape]

    return get


def _report(server: str, shape: str, cam: Reading, ref: Reading, extra: str = "") -> None:
    s = cam.stats
    print(
        f"\ninterop: {server} {shape}: decoded={s.decoded} corrupt={s.corrupt} dropped={s.dropped} "
        f"delivered={len(cam.faces)} face_share camera={cam.face_share:.3f} file={ref.face_share:.3f} "
        f"(file frames {len(ref.faces)}) {extra}".rstrip()
    )


def _event(cam: Reading, kind: str) -> dict:
    found = [detail for k, detail in cam.events if k == kind]
    assert found, f"no {kind} event in {cam.events}"
    return found[0]


@pytest.mark.parametrize("shape", [*SHAPES, RESIZE])
def test_restreamer_passthrough_gives_one_whole_frame_per_picture(shape, media, detector):
    need_gstreamer()
    clip, ref = media(shape)
    server = RtspServer(clip, loop=False, passthrough=CODECS.get(shape, "h264")).start()
    try:
        cam = read_camera(server.url, detector, frames=10**6, seconds=60, until_end=True, **ONE_CONNECTION)
    finally:
        server.stop()
    _report("gst-passthrough", shape, cam, ref)
    assert cam.stats.decoded == FRAMES, "one picture sent must give exactly one decoded frame"
    assert cam.stats.corrupt == 0
    assert cam.pts == sorted(set(cam.pts)), "pts must be the stream's, one per picture, increasing"
    assert cam.unmatched(ref) == 0, "a delivered frame is none of the file's pictures (green or stale part)"
    assert set(cam.sizes) == set(ref.sizes)
    assert len(cam.faces) >= FRAMES // 2
    assert abs(cam.face_share - ref.face_share) <= 0.02
    started = _event(cam, "started")
    assert started["codec"] == {"h265": "hevc"}.get(CODECS.get(shape, ""), "h264")
    assert (started["width"], started["height"]) == ref.sizes[0]
    assert started["transport"] == "tcp" and started["fps"]


def test_lost_packets_are_counted_as_corrupt_never_delivered(media, detector):
    need_gstreamer()
    clip, ref = media("slices4")
    server = RtspServer(clip, loop=False, passthrough="h264").start()
    relay = LossyRelay(server.port, server.name, loss=0.02)
    try:
        cam = read_camera(
            relay.url,
            detector,
            frames=10**6,
            seconds=60,
            until_end=True,
            rtsp_transport="tcp",
            **ONE_CONNECTION,
        )
    finally:
        relay.close()
        server.stop()
    _report(
        "gst-passthrough+loss2%",
        "slices4",
        cam,
        ref,
        f"rtp_lost={relay.dropped}/{relay.dropped + relay.forwarded}",
    )
    assert relay.dropped > 10
    assert cam.stats.corrupt > 0, "pictures that lost a slice must be flagged"
    # ... and the ones predicted from them up to the next keyframe: what is delivered is whole.
    assert len(cam.faces) >= 20
    assert cam.unmatched(ref) == 0, "a picture damaged in transit was delivered"
    # Every decoded frame is delivered, replaced unread (stale) or counted corrupt: none reaches the model.
    assert cam.stats.decoded == len(cam.faces) + cam.stats.dropped + cam.stats.corrupt
    assert abs(cam.face_share - ref.face_share) <= 0.02
    degraded = _event(cam, "degraded")
    assert degraded["corrupt"] >= 3 and 0 < degraded["rate"] <= 1 and degraded["window_s"] > 0


def test_camera_that_returns_at_another_resolution_says_so(media, detector):
    need_gstreamer()
    first, _ = media("slices4")
    second, ref = media("odd-size")
    port = free_port()
    server = RtspServer(first, port=port, loop=True).start()  # re-encoding, looping: it never ends
    try:
        from affectstream.pipeline.sources import SourceSpec, open_source

        events: list[tuple[str, dict]] = []
        src = open_source(
            SourceSpec("cam", server.url, backoff_first_s=0.2, backoff_cap_s=0.5),
            lambda _n, kind, detail: events.append((kind, detail)),
        ).start()
        try:
            assert _wait_frame(src, (640, 360))
            server.stop()
            server = RtspServer(second, port=port, loop=False, passthrough="h264").start()
            assert _wait_frame(src, (718, 406))
        finally:
            src.stop()
    finally:
        server.stop()
    cam = Reading(events=events)
    recovered = _event(cam, "recovered")
    assert (recovered["width"], recovered["height"]) == (718, 406)
    assert recovered["codec"] == "h264" and recovered["transport"] == "tcp" and recovered["fps"]
    assert recovered["attempts"] >= 1 and recovered["down_s"] > 0
    assert (_event(cam, "started")["width"], _event(cam, "started")["height"]) == (640, 360)


def _wait_frame(src, size: tuple[int, int], timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = src.get(0.2)
        if frame is not None and (frame.image.shape[1], frame.image.shape[0]) == size:
            return True
    return False


@pytest.mark.parametrize("shape", ["slices4", "hevc"])
def test_vlc_udp_only_server_works_with_auto_transport(shape, media, detector):
    need_tool("cvlc", VLC_PACKAGES)
    clip, ref = media(shape)
    server = VlcServer(clip).start()
    try:
        cam = read_camera(server.url, detector, frames=150, seconds=40)
    finally:
        server.stop()
    _report("vlc", shape, cam, ref)
    started = _event(cam, "started")
    assert started["transport"] == "udp", "auto must fall back to UDP when the server refuses TCP"
    assert started["codec"] == {"hevc": "hevc"}.get(shape, "h264")
    assert len(cam.faces) >= 100
    assert cam.unmatched(ref) == 0
    assert abs(cam.face_share - ref.face_share) <= 0.02


def test_vlc_refusing_tcp_is_reported_with_the_fix(media):
    need_tool("cvlc", VLC_PACKAGES)
    from affectstream.pipeline.sources import SourceSpec, open_source

    server = VlcServer(media("slices4")[0]).start()
    events: list[tuple[str, dict]] = []
    try:
        src = open_source(
            SourceSpec("cam", server.url, rtsp_transport="tcp", backoff_first_s=5),
            lambda _n, kind, detail: events.append((kind, detail)),
        ).start()
        try:
            import time

            deadline = time.monotonic() + 20
            while not events and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            src.stop()
    finally:
        server.stop()
    kind, detail = events[0]
    assert kind == "reconnecting"
    assert "461 Unsupported transport" in detail["reason"]
    assert "rtsp_transport: udp" in detail["reason"]
