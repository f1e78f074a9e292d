"""Recompute a label graph's Spearman statistics from a recipe's training labels.

``python -m training.graphstats -c <recipe> -o configs/graph/<name>_rho.json`` uses the samples that have
both a category and valence/arousal (for FER+: the weak, category-derived VA targets).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from affectstream.training.errors import DataError
from affectstream.training.graph import spearman_rho


def rho_from_samples(samples) -> dict:
    """The rho file payload (``expr_va`` per class name, ``va``) from Samples."""
    both = (samples.label >= 0) & samples.va_mask
    if both.sum() < 3:
        raise DataError("fewer than 3 samples carry both a category and valence/arousal")
    onehot = np.eye(samples.label_set.num_classes)[samples.label[both]]
    rho = spearman_rho(onehot, samples.va[both])
    return {
        "expr_va": {
            name: [round(float(v), 3) for v in row]
            for name, row in zip(samples.label_set.labels, rho["expr_va"], strict=True)
        },
        "va": round(float(rho["va"]), 3),
        "samples": int(both.sum()),
    }


def main(argv: list[str] | None = None) -> None:
    from affectstream.training.config import load_recipe
    from affectstream.training.data import create_dataset

    p = argparse.ArgumentParser(prog="python -m training.graphstats")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args(argv)
    recipe = load_recipe(args.config)
    payload = rho_from_samples(create_dataset(recipe.data, recipe.data.train_split))
    payload["source"] = f"Spearman rho over the {recipe.data.train_split} labels of {args.config}"
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps(payload))


if __name__ == "__main__":
    main()
