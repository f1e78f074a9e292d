"""Engine throughput: faces/s per backend, precision and batch size, printed as a table and written as JSON.

Run by `bench/gpu_check.sh` on a GPU machine (torch CUDA FP32/FP16, CUDA graphs, TensorRT when it
imports). Also measures the CPU baseline: `python bench/gpu_bench.py --backends onnxruntime-cpu
--onnx engines/models/mtlgcn_ferplus.onnx --batches 1,8,32`.

Timings include the host-to-device and device-to-host copies (what `Engine.infer` costs a worker).
The model is the shipped one (`engines/models/mtlgcn_ferplus.onnx`; the torch backend runs its graph
through `engines.onnx_torch`), or a trained checkpoint when given (exported to ONNX for the others).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from anywhere in the checkout

from affectstream.pipeline.tables import format_table  # noqa: E402

BACKENDS = ("torch-cuda", "torch-cuda-graphs", "tensorrt", "onnxruntime-cpu", "onnxruntime-cuda")


def measure(engine, batch: int, seconds: float, rounds: int = 5) -> dict:
    """Median faces/s over `rounds` timed rounds of back-to-back `infer` calls (after a warm-up)."""
    c, (h, w) = engine.spec.channels, engine.spec.input_size
    faces = np.random.default_rng(0).standard_normal((batch, c, h, w)).astype(np.float32)
    for _ in range(3):
        engine.infer(faces)
    t0 = time.perf_counter()
    engine.infer(faces)
    per_call = max(time.perf_counter() - t0, 1e-5)
    calls = max(1, int(seconds / rounds / per_call))
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            engine.infer(faces)
        rates.append(batch * calls / (time.perf_counter() - t0))
    rate = statistics.median(rates)
    return {
        "batch": batch,
        "faces_per_s": round(rate, 1),
        "ms_per_face": round(1000.0 / rate, 4),
        "ms_per_batch": round(1000.0 * batch / rate, 3),
        "rounds": [round(r, 1) for r in rates],
    }


def prepare_model(checkpoint: str | None, onnx: str | None, work: Path) -> tuple[Path, Path]:
    """(torch model, onnx): the shipped model for both by default; a checkpoint is exported for the others."""
    from affectstream.engines import default_model_path

    if not checkpoint:
        model = Path(onnx) if onnx else default_model_path()
        return model, model
    if onnx:
        return Path(checkpoint), Path(onnx)
    from affectstream.training.export import export_onnx

    out = work / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(checkpoint, out)
    return Path(checkpoint), out


def engines_for(backend: str, checkpoint: Path, onnx: Path, max_batch: int, work: Path):
    """(precision label, zero-argument engine factory) pairs for one backend."""
    from affectstream.engines import create_engine

    if backend in ("torch-cuda", "torch-cuda-graphs"):
        graphs = backend.endswith("graphs")
        for fp16 in (True,) if graphs else (False, True):
            yield (
                ("fp16" if fp16 else "fp32"),
                lambda fp16=fp16: create_engine(
                    "torch", checkpoint, device="cuda", fp16=fp16, cuda_graphs=graphs, max_batch=max_batch
                ),
            )
    elif backend == "tensorrt":
        for precision in ("fp32", "fp16"):
            yield (
                precision,
                lambda p=precision: create_engine(
                    "tensorrt", onnx, precision=p, max_batch=max_batch, cache_dir=work / "engines"
                ),
            )
    elif backend.startswith("onnxruntime"):
        device = backend.split("-")[1]
        yield "fp32", lambda: create_engine("onnxruntime", onnx, device=device, max_batch=max_batch)
    else:
        raise SystemExit(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def default_backends() -> list[str]:
    chosen = []
    try:
        import torch

        if torch.cuda.is_available():
            chosen += ["torch-cuda", "torch-cuda-graphs"]
    except ImportError:
        pass
    try:
        import pycuda.driver  # noqa: F401
        import tensorrt  # noqa: F401

        chosen.append("tensorrt")
    except ImportError:
        pass
    return chosen or ["onnxruntime-cpu"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", default="", help=f"comma list of {', '.join(BACKENDS)} (default: what this machine has)"
    )
    parser.add_argument("--batches", default="1,8,32,128")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement")
    parser.add_argument(
        "--checkpoint", help="trained checkpoint for the torch backends (default: the shipped .onnx)"
    )
    parser.add_argument(
        "--onnx", help="exported model (default: the shipped one, or the checkpoint's export)"
    )
    parser.add_argument("-o", "--output", default="", help="write the results (JSON) here")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    backends = [b for b in args.backends.split(",") if b] or default_backends()
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        work = Path(tmp)
        checkpoint, onnx = prepare_model(args.checkpoint, args.onnx, work)
        for backend in backends:
            for precision, factory in engines_for(backend, checkpoint, onnx, max(batches), work):
                t0 = time.perf_counter()
                engine = factory()
                setup_s = time.perf_counter() - t0
                try:
                    for batch in batches:
                        row = {
                            "backend": backend,
                            "precision": precision,
                            "model": engine.spec.model_id,
                            "setup_s": round(setup_s, 1),
                            **measure(engine, batch, args.seconds),
                        }
                        results.append(row)
                        print(
                            f"  {backend:18s} {precision:5s} batch {batch:4d}: {row['faces_per_s']:10.1f} faces/s",
                            flush=True,
                        )
                finally:
                    engine.close()
    print_table(results)
    doc = {"machine": machine(), "results": results}
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(doc, indent=2))
    return 0


def machine() -> dict:
    info = {"python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        pass
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    return info


def print_table(results: list[dict]) -> None:
    if not results:
        return
    print()
    print(f"model {results[0]['model']}  ({machine()})")
    rows = [
        (
            r["backend"],
            r["precision"],
            r["batch"],
            f"{r['faces_per_s']:.1f}",
            f"{r['ms_per_face']:.4f}",
            f"{r['ms_per_batch']:.3f}",
        )
        for r in results
    ]
    print(format_table(("backend", "prec", "batch", "faces/s", "ms/face", "ms/batch"), rows, align="<<>>>>"))


if __name__ == "__main__":
    sys.exit(main())
