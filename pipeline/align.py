"""Five-point face alignment and engine input preparation.

The engine's model says where the five landmarks must land in its crop (`EngineSpec.template`,
computed by training from the mean SCRFD landmarks of its training faces); a least-squares
similarity transform (rotation, uniform scale, translation) maps the detected landmarks there, so
the crops reproduce the framing the model was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engines.spec import EngineSpec


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping `src` points onto `dst` points.

    The closed form of Umeyama (1991) without reflection: for 2-D points the rotation-and-scale
    part is [[a, -b], [b, a]] with a, b from the centred point sets.

    Args:
        src: [N, 2] points (N >= 2).
        dst: [N, 2] target points.

    Returns:
        [2, 3] float64 affine matrix M with dst ~= M @ [x, y, 1].

    Raises:
        ValueError: The shapes differ, points are not finite, or `src` points all coincide.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need two [N>=2, 2] point sets, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks contain NaN or infinity")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    norm = float((s * s).sum())
    if norm < 1e-12:
        raise ValueError("landmarks all coincide; no transform maps them onto the template")
    a = float((s * d).sum()) / norm
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm
    rot = np.array([[a, -b], [b, a]])
    return np.hstack((rot, (dst_mean - rot @ src_mean)[:, None]))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine matrix to [N, 2] points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray, spec: EngineSpec) -> np.ndarray:
    """Crop one face so that its landmarks land on the model's template.

    Args:
        image_bgr: H x W x 3 uint8 frame, BGR.
        landmarks: [5, 2] landmarks in frame pixels (insightface order).
        spec: The engine's spec: crop size (H, W), colour and template.

    Returns:
        The crop, uint8: H x W x 3 RGB when `spec.colour` is "rgb", H x W gray (BT.601) when "gray".

    Raises:
        ValueError: The image or the landmarks have the wrong shape, or the landmarks are degenerate.
    """
    import cv2

    if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 \
            or image_bgr.shape[2] != 3:
        got = f"{image_bgr.dtype} {image_bgr.shape}" if isinstance(image_bgr, np.ndarray) else type(image_bgr)
        raise ValueError(f"align_face needs an H x W x 3 uint8 BGR image, got {got}")
    landmarks = np.asarray(landmarks)
    if landmarks.shape != (5, 2):
        raise ValueError(f"align_face needs [5, 2] landmarks, got shape {landmarks.shape}")
    height, width = spec.input_size
    matrix = similarity_transform(landmarks, np.asarray(spec.template))
    # Replicate the border: training crops (FER+) never show black bands, a face at a frame edge would.
    crop = cv2.warpAffine(image_bgr, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    code = cv2.COLOR_BGR2GRAY if spec.colour == "gray" else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(crop, code)


def to_input(crops: Sequence[np.ndarray] | np.ndarray, spec: EngineSpec, out: np.ndarray | None = None) -> np.ndarray:
    """Normalised engine input from aligned crops: (x / 255 - mean) / std per channel.

    Args:
        crops: Crops from `align_face` (a list, or an array [N, H, W, C] / [N, H, W] for gray).
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
        raise ValueError(f"out buffer {out.dtype} {out.shape} cannot hold {count} x {channels}x{height}x{width} float32")
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
