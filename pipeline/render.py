"""`affectstream render`: an annotated copy of a video, and per-track plots.

The output has the input's frame count, size and frame rate: every decoded input frame is written
once, annotated with its result (boxes, track ids, expression and confidence, valence/arousal
bars). Results come from running the pipeline on the fly (`pipeline.process`) or from an existing
results stream in Redis (matched by frame index).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.errors import AffectstreamError, SourceError
from pipeline.sources import VideoInfo, probe, read_video
from pipeline.types import FaceResult, FrameResult

log = logging.getLogger(__name__)

# BGR colours of the usual expression labels; other labels get a stable colour from their name.
EXPR_COLOURS = {
    "neutral": (200, 200, 200), "happiness": (60, 200, 60), "happy": (60, 200, 60),
    "surprise": (0, 215, 255), "sadness": (200, 120, 40), "sad": (200, 120, 40),
    "anger": (40, 40, 230), "disgust": (40, 140, 90), "fear": (180, 60, 180),
    "contempt": (90, 90, 160), "other": (150, 150, 150),
}  # fmt: skip


def expr_colour(label: str) -> tuple[int, int, int]:
    known = EXPR_COLOURS.get(label.lower())
    if known:
        return known
    h = zlib.crc32(label.encode())
    return (80 + h % 150, 80 + (h >> 8) % 150, 80 + (h >> 16) % 150)


def _bar(img: np.ndarray, x: int, y: int, w: int, value: float | None, name: str, colour) -> None:
    """A horizontal bar for a value in [-1, 1], filled from the centre line, with its name and number."""
    import cv2

    h = 9
    cv2.rectangle(img, (x, y), (x + w, y + h), (40, 40, 40), -1)
    mid = x + w // 2
    if value is not None:
        end = int(round(mid + np.clip(value, -1, 1) * (w // 2)))
        cv2.rectangle(img, (min(mid, end), y + 1), (max(mid, end), y + h - 1), colour, -1)
    cv2.line(img, (mid, y - 1), (mid, y + h + 1), (255, 255, 255), 1)
    text = f"{name} {'n/a' if value is None else f'{value:+.2f}'}"
    _text(img, text, (x + w + 5, y + h - 1), 0.38, (255, 255, 255))


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, bg=(0, 0, 0)) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), bg, -1)
    cv2.putText(img, text, (x, y), font, scale, colour, 1, cv2.LINE_AA)


def draw_face(img: np.ndarray, face: FaceResult) -> None:
    """Box, `#track expr p%` label, 5 landmarks when known, valence and arousal bars under the box."""
    import cv2

    height, width = img.shape[:2]
    colour = expr_colour(face.expr)
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2, cv2.LINE_AA)
    for px, py in face.landmarks or []:
        cv2.circle(img, (int(px), int(py)), 2, (0, 255, 255), -1, cv2.LINE_AA)
    conf = face.probs.get(face.expr, 0.0)
    _text(img, f"#{face.track} {face.expr} {conf:.0%}", (x1, max(y1 - 6, 14)), 0.5, (255, 255, 255), colour)
    bar_w = max(60, min(120, x2 - x1))
    bx = int(np.clip(x1, 0, max(width - bar_w - 70, 0)))
    by = min(y2 + 6, height - 27)
    _bar(img, bx, by, bar_w, face.valence, "V", (230, 160, 30))
    _bar(img, bx, by + 14, bar_w, face.arousal, "A", (60, 60, 230))


def annotate(img: np.ndarray, result: FrameResult | None, index: int) -> np.ndarray:
    """Draw one frame's result onto a copy of `img` (BGR); a missing result is said on the frame."""
    out = np.ascontiguousarray(img).copy()
    for face in result.faces if result else []:
        draw_face(out, face)
    if result is None:
        status = f"frame {index}  no result"
    else:
        status = f"frame {index}  t={result.pts:.2f}s  faces={len(result.faces)}  {result.model}"
    _text(out, status, (6, 16), 0.45, (255, 255, 255))
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


def render_pairs(pairs: Iterable[tuple[np.ndarray, FrameResult | None]], out: str | Path, info: VideoInfo,
                 plots_dir: str | Path | None = None) -> RenderStats:  # fmt: skip
    """Write annotated frames (and plots) from (BGR image, result) pairs in frame order."""
    from pipeline.plots import write_track_plots

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
    """Render while running the pipeline on every frame of `video` (`pipeline.process`)."""
    from pipeline.process import iter_file_results

    info = probe(video)
    pairs = ((frame.image, result) for frame, result in iter_file_results(str(video), processor))
    return render_pairs(pairs, out, info, plots_dir)


def render_from_stream(
    video: str | Path, out: str | Path, client, source: str, *, plots_dir=None
) -> RenderStats:
    """Render `video` with the results already published for `source` (matched by frame index)."""
    from pipeline.consume import read_all

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
