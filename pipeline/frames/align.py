"""Five-point face alignment: the crop an engine's model expects, from a frame and detected landmarks.

The engine's model says where the five landmarks must land in its crop (`EngineSpec.template`,
computed by training from the mean SCRFD landmarks of its training faces); a least-squares
similarity transform (rotation, uniform scale, translation) maps the detected landmarks there, so
the crops reproduce the framing the model was trained on. The crop's colour, and the tensor made from
crops (`engines.preprocess.to_input`), are the engine's side of the contract.
"""

from __future__ import annotations

import numpy as np

from affectstream.engines.preprocess import to_colour
from affectstream.engines.spec import EngineSpec


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

    if (
        not isinstance(image_bgr, np.ndarray)
        or image_bgr.dtype != np.uint8
        or image_bgr.ndim != 3
        or image_bgr.shape[2] != 3
    ):
        got = f"{image_bgr.dtype} {image_bgr.shape}" if isinstance(image_bgr, np.ndarray) else type(image_bgr)
        raise ValueError(f"align_face needs an H x W x 3 uint8 BGR image, got {got}")
    landmarks = np.asarray(landmarks)
    if landmarks.shape != (5, 2):
        raise ValueError(f"align_face needs [5, 2] landmarks, got shape {landmarks.shape}")
    height, width = spec.input_size
    matrix = similarity_transform(landmarks, np.asarray(spec.template))
    # Replicate the border: training crops (FER+) never show black bands, a face at a frame edge would.
    crop = cv2.warpAffine(
        image_bgr, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return to_colour(crop, spec)
