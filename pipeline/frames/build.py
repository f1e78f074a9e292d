"""Building a `FrameProcessor`: its detectors and engine from plain settings or from the pipeline config.

`processor_from_config` is what `run`, the notebook API and `render` use, so one config gives one
processor everywhere; `archive work` builds per job parameters (`pipeline.archive.worker.ProcessorCache`)
from the same `load_detectors`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from affectstream.pipeline.frames.processor import FrameProcessor


def per_core() -> int:
    """Detectors for a process that has this machine's cores to itself: one per core."""
    return os.cpu_count() or 1


def open_detector(model: str, **options):
    """One detector for a configured `detector.model`: a shipped BlazeFace model by its name
    (`pipeline.frames.blazeface`, Apache-2.0 weights), else SCRFD (`pipeline.frames.detect`)."""
    from affectstream.pipeline.frames.blazeface import BlazeFaceDetector, is_blazeface
    from affectstream.pipeline.frames.detect import FaceDetector

    return (BlazeFaceDetector if is_blazeface(model) else FaceDetector)(model, **options)


def load_detectors(model: str, *, count: int = 1, threads: int = 0, **options) -> list:
    """The detectors of a processor: one (with `threads` intra-op threads), or `count` single-threaded
    ones on a CPU, which detect frames in parallel (the worker's prepare threads, `in_order`'s pool).

    Single-threaded detectors side by side cost less CPU per frame than one relying on intra-op
    threading (docs/bench.md, d87c50d). A GPU detector stays one: the device serialises them anyway.
    """
    if count <= 1:
        return [open_detector(model, threads=threads, **options)]
    first = open_detector(model, threads=1, **options)
    if list(first.providers) != ["CPUExecutionProvider"]:
        return [first]
    return [first, *(open_detector(model, threads=1, **options) for _ in range(count - 1))]


def build_processor(
    detector: str | None = None,
    engine: str = "onnxruntime",
    model: str | None = None,
    detect_every: int = 1,
    det_size: tuple[int, int] | str = (640, 640),
    threshold: float | None = None,
    providers: Sequence[str] = (),
    engine_options: dict | None = None,
    detector_backend: str = "onnxruntime",
    detectors: int = 1,
    live: tuple[int, tuple[int, int] | str] | None = None,
) -> FrameProcessor:
    """A processor from plain settings; `detector=None` takes `AFFECTSTREAM_DETECTOR` or the default pack.

    `detectors`: how many frames it detects at once on a CPU (`load_detectors`; `per_core()` for a process
    that has the machine to itself). `live`: (detect_every, detector input) of live sources.
    """
    from affectstream.engines import create_engine
    from affectstream.pipeline.frames.detector_files import configured_detector

    loaded = load_detectors(
        configured_detector(detector),
        count=detectors,
        input_size=det_size,
        threshold=threshold,
        providers=list(providers) or None,
        backend=detector_backend,
    )
    eng = create_engine(engine, model or "default", **(engine_options or {}))
    return FrameProcessor(loaded, eng, detect_every=detect_every, live=live)


def processor_from_config(cfg, *, detectors: int = 1) -> FrameProcessor:
    """A processor from a validated `pipeline.config.Config` (`detectors`: see `build_processor`)."""
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
        detectors=detectors,
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
