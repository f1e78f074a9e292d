"""An FP16 copy of an exported MTL-GCN ONNX (`affectstream engine convert MODEL.onnx --to fp16`).

Why: TensorRT 11 builds strongly typed networks only, whose layer precisions are the ONNX file's
own types, so an FP16 plan needs an FP16 model (TensorRT 10's FP16 builder flag is gone). The copy
keeps float32 inputs and outputs (a Cast after the input and before each output), so every runtime
feeds and reads it exactly like the float32 file, and it carries the spec with `-fp16` added to the
model id. No converter package is needed: weights, constants and Cast targets are rewritten here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from affectstream.engines.errors import EngineBuildError, ModelFileError
from affectstream.engines.spec import METADATA_KEY, EngineSpec, set_metadata

log = logging.getLogger(__name__)

CONVERT_METADATA_KEY = "affectstream.conversion"
TARGETS = ("fp16",)
FP16_MAX = float(np.finfo(np.float16).max)


def _half(tensor: TensorProto) -> TensorProto:
    array = numpy_helper.to_array(tensor)
    if np.any(np.abs(array[np.isfinite(array)]) > FP16_MAX):
        raise EngineBuildError(f"constant {tensor.name!r} has values beyond FP16's range (±{FP16_MAX:g})")
    return numpy_helper.from_array(array.astype(np.float16), tensor.name)


def to_fp16(source: str | Path, output: str | Path) -> EngineSpec:
    """Write an FP16 copy of `source` to `output`; inputs and outputs stay float32.

    Returns:
        The spec written into `output` (the source's, model id + "-fp16").

    Raises:
        ModelFileError: `source` is not an affectstream ONNX, or is already FP16 or quantised.
        EngineBuildError: A weight does not fit in FP16.
    """
    source, output = Path(source), Path(output)
    spec = EngineSpec.from_onnx(source)
    if spec.model_id.endswith(("-fp16", "-int8", "-qdq")):
        raise ModelFileError(f"{source} is already converted ({spec.model_id}); convert the float32 export")
    model = onnx.load(str(source))
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(_half(init))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_half(attr.t))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    # The float32 boundary: Cast after each float input, before each float output.
    casts_in, renamed = [], {}
    for value in graph.input:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            renamed[value.name] = f"{value.name}__fp16"
            casts_in.append(
                helper.make_node(
                    "Cast",
                    [value.name],
                    [renamed[value.name]],
                    to=TensorProto.FLOAT16,
                    name=f"{value.name}__to_fp16",
                )
            )
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
    casts_out = []
    for value in graph.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = f"{value.name}__fp16"
            for node in graph.node:
                for k, name in enumerate(node.output):
                    if name == value.name:
                        node.output[k] = inner
            casts_out.append(
                helper.make_node(
                    "Cast", [inner], [value.name], to=TensorProto.FLOAT, name=f"{value.name}__to_fp32"
                )
            )
    nodes = [*casts_in, *graph.node, *casts_out]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # intermediate types changed; shape inference below recomputes them
    converted = replace(spec, model_id=f"{spec.model_id}-fp16")
    set_metadata(
        model,
        {
            METADATA_KEY: converted.to_json(),
            CONVERT_METADATA_KEY: json.dumps(
                {"source_model_id": spec.model_id, "to": "fp16", "io": "float32"}
            ),
        },
    )
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(output))
    log.info("converted %s -> %s (fp16 weights and activations, float32 inputs/outputs)", source, output)
    return converted
