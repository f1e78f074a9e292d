"""What `EngineSpec` says about a model's input, done to images: colour, size, normalisation, NCHW.

The runtime (after `pipeline.frames.align` has cropped a face onto the spec's template) and INT8 calibration
both feed models through here, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affectstream.engines.spec import EngineSpec


def to_colour(image_bgr: np.ndarray, spec: EngineSpec) -> np.ndarray:
    """A BGR uint8 image in the spec's colour: H x W x 3 RGB for "rgb", H x W gray (BT.601) for "gray"."""
    import cv2  # lazy: `import engines` stays light

    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY if spec.colour == "gray" else cv2.COLOR_BGR2RGB)


def resize_crop(image_bgr: np.ndarray, spec: EngineSpec) -> np.ndarray:
    """A BGR image of an already framed face, resized to the spec's input size and in its colour."""
    import cv2

    height, width = spec.input_size
    return to_colour(cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA), spec)


def to_input(
    crops: Sequence[np.ndarray] | np.ndarray, spec: EngineSpec, out: np.ndarray | None = None
) -> np.ndarray:
    """Normalised engine input from aligned crops: (x / 255 - mean) / std per channel.

    Args:
        crops: uint8 crops in the spec's size and colour (`pipeline.frames.align.align_face`, `resize_crop`): a
            list, or an array [N, H, W, C] / [N, H, W] for gray.
        spec: The engine's spec.
        out: Optional float32 [>=N, C, H, W] buffer to write into (its first N rows are returned).

    Returns:
        float32 [N, C, H, W].

    Raises:
        ValueError: A crop's shape or dtype does not match the spec.
    """
    height, width = spec.input_size
    channels = spec.channels
    count = len(crops)
    if out is None:
        out = np.empty((count, channels, height, width), dtype=np.float32)
    elif out.dtype != np.float32 or out.shape[1:] != (channels, height, width) or len(out) < count:
        raise ValueError(
            f"out buffer {out.dtype} {out.shape} cannot hold {count} x {channels}x{height}x{width} float32"
        )
    out = out[:count]
    std = np.asarray(spec.std, dtype=np.float32)
    # (x / 255 - mean) / std == x * scale + bias: one multiply straight from uint8, one add.
    scale = (1.0 / (255.0 * std)).reshape(1, channels, 1, 1)
    bias = (-np.asarray(spec.mean, dtype=np.float32) / std).reshape(1, channels, 1, 1)
    expected = (height, width) if channels == 1 else (height, width, 3)
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8 or crop.shape != expected:
            raise ValueError(f"crop {i} is {crop.dtype} {crop.shape}; the spec needs uint8 {expected}")
        np.multiply(crop[None] if channels == 1 else crop.transpose(2, 0, 1), scale[0], out=out[i])
    out += bias
    return out
