"""Inference cost of an exported model on this machine's CPU with ONNX Runtime.

``python -m training.latency engines/models/mtlgcn_ferplus.onnx`` prints milliseconds per face at
batch 1 and 32 (median over repeated runs, after warm-up) and the thread count used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def measure(model: str, batch: int, threads: int, seconds: float = 3.0) -> dict:
    """Median and p90 latency per batch and per face for one batch size."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape
    x = np.random.default_rng(0).standard_normal((batch, shape[1], shape[2], shape[3])).astype(np.float32)
    for _ in range(5):
        sess.run(None, {"input": x})
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        t0 = time.perf_counter()
        sess.run(None, {"input": x})
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    p90 = float(np.percentile(times, 90))
    return {
        "batch": batch,
        "threads": threads,
        "runs": len(times),
        "ms_per_batch": round(med, 3),
        "p90_ms_per_batch": round(p90, 3),
        "ms_per_face": round(med / batch, 3),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.latency")
    p.add_argument("model")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    for b in (int(v) for v in args.batches.split(",")):
        print(json.dumps(measure(args.model, b, args.threads, args.seconds)))


if __name__ == "__main__":
    main()
