"""AFEW-VA reader: per-clip folders with PNG frames and ``<clip>.json`` (valence/arousal in [-10, 10]).

The JSON holds ``frames: {"00000": {"valence", "arousal", "landmarks": [[x, y] x 68]}}``. Faces are
cropped from a square box around the landmarks, eyes levelled; labels are scaled to [-1, 1]. There is no
expression category (label -1 everywhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data.base import Samples, read_image, to_colour
from training.data.crops import crop_box, landmark_box
from training.errors import DataError
from training.labels import get_label_set


def load_afew_va(root: str | Path, split: str, size: int, colour: str, label_set: str = "affectnet7") -> Samples:
    """Load every clip under root (AFEW-VA has no official split; `split` is recorded only)."""
    root = Path(root)
    clips = sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.json").exists())
    if not clips:
        raise DataError(f"no AFEW-VA clip folders (<clip>/<clip>.json) under {root}")
    images, va, ids = [], [], []
    for clip in clips:
        try:
            frames = json.loads((clip / f"{clip.name}.json").read_text())["frames"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"cannot parse {clip / (clip.name + '.json')}: {exc}") from exc
        for key in sorted(frames):
            entry = frames[key]
            pts = np.asarray(entry["landmarks"], np.float32)
            img = to_colour(read_image(clip / f"{key}.png"), colour)
            images.append(crop_box(img, landmark_box(pts), size, pts, eye_level=True))
            va.append((entry["valence"] / 10.0, entry["arousal"] / 10.0))
            ids.append(f"{clip.name}/{key}")
    labels = get_label_set(label_set)
    n = len(ids)
    return Samples(
        images=np.stack(images), label=np.full(n, -1, np.int64),
        dist=np.zeros((n, labels.num_classes), np.float32), va=np.asarray(va, np.float32),
        va_mask=np.ones(n, bool), label_set=labels, ids=ids,
    )
