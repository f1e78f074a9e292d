"""Face detection with Google MediaPipe's BlazeFace (Apache-2.0 weights), shipped with the package.

`detector.model: blazeface_full_range` (or `--detector blazeface_full_range`; faces within about 5 m of the
camera) and `blazeface_short_range` (within about 2 m: close-ups, webcams) load `models/<name>.onnx`:
MediaPipe's TFLite files converted to ONNX once, run by ONNX Runtime like SCRFD (how they were made and
their terms: `models/README.md`, LICENSES.md). Unlike SCRFD's weights (non-commercial research only) they
may be used for any purpose under Apache-2.0.

The per-frame arithmetic is MediaPipe's face detection graph (`face_detection_*_range.pbtxt`): the frame
letterboxed into the model's fixed square input (RGB scaled to [-1, 1]), SSD anchors of fixed size,
box and keypoint offsets in input pixels, sigmoid scores, weighted NMS at IoU 0.3 (overlapping boxes
averaged by score instead of dropped). `detector.input_size` does not apply: the models' inputs are fixed.

Five landmarks from six: BlazeFace gives both eyes, the nose tip, the mouth centre and both ear tragions;
the aligner and every consumer take SCRFD's five (eyes, nose, mouth corners). The mouth corners are
placed on either side of the mouth centre, along the line between the eyes, at `MOUTH_WIDTH` times the eye
distance: the ratio of insightface's standard five-point template (0.83; the shipped engine's template, mean
SCRFD landmarks of its training faces, has 0.79); the ears are dropped. A ratio fitted to SCRFD's outputs
would bring SCRFD's weights into the choice. Measured against SCRFD on the shared videos:
docs/detection/README.md, "BlazeFace".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from affectstream.engines.errors import BackendUnavailable
from affectstream.pipeline.errors import DetectorError
from affectstream.pipeline.frames.detect import check_frame, checked_limits, session_options
from affectstream.pipeline.frames.scrfd import Letterbox
from affectstream.pipeline.types import Detection

if TYPE_CHECKING:
    from affectstream.engines.onnxruntime import Provider

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent / "models"
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for face detection
SCORE_CLIP = 100.0  # MediaPipe clips raw scores before the sigmoid
# Above MediaPipe's 0.5: on the shared videos and images every face BlazeFace found where SCRFD found none
# scored 0.50-0.58 (10 in 983 inputs); at 0.6 none is left and no face SCRFD found is lost (docs/detection).
THRESHOLD = 0.6
# insightface's five-point template (arcface_dst, 112x112): mouth width 29.18 px / eye distance 35.24 px.
MOUTH_WIDTH = (70.7299 - 41.5493) / (73.5318 - 38.2946)


@dataclass(frozen=True)
class BlazeFaceModel:
    """One shipped model: its file, square input side, and SSD anchor layout (MediaPipe's SsdAnchors)."""

    file: str
    side: int
    strides: tuple[int, ...]  # one per anchor layer; consecutive layers of one stride share a grid
    interpolated: bool  # MediaPipe's interpolated_scale_aspect_ratio 1.0: a second anchor per layer


MODELS = {
    "blazeface_short_range": BlazeFaceModel("blazeface_short_range.onnx", 128, (8, 16, 16, 16), True),
    "blazeface_full_range": BlazeFaceModel("blazeface_full_range.onnx", 192, (4,), False),
}


def is_blazeface(model: str | Path) -> bool:
    """Whether a configured `detector.model` names a shipped BlazeFace model."""
    return str(model).strip() in MODELS


def anchor_centres(model: BlazeFaceModel) -> np.ndarray:
    """[N, 2] anchor centres in input pixels, in the order of the model's outputs."""
    centres = []
    layer = 0
    while layer < len(model.strides):
        stride = model.strides[layer]
        same = 1
        while layer + same < len(model.strides) and model.strides[layer + same] == stride:
            same += 1
        per_cell = same * (2 if model.interpolated else 1)
        cells = model.side // stride
        grid = np.stack(list(np.mgrid[:cells, :cells][::-1]), axis=-1).reshape(-1, 2).astype(np.float32)
        centres.append(np.repeat((grid + 0.5) * stride, per_cell, axis=0))
        layer += same
    return np.concatenate(centres)


def five_points(six: np.ndarray) -> np.ndarray:
    """[N, 5, 2] landmarks in SCRFD's order (eyes, nose, mouth corners) from BlazeFace's [N, 6, 2] (eyes,
    nose tip, mouth centre, ears). Both detectors list the eye that is on the image's left in an upright face
    first (on the shared media, every face), so the order carries over as it is, rotated faces included."""
    first, second, nose, mouth = six[:, 0], six[:, 1], six[:, 2], six[:, 3]
    half = (second - first) * (MOUTH_WIDTH / 2.0)
    return np.stack((first, second, nose, mouth - half, mouth + half), axis=1)


def decode(
    regressors: np.ndarray, logits: np.ndarray, centres: np.ndarray, *, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores [N], boxes [N, 4] (x1, y1, x2, y2) and landmarks [N, 6, 2] in input pixels, after weighted NMS."""
    raw = logits.reshape(-1).astype(np.float64)  # exp(100) overflows float32
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw, -SCORE_CLIP, SCORE_CLIP)))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32)
    reg = regressors.reshape(-1, 16)[keep]
    centre = centres[keep]
    mid, size = centre + reg[:, :2], reg[:, 2:4]
    boxes = np.hstack((mid - size / 2, mid + size / 2))
    points = reg[:, 4:].reshape(-1, 6, 2) + centre[:, None, :]
    order = np.argsort(-scores[keep], kind="stable")
    return weighted_nms(scores[keep][order], boxes[order], points[order], NMS_IOU)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, points: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS over score-sorted faces: each kept face is the score-weighted mean of the
    faces overlapping it above `threshold` (its score the highest of them)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    rest = np.arange(len(scores))
    kept_scores, kept_boxes, kept_points = [], [], []
    while rest.size:
        top = rest[0]
        x1 = np.maximum(boxes[top, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[top, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[top, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[top, 3], boxes[rest, 3])
        inter = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
        iou = inter / np.maximum(area[top] + area[rest] - inter, 1e-9)
        group = rest[iou > threshold]
        group = group if group.size else rest[:1]
        weights = scores[group] / scores[group].sum()
        kept_scores.append(scores[top])
        kept_boxes.append(weights @ boxes[group])
        kept_points.append(np.tensordot(weights, points[group], axes=1))
        rest = rest[iou <= threshold]
        rest = rest[rest != top]
    return np.array(kept_scores), np.array(kept_boxes), np.array(kept_points)


class BlazeFaceDetector:
    """MediaPipe BlazeFace on ONNX Runtime, with `pipeline.frames.detect.FaceDetector`'s interface.

    Args:
        model: A name in `MODELS` ("blazeface_full_range": faces within about 5 m of the camera;
            "blazeface_short_range": within about 2 m).
        input_size: Ignored (the models' inputs are fixed); accepted so that the settings of SCRFD apply.
        threshold: Minimum score of a face; None: `THRESHOLD`.
        providers: ONNX Runtime execution providers, as `FaceDetector`'s.
        max_faces: Keep at most this many faces per frame (0: all), the highest scores first.
        threads: ONNX Runtime intra-op threads (0: the library default).
        backend: Only "onnxruntime".

    Raises:
        DetectorError: An unknown name, a setting out of range, another backend, or a GPU provider
            that did not load.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        input_size: tuple[int, int] | str = "auto",
        threshold: float | None = None,
        providers: Sequence[Provider] | None = None,
        max_faces: int = 0,
        threads: int = 0,
        backend: str = "onnxruntime",
        device: str = "auto",
    ) -> None:
        del input_size, device  # fixed input; no torch backend
        name = str(model).strip()
        if name not in MODELS:
            raise DetectorError(f"no BlazeFace model {name!r}; choose one of {', '.join(MODELS)}")
        if backend != "onnxruntime":
            raise DetectorError(
                f"detector.backend: {backend!r} does not run {name}; BlazeFace runs on 'onnxruntime' only"
            )
        self.threshold, self.max_faces = checked_limits(
            THRESHOLD if threshold is None else threshold, max_faces
        )
        self.spec = MODELS[name]
        self.path = MODELS_DIR / self.spec.file
        self.backend = backend
        self.session = self._load(self.path, providers, int(threads))
        self.providers: list[str] = list(self.session.get_providers())
        self._input = self.session.get_inputs()[0].name
        side = self.spec.side
        self._centres = anchor_centres(self.spec)
        # MediaPipe's normalisation: [-1, 1]; the padding reads as black (-1).
        self._box = Letterbox(self.session, (side, side), (), 0, mean=127.5, std=127.5)
        self._lock = threading.Lock()
        log.info("detector %s on %s, input %dx%d (fixed)", self.path.name, self.providers, side, side)

    @staticmethod
    def _load(path: Path, providers: Sequence[Provider] | None, threads: int):
        import onnxruntime

        from affectstream.engines.onnxruntime import check_active, choose_providers

        if not path.is_file():
            raise DetectorError(f"the shipped detector {path} is missing; reinstall affectstream")
        try:
            chosen = choose_providers("auto", providers)
            session = onnxruntime.InferenceSession(str(path), session_options(threads), providers=chosen)
            check_active(chosen, session.get_providers(), what=f"detector {path.name}")
        except BackendUnavailable as exc:
            raise DetectorError(str(exc)) from exc
        return session

    @property
    def input_size(self) -> tuple[int, int]:
        """The model's fixed input (width, height)."""
        return (self.spec.side, self.spec.side)

    def input_size_for(
        self, width: int, height: int, requested: tuple[int, int] | str | None = None
    ) -> tuple[int, int]:
        """The model's fixed input, whatever the frame or the request."""
        return self.input_size

    def detect(
        self, image_bgr: np.ndarray, input_size: tuple[int, int] | str | None = None
    ) -> list[Detection]:
        """Faces in one H x W x 3 uint8 BGR frame, highest score first (`input_size` is ignored).

        Returns:
            One `Detection` per face: box (clipped to the frame), score and five landmarks in frame pixels.
        """
        check_frame(image_bgr)
        rows, cols = image_bgr.shape[:2]
        with self._lock:
            scale = self._box.fill(image_bgr)
            regressors, logits = self.session.run(None, {self._input: self._box.blob})
        scores, boxes, six = decode(regressors, logits, self._centres, threshold=self.threshold)
        if self.max_faces:
            scores, boxes, six = scores[: self.max_faces], boxes[: self.max_faces], six[: self.max_faces]
        boxes = boxes / scale
        np.clip(boxes[:, 0::2], 0, cols, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, rows, out=boxes[:, 1::2])
        points = five_points(six / scale)
        return [
            Detection(
                box=boxes[i].astype(np.float32),
                score=float(scores[i]),
                landmarks=points[i].astype(np.float32),
            )
            for i in range(len(scores))
        ]
