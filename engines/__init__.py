"""Inference backends behind one small interface, the model-file contract, TensorRT build and cache.

`create_engine(name, model_path, **options)` is the only way the runtime gets an engine; backends are
imported when asked for, so `import engines` pulls in none of onnxruntime, tensorrt, pycuda or torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from affectstream.engines.base import Engine
from affectstream.engines.errors import BackendUnavailable, ModelFileError, UnknownBackend
from affectstream.engines.spec import EngineSpec

__all__ = [
    "BACKENDS",
    "Engine",
    "EngineSpec",
    "ModelInfo",
    "backend_module",
    "create_engine",
    "default_model_path",
    "default_model_for",
    "list_models",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "mtlgcn_ferplus.onnx"  # float32: TensorRT, CUDA and `engine build` start from this one
DEFAULT_INT8_MODEL = (
    "mtlgcn_ferplus_int8.onnx"  # the same weights quantised (engines.quantize): ONNX Runtime on CPU
)


@dataclass(frozen=True)
class _Backend:
    module: str
    factory: str
    requires: tuple[str, ...]  # top-level modules whose absence means "not installed", not a bug
    install: str


BACKENDS: dict[str, _Backend] = {
    "onnxruntime": _Backend(
        "affectstream.engines.onnxruntime",
        "OnnxRuntimeEngine",
        ("onnxruntime",),
        "pip install affectstream (onnxruntime is a runtime dependency; onnxruntime-gpu for CUDA)",
    ),
    "tensorrt": _Backend(
        "affectstream.engines.tensorrt",
        "create_tensorrt_engine",
        ("tensorrt", "pycuda"),
        "pip install 'affectstream[gpu]' (tensorrt, pycuda) on a machine with an NVIDIA GPU and driver",
    ),
    "torch": _Backend(
        "affectstream.engines.torch",
        "create_torch_engine",
        ("torch",),
        "pip install 'affectstream[train]' (torch, timm)",
    ),
}


def backend_module(name: str):
    """The backend's module, imported now; errors say what is unknown or what to install."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown engine backend {name!r}; valid names: {', '.join(BACKENDS)}") from None
    try:
        return importlib.import_module(backend.module)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in backend.requires:
            raise  # an import error inside our own code is a bug, not a missing extra
        raise BackendUnavailable(
            f"engine backend {name!r} cannot import {exc.name} ({exc}): {backend.install}"
        ) from exc


def create_engine(name: str = "onnxruntime", model_path: str | Path | None = None, **options) -> Engine:
    """An engine by backend name.

    Args:
        name: "onnxruntime" (CPU default; CUDA provider when onnxruntime-gpu is installed),
            "tensorrt" (an .onnx is built into a cached plan; a .plan/.engine is loaded directly),
            or "torch" (a training checkpoint).
        model_path: The model file; None or "default" for the shipped default model (see
            `default_model_for`; ONNX Runtime and TensorRT only: the torch backend needs a checkpoint).
        **options: Backend options, e.g. `max_batch`, `threads` (onnxruntime), `precision`,
            `cache_dir`, `calibration_dir` (tensorrt), `device`, `fp16`, `cuda_graphs` (torch).

    Raises:
        UnknownBackend: `name` is not registered (the message lists valid names).
        BackendUnavailable: The backend's libraries are not installed (the message says what to install).
        ModelFileError: The model file is missing or does not carry an affectstream spec.
    """
    factory = getattr(backend_module(name), BACKENDS[name].factory)
    if model_path is None or str(model_path) == "default":
        model_path = default_model_for(name, **options)
    return factory(model_path, **options)


def default_model_for(backend: str, **options) -> Path:
    """The shipped model a backend runs for `engine.model: default`.

    ONNX Runtime on the CPU gets the INT8 file (3.3x less engine time per face; on FER+ valid 2,973
    correct of 3,555 against the float model's 2,976: MODEL_CARD.md); everything else (ONNX Runtime on CUDA, TensorRT, which applies its own precision)
    gets the float32 file. `options` are the backend options `create_engine` receives
    (`device`, `providers` decide where ONNX Runtime runs).
    """
    if backend != "onnxruntime":
        return default_model_path()
    on_cpu = backend_module(backend).runs_on_cpu(options.get("device", "auto"), options.get("providers"))
    return default_model_path(int8=on_cpu)


def default_model_path(*, int8: bool = False) -> Path:
    """A model shipped in the package: `engines/models/mtlgcn_ferplus.onnx`, or with `int8` its
    quantised copy `mtlgcn_ferplus_int8.onnx`.

    Raises:
        ModelFileError: The package was installed without it (the message says where it belongs).
    """
    path = MODELS_DIR / (DEFAULT_INT8_MODEL if int8 else DEFAULT_MODEL)
    if not path.is_file():
        raise ModelFileError(
            f"the default model {path} is missing; reinstall affectstream, or set engine.model to an "
            "exported MTL-GCN .onnx (training/: `affectstream export`)"
        )
    return path


@dataclass(frozen=True)
class ModelInfo:
    """A shipped model: its file and what it says about itself."""

    name: str
    path: Path
    size_bytes: int
    spec: EngineSpec | None
    error: str = ""  # why the spec could not be read, when it could not


def list_models(directory: str | Path | None = None) -> list[ModelInfo]:
    """The .onnx models in the package's models folder (or `directory`), sorted by name.

    A file whose spec cannot be read is listed with `spec=None` and the reason, so
    `affectstream models` shows a broken file instead of hiding it.
    """
    folder = Path(directory) if directory is not None else MODELS_DIR
    out = []
    for path in sorted(folder.glob("*.onnx")):
        try:
            spec, error = EngineSpec.from_onnx(path), ""
        except ModelFileError as exc:
            spec, error = None, str(exc)
        out.append(ModelInfo(path.stem, path, path.stat().st_size, spec, error))
    return out
