"""The authors' choices as options: graph orientation, pretrained weights file, norm5 activation, step
schedule with early stopping, unweighted CE, eye levelling about the eye midpoint, antialiased crops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectstream.training.errors import ConfigError
from tests.training.conftest import FIXTURES, REPO, tiny_overrides

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.train


def _paper_graph():
    from affectstream.training.graph import adjacency, load_rho
    from affectstream.training.labels import get_label_set

    expr_va, rho_va = load_rho(
        REPO / "configs/graph/affectnet_paper_rho.json", get_label_set("affectnet7").labels
    )
    return adjacency(expr_va, rho_va)


def test_authors_orientation_is_the_transpose():
    from affectstream.training.graph import propagation_matrix

    adj = _paper_graph()
    authors = propagation_matrix(adj, "authors")
    np.testing.assert_array_equal(propagation_matrix(adj, "formula"), adj)
    np.testing.assert_array_equal(authors, adj.T)
    v, happy = 7, 1
    # The authors' valence node gathers 0.5 from Happy and 0.25 from the five classes with two VA edges.
    assert authors[v, happy] == 0.5
    assert sorted(authors[v, :7].tolist()) == [0.0, 0.25, 0.25, 0.25, 0.25, 0.25, 0.5]
    with pytest.raises(ConfigError, match="graph.orientation"):
        propagation_matrix(adj, "columns")


def test_orientation_reaches_the_model_buffer():
    from affectstream.training.build import build_model
    from affectstream.training.config import load_recipe

    over = tiny_overrides(**{"data.root": str(FIXTURES / "affectnet")})
    for orientation, expect in (("formula", _paper_graph()), ("authors", _paper_graph().T)):
        recipe = load_recipe(
            REPO / "configs/model/affectnet7_paper.yaml", {**over, "graph.orientation": orientation}
        )
        np.testing.assert_array_equal(build_model(recipe).head.adj.numpy(), expect)


def test_pretrained_file_is_loaded_only_when_asked(tmp_path):
    import timm

    from affectstream.training.model import AffectModel, ModelConfig

    source = timm.create_model("test_resnet")  # 3-channel, 1000 classes: what an ImageNet file holds
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    cfg = ModelConfig(head="multitask", backbone="test_resnet", in_chans=1, pretrained_file=str(path))
    loaded = AffectModel(cfg, pretrained_file=str(path)).backbone.state_dict()
    fresh = AffectModel(cfg).backbone.state_dict()
    name = "layer1.0.conv1.weight"
    assert torch.equal(loaded[name], source.state_dict()[name])
    assert not torch.equal(fresh[name], source.state_dict()[name])
    # timm folded the RGB stem into one grey channel (sum of the three)
    torch.testing.assert_close(
        loaded["conv1.0.weight"], source.state_dict()["conv1.0.weight"].sum(1, keepdim=True)
    )
    with pytest.raises(ConfigError, match="pretrained_file"):
        AffectModel(cfg, pretrained_file=str(tmp_path / "missing.pth"))


def test_training_loads_the_file_and_export_does_not(tmp_path, monkeypatch):
    import timm

    from affectstream.training.checkpoint import load_checkpoint
    from affectstream.training.config import load_recipe
    from affectstream.training.evaluate import evaluate_checkpoint
    from affectstream.training.train import train

    weights = tmp_path / "w.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), weights)
    monkeypatch.setenv("AFFECTNET_ROOT", str(FIXTURES / "affectnet"))
    over = tiny_overrides(**{"data.input_size": 32, "model.pretrained_file": str(weights)})
    recipe = load_recipe(REPO / "configs/model/affectnet7_paper.yaml", over)
    train(recipe, tmp_path / "run", progress=False)
    weights.unlink()  # export and evaluation rebuild from the checkpoint, without the file
    assert load_checkpoint(tmp_path / "run" / "last.pt")["recipe"]["model"]["pretrained_file"] == str(weights)
    assert 0.0 <= evaluate_checkpoint(str(tmp_path / "run" / "last.pt"))["accuracy"] <= 1.0


def test_final_act_false_keeps_negative_pooled_values():
    from affectstream.training.model import AffectModel, ModelConfig

    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    small = {"growth_rate": 8, "block_config": (1, 1, 1, 1)}
    with_act = AffectModel(
        ModelConfig(
            head="multitask", backbone="densenet121", in_chans=3, global_pool="max", backbone_args=small
        )
    ).eval()
    without = AffectModel(
        ModelConfig(
            head="multitask",
            backbone="densenet121",
            in_chans=3,
            global_pool="max",
            backbone_args=small,
            final_act=False,
        )
    ).eval()
    without.load_state_dict(with_act.state_dict())
    a, b = with_act.forward_features(x), without.forward_features(x)
    assert (a >= 0).all() and (b < 0).any()
    torch.testing.assert_close(a, b.clamp(min=0))  # max-pool commutes with the ReLU it no longer has
    with pytest.raises(ConfigError, match="final_act"):
        AffectModel(ModelConfig(head="linear", backbone="test_resnet", final_act=False))


def test_step_schedule_is_steplr():
    from affectstream.training.train import lr_at

    assert [
        lr_at(0, 100, 0, 1e-3, "step", epoch=e, step_epochs=10, step_gamma=0.1) for e in (0, 9, 10, 25)
    ] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])
    with pytest.raises(ConfigError, match="optim.schedule"):
        lr_at(0, 100, 0, 1.0, "linear")


def test_early_stopping_after_patience(tmp_path, monkeypatch):
    import affectstream.training.train as train_mod
    from affectstream.training.config import load_recipe

    accuracies = iter([0.5, 0.4, 0.4, 0.9, 0.9])  # best at epoch 1, then two worse epochs

    def fake_eval(*args, **kwargs):
        return {"accuracy": next(accuracies), "macro_f1": 0.0}

    monkeypatch.setattr(train_mod, "evaluate_samples", fake_eval)
    monkeypatch.setenv("AFFECTNET_ROOT", str(FIXTURES / "affectnet"))
    over = tiny_overrides(
        **{"data.input_size": 32, "optim.max_steps": 0, "optim.epochs": 5, "optim.early_stop": 2}
    )
    best = train_mod.train(
        load_recipe(REPO / "configs/model/affectnet7_paper.yaml", over), tmp_path, progress=False
    )
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3] and best["epoch"] == 1


def test_unweighted_ce_ignores_class_weights():
    from affectstream.training.losses import expression_loss

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    label = torch.tensor([0, 1, 1])
    w = torch.tensor([0.1, 10.0])
    plain = torch.nn.functional.cross_entropy(logits, label)
    assert float(expression_loss(logits, None, label, "unweighted", w)) == pytest.approx(float(plain))
    assert float(expression_loss(logits, None, label, "weighted", w)) != pytest.approx(float(plain))
    with pytest.raises(ConfigError, match="loss.ce"):
        expression_loss(logits, None, label, "focal", None)


def _eyes_image(angle_deg: float):
    """A 400 px image with two bright eye blobs on a line tilted by angle_deg, and 68 landmarks."""
    img = np.zeros((400, 400, 1), np.uint8)
    mid = np.array([210.0, 180.0])
    d = 50 * np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    left, right = mid - d, mid + d
    lm = np.zeros((68, 2), np.float32)
    lm[36:42], lm[42:48] = left, right
    yy, xx = np.mgrid[:400, :400]
    for c in (left, right):
        img[((xx - c[0]) ** 2 + (yy - c[1]) ** 2) < 12**2] = 255
    return img, lm, mid


def _blob_centres(crop: np.ndarray) -> list[np.ndarray]:
    import cv2

    n, _, _, centres = cv2.connectedComponentsWithStats((crop[..., 0] > 127).astype(np.uint8))
    return sorted((centres[i] for i in range(1, n)), key=lambda c: c[0])


def test_eye_level_about_the_eye_midpoint_as_the_authors():
    import cv2

    from affectstream.training.data.crops import crop_box

    img, lm, mid = _eyes_image(20.0)
    box = (100.0, 90.0, 200.0, 200.0)
    crop = crop_box(img, box, 100, lm, eye_level=True, pivot="eyes")
    left, right = _blob_centres(crop)
    assert abs(left[1] - right[1]) < 1.0  # levelled
    # Authors: rotate the image about the eye midpoint, take the box at its rotated top-left corner.
    rot = cv2.getRotationMatrix2D(tuple(mid), 20.0, 1.0)
    corner = rot @ np.array([box[0], box[1], 1.0])
    expected_mid = (mid - corner) * 0.5 - 0.25  # x0.5 scale; pixel-centre offset of the area pre-shrink
    np.testing.assert_allclose((left + right) / 2, expected_mid, atol=1.0)
    centred = _blob_centres(crop_box(img, box, 100, lm, eye_level=True))
    assert abs(centred[0][1] - centred[1][1]) < 1.0


def test_downscaled_crops_are_antialiased():
    from affectstream.training.data.crops import crop_box

    stripes = np.zeros((480, 480, 1), np.uint8)
    stripes[:, ::2] = 255  # 1 px stripes: any 10:1 downscale must give flat grey
    crop = crop_box(stripes, (0.0, 0.0, 480.0, 480.0), 48)
    assert crop.std() < 2.0 and abs(float(crop.mean()) - 127.5) < 2.0


def test_paper_recipes_have_the_authors_settings(monkeypatch):
    from affectstream.training.config import load_recipe

    monkeypatch.setenv("AFFECTNET_ROOT", "/x")
    monkeypatch.setenv("AFFWILD2_ROOT", "/x")
    a = load_recipe(REPO / "configs/model/affectnet7_paper.yaml")
    w = load_recipe(REPO / "configs/model/affwild2_mtlgcn.yaml")
    for r in (a, w):
        assert r.graph.orientation == "authors" and not r.model.final_act and r.model.pretrained_file
        assert (
            r.optim.schedule,
            r.optim.step_epochs,
            r.optim.step_gamma,
            r.optim.epochs,
            r.optim.early_stop,
        ) == ("step", 10, 0.1, 10, 10)
        assert r.optim.batch_size == 35 and r.optim.decay_norms
    assert a.data.eye_level and a.loss.ce == "weighted"
    assert w.loss.ce == "unweighted"


def test_decay_norms_puts_every_parameter_in_the_decayed_group():
    from affectstream.training.build import build_model
    from affectstream.training.config import load_recipe
    from affectstream.training.train import make_optimizer

    over = tiny_overrides(**{"data.root": str(FIXTURES / "affectnet")})
    for decay_norms, spared in ((False, True), (True, False)):
        recipe = load_recipe(
            REPO / "configs/model/affectnet7_paper.yaml", {**over, "optim.decay_norms": decay_norms}
        )
        groups = make_optimizer(build_model(recipe), recipe).param_groups
        assert groups[0]["weight_decay"] == 0.001 and bool(groups[1]["params"]) == spared


def test_torchvision_densenet_file_gives_the_authors_pooled_features(tmp_path):
    """A torchvision DenseNet-121 state dict (what the authors start from) loads through timm, and with
    final_act false + global max pool the features equal theirs: MaxPool over ``densenet121().features``."""
    torchvision = pytest.importorskip("torchvision")
    from affectstream.training.model import AffectModel, ModelConfig

    torch.manual_seed(0)
    theirs = torchvision.models.densenet121().eval()
    path = tmp_path / "tv_densenet121.pth"
    torch.save(theirs.state_dict(), path)
    cfg = ModelConfig(head="mtlgcn", backbone="densenet121", in_chans=3, global_pool="max", final_act=False)
    ours = AffectModel(
        cfg, np.zeros((9, 4), np.float32), np.eye(9, dtype=np.float32), pretrained_file=str(path)
    ).eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        expected = torch.nn.functional.adaptive_max_pool2d(theirs.features(x), 1).flatten(1)
        torch.testing.assert_close(ours.forward_features(x), expected, atol=1e-5, rtol=1e-5)
    assert (expected < 0).any()
