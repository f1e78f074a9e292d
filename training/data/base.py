"""In-memory samples shared by all readers: uint8 images plus per-sample (possibly missing) targets."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstream.training.errors import DataError
from affectstream.training.labels import LabelSet


@dataclass
class Samples:
    """A dataset split held in RAM.

    Attributes:
        images: [N, H, W, C] uint8 crops at the model input size, in the model colour.
        label: [N] class index, -1 where the category is missing.
        dist: [N, C] target distribution (one-hot, or annotator votes); all-zero where missing.
        va: [N, 2] valence, arousal in [-1, 1]; meaningful only where va_mask.
        va_mask: [N] whether valence/arousal is known.
        label_set: The class names.
        ids: Sample identifiers (file names), for error messages and reports.
    """

    images: np.ndarray
    label: np.ndarray
    dist: np.ndarray
    va: np.ndarray
    va_mask: np.ndarray
    label_set: LabelSet
    ids: list[str]

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, idx: np.ndarray) -> Samples:
        return Samples(
            self.images[idx],
            self.label[idx],
            self.dist[idx],
            self.va[idx],
            self.va_mask[idx],
            self.label_set,
            [self.ids[i] for i in idx],
        )


def to_colour(img_bgr: np.ndarray, colour: str) -> np.ndarray:
    """BGR or grey uint8 image -> HxWxC in the model colour (grey = BT.601 luma, like cv2 BGR2GRAY)."""
    import cv2

    if img_bgr.ndim == 2:
        img_bgr = cv2.cvtColor(img_bgr, cv2.COLOR_GRAY2BGR)
    if colour == "gray":
        return cv2.cvtColor(img_bgr, cv2.COLOR_BGR2GRAY)[..., None]
    return cv2.cvtColor(img_bgr, cv2.COLOR_BGR2RGB)


def resize_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Resize an HxWxC uint8 crop to size x size (bilinear up, area-averaged down so it does not alias)."""
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img
    shrink = max(img.shape[0], img.shape[1]) > size
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out if out.ndim == 3 else out[..., None]


def read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path}")
    return img


def load_images(paths: Sequence[Path], size: int, colour: str) -> np.ndarray:
    """Read, convert and resize many image files into one [N, size, size, C] uint8 array."""
    channels = 1 if colour == "gray" else 3
    out = np.empty((len(paths), size, size, channels), np.uint8)

    def one(i: int) -> None:
        out[i] = resize_crop(to_colour(read_image(paths[i]), colour), size)

    # cv2 releases the GIL while decoding, so a couple of threads halve the load time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(len(paths))))
    return out
