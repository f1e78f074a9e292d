"""AFEW-VA reader: per-clip folders with PNG frames and ``<clip>.json`` (valence/arousal in [-10, 10]).

The JSON holds ``frames: {"00000": {"valence", "arousal", "landmarks": [[x, y] x 68]}}``. Faces are
cropped from a square box around the landmarks, eyes levelled; labels are scaled to [-1, 1]. There is no
expression category (label -1 everywhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from affectstream.training.data.base import Samples, read_image, to_colour
from affectstream.training.data.crops import crop_box, landmark_box
from affectstream.training.errors import DataError
from affectstream.training.labels import get_label_set


def _frame(path: Path, key: object, entry: object) -> tuple[float, float, np.ndarray]:
    """One frame's valence, arousal and 68 landmarks, checked; a DataError names the file and frame."""
    where = f"{path}: frame {key!r}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object with valence, arousal, landmarks")
    values = []
    for name in ("valence", "arousal"):
        v = entry.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not -10 <= v <= 10:
            raise DataError(f"{where}: {name} must be a number in [-10, 10], found {v!r}")
        values.append(float(v))
    try:
        with np.errstate(over="ignore"):  # beyond float32's range is inf, refused below as not finite
            pts = np.asarray(entry.get("landmarks"), dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: landmarks must be 68 [x, y] pairs ({exc})") from exc
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise DataError(f"{where}: landmarks must be 68 finite [x, y] pairs, found shape {pts.shape}")
    return values[0], values[1], pts


def read_afew_va(path: str | Path) -> dict[str, tuple[float, float, np.ndarray]]:
    """A clip's JSON as {frame key: (valence, arousal, landmarks [68, 2])}, keys sorted.

    Raises:
        DataError: The file is unreadable or malformed; the message names it and the line or frame.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    frames = doc.get("frames") if isinstance(doc, dict) else None
    if not isinstance(frames, dict):
        raise DataError(f"{path}: expected an object with a `frames` object")
    return {key: _frame(path, key, frames[key]) for key in sorted(frames)}


def load_afew_va(
    root: str | Path, split: str, size: int, colour: str, label_set: str = "affectnet7"
) -> Samples:
    """Load every clip under root (AFEW-VA has no official split; `split` is recorded only)."""
    root = Path(root)
    clips = sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.json").exists())
    if not clips:
        raise DataError(f"no AFEW-VA clip folders (<clip>/<clip>.json) under {root}")
    images, va, ids = [], [], []
    for clip in clips:
        for key, (valence, arousal, pts) in read_afew_va(clip / f"{clip.name}.json").items():
            img = to_colour(read_image(clip / f"{key}.png"), colour)
            images.append(crop_box(img, landmark_box(pts), size, pts, eye_level=True))
            va.append((valence / 10.0, arousal / 10.0))
            ids.append(f"{clip.name}/{key}")
    labels = get_label_set(label_set)
    n = len(ids)
    return Samples(
        images=np.stack(images),
        label=np.full(n, -1, np.int64),
        dist=np.zeros((n, labels.num_classes), np.float32),
        va=np.asarray(va, np.float32),
        va_mask=np.ones(n, bool),
        label_set=labels,
        ids=ids,
    )
