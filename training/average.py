"""Weight averaging of checkpoints (SWA, Izmailov et al., UAI 2018) with BatchNorm statistics re-estimated.

The last few epochs of a cosine schedule sit around one minimum; their average generalises better than
any one of them. Averaged weights invalidate the BatchNorm running statistics, so they are measured
again by one pass over the training split. That pass uses the training images without augmentation,
i.e. the inputs the model gets at inference; for the default FER+ model this re-estimation alone was
worth +0.5 points on FER+ valid for a single checkpoint (docs in engines/models/MODEL_CARD.md).
"""

from __future__ import annotations

from pathlib import Path

import torch

from affectstream.training.errors import CheckpointError


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Mean of floating-point tensors; integer buffers (BatchNorm's num_batches_tracked) from the last state."""
    if not states:
        raise CheckpointError("nothing to average: no checkpoints given")
    keys = list(states[-1])
    for s in states:
        if list(s) != keys:
            raise CheckpointError("checkpoints to average come from different models (their tensors differ)")
    out = {}
    for k in keys:
        last = states[-1][k]
        out[k] = (
            torch.stack([s[k].float() for s in states]).mean(0).to(last.dtype)
            if last.is_floating_point()
            else last
        )
    return out


@torch.no_grad()
def recompute_batchnorm(model: torch.nn.Module, images_u8, mean, std, batch_size: int = 256) -> None:
    """Replace every BatchNorm layer's running statistics with their exact average over `images_u8`."""
    from affectstream.training.augment import normalize

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None = cumulative average over the pass, not an exponential one
    model.train()
    for i in range(0, len(images_u8), batch_size):
        x = normalize(torch.from_numpy(images_u8[i : i + batch_size]), mean, std)
        model(x.contiguous(memory_format=torch.channels_last))
    model.eval()


def average_checkpoints(paths: list[str | Path], out: str | Path) -> dict:
    """Average `paths` (same recipe), re-estimate BatchNorm on the training split, save `out`, evaluate it.

    Returns:
        The validation report of the averaged model (`evaluate_checkpoint`).
    """
    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import load_checkpoint, recipe_of, save_checkpoint
    from affectstream.training.data import create_dataset
    from affectstream.training.evaluate import evaluate_checkpoint

    checkpoints = [load_checkpoint(p) for p in paths]
    recipe = recipe_of(checkpoints[-1])
    model = build_model(recipe).to(memory_format=torch.channels_last)
    model.load_state_dict(average_weights([c["model"] for c in checkpoints]))
    train = create_dataset(recipe.data, recipe.data.train_split)
    recompute_batchnorm(model, train.images, recipe.data.mean, recipe.data.std)
    last = checkpoints[-1]
    best = {"epoch": last["epoch"], "averaged": [str(p) for p in paths]}
    save_checkpoint(Path(out), model, recipe, last["epoch"], last["step"], best)
    return evaluate_checkpoint(str(out))
