"""Face crops from boxes or 68-point landmarks, optionally rotated so the eyes are level."""

from __future__ import annotations

import numpy as np

LEFT_EYE = slice(36, 42)  # iBUG 68-point indices of the two eye contours
RIGHT_EYE = slice(42, 48)


def crop_box(img: np.ndarray, box: tuple[float, float, float, float], size: int,
             landmarks: np.ndarray | None = None, eye_level: bool = False) -> np.ndarray:
    """Crop (x, y, w, h) to size x size; with eye_level, rotate about the box centre first.

    Args:
        img: HxWxC image.
        box: Face box (x, y, w, h) in image pixels.
        size: Output side.
        landmarks: [68, 2] points; needed for eye_level.
        eye_level: Rotate so the line between the eye centres is horizontal.
    """
    import cv2

    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    angle = 0.0
    if eye_level and landmarks is not None and len(landmarks) >= 48:
        le, re = landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)
        angle = float(np.degrees(np.arctan2(re[1] - le[1], re[0] - le[0])))
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / max(w, h))
    # Shift the box centre to the crop centre after rotation and scaling.
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out if out.ndim == 3 else out[..., None]


def landmark_box(landmarks: np.ndarray, margin: float = 1.25) -> tuple[float, float, float, float]:
    """A square box around the landmarks, enlarged by `margin`."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    c = (lo + hi) / 2
    side = float((hi - lo).max()) * margin
    return float(c[0] - side / 2), float(c[1] - side / 2), side, side
