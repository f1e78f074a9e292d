"""TensorRT backend (TensorRT 10.x and 11.x Python API, pycuda buffers): the production path on NVIDIA GPUs.

Execution: one execution context and one CUDA stream per engine; page-locked host buffers and device
buffers sized for the profile's max batch are allocated once; each chunk is an async host-to-device
copy, `set_input_shape` + `execute_async_v3`, async device-to-host copies, one stream synchronise.
Tensors are bound by name (`set_tensor_address`). The engine runs in the device's primary CUDA
context, pushed around each call, so any thread (the worker's batcher) may call `infer`.

The primary context is retained once per device per process and never released: pycuda's `detach()`
of a retained primary context does not pop it (`cuDevicePrimaryCtxRelease` never pops), and the last
release resets the context, freeing everything allocated in it, between a build and the next load.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from pathlib import Path

import numpy as np

from affectstream.engines._trt import TRT_LOGGER, cuda, trt
from affectstream.engines.base import ChunkedEngine
from affectstream.engines.cache import DeviceInfo, check_plan, ensure_plan
from affectstream.engines.errors import BackendUnavailable, ModelFileError
from affectstream.engines.spec import INPUT_NAME, OUTPUT_PROBS, OUTPUT_VA, EngineSpec

log = logging.getLogger(__name__)

PLAN_SUFFIXES = (".plan", ".engine", ".trt")
_init_lock = threading.Lock()
_primary: dict[int, object] = {}  # device id -> its primary context, retained once per process


def _cuda_device(device_id: int):
    """The CUDA device, or an error saying why there is none."""
    with _init_lock:
        try:
            cuda.init()
            count = cuda.Device.count()
        except cuda.Error as exc:
            raise BackendUnavailable(
                f"CUDA is not usable here ({exc}); TensorRT needs an NVIDIA GPU and driver"
            ) from exc
    if count == 0:
        raise BackendUnavailable("no NVIDIA GPU is visible; TensorRT needs one (check `nvidia-smi`)")
    if not 0 <= device_id < count:
        raise BackendUnavailable(f"GPU {device_id} does not exist ({count} visible)")
    return cuda.Device(device_id)


def primary_context(device_id: int = 0):
    """The device's primary context, retained on first use and kept for the life of the process."""
    device = _cuda_device(device_id)
    with _init_lock:
        if device_id not in _primary:
            _primary[device_id] = device.retain_primary_context()
        return _primary[device_id]


@contextlib.contextmanager
def _pushed(ctx):
    ctx.push()
    try:
        yield
    finally:
        cuda.Context.pop()


def trt_cuda_major() -> str:
    """The CUDA major version this TensorRT was built for (10.x ships for CUDA 12 and 13 alike)."""
    from importlib import metadata

    for dist in metadata.distributions():
        match = re.fullmatch(
            r"tensorrt[-_]cu(\d+)(?:[-_](?:libs|bindings))?", (dist.metadata["Name"] or "").lower()
        )
        if match:
            return match.group(1)
    return str(cuda.get_version()[0])  # NVIDIA's containers: TensorRT and pycuda share the image's CUDA


def current_device(device_id: int = 0) -> DeviceInfo:
    """The GPU name, compute capability, TensorRT version and its CUDA major a plan built here is tied to."""
    device = _cuda_device(device_id)
    major, minor = device.compute_capability()
    return DeviceInfo(
        gpu_name=device.name(),
        compute_capability=f"{major}.{minor}",
        trt_version=trt.__version__,
        cuda_major=trt_cuda_major(),
    )


class TensorRTEngine(ChunkedEngine):
    """A serialized plan with its sidecar spec, run with pycuda buffers.

    Args:
        plan_path: The plan; `<plan>.json` beside it holds the cache key and the `EngineSpec`.
        max_batch: Cap on the batch per execution; at most the plan's profile max.
        device_id: The CUDA device.
    """

    def __init__(self, plan_path: str | Path, *, max_batch: int | None = None, device_id: int = 0) -> None:
        self.path = Path(plan_path)
        self._lock = threading.Lock()
        key, self.spec = check_plan(self.path, current_device(device_id))
        # The primary context is shared with torch / ONNX Runtime CUDA in the same process.
        self._ctx = primary_context(device_id)
        with _pushed(self._ctx):
            # The runtime must outlive the engines it deserialised.
            self._runtime = trt.Runtime(TRT_LOGGER)
            self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                raise ModelFileError(
                    f"TensorRT could not deserialize {self.path} (see the TensorRT errors above)"
                )
            profile_max = self._check_io()
            self.max_batch = min(int(max_batch or profile_max), profile_max)
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._alloc()
        log.info(
            "tensorrt engine %s: %s (%s, batch <= %d, %s)",
            self.spec.model_id,
            self.path.name,
            key.precision,
            self.max_batch,
            key.gpu_name,
        )

    def _check_io(self) -> int:
        """The profile's max batch; errors name the tensor the plan lacks."""
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._outputs = [OUTPUT_PROBS, OUTPUT_VA] if self.spec.has_va else [OUTPUT_PROBS]
        for name in (INPUT_NAME, *self._outputs):
            if name not in names:
                raise ModelFileError(f"{self.path}: tensor {name!r} is missing (the plan has {names})")
        if self._engine.get_tensor_mode(INPUT_NAME) != trt.TensorIOMode.INPUT:
            raise ModelFileError(f"{self.path}: {INPUT_NAME!r} is not an input tensor")
        _min, _opt, max_shape = self._engine.get_tensor_profile_shape(INPUT_NAME, 0)
        return int(max_shape[0])

    def _alloc(self) -> None:
        c, h, w = self.spec.channels, *self.spec.input_size
        widths = {OUTPUT_PROBS: len(self.spec.labels), OUTPUT_VA: 2}
        self._host: dict[str, np.ndarray] = {}
        self._dev: dict[str, cuda.DeviceAllocation] = {}
        shapes = {
            INPUT_NAME: (self.max_batch, c, h, w),
            **{n: (self.max_batch, widths[n]) for n in self._outputs},
        }
        for name, shape in shapes.items():
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            self._host[name] = cuda.pagelocked_empty(shape, dtype)
            self._dev[name] = cuda.mem_alloc(self._host[name].nbytes)
            self._context.set_tensor_address(name, int(self._dev[name]))

    def _run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = faces.shape[0]
        # One set of buffers and one stream: concurrent callers take turns.
        with self._lock, _pushed(self._ctx):
            host_in = self._host[INPUT_NAME]
            np.copyto(host_in[:n], faces, casting="same_kind")
            cuda.memcpy_htod_async(self._dev[INPUT_NAME], host_in[:n], self._stream)
            if not self._context.set_input_shape(INPUT_NAME, (n, *faces.shape[1:])):
                raise RuntimeError(
                    f"TensorRT refused input shape {(n, *faces.shape[1:])} for {self.path.name}"
                )
            if not self._context.execute_async_v3(self._stream.handle):
                raise RuntimeError(f"TensorRT execution failed for {self.path.name} at batch {n}")
            for name in self._outputs:
                cuda.memcpy_dtoh_async(self._host[name][:n], self._dev[name], self._stream)
            self._stream.synchronize()
            # Copies: the page-locked buffers are reused by the next call.
            probs = self._host[OUTPUT_PROBS][:n].astype(np.float32)
            va = self._host[OUTPUT_VA][:n].astype(np.float32) if self.spec.has_va else None
        return probs, va

    def _release(self) -> None:
        # The lock: a close() racing an infer() waits for it instead of freeing its live buffers.
        with self._lock, _pushed(self._ctx):
            self._stream.synchronize()
            for mem in self._dev.values():
                mem.free()
            self._dev.clear()
            self._host.clear()
            # Destroyed here, inside the context, not later by the garbage collector outside it.
            self._context = None
            self._engine = None
            self._runtime = None
            self._stream = None


def is_plan(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PLAN_SUFFIXES


def build_cached_plan(
    onnx_path: str | Path,
    *,
    cache_dir: str | Path = "var/engines",
    precision: str = "fp16",
    max_batch: int = 32,
    opt_batch: int | None = None,
    calibration_dir: str | Path | None = None,
    device_id: int = 0,
) -> tuple[Path, object, bool]:
    """Build (or find) the cached plan of `onnx_path` for this GPU; returns (plan, key, built)."""
    device = current_device(device_id)  # no GPU: BackendUnavailable before anything else is loaded
    ctx = primary_context(device_id)
    from affectstream.engines.trt_build import build_plan, calibration_digest

    spec = EngineSpec.from_onnx(onnx_path) if Path(onnx_path).is_file() else None
    digest = (
        calibration_digest(calibration_dir, spec) if precision == "int8" and calibration_dir and spec else ""
    )

    def build(onnx: Path, plan: Path, key, spec: EngineSpec) -> None:
        with _pushed(ctx):  # the calibrator allocates device memory in this context
            build_plan(onnx, plan, key, spec, calibration_dir=calibration_dir or None)

    return ensure_plan(
        onnx_path,
        cache_dir,
        device,
        build,
        precision=precision,
        max_batch=max_batch,
        opt_batch=opt_batch,
        spec=spec,
        calibration_sha256=digest,
    )


def create_tensorrt_engine(
    model_path: str | Path,
    *,
    max_batch: int = 32,
    precision: str = "fp16",
    cache_dir: str | Path = "var/engines",
    calibration_dir: str | Path | None = None,
    opt_batch: int | None = None,
    device_id: int = 0,
) -> TensorRTEngine:
    """The registry's factory: a plan is loaded as is; an .onnx goes through the plan cache first."""
    if is_plan(model_path):
        return TensorRTEngine(model_path, max_batch=max_batch, device_id=device_id)
    plan, _key, _built = build_cached_plan(
        model_path,
        cache_dir=cache_dir,
        precision=precision,
        max_batch=max_batch,
        opt_batch=opt_batch,
        calibration_dir=calibration_dir,
        device_id=device_id,
    )
    return TensorRTEngine(plan, max_batch=max_batch, device_id=device_id)
