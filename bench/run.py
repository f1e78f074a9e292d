"""The whole benchmark: stages, archive end to end, naive baseline, detect_every 3, live latency.

`run_benchmark(settings)` returns the results dictionary that `bench.report` writes as JSON and
markdown. The repetitions are interleaved (stages, e2e, e2e detect_every 3, naive; then again) so a
change in background load affects every variant alike, and the medians are compared.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import e2e, inputs, machine, publish_cost, stages
from bench.capacity import resolved_live
from bench.naive import NaiveLoop
from bench.stats import median, peak_rss_mib, summary

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures.

    Attributes:
        quick: The under-3-minutes variant (smaller workload, fewer runs, shorter live runs).
        runs: Repetitions of the stage pass, the e2e runs and the naive loop (medians reported).
        det_size: Detector input of the e2e, naive and slowest-stage comparison ((w, h) or "auto").
        extra_sizes: Further detector inputs measured as standalone stages.
        live_streams: Concurrent stream counts of the live-mode runs.
        live_seconds: Length of each live run.
        many_face_frames: Frames of the many-face clip.
        max_videos: Use only the first N shared videos (0 = all).
        max_batch: The worker's `batch.max_batch` (defaults) also used for the stage pass.
        model: MTL-GCN ONNX file; None = the shipped default.
        detector: SCRFD ONNX; None = `$AFFECTSTREAM_DETECTOR` or the shared SCRFD-500M.
        redis_url: An existing Redis; empty = a private embedded redis-server.
        workdir: Where built clips and the embedded Redis live.
        skip: Parts left out: "naive", "de3" (detect_every 3), "auto" (e2e at the frame-derived detector
            size), "live", "archive" (stages and every e2e and naive run).
    """

    quick: bool = False
    runs: int = 3
    det_size: tuple[int, int] | str = (640, 640)
    extra_sizes: tuple = ("auto", (320, 320))
    live_streams: tuple[int, ...] = (1, 2, 4)
    live_seconds: float = 15.0
    many_face_frames: int = 180
    max_videos: int = 0
    max_batch: int = 32
    model: str | None = None
    detector: str | None = None
    redis_url: str = ""
    workdir: str = "var/bench"
    skip: tuple[str, ...] = field(default_factory=tuple)


QUICK = dict(
    quick=True, runs=2, live_seconds=8.0, many_face_frames=60, max_videos=2, extra_sizes=((320, 320),)
)


def run_benchmark(s: Settings) -> dict:
    """Run everything `s` asks for and return the results (described in docs/bench.md)."""
    from affectstream.engines.spec import EngineSpec
    from affectstream.pipeline.streams.connection import redis_session

    started = time.monotonic()
    workdir = Path(s.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    detector = Path(s.detector) if s.detector else inputs.detector_path()
    model = inputs.model_path(s.model)
    videos = inputs.shared_videos()
    if s.max_videos:
        # Quick: the short 640x360 clips first (one face, no face), not the long one.
        videos = sorted(videos, key=lambda p: p.stat().st_size)[: s.max_videos]
    videos.append(inputs.many_face_clip(workdir, s.many_face_frames))
    info = [inputs.probe(v) for v in videos]
    expected = {str(i.path): i.frames for i in info}
    out: dict = {"machine": machine.describe()}
    with (
        tempfile.TemporaryDirectory(prefix="redis-", dir=workdir) as redis_dir,
        redis_session(s.redis_url, redis_dir) as (url, client),
    ):
        if "archive" not in s.skip:
            out.update(_archive(s, videos, expected, detector, model, url, client))
        if "live" not in s.skip:
            out.update(_live(s, workdir, detector, model, url))
        if "publish" not in s.skip:
            log.info("Redis cost per published frame")
            out["publish_cost"] = publish_cost.measure(url, 500 if s.quick else 2000, s.runs)
    primary = stages.size_label(s.det_size)
    out["settings"] = {
        **{k: v for k, v in asdict(s).items() if k not in ("redis_url",)},
        "det_size": primary,
        "detector_file": str(detector),
        "model_file": str(model),
        "model_id": EngineSpec.from_onnx(model).model_id,
        "workload": [
            {
                "file": i.path.name,
                "frames": i.frames,
                "size": f"{i.width}x{i.height}",
                "fps": round(i.fps, 2),
                "codec": i.codec,
            }
            for i in info
        ],
    }
    out["bench_peak_rss_mib"] = round(peak_rss_mib(os.getpid()), 1)
    out["duration_s"] = round(time.monotonic() - started, 1)
    out["machine"] = machine.finish(out["machine"])
    out["checks"] = checks(out)
    return out


def _archive(s: Settings, videos, expected, detector: Path, model: Path, url: str, client) -> dict:  # noqa: PLR0915 (the archive benchmark's one driver, in order)
    from affectstream.pipeline.frames.build import build_processor
    from affectstream.pipeline.frames.detect import FaceDetector

    primary = stages.size_label(s.det_size)
    processor = build_processor(str(detector), model=str(model), det_size=s.det_size)
    detectors = {primary: processor.detector}
    for size in s.extra_sizes:
        detectors[stages.size_label(size)] = FaceDetector(str(detector), input_size=size)
    # The worker's prepare threads with several sources: one single-threaded detector per core.
    cores = os.cpu_count() or 1
    n_par = min(len(videos), cores)
    parallel = [
        FaceDetector(str(detector), input_size=s.det_size, threads=max(1, cores // n_par))
        for _ in range(n_par)
    ]
    naive = NaiveLoop(detector, model, s.det_size)
    stage_runs, e2e_runs, de3_runs, auto_runs, naive_runs = [], [], [], [], []
    with_auto = "auto" not in s.skip and s.det_size != "auto"
    first_de1 = first_de3 = None
    for r in range(s.runs):
        log.info("run %d/%d: stage pass", r + 1, s.runs)
        # The extra detector sizes are informative only: measured in the first run, to keep the time budget.
        sizes = detectors if r == 0 else {primary: processor.detector}
        stage_runs.append(
            stages.run_stage_pass(
                videos,
                processor,
                sizes,
                client,
                maxlen=100_000,
                max_batch=s.max_batch,
                parallel=parallel if n_par > 1 else None,
            )
        )
        log.info("run %d/%d: e2e archive", r + 1, s.runs)
        res = e2e.archive_run(videos, f"e2e{r}", detector, model, s.det_size, url, expected=expected)
        e2e_runs.append(e2e.archive_metrics(res))
        first_de1 = first_de1 or res
        if "de3" not in s.skip:
            log.info("run %d/%d: e2e archive, detect_every 3", r + 1, s.runs)
            res3 = e2e.archive_run(
                videos, f"de3r{r}", detector, model, s.det_size, url, detect_every=3, expected=expected
            )
            de3_runs.append(e2e.archive_metrics(res3))
            first_de3 = first_de3 or res3
        if with_auto:
            log.info("run %d/%d: e2e archive, detector input auto", r + 1, s.runs)
            res_auto = e2e.archive_run(videos, f"autor{r}", detector, model, "auto", url, expected=expected)
            auto_runs.append(e2e.archive_metrics(res_auto))
        if "naive" not in s.skip:
            log.info("run %d/%d: naive loop", r + 1, s.runs)
            naive_runs.append(naive.run(videos, client))
    fps_runs = [p.fps() for p in stage_runs]
    stage_fps = {k: summary([f[k] for f in fps_runs if k in f]) for k in fps_runs[0]}
    cpu_runs = [p.cpu_ms_per_frame() for p in stage_runs]
    stage_cpu = {k: round(median([c[k] for c in cpu_runs if k in c]), 2) for k in cpu_runs[0]}
    sp = stage_runs[0]
    faces_per_frame = sp.faces / sp.frames
    medians = {k: v["median"] for k, v in stage_fps.items()}
    slow_name, slow_fps = stages.slowest_stage(medians, primary, faces_per_frame, s.max_batch)
    detect_name = max(
        (k for k in medians if k == f"detect_{primary}" or k.startswith(f"detect_{primary}_x")),
        key=medians.get,
    )
    bound = stages.shared_core_bound(stage_cpu, detect_name, faces_per_frame, s.max_batch, cores)
    res: dict = {
        "stages": stage_fps,
        "stage_cpu_ms": stage_cpu,
        "stage_workload": {
            "frames": sp.frames,
            "faces": sp.faces,
            "frames_with_faces": sp.frames_with_faces,
            "faces_per_frame": round(faces_per_frame, 3),
        },
        "slowest_stage": slow_name,
        "slowest_stage_fps": round(slow_fps, 1),
        # cores / summed stage CPU per frame: the most any pipeline gets when all stages share the CPUs.
        "shared_core_bound_fps": round(bound, 1),
        "e2e": {
            k: summary([m[k] for m in e2e_runs])
            for k in ("fps", "faces_per_s", "seconds", "cpu_ms_per_frame", "peak_rss_mib")
        },
        "e2e_fps": round(median([m["fps"] for m in e2e_runs]), 1),
        "e2e_faces_per_s": round(median([m["faces_per_s"] for m in e2e_runs]), 1),
        "peak_rss_mib": round(max(m["peak_rss_mib"] for m in e2e_runs), 1),
    }
    res["ratios"] = {
        "e2e_over_slowest_stage": round(res["e2e_fps"] / res["slowest_stage_fps"], 3),
        # Against one detector called in a loop (its own intra-op threads), as the stage figures are.
        "e2e_over_single_detector": round(res["e2e_fps"] / medians[f"detect_{primary}"], 3),
        "e2e_over_shared_core_bound": round(res["e2e_fps"] / bound, 3),
        "shared_core_bound_over_slowest_stage": round(bound / res["slowest_stage_fps"], 3),
    }
    if de3_runs:
        res["e2e_detect_every_3"] = {
            k: summary([m[k] for m in de3_runs])
            for k in ("fps", "faces_per_s", "cpu_ms_per_frame", "peak_rss_mib")
        }
        res["e2e_fps_detect_every_3"] = round(median([m["fps"] for m in de3_runs]), 1)
        res["detect_every_3_coverage"] = e2e.coverage(first_de1, first_de3)
        res["ratios"]["detect_every_3_over_e2e"] = round(res["e2e_fps_detect_every_3"] / res["e2e_fps"], 3)
    if auto_runs:
        res["e2e_detector_auto"] = {
            k: summary([m[k] for m in auto_runs])
            for k in ("fps", "faces_per_s", "cpu_ms_per_frame", "peak_rss_mib")
        }
        res["e2e_fps_detector_auto"] = round(median([m["fps"] for m in auto_runs]), 1)
        res["ratios"]["detector_auto_over_e2e"] = round(res["e2e_fps_detector_auto"] / res["e2e_fps"], 3)
    if naive_runs:
        res["naive_fps"] = round(median([n.fps for n in naive_runs]), 1)
        res["naive"] = {
            "fps": summary([n.fps for n in naive_runs]),
            "faces": naive_runs[0].faces,
            "share_of_time": {k: round(v / naive_runs[0].seconds, 3) for k, v in naive_runs[0].parts.items()},
        }
        res["ratios"]["e2e_over_naive"] = round(res["e2e_fps"] / res["naive_fps"], 3)
        # The most any pipeline could gain over the naive loop on these shared cores.
        res["ratios"]["shared_core_bound_over_naive"] = round(bound / res["naive_fps"], 3)
    return res


def _live(s: Settings, workdir: Path, detector: Path, model: Path, url: str) -> dict:
    clip = inputs.live_clip(workdir)
    live = {}
    for n in s.live_streams:
        log.info("live: %d stream(s) for %.0f s", n, s.live_seconds)
        live[str(n)] = e2e.live_metrics(
            e2e.live_run(clip, n, s.live_seconds, detector, model, s.det_size, url)
        )
    # Cameras run at the config's `detector.live` settings, not at `det_size` (bench/capacity.py).
    out = {"live": live, "live_clip": clip.name, "live_detect": resolved_live(None)}
    if "1" in live:
        out["live_p99_ms"] = live["1"]["p99_ms"]
    return out


def checks(out: dict) -> dict:
    """The issue's targets, evaluated on this run's numbers."""
    c = {}
    r = out.get("ratios", {})
    if "e2e_over_slowest_stage" in r:
        c["e2e_ge_85pct_of_slowest_stage"] = r["e2e_over_slowest_stage"] >= 0.85
    if "e2e_over_naive" in r:
        c["e2e_ge_2x_naive"] = r["e2e_over_naive"] >= 2.0
    if "live_p99_ms" in out:
        c["live_1_stream_p99_le_100ms"] = out["live_p99_ms"] <= 100.0
    if "4" in out.get("live", {}):
        w = out["live"]["4"]["p99_per_window_ms"]
        # Bounded: the last window's tail is not above the first's by more than noise (25% + 20 ms).
        c["live_4_streams_bounded"] = bool(w) and w[-1] <= 1.25 * w[0] + 20.0
    if "publish_cost" in out:  # issue 27: a file pass in large round trips; docs/deploy.md "Sizing"
        large = out["publish_cost"]["file pass, 64 a round trip"]
        c["publish_le_1_1_commands_per_frame"] = large["commands_per_frame"] <= publish_cost.TARGET_COMMANDS
        c["publish_le_20us_redis_cpu_per_frame"] = (
            large["redis_cpu_us_per_frame"] <= publish_cost.TARGET_CPU_US
        )
    return c
