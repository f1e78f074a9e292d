"""Aff-Wild2-style fixtures built from the project's own videos (../shared/media/videos), at test time.

- `occluded.mp4` (155 frames, 960x540): one man, `face_noface.mov` frames 0-71 (face), then 12 of its
  faceless frames (a cut-away: frames 72-83), then `noface_face.mov` frames 98-168 (face; its last frame
  is black). Faceless: frames 72-83 and 154, 13 of 155 (8.4%).
- `two_people.mp4` (155 frames, 960x540): the same man's frames, scaled to 720x405 at the top left, and
  the woman of `WolfgangLanger_Pexels.mp4` at 320x180 at the bottom right, visible throughout. The man
  is the annotated subject; while he is gone (the same 13 frames), the woman is still there.

One annotation serves both (the same subject, frame for frame): valence and arousal follow two slow
sines (periods 90 and 130 frames), so they keep changing through the faceless stretch, and the EXPR
class runs through all eight ABAW classes in 20-frame segments (the 8-class macro-F1 needs all eight).
Faceless frames are annotated: the annotators saw the subject, our detector did not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectstream.scoring.abaw import expr_text, va_text, write_atomic
from tests.conftest import need_shared

FRAMES = 155
FACELESS = [*range(72, 84), 154]
MAN_BOX = (0, 0, 720, 405)  # where the man is in two_people.mp4 (x1, y1, x2, y2)


def annotation() -> tuple[np.ndarray, np.ndarray]:
    """The subject's VA [155, 2] and EXPR class [155]."""
    i = np.arange(FRAMES)
    va = np.stack([0.6 * np.sin(2 * np.pi * i / 90), 0.5 * np.cos(2 * np.pi * i / 130)], axis=1).round(3)
    return va, (i // 20) % 8


def _decode(name: str, start: int, stop: int) -> list[np.ndarray]:
    import av

    path = need_shared("media", "videos", name)
    frames = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= stop:
                break
            frames.append(f.to_ndarray(format="bgr24"))
    return frames[start:]


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "18", "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for img in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        c.mux(s.encode())
    return path


def build(folder: Path) -> dict[str, Path]:
    """Write the two videos and the annotation folder (`annotations/{VA,EXPR}_.../Validation_Set`)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    man = _decode("face_noface.mov", 0, 84) + _decode("noface_face.mov", 98, 169)
    woman = _decode("WolfgangLanger_Pexels.mp4", 0, FRAMES)
    assert len(man) == len(woman) == FRAMES
    both = []
    for m, w in zip(man, woman, strict=True):
        canvas = np.full((540, 960, 3), 40, np.uint8)
        canvas[:405, :720] = cv2.resize(m, (720, 405), interpolation=cv2.INTER_AREA)
        canvas[360:, 640:] = cv2.resize(w, (320, 180), interpolation=cv2.INTER_AREA)
        both.append(canvas)
    va, expr = annotation()
    ann = folder / "annotations"
    for video in ("occluded", "two_people"):
        write_atomic(ann / "VA_Estimation_Challenge" / "Validation_Set" / f"{video}.txt", va_text(va))
        write_atomic(
            ann / "EXPR_Classification_Challenge" / "Validation_Set" / f"{video}.txt", expr_text(expr)
        )
    return {
        "occluded": _write(folder / "occluded.mp4", man),
        "two_people": _write(folder / "two_people.mp4", both),
        "annotations": ann,
    }
