"""Finite sources read synchronously: one probe and one in-order frame iterator.

`Source` runs the iterator on its reader thread for file sources; `archive` and `render` call it
directly. The per-packet step is shared with the live loop (`pipeline.sources._decode`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

from affectstream.pipeline.errors import SourceError
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.sources import _av
from affectstream.pipeline.sources._decode import MAX_BAD_PACKETS, DecodeStats, Pacer, PacketDecoder
from affectstream.pipeline.sources.spec import SourceSpec
from affectstream.pipeline.types import Frame

# FFmpeg "plays" text (tty: rendered as ANSI art) and still images as one-stream videos.
NOT_VIDEO_FORMATS = ("tty", "image2", "image2pipe", "lavfi", "bin", "txt")


class TruncatedVideo(SourceError):
    """A file ended before the frames its header lists."""

    def __init__(self, declared: int, packets: int) -> None:
        super().__init__(
            f"file is truncated or damaged: its header lists {declared} frames but only {packets} could be read"
        )
        self.declared = declared
        self.packets = packets


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header says about its first video stream.

    Attributes:
        width: Frame width in pixels.
        height: Frame height in pixels.
        rate: Average (else guessed) frame rate; None when the container does not say.
        frames: Declared frame count; 0 when the container does not say.
        duration: Seconds; None when the container does not say.
        codec: Codec name (e.g. "h264").
    """

    width: int
    height: int
    rate: Fraction | None
    frames: int
    duration: float | None
    codec: str

    @property
    def fps(self) -> float:
        """The frame rate as a float (0.0 when unknown)."""
        return float(self.rate) if self.rate else 0.0


def probe(path: str | Path) -> VideoInfo:
    """Read a local video file's header (nothing is decoded).

    Raises:
        SourceError: The file is missing, unreadable, not a video (text and still images included) or
            has no video stream; the message names the file and the reason.
    """
    import av

    path = str(path)
    if not os.path.isfile(path):
        raise SourceError(f"video {path} does not exist")
    try:
        with av.open(path) as container:
            fmt = container.format.name
            if fmt in NOT_VIDEO_FORMATS or fmt.endswith("_pipe"):
                raise SourceError(
                    f"{path} is not a readable video: FFmpeg reads it as {container.format.long_name}"
                )
            if not container.streams.video:
                raise SourceError(f"{path} is not a readable video: it has no video stream")
            s = container.streams.video[0]
            rate = s.average_rate or s.guessed_rate
            duration: float | None = None
            if s.duration and s.time_base:
                duration = float(s.duration * s.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            return VideoInfo(
                s.codec_context.width,
                s.codec_context.height,
                Fraction(rate) if rate else None,
                int(s.frames or 0),
                duration,
                s.codec_context.name,
            )
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path} is not a readable video: {mask_text(str(exc) or type(exc).__name__)}"
        ) from exc


def check_complete(stream: Any, packets: int) -> None:
    """Raise `TruncatedVideo` when a file ended before the frames its header lists.

    FFmpeg reports a cut-off mp4 as a plain end of file; the sample table in the header still counts
    every frame, so fewer packets than that means the data is missing. A small slack tolerates headers
    that count frames a little differently (e.g. AVI index entries).
    """
    expected = int(stream.frames or 0)
    if expected and packets < expected - max(2, expected // 100):
        raise TruncatedVideo(expected, packets)


class VideoFile:
    """A finite source (file, HTTP file, HLS VOD) opened for one in-order decode; close it or use `with`.

    Args:
        spec: The source; opened with the rules of its kind (`pipeline.sources._av.open_container`).
        max_bad_packets: See `PacketDecoder` (0 for callers that match frames by index).
        stats: Counters to update while decoding (a new `DecodeStats` if None).

    Raises:
        av.error.FFmpegError, OSError: The source cannot be opened (see `_av.describe_error`).
    """

    def __init__(
        self, spec: SourceSpec, *, max_bad_packets: int = MAX_BAD_PACKETS, stats: DecodeStats | None = None
    ) -> None:
        self.spec = spec
        self.stats = stats if stats is not None else DecodeStats()
        self._max_bad = max_bad_packets
        self._container = _av.open_container(spec)

    @cached_property
    def stream(self) -> Any:
        """The first video stream (ValueError when there is none)."""
        return _av.video_stream(self._container, self.spec)

    def frames(self, start: int = 0, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Every frame from index `start` on, in order, paced to its pts when `spec.realtime`.

        Earlier frames are decoded and skipped rather than seeked past: a seek lands on a key frame and
        would make the index uncertain. Setting `stop` ends the iteration at the next packet.

        Raises:
            TruncatedVideo: At the end, when the file holds fewer frames than its header lists.
            av.error.FFmpegError: Decoding failed (past the bad-packet tolerance).
        """
        decoder = PacketDecoder(self.stream, self.spec.name, self._max_bad, self.stats)
        pacer = Pacer(stop) if self.spec.realtime else None
        index = -1
        for packet in self._container.demux(self.stream):
            if stop is not None and stop.is_set():
                return
            for pts, vf in decoder.decode(packet):
                index += 1
                if index < start:
                    continue
                if pacer is not None:
                    pacer.wait_for(pts)
                yield Frame(self.spec.name, index, pts, time.time(), decoder.to_bgr(vf))
        check_complete(self.stream, self.stats.packets)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_video(
    path: str | Path,
    *,
    name: str = "video",
    start: int = 0,
    max_bad_packets: int = 0,
    stats: DecodeStats | None = None,
) -> Iterator[Frame]:
    """Every frame of a local video file from index `start` on, decoded in order (see `VideoFile.frames`).

    Strict by default (`max_bad_packets=0`): callers of this function match frames by index.
    """
    with VideoFile(
        SourceSpec(name, str(path), kind="file"), max_bad_packets=max_bad_packets, stats=stats
    ) as video:
        yield from video.frames(start)
