"""The per-frame core: detect (or carry tracks) -> align -> engine -> FrameResult.

`FrameProcessor` is synchronous and used as is by archive jobs, rendering and benchmarks; the live
worker splits the same steps (`prepare`, then `finish` after a batched engine call) across threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.types import Detection, FaceResult, Frame, FrameResult


@dataclass(slots=True)
class Prepared:
    """A frame whose faces are found and aligned, waiting for the engine."""

    frame: Frame
    faces: list[Detection]
    inputs: np.ndarray  # float32 NCHW, one row per face
    t0: float  # monotonic time when processing started (for latency)


class FrameProcessor:
    """Detection, tracking and alignment per source, and the engine call.

    Args:
        detector: A `pipeline.detect.FaceDetector`.
        engine: An engine from `engines.create_engine`.
        detect_every: Run the detector on every Nth frame of a source; the IoU tracker carries the
            boxes in between.
    """

    def __init__(self, detector, engine, *, detect_every: int = 1) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.detector = detector
        self.engine = engine
        self.detect_every = detect_every
        self.spec = engine.spec
        self._trackers: dict = {}
        self._seen: dict[str, int] = {}

    def reset(self, source: str) -> None:
        """Forget a source's tracks (after a reconnect); track ids keep counting, never reused."""
        tracker = self._trackers.get(source)
        if tracker is not None:
            tracker.reset()
        self._seen.pop(source, None)

    def detect_due(self, source: str) -> bool:
        """Whether the next frame of `source` is a detection frame; counts that frame.

        Call once per frame, in frame order (the worker calls it while it takes the frame).
        """
        n = self._seen.get(source, 0)
        self._seen[source] = n + 1
        return n % self.detect_every == 0

    def track(self, frame: Frame, detections: list[Detection] | None) -> list[Detection]:
        """Track ids for `frame`'s detections, or the carried tracks when it was not detected (None).

        Call in frame order per source: the tracker's state is the previous frame's.
        """
        from pipeline.track import IoUTracker

        tracker = self._trackers.get(frame.source)
        if tracker is None:
            tracker = self._trackers[frame.source] = IoUTracker()
        return tracker.update(detections) if detections is not None else tracker.carry()

    def align(self, frame: Frame, faces: list[Detection], t0: float) -> Prepared:
        """Crop and normalise each face for the engine."""
        from pipeline.align import align_face, to_input

        crops = [align_face(frame.image, d.landmarks, self.spec) for d in faces]
        h, w = self.spec.input_size
        inputs = to_input(crops, self.spec) if crops else np.zeros((0, self.spec.channels, h, w), np.float32)
        return Prepared(frame, faces, inputs, t0)

    def prepare(self, frame: Frame) -> Prepared:
        """detect (when due) -> track -> align, for callers that handle one source's frames in order."""
        t0 = time.monotonic()
        detections = self.detector.detect(frame.image) if self.detect_due(frame.source) else None
        return self.align(frame, self.track(frame, detections), t0)

    def infer(self, batch: Sequence[Prepared]) -> list[FrameResult]:
        """One engine call for the faces of all `batch` frames."""
        inputs = [p.inputs for p in batch if len(p.inputs)]
        if inputs:
            probs, va = self.engine.infer(np.concatenate(inputs) if len(inputs) > 1 else inputs[0])
        else:
            probs = va = None
        out, row = [], 0
        for p in batch:
            n = len(p.faces)
            out.append(self.finish(p, probs[row : row + n] if n else None, va[row : row + n] if n else None))
            row += n
        return out

    def finish(self, p: Prepared, probs: np.ndarray | None, va: np.ndarray | None) -> FrameResult:
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
            latency_ms=(time.monotonic() - p.t0) * 1000.0,
        )

    def process(self, frame: Frame) -> FrameResult:
        return self.infer([self.prepare(frame)])[0]


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
) -> FrameProcessor:
    """A processor from plain settings; `detector=None` takes `AFFECTSTREAM_DETECTOR` or the default pack."""
    import os

    from engines import create_engine
    from pipeline.detect import FaceDetector

    detector = detector or os.environ.get("AFFECTSTREAM_DETECTOR") or "buffalo_sc"
    det = FaceDetector(detector, input_size=det_size, threshold=threshold, providers=list(providers) or None,
                       backend=detector_backend)  # fmt: skip
    eng = create_engine(engine, model or "default", **(engine_options or {}))
    return FrameProcessor(det, eng, detect_every=detect_every)


def processor_from_config(cfg) -> FrameProcessor:
    """A processor from a validated `pipeline.config.Config`."""
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
    )


def engine_options(engine_cfg) -> dict:
    """Backend options from the `engine:` config section (only what each backend takes)."""
    opts: dict = {"max_batch": engine_cfg.max_batch}
    if engine_cfg.backend == "onnxruntime" and engine_cfg.threads:
        opts["threads"] = engine_cfg.threads
    if engine_cfg.backend == "tensorrt":
        opts.update(precision=engine_cfg.precision, cache_dir=engine_cfg.cache_dir, calibration_dir=engine_cfg.calibration_dir or None)
    return opts


def iter_file_results(path: str, processor: FrameProcessor, *, name: str | None = None) -> Iterator[tuple[Frame, FrameResult]]:
    """Every frame of a video file, in order, with its result."""
    from pipeline.config import source_name_from_url
    from pipeline.errors import SourceError
    from pipeline.sources import SourceSpec, open_source

    errors: list[str] = []

    def on_event(_source: str, kind: str, detail: dict) -> None:
        if kind == "error":
            errors.append(str(detail.get("reason", "unknown error")))

    source = open_source(SourceSpec(name=name or source_name_from_url(path), url=str(path)), on_event)
    source.start()
    try:
        while True:
            frame = source.get(timeout=0.5)
            if frame is not None:
                yield frame, processor.process(frame)
            elif source.finished:
                break
    finally:
        source.stop()
    if errors:
        raise SourceError(f"{path}: {errors[0]}")
