"""Recipes load, validate with key paths, and the shipped ones parse."""

from __future__ import annotations

import pytest

from affectstream.training.config import load_recipe, recipe_from_dict, recipe_to_dict
from affectstream.training.errors import ConfigError
from tests.training.conftest import REPO


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
    with pytest.raises(ConfigError, match=r"optim\.lr: expected float, got 'fast'"):
        recipe_from_dict({"optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"model\.bogus: unknown key; allowed keys: head, backbone"):
        recipe_from_dict({"model": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"model\.stem_pool: expected true or false"):
        recipe_from_dict({"model": {"stem_pool": "no"}})
    with pytest.raises(ConfigError, match=r"augment\.scale: expected 2 values"):
        recipe_from_dict({"augment": {"scale": [0.9]}})
    with pytest.raises(ConfigError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")


def test_numbers_written_as_strings_are_read_as_numbers():
    # YAML 1.1 reads 1e-3 (no dot) as a string; `--set optim.lr=1e-3` arrives the same way.
    r = recipe_from_dict(
        {"optim": {"lr": "1e-3", "epochs": "3"}, "model": {"backbone_args": {"channels": [8, 8, 8, 8]}}}
    )
    assert (r.optim.lr, r.optim.epochs) == (1e-3, 3)
    assert r.model.backbone_args == {"channels": [8, 8, 8, 8]}
    with pytest.raises(ConfigError, match=r"optim\.epochs: expected int, got 2\.5"):
        recipe_from_dict({"optim": {"epochs": 2.5}})


def test_overrides():
    r = load_recipe(REPO / "configs/model/ferplus_mtlgcn.yaml", {"optim.epochs": 2, "model.head": "linear"})
    assert r.optim.epochs == 2 and r.model.head == "linear"


def test_recipe_choices_are_the_registries():
    """The recipe's Literal choices and the registries that act on them name the same values."""
    from typing import get_args, get_type_hints

    from affectstream.training.config import DataConfig, GraphConfig, LossConfig, OptimConfig
    from affectstream.training.data import DATASETS
    from affectstream.training.graph import ORIENTATIONS
    from affectstream.training.labels import LABEL_SETS, VA_CENTROID_TABLES
    from affectstream.training.losses import CE_MODES
    from affectstream.training.train import SCHEDULES

    def choices(cls, name):
        return set(get_args(get_type_hints(cls)[name]))

    assert choices(DataConfig, "dataset") == set(DATASETS)
    assert choices(DataConfig, "label_set") == set(LABEL_SETS)
    assert choices(DataConfig, "va_centroids") == set(VA_CENTROID_TABLES)
    assert choices(GraphConfig, "orientation") == set(ORIENTATIONS)
    assert choices(LossConfig, "ce") == set(CE_MODES)
    assert choices(OptimConfig, "schedule") == set(SCHEDULES)
