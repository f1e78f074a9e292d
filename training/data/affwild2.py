"""Aff-Wild2 (ABAW) reader: per-video annotation txt files plus ``cropped_aligned`` frames.

Layout under the root::

    cropped_aligned/<video>/00001.jpg ...                      (frame i of the video is line i, 1-based)
    annotations/VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>.txt   header "valence,arousal"
    annotations/EXPR_Recognition_Challenge/{Train_Set,Validation_Set}/<video>.txt header: the 8 class names

Invalid values: VA -5, EXPR -1. A frame with either annotation is a sample; the other is masked.
Frames without an image (the cropper missed the face) are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.base import Samples, load_images
from training.errors import DataError
from training.labels import get_label_set

SPLITS = {"train": "Train_Set", "valid": "Validation_Set"}
VA_DIR = "VA_Estimation_Challenge"
EXPR_DIR = "EXPR_Recognition_Challenge"


def read_va(path: Path) -> np.ndarray:
    """[T, 2] valence, arousal per frame (NaN where -5)."""
    try:
        lines = path.read_text().split()
        if lines[0].replace(" ", "").lower() != "valence,arousal":
            raise ValueError(f"header {lines[0]!r} is not 'valence,arousal'")
        va = np.array([[float(v) for v in line.split(",")] for line in lines[1:]], np.float32).reshape(-1, 2)
    except (OSError, ValueError, IndexError) as exc:
        raise DataError(f"cannot parse Aff-Wild2 VA file {path}: {exc}") from exc
    va[np.any(va <= -5, axis=1)] = np.nan
    return va


def read_expr(path: Path) -> np.ndarray:
    """[T] class index per frame (-1 = invalid)."""
    try:
        lines = path.read_text().split()
        if len(lines[0].split(",")) != 8:
            raise ValueError(f"header {lines[0]!r} does not name 8 classes")
        return np.array([int(v) for v in lines[1:]], np.int64)
    except (OSError, ValueError, IndexError) as exc:
        raise DataError(f"cannot parse Aff-Wild2 EXPR file {path}: {exc}") from exc


def load_affwild2(root: str | Path, split: str, size: int, colour: str, frame_step: int = 1) -> Samples:
    """Load an ABAW split (VA and EXPR merged per frame), every `frame_step`-th frame."""
    if split not in SPLITS:
        raise DataError(f"unknown Aff-Wild2 split {split!r}; choose one of {sorted(SPLITS)}")
    root = Path(root)
    labels = get_label_set("affwild2_8")
    va_dir = root / "annotations" / VA_DIR / SPLITS[split]
    expr_dir = root / "annotations" / EXPR_DIR / SPLITS[split]
    videos = sorted({p.stem for d in (va_dir, expr_dir) if d.is_dir() for p in d.glob("*.txt")})
    if not videos:
        raise DataError(f"no annotation files under {va_dir} or {expr_dir}")
    paths, label, va, ids = [], [], [], []
    for video in videos:
        v = read_va(va_dir / f"{video}.txt") if (va_dir / f"{video}.txt").exists() else np.zeros((0, 2))
        e = read_expr(expr_dir / f"{video}.txt") if (expr_dir / f"{video}.txt").exists() else np.zeros(0, int)
        for i in range(0, max(len(v), len(e)), frame_step):
            frame = root / "cropped_aligned" / video / f"{i + 1:05d}.jpg"
            lab = int(e[i]) if i < len(e) else -1
            val = v[i] if i < len(v) else np.array([np.nan, np.nan])
            if (lab < 0 and np.isnan(val).any()) or not frame.exists():
                continue
            paths.append(frame)
            label.append(lab)
            va.append(val)
            ids.append(f"{video}/{i + 1:05d}")
    label_arr = np.asarray(label, np.int64)
    va_arr = np.asarray(va, np.float32).reshape(-1, 2)
    va_mask = ~np.isnan(va_arr).any(1)
    dist = np.zeros((len(label_arr), labels.num_classes), np.float32)
    dist[label_arr >= 0, label_arr[label_arr >= 0]] = 1.0
    return Samples(
        images=load_images(paths, size, colour), label=label_arr, dist=dist,
        va=np.nan_to_num(va_arr).astype(np.float32), va_mask=va_mask, label_set=labels, ids=ids,
    )
