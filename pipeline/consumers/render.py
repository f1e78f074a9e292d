"""`affectstream render`: an annotated copy of a video, and per-track plots.

The output has the input's frame count, size and frame rate: every decoded input frame is written
once, annotated with its result (boxes, track ids, expression and confidence, valence/arousal
bars). Results come from running the pipeline on the fly (`pipeline.frames.processor`) or from an existing
results stream in Redis (matched by frame index).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from affectstream.pipeline.errors import AffectstreamError, SourceError
from affectstream.pipeline.frames.draw import draw_face, draw_text
from affectstream.pipeline.sources import VideoInfo, probe, read_video
from affectstream.pipeline.types import FrameResult

log = logging.getLogger(__name__)


# BGR colours of the usual expression labels; other labels get a stable colour from their name.
def annotate(img: np.ndarray, result: FrameResult | None, index: int) -> np.ndarray:
    """Draw one frame's result onto a copy of `img` (BGR); a missing result is said on the frame."""
    out = np.ascontiguousarray(img).copy()
    for face in result.faces if result else []:
        draw_face(out, face)
    if result is None:
        status = f"frame {index}  no result"
    else:
        status = f"frame {index}  t={result.pts:.2f}s  faces={len(result.faces)}  {result.model}"
    draw_text(out, status, (6, 16), 0.45, (255, 255, 255))
    return out


class VideoWriter:
    """H.264 MP4 through PyAV at a constant frame rate: frame i is shown at i / rate."""

    def __init__(self, path: str | Path, width: int, height: int, rate: Fraction, *, crf: int = 23) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        # 4:2:0 needs even sizes; 4:4:4 keeps odd-sized inputs at their exact size
        self._stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._tb = Fraction(1, 1) / rate
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        frame.pts, frame.time_base = self.frames, self._tb
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RenderStats:
    frames: int
    faces: int
    tracks: int
    missing: int  # frames without a result (stream trimmed or shorter than the video)
    seconds: float
    plots: list[Path] = field(default_factory=list)


def render_pairs(
    pairs: Iterable[tuple[np.ndarray, FrameResult | None]],
    out: str | Path,
    info: VideoInfo,
    plots_dir: str | Path | None = None,
) -> RenderStats:
    """Write annotated frames (and plots) from (BGR image, result) pairs in frame order."""
    from affectstream.pipeline.consumers.plots import write_track_plots

    t0 = time.monotonic()
    results: list[FrameResult] = []
    faces = missing = 0
    with VideoWriter(out, info.width, info.height, info.rate or Fraction(25)) as writer:
        for index, (img, result) in enumerate(pairs):
            if img.shape[1] != info.width or img.shape[0] != info.height:
                raise SourceError(
                    f"frame {index} is {img.shape[1]}x{img.shape[0]}, not {info.width}x{info.height}"
                )
            writer.write(annotate(img, result, index))
            if result is None:
                missing += 1
            else:
                results.append(result)
                faces += len(result.faces)
        frames = writer.frames
    plots = write_track_plots(results, plots_dir) if plots_dir is not None else []
    tracks = len({f.track for r in results for f in r.faces})
    return RenderStats(frames, faces, tracks, missing, time.monotonic() - t0, plots)


def render_live(video: str | Path, out: str | Path, processor, *, plots_dir=None) -> RenderStats:
    """Render while running the frame path on every frame of `video` (`pipeline.frames.processor`)."""
    from affectstream.pipeline.frames.processor import iter_file_results

    info = probe(video)
    pairs = ((frame.image, result) for frame, result in iter_file_results(str(video), processor))
    return render_pairs(pairs, out, info, plots_dir)


def render_from_stream(
    video: str | Path, out: str | Path, client, source: str, *, plots_dir=None
) -> RenderStats:
    """Render `video` with the results already published for `source` (matched by frame index)."""
    from affectstream.pipeline.streams.read import read_all

    info = probe(video)
    by_frame = {e.result.frame: e.result for e in read_all(client, source)}
    if not by_frame:
        raise AffectstreamError(
            f"results stream of source {source!r} is empty or missing; run the pipeline first"
        )
    pairs = ((frame.image, by_frame.get(frame.index)) for frame in read_video(video))
    stats = render_pairs(pairs, out, info, plots_dir)
    if stats.missing:
        log.warning("%d of %d frames had no result in the stream of %r", stats.missing, stats.frames, source)
    return stats
