"""The Python API for notebooks: the faces of an image, a DataFrame of a video; no Redis, no command line.

Both run the one frame path of `affectstream run` (`FrameProcessor.in_order`, `iter_file_results`) with
the processor `run` builds from the same config (`processor_from_config(load_config(...))`): the packaged
defaults, where the detector is `$AFFECTSTREAM_DETECTOR` or the configured pack, unless `config=` names a
YAML file or `detector=` / `model=` are given. So a video's results equal what `run` publishes for it.
The processor (detector and model loaded once) is kept for the next call with the same settings.

Example:
    >>> import affectstream
    >>> df = affectstream.analyze_video("clip.mp4")
    >>> df.plot(x="time", y=["valence", "arousal"])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream.pipeline.errors import ExtraUnavailable, SourceError
from affectstream.pipeline.types import FaceResult, Frame

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped]

    from affectstream.pipeline.frames.processor import FrameProcessor

__all__ = ["SourceError", "analyze_image", "analyze_video"]

_PROCESSORS: dict[tuple, tuple[Any, FrameProcessor]] = {}  # (settings) -> (config, processor)
_KEPT = 2  # processors kept: each holds a detector and a model


def _processor(config: str | Path | None, detector: str | None, model: str | None):
    """The config and processor `run` would use with these settings (built once, then reused)."""
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.errors import EXTRAS, require
    from affectstream.pipeline.frames.build import per_core, processor_from_config

    try:
        require(*EXTRAS["worker"])
    except ModuleNotFoundError as exc:
        raise _missing(exc.name, "worker") from None
    over: dict = {}
    if detector:
        over["detector"] = {"model": str(detector)}
    if model:
        over["engine"] = {"model": str(model)}
    cfg = load_config(config, over)
    key = (repr(cfg.detector), repr(cfg.engine), cfg.smoothing.window)
    if key not in _PROCESSORS:
        while len(_PROCESSORS) >= _KEPT:
            _PROCESSORS.pop(next(iter(_PROCESSORS)))
        _PROCESSORS[key] = (cfg, processor_from_config(cfg, detectors=per_core()))
    return _PROCESSORS[key]


def _missing(module: str | None, extra: str) -> ExtraUnavailable:
    return ExtraUnavailable(f"the notebook API needs {module}: pip install 'affectstream[{extra}]'")


def _read_image(image: str | Path | np.ndarray) -> np.ndarray:
    """A BGR uint8 picture from a file or an array (BGR as OpenCV reads it; grey is made BGR)."""
    import cv2

    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise SourceError(f"image {path} does not exist")
        picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if picture is None:
            raise SourceError(f"image {path} cannot be read: not an image format OpenCV decodes")
        return picture
    picture = np.asarray(image)
    if picture.dtype != np.uint8:
        raise SourceError(f"image array must be uint8 (0-255), got {picture.dtype}")
    if picture.ndim == 2:
        return cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    if picture.ndim != 3 or picture.shape[2] not in (3, 4) or min(picture.shape[:2]) < 1:
        raise SourceError(f"image array must be H x W x 3 (BGR) or H x W, got shape {picture.shape}")
    return np.ascontiguousarray(picture[:, :, :3])


def analyze_image(
    image: str | Path | np.ndarray,
    *,
    config: str | Path | None = None,
    detector: str | None = None,
    model: str | None = None,
) -> list[FaceResult]:
    """The faces of one picture: `box` (x1, y1, x2, y2 pixels), detector `score`, expression `expr`,
    `probs` per class, `valence` and `arousal` (None when the model has no valence-arousal head).

    Args:
        image: A file path, or an H x W x 3 uint8 array in BGR order (as `cv2.imread` gives; reverse an
            RGB array's channels: `rgb[:, :, ::-1]`), or H x W grey.
        config: A pipeline YAML, as `run -c`; default: the packaged defaults.
        detector: SCRFD ONNX path or insightface pack (default: the config's, `$AFFECTSTREAM_DETECTOR`).
        model: The expression model (default: the config's, the shipped one).

    Raises:
        SourceError: The picture is missing, unreadable or not a picture array.
    """
    cfg, processor = _processor(config, detector, model)
    picture = _read_image(image)
    context = processor.new_source("image", smooth_window=1)
    frame = Frame("image", 0, 0.0, time.time(), picture)
    return [face for _frame, result in processor.in_order([frame], context) for face in result.faces]


def analyze_video(
    path: str | Path,
    *,
    every: int = 1,
    progress: bool = True,
    config: str | Path | None = None,
    detector: str | None = None,
    model: str | None = None,
) -> pandas.DataFrame:
    """One row per face per analysed frame of a video file, in frame order.

    Columns: `frame` (index in the file), `pts` (its presentation time, s), `time` (s since the first
    frame), `track` (a face's id while it stays in view), `box` (x1, y1, x2, y2), `score`, `expr`, one
    column per class probability (named by the model's labels), `valence`, `arousal` (NaN when the
    model has none). Frames without a face have no row; `df.attrs` holds `source`, `frames` (analysed),
    `fps`, `labels` and `model`.

    Args:
        path: A local video file.
        every: Analyse every Nth frame (frames 0, N, 2N, ...); 1 (the default) gives what `run` publishes.
        progress: Show a tqdm progress bar.
        config, detector, model: As `analyze_image`.

    Raises:
        SourceError: The file is missing, not a video, truncated or cannot be decoded (the reason named).
    """
    from affectstream.pipeline.frames.processor import iter_file_results
    from affectstream.pipeline.sources import probe
    from affectstream.pipeline.sources.spec import source_name_from_url

    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a whole number >= 1, got {every!r}")
    try:
        import pandas as pd
        from tqdm.auto import tqdm
    except ModuleNotFoundError as exc:
        raise _missing(exc.name, "notebook") from None
    cfg, processor = _processor(config, detector, model)
    info = probe(path)  # SourceError for a file that is missing or not a video, before any work
    labels = list(processor.spec.labels)
    name = source_name_from_url(str(path))
    total = -(-info.frames // every) if info.frames else None
    rows: list[dict] = []
    frames, first_pts = 0, None
    results = iter_file_results(
        str(path), processor, name=name, smooth_window=cfg.smoothing.window, every=every
    )
    with tqdm(total=total, unit="frame", desc=name, disable=not progress) as bar:
        for _frame, r in results:
            frames += 1
            first_pts = r.pts if first_pts is None else first_pts
            for f in r.faces:
                row: dict[str, Any] = {
                    "frame": r.frame,
                    "pts": r.pts,
                    "time": r.pts - first_pts,
                    "track": f.track,
                }
                row.update(box=tuple(f.box), score=f.score, expr=f.expr)
                row.update((label, f.probs.get(label, np.nan)) for label in labels)
                row.update(valence=_nan(f.valence), arousal=_nan(f.arousal))
                rows.append(row)
            bar.update(1)
    columns = ["frame", "pts", "time", "track", "box", "score", "expr", *labels, "valence", "arousal"]
    df = pd.DataFrame(rows, columns=columns)
    df = df.astype({"frame": "int64", "track": "int64"})
    df.attrs.update(source=name, frames=frames, fps=info.fps, labels=labels, model=processor.spec.model_id)
    return df


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
