"""Calibration data for INT8 builds: a folder of face crops, preprocessed as the runtime preprocesses faces.

No TensorRT import here, so the data path is testable (and checkable with `load_crops`) on any machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from affectstream.engines.errors import EngineBuildError
from affectstream.engines.preprocess import resize_crop, to_input
from affectstream.engines.spec import EngineSpec

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def load_crops(folder: str | Path, spec: EngineSpec, limit: int = 512) -> np.ndarray:
    """Face crops from a folder (images or .npy batches), preprocessed exactly as the runtime does.

    Images are resized to the model's input size and converted to its colour (`resize_crop`), then
    normalised by `to_input`, the runtime's own step; `.npy` files must already be float32
    [N, C, H, W] in that form.

    Raises:
        EngineBuildError: The folder is missing or holds no usable crops.
    """
    import cv2  # lazy: only INT8 builds read images

    folder = Path(folder)
    if not folder.is_dir():
        raise EngineBuildError(f"calibration folder {folder} does not exist (engine.calibration_dir)")
    h, w = spec.input_size
    batches: list[np.ndarray] = []
    count = 0
    for path in sorted(folder.rglob("*")):
        if count >= limit:
            break
        suffix = path.suffix.lower()
        if suffix == ".npy":
            arr = np.load(path).astype(np.float32)
            if arr.ndim != 4 or arr.shape[1:] != (spec.channels, h, w):
                raise EngineBuildError(
                    f"{path}: expected [N, {spec.channels}, {h}, {w}], got {list(arr.shape)}"
                )
        elif suffix in IMAGE_SUFFIXES:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("calibration: cannot read %s, skipped", path)
                continue
            arr = to_input([resize_crop(img, spec)], spec)
        else:
            continue
        batches.append(arr)
        count += len(arr)
    if not batches:
        raise EngineBuildError(
            f"calibration folder {folder} has no face crops ({', '.join(IMAGE_SUFFIXES)} or .npy)"
        )
    return np.ascontiguousarray(np.concatenate(batches)[:limit])
