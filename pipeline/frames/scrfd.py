"""SCRFD's own arithmetic around the ONNX session: input sizes, the letterboxed input, decoding, NMS.

Done here instead of by insightface's `SCRFD.detect`, because on a CPU detection is the bottleneck of
the whole pipeline: a preallocated buffer (`Letterbox`) costs a fraction of `cv2.dnn.blobFromImage`, and
decoding only the anchors above the threshold skips most of the arithmetic (docs/bench.md). The results match `SCRFD.detect` (tests/test_detect.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from affectstream.pipeline.errors import DetectorError
from affectstream.pipeline.types import Detection

AUTO_CAP = 640  # longest detector side for input_size="auto"
STRIDE = 32  # SCRFD's coarsest feature stride: input sides must be multiples of it
MEAN, STD = 127.5, 128.0  # SCRFD's input normalisation (insightface SCRFD.input_mean/std)
NMS_IOU = 0.4  # insightface's SCRFD default


def auto_input_size(width: int, height: int, cap: int = AUTO_CAP) -> tuple[int, int]:
    """Detector input (width, height) for a frame: aspect kept, longer side <= cap, multiples of 32."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size {width}x{height} is not positive")
    scale = min(1.0, cap / max(width, height))
    return (
        max(STRIDE, math.ceil(width * scale / STRIDE) * STRIDE),
        max(STRIDE, math.ceil(height * scale / STRIDE) * STRIDE),
    )


def check_input_size(value: Any) -> tuple[int, int] | None:
    """Validated (width, height), or None for "auto"."""
    if value == "auto":
        return None
    try:
        width, height = (int(v) for v in value)
    except (TypeError, ValueError):
        raise DetectorError(f"detector input_size {value!r} is not [width, height] or 'auto'") from None
    if width <= 0 or height <= 0 or width % STRIDE or height % STRIDE:
        raise DetectorError(
            f"detector input_size {width}x{height} must be positive multiples of {STRIDE} (e.g. 640x640)"
        )
    return width, height


class Letterbox:
    """Preallocated input buffer of one detector size, and the anchor centres of its feature maps.

    `mean`, `std`: the input normalisation, SCRFD's by default (BlazeFace's: `pipeline.frames.blazeface`).
    """

    def __init__(
        self,
        session,
        size: tuple[int, int],
        strides: Sequence[int],
        anchors: int,
        *,
        mean: float = MEAN,
        std: float = STD,
    ) -> None:
        width, height = size
        self.session = session
        self.size = size
        self.mean, self.std = mean, std
        self.blob = np.full((1, 3, height, width), (0.0 - mean) / std, dtype=np.float32)
        self.filled = (height, width)  # region that may hold image pixels from an earlier frame
        self.centres = []
        for stride in strides:
            rows, cols = height // stride, width // stride
            grid = np.stack(list(np.mgrid[:rows, :cols][::-1]), axis=-1).reshape(-1, 2).astype(np.float32)
            self.centres.append(np.repeat(grid * stride, anchors, axis=0))

    def fill(self, image: np.ndarray) -> float:
        """Letterbox a BGR frame into the RGB-normalised blob; returns the frame-to-input scale."""
        import cv2

        width, height = self.size
        rows, cols = image.shape[:2]
        # Same rounding as insightface's SCRFD so that results agree with SCRFD.detect.
        if rows / cols > height / width:
            new_h, new_w = height, int(height / (rows / cols))
        else:
            new_w, new_h = width, int(width * (rows / cols))
        resized = image if (new_w, new_h) == (cols, rows) else cv2.resize(image, (new_w, new_h))
        if self.filled != (new_h, new_w):
            # The padding must read as black; pixels of a differently shaped earlier frame may remain.
            self.blob.fill((0.0 - self.mean) / self.std)
            self.filled = (new_h, new_w)
        valid = self.blob[0, :, :new_h, :new_w]
        for channel, plane in enumerate(cv2.split(resized)[::-1]):  # BGR -> RGB planes
            valid[channel] = plane
        valid -= self.mean
        valid *= 1.0 / self.std
        return new_h / rows


def decode(
    outputs, box: Letterbox, scale: float, rows: int, cols: int, *, model, threshold: float, max_faces: int
) -> list[Detection]:
    """Faces from the session's `outputs` for a frame of `rows` x `cols` letterboxed by `scale`: only the
    anchors above `threshold` are decoded, NMS as insightface's, at most `max_faces` (0: all), the
    largest and most central first (as `SCRFD.detect`). `model`: insightface's SCRFD (its strides)."""
    fmc = model.fmc
    scores, boxes, points = [], [], []
    for level, stride in enumerate(model._feat_stride_fpn):
        level_scores = outputs[level].reshape(-1)
        keep = np.flatnonzero(level_scores >= threshold)
        if keep.size == 0:
            continue
        centres = box.centres[level][keep]
        dist = outputs[level + fmc].reshape(-1, 4)[keep] * stride
        boxes.append(np.hstack((centres - dist[:, :2], centres + dist[:, 2:])))
        kps = outputs[level + 2 * fmc].reshape(-1, 5, 2)[keep] * stride
        points.append(kps + centres[:, None, :])
        scores.append(level_scores[keep])
    if not scores:
        return []
    score = np.concatenate(scores)
    order = np.argsort(-score, kind="stable")
    score = score[order]
    xyxy = np.concatenate(boxes)[order] / scale
    kps = np.concatenate(points)[order] / scale
    kept = nms(xyxy, NMS_IOU)
    score, xyxy, kps = score[kept], xyxy[kept], kps[kept]
    if max_faces and len(kept) > max_faces:
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
        offset = ((xyxy[:, 0] + xyxy[:, 2]) / 2 - cols // 2) ** 2 + (
            (xyxy[:, 1] + xyxy[:, 3]) / 2 - rows // 2
        ) ** 2
        best = np.sort(np.argsort(area - 2.0 * offset)[::-1][:max_faces])
        score, xyxy, kps = score[best], xyxy[best], kps[best]
    np.clip(xyxy[:, 0::2], 0, cols, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, rows, out=xyxy[:, 1::2])
    xyxy = xyxy.astype(np.float32)
    kps = kps.astype(np.float32)
    return [Detection(box=xyxy[i], score=float(score[i]), landmarks=kps[i]) for i in range(len(score))]


def nms(boxes: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS over score-sorted boxes (insightface's +1 pixel area convention)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.arange(len(boxes))
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= threshold]
    return keep
