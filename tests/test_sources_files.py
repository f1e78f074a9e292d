"""The synchronous decode path (`pipeline.sources.files`): one probe and one frame iterator for every caller."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from affectstream.pipeline.errors import SourceError
from affectstream.pipeline.sources import (
    DecodeStats,
    SourceSpec,
    TruncatedVideo,
    VideoFile,
    open_source,
    probe,
    read_video,
)
from tests.conftest import need_shared

WOLF = ("media", "videos", "WolfgangLanger_Pexels.mp4")
SINGLE = ("media", "videos", "single_face.mp4")


def test_probe_reads_the_header_and_refuses_what_is_not_a_video(tmp_path):
    info = probe(need_shared(*WOLF))
    assert (info.width, info.height, info.frames, info.codec) == (640, 360, 472, "h264")
    assert info.rate == Fraction(24000, 1001) and abs(info.fps - 23.976) < 1e-3
    assert abs(info.duration - 472 / info.fps) < 0.1
    text = tmp_path / "notes.txt"
    text.write_text("minutes of the meeting, not a video\n" * 50)
    with pytest.raises(SourceError, match="notes.txt is not a readable video: FFmpeg reads it as"):
        probe(text)
    with pytest.raises(SourceError, match="does not exist"):
        probe(tmp_path / "missing.mp4")


def test_iterator_starts_at_a_frame_with_the_threaded_sources_indices_pts_and_pixels():
    path = need_shared(*SINGLE)
    src = open_source(SourceSpec("s", str(path))).start()
    threaded = []
    try:
        while not src.finished:
            frame = src.get(0.5)
            if frame is not None:
                threaded.append(frame)
    finally:
        src.stop()
    stats = DecodeStats()
    tail = list(read_video(path, name="s", start=40, stats=stats))
    assert [f.index for f in tail] == list(range(40, 72))
    assert stats.decoded == stats.packets == 72  # the skipped frames were decoded, not seeked past
    for mine, theirs in zip(tail, threaded[40:], strict=True):
        assert mine.pts == theirs.pts and np.array_equal(mine.image, theirs.image)


def test_truncated_file_raises_after_its_last_frame(tmp_path):
    data = need_shared(*WOLF).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    frames = 0
    with pytest.raises(TruncatedVideo, match="lists 472 frames") as info:
        for _ in read_video(truncated):
            frames += 1
    assert 0 < frames < 472 and info.value.declared == 472


def test_bad_packets_are_skipped_only_when_the_caller_tolerates_them(tmp_path):
    import av

    data = bytearray(need_shared(*SINGLE).read_bytes())
    data[len(data) // 3 : len(data) // 3 + 20_000] = bytes(20_000)  # a hole in the middle of the picture data
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(av.error.InvalidDataError):  # strict: a skipped packet would shift later indices
        sum(1 for _ in read_video(corrupt))
    stats = DecodeStats()
    with VideoFile(SourceSpec("c", str(corrupt)), stats=stats) as video:  # tolerant, as `run` reads files
        frames = [f.index for f in video.frames()]
    assert stats.skipped > 0 and frames == list(range(len(frames))) and len(frames) < 72
