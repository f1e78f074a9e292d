"""Faces drawn on a frame: box, track, expression, landmarks, valence and arousal bars (OpenCV, BGR).

Used by `consumers.render` (annotated videos) and `runtime.snapshots` (the dashboard's pictures).
"""

from __future__ import annotations

import zlib

import numpy as np

from affectstream.pipeline.types import FaceResult

EXPR_COLOURS = {
    "neutral": (200, 200, 200),
    "happy": (60, 200, 60),
    "surprise": (0, 215, 255),
    "sad": (200, 120, 40),
    "anger": (40, 40, 230),
    "disgust": (40, 140, 90),
    "fear": (180, 60, 180),
    "contempt": (90, 90, 160),
    "other": (150, 150, 150),
}


def expr_colour(label: str) -> tuple[int, int, int]:
    known = EXPR_COLOURS.get(label.lower())
    if known:
        return known
    h = zlib.crc32(label.encode())
    return (80 + h % 150, 80 + (h >> 8) % 150, 80 + (h >> 16) % 150)


def draw_bar(img: np.ndarray, x: int, y: int, w: int, value: float | None, name: str, colour) -> None:
    """A horizontal bar for a value in [-1, 1], filled from the centre line, with its name and number."""
    import cv2

    h = 9
    cv2.rectangle(img, (x, y), (x + w, y + h), (40, 40, 40), -1)
    mid = x + w // 2
    if value is not None:
        end = int(round(mid + np.clip(value, -1, 1) * (w // 2)))
        cv2.rectangle(img, (min(mid, end), y + 1), (max(mid, end), y + h - 1), colour, -1)
    cv2.line(img, (mid, y - 1), (mid, y + h + 1), (255, 255, 255), 1)
    text = f"{name} {'n/a' if value is None else f'{value:+.2f}'}"
    draw_text(img, text, (x + w + 5, y + h - 1), 0.38, (255, 255, 255))


def draw_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, bg=(0, 0, 0)) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), bg, -1)
    cv2.putText(img, text, (x, y), font, scale, colour, 1, cv2.LINE_AA)


def draw_face(img: np.ndarray, face: FaceResult) -> None:
    """Box, `#track expr p%` label, 5 landmarks when known, valence and arousal bars under the box."""
    import cv2

    height, width = img.shape[:2]
    colour = expr_colour(face.expr)
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2, cv2.LINE_AA)
    for px, py in face.landmarks or []:
        cv2.circle(img, (int(px), int(py)), 2, (0, 255, 255), -1, cv2.LINE_AA)
    conf = face.probs.get(face.expr, 0.0)
    draw_text(
        img, f"#{face.track} {face.expr} {conf:.0%}", (x1, max(y1 - 6, 14)), 0.5, (255, 255, 255), colour
    )
    bar_w = max(60, min(120, x2 - x1))
    bx = int(np.clip(x1, 0, max(width - bar_w - 70, 0)))
    by = min(y2 + 6, height - 27)
    draw_bar(img, bx, by, bar_w, face.valence, "V", (230, 160, 30))
    draw_bar(img, bx, by + 14, bar_w, face.arousal, "A", (60, 60, 230))
