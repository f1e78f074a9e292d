"""TensorRT plan cache: one plan per (model, GPU, TensorRT version, precision, batch profile).

A serialized plan only runs on the GPU architecture and TensorRT version that built it, so the cache
key names all of them, and a plan is never loaded blindly: its sidecar JSON (`<plan>.json`) records
the key it was built for and the model's `EngineSpec`. This module has no TensorRT import; the GPU
facts come in as a `DeviceInfo` (`engines.tensorrt.current_device()` reads them on a GPU machine).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from affectstream.engines.errors import ModelFileError, PlanMismatch
from affectstream.engines.spec import EngineSpec

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
SIDECAR_SUFFIX = ".json"
SIDECAR_VERSION = 2  # version 1 sidecars lack the fields below: their plans are rebuilt
# How `engines.trt_build` turns a model into a plan. Bump it whenever a build of the same inputs would
# give a different plan: 2 = fp32 without TF32, strongly typed networks where TensorRT has no FP16/INT8 flags.
BUILD_RECIPE = 2


@dataclass(frozen=True)
class DeviceInfo:
    """The build target a plan is tied to."""

    gpu_name: str
    compute_capability: str  # "8.6"
    trt_version: str
    cuda_major: str = ""  # of the TensorRT build: 10.x ships for CUDA 12 and 13 under one version string


@dataclass(frozen=True)
class PlanKey:
    """Everything a plan depends on. Two builds with equal keys are interchangeable."""

    onnx_sha256: str
    gpu_name: str
    compute_capability: str
    trt_version: str
    cuda_major: str
    precision: str
    min_batch: int
    opt_batch: int
    max_batch: int
    recipe: int = BUILD_RECIPE
    calibration_sha256: str = ""  # int8 only: the crops the activation ranges came from

    def digest(self) -> str:
        """A short, stable hex id of the whole key (part of the plan's file name)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def differences(self, other: PlanKey) -> list[str]:
        """Human-readable `field: theirs -> ours` for every field that differs."""
        return [
            f"{f.name}: {getattr(other, f.name)!r} -> {getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]

    def target(self) -> tuple[str, str, str, str]:
        """What a plan only runs on: GPU, compute capability, TensorRT version, CUDA major."""
        return (self.gpu_name, self.compute_capability, self.trt_version, self.cuda_major)

    def same_model_and_profile(self, other: PlanKey) -> bool:
        return (self.onnx_sha256, self.precision, self.min_batch, self.opt_batch, self.max_batch) == (
            other.onnx_sha256,
            other.precision,
            other.min_batch,
            other.opt_batch,
            other.max_batch,
        )


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_key(
    onnx_path: str | Path,
    device: DeviceInfo,
    *,
    precision: str = "fp16",
    max_batch: int = 32,
    opt_batch: int | None = None,
    min_batch: int = 1,
    calibration_sha256: str = "",
) -> PlanKey:
    """The cache key of building `onnx_path` for `device` with this precision and batch profile.

    `calibration_sha256` (int8 only) names the calibration crops, so new crops give a new plan.

    Raises:
        ValueError: An unknown precision or a batch profile that is not 1 <= min <= opt <= max.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    opt = max_batch if opt_batch is None else opt_batch
    if not 1 <= min_batch <= opt <= max_batch:
        raise ValueError(f"batch profile needs 1 <= min <= opt <= max, got {min_batch}, {opt}, {max_batch}")
    return PlanKey(
        onnx_sha256=file_sha256(onnx_path),
        gpu_name=device.gpu_name,
        compute_capability=device.compute_capability,
        trt_version=device.trt_version,
        cuda_major=device.cuda_major,
        precision=precision,
        min_batch=int(min_batch),
        opt_batch=int(opt),
        max_batch=int(max_batch),
        recipe=BUILD_RECIPE,
        calibration_sha256=calibration_sha256 if precision == "int8" else "",
    )


def plan_filename(key: PlanKey, model_id: str) -> str:
    safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id) or "model"
    return f"{safe_id}-{key.precision}-b{key.max_batch}-{key.digest()}.plan"


def sidecar_path(plan_path: str | Path) -> Path:
    return Path(str(plan_path) + SIDECAR_SUFFIX)


def write_sidecar(plan_path: str | Path, key: PlanKey, spec: EngineSpec) -> Path:
    path = sidecar_path(plan_path)
    doc = {"version": SIDECAR_VERSION, "key": asdict(key), "spec": json.loads(spec.to_json())}
    _atomic_write(path, json.dumps(doc, indent=2, sort_keys=True).encode())
    return path


def read_sidecar(plan_path: str | Path) -> tuple[PlanKey, EngineSpec]:
    """The key and spec recorded beside a plan.

    Raises:
        ModelFileError: The sidecar is missing or malformed (the plan cannot be trusted then).
    """
    path = sidecar_path(plan_path)
    if not path.is_file():
        raise ModelFileError(
            f"{path} is missing: a plan needs its sidecar (build it with `affectstream engine build`)"
        )
    try:
        doc = json.loads(path.read_text())
        if doc.get("version") != SIDECAR_VERSION:
            raise ValueError(
                f"sidecar version {doc.get('version')!r}, this affectstream writes {SIDECAR_VERSION}"
            )
        key = PlanKey(**doc["key"])
        spec = EngineSpec.from_json(json.dumps(doc["spec"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path} is not a valid plan sidecar: {exc}") from exc
    return key, spec


def check_plan(plan_path: str | Path, device: DeviceInfo) -> tuple[PlanKey, EngineSpec]:
    """The sidecar of a plan given by path, if it was built for this GPU and TensorRT version.

    Raises:
        ModelFileError: The plan or its sidecar is missing or malformed.
        PlanMismatch: It was built for another GPU architecture or TensorRT version.
    """
    plan_path = Path(plan_path)
    if not plan_path.is_file():
        raise ModelFileError(f"plan file {plan_path} does not exist")
    key, spec = read_sidecar(plan_path)
    ours = (device.gpu_name, device.compute_capability, device.trt_version, device.cuda_major)
    theirs = key.target()
    if ours != theirs:
        raise PlanMismatch(
            f"{plan_path} was built for {theirs[0]} (sm {theirs[1]}) with TensorRT {theirs[2]} (CUDA {theirs[3]}); "
            f"this is {ours[0]} (sm {ours[1]}) with TensorRT {ours[2]} (CUDA {ours[3]}). Rebuild it from the ONNX "
            "(`affectstream engine build -c CONFIG` with engine.model set to the .onnx)"
        )
    if key.recipe != BUILD_RECIPE:
        raise PlanMismatch(
            f"{plan_path} was built by build recipe {key.recipe}, this affectstream uses "
            f"{BUILD_RECIPE} (e.g. fp32 plans are no longer TF32): rebuild it from the ONNX"
        )
    return key, spec


BuildFn = Callable[[Path, Path, PlanKey, EngineSpec], None]


def ensure_plan(
    onnx_path: str | Path,
    cache_dir: str | Path,
    device: DeviceInfo,
    build: BuildFn,
    *,
    precision: str = "fp16",
    max_batch: int = 32,
    opt_batch: int | None = None,
    spec: EngineSpec | None = None,
    calibration_sha256: str = "",
) -> tuple[Path, PlanKey, bool]:
    """The cached plan for this model, device and profile, built first when missing or stale.

    Args:
        onnx_path: The exported model.
        cache_dir: Folder of plans and sidecars (created when missing).
        device: The GPU and TensorRT version the plan must match.
        build: `build(onnx_path, plan_path, key, spec)` writes a serialized plan to `plan_path`.
        precision: "fp32", "fp16" or "int8".
        max_batch: Largest batch of the optimisation profile (min is 1).
        opt_batch: The batch TensorRT tunes for (default `max_batch`).
        spec: The model's spec, when the caller already read it.
        calibration_sha256: For int8, the digest of the calibration crops (part of the key).

    Returns:
        The plan path, its key, and whether it was built by this call.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelFileError(f"model file {onnx_path} does not exist")
    spec = spec or EngineSpec.from_onnx(onnx_path)
    key = make_key(
        onnx_path,
        device,
        precision=precision,
        max_batch=max_batch,
        opt_batch=opt_batch,
        calibration_sha256=calibration_sha256,
    )
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    plan = cache / plan_filename(key, spec.model_id)
    if plan.is_file():
        try:
            recorded, _ = read_sidecar(plan)
        except ModelFileError as exc:
            log.warning("rebuilding %s: %s", plan.name, exc)
        else:
            if recorded == key:
                log.info("engine cache hit: %s", plan)
                return plan, key, False
            log.warning(
                "rebuilding %s: its sidecar records another key (%s)",
                plan.name,
                "; ".join(key.differences(recorded)),
            )
    else:
        _log_stale_neighbours(cache, key)
        log.info("engine cache miss: building %s (%s, batch 1..%d)", plan.name, precision, key.max_batch)
    tmp = plan.with_name(plan.name + f".tmp{os.getpid()}")
    try:
        build(onnx_path, tmp, key, spec)
        os.replace(tmp, plan)  # atomic: a crashed build never leaves a half plan under the real name
    finally:
        tmp.unlink(missing_ok=True)
    write_sidecar(plan, key, spec)
    return plan, key, True


def _log_stale_neighbours(cache: Path, key: PlanKey) -> None:
    """Say why an existing plan of the same model and profile is not used (another GPU or TensorRT)."""
    for side in sorted(cache.glob("*.plan" + SIDECAR_SUFFIX)):
        try:
            other, _ = read_sidecar(side.with_suffix(""))
        except ModelFileError:
            continue
        if other != key and key.same_model_and_profile(other):
            log.warning(
                "plan %s was built for another target (%s); building a new plan for this one",
                side.with_suffix("").name,
                "; ".join(key.differences(other)),
            )


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
