"""torch backend: the reference for parity tests, and a GPU path that needs no TensorRT.

Loads a training checkpoint through the loader that training registers in the entry-point group
`affectstream.checkpoint_loaders` (engines, the bottom layer, imports no training code); it returns the
deployed module (softmax probabilities, valence/arousal) and its `EngineSpec`. An exported `.onnx` (the
shipped model) goes through `engines.onnx_torch`, so a GPU machine with torch alone runs the very file
the other backends run. On CUDA it runs in FP16 by default and can replay CUDA graphs captured for
fixed batch sizes (a chunk is padded up to the nearest captured size; rows are independent in eval
mode, so padding never changes real rows). The graphs are captured when the engine is made, in the
thread that makes it, and in thread-local capture mode, so another thread's CUDA work (the detector's)
can neither break a capture nor end up inside one. FP32 on CUDA is FP32: TF32 is switched off.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import torch

from affectstream.engines.base import ChunkedEngine
from affectstream.engines.errors import BackendUnavailable, ModelFileError
from affectstream.engines.spec import OUTPUT_PROBS, OUTPUT_VA, EngineSpec

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_LOADERS = "affectstream.checkpoint_loaders"  # entry-point group (pyproject.toml)


def resolve_device(device: str = "auto") -> torch.device:
    """ "auto" is CUDA when torch sees a GPU, else CPU; "cuda:1" picks a GPU."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise BackendUnavailable(f"device {device!r} is not one of {DEVICES} (or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(
            f"device {device!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__})"
        )
    return torch.device(name)


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, EngineSpec]:
    """(module, spec) of a checkpoint, by the one loader installed in `CHECKPOINT_LOADERS`.

    Raises:
        BackendUnavailable: No loader is installed (affectstream not pip-installed), or several are.
    """
    from importlib.metadata import entry_points

    loaders = entry_points(group=CHECKPOINT_LOADERS)
    if len(loaders) != 1:
        found = ", ".join(f"{ep.name} = {ep.value}" for ep in loaders) or "none"
        raise BackendUnavailable(
            f"loading a checkpoint needs one '{CHECKPOINT_LOADERS}' entry point, found {found}: "
            "pip install -e '.[train]' in the affectstream checkout"
        )
    (loader,) = loaders
    return loader.load()(path)


def graph_sizes(max_batch: int) -> tuple[int, ...]:
    """Powers of two up to `max_batch`, plus `max_batch`: few graphs, at most 2x padding."""
    sizes = {max_batch}
    size = 1
    while size < max_batch:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes))


class TorchEngine(ChunkedEngine):
    """An MTL-GCN inference module in torch, on CPU or CUDA.

    Args:
        module: A module whose forward takes float32 NCHW crops and returns (probs, va); it is put in
            eval mode and moved to `device` and the precision in place (pass a copy to keep the original).
        spec: The model's spec.
        max_batch: Largest batch per forward; larger inputs are split.
        device: "auto", "cpu", "cuda" or "cuda:N".
        fp16: Half precision; default on for CUDA, off for CPU (where it is refused: CPU FP16 is slow
            and not what parity tests should compare).
        cuda_graphs: Capture one CUDA graph per size in `graph_batches` (CUDA only).
        graph_batches: Batch sizes to capture; default powers of two up to `max_batch`.
    """

    path: Path | None = None

    def __init__(
        self,
        module: torch.nn.Module,
        spec: EngineSpec,
        *,
        max_batch: int = 32,
        device: str = "auto",
        fp16: bool | None = None,
        cuda_graphs: bool = False,
        graph_batches: tuple[int, ...] | None = None,
    ) -> None:
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.spec = spec
        self.max_batch = int(max_batch)
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        self.fp16 = cuda if fp16 is None else bool(fp16)
        if self.fp16 and not cuda:
            raise BackendUnavailable("fp16 needs a CUDA device; use fp16=False on CPU")
        if cuda_graphs and not cuda:
            raise BackendUnavailable("CUDA graphs need a CUDA device")
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self._lock = threading.Lock()
        if cuda and not self.fp16:
            # TF32 (on by default for cuDNN convolutions) moves probabilities by ~1e-3: not FP32.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self._module: torch.nn.Module | None = module.eval().to(self.device, self.dtype)  # None once closed
        self._graphs: dict[
            int, tuple[torch.cuda.CUDAGraph, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
        ] = {}
        self._graph_sizes = tuple(sorted(graph_batches or graph_sizes(self.max_batch))) if cuda_graphs else ()
        if self._graph_sizes and self._graph_sizes[-1] < self.max_batch:
            raise ValueError(
                f"graph_batches {self._graph_sizes} must include a size >= max_batch {self.max_batch}"
            )
        with torch.inference_mode():
            for size in self._graph_sizes:
                self._capture(size)
        log.info(
            "torch engine %s on %s (%s%s)",
            spec.model_id,
            self.device,
            "fp16" if self.fp16 else "fp32",
            f", CUDA graphs {self._graph_sizes}" if self._graph_sizes else "",
        )

    @classmethod
    def from_checkpoint(cls, checkpoint_path: str | Path, **options) -> TorchEngine:
        """The engine of a training checkpoint (read by the installed checkpoint loader, `load_checkpoint`).

        Args:
            checkpoint_path: A `.pt` checkpoint written by `training`.
            **options: As for the constructor (`max_batch`, `device`, `fp16`, `cuda_graphs`, `graph_batches`).
        """
        path = Path(checkpoint_path)
        if not path.is_file():
            raise ModelFileError(f"checkpoint {path} does not exist")
        if path.suffix.lower() == ".onnx":
            raise ModelFileError(
                f"{path} is an ONNX file; from_checkpoint loads a training checkpoint (.pt), from_onnx an .onnx"
            )
        module, spec = load_checkpoint(path)
        engine = cls(module, spec, **options)
        engine.path = path
        return engine

    @classmethod
    def from_onnx(cls, onnx_path: str | Path, **options) -> TorchEngine:
        """The engine of an exported MTL-GCN ONNX (its graph evaluated by `engines.onnx_torch`)."""
        from affectstream.engines.onnx_torch import OnnxModule

        path = Path(onnx_path)
        spec = EngineSpec.from_onnx(path)
        engine = cls(_OnnxHead(OnnxModule(path)), spec, **options)
        engine.path = path
        return engine

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._module is not None, "a closed engine runs nothing"  # ChunkedEngine refuses first
        probs, va = self._module(x)
        return probs, va

    def _capture(self, size: int) -> None:
        """Capture the CUDA graph of one batch size (warm-up on a side stream first, as torch asks)."""
        c, h, w = self.spec.channels, *self.spec.input_size
        static_in = torch.zeros((size, c, h, w), device=self.device, dtype=self.dtype)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._forward(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self._forward(static_in)
        self._graphs[size] = (graph, static_in, static_out)

    def _run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = faces.shape[0]
        with torch.inference_mode():
            x = torch.from_numpy(faces)
            if self._graph_sizes:
                size = next(s for s in self._graph_sizes if s >= n)
                with self._lock:  # the graphs' static buffers serve one caller at a time
                    graph, static_in, (probs, va) = self._graphs[size]
                    static_in[:n].copy_(x.to(self.device, self.dtype, non_blocking=True))
                    graph.replay()
                    probs, va = probs[:n].clone(), va[:n].clone()
            else:
                probs, va = self._forward(x.to(self.device, self.dtype, non_blocking=True))
            probs_np = probs.float().cpu().numpy()
            va_np = va.float().cpu().numpy() if self.spec.has_va else None
        return probs_np, va_np

    def _release(self) -> None:
        self._graphs.clear()
        self._module = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class _OnnxHead(torch.nn.Module):
    """An exported model's graph as the (probs, va) module the engine expects."""

    def __init__(self, graph) -> None:
        super().__init__()
        self.graph = graph
        names = list(graph.output_names)
        self._probs = names.index(OUTPUT_PROBS)
        self._va = (
            names.index(OUTPUT_VA) if OUTPUT_VA in names else self._probs
        )  # no va: ignored (spec.has_va)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.graph(x)
        return out[self._probs], out[self._va]


def create_torch_engine(model_path: str | Path, **options) -> TorchEngine:
    """The registry's factory: an exported `.onnx` (the shipped model) or a training checkpoint."""
    if Path(model_path).suffix.lower() == ".onnx":
        return TorchEngine.from_onnx(model_path, **options)
    return TorchEngine.from_checkpoint(checkpoint_path=model_path, **options)
