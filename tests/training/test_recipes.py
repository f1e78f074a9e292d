"""Smoke runs: each shipped recipe trains a few steps on real or fixture data, backbone unchanged."""

from __future__ import annotations

import pytest

from tests.training.conftest import FIXTURES, REPO, shared_path

pytestmark = pytest.mark.train


def _smoke(recipe_name: str, tmp_path, **extra):
    from affectstream.training.config import load_recipe
    from affectstream.training.train import train

    overrides = {
        "optim.batch_size": 2,
        "optim.max_steps": 2,
        "optim.epochs": 1,
        "threads": 1,
        "device": "cpu",
    }
    overrides.update(extra)
    recipe = load_recipe(REPO / "configs/model" / f"{recipe_name}.yaml", overrides)
    best = train(recipe, tmp_path / "run", progress=False)
    assert 0.0 <= best["accuracy"] <= 1.0
    return recipe


def _densenet_weights(tmp_path) -> str:
    """A DenseNet-121 weights file in place of the ImageNet one (random values, same keys and shapes)."""
    import timm
    import torch

    path = tmp_path / "densenet121.pth"
    torch.save(timm.create_model("densenet121").state_dict(), path)
    return str(path)


def test_affectnet_paper_recipe_on_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTNET_ROOT", str(FIXTURES / "affectnet"))
    r = _smoke("affectnet7_paper", tmp_path, **{"model.pretrained_file": _densenet_weights(tmp_path)})
    assert r.model.backbone == "densenet121" and r.data.input_size == 227
    assert r.data.eye_level and r.graph.orientation == "authors" and r.optim.schedule == "step"


def test_affwild2_recipe_on_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFWILD2_ROOT", str(FIXTURES / "affwild2"))
    r = _smoke(
        "affwild2_mtlgcn",
        tmp_path,
        **{"data.frame_step": 1, "model.pretrained_file": _densenet_weights(tmp_path)},
    )
    assert r.loss.ce == "unweighted" and not r.model.final_act  # batch 35: test_fidelity (smoke uses 2)


def test_ferplus_recipe_on_real_data(tmp_path):
    shared_path("data", "ferplus")
    _smoke("ferplus_mtlgcn", tmp_path, **{"data.limit": 64, "model.backbone": "test_resnet"})
