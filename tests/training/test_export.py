"""Export: ONNX Runtime matches torch, the spec travels in the metadata, checkpoints load weights_only."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.conftest import REPO, tiny_overrides

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.train


def _checkpoint(tmp_path, head: str, **overrides):
    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import save_checkpoint
    from affectstream.training.config import load_recipe

    recipe = load_recipe(
        REPO / "configs/model/ferplus_mtlgcn.yaml", tiny_overrides(**{"model.head": head}, **overrides)
    )
    torch.manual_seed(0)
    model = build_model(recipe)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, recipe, 1, 2, {"accuracy": 0.5})
    return path


@pytest.mark.parametrize("head", ["mtlgcn", "multitask", "linear"])
def test_onnx_matches_torch(tmp_path, head):
    from affectstream.engines.spec import EngineSpec
    from affectstream.training.export import export_onnx
    from affectstream.training.inference import load_inference_model

    ck = _checkpoint(tmp_path, head)
    out = tmp_path / "model.onnx"
    spec = export_onnx(ck, out)
    module, spec2 = load_inference_model(ck)
    assert not module.training
    assert spec == spec2 == EngineSpec.from_onnx(out)
    assert spec.has_va == (head != "linear")
    assert spec.input_size == (48, 48) and spec.colour == "gray"
    assert spec.labels[:2] == ("Neutral", "Happy") and len(spec.labels) == 8

    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        probs, va = module(x)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "input"
    got = sess.run(None, {"input": x.numpy()})
    assert [o.name for o in sess.get_outputs()] == (["probs", "va"] if spec.has_va else ["probs"])
    assert np.abs(got[0] - probs.numpy()).max() <= 1e-4
    np.testing.assert_allclose(got[0].sum(1), 1.0, atol=1e-5)
    if spec.has_va:
        assert np.abs(got[1] - va.numpy()).max() <= 1e-4
    # dynamic batch axis: a different batch size runs too
    assert sess.run(None, {"input": x.numpy()[:1]})[0].shape == (1, 8)


@pytest.mark.parametrize("via", ["recipe", "argument"])
def test_flip_average_is_inside_the_exported_graph(tmp_path, via):
    from affectstream.training.export import export_onnx
    from affectstream.training.inference import load_inference_model

    if via == "recipe":
        ck = _checkpoint(tmp_path, "mtlgcn", **{"export.flip_average": True})
        export_onnx(ck, tmp_path / "model.onnx")
        module, _ = load_inference_model(ck)
    else:  # `affectstream export --flip-average` on a checkpoint trained without it
        ck = _checkpoint(tmp_path, "mtlgcn")
        export_onnx(ck, tmp_path / "model.onnx", flip_average=True)
        module, _ = load_inference_model(ck, flip_average=True)
    out = tmp_path / "model.onnx"
    torch.manual_seed(1)
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        probs, va = module(x)
        plain = torch.softmax(module.model(x)[0], 1).numpy()
        plain_mirrored = torch.softmax(module.model(x.flip(-1))[0], 1).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got, got_va = sess.run(None, {"input": x.numpy()})
    mirrored, mirrored_va = sess.run(None, {"input": x.flip(-1).numpy()})
    assert np.abs(got - probs.numpy()).max() <= 1e-4 and np.abs(got_va - va.numpy()).max() <= 1e-4
    # A crop and its mirror image now get the same answer (the plain model's two answers, averaged).
    assert np.abs(plain - plain_mirrored).max() > 1e-6
    assert np.abs(got - mirrored).max() <= 1e-6 and np.abs(got_va - mirrored_va).max() <= 1e-6
    np.testing.assert_allclose(got, (plain + plain_mirrored) / 2, atol=1e-6)
    assert sess.run(None, {"input": x.numpy()[:1]})[0].shape == (1, 8)


def test_checkpoint_loads_weights_only(tmp_path):
    ck = _checkpoint(tmp_path, "mtlgcn")
    payload = torch.load(ck, weights_only=True)
    assert payload["recipe"]["model"]["head"] == "mtlgcn"
    assert payload["epoch"] == 1


def test_missing_checkpoint_names_the_file(tmp_path):
    from affectstream.training.errors import CheckpointError
    from affectstream.training.inference import load_inference_model

    with pytest.raises(CheckpointError, match="nope.pt"):
        load_inference_model(tmp_path / "nope.pt")
