"""Build a serialized TensorRT plan from an exported MTL-GCN ONNX (TensorRT 10 Python API).

One optimisation profile on the batch axis (min 1, opt, max); FP16 by default; INT8 through an
`IInt8EntropyCalibrator2` fed with a folder of face crops, its calibration cache kept beside the plans
so a second build (another batch profile, another GPU of the same kind) skips calibration.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt

from engines.cache import PlanKey
from engines.calibration import load_crops
from engines.errors import EngineBuildError
from engines.spec import INPUT_NAME, EngineSpec
from engines.tensorrt import TRT_LOGGER

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30  # the MTL-GCN needs far less; a cap keeps the builder from eating a shared GPU


class FaceCalibrator(trt.IInt8EntropyCalibrator2):
    """Entropy calibration over preprocessed face crops, with a reusable calibration cache.

    Args:
        crops: float32 [N, C, H, W], or None to rely on an existing cache only.
        cache_file: Where the calibration table is read from and written to.
        batch_size: Crops per calibration batch.
    """

    def __init__(self, crops: np.ndarray | None, cache_file: Path, batch_size: int = 16) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        self.cache_file = Path(cache_file)
        self.crops = crops
        self.batch_size = batch_size if crops is None else max(1, min(batch_size, len(crops)))
        self._index = 0
        self._device = None if crops is None else cuda.mem_alloc(crops[: self.batch_size].nbytes)

    def get_batch_size(self) -> int:
        return self.batch_size

    def get_batch(self, names):  # one input; TensorRT passes its name
        if self.crops is None or self._index + self.batch_size > len(self.crops):
            return None  # no more batches: calibration ends
        batch = np.ascontiguousarray(self.crops[self._index : self._index + self.batch_size])
        self._index += self.batch_size
        cuda.memcpy_htod(self._device, batch)
        return [int(self._device)]

    def read_calibration_cache(self):
        if self.cache_file.is_file():
            log.info("INT8: reusing calibration cache %s", self.cache_file)
            return self.cache_file.read_bytes()
        return None

    def write_calibration_cache(self, cache) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        self.cache_file.write_bytes(bytes(cache))
        log.info("INT8: wrote calibration cache %s", self.cache_file)


def calibration_cache_path(cache_dir: Path, key: PlanKey) -> Path:
    """Calibration depends on the model and the data, not on the batch profile: one table per model and GPU."""
    return cache_dir / f"calib-{key.onnx_sha256[:16]}-{key.trt_version}.cache"


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
        EngineBuildError: The parser rejected the ONNX, the GPU lacks the precision, INT8 has neither
            calibration crops nor a cache, or the builder failed.
    """
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, TRT_LOGGER)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    c, h, w = spec.channels, *spec.input_size
    profile.set_shape(INPUT_NAME, (key.min_batch, c, h, w), (key.opt_batch, c, h, w), (key.max_batch, c, h, w))
    config.add_optimization_profile(profile)

    calibrator = None
    if key.precision in ("fp16", "int8"):
        # INT8 builds keep FP16 too, for layers without an INT8 kernel.
        config.set_flag(trt.BuilderFlag.FP16)
    if key.precision == "int8":
        cache_file = calibration_cache_path(plan_path.parent, key)
        crops = None
        if not cache_file.is_file():
            if not calibration_dir:
                raise EngineBuildError(
                    "precision int8 needs face crops for calibration: set engine.calibration_dir "
                    f"(or place a calibration cache at {cache_file})"
                )
            crops = load_crops(calibration_dir, spec)
            log.info("INT8: calibrating on %d crops from %s", len(crops), calibration_dir)
        calibrator = FaceCalibrator(crops, cache_file)
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        # Calibration runs at one shape; the profile's opt shape is a representative one.
        calib_profile = builder.create_optimization_profile()
        cb = calibrator.get_batch_size()
        calib_profile.set_shape(INPUT_NAME, (cb, c, h, w), (cb, c, h, w), (cb, c, h, w))
        config.set_calibration_profile(calib_profile)

    log.info("TensorRT %s: building %s (%s, batch %d/%d/%d)", trt.__version__, plan_path.name,
             key.precision, key.min_batch, key.opt_batch, key.max_batch)  # fmt: skip
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build {onnx_path} ({key.precision}); see the TensorRT errors above")
    plan_path.write_bytes(bytes(serialized))
    del calibrator  # frees its device buffer before the caller loads the plan
