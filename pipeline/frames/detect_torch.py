"""SCRFD on torch (`detector.backend: torch`): face detection on GPU machines without onnxruntime-gpu.

The SCRFD ONNX graph runs through `engines.onnx_torch.OnnxModule`; `pipeline.frames.detect.FaceDetector`
does everything around it (letterbox, anchor decoding, NMS) exactly as for ONNX Runtime, so only the
graph's evaluation differs. On CUDA one graph per detector input size is captured when that size is
first set up (FaceDetector does it at start for a fixed size), in thread-local capture mode so that
other threads' CUDA work (the engine's) cannot invalidate it. Imported only when asked for: the
runtime never needs torch otherwise.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import torch

from affectstream.engines.onnx_torch import OnnxModule
from affectstream.pipeline.errors import DetectorError

log = logging.getLogger(__name__)
# One capture at a time per process: entering a capture synchronises the device, which another
# thread's capture in progress forbids (seen on an H200 with one detector per prepare thread).
_CAPTURE_LOCK = threading.Lock()

# Output count -> (feature levels, strides, anchors per cell, landmarks): insightface's SCRFD layouts.
LAYOUTS = {
    6: (3, (8, 16, 32), 2, False),
    9: (3, (8, 16, 32), 2, True),
    10: (5, (8, 16, 32, 64, 128), 1, False),
    15: (5, (8, 16, 32, 64, 128), 1, True),
}


def resolve_device(device: str = "auto") -> torch.device:
    """ "auto" is CUDA when torch sees a GPU, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(
            f"detector device {device!r} asked for, but torch {torch.__version__} sees no CUDA GPU"
        )
    return torch.device(device)


class TorchSCRFD:
    """An SCRFD ONNX file as a torch module, with what `FaceDetector` needs to know about its outputs.

    Args:
        path: The SCRFD ONNX file (with keypoints).
        device: "auto", "cpu", "cuda" or "cuda:N".
        cuda_graphs: Replay one captured CUDA graph per input size (CUDA only).
    """

    def __init__(self, path: str | Path, *, device: str = "auto", cuda_graphs: bool = True) -> None:
        import onnx

        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf / OS errors
            raise DetectorError(f"cannot load detector {path}: {exc}") from exc
        outputs = len(model.graph.output)
        if outputs not in LAYOUTS:
            raise DetectorError(
                f"{path} is not an SCRFD detector ({outputs} outputs; SCRFD has 6, 9, 10 or 15)"
            )
        self.fmc, self._feat_stride_fpn, self._num_anchors, self.use_kps = LAYOUTS[outputs]
        self.device = resolve_device(device)
        self.module = OnnxModule(model).eval().to(self.device)
        self.input_name = self.module.input_names[0]
        self.output_names = list(self.module.output_names)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        h, w = (d.dim_value if d.HasField("dim_value") else 0 for d in dims[2:4])
        self.static_input_size = (w, h) if h and w else None
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.provider = f"torch:{self.device}"
        self._runners: dict[tuple[int, int], _Runner] = {}

    def session_for(self, size: tuple[int, int]) -> _Runner:
        """The runner of one input size (width, height), set up (and its CUDA graph captured) on first use."""
        if size not in self._runners:
            self._runners[size] = _Runner(self, size)
        return self._runners[size]


class _Runner:
    """Runs the graph for one input size; `run(names, feeds)` has ONNX Runtime's signature."""

    def __init__(self, model: TorchSCRFD, size: tuple[int, int]) -> None:
        width, height = size
        self.model = model
        self._in = torch.zeros((1, 3, height, width), device=model.device)
        self._host = torch.empty(tuple(self._in.shape)).pin_memory() if model.device.type == "cuda" else None
        self._graph: torch.cuda.CUDAGraph | None = None
        with torch.inference_mode():
            outputs = model.module(self._in)
            self._shapes = [tuple(t.shape) for t in outputs]
            self._out = self._flat(outputs)
            if model.cuda_graphs:
                with _CAPTURE_LOCK:
                    self._capture()

    @staticmethod
    def _flat(outputs) -> torch.Tensor:
        """All outputs in one tensor: one device-to-host copy per frame instead of nine."""
        return torch.cat([t.reshape(-1) for t in outputs])

    def _capture(self) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._flat(self.model.module(self._in))
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        # thread_local: the engine thread's CUDA calls during this capture neither break it nor get captured
        with torch.cuda.graph(self._graph, capture_error_mode="thread_local"):
            self._out = self._flat(self.model.module(self._in))

    def get_providers(self) -> list[str]:
        return [self.model.provider]

    def run(self, names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        blob = torch.from_numpy(feeds[self.model.input_name])
        with torch.inference_mode():
            if self._host is not None:
                self._host.copy_(blob)
                self._in.copy_(self._host, non_blocking=True)
            else:
                self._in.copy_(blob)
            if self._graph is not None:
                self._graph.replay()
                flat = self._out
            else:
                flat = self._flat(self.model.module(self._in))
            host = flat.cpu().numpy()
        parts, at = [], 0
        for shape in self._shapes:
            n = int(np.prod(shape))
            parts.append(host[at : at + n].reshape(shape))
            at += n
        order = {name: i for i, name in enumerate(self.model.output_names)}
        return [parts[order[name]] for name in names]
