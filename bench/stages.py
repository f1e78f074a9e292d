"""Standalone stage throughput: each stage's calls timed alone, on the frames of the archive workload.

One serial pass decodes each file of the workload (the whole file, timed on its own) and runs on its
frames, one after the other and each timed on its own, the detector at every configured input size
and the tracker plus 5-point alignment (with the engine's input normalisation) on the faces of the
primary size; after the pass, the engine runs on all collected faces at batch 1, 8 and 32 and the
publisher on all frame results. Nothing overlaps, so each number is what that stage alone sustains
on this machine with the library's own threading (ONNX Runtime's intra-op threads, PyAV's frame
threads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.inputs import iter_bgr

ENGINE_BATCHES = (1, 8, 32)
PARALLEL_CHUNK = 48  # frames held at once for the parallel-detector measurement
MIN_ENGINE_FACES = 256  # faces per batch-size measurement (the collected faces repeat to reach it)
PUBLISH_CHUNK = 256  # what the worker's publish stage writes per pipeline at most


def size_label(size) -> str:
    return size if isinstance(size, str) else f"{size[0]}x{size[1]}"


@dataclass
class StagePass:
    """Seconds spent per stage during one pass, and what was processed."""

    frames: int = 0
    faces: int = 0
    frames_with_faces: int = 0
    decode_s: float = 0.0
    detect_s: dict[str, float] = field(default_factory=dict)
    align_s: float = 0.0
    engine_s: dict[int, float] = field(default_factory=dict)
    engine_faces: dict[int, int] = field(default_factory=dict)
    publish_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (all of its threads)

    def cpu_ms_per_frame(self) -> dict[str, float]:
        """CPU per frame of each stage (engine: per face): robust to other load, unlike throughput."""
        return {
            k: 1000.0 * v / (self.engine_faces[int(k[8:-6])] if k.startswith("engine_b") else self.frames)
            for k, v in self.cpu_s.items()
        }

    def fps(self) -> dict[str, float]:
        """Throughput per stage: frames/s, except `engine_b*` in faces/s."""
        out = {"decode": self.frames / self.decode_s}
        for label, seconds in self.detect_s.items():
            out[f"detect_{label}"] = self.frames / seconds
        out["align"] = self.frames / self.align_s
        for batch, seconds in self.engine_s.items():
            out[f"engine_b{batch}_faces"] = self.engine_faces[batch] / seconds
        out["publish"] = self.frames / self.publish_s
        return out


class _Clock:
    """Wall and process-CPU time of stage calls (the pass runs one stage at a time, so process CPU is the stage's)."""

    def __init__(self, cpu: dict[str, float]) -> None:
        self.cpu = cpu

    def call(self, stage: str, fn, *args):
        c, t = time.process_time(), time.perf_counter()
        out = fn(*args)
        wall = time.perf_counter() - t
        self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - c
        return out, wall


def run_stage_pass(
    videos: list[Path],
    processor,
    detectors: dict,
    redis_client,
    *,
    maxlen: int,
    max_batch: int,
    parallel: list | None = None,
) -> StagePass:
    """One serial pass over `videos`.

    Args:
        videos: The workload.
        processor: A `FrameProcessor` (its engine and spec are used; its detector is `detectors[primary]`).
        detectors: Input-size label -> `FaceDetector`; the first entry is the primary size whose faces
            go on to alignment, the engine and the publisher.
        redis_client: Where the publish stage writes (keys `affect:{bench-stage-*}:frames`, deleted after).
        maxlen: `XADD MAXLEN ~` as the worker uses it.
        max_batch: The engine batch used to produce the published results (the worker's `batch.max_batch`).
        parallel: Detectors of the primary size, one per prepare thread, as the worker runs them with
            several sources; frames are also detected by these, concurrently, in chunks
            (`detect_<size>_x<N>`: the detect stage's capacity when it has the machine to itself).
    """
    from affectstream.pipeline.frames.processor import Prepared
    from affectstream.pipeline.streams.keys import frames_key
    from affectstream.pipeline.streams.writer import ResultPublisher
    from affectstream.pipeline.types import Frame

    primary = next(iter(detectors))
    out = StagePass(detect_s=dict.fromkeys(detectors, 0.0))
    par_label = f"{primary}_x{len(parallel)}" if parallel else ""
    if parallel:
        out.detect_s[par_label] = 0.0
    clock = _Clock(out.cpu_s)
    chunk: list[np.ndarray] = []
    prepared: list[Prepared] = []
    empty = np.zeros((0, 0, 3), np.uint8)
    for vi, video in enumerate(videos):
        source = f"bench-stage-{vi}"
        context = processor.new_source(source)  # the pass runs once per repetition with the same processor
        # The whole file is decoded first, timed on its own: PyAV's frame threads decode ahead in the
        # background, so timing each next() would bill part of their CPU to whichever stage ran meanwhile.
        images, seconds = clock.call("decode", list, iter_bgr(video))  # iter_bgr is lazy: list() decodes
        out.decode_s += seconds
        for index, image in enumerate(images):
            if parallel:
                # Chunks run across video boundaries: a short chunk at each file's end would idle a detector.
                chunk.append(image)
                if len(chunk) == PARALLEL_CHUNK:
                    out.detect_s[par_label] += clock.call(
                        f"detect_{par_label}", _detect_parallel, parallel, chunk
                    )[1]
                    chunk = []
            faces = []
            for label, det in detectors.items():
                found, seconds = clock.call(f"detect_{label}", det.detect, image)
                out.detect_s[label] += seconds
                if label == primary:
                    faces = found
            frame = Frame(source, index, index / 30.0, time.time(), image)
            p, seconds = clock.call("align", processor.prepare, frame, context, faces)  # track + align
            out.align_s += seconds
            # The image is not needed after alignment; keep only what the engine and publisher read.
            frame.image = empty
            prepared.append(p)
            faces = p.faces
            out.frames += 1
            out.faces += len(faces)
            out.frames_with_faces += bool(faces)
        del images
    if chunk:
        out.detect_s[par_label] += clock.call(f"detect_{par_label}", _detect_parallel, parallel, chunk)[1]
    _engine_batches(processor, prepared, out, clock)
    results = []
    for i in range(0, len(prepared), max_batch):
        results.extend(processor.complete(prepared[i : i + max_batch]))
    publisher = ResultPublisher(redis_client, maxlen)
    for i in range(0, len(results), PUBLISH_CHUNK):  # with ids chosen once, as the worker publishes
        chunk = results[i : i + PUBLISH_CHUNK]
        ids = [f"1-{r.frame}" for r in chunk]
        out.publish_s += clock.call("publish", publisher.publish, chunk, ids)[1]
    redis_client.delete(*{frames_key(r.source) for r in results})
    return out


def _detect_parallel(detectors: list, frames: list[np.ndarray]) -> None:
    """Detect `frames` with one thread per detector, frames dealt round-robin (as sources are in the worker)."""
    import threading

    def work(det, share):
        for image in share:
            det.detect(image)

    threads = [
        threading.Thread(target=work, args=(d, frames[i :: len(detectors)])) for i, d in enumerate(detectors)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _engine_batches(processor, prepared: list, out: StagePass, clock: _Clock) -> None:
    faces = [p.inputs for p in prepared if len(p.inputs)]
    if not faces:
        raise ValueError("the workload has no face: the engine stage cannot be measured")
    pool = np.concatenate(faces)
    reps = -(-MIN_ENGINE_FACES // len(pool))
    pool = np.concatenate([pool] * reps) if reps > 1 else pool
    processor.engine.infer(pool[:32])  # first-call allocations are not throughput
    for batch in ENGINE_BATCHES:
        n = len(pool) - len(pool) % batch
        out.engine_s[batch] = sum(
            clock.call(f"engine_b{batch}_faces", processor.engine.infer, pool[i : i + batch])[1]
            for i in range(0, n, batch)
        )
        out.engine_faces[batch] = n


def slowest_stage(
    fps: dict[str, float], primary_label: str, faces_per_frame: float, max_batch: int
) -> tuple[str, float]:
    """The slowest stage of the e2e settings, in frames/s (the engine converted at the workload's faces/frame).

    The detect stage counts with its best standalone throughput: one detector with its own intra-op
    threads, or one detector per prepare thread in parallel (`detect_<size>_x<N>`), whichever is faster,
    so that the e2e ratio is measured against what detection alone can do on this machine.
    """
    batch = max(b for b in ENGINE_BATCHES if b <= max_batch)
    detect = max(
        (k for k in fps if k == f"detect_{primary_label}" or k.startswith(f"detect_{primary_label}_x")),
        key=fps.get,
    )
    per_frame = {
        "decode": fps["decode"],
        detect: fps[detect],
        "align": fps["align"],
        f"engine_b{batch}": fps[f"engine_b{batch}_faces"] / faces_per_frame
        if faces_per_frame
        else float("inf"),
        "publish": fps["publish"],
    }
    name = min(per_frame, key=per_frame.get)
    return name, per_frame[name]


def shared_core_bound(
    cpu_ms: dict[str, float], detect: str, faces_per_frame: float, max_batch: int, cores: int
) -> float:
    """Frames/s that `cores` CPUs sustain when every stage shares them: cores / CPU per frame of all stages.

    On a CPU-only machine the stages do not run on separate hardware: decoding, alignment, the engine
    and the publisher take their CPU time from the detector. No pipeline can beat this bound, so
    bound / slowest stage is the highest e2e / slowest-stage ratio this machine allows.

    Args:
        cpu_ms: The stage pass's CPU ms per frame (engine: per face), as `StagePass.cpu_ms_per_frame`.
        detect: The detect stage counted (e.g. `detect_640x640_x2`, the one `slowest_stage` picked).
    """
    batch = max(b for b in ENGINE_BATCHES if b <= max_batch)
    per_frame = cpu_ms["decode"] + cpu_ms[detect] + cpu_ms["align"] + cpu_ms["publish"]
    per_frame += cpu_ms[f"engine_b{batch}_faces"] * faces_per_frame
    return cores * 1000.0 / per_frame
