"""The backend registry: names, lazy imports, install hints, shipped models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import affectstream.engines as engines
from affectstream.engines import BACKENDS, Engine, create_engine, list_models
from affectstream.engines.errors import BackendUnavailable, ModelFileError, UnknownBackend

REPO = Path(__file__).resolve().parents[2]


def test_unknown_backend_lists_valid_names():
    with pytest.raises(UnknownBackend) as info:
        create_engine("openvino", "x.onnx")
    for name in BACKENDS:
        assert name in str(info.value)


def test_import_engines_pulls_no_heavy_library():
    code = (
        "import sys, affectstream.engines, affectstream.engines.cache, affectstream.engines.build;"
        "import affectstream.pipeline.cli.engines;"
        "heavy = [m for m in ('torch', 'tensorrt', 'pycuda', 'onnxruntime', 'timm') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tensorrt_missing_gives_install_hint():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here; the hint is for machines without it")
    with pytest.raises(BackendUnavailable, match=r"affectstream\[gpu\]"):
        create_engine("tensorrt", "model.onnx")


def test_engine_satisfies_protocol(tiny):
    engine = create_engine("onnxruntime", tiny.onnx)
    assert isinstance(engine, Engine)
    assert "tiny-mtlgcn" in repr(engine)


def test_default_model_path():
    path = engines.MODELS_DIR / engines.DEFAULT_MODEL
    if path.is_file():
        assert engines.default_model_path() == path
    else:
        with pytest.raises(ModelFileError, match="default model .* is missing"):
            engines.default_model_path()


def test_list_models_reports_good_and_broken_files(tmp_path, tiny):
    (tmp_path / "good.onnx").write_bytes(tiny.onnx.read_bytes())
    (tmp_path / "broken.onnx").write_bytes(b"\x00garbage")
    (tmp_path / "notes.md").write_text("not a model")
    models = list_models(tmp_path)
    assert [m.name for m in models] == ["broken", "good"]
    broken, good = models
    assert good.spec == tiny.spec and good.error == "" and good.size_bytes > 0
    assert broken.spec is None and "not a loadable ONNX" in broken.error


def test_shipped_models_have_specs():
    for model in list_models():
        assert model.spec is not None, f"{model.path}: {model.error}"


@pytest.mark.skipif(
    not (engines.MODELS_DIR / engines.DEFAULT_MODEL).is_file(), reason="the default model is not shipped yet"
)
def test_default_model_runs():
    import numpy as np

    with create_engine("onnxruntime", "default", max_batch=4) as engine:
        c, (h, w) = engine.spec.channels, engine.spec.input_size
        probs, va = engine.infer(np.zeros((5, c, h, w), np.float32))
    assert probs.shape == (5, len(engine.spec.labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
