"""`affectstream engine build|info|quantize|convert` and `affectstream models`: argument parsing only.

Exit status (the table of every verb, `main` maps each named error to it): 0 done; 1 the model or plan is
bad or the build failed; 2 the command line or config is invalid; 3 the backend cannot run here (no
TensorRT, no pycuda, no GPU, no onnx: the extra to install is named).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from affectstream.engines.errors import EXIT_FAILED
from affectstream.settings import env


def register(subparsers) -> None:
    """Add `engine` (with `build`, `info`, `quantize`, `convert`) and `models` to the main CLI's subparsers."""
    engine = subparsers.add_parser(
        "engine", help="build and inspect TensorRT engine plans; INT8 and FP16 copies of a model"
    )
    engine_sub = engine.add_subparsers(dest="engine_command", required=True, metavar="ACTION")

    build = engine_sub.add_parser(
        "build",
        help="build the TensorRT plan of a pipeline config ahead of time and print its cache key",
        description="Build (or find in engine.cache_dir) the plan for engine.model, engine.precision and "
        "engine.max_batch on this GPU. Needs TensorRT, pycuda and an NVIDIA GPU.",
    )
    build.add_argument("-c", "--config", required=True, help="pipeline YAML config (its engine: section)")
    build.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    build.set_defaults(handler=build_handler)

    info = engine_sub.add_parser("info", help="show what a plan was built from and for")
    info.add_argument("plan", help="a .plan file (its .plan.json sidecar is read)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=info_handler)

    quantize = engine_sub.add_parser(
        "quantize",
        help="write an INT8 copy of an exported model (ONNX Runtime on CPU, or --symmetric for TensorRT)",
        description="Static INT8 quantisation (QDQ, per-channel weights) calibrated on face crops; "
        "see engines/quantize.py. This is how engines/models/mtlgcn_ferplus_int8.onnx is made. "
        "--symmetric: int8 activations with zero points 0, the Q/DQ form TensorRT accepts.",
    )
    quantize.add_argument("model", help="float32 MTL-GCN .onnx (from `affectstream export`)")
    quantize.add_argument("-o", "--output", required=True, help="where the INT8 .onnx goes")
    quantize.add_argument(
        "--symmetric",
        action="store_true",
        help="int8 weights and activations, all zero points 0 (TensorRT-compatible Q/DQ)",
    )
    quantize.add_argument(
        "--calibration",
        default="",
        help="folder of face crops (default $AFFECTSTREAM_SHARED/data/ferplus/FER2013Train)",
    )
    quantize.add_argument(
        "--limit", type=int, default=1024, help="calibration crops (first N in path order; default 1024)"
    )
    quantize.add_argument("--method", default="percentile", help="percentile (default), minmax or entropy")
    quantize.set_defaults(handler=quantize_handler)

    convert = engine_sub.add_parser(
        "convert",
        help="write an FP16 copy of an exported model (what a TensorRT 11 fp16 build parses)",
        description="FP16 weights and activations, float32 inputs and outputs, the spec in its metadata; "
        "runs on ONNX Runtime too. See engines/convert.py.",
    )
    convert.add_argument("model", help="float32 MTL-GCN .onnx (from `affectstream export`)")
    convert.add_argument("--to", required=True, choices=("fp16",), help="target precision")
    convert.add_argument("-o", "--output", required=True, help="where the converted .onnx goes")
    convert.set_defaults(handler=convert_handler)

    models = subparsers.add_parser("models", help="list the models shipped in the package")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(handler=models_handler)


def build_handler(args: argparse.Namespace) -> int:
    from affectstream.engines.build import build_from_config
    from affectstream.engines.errors import BackendUnavailable, EngineBuildError
    from affectstream.pipeline.config import load_config

    engine_cfg = load_config(args.config).engine
    try:
        result = build_from_config(engine_cfg, device_id=args.device)
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"cannot build a TensorRT engine on this machine: {exc}") from exc
    except ValueError as exc:
        raise EngineBuildError(str(exc)) from exc
    print(result.message)
    if result.key is not None:
        print(f"key: {result.key.digest()}")
        for name, value in vars(result.key).items():
            print(f"  {name}: {value}")
    return 0


def quantize_handler(args: argparse.Namespace) -> int:
    calibration = args.calibration
    if not calibration:
        shared = Path(os.environ.get(env.SHARED, "../shared"))
        calibration = str(shared / "data" / "ferplus" / "FER2013Train")

    def quantize(model: str, out: str):
        from affectstream.engines.quantize import quantize_model

        return quantize_model(
            model, out, calibration, limit=args.limit, method=args.method, symmetric=args.symmetric
        )

    return _write_model(quantize, args.model, args.output)


def convert_handler(args: argparse.Namespace) -> int:
    def convert(model: str, out: str):
        from affectstream.engines.convert import to_fp16

        return to_fp16(model, out)

    return _write_model(convert, args.model, args.output)


def _write_model(make, model: str, output: str) -> int:
    """The one shape of `engine quantize` and `engine convert`: MODEL -o OUT, `make(model, output)` writes
    the copy (a missing optional package is reported as its extra by `main`)."""
    from affectstream.pipeline.errors import ConfigError

    if not Path(model).is_file():
        raise ConfigError(f"model file {model} does not exist")
    spec = make(model, output)
    print(f"wrote {output}: {spec.model_id}")
    return 0


def info_handler(args: argparse.Namespace) -> int:
    from affectstream.engines.build import plan_info
    from affectstream.pipeline.errors import ConfigError

    if not Path(args.plan).is_file():
        raise ConfigError(f"plan {args.plan} does not exist")
    info = plan_info(args.plan)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"plan: {info['plan']}" + ("" if info["plan_exists"] else "  (MISSING)"))
    print(f"size: {info['size_bytes'] / 1e6:.1f} MB")
    print(f"key: {info['digest']}")
    for name, value in info["key"].items():
        print(f"  {name}: {value}")
    spec = info["spec"]
    print(
        f"model: {spec['model_id']}  input {spec['input']}  valence/arousal: {'yes' if spec['has_va'] else 'no'}"
    )
    print(f"labels: {', '.join(spec['labels'])}")
    print(f"this machine: {info['compatibility']}")
    return 0 if info["plan_exists"] else EXIT_FAILED


def models_handler(args: argparse.Namespace) -> int:
    from affectstream.engines import list_models

    models = list_models()
    if args.json:
        print(json.dumps([_model_dict(m) for m in models], indent=2))
        return 0
    if not models:
        print("no models are shipped in this installation")
        return EXIT_FAILED
    from affectstream.pipeline.tables import format_table

    rows = []
    for m in models:
        if m.spec is None:
            rows.append(
                (m.name, "(unreadable)", "-", "-", "-", f"{m.size_bytes / 1e6:.1f}", f"{m.path}: {m.error}")
            )
            continue
        s = m.spec
        rows.append(
            (
                m.name,
                s.model_id,
                f"{s.channels}x{s.input_size[0]}x{s.input_size[1]} {s.colour}",
                str(len(s.labels)),
                "yes" if s.has_va else "no",
                f"{m.size_bytes / 1e6:.1f}",
                str(m.path),
            )
        )
    print(format_table(("name", "model id", "input", "classes", "VA", "MB", "path"), rows))
    return 0


def _model_dict(m) -> dict:
    spec = None if m.spec is None else json.loads(m.spec.to_json())
    return {"name": m.name, "path": str(m.path), "size_bytes": m.size_bytes, "spec": spec, "error": m.error}
