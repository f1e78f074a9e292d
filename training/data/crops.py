"""Face crops from boxes or 68-point landmarks, optionally rotated so the eyes are level."""

from __future__ import annotations

import numpy as np

LEFT_EYE = slice(36, 42)  # iBUG 68-point indices of the two eye contours
RIGHT_EYE = slice(42, 48)
PIVOTS = ("centre", "eyes")


def crop_box(
    img: np.ndarray,
    box: tuple[float, float, float, float],
    size: int,
    landmarks: np.ndarray | None = None,
    eye_level: bool = False,
    pivot: str = "centre",
) -> np.ndarray:
    """Crop (x, y, w, h) to size x size, optionally eye-levelled; downscaling is antialiased.

    Args:
        img: HxWxC image.
        box: Face box (x, y, w, h) in image pixels.
        size: Output side.
        landmarks: [68, 2] points; needed for eye_level.
        eye_level: Rotate so the line between the eye centres is horizontal.
        pivot: "centre" rotates about the box centre and keeps the face centred. "eyes" is the authors'
            AffectNet loader: the whole image turns about the eye midpoint and the box keeps its size at its
            rotated top-left corner.
    """
    import cv2

    if pivot not in PIVOTS:
        raise ValueError(f"pivot {pivot!r} is not one of {PIVOTS}")
    x, y, w, h = box
    scale = size / max(w, h)
    if scale < 1.0:
        # A warp samples 4 source pixels per output pixel whatever the scale, so a large face would alias;
        # area-average it down first (what PIL's and torchvision's antialiased Resize do), then warp at ~1:1.
        small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sy, sx = small.shape[0] / img.shape[0], small.shape[1] / img.shape[1]
        img = small if small.ndim == 3 else small[..., None]
        x, y, w, h = x * sx, y * sy, w * sx, h * sy
        landmarks = None if landmarks is None else landmarks * np.array([sx, sy], np.float32)
        scale = size / max(w, h)
    cx, cy = x + w / 2, y + h / 2
    angle, centre = 0.0, (cx, cy)
    if eye_level and landmarks is not None and len(landmarks) >= 48:
        le, re = landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)
        angle = float(np.degrees(np.arctan2(re[1] - le[1], re[0] - le[0])))
        if pivot == "eyes":
            centre = (float(le[0] + re[0]) / 2, float(le[1] + re[1]) / 2)
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    if pivot == "eyes":
        # The box's top-left corner goes where the rotation takes it; the crop centre follows it.
        cx, cy = rot @ np.array([x, y, 1.0]) + np.array([w / 2, h / 2])
    else:
        cx, cy = rot @ np.array([cx, cy, 1.0])
    # Rotate, scale about the crop centre, and move that centre to the middle of the output.
    m = rot * scale
    m[:, 2] = rot[:, 2] * scale + np.array([size / 2 - cx * scale, size / 2 - cy * scale])
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out if out.ndim == 3 else out[..., None]


def landmark_box(landmarks: np.ndarray, margin: float = 1.25) -> tuple[float, float, float, float]:
    """A square box around the landmarks, enlarged by `margin`."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    c = (lo + hi) / 2
    side = float((hi - lo).max()) * margin
    return float(c[0] - side / 2), float(c[1] - side / 2), side, side
