"""Evaluation exactly as the pipeline feeds the model: resize-free crops, no test-time augmentation."""

from __future__ import annotations

import numpy as np
import torch

from training.augment import normalize
from training.config import Recipe
from training.data.base import Samples
from training.metrics import classification_report, va_report


@torch.no_grad()
def predict(model, samples: Samples, recipe: Recipe, device=None, batch_size: int = 256):
    """Softmax probabilities [N, C] and valence/arousal [N, 2] (None without a VA head)."""
    device = device or torch.device("cpu")
    model.eval()
    probs, vas = [], []
    for i in range(0, len(samples), batch_size):
        x = normalize(torch.from_numpy(samples.images[i : i + batch_size]), recipe.data.mean, recipe.data.std)
        logits, va = model(x.to(device).contiguous(memory_format=torch.channels_last))
        probs.append(torch.softmax(logits, 1).cpu().numpy())
        if va is not None:
            vas.append(va.clamp(-1, 1).cpu().numpy())
    probs = np.concatenate(probs) if probs else np.zeros((0, samples.label_set.num_classes))
    return probs, (np.concatenate(vas) if vas else None)


def evaluate_samples(model, samples: Samples, recipe: Recipe, device=None) -> dict:
    """Classification report on samples with a category, VA report on samples with VA."""
    probs, va = predict(model, samples, recipe, device)
    has = samples.label >= 0
    report = classification_report(samples.label[has], probs[has].argmax(1), samples.label_set.labels)
    if va is not None and samples.va_mask.any():
        report["va"] = va_report(va[samples.va_mask], samples.va[samples.va_mask])
    return report
