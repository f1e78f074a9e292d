"""Build a model from a recipe (graph files resolved here, so the model module stays file-free)."""

from __future__ import annotations

import dataclasses

from training.config import Recipe, resolve_path
from training.graph import adjacency, load_embeddings, load_rho
from training.labels import get_label_set


def build_model(recipe: Recipe):
    """An AffectModel for the recipe, with num_classes and in_chans taken from the data section."""
    from training.model import AffectModel

    label_set = get_label_set(recipe.data.label_set)
    cfg = dataclasses.replace(
        recipe.model,
        num_classes=label_set.num_classes,
        in_chans=1 if recipe.data.colour == "gray" else 3,
    )
    emb = adj = None
    if cfg.head == "mtlgcn":
        emb = load_embeddings(resolve_path(recipe.graph.embeddings), label_set.labels)
        expr_va, rho_va = load_rho(resolve_path(recipe.graph.rho), label_set.labels)
        adj = adjacency(expr_va, rho_va, recipe.graph.tau, recipe.graph.p)
    return AffectModel(cfg, emb, adj)
