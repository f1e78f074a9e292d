"""AffectNet reader: ``training.csv`` / ``validation.csv`` plus the image folders.

Columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression,
valence, arousal``; landmarks are 136 ``;``-separated numbers (x1;y1;...); expression codes 0-10 (kept:
0-6 for AffectNet-7, 0-7 for AffectNet-8); valence/arousal -2 means missing.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from affectstream.training.data.base import Samples, read_image, to_colour
from affectstream.training.data.crops import crop_box
from affectstream.training.errors import DataError
from affectstream.training.labels import get_label_set

SPLITS = {"train": "training.csv", "valid": "validation.csv"}
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated_compressed", "images")


def read_rows(csv_path: Path, num_classes: int) -> list[dict]:
    """Rows whose expression code is a kept class (0..num_classes-1)."""
    rows = []
    try:
        with csv_path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                expr = int(row["expression"])
                if not 0 <= expr < num_classes:
                    continue
                pts = [float(v) for v in row["facial_landmarks"].split(";") if v.strip()]
                rows.append(
                    {
                        "path": row["subDirectory_filePath"],
                        "box": tuple(
                            float(row[k]) for k in ("face_x", "face_y", "face_width", "face_height")
                        ),
                        "landmarks": np.asarray(pts, np.float32).reshape(-1, 2),
                        "expression": expr,
                        "va": (float(row["valence"]), float(row["arousal"])),
                    }
                )
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"cannot parse AffectNet annotations {csv_path}: {exc}") from exc
    return rows


def image_dir(root: Path) -> Path:
    for name in IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    return root


def load_affectnet(
    root: str | Path,
    split: str,
    size: int,
    colour: str,
    label_set: str = "affectnet7",
    eye_level: bool = False,
) -> Samples:
    """Load an AffectNet split: face-box crops at `size`, one-hot targets, VA where not -2."""
    if split not in SPLITS:
        raise DataError(f"unknown AffectNet split {split!r}; choose one of {sorted(SPLITS)}")
    root = Path(root)
    labels = get_label_set(label_set)
    rows = read_rows(root / SPLITS[split], labels.num_classes)
    images_root = image_dir(root)
    channels = 1 if colour == "gray" else 3
    images = np.empty((len(rows), size, size, channels), np.uint8)

    def one(i: int) -> None:
        r = rows[i]
        img = to_colour(read_image(images_root / r["path"]), colour)
        # pivot "eyes": rotated about the eye midpoint as the authors' loader does (their FaceAligner)
        images[i] = crop_box(img, r["box"], size, r["landmarks"], eye_level, pivot="eyes")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(len(rows))))
    label = np.array([r["expression"] for r in rows], np.int64)
    va = np.array([r["va"] for r in rows], np.float32).reshape(-1, 2)
    va_mask = np.all(va > -1.5, axis=1)  # -2 marks a missing rating; real ratings lie in [-1, 1]
    return Samples(
        images=images,
        label=label,
        dist=np.eye(labels.num_classes, dtype=np.float32)[label],
        va=np.where(va_mask[:, None], va, 0.0).astype(np.float32),
        va_mask=va_mask,
        label_set=labels,
        ids=[r["path"] for r in rows],
    )
