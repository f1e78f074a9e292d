"""FER+ reader: 48x48 grey FER2013 images with 10-annotator vote distributions (FER+ labels).

``label.csv`` rows: ``name,"(x, y, w, h)",neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,
unknown,NF``. Targets are the vote distribution over the 8 emotions; the majority label is the
argmax over all 10 columns, and images whose majority is unknown or not-a-face are dropped.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from affectstream.training.data.base import Samples, load_images
from affectstream.training.errors import DataError
from affectstream.training.labels import get_label_set, va_centroid_matrix

SPLITS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}


def read_votes(label_csv: Path) -> tuple[list[str], np.ndarray]:
    """Image names and [N, 10] vote counts from one FER+ ``label.csv``."""
    names, votes = [], []
    try:
        with label_csv.open(newline="") as fh:
            for row in csv.reader(fh):
                if not row:
                    continue
                names.append(row[0])
                votes.append([float(v) for v in row[2:12]])
    except (OSError, ValueError, IndexError) as exc:
        raise DataError(f"cannot parse FER+ labels {label_csv}: {exc}") from exc
    return names, np.asarray(votes, dtype=np.float32).reshape(-1, 10)


def vote_targets(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep mask, majority labels and 8-emotion distributions from [N, 10] votes."""
    majority = votes.argmax(1)
    emotion = votes[:, :8]
    keep = (majority < 8) & (emotion.sum(1) > 0)
    dist = emotion / np.maximum(emotion.sum(1, keepdims=True), 1e-6)
    return keep, majority, dist.astype(np.float32)


def load_ferplus(
    root: str | Path,
    split: str,
    size: int,
    colour: str,
    weak_va: bool = True,
    va_centroids: str = "affectnet_rank",
) -> Samples:
    """Load one FER+ split into RAM.

    Args:
        root: The ``ferplus`` folder (holding ``FER2013Train`` etc.).
        split: "train", "valid" or "test".
        size: Output crop side in pixels (images are resized from 48).
        colour: "gray" or "rgb".
        weak_va: Derive valence/arousal targets as vote distribution x class centroids.
        va_centroids: Which centroid table (training.labels.VA_CENTROID_TABLES).
    """
    if split not in SPLITS:
        raise DataError(f"unknown FER+ split {split!r}; choose one of {sorted(SPLITS)}")
    folder = Path(root) / SPLITS[split]
    names, votes = read_votes(folder / "label.csv")
    keep, majority, dist = vote_targets(votes)
    names = [n for n, k in zip(names, keep, strict=True) if k]
    label_set = get_label_set("ferplus8")
    dist = dist[keep]
    va = np.zeros((len(names), 2), np.float32)
    va_mask = np.zeros(len(names), bool)
    if weak_va:
        va = dist @ np.asarray(va_centroid_matrix(label_set, va_centroids), np.float32)
        va_mask[:] = True
    images = load_images([folder / n for n in names], size, colour)
    return Samples(
        images=images,
        label=majority[keep].astype(np.int64),
        dist=dist,
        va=va.astype(np.float32),
        va_mask=va_mask,
        label_set=label_set,
        ids=names,
    )
