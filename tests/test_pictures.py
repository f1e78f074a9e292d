"""Whole pictures from split packets (`pipeline.sources._pictures`) and the corrupt-rate window."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from affectstream.pipeline.sources._corruption import MIN_CORRUPT, CorruptionWatch
from affectstream.pipeline.sources._pictures import PictureJoiner, starts_picture
from tests.conftest import need_shared


def test_first_slice_of_a_picture_is_recognised():
    assert starts_picture("h264", b"\x00\x00\x01\x65\x88\x84") is True  # IDR slice, first_mb_in_slice 0
    assert (
        starts_picture("h264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x65\x40") is False
    )  # SPS, then mb > 0
    assert starts_picture("h264", b"\x00\x00\x01\x67\x42\xc0") is None  # parameter sets only
    assert starts_picture("hevc", b"\x00\x00\x01\x26\x01\xaf") is True  # IDR_W_RADL, first segment flag
    assert (
        starts_picture("hevc", b"\x00\x00\x01\x40\x01\x0c\x00\x00\x01\x02\x01\x2f") is False
    )  # VPS, TRAIL_R


def _restreamed(picture: bytes) -> list[bytes]:
    """A picture as a restreamer's RTP leaves FFmpeg's parser: every keyframe slice behind its own SPS/PPS,
    each such piece a packet of its own."""
    marks = [i for i in range(len(picture) - 3) if picture[i : i + 3] == b"\x00\x00\x01"]
    nals = [picture[a + 3 : b] for a, b in zip(marks, [*marks[1:], len(picture)], strict=True)]
    nals = [n.rstrip(b"\x00") for n in nals]
    if not any(n[0] & 0x1F == 5 for n in nals):
        return [picture]
    params = b"".join(b"\x00\x00\x00\x01" + n for n in nals if n[0] & 0x1F in (7, 8))
    return [params + b"\x00\x00\x00\x01" + n for n in nals if n[0] & 0x1F == 5]


def test_split_keyframes_are_joined_into_the_pictures_the_file_has(tmp_path):
    import av

    src = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    raw = tmp_path / "slices.h264"
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(src),
        "-frames:v",
        "30",
        "-an",
        "-c:v",
        "libx264",
        "-x264-params",
        "slices=4",
        "-bf",
        "0",
        "-g",
        "10",
        str(raw),
    ]
    subprocess.run(cmd, check=True, timeout=120)
    with av.open(str(raw)) as box:
        pictures = [bytes(p) for p in box.demux(video=0) if p.size]
        ref = [f.to_ndarray(format="gray") for f in av.open(str(raw)).decode(video=0)]
    assert len(pictures) == 30
    pieces = [piece for picture in pictures for piece in _restreamed(picture)]
    assert len(pieces) == 30 + 3 * 3  # three keyframes of four slices each came apart

    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_type = "NONE"
    joiner, frames = PictureJoiner("h264"), []
    for i, piece in enumerate([*pieces, b""]):
        packet = av.Packet(piece)
        packet.pts = i
        for whole in joiner.push(packet):
            frames += ctx.decode(whole if whole.size else None)
    assert len(frames) == 30
    assert not any(f.is_corrupt for f in frames)
    for got, want in zip(frames, ref, strict=True):
        np.testing.assert_array_equal(got.to_ndarray(format="gray"), want)


def test_other_codecs_pass_through():
    joiner = PictureJoiner("mjpeg")
    assert joiner.push(packet := object()) == [packet]


@pytest.mark.parametrize(("corrupt_every", "degraded"), [(0, False), (50, False), (4, True)])
def test_degraded_when_corruption_persists_over_a_window(corrupt_every, degraded):
    now = [0.0]
    watch = CorruptionWatch(window_s=5.0, clock=lambda: now[0])
    said = []
    for i in range(200):  # 8 s at 25 fps: one window ends
        now[0] = i / 25
        detail = watch.add(bool(corrupt_every) and i % corrupt_every == 0)
        if detail:
            said.append(detail)
    assert bool(said) == degraded
    if degraded:
        assert said == [{"corrupt": 32, "decoded": 126, "rate": 0.254, "window_s": 5.0}]
        assert said[0]["corrupt"] >= MIN_CORRUPT
