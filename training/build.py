"""Build a model from a recipe (graph files resolved here, so the model module stays file-free)."""

from __future__ import annotations

import dataclasses

from affectstream.training.config import Recipe, resolve_path
from affectstream.training.graph import adjacency, load_embeddings, load_rho, propagation_matrix
from affectstream.training.labels import get_label_set


def build_model(recipe: Recipe, pretrained: bool = False):
    """An AffectModel for the recipe, with num_classes and in_chans taken from the data section.

    ``pretrained`` loads ``model.pretrained_file`` into the backbone: training asks for it when it starts
    a run; evaluation, export and resume rebuild the model without it (their weights come from a checkpoint,
    and the weights file need not exist on that machine).
    """
    from affectstream.training.model import AffectModel

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
        g = recipe.graph
        adj = propagation_matrix(adjacency(expr_va, rho_va, g.tau, g.p), g.orientation)
    pretrained_file = ""
    if pretrained and cfg.pretrained_file:
        pretrained_file = str(resolve_path(cfg.pretrained_file))
    return AffectModel(cfg, emb, adj, pretrained_file=pretrained_file)
