"""Run an ONNX graph as a torch module: the shipped MTL-GCN and the SCRFD detector on torch CUDA.

Why: the GPU machines this project can borrow have torch but neither TensorRT nor onnxruntime-gpu
and no package registry, so the two ONNX files the pipeline runs (the model and the face detector)
must run in torch without a converter package. The graphs are small and use a handful of operators
(listed in `OPS`); an unsupported operator fails at load time with its name, never mid-stream.

Float weights become buffers (they follow `.to(device, dtype)`); integer constants and all shape
arithmetic (Shape, Gather, Slice bounds, Reshape targets, Resize sizes) stay on the CPU as small
int64 tensors, so a forward pass never waits on the GPU and can be captured in a CUDA graph.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from affectstream.engines.errors import ModelFileError

Op = Callable[..., object]


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ints(value) -> list[int]:
    """A CPU shape tensor (or list) as Python ints."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in value]


def _conv(attrs, x, w, b=None):
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    half = len(pads) // 2
    if pads[:half] != pads[half:]:  # asymmetric: pad explicitly (F.pad wants last axis first)
        x = F.pad(x, [p for i in reversed(range(half)) for p in (pads[i], pads[i + half])])
        pads = [0] * len(pads)
    return F.conv2d(
        x,
        w,
        b,
        stride=attrs.get("strides", 1),
        padding=pads[:half],
        dilation=attrs.get("dilations", 1),
        groups=attrs.get("group", 1),
    )


def _slice(attrs, x, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis %= x.dim()
        if step > 0:
            x = x[(slice(None),) * axis + (slice(start, end, step),)]
        else:  # torch has no negative steps: Python's slice semantics match ONNX's clamping
            index = list(range(*slice(start, end, step).indices(x.shape[axis])))
            if index == list(range(x.shape[axis] - 1, -1, -1)):
                x = torch.flip(x, [axis])
            else:
                x = torch.index_select(x, axis, torch.tensor(index, device=x.device))
    return x


def _gather(attrs, data, indices):
    axis = attrs.get("axis", 0) % data.dim()
    idx = indices.to(torch.int64)
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    out = torch.index_select(data, axis, idx.reshape(-1).to(data.device))
    return out.reshape(tuple(data.shape[:axis]) + tuple(idx.shape) + tuple(data.shape[axis + 1 :]))


def _unsqueeze(attrs, x, axes=None):
    axes = _ints(axes) if axes is not None else list(attrs["axes"])
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _reshape(attrs, x, shape):
    target = _ints(shape)
    target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


def _resize(attrs, x, roi=None, scales=None, sizes=None):
    mode = attrs.get("mode", b"nearest").decode()
    transform = attrs.get("coordinate_transformation_mode", b"half_pixel").decode()
    nearest = attrs.get("nearest_mode", b"round_prefer_floor").decode()
    if mode != "nearest" or transform != "asymmetric" or nearest != "floor":
        # torch's "nearest" is exactly ONNX nearest/asymmetric/floor; others would silently differ
        raise ModelFileError(
            f"Resize mode {mode}/{transform}/{nearest} is not supported (nearest/asymmetric/floor is)"
        )
    if sizes is not None and sizes.numel():
        return F.interpolate(x, size=_ints(sizes)[2:], mode="nearest")
    factors = [float(s) for s in scales.reshape(-1).tolist()][2:]
    return F.interpolate(x, scale_factor=factors, mode="nearest")


def _clip(attrs, x, low=None, high=None):
    # Bounds stay tensors on the device: float() would wait on the GPU and break CUDA graph capture.
    low = attrs.get("min") if low is None else low
    high = attrs.get("max") if high is None else high
    return torch.clamp(x, low, high)


def _flatten(attrs, x):
    axis = attrs.get("axis", 1) % max(x.dim(), 1)
    return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)


def _gemm(attrs, a, b, c=None):
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    out = attrs.get("alpha", 1.0) * (a @ b)
    return out if c is None else out + attrs.get("beta", 1.0) * c


def _batchnorm(attrs, x, scale, bias, mean, var):
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=attrs.get("epsilon", 1e-5))


def _maxpool(attrs, x):
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    return F.max_pool2d(
        x,
        attrs["kernel_shape"],
        attrs.get("strides", 1),
        pads[: len(pads) // 2],
        ceil_mode=bool(attrs.get("ceil_mode", 0)),
    )


OPS: dict[str, Op] = {
    "Conv": _conv,
    "Relu": lambda a, x: F.relu(x),
    "Sigmoid": lambda a, x: torch.sigmoid(x),
    "LeakyRelu": lambda a, x: F.leaky_relu(x, a.get("alpha", 0.01)),
    "Add": lambda a, x, y: x + y,
    "Sub": lambda a, x, y: x - y,
    "Mul": lambda a, x, y: x * y,
    "Div": lambda a, x, y: x / y,
    "MatMul": lambda a, x, y: torch.matmul(x, y),
    "Gemm": _gemm,
    "Softmax": lambda a, x: torch.softmax(x, a.get("axis", -1)),
    "Clip": _clip,
    "Flatten": _flatten,
    "Transpose": lambda a, x: x.permute(*a["perm"]) if "perm" in a else x.permute(*reversed(range(x.dim()))),
    "Reshape": _reshape,
    "Shape": lambda a, x: torch.tensor(tuple(x.shape), dtype=torch.int64),
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Concat": lambda a, *xs: torch.cat([x.to(xs[0].device) for x in xs], a["axis"]),
    "Slice": _slice,
    "Resize": _resize,
    "GlobalAveragePool": lambda a, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "MaxPool": _maxpool,
    "BatchNormalization": _batchnorm,
    "Identity": lambda a, x: x,
}


class OnnxModule(torch.nn.Module):
    """An ONNX graph evaluated node by node with torch operators.

    Args:
        model: An ONNX file or a loaded `ModelProto`.

    Raises:
        ModelFileError: The file cannot be read, or the graph uses an operator outside `OPS`.
    """

    def __init__(self, model: str | Path | onnx.ModelProto) -> None:
        super().__init__()
        if not isinstance(model, onnx.ModelProto):
            try:
                model = onnx.load(str(model))
            except Exception as exc:  # protobuf / OS errors
                raise ModelFileError(f"{model} is not a readable ONNX file: {exc}") from exc
        graph = model.graph
        unsupported = sorted({n.op_type for n in graph.node} - set(OPS) - {"Constant"})
        if unsupported:
            raise ModelFileError(
                f"ONNX operators {unsupported} have no torch version here (supported: {sorted(OPS)})"
            )
        self._cpu: dict[str, torch.Tensor] = {}  # integer constants: shape arithmetic stays on the CPU
        self._names: dict[str, str] = {}  # ONNX value name -> buffer name
        for init in graph.initializer:
            self._constant(init.name, numpy_helper.to_array(init))
        self._nodes = []
        for node in graph.node:
            if node.op_type == "Constant":
                attrs = _attrs(node)
                value = attrs.get("value")
                self._constant(
                    node.output[0],
                    numpy_helper.to_array(value)
                    if value is not None
                    else np.asarray(attrs.get("value_float", attrs.get("value_int"))),
                )
                continue
            self._nodes.append((OPS[node.op_type], _attrs(node), list(node.input), list(node.output)))
        consts = set(self._cpu) | set(self._names)
        self.input_names = [i.name for i in graph.input if i.name not in consts]
        self.output_names = [o.name for o in graph.output]

    def _constant(self, name: str, array: np.ndarray) -> None:
        if np.issubdtype(array.dtype, np.floating):
            buffer = f"c{len(self._names)}"
            self.register_buffer(buffer, torch.from_numpy(array.astype(np.float32).copy()))
            self._names[name] = buffer
        else:
            self._cpu[name] = torch.from_numpy(np.array(array, dtype=np.int64))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[str, Any] = dict(self._cpu)  # tensors, and attribute values of the graph's constants
        env.update({name: getattr(self, buffer) for name, buffer in self._names.items()})
        env.update(zip(self.input_names, inputs, strict=True))
        for op, attrs, ins, outs in self._nodes:
            result = op(attrs, *[env[i] if i else None for i in ins])
            env[outs[0]] = result
        return tuple(env[name] for name in self.output_names)
