"""INT8 quantisation (`engines.quantize`, `affectstream engine quantize`) and which shipped file "default" means."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from affectstream.engines import create_engine, default_model_for, default_model_path
from affectstream.engines.calibration import load_crops
from affectstream.engines.errors import EngineBuildError, ModelFileError
from affectstream.engines.quantize import QUANT_METADATA_KEY, quantize_model
from affectstream.engines.spec import EngineSpec
from tests.conftest import need_shared


def _probs(path, crops: np.ndarray) -> np.ndarray:
    with create_engine("onnxruntime", path, max_batch=64, threads=1) as engine:
        return engine.infer(crops)[0]


def test_quantized_shipped_model_agrees_with_float_on_ferplus_valid(tmp_path):
    """Calibrated on 64 FER+ training crops, the INT8 copy must give the float model's answer on
    nearly every validation face; the spec is kept and the model id says int8."""
    ferplus = need_shared("data", "ferplus")
    source = default_model_path()
    out = tmp_path / "int8.onnx"
    spec = quantize_model(source, out, ferplus / "FER2013Train", limit=64)
    float_spec = EngineSpec.from_onnx(source)
    assert spec == EngineSpec.from_onnx(out)
    assert spec.model_id == float_spec.model_id + "-int8"
    assert vars(spec) | {"model_id": None} == vars(float_spec) | {"model_id": None}
    props = (
        ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    )
    made = json.loads(props[QUANT_METADATA_KEY])
    assert (made["source_model_id"], made["method"], made["calibration_crops"]) == (
        float_spec.model_id,
        "percentile",
        64,
    )
    assert out.stat().st_size < source.stat().st_size / 3  # int8 weights
    crops = load_crops(ferplus / "FER2013Valid", spec, limit=400)
    agreement = (_probs(out, crops).argmax(1) == _probs(source, crops).argmax(1)).mean()
    assert agreement >= 0.95, agreement


def test_quantize_rejects_an_int8_model_a_bad_method_and_an_empty_calibration_folder(tmp_path, tiny):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineBuildError, match="has no face crops"):
        quantize_model(tiny.onnx, tmp_path / "a.onnx", tmp_path / "empty")
    with pytest.raises(EngineBuildError, match="'fast' is not one of"):
        quantize_model(tiny.onnx, tmp_path / "a.onnx", tmp_path / "empty", method="fast")
    with pytest.raises(ModelFileError, match="already quantised"):
        quantize_model(default_model_path(int8=True), tmp_path / "b.onnx", tmp_path / "empty")


def test_quantize_cli_writes_a_model_the_runtime_loads(tmp_path, tiny):
    from affectstream.pipeline.cli.main import main

    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    np.save(
        crops / "batch.npy",
        rng.standard_normal((16, tiny.spec.channels, *tiny.spec.input_size)).astype(np.float32),
    )
    out = tmp_path / "tiny_int8.onnx"
    assert (
        main(
            [
                "engine",
                "quantize",
                str(tiny.onnx),
                "-o",
                str(out),
                "--calibration",
                str(crops),
                "--method",
                "minmax",
            ]
        )
        == 0
    )
    with create_engine("onnxruntime", out) as engine:
        assert engine.spec.model_id == "tiny-mtlgcn-int8"
        probs, va = engine.infer(np.load(crops / "batch.npy"))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    assert va is not None and va.shape == (16, 2)


def test_default_is_int8_on_cpu_onnxruntime_and_float_for_tensorrt():
    assert default_model_for("onnxruntime", device="cpu") == default_model_path(int8=True)
    assert default_model_for("onnxruntime", providers=["CPUExecutionProvider"]) == default_model_path(
        int8=True
    )
    assert default_model_for("tensorrt") == default_model_path()  # TensorRT applies its own precision
    with create_engine("onnxruntime", "default", device="cpu") as engine:
        assert engine.spec.model_id.endswith("-int8")
