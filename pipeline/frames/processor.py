"""The frame path: detect -> track -> align (`prepare`), then engine -> finish -> smooth (`complete`).

`FrameProcessor` holds the stages, built once from the config; it keeps no per-source state: that
lives in each source's `SourceContext`, which a `Prepared` frame carries to the step that needs it.
Every entry point runs these same two halves, so a frame gets the same result whichever way it came:
`run`'s worker calls them on different threads (detection of many sources on several threads, the
engine on one: `pipeline.runtime.stages`); `archive work`, `render` and the Python API call them in one
thread, one source's frames in order (`in_order`, `iter_file_results`). Both batch the faces of many
frames into one engine call.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from affectstream.pipeline.frames.context import SourceContext
from affectstream.pipeline.types import Detection, FaceResult, Frame, FrameResult


@dataclass(slots=True)
class Prepared:
    """A frame whose faces are found and aligned, waiting for the engine."""

    frame: Frame
    context: SourceContext  # the frame's source: `complete` smooths the result with it
    faces: list[Detection]
    inputs: np.ndarray  # float32 NCHW, one row per face
    ended: list[int]  # tracks that ended at this frame (track events' `end`)


class FrameProcessor:
    """The stages: detector(s), alignment and the engine call.

    Args:
        detectors: `pipeline.frames.detect.FaceDetector`s, one per thread that detects; `detector` is the first.
        engine: An engine from `engines.create_engine`.
        detect_every: The detect cadence of the sources it serves (`new_source`).
        live: (detect_every, detector input) of live sources; None: as files.
    """

    def __init__(
        self,
        detectors: Sequence,
        engine,
        *,
        detect_every: int = 1,
        live: tuple[int, tuple[int, int] | str] | None = None,
    ) -> None:
        if not detectors:
            raise ValueError("a processor needs at least one detector")
        self.detectors = list(detectors)
        self.detector = self.detectors[0]
        self.engine = engine
        self.detect_every = detect_every
        self.live = live
        self._live_sources = 0  # live sources created so far: each gets the next detect phase
        self.spec = engine.spec

    def new_source(self, name: str, *, smooth_window: int = 1, live: bool = False) -> SourceContext:
        """The state of one more source served by this processor; a `live` one is detected as
        `detector.live` says (a camera's capacity is frames per second, a file's results are compared
        exactly)."""
        if live and self.live is not None:
            every, size = self.live
            # Golden-ratio steps spread the cameras' detection frames evenly over the cadence for any count.
            phase, self._live_sources = (
                int(self._live_sources * 0.618034 * every) % every,
                self._live_sources + 1,
            )
            return SourceContext(
                name, detect_every=every, smooth_window=smooth_window, detector_input=size, detect_phase=phase
            )
        return SourceContext(name, detect_every=self.detect_every, smooth_window=smooth_window)

    def prepare(self, frame: Frame, source: SourceContext, detections: list[Detection] | None) -> Prepared:
        """track -> align; `detections` is the detector's result for `frame`, None when it was not detected.

        Call in frame order per source: the tracker's state is the previous frame's.
        """
        from affectstream.engines.preprocess import to_input
        from affectstream.pipeline.frames.align import align_face

        faces, ended = source.track(frame, detections)
        crops = [align_face(frame.image, d.landmarks, self.spec) for d in faces]
        h, w = self.spec.input_size
        inputs = to_input(crops, self.spec) if crops else np.zeros((0, self.spec.channels, h, w), np.float32)
        return Prepared(frame, source, faces, inputs, ended)

    def prepare_next(self, frame: Frame, source: SourceContext) -> Prepared:
        """detect (when due) -> track -> align, for callers that take one source's frames in order."""
        due = source.detect_due()
        detections = self.detector.detect(frame.image, source.detector_input) if due else None
        return self.prepare(frame, source, detections)

    def complete(self, batch: Sequence[Prepared]) -> list[FrameResult]:
        """engine -> finish -> smooth: one engine call for the faces of all `batch` frames, then each
        result smoothed by its source's context. Call in frame order per source (the smoother's state)."""
        inputs = [p.inputs for p in batch if len(p.inputs)]
        if inputs:
            probs, va = self.engine.infer(np.concatenate(inputs) if len(inputs) > 1 else inputs[0])
        else:
            probs, va = np.zeros((0, len(self.spec.labels)), np.float32), np.zeros((0, 2), np.float32)
        out, row = [], 0
        for p in batch:
            n = len(p.faces)
            out.append(p.context.smooth(self.finish(p, probs[row : row + n], va[row : row + n])))
            row += n
        return out

    def in_order(self, frames: Iterable[Frame], source: SourceContext) -> Iterator[tuple[Frame, FrameResult]]:
        """The frame path for one source's `frames` in order, each with its result; one engine call per
        `engine.max_batch` faces (or frames: a batch holds its frames' images).

        The halves overlap as `run`'s threads do: a prefetch thread reads the next frames, has the
        detectors detect them in parallel (one pool thread per detector) and tracks and aligns them in
        frame order, while this thread runs the engine. Results are the same as one frame at a time.
        """
        from affectstream.pipeline.frames.prefetch import Prefetch

        limit = self.engine.max_batch
        ahead = Prefetch(self._prepared(frames, source), depth=2 * limit)
        batch: list[Prepared] = []
        faces = 0
        try:
            for prepared in ahead:
                batch.append(prepared)
                faces += len(prepared.faces)
                if faces >= limit or len(batch) >= limit:
                    yield from zip((p.frame for p in batch), self.complete(batch), strict=True)
                    batch, faces = [], 0
            if batch:
                yield from zip((p.frame for p in batch), self.complete(batch), strict=True)
        finally:
            ahead.close()

    def _prepared(self, frames: Iterable[Frame], source: SourceContext) -> Iterator[Prepared]:
        """`frames` prepared in order, detected up to two frames per detector ahead on a pool."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        idle: queue.SimpleQueue = queue.SimpleQueue()
        for detector in self.detectors:
            idle.put(detector)

        def detect(frame: Frame) -> list[Detection]:
            detector = idle.get()
            try:
                return detector.detect(frame.image, source.detector_input)
            finally:
                idle.put(detector)

        pending: deque = deque()
        with ThreadPoolExecutor(len(self.detectors), thread_name_prefix="detect") as pool:
            try:
                for frame in frames:
                    # Due or not is decided in frame order (the cadence counts frames).
                    pending.append((frame, pool.submit(detect, frame) if source.detect_due() else None))
                    while len(pending) > 2 * len(self.detectors) or (pending and _ready(pending[0][1])):
                        yield self._prepare_pending(pending.popleft(), source)
                while pending:
                    yield self._prepare_pending(pending.popleft(), source)
            finally:
                for _frame, future in pending:  # left early: do not detect what nobody will read
                    if future is not None:
                        future.cancel()

    def _prepare_pending(self, item: tuple, source: SourceContext) -> Prepared:
        frame, future = item
        return self.prepare(frame, source, None if future is None else future.result())

    def finish(self, p: Prepared, probs: np.ndarray, va: np.ndarray) -> FrameResult:
        """The result of `p` from its faces' rows of the engine's output."""
        labels = self.spec.labels
        faces = []
        for i, det in enumerate(p.faces):
            pr = probs[i]
            best = int(np.argmax(pr))
            has_va = self.spec.has_va and not np.isnan(va[i]).any()
            faces.append(
                FaceResult(
                    track=int(det.track),
                    box=[float(v) for v in det.box],
                    score=float(det.score),
                    landmarks=det.landmarks.tolist(),
                    expr=labels[best],
                    probs={label: float(pr[j]) for j, label in enumerate(labels)},
                    valence=float(va[i, 0]) if has_va else None,
                    arousal=float(va[i, 1]) if has_va else None,
                )
            )
        f = p.frame
        return FrameResult(
            source=f.source,
            frame=f.index,
            pts=f.pts,
            ts=f.ts,
            faces=faces,
            model=self.spec.model_id,
            mono=f.mono,
            ended_tracks=p.ended,
        )


def _ready(future) -> bool:
    """A frame that needs no detection, or whose detection is done, can be prepared now."""
    return future is None or future.done()


def stamp_latency(results: Iterable[FrameResult], now: float | None = None) -> None:
    """Set each result's `latency_ms`: from when its frame left the decoder to `now` (its XADD), both on
    the monotonic clock (`Frame.mono`): a wall clock set back or forth must not show up as latency."""
    now = time.monotonic() if now is None else now
    for r in results:
        r.latency_ms = max(0.0, (now - r.mono) * 1000.0)


def iter_file_results(
    path: str,
    processor: FrameProcessor,
    *,
    name: str | None = None,
    smooth_window: int = 1,
    every: int = 1,
) -> Iterator[tuple[Frame, FrameResult]]:
    """Every frame of a video file (`every` > 1: every Nth, from the first), in order, with its result
    (`FrameProcessor.in_order`); frames left out never reach the tracker, as if the video had only these.

    Strict: a packet that cannot be decoded raises `SourceError`, as skipping it would shift the index
    of every later frame.
    """
    from affectstream.pipeline.sources import read_video
    from affectstream.pipeline.sources.spec import source_name_from_url

    name = name or source_name_from_url(path)
    context = processor.new_source(name, smooth_window=smooth_window)
    frames = read_video(path, name=name)
    if every > 1:
        frames = (f for f in frames if f.index % every == 0)
    results = processor.in_order(frames, context)
    for frame, result in results:
        stamp_latency([result])
        yield frame, result
