"""Build a serialized TensorRT plan from an exported MTL-GCN ONNX, on TensorRT 10.x or 11.x.

The two releases differ in how precision is asked for, and the build picks its path by looking at
the bindings (`capabilities`), never at the version string:

- **Builder flags** (10.x): `BuilderFlag.FP16` / `INT8`, INT8 ranges from an `IInt8EntropyCalibrator2`
  fed with face crops (its cache kept beside the plans, so a second build skips calibration).
- **Strongly typed** (11.x, which removed those flags and the calibrator): the network's types come
  from the ONNX file, so `fp16` builds from an FP16 copy (`engines.convert.to_fp16`) and `int8` from a
  symmetric Q/DQ copy (`engines.quantize`, `symmetric=True`), both made here from the float32 model.

An `fp32` plan is FP32: TF32 (on by default on Ampere and later) is cleared, since it alone moves the
shipped model's probabilities by ~2e-3. One optimisation profile on the batch axis (min 1, opt, max).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstream.engines._trt import TRT_LOGGER, cuda, trt
from affectstream.engines.cache import PlanKey
from affectstream.engines.calibration import load_crops
from affectstream.engines.errors import EngineBuildError
from affectstream.engines.spec import INPUT_NAME, EngineSpec

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30  # the MTL-GCN needs far less; a cap keeps the builder from eating a shared GPU
CALIBRATION_LIMIT = 512


@dataclass(frozen=True)
class Capabilities:
    """What these TensorRT bindings offer for precision control."""

    precision_flags: bool  # BuilderFlag.FP16/INT8 and IInt8EntropyCalibrator2 (TensorRT <= 10)
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED (TensorRT >= 9)
    tf32_flag: bool  # BuilderFlag.TF32, to clear for fp32

    @property
    def mode(self) -> str:
        return "builder-flags" if self.precision_flags else "strongly-typed"


def capabilities(api=trt) -> Capabilities:
    """Feature detection on a tensorrt module (the real one, or a stand-in in tests)."""
    flags = api.BuilderFlag
    caps = Capabilities(
        precision_flags=hasattr(flags, "FP16")
        and hasattr(flags, "INT8")
        and hasattr(api, "IInt8EntropyCalibrator2"),
        strongly_typed=hasattr(api.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"),
        tf32_flag=hasattr(flags, "TF32"),
    )
    if not (caps.precision_flags or caps.strongly_typed):
        raise EngineBuildError(
            f"TensorRT {getattr(api, '__version__', '?')} has neither precision flags nor strongly typed networks"
        )
    return caps


def calibration_digest(calibration_dir: str | Path, spec: EngineSpec) -> str:
    """sha256 of the preprocessed crops an int8 build calibrates on (part of the plan's cache key)."""
    crops = load_crops(calibration_dir, spec, limit=CALIBRATION_LIMIT)
    return hashlib.sha256(np.ascontiguousarray(crops).tobytes()).hexdigest()


def _calibrator(crops: np.ndarray | None, cache_file: Path, batch_size: int = 16):
    """An `IInt8EntropyCalibrator2` over face crops (TensorRT 10.x only), with a reusable cache file.

    The class is made here, not at import: TensorRT 11 has no calibrator base class, and this module
    must import there too.
    """

    class FaceCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batch_size = batch_size if crops is None else max(1, min(batch_size, len(crops)))
            self._index = 0
            self._device = None if crops is None else cuda.mem_alloc(crops[: self.batch_size].nbytes)

        def get_batch_size(self) -> int:
            return self.batch_size

        def get_batch(self, names):  # one input; TensorRT passes its name
            if crops is None or self._index + self.batch_size > len(crops):
                return None  # no more batches: calibration ends
            batch = np.ascontiguousarray(crops[self._index : self._index + self.batch_size])
            self._index += self.batch_size
            cuda.memcpy_htod(self._device, batch)
            return [int(self._device)]

        def read_calibration_cache(self):
            if cache_file.is_file():
                log.info("INT8: reusing calibration cache %s", cache_file)
                return cache_file.read_bytes()
            return None

        def write_calibration_cache(self, cache) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))
            log.info("INT8: wrote calibration cache %s", cache_file)

    return FaceCalibrator()


def calibration_cache_path(cache_dir: Path, key: PlanKey) -> Path:
    """One calibration table per model, crops and TensorRT version (not per batch profile)."""
    return cache_dir / f"calib-{key.onnx_sha256[:16]}-{key.calibration_sha256[:12]}-{key.trt_version}.cache"


def typed_source(onnx_path: Path, precision: str, spec: EngineSpec, calibration_dir, work: Path) -> Path:
    """The ONNX a strongly typed network parses: the model itself, its FP16 copy, or its symmetric Q/DQ copy."""
    if precision == "fp32":
        return onnx_path
    if precision == "fp16":
        from affectstream.engines.convert import to_fp16

        out = work / "model_fp16.onnx"
        to_fp16(onnx_path, out)
        return out
    if not calibration_dir:
        raise EngineBuildError(
            "precision int8 needs face crops to quantise the model with: set engine.calibration_dir"
        )
    from affectstream.engines.quantize import quantize_model

    out = work / "model_qdq.onnx"
    quantize_model(onnx_path, out, calibration_dir, limit=CALIBRATION_LIMIT, symmetric=True)
    return out


def build_plan(
    onnx_path: Path,
    plan_path: Path,
    key: PlanKey,
    spec: EngineSpec,
    *,
    calibration_dir: str | Path | None = None,
    workspace_bytes: int = WORKSPACE_BYTES,
) -> None:
    """Parse `onnx_path`, build for `key`'s precision and batch profile, write the plan to `plan_path`.

    Raises:
        EngineBuildError: The parser rejected the ONNX, INT8 has neither calibration crops nor a
            cache, or the builder failed.
    """
    caps = capabilities()
    log.info(
        "TensorRT %s (%s): building %s (%s, batch %d/%d/%d)",
        trt.__version__,
        caps.mode,
        plan_path.name,
        key.precision,
        key.min_batch,
        key.opt_batch,
        key.max_batch,
    )
    with tempfile.TemporaryDirectory(prefix="affectstream-trt-") as tmp:
        if caps.precision_flags:
            _build(onnx_path, plan_path, key, spec, caps, workspace_bytes, calibration_dir=calibration_dir)
        else:
            source = typed_source(onnx_path, key.precision, spec, calibration_dir, Path(tmp))
            _build(source, plan_path, key, spec, caps, workspace_bytes)


def _build(
    onnx_path: Path,
    plan_path: Path,
    key: PlanKey,
    spec: EngineSpec,
    caps: Capabilities,
    workspace_bytes: int,
    *,
    calibration_dir=None,
) -> None:
    builder = trt.Builder(TRT_LOGGER)
    flags = 0 if caps.precision_flags else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)  # explicit batch is the only mode since 10.x
    parser = trt.OnnxParser(network, TRT_LOGGER)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    c, h, w = spec.channels, *spec.input_size
    profile.set_shape(
        INPUT_NAME, (key.min_batch, c, h, w), (key.opt_batch, c, h, w), (key.max_batch, c, h, w)
    )
    config.add_optimization_profile(profile)
    if key.precision == "fp32" and caps.tf32_flag:
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default: "fp32" plans would be TF32
    calibrator = None
    if caps.precision_flags and key.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 builds keep FP16 for layers without an INT8 kernel
    if caps.precision_flags and key.precision == "int8":
        calibrator = _int8_calibration(builder, config, plan_path, key, spec, calibration_dir)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"TensorRT failed to build {onnx_path} ({key.precision}); see the TensorRT errors above"
        )
    plan_path.write_bytes(bytes(serialized))
    del calibrator  # frees its device buffer before the caller loads the plan


def _int8_calibration(builder, config, plan_path: Path, key: PlanKey, spec: EngineSpec, calibration_dir):
    """Builder-flag INT8 (TensorRT 10.x): the entropy calibrator, from crops or a cached table."""
    cache_file = calibration_cache_path(plan_path.parent, key)
    crops = None
    if not cache_file.is_file():
        if not calibration_dir:
            raise EngineBuildError(
                "precision int8 needs face crops for calibration: set engine.calibration_dir "
                f"(or place a calibration cache at {cache_file})"
            )
        crops = load_crops(calibration_dir, spec, limit=CALIBRATION_LIMIT)
        log.info("INT8: calibrating on %d crops from %s", len(crops), calibration_dir)
    calibrator = _calibrator(crops, cache_file)
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = calibrator
    # Calibration runs at one shape; the profile's opt shape is a representative one.
    c, h, w = spec.channels, *spec.input_size
    cb = calibrator.get_batch_size()
    calib_profile = builder.create_optimization_profile()
    calib_profile.set_shape(INPUT_NAME, (cb, c, h, w), (cb, c, h, w), (cb, c, h, w))
    config.set_calibration_profile(calib_profile)
    return calibrator
