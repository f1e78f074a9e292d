"""Recipes load, validate with key paths, and the shipped ones parse."""

from __future__ import annotations

import pytest

from tests.training.conftest import REPO
from training.config import load_recipe, recipe_from_dict, recipe_to_dict
from training.errors import ConfigError


@pytest.mark.parametrize("name", ["ferplus_mtlgcn", "affectnet7_paper", "affwild2_mtlgcn"])
def test_shipped_recipes_parse(name):
    recipe = load_recipe(REPO / "configs/model" / f"{name}.yaml")
    assert recipe.name == name
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


def test_paper_recipe_is_the_paper():
    r = load_recipe(REPO / "configs/model/affectnet7_paper.yaml")
    assert (r.model.backbone, r.model.global_pool, r.data.input_size) == ("densenet121", "max", 227)
    assert (r.optim.lr, r.optim.momentum, r.optim.weight_decay, r.optim.batch_size) == (1e-3, 0.9, 1e-3, 35)
    assert (r.augment.hflip, r.augment.rotate, r.loss.ce) == (True, 30.0, "weighted")


def test_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lr must be a float"):
        recipe_from_dict({"optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\] in model"):
        recipe_from_dict({"model": {"bogus": 1}})
    with pytest.raises(ConfigError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")


def test_overrides():
    r = load_recipe(REPO / "configs/model/ferplus_mtlgcn.yaml", {"optim.epochs": 2, "model.head": "linear"})
    assert r.optim.epochs == 2 and r.model.head == "linear"
