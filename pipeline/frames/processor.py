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

import os
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
        """The frame path in one thread of work: each of one source's `frames` with its result, in order;
        one engine call per `engine.max_batch` faces (or frames: a batch holds its frames' images). The
        next frames are read and prepared on a second thread while the engine runs (`Prefetch`)."""
        from affectstream.pipeline.frames.prefetch import Prefetch

        limit = self.engine.max_batch
        ahead = Prefetch((self.prepare_next(frame, source) for frame in frames), depth=2 * limit)
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


def stamp_latency(results: Iterable[FrameResult], now: float | None = None) -> None:
    """Set each result's `latency_ms`: from when its frame left the decoder to `now` (its XADD), both on
    the monotonic clock (`Frame.mono`): a wall clock set back or forth must not show up as latency."""
    now = time.monotonic() if now is None else now
    for r in results:
        r.latency_ms = max(0.0, (now - r.mono) * 1000.0)


def load_detectors(model: str, *, parallel: bool = False, threads: int = 0, **options) -> list:
    """The detectors of a processor: one, or with `parallel` on a multi-core CPU one single-threaded
    detector per core.

    On CPU each core gets its own single-threaded detector, so detections run in parallel without
    relying on intra-op threading, which costs CPU per call (docs/bench.md, d87c50d); with work sharing (`pipeline.runtime.lanes`) this holds for a single source too. A GPU detector
    or a one-core machine keeps one detector (one prepare thread).
    """
    from affectstream.pipeline.frames.detect import FaceDetector

    cores = os.cpu_count() or 1
    if not parallel or cores <= 1:
        return [FaceDetector(model, threads=threads, **options)]
    first = FaceDetector(model, threads=1, **options)
    if list(first.providers) != ["CPUExecutionProvider"]:
        return [first]
    return [first, *(FaceDetector(model, threads=1, **options) for _ in range(cores - 1))]


def build_processor(
    detector: str | None = None,
    engine: str = "onnxruntime",
    model: str | None = None,
    detect_every: int = 1,
    det_size: tuple[int, int] | str = (640, 640),
    threshold: float = 0.5,
    providers: Sequence[str] = (),
    engine_options: dict | None = None,
    detector_backend: str = "onnxruntime",
    parallel: bool = False,
    live: tuple[int, tuple[int, int] | str] | None = None,
) -> FrameProcessor:
    """A processor from plain settings; `detector=None` takes `AFFECTSTREAM_DETECTOR` or the default pack.

    `parallel`: one detector per core on a CPU (`load_detectors`), for the worker's prepare threads.
    `live`: (detect_every, detector input) of live sources (`FrameProcessor`).
    """
    from affectstream.engines import create_engine
    from affectstream.pipeline.frames.detector_files import configured_detector

    detectors = load_detectors(
        configured_detector(detector),
        parallel=parallel,
        input_size=det_size,
        threshold=threshold,
        providers=list(providers) or None,
        backend=detector_backend,
    )
    eng = create_engine(engine, model or "default", **(engine_options or {}))
    return FrameProcessor(detectors, eng, detect_every=detect_every, live=live)


def processor_from_config(cfg, *, parallel: bool = False) -> FrameProcessor:
    """A processor from a validated `pipeline.config.Config` (`parallel`: see `build_processor`)."""
    return build_processor(
        detector=cfg.detector.model,
        engine=cfg.engine.backend,
        model=cfg.engine.model,
        detect_every=cfg.detector.detect_every,
        det_size=cfg.detector.input_size,
        threshold=cfg.detector.threshold,
        providers=cfg.detector.providers,
        engine_options=engine_options(cfg.engine),
        detector_backend=cfg.detector.backend,
        parallel=parallel,
        live=(cfg.detector.live.detect_every, cfg.detector.live.input_size),
    )


def engine_options(engine_cfg) -> dict:
    """Backend options from the `engine:` config section (only what each backend takes)."""
    opts: dict = {"max_batch": engine_cfg.max_batch}
    if engine_cfg.backend == "onnxruntime" and engine_cfg.threads:
        opts["threads"] = engine_cfg.threads
    if engine_cfg.backend == "tensorrt":
        opts.update(
            precision=engine_cfg.precision,
            cache_dir=engine_cfg.cache_dir,
            calibration_dir=engine_cfg.calibration_dir or None,
        )
    return opts


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
