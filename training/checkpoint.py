"""Checkpoints as plain dicts of tensors and builtins, so ``torch.load(weights_only=True)`` reads them."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from affectstream.training.config import Recipe, recipe_from_dict, recipe_to_dict
from affectstream.training.errors import CheckpointError


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    recipe: Recipe,
    epoch: int,
    step: int,
    best: dict,
    optimizer: torch.optim.Optimizer | None = None,
    elapsed: float = 0.0,
) -> None:
    """Write atomically (tmp + rename): a kill mid-write must not destroy the resume point."""
    payload = {
        "model": model.state_dict(),
        "recipe": recipe_to_dict(recipe),
        "epoch": int(epoch),
        "step": int(step),
        "elapsed": float(elapsed),
        "best": {k: float(v) if isinstance(v, float) else v for k, v in best.items()},
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or unsafe files
        raise CheckpointError(f"cannot load checkpoint {path}: {exc}") from exc


def recipe_of(checkpoint: dict) -> Recipe:
    return recipe_from_dict(checkpoint["recipe"])
