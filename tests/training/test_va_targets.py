"""Weak valence/arousal targets: the centroid tables and the derivation of the permitted one."""

from __future__ import annotations

import json

import pytest

from affectstream.training.errors import ConfigError
from affectstream.training.labels import VA_CENTROID_TABLES, get_label_set, va_centroid_matrix
from affectstream.training.va_targets import AFFECTNET7_TRAIN_COUNTS, consistency, rank_centroids
from tests.training.conftest import REPO


def _paper_rho() -> dict[str, tuple[float, float]]:
    raw = json.loads((REPO / "configs/graph/affectnet_paper_rho.json").read_text())["expr_va"]
    return {k: tuple(v) for k, v in raw.items()}


def test_affectnet_rank_table_is_derived_from_the_paper_figures():
    rho = _paper_rho()
    derived = rank_centroids(rho, AFFECTNET7_TRAIN_COUNTS)
    table = VA_CENTROID_TABLES["affectnet_rank"]
    for name, (v, a) in derived.items():
        assert table[name] == pytest.approx((v, a), abs=6e-4)
        assert -1.0 <= v <= 1.0 and -1.0 <= a <= 1.0
    assert table["Contempt"] == (0.0, 0.0)  # no published figure: the scale's midpoint
    # The rho were computed over exactly these 7 classes with these counts (up to 3-decimal rounding).
    assert all(abs(c) < 1e-3 for c in consistency(rho, AFFECTNET7_TRAIN_COUNTS))


def test_every_table_covers_ferplus_and_unknown_tables_are_refused():
    labels = get_label_set("ferplus8")
    for name in VA_CENTROID_TABLES:
        assert len(va_centroid_matrix(labels, name)) == 8
    with pytest.raises(ConfigError, match="data.va_centroids"):
        va_centroid_matrix(labels, "anew")
    with pytest.raises(ConfigError, match="Other"):
        va_centroid_matrix(get_label_set("affwild2_8"), "affectnet_rank")


def test_recipes_name_their_table(monkeypatch):
    from affectstream.training.config import load_recipe

    assert load_recipe(REPO / "configs/model/ferplus_mtlgcn.yaml").data.va_centroids == "affectnet_rank"
    assert load_recipe(REPO / "configs/model/ferplus_ablation.yaml").data.va_centroids == "affectnet_rank"
    # the table whose source forbids use by others is gone, and a recipe naming it says so
    assert "affectnetc25" not in VA_CENTROID_TABLES
    with pytest.raises(ConfigError, match="va_centroids"):
        from affectstream.training.config import recipe_from_dict

        recipe_from_dict({"data": {"va_centroids": "affectnetc25"}})
