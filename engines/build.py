"""Ahead-of-time engine builds from the pipeline config's `engine:` section, and plan inspection.

`affectstream engine build -c CONFIG` and the compose `engine-builder` service call `build_from_config`;
the worker then finds the same plan in `engine.cache_dir` (same key) and starts without building.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from affectstream.engines.cache import PlanKey, check_plan, read_sidecar
from affectstream.engines.errors import BackendUnavailable
from affectstream.engines.spec import EngineSpec


@dataclass(frozen=True)
class BuildResult:
    """What `build_from_config` did."""

    plan: Path | None  # None: the backend needs no plan
    key: PlanKey | None
    built: bool
    message: str


def resolve_model(model: str | Path) -> Path:
    """`engine.model` as a path: "default" (or empty) is the shipped model."""
    from affectstream.engines import default_model_path

    if str(model) in ("", "default"):
        return default_model_path()
    return Path(model).expanduser()


def build_from_config(engine_cfg: Any, *, device_id: int = 0) -> BuildResult:
    """Build the TensorRT plan the config's engine section asks for (or find it in the cache).

    Args:
        engine_cfg: An object with the `engine:` keys as attributes (`backend`, `model`, `max_batch`,
            `precision`, `cache_dir`, `calibration_dir`), e.g. `pipeline.config.Config.engine`.
        device_id: The CUDA device to build for.

    Raises:
        BackendUnavailable: TensorRT, pycuda or a GPU is missing (checked before any work is done).
        ModelFileError, EngineBuildError: The model cannot be read or built.
    """
    from affectstream.engines import backend_module

    if engine_cfg.backend != "tensorrt":
        return BuildResult(
            None,
            None,
            False,
            f"engine.backend is {engine_cfg.backend!r}: it runs the model file directly, nothing to build",
        )
    trt_backend = backend_module("tensorrt")  # fails fast here on a machine without TensorRT
    model = resolve_model(engine_cfg.model)
    if trt_backend.is_plan(model):
        key, _spec = check_plan(model, trt_backend.current_device(device_id))
        return BuildResult(model, key, False, f"engine.model {model} is already a plan for this GPU")
    plan, key, built = trt_backend.build_cached_plan(
        model,
        cache_dir=engine_cfg.cache_dir,
        precision=engine_cfg.precision,
        max_batch=engine_cfg.max_batch,
        calibration_dir=getattr(engine_cfg, "calibration_dir", "") or None,
        device_id=device_id,
    )
    return BuildResult(plan, key, built, ("built " if built else "cache hit: ") + str(plan))


def plan_info(plan_path: str | Path) -> dict:
    """What a plan's sidecar records, plus whether it fits this machine's GPU and TensorRT.

    Raises:
        ModelFileError: The sidecar is missing or malformed.
    """
    plan_path = Path(plan_path)
    key, spec = read_sidecar(plan_path)
    info: dict = {
        "plan": str(plan_path),
        "plan_exists": plan_path.is_file(),
        "size_bytes": plan_path.stat().st_size if plan_path.is_file() else 0,
        "key": asdict(key),
        "digest": key.digest(),
        "spec": _spec_summary(spec),
    }
    try:
        from affectstream.engines import backend_module

        trt_backend = backend_module("tensorrt")
        device = trt_backend.current_device()
    except BackendUnavailable as exc:
        info["compatible"] = None
        info["compatibility"] = f"not checked: {exc}"
        return info
    ours = (device.gpu_name, device.compute_capability, device.trt_version, device.cuda_major)
    theirs = key.target()
    info["compatible"] = ours == theirs
    info["compatibility"] = (
        "built for this GPU and TensorRT version"
        if ours == theirs
        else f"built for {theirs}, this machine is {ours}: rebuild"
    )
    return info


def _spec_summary(spec: EngineSpec) -> dict:
    return {
        "model_id": spec.model_id,
        "input": f"{spec.channels}x{spec.input_size[0]}x{spec.input_size[1]} {spec.colour}",
        "labels": list(spec.labels),
        "has_va": spec.has_va,
    }
