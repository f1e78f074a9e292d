"""Self-distillation from an ensemble of our own runs.

A teacher is the mean, over K checkpoints, of each one's softmax probabilities on a split, every image
averaged with its mirror image (as ``export.flip_average`` does at inference) and without augmentation.
``python -m training teacher`` writes it as an .npz; a recipe with ``data.teacher`` and
``loss.distill_weight`` w > 0 then trains against the soft target (1 - w) * votes + w * teacher.

The file carries a fingerprint of the split it was made for (number of samples, class names and a hash
of the label and vote arrays): its rows are aligned with the training samples by index, so a teacher for
another split, label set, ``data.limit`` or dataset version is refused instead of silently misaligned.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectstream.training.data.base import Samples
from affectstream.training.errors import ConfigError

FORMAT = 1


def fingerprint(samples: Samples) -> dict:
    """Number of samples, class names and a SHA-256 of the class names, labels and vote distributions."""
    h = hashlib.sha256()
    h.update("\n".join(samples.label_set.labels).encode())
    h.update(np.ascontiguousarray(samples.label, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(samples.dist, dtype=np.float32).tobytes())
    return {"n": len(samples), "labels": tuple(samples.label_set.labels), "digest": h.hexdigest()}


def member_probs(
    checkpoints: Sequence[str | Path], recipe_data, split: str, device: str = "auto", batch_size: int = 256
) -> tuple[list[np.ndarray], Samples]:
    """Each checkpoint's mirror-averaged softmax probabilities [N, C] on `split` of `recipe_data`.

    Each model is rebuilt from the recipe inside its checkpoint and sees the images at its own input size,
    colour and normalisation; the samples (which images, in which order) come from `recipe_data` (a
    DataConfig). Returns the list of probability arrays and the samples at `recipe_data`'s own size.
    """
    import torch

    from affectstream.training.augment import normalize
    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import load_checkpoint, recipe_of
    from affectstream.training.data import create_dataset
    from affectstream.training.model import InferenceModel

    if not checkpoints:
        raise ConfigError("a teacher needs at least one checkpoint")
    # training.train's pick_device, not imported: train imports this module (no import cycles)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    loaded: dict[tuple[int, str], Samples] = {}

    def images_for(size: int, colour: str) -> Samples:
        key = (size, colour)
        if key not in loaded:
            loaded[key] = create_dataset(
                dataclasses.replace(recipe_data, input_size=size, colour=colour), split
            )
        return loaded[key]

    samples = images_for(recipe_data.input_size, recipe_data.colour)
    out = []
    for path in checkpoints:
        ck = load_checkpoint(path)
        recipe = recipe_of(ck)
        if recipe.data.label_set != recipe_data.label_set:
            raise ConfigError(
                f"checkpoint {path} predicts {recipe.data.label_set} classes; the data has "
                f"{recipe_data.label_set} (data.label_set)"
            )
        model = build_model(recipe)
        model.load_state_dict(ck["model"])
        module = InferenceModel(model, flip_average=True).to(dev).eval()
        data = images_for(recipe.data.input_size, recipe.data.colour)
        probs = []
        with torch.no_grad():
            for i in range(0, len(data), batch_size):
                x = normalize(
                    torch.from_numpy(data.images[i : i + batch_size]), recipe.data.mean, recipe.data.std
                )
                probs.append(module(x.to(dev))[0].float().cpu().numpy())
        n_classes = samples.label_set.num_classes
        out.append(np.concatenate(probs) if probs else np.zeros((0, n_classes), np.float32))
    return out, samples


def teacher_probs(
    checkpoints: Sequence[str | Path], recipe_data, split: str, device: str = "auto"
) -> np.ndarray:
    """The ensemble teacher: mirror-averaged softmax probabilities [N, C] averaged over the checkpoints."""
    members, _ = member_probs(checkpoints, recipe_data, split, device)
    return np.mean(members, axis=0).astype(np.float32)


def write_teacher(path: str | Path, probs: np.ndarray, samples: Samples, source: str = "") -> None:
    """Store `probs` [N, C] for `samples` with the split's fingerprint; `source` is a note (which split)."""
    probs = np.asarray(probs, np.float32)
    fp = fingerprint(samples)
    if probs.shape != (fp["n"], len(fp["labels"])):
        raise ConfigError(
            f"teacher probabilities have shape {probs.shape}; the samples need ({fp['n']}, {len(fp['labels'])})"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:  # np.savez would append .npz to a name without it
        np.savez(
            fh,
            format=np.int64(FORMAT),
            probs=probs,
            n=np.int64(fp["n"]),
            labels=np.asarray(fp["labels"]),
            digest=np.asarray(fp["digest"]),
            source=np.asarray(source),
        )


def load_teacher(path: str | Path, samples: Samples) -> np.ndarray:
    """The teacher's probabilities [N, C], refused (ConfigError) unless made for exactly `samples`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data.teacher: {path} does not exist; make it with `python -m training teacher`")
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = {k: z[k] for k in ("format", "probs", "n", "labels", "digest", "source")}
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"data.teacher: cannot read {path} as a teacher file: {exc}") from exc
    made_for = f" (made for {stored['source']})" if str(stored["source"]) else ""
    fp = fingerprint(samples)
    labels = tuple(str(v) for v in stored["labels"])
    if labels != fp["labels"]:
        raise ConfigError(
            f"data.teacher: {path}{made_for} has the classes {list(labels)}; the training data has "
            f"{list(fp['labels'])} (another label set)"
        )
    if int(stored["n"]) != fp["n"]:
        raise ConfigError(
            f"data.teacher: {path}{made_for} has {int(stored['n'])} samples; the training split has "
            f"{fp['n']} (another split, data.limit or dataset version)"
        )
    if str(stored["digest"]) != fp["digest"]:
        raise ConfigError(
            f"data.teacher: {path}{made_for} was made for other labels or votes than the training split's "
            "(same size, but another split or dataset version)"
        )
    probs = np.asarray(stored["probs"], np.float32)
    if probs.shape != (fp["n"], len(fp["labels"])):
        raise ConfigError(
            f"data.teacher: {path} holds probabilities of shape {probs.shape}, not {(fp['n'], len(labels))}"
        )
    return probs


def mix_targets(votes: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * votes + weight * teacher, row by row."""
    return ((1.0 - weight) * votes + weight * teacher).astype(np.float32)


def distill_targets(samples: Samples, recipe) -> Samples:
    """`samples` with their soft targets mixed with the recipe's teacher (unchanged when distillation is off)."""
    weight = recipe.loss.distill_weight
    if weight <= 0:
        return samples
    from affectstream.training.config import resolve_path

    path = resolve_path(recipe.data.teacher)
    teacher = load_teacher(path, samples)
    print(f"distilling from {path} (loss.distill_weight {weight})", flush=True)
    return dataclasses.replace(samples, dist=mix_targets(samples.dist, teacher, weight))
