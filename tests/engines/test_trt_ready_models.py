"""The two files a TensorRT 11 build parses, made from the shipped float32 model by the CLI:
`engine convert --to fp16` and `engine quantize --symmetric`. Both must carry the spec, run on ONNX
Runtime CPU and give the float model's top class on >= 99% of 400 held-out FER+ valid crops; the Q/DQ
file must have every zero point 0 (TensorRT accepts symmetric INT8 only)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from affectstream.engines import create_engine, default_model_path
from affectstream.engines.calibration import load_crops
from affectstream.engines.errors import ModelFileError
from affectstream.engines.spec import EngineSpec
from affectstream.pipeline.cli.main import main
from tests.conftest import need_shared

HELD_OUT = 400
AGREEMENT = 0.99


@pytest.fixture(scope="module")
def valid_crops():
    return load_crops(
        need_shared("data", "ferplus", "FER2013Valid"),
        EngineSpec.from_onnx(default_model_path()),
        limit=HELD_OUT,
    )


@pytest.fixture(scope="module")
def float_out(valid_crops):
    with create_engine("onnxruntime", default_model_path(), device="cpu", max_batch=100, threads=1) as engine:
        return engine.infer(valid_crops)


def _run(path, crops):
    with create_engine("onnxruntime", path, device="cpu", max_batch=100, threads=1) as engine:
        return engine.spec, engine.infer(crops)


def test_fp16_copy_agrees_with_float32(tmp_path, valid_crops, float_out, capsys):
    out = tmp_path / "fp16.onnx"
    assert main(["engine", "convert", str(default_model_path()), "--to", "fp16", "-o", str(out)]) == 0
    assert "-fp16" in capsys.readouterr().out
    model = onnx.load(str(out))
    weights = [i for i in model.graph.initializer if i.dims and np.prod(i.dims) > 16]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    for value in (*model.graph.input, *model.graph.output):  # the float32 boundary is kept
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    spec, (probs, va) = _run(out, valid_crops)
    assert spec.model_id == EngineSpec.from_onnx(default_model_path()).model_id + "-fp16"
    assert len(valid_crops) == HELD_OUT
    agreement = (probs.argmax(1) == float_out[0].argmax(1)).mean()
    assert agreement >= AGREEMENT, agreement
    assert float(np.abs(va - float_out[1]).max()) < 2e-2
    with pytest.raises(ModelFileError, match="already converted"):
        from affectstream.engines.convert import to_fp16

        to_fp16(out, tmp_path / "again.onnx")


def test_symmetric_qdq_copy_has_zero_points_0_and_agrees(tmp_path, valid_crops, float_out, capsys):
    out = tmp_path / "qdq.onnx"
    train = need_shared("data", "ferplus", "FER2013Train")
    assert (
        main(
            [
                "engine",
                "quantize",
                str(default_model_path()),
                "--symmetric",
                "-o",
                str(out),
                "--calibration",
                str(train),
                "--limit",
                "256",
            ]
        )
        == 0
    )
    assert "-qdq" in capsys.readouterr().out
    model = onnx.load(str(out))
    inits = {i.name: i for i in model.graph.initializer}
    qnodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qnodes) > 40
    for node in qnodes:
        assert len(node.input) == 3, node.name  # an explicit zero point...
        zero = numpy_helper.to_array(inits[node.input[2]])
        assert zero.dtype == np.int8 and not zero.any(), node.name  # ...int8 and 0: symmetric
    spec, (probs, _va) = _run(out, valid_crops)
    assert spec.model_id.endswith("-qdq")
    agreement = (probs.argmax(1) == float_out[0].argmax(1)).mean()
    assert agreement >= AGREEMENT, agreement
