"""ONNX Runtime backend: the CPU default, and the CUDA execution provider where onnxruntime-gpu is installed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from affectstream.engines.base import ChunkedEngine
from affectstream.engines.errors import BackendUnavailable, ModelFileError
from affectstream.engines.spec import INPUT_NAME, OUTPUT_PROBS, OUTPUT_VA, EngineSpec

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")


Provider = str | tuple[str, dict]  # a provider name, or (name, provider options)


def provider_name(entry: Provider) -> str:
    return str(entry[0]) if isinstance(entry, (tuple, list)) else str(entry)


def choose_providers(device: str = "auto", providers: Sequence[Provider] | None = None) -> list[Provider]:
    """Execution providers for a session: the one policy of the engine and the face detector.

    Args:
        device: "auto" (CUDA when this onnxruntime has it, else CPU), "cpu" or "cuda".
        providers: An explicit provider list (names, or (name, options) pairs); overrides `device`. CPU is
            always appended last so nodes a GPU provider cannot run still have a home.

    Raises:
        BackendUnavailable: "cuda" was asked for, or a listed provider is missing from this build.
    """
    available = ort.get_available_providers()
    if providers:
        missing = [provider_name(p) for p in providers if provider_name(p) not in available]
        if missing:
            raise BackendUnavailable(
                f"ONNX Runtime providers {missing} are not available (this build has {available}); "
                "install onnxruntime-gpu for CUDA/TensorRT providers (docs/gpu.md)"
            )
        chosen = list(providers)
    elif device not in DEVICES:
        raise BackendUnavailable(f"device {device!r} is not one of {DEVICES}")
    elif device == "cuda" and CUDA not in available:
        raise BackendUnavailable(
            f"device 'cuda' asked for, but this onnxruntime has only {available}; "
            "pip install onnxruntime-gpu (and remove onnxruntime), or use device 'cpu'"
        )
    else:
        chosen = [CUDA] if device in ("auto", "cuda") and CUDA in available else []
    if CPU not in {provider_name(p) for p in chosen}:
        chosen.append(CPU)
    return chosen


def check_active(requested: Sequence[Provider], active: Sequence[str], *, what: str) -> None:
    """Fail when a session silently dropped a requested provider.

    onnxruntime-gpu lists CUDA in `get_available_providers()` even when its CUDA or cuDNN libraries
    cannot load (a CUDA 13 build on a CUDA 12 host, say); the session then runs on the CPU with one
    warning in ONNX Runtime's own log. A GPU deployment running on the CPU is a failure, not a mode.

    Raises:
        BackendUnavailable: A requested provider is not among the session's active ones.
    """
    inactive = [provider_name(p) for p in requested if provider_name(p) not in active]
    if inactive:
        raise BackendUnavailable(
            f"{what}: ONNX Runtime could not enable {inactive} and would run on {list(active)}; the CUDA, "
            "cuDNN or TensorRT libraries of this onnxruntime-gpu do not load here (check its CUDA major "
            "version against the driver's, see docs/gpu.md), or ask for the CPU on purpose"
        )


def runs_on_cpu(device: str = "auto", providers: Sequence[Provider] | None = None) -> bool:
    """Whether a session with these settings runs on the CPU alone (see `choose_providers`)."""
    return choose_providers(device, providers) == [CPU]


def session_options(threads: int = 0, *, spin: bool = False) -> ort.SessionOptions:
    """Session options tuned for batched CPU throughput.

    Args:
        threads: Intra-op threads; 0 keeps ONNX Runtime's default (one per physical core).
        spin: Let idle intra-op threads busy-wait. Off by default: in a worker the decoder and
            detector threads share the cores, and spinning steals their time between engine calls.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One graph, one request at a time: parallelism comes from inside operators, not between them.
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.log_severity_level = 3  # warnings about unused initialisers are noise in a worker log
    return opts


class OnnxRuntimeEngine(ChunkedEngine):
    """An exported MTL-GCN ONNX (dynamic batch axis, `affectstream.spec` metadata) in ONNX Runtime.

    Args:
        model_path: The .onnx file.
        max_batch: Largest batch per `session.run`; larger inputs are split.
        threads: Intra-op threads (0 = library default).
        device: "auto", "cpu" or "cuda" (see `choose_providers`).
        providers: Explicit provider list, overriding `device`.
        spin: Busy-wait intra-op threads (see `session_options`).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        max_batch: int = 32,
        threads: int = 0,
        device: str = "auto",
        providers: Sequence[Provider] | None = None,
        spin: bool = False,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = int(max_batch)
        self.path = path
        self.providers = choose_providers(device, providers)
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=session_options(threads, spin=spin), providers=self.providers
            )
        except Exception as exc:  # onnxruntime raises untyped errors for unreadable files
            raise ModelFileError(f"{path} is not a loadable ONNX model: {exc}") from exc
        active = self._session.get_providers()
        check_active(self.providers, active, what=f"engine {path.name}")
        self.providers = active
        self.spec = EngineSpec.from_metadata(self._session.get_modelmeta().custom_metadata_map, path)
        self._outputs = self._check_io(path)
        log.info("onnxruntime engine %s: %s, providers %s", self.spec.model_id, path, self.providers)

    def _check_io(self, path: Path) -> list[str]:
        """Output names to fetch; errors name the contract the file breaks."""
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            names = [i.name for i in inputs]
            raise ModelFileError(f"{path}: expected one input named {INPUT_NAME!r}, found {names}")
        shape = inputs[0].shape
        expected = [self.spec.channels, *self.spec.input_size]
        if len(shape) != 4 or any(
            isinstance(d, int) and d != e for d, e in zip(shape[1:], expected, strict=True)
        ):
            raise ModelFileError(f"{path}: input shape {shape} does not match the spec's [N, {expected}]")
        if isinstance(shape[0], int) and shape[0] > 0:
            # The chunking and the micro-batcher need a dynamic batch axis; a batch-1 export still works.
            if shape[0] != 1:
                raise ModelFileError(
                    f"{path}: batch axis is fixed at {shape[0]}; export with a dynamic batch axis"
                )
            self.max_batch = 1
        outputs = [o.name for o in self._session.get_outputs()]
        wanted = [OUTPUT_PROBS, OUTPUT_VA] if self.spec.has_va else [OUTPUT_PROBS]
        missing = [name for name in wanted if name not in outputs]
        if missing:
            raise ModelFileError(f"{path}: outputs {missing} are missing (the file has {outputs})")
        return wanted

    def _run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        results = self._session.run(self._outputs, {INPUT_NAME: faces})
        return results[0], (results[1] if self.spec.has_va else None)

    def _release(self) -> None:
        # The session frees its arena when garbage-collected; dropping our reference is all it takes.
        self._session = None
