"""ONNX Runtime vs torch on the same MTL-GCN: FP32 on CPU always; CUDA (FP32 and FP16) where a GPU exists.

Tolerances: FP32 max |diff| <= 1e-4 on probabilities and valence/arousal (the issue's bound).
FP16 on CUDA: max |diff| <= 2e-2 (half precision keeps ~3 significant digits; softmax outputs in [0, 1]).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from affectstream.engines import create_engine

FP32_TOL = 1e-4
FP16_TOL = 2e-2

torch = pytest.importorskip("torch", reason="the [train] extra (torch) is the reference backend")


def _ort(tiny, faces):
    with create_engine("onnxruntime", tiny.onnx, device="cpu", max_batch=8) as engine:
        return engine.infer(faces)


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(a - b)))


def test_torch_cpu_matches_onnxruntime(tiny, faces):
    from affectstream.engines.torch import TorchEngine

    p_ort, v_ort = _ort(tiny, faces)
    with TorchEngine(copy.deepcopy(tiny.module), tiny.spec, device="cpu", max_batch=5) as engine:
        p_t, v_t = engine.infer(faces)
    assert _max_diff(p_ort, p_t) <= FP32_TOL
    assert _max_diff(v_ort, v_t) <= FP32_TOL


def test_torch_checkpoint_backend_matches_onnxruntime(tiny, faces):
    p_ort, v_ort = _ort(tiny, faces)
    with create_engine("torch", tiny.checkpoint, device="cpu", max_batch=8) as engine:
        p_t, v_t = engine.infer(faces)
    assert _max_diff(p_ort, p_t) <= FP32_TOL
    assert _max_diff(v_ort, v_t) <= FP32_TOL


def test_torch_without_va_gives_nan(tiny_linear):
    from affectstream.engines.torch import TorchEngine

    engine = TorchEngine(copy.deepcopy(tiny_linear.module), tiny_linear.spec, device="cpu")
    probs, va = engine.infer(np.zeros((2, 1, 32, 32), np.float32))
    assert probs.shape == (2, 8) and np.isnan(va).all()


def test_torch_refuses_cpu_fp16_and_onnx_files(tiny):
    from affectstream.engines.errors import BackendUnavailable, ModelFileError
    from affectstream.engines.torch import TorchEngine

    with pytest.raises(BackendUnavailable, match="fp16 needs a CUDA device"):
        TorchEngine(copy.deepcopy(tiny.module), tiny.spec, device="cpu", fp16=True)
    with pytest.raises(BackendUnavailable, match="CUDA graphs"):
        TorchEngine(copy.deepcopy(tiny.module), tiny.spec, device="cpu", cuda_graphs=True)
    with pytest.raises(ModelFileError, match="training checkpoint"):
        TorchEngine.from_checkpoint(tiny.onnx)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU visible to torch")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("graphs", [False, True], ids=["eager", "cuda-graphs"])
def test_torch_cuda_fp32_matches_onnxruntime(tiny, faces, graphs):
    from affectstream.engines.torch import TorchEngine

    p_ort, v_ort = _ort(tiny, faces)
    # TF32 convolutions would blur FP32 parity; the reference comparison runs in true FP32.
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        engine = TorchEngine(
            copy.deepcopy(tiny.module), tiny.spec, device="cuda", fp16=False, cuda_graphs=graphs, max_batch=8
        )
        p_t, v_t = engine.infer(faces)
        engine.close()
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    assert _max_diff(p_ort, p_t) <= FP32_TOL
    assert _max_diff(v_ort, v_t) <= FP32_TOL


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("graphs", [False, True], ids=["eager", "cuda-graphs"])
def test_torch_cuda_fp16_matches_onnxruntime(tiny, faces, graphs):
    from affectstream.engines.torch import TorchEngine

    p_ort, v_ort = _ort(tiny, faces)
    with TorchEngine(
        copy.deepcopy(tiny.module), tiny.spec, device="cuda", cuda_graphs=graphs, max_batch=8
    ) as engine:
        assert engine.fp16
        p_t, v_t = engine.infer(faces)
    assert _max_diff(p_ort, p_t) <= FP16_TOL
    assert _max_diff(v_ort, v_t) <= FP16_TOL


def _shipped_crops(n: int) -> np.ndarray:
    """Held-out FER+ valid crops for the shipped model (real faces, not noise)."""
    from affectstream.engines import default_model_path
    from affectstream.engines.calibration import load_crops
    from affectstream.engines.spec import EngineSpec
    from tests.conftest import need_shared

    return load_crops(
        need_shared("data", "ferplus", "FER2013Valid"), EngineSpec.from_onnx(default_model_path()), limit=n
    )


def _shipped_ort(crops):
    from affectstream.engines import default_model_path

    with create_engine("onnxruntime", default_model_path(), device="cpu", max_batch=64) as engine:
        return engine.infer(crops)


def test_torch_runs_the_shipped_onnx_like_onnxruntime():
    """The torch backend takes an exported .onnx: the shipped model, its graph evaluated in torch."""
    crops = _shipped_crops(37)
    p_ort, v_ort = _shipped_ort(crops)
    with create_engine("torch", "default", device="cpu", max_batch=16) as engine:
        assert engine.spec.model_id.startswith("mtlgcn-ferplus")
        p_t, v_t = engine.infer(crops)
    assert _max_diff(p_ort, p_t) <= FP32_TOL
    assert _max_diff(v_ort, v_t) <= FP32_TOL


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize(
    "fp16,graphs",
    [(False, False), (False, True), (True, False), (True, True)],
    ids=["fp32", "fp32-graphs", "fp16", "fp16-graphs"],
)
def test_torch_cuda_shipped_model_matches_onnxruntime_cpu(fp16, graphs):
    crops = _shipped_crops(400)
    p_ort, v_ort = _shipped_ort(crops)
    with create_engine(
        "torch", "default", device="cuda", fp16=fp16, cuda_graphs=graphs, max_batch=64
    ) as engine:
        if graphs:  # captured when the engine was made, not lazily in the engine thread
            assert sorted(engine._graphs) == [1, 2, 4, 8, 16, 32, 64]
        p_t, v_t = engine.infer(crops)
    tol = FP16_TOL if fp16 else FP32_TOL
    assert _max_diff(p_ort, p_t) <= tol
    assert _max_diff(v_ort, v_t) <= tol
    assert (p_ort.argmax(1) == p_t.argmax(1)).mean() >= (0.99 if fp16 else 0.9975)
