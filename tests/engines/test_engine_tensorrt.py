"""TensorRT backend vs ONNX Runtime on a real plan built from the tiny MTL-GCN (GPU machines only).

Tolerances: FP32 plans max |diff| <= 1e-3 (TensorRT picks different kernels and may use TF32-free
reductions in another order); FP16 plans max |diff| <= 2e-2 on probabilities and valence/arousal.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip(
    "tensorrt", reason="TensorRT is not installed (pip install 'affectstream[gpu]' on a GPU machine)"
)
pytest.importorskip("pycuda.driver", reason="pycuda is not installed (pip install 'affectstream[gpu]')")

from affectstream.engines import create_engine  # noqa: E402
from affectstream.engines.errors import BackendUnavailable  # noqa: E402

pytestmark = pytest.mark.gpu

TOL = {"fp32": 1e-3, "fp16": 2e-2}


@pytest.fixture(scope="module")
def device():
    from affectstream.engines.tensorrt import current_device

    try:
        return current_device()
    except BackendUnavailable as exc:
        pytest.skip(f"TensorRT imports but no GPU is usable: {exc}")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_plan_matches_onnxruntime(tiny, faces, tmp_path, device, precision):
    reference = create_engine("onnxruntime", tiny.onnx, device="cpu").infer(faces)
    with create_engine("tensorrt", tiny.onnx, precision=precision, max_batch=8, cache_dir=tmp_path) as engine:
        assert engine.spec == tiny.spec and engine.max_batch == 8
        probs, va = engine.infer(faces)  # 13 faces: chunks of 8 and 5 exercise set_input_shape
    assert probs.shape == reference[0].shape and va.shape == reference[1].shape
    assert float(np.max(np.abs(probs - reference[0]))) <= TOL[precision]
    assert float(np.max(np.abs(va - reference[1]))) <= TOL[precision]


def test_cache_hit_and_direct_plan_load(tiny, faces, tmp_path, device, caplog):
    from affectstream.engines.build import plan_info
    from affectstream.engines.tensorrt import build_cached_plan

    plan, key, built = build_cached_plan(tiny.onnx, cache_dir=tmp_path, max_batch=4)
    assert built and plan.is_file() and key.gpu_name == device.gpu_name
    with caplog.at_level(logging.INFO, logger="affectstream.engines.cache"):
        again, _, built_again = build_cached_plan(tiny.onnx, cache_dir=tmp_path, max_batch=4)
    assert again == plan and not built_again and "cache hit" in caplog.text
    with create_engine("tensorrt", plan) as engine:
        assert engine.max_batch == 4
        assert engine.infer(faces)[0].shape == (13, 8)
    info = plan_info(plan)
    assert info["compatible"] is True


def test_model_without_va(tiny_linear, tmp_path, device):
    with create_engine("tensorrt", tiny_linear.onnx, cache_dir=tmp_path, max_batch=2) as engine:
        probs, va = engine.infer(np.zeros((3, 1, 32, 32), np.float32))
    assert probs.shape == (3, 8) and np.isnan(va).all()


def test_int8_calibrates_from_crops_and_reuses_cache(tiny, tmp_path, device):
    import shutil

    from affectstream.engines.tensorrt import build_cached_plan
    from tests.conftest import need_shared

    crops = tmp_path / "crops"
    crops.mkdir()
    for png in sorted(need_shared("data", "ferplus", "FER2013Valid").glob("*.png"))[:64]:
        shutil.copy(png, crops / png.name)  # real face crops
    from affectstream.engines.trt_build import capabilities

    _, first, _ = build_cached_plan(
        tiny.onnx, cache_dir=tmp_path / "c", precision="int8", max_batch=4, calibration_dir=crops
    )
    assert first.calibration_sha256  # the crops are part of the key
    if capabilities().precision_flags:  # TensorRT 10.x: entropy calibrator and its table
        assert list((tmp_path / "c").glob("calib-*.cache"))
    # Another profile of the same crops: a new plan, the same calibration.
    _, key, built = build_cached_plan(
        tiny.onnx, cache_dir=tmp_path / "c", precision="int8", max_batch=8, calibration_dir=crops
    )
    assert built and key.max_batch == 8 and key.calibration_sha256 == first.calibration_sha256
