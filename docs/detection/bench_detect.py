"""Standalone SCRFD throughput on one 640x360 frame: affectstream's FaceDetector vs insightface.

Usage: .venv/bin/python docs/detection/bench_detect.py [MODEL] [--runs 7] [--calls 50]
Prints frames/s per detector input size: the median of --runs runs of --calls detect() calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import av

from affectstream.pipeline.frames.detect import FaceDetector

SHARED = os.environ.get("AFFECTSTREAM_SHARED", "../shared")


def _fps(fns, frame, runs: int, calls: int) -> tuple[list[float], list[float]]:
    """Median frames/s and CPU ms per frame (all threads) of each function.

    Runs alternate between the functions so that load changes on a shared machine hit all alike; the CPU
    time per frame depends much less on that load than the frame rate does.
    """
    for fn in fns:
        for _ in range(5):
            fn(frame)
    rates: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out, cpu_out in zip(fns, rates, cpu, strict=True):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn(frame)
            out.append(calls / (time.perf_counter() - start))
            cpu_out.append((time.process_time() - start_cpu) * 1e3 / calls)
    return [statistics.median(r) for r in rates], [statistics.median(c) for c in cpu]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=f"{SHARED}/models/scrfd_500m.onnx")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    with av.open(f"{SHARED}/media/videos/WolfgangLanger_Pexels.mp4") as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    print(
        f"frame {frame.shape[1]}x{frame.shape[0]}, model {os.path.basename(args.model)}, "
        f"median of {args.runs} x {args.calls} calls, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'input':>14} | {'FaceDetector fps':>16} | {'CPU ms/frame':>12} | "
        f"{'insightface SCRFD.detect fps':>28} | {'CPU ms/frame':>12} | faces"
    )
    for size in [(640, 640), (320, 320), "auto"]:
        det = FaceDetector(args.model, input_size=size)
        resolved = det.input_size_for(frame.shape[1], frame.shape[0])
        reference = det._model  # insightface's SCRFD object that FaceDetector loaded

        def insightface_detect(image, model=reference, input_size=resolved):
            return model.detect(image, input_size=input_size)

        (ours, theirs), (ours_cpu, theirs_cpu) = _fps(
            [det.detect, insightface_detect], frame, args.runs, args.calls
        )
        label = f"{resolved[0]}x{resolved[1]}" + (" (auto)" if size == "auto" else "")
        print(
            f"{label:>14} | {ours:16.1f} | {ours_cpu:12.1f} | {theirs:28.1f} | {theirs_cpu:12.1f} | "
            f"{len(det.detect(frame))}"
        )


if __name__ == "__main__":
    main()
