"""ONNX Runtime backend on a real exported MTL-GCN: contract, chunking, errors."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.engines import create_engine
from affectstream.engines.errors import BackendUnavailable, EngineInputError, ModelFileError
from affectstream.engines.onnxruntime import OnnxRuntimeEngine, choose_providers


def test_outputs_follow_the_contract(tiny, faces):
    with create_engine("onnxruntime", tiny.onnx, max_batch=8) as engine:
        assert engine.spec == tiny.spec
        probs, va = engine.infer(faces)
    assert probs.dtype == np.float32 and va.dtype == np.float32
    assert probs.shape == (13, len(tiny.spec.labels)) and va.shape == (13, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(np.abs(va) <= 1.0)
    assert probs.std(axis=0).max() > 0  # different faces give different answers


def test_chunking_matches_one_call(tiny, faces):
    big = OnnxRuntimeEngine(tiny.onnx, max_batch=64)
    small = OnnxRuntimeEngine(tiny.onnx, max_batch=4)  # 13 faces -> chunks of 4, 4, 4, 1
    p1, v1 = big.infer(faces)
    p2, v2 = small.infer(faces)
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    np.testing.assert_allclose(v1, v2, atol=1e-6)
    single = np.concatenate([small.infer(faces[i : i + 1])[0] for i in range(len(faces))])
    np.testing.assert_allclose(p1, single, atol=1e-6)


def test_empty_batch_and_float64(tiny, faces):
    engine = OnnxRuntimeEngine(tiny.onnx)
    probs, va = engine.infer(faces[:0])
    assert probs.shape == (0, 8) and va.shape == (0, 2)
    p64, _ = engine.infer(faces.astype(np.float64))
    np.testing.assert_allclose(p64, engine.infer(faces)[0], atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (np.zeros((2, 3, 32, 32), np.float32), "shape [N, 1, 32, 32]"),
        (np.zeros((1, 32, 32), np.float32), "got [1, 32, 32]"),
        (np.zeros((2, 1, 32, 32), np.uint8), "float32"),
        ([[0.0]], "numpy array"),
    ],
)
def test_bad_input_is_named(tiny, bad, needle):
    engine = OnnxRuntimeEngine(tiny.onnx)
    with pytest.raises(EngineInputError) as info:
        engine.infer(bad)
    assert needle in str(info.value)


def test_closed_engine_refuses(tiny, faces):
    engine = OnnxRuntimeEngine(tiny.onnx)
    engine.close()
    engine.close()  # idempotent
    with pytest.raises(EngineInputError, match="closed"):
        engine.infer(faces)


def test_model_without_va_gives_nan(tiny_linear):
    engine = OnnxRuntimeEngine(tiny_linear.onnx)
    assert not engine.spec.has_va
    probs, va = engine.infer(np.zeros((3, 1, 32, 32), np.float32))
    assert probs.shape == (3, 8) and np.isnan(va).all()


def test_missing_and_unlabelled_files(tmp_path, tiny):
    with pytest.raises(ModelFileError, match="does not exist"):
        OnnxRuntimeEngine(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a loadable ONNX"):
        OnnxRuntimeEngine(junk)
    import onnx

    stripped = onnx.load(str(tiny.onnx))
    del stripped.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(stripped, str(bare))
    with pytest.raises(ModelFileError, match="affectstream.spec"):
        OnnxRuntimeEngine(bare)


def test_providers():
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
            choose_providers("cuda")
    with pytest.raises(BackendUnavailable, match="NopeExecutionProvider"):
        choose_providers(providers=["NopeExecutionProvider"])


def test_threads_option_is_used(tiny, faces):
    engine = create_engine("onnxruntime", tiny.onnx, threads=1, max_batch=16)
    assert engine._session.get_session_options().intra_op_num_threads == 1
    assert engine.infer(faces)[0].shape == (13, 8)
