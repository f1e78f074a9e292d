"""Face detection with insightface SCRFD (ONNX Runtime, or torch: `backend="torch"`).

`resolve_detector` turns the configured detector (a path, or an insightface model-pack name) into
an ONNX file; `FaceDetector` loads it through `insightface.model_zoo.get_model` and finds faces
with five landmarks in BGR frames.

insightface loads the model, picks the execution providers and builds one fixed-shape ONNX
Runtime session per detector input size; with `backend="torch"` the same SCRFD graph runs in torch
(`pipeline.frames.detect_torch`, for GPU machines that have torch but no onnxruntime-gpu). The per-frame work around the session (letterbox,
normalisation, anchor decoding, NMS) is done here instead of by `SCRFD.detect`, because on a CPU
detection is the bottleneck of the whole pipeline: `cv2.dnn.blobFromImage` alone costs ~4 ms per
640x640 frame where a preallocated buffer costs ~0.3 ms, and decoding only the anchors above the
threshold skips most of the arithmetic. The results match `SCRFD.detect` (see tests).

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

import contextlib
import io
import logging
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.pipeline.errors import DetectorError
from affectstream.pipeline.types import Detection
from affectstream.settings import env

log = logging.getLogger(__name__)

# Detector file inside the insightface model packs that carry one (the zip names of the packs).
PACK_DETECTORS = {
    "buffalo_l": "det_10g.onnx",
    "buffalo_m": "det_2.5g.onnx",
    "buffalo_s": "det_500m.onnx",
    "buffalo_sc": "det_500m.onnx",
    "antelopev2": "scrfd_10g_bnkps.onnx",
}
DEFAULT_PACK = "buffalo_sc"  # the detector when none is configured: insightface's smallest pack with SCRFD
AUTO_CAP = 640  # longest detector side for input_size="auto"
_STRIDE = 32  # SCRFD's coarsest feature stride: input sides must be multiples of it
_MEAN, _STD = 127.5, 128.0  # SCRFD's input normalisation (insightface SCRFD.input_mean/std)
_NMS_IOU = 0.4  # insightface's SCRFD default
_FIX = "set AFFECTSTREAM_DETECTOR or pass --detector PATH (e.g. ../shared/models/scrfd_500m.onnx)"


def configured_detector(model: str | None = None) -> str:
    """The detector to load: `model`, else `$AFFECTSTREAM_DETECTOR`, else `DEFAULT_PACK`."""
    return model or os.environ.get(env.DETECTOR) or DEFAULT_PACK


def _insightface_root(root: str | Path | None) -> Path:
    return Path(root if root is not None else "~/.insightface").expanduser()


def _find_in_pack(pack_dir: Path) -> Path | None:
    if not pack_dir.is_dir():
        return None
    found = sorted(pack_dir.glob("det_*.onnx")) or sorted(pack_dir.glob("*scrfd*.onnx"))
    return found[0] if found else None


def resolve_detector(model: str, *, root: str | Path | None = None, download: bool = True) -> Path:
    """Find the SCRFD ONNX file for a configured detector.

    Args:
        model: A path to an ONNX file (anything ending in `.onnx` or containing a path separator),
            or an insightface model-pack name such as `buffalo_l` or `buffalo_sc`, whose detector
            (`det_*.onnx`) is looked up under `<root>/models/<pack>/`.
        root: insightface's data root; default `~/.insightface`.
        download: For a pack that is not on disk, let insightface download it first (needs network).

    Returns:
        The ONNX file.

    Raises:
        DetectorError: The file is missing (and could not be downloaded); the message names the path
            where the file is expected and how to point affectstream at another one.
    """
    text = str(model).strip()
    if not text:
        raise DetectorError(f"no detector model configured; {_FIX}")
    candidate = Path(text).expanduser()
    if text.endswith(".onnx") or os.sep in text or "/" in text:
        if candidate.is_file():
            return candidate.resolve()
        if candidate.is_dir() and (found := _find_in_pack(candidate)):
            return found.resolve()
        raise DetectorError(f"detector model {candidate} does not exist; put the ONNX file there or {_FIX}")

    pack_dir = _insightface_root(root) / "models" / text
    found = _find_in_pack(pack_dir)
    if found is None and download:
        found = _download_pack(text, pack_dir)
    if found is not None:
        return found.resolve()
    where = pack_dir / PACK_DETECTORS.get(text, "det_*.onnx")
    raise DetectorError(
        f"detector model pack {text!r} has no detector: put the SCRFD ONNX file at {where} "
        f"(insightface could not download it), or {_FIX}"
    )


def _download_pack(pack: str, pack_dir: Path) -> Path | None:
    """Ask insightface to download a model pack; None when it cannot (offline, unknown pack)."""
    from insightface.utils import storage

    out = io.StringIO()  # insightface prints progress to stdout; keep it out of the worker's output
    try:
        with contextlib.redirect_stdout(out):
            storage.download("models", pack, root=str(pack_dir.parent.parent))
    except Exception as exc:  # requests / zipfile / OS errors: the caller reports the path instead
        log.warning("insightface could not download model pack %r: %s", pack, exc)
        return None
    return _find_in_pack(pack_dir)


def auto_input_size(width: int, height: int, cap: int = AUTO_CAP) -> tuple[int, int]:
    """Detector input (width, height) for a frame: aspect kept, longer side <= cap, multiples of 32."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size {width}x{height} is not positive")
    scale = min(1.0, cap / max(width, height))
    return (
        max(_STRIDE, math.ceil(width * scale / _STRIDE) * _STRIDE),
        max(_STRIDE, math.ceil(height * scale / _STRIDE) * _STRIDE),
    )


def _check_input_size(value: Any) -> tuple[int, int] | None:
    """Validated (width, height), or None for "auto"."""
    if value == "auto":
        return None
    try:
        width, height = (int(v) for v in value)
    except (TypeError, ValueError):
        raise DetectorError(f"detector input_size {value!r} is not [width, height] or 'auto'") from None
    if width <= 0 or height <= 0 or width % _STRIDE or height % _STRIDE:
        raise DetectorError(
            f"detector input_size {width}x{height} must be positive multiples of {_STRIDE} (e.g. 640x640)"
        )
    return width, height


BACKENDS = ("onnxruntime", "torch")


def check_providers(requested: Sequence[object], active: Sequence[str], *, what: str) -> None:
    """Fail when a session silently dropped a requested GPU provider.

    onnxruntime-gpu lists CUDA in `get_available_providers()` even when its CUDA or cuDNN libraries
    cannot load (a CUDA 13 build on a CUDA 12 host, say); the session then runs on the CPU with one
    warning in ONNX Runtime's own log. A GPU deployment running on the CPU is a failure, not a mode.

    Raises:
        DetectorError: A requested provider is not among the session's active ones.
    """
    inactive = [_provider_name(p) for p in requested if _provider_name(p) not in active]
    if inactive:
        raise DetectorError(
            f"{what}: ONNX Runtime could not enable {inactive} and would run on {list(active)}; the CUDA, "
            "cuDNN or TensorRT libraries of this onnxruntime-gpu do not load here (check its CUDA major "
            "version against the driver's, see docs/gpu.md), or set detector.providers: [CPUExecutionProvider]"
        )


def _provider_name(entry: object) -> str:
    return str(entry[0]) if isinstance(entry, (tuple, list)) else str(entry)


def select_providers(requested: Sequence[object] | None) -> list[object]:
    """The usable subset of the requested ONNX Runtime execution providers, CPU always last.

    Args:
        requested: Provider names, or (name, options) pairs, in priority order. None or empty: CUDA
            when this onnxruntime build has it (onnxruntime-gpu), else CPU.

    Returns:
        The providers this onnxruntime build offers, in the requested order, ending with
        `CPUExecutionProvider`. Unavailable ones are dropped with one log line.
    """
    import onnxruntime

    available = onnxruntime.get_available_providers()
    wanted = list(requested or ["CUDAExecutionProvider"])
    kept = [p for p in wanted if _provider_name(p) in available]
    dropped = [_provider_name(p) for p in wanted if _provider_name(p) not in available]
    if dropped and requested:
        log.warning(
            "detector: execution providers %s are not in this onnxruntime build (available: %s); "
            "install onnxruntime-gpu for CUDA/TensorRT",
            dropped,
            available,
        )
    if "CPUExecutionProvider" not in {_provider_name(p) for p in kept}:
        kept.append("CPUExecutionProvider")
    return kept


class _Letterbox:
    """Preallocated input buffer of one detector size, and the anchor centres of its feature maps."""

    def __init__(self, session, size: tuple[int, int], strides: Sequence[int], anchors: int) -> None:
        width, height = size
        self.session = session
        self.size = size
        self.blob = np.full((1, 3, height, width), (0.0 - _MEAN) / _STD, dtype=np.float32)
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
            self.blob.fill((0.0 - _MEAN) / _STD)
            self.filled = (new_h, new_w)
        valid = self.blob[0, :, :new_h, :new_w]
        for channel, plane in enumerate(cv2.split(resized)[::-1]):  # BGR -> RGB planes
            valid[channel] = plane
        valid -= _MEAN
        valid *= 1.0 / _STD
        return new_h / rows


class FaceDetector:
    """SCRFD face detector with five landmarks.

    One instance holds preallocated buffers; calls are serialised by a lock, so it is safe to share
    between threads, but one detector per thread is what gives parallelism.

    Args:
        model: ONNX path or insightface model-pack name (see `resolve_detector`).
        input_size: Detector input (width, height), multiples of 32, or "auto" (see module doc).
        threshold: Minimum detector score of a face.
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
        threshold: float = 0.5,
        providers: Sequence[object] | None = None,
        max_faces: int = 0,
        threads: int = 0,
        backend: str = "onnxruntime",
        device: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise DetectorError(
                f"detector.backend: {backend!r} is not allowed; allowed values: {', '.join(map(repr, BACKENDS))}"
            )
        if not 0.0 < float(threshold) < 1.0:
            raise DetectorError(f"detector threshold {threshold!r} must be between 0 and 1")
        if int(max_faces) < 0:
            raise DetectorError(f"detector max_faces {max_faces!r} must be >= 0 (0 = all faces)")
        self._fixed = _check_input_size(input_size)
        self.threshold = float(threshold)
        self.max_faces = int(max_faces)
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
            chosen = select_providers(providers)
            self._model = self._load(self.path, chosen, int(threads))
            self.providers = list(self._model.session.get_providers())
            check_providers(chosen, self.providers, what=f"detector {self.path.name}")
        log.info("detector %s on %s, input %s", self.path.name, self.providers, input_size)
        static = self._model.static_input_size
        if static is not None and self._fixed not in (None, tuple(static)):
            log.warning(
                "detector %s has a fixed input %s; ignoring input_size %s", self.path, static, input_size
            )
        self._static = (int(static[0]), int(static[1])) if static is not None else None
        self._boxes: dict[tuple[int, int], _Letterbox] = {}
        self._by_frame: dict[tuple, _Letterbox] = {}  # (frame w, h, requested input) -> its letterbox
        self._lock = threading.Lock()
        if (size := self._static or self._fixed) is not None:
            self._letterbox(size)  # build the session now, not on the first frame

    @staticmethod
    def _load(path: Path, providers: list[object], threads: int):
        import onnxruntime
        from insightface.model_zoo import get_model

        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        # Idle intra-op threads must sleep, not spin: in a worker the decoder, engine and publisher
        # threads need those cores between detections (spinning doubled the CPU per frame, bench/).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            model = get_model(str(path), providers=providers, sess_options=options)
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
        wanted = self._fixed if requested is None else _check_input_size(requested)
        if self._static:
            return self._static
        if wanted is None or min(wanted[0] / width, wanted[1] / height) > 1.0:
            return auto_input_size(width, height, cap=max(width, height, 1) if wanted else AUTO_CAP)
        return wanted

    def _letterbox(self, size: tuple[int, int]) -> _Letterbox:
        box = self._boxes.get(size)
        if box is None:
            if self.backend == "torch":
                session = self._model.session_for(size)
            else:
                # SCRFD.detect builds (and caches) the fixed-shape session of this size on first use.
                self._model.detect(np.zeros((size[1], size[0], 3), np.uint8), input_size=size)
                session = self._model.resolution_sessions[size]
            box = _Letterbox(session, size, self._model._feat_stride_fpn, self._model._num_anchors)
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
        if (
            not isinstance(image_bgr, np.ndarray)
            or image_bgr.dtype != np.uint8
            or image_bgr.ndim != 3
            or image_bgr.shape[2] != 3
            or image_bgr.shape[0] == 0
            or image_bgr.shape[1] == 0
        ):
            got = (
                f"{image_bgr.dtype} {image_bgr.shape}"
                if isinstance(image_bgr, np.ndarray)
                else type(image_bgr)
            )
            raise ValueError(f"detect() needs an H x W x 3 uint8 BGR image, got {got}")
        rows, cols = image_bgr.shape[:2]
        with self._lock:
            key = (cols, rows, input_size)
            box = self._by_frame.get(key)
            if box is None:
                box = self._by_frame[key] = self._letterbox(self.input_size_for(cols, rows, input_size))
            scale = box.fill(image_bgr)
            outputs = box.session.run(self._model.output_names, {self._model.input_name: box.blob})
            return self._decode(outputs, box, scale, rows, cols)

    def _decode(self, outputs, box: _Letterbox, scale: float, rows: int, cols: int) -> list[Detection]:
        fmc = self._model.fmc
        scores, boxes, points = [], [], []
        for level, stride in enumerate(self._model._feat_stride_fpn):
            level_scores = outputs[level].reshape(-1)
            keep = np.flatnonzero(level_scores >= self.threshold)
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
        kept = _nms(xyxy, _NMS_IOU)
        score, xyxy, kps = score[kept], xyxy[kept], kps[kept]
        if self.max_faces and len(kept) > self.max_faces:
            area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
            offset = ((xyxy[:, 0] + xyxy[:, 2]) / 2 - cols // 2) ** 2 + (
                (xyxy[:, 1] + xyxy[:, 3]) / 2 - rows // 2
            ) ** 2
            best = np.sort(np.argsort(area - 2.0 * offset)[::-1][: self.max_faces])
            score, xyxy, kps = score[best], xyxy[best], kps[best]
        np.clip(xyxy[:, 0::2], 0, cols, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, rows, out=xyxy[:, 1::2])
        xyxy = xyxy.astype(np.float32)
        kps = kps.astype(np.float32)
        return [Detection(box=xyxy[i], score=float(score[i]), landmarks=kps[i]) for i in range(len(score))]


def _nms(boxes: np.ndarray, threshold: float) -> list[int]:
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
