"""Face detection with insightface SCRFD (ONNX Runtime, or torch: `backend="torch"`).

`FaceDetector` loads an SCRFD ONNX file (found by `pipeline.frames.detector_files`) through
`insightface.model_zoo.get_model` and finds faces with five landmarks in BGR frames.

insightface loads the model, picks the execution providers and builds one fixed-shape ONNX
Runtime session per detector input size; with `backend="torch"` the same SCRFD graph runs in torch
(`pipeline.frames.detect_torch`, for GPU machines that have torch but no onnxruntime-gpu). The per-frame
work around the session (letterbox, normalisation, anchor decoding, NMS) is `pipeline.frames.scrfd`'s.

Detector input size (`input_size`, width x height, multiples of 32): SCRFD is fully
convolutional, so any size works; frames are letterboxed into it (scaled to fit, padded at the
right/bottom). Larger inputs find smaller faces and cost quadratically more. `"auto"` derives the
input from each frame size: the aspect ratio is kept, the longer side is at most 640 (frames are
never upscaled), and both sides are rounded up to a multiple of 32, so a 640x360 or 1920x1080
frame is detected at 640x384 (40% less work than 640x640 for the same face scale). A fixed size is
never an enlargement either: a frame smaller than it on both sides is detected at its own size (rounded
up to a multiple of 32), because an enlarged close-up face outgrows SCRFD's largest anchors (a 640x360
close-up: 0 faces at 1280x736, 1 at 640x384).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream.engines.errors import BackendUnavailable
from affectstream.pipeline.errors import DetectorError
from affectstream.pipeline.frames.detector_files import resolve_detector
from affectstream.pipeline.frames.scrfd import AUTO_CAP, Letterbox, auto_input_size, check_input_size, decode
from affectstream.pipeline.types import Detection

if TYPE_CHECKING:
    from affectstream.engines.onnxruntime import Provider

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "torch")
THRESHOLD = 0.5  # insightface's SCRFD default


def checked_limits(threshold: float, max_faces: int) -> tuple[float, int]:
    """A detector's score threshold and face limit, or a `DetectorError` naming the bad one."""
    if not 0.0 < float(threshold) < 1.0:
        raise DetectorError(f"detector threshold {threshold!r} must be between 0 and 1")
    if int(max_faces) < 0:
        raise DetectorError(f"detector max_faces {max_faces!r} must be >= 0 (0 = all faces)")
    return float(threshold), int(max_faces)


def check_frame(image_bgr: Any) -> None:
    """A `ValueError` unless `image_bgr` is an H x W x 3 uint8 array with pixels."""
    if (
        not isinstance(image_bgr, np.ndarray)
        or image_bgr.dtype != np.uint8
        or image_bgr.ndim != 3
        or image_bgr.shape[2] != 3
        or image_bgr.shape[0] == 0
        or image_bgr.shape[1] == 0
    ):
        got = f"{image_bgr.dtype} {image_bgr.shape}" if isinstance(image_bgr, np.ndarray) else type(image_bgr)
        raise ValueError(f"detect() needs an H x W x 3 uint8 BGR image, got {got}")


def session_options(threads: int):
    """ONNX Runtime options of a detector session: `threads` intra-op threads (0: the library's default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    # Idle intra-op threads must sleep, not spin: in a worker the decoder, engine and publisher
    # threads need those cores between detections (spinning cost CPU per frame: docs/bench.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class FaceDetector:
    """SCRFD face detector with five landmarks.

    One instance holds preallocated buffers; calls are serialised by a lock, so it is safe to share
    between threads, but one detector per thread is what gives parallelism.

    Args:
        model: ONNX path or insightface model-pack name (see `resolve_detector`).
        input_size: Detector input (width, height), multiples of 32, or "auto" (see module doc).
        threshold: Minimum detector score of a face; None: `THRESHOLD`.
        providers: ONNX Runtime execution providers in priority order (names or (name, options)
            pairs), e.g. ["TensorrtExecutionProvider", "CUDAExecutionProvider",
            "CPUExecutionProvider"] with onnxruntime-gpu; unavailable ones are dropped with a log
            line. None or empty: CUDA when available, else CPU.
        max_faces: Keep at most this many faces per frame (0: all), preferring large, central faces
            (insightface's ranking: area minus twice the squared offset from the frame centre).
        threads: ONNX Runtime intra-op threads (0: the library default, one per core).
        backend: "onnxruntime" (insightface's sessions) or "torch" (the SCRFD graph in torch,
            `pipeline.frames.detect_torch`; `providers` and `threads` do not apply).
        device: For the torch backend: "auto" (CUDA when torch sees a GPU), "cpu", "cuda" or "cuda:N".

    Attributes:
        providers: Where the detector really runs: the ONNX Runtime session's active providers, or
            `["torch:<device>"]`.

    Raises:
        DetectorError: The model is missing, not an SCRFD detector with landmarks, a setting is
            invalid, or a requested GPU provider did not load (ONNX Runtime would silently use the CPU).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        input_size: tuple[int, int] | str = (640, 640),
        threshold: float | None = None,
        providers: Sequence[Provider] | None = None,
        max_faces: int = 0,
        threads: int = 0,
        backend: str = "onnxruntime",
        device: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise DetectorError(
                f"detector.backend: {backend!r} is not allowed; allowed values: {', '.join(map(repr, BACKENDS))}"
            )
        self.threshold, self.max_faces = checked_limits(
            THRESHOLD if threshold is None else threshold, max_faces
        )
        self._fixed = check_input_size(input_size)
        self.path = resolve_detector(str(model))
        self.backend = backend
        self._model: Any  # insightface's SCRFD, or TorchSCRFD: the same attributes
        if backend == "torch":
            from affectstream.pipeline.frames.detect_torch import (
                TorchSCRFD,  # lazy: torch only for this backend
            )

            self._model = TorchSCRFD(self.path, device=device)
            self.providers: list[str] = [self._model.provider]
        else:
            from affectstream.engines.onnxruntime import check_active, choose_providers

            try:  # the engine's provider policy; a detector's trouble is a DetectorError
                chosen = choose_providers("auto", providers)
                self._model = self._load(self.path, chosen, int(threads))
                self.providers = list(self._model.session.get_providers())
                check_active(chosen, self.providers, what=f"detector {self.path.name}")
            except BackendUnavailable as exc:
                raise DetectorError(str(exc)) from exc
        log.info("detector %s on %s, input %s", self.path.name, self.providers, input_size)
        static = self._model.static_input_size
        if static is not None and self._fixed not in (None, tuple(static)):
            log.warning(
                "detector %s has a fixed input %s; ignoring input_size %s", self.path, static, input_size
            )
        self._static = (int(static[0]), int(static[1])) if static is not None else None
        self._boxes: dict[tuple[int, int], Letterbox] = {}
        self._by_frame: dict[tuple, Letterbox] = {}  # (frame w, h, requested input) -> its letterbox
        self._lock = threading.Lock()
        if (size := self._static or self._fixed) is not None:
            self._letterbox(size)  # build the session now, not on the first frame

    @staticmethod
    def _load(path: Path, providers: list[Provider], threads: int):
        from insightface.model_zoo import get_model

        try:
            model = get_model(str(path), providers=providers, sess_options=session_options(threads))
        except Exception as exc:  # onnx/onnxruntime raise untyped errors for bad files
            raise DetectorError(f"cannot load detector {path}: {exc}") from exc
        if model is None or getattr(model, "taskname", None) != "detection":
            raise DetectorError(
                f"{path} is not a face detector (insightface routed it to {type(model).__name__})"
            )
        if not model.use_kps:
            raise DetectorError(
                f"{path} predicts no landmarks; use an SCRFD model with keypoints (*kps / det_*)"
            )
        return model

    @property
    def input_size(self) -> tuple[int, int] | str:
        """The configured input (width, height), or "auto"."""
        return self._static or self._fixed or "auto"

    def input_size_for(
        self, width: int, height: int, requested: tuple[int, int] | str | None = None
    ) -> tuple[int, int]:
        """The detector input (width, height) used for frames of this size.

        `requested` (a size or "auto") replaces the configured input for this call, so one detector
        serves sources detected at different sizes (live cameras beside files); a model with a fixed
        input ignores it. A size that would enlarge the frame gives way to the frame's own (scale 1).
        """
        wanted = self._fixed if requested is None else check_input_size(requested)
        if self._static:
            return self._static
        if wanted is None or min(wanted[0] / width, wanted[1] / height) > 1.0:
            return auto_input_size(width, height, cap=max(width, height, 1) if wanted else AUTO_CAP)
        return wanted

    def _letterbox(self, size: tuple[int, int]) -> Letterbox:
        box = self._boxes.get(size)
        if box is None:
            if self.backend == "torch":
                session = self._model.session_for(size)
            else:
                # SCRFD.detect builds (and caches) the fixed-shape session of this size on first use.
                self._model.detect(np.zeros((size[1], size[0], 3), np.uint8), input_size=size)
                session = self._model.resolution_sessions[size]
            box = Letterbox(session, size, self._model._feat_stride_fpn, self._model._num_anchors)
            self._boxes[size] = box
        return box

    def detect(
        self, image_bgr: np.ndarray, input_size: tuple[int, int] | str | None = None
    ) -> list[Detection]:
        """Faces in one frame, highest score first.

        Args:
            image_bgr: H x W x 3 uint8 frame in BGR order.
            input_size: This call's detector input, a size or "auto" (see `input_size_for`); None: the
                configured one.

        Returns:
            One `Detection` per face: box (x1, y1, x2, y2, clipped to the frame), score and the five
            landmarks in frame pixels; `track` is -1 (the tracker assigns it).
        """
        check_frame(image_bgr)
        rows, cols = image_bgr.shape[:2]
        with self._lock:
            key = (cols, rows, input_size)
            box = self._by_frame.get(key)
            if box is None:
                box = self._by_frame[key] = self._letterbox(self.input_size_for(cols, rows, input_size))
            scale = box.fill(image_bgr)
            outputs = box.session.run(self._model.output_names, {self._model.input_name: box.blob})
            return decode(
                outputs,
                box,
                scale,
                rows,
                cols,
                model=self._model,
                threshold=self.threshold,
                max_faces=self.max_faces,
            )
