"""Benchmark inputs: the shared videos, and clips built from shared media (cached under the work dir).

Two clips are built once and reused (their file names carry their parameters, so a change rebuilds them):

* the many-face clip: `../shared/media/images/multi_face.jpg` (five faces) with a slow pan and zoom, so
  faces move between frames and the tracker has work to do;
* the live clip: the frames of `WolfgangLanger_Pexels.mp4` re-timed to exactly 30 fps (640x360), the
  "one 640x360 30 fps stream" of the live-mode latency target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstream.pipeline.sources.spec import VIDEO_SUFFIXES
from affectstream.settings import env

REPO = Path(__file__).resolve().parents[1]
LIVE_SOURCE_VIDEO = "WolfgangLanger_Pexels.mp4"


class InputError(FileNotFoundError):
    """A benchmark input is missing; the message names the path and how to provide it."""


def shared_dir() -> Path:
    """The shared data folder: `$AFFECTSTREAM_SHARED`, else `../shared` next to the repository."""
    return Path(os.environ.get(env.SHARED, REPO.parent / "shared")).resolve()


def need(path: Path) -> Path:
    if not path.exists():
        raise InputError(
            f"{path} is missing: set AFFECTSTREAM_SHARED to the shared/ folder (see ../shared/README.md)"
        )
    return path


def shared_videos() -> list[Path]:
    """Every video in `<shared>/media/videos`, sorted by name."""
    folder = need(shared_dir() / "media" / "videos")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"{folder} holds no video ({', '.join(VIDEO_SUFFIXES)})")
    return videos


def detector_path() -> Path:
    """SCRFD-500M: `$AFFECTSTREAM_DETECTOR`, else `<shared>/models/scrfd_500m.onnx`."""
    env_path = os.environ.get(env.DETECTOR)
    return need(Path(env_path) if env_path else shared_dir() / "models" / "scrfd_500m.onnx")


def model_path(model: str | None) -> Path:
    """The MTL-GCN ONNX: `model`, else what the pipeline runs for `engine.model: default` on this CPU."""
    from affectstream.engines import default_model_for

    return Path(model) if model else default_model_for("onnxruntime", device="cpu")


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int
    width: int
    height: int
    fps: float
    codec: str


def probe(path: Path) -> VideoInfo:
    """Frame count (by decoding: container counts can be wrong), size, rate and codec of a video."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = sum(1 for _ in container.decode(stream))
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        return VideoInfo(
            path,
            frames,
            stream.codec_context.width,
            stream.codec_context.height,
            rate,
            stream.codec_context.name,
        )


def iter_bgr(path: Path, limit: int = 0) -> Iterator[np.ndarray]:
    """BGR frames of a video, decoded as the archive sources do (frame threading on)."""
    from itertools import islice

    from affectstream.pipeline.sources import read_video

    return islice((frame.image for frame in read_video(path)), limit or None)


def _encode(out: Path, frames: Iterator[np.ndarray], fps: int, size: tuple[int, int]) -> Path:
    """H.264 (yuv420p, 30 fps timebase) into a temporary name, renamed when complete."""
    import av

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part" + out.suffix)
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(out)
    return out


def _pan_zoom(image: np.ndarray, count: int, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """`count` views of `image`: a window that zooms in by 20% while sliding across the picture."""
    import cv2

    width, height = size
    h, w = image.shape[:2]
    base = min(w / width, h / height)  # source pixels per output pixel when the window fills the image
    for i in range(count):
        t = i / max(1, count - 1)
        scale = base / (1.0 + 0.2 * t)
        win_w, win_h = width * scale, height * scale
        x0 = (w - win_w) * (0.5 + 0.5 * np.sin(2 * np.pi * t) * 0.9)
        y0 = (h - win_h) * 0.5
        matrix = np.array([[1 / scale, 0, -x0 / scale], [0, 1 / scale, -y0 / scale]], np.float64)
        yield cv2.warpAffine(
            image, matrix, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )


def many_face_clip(workdir: Path, frames: int, fps: int = 30, size: tuple[int, int] = (640, 360)) -> Path:
    """The many-face clip (built once per parameter set)."""
    import cv2

    out = workdir / f"many_faces_{size[0]}x{size[1]}_{fps}fps_{frames}f.mp4"
    if out.is_file():
        return out
    src = need(shared_dir() / "media" / "images" / "multi_face.jpg")
    image = cv2.imread(str(src))
    if image is None:
        raise InputError(f"{src} is not a readable image")
    return _encode(out, _pan_zoom(image, frames, size), fps, size)


def live_clip(workdir: Path, fps: int = 30, size: tuple[int, int] | None = None) -> Path:
    """A clip at exactly `fps` (the shared 640x360 WolfgangLanger video, re-timed), built once; `size`:
    scaled to it (a 1920x1080 camera: the decode, conversion and detector-input cost of real 1080p H.264,
    the faces of the 640x360 original)."""
    import cv2

    src = need(shared_dir() / "media" / "videos" / LIVE_SOURCE_VIDEO)
    first = next(iter_bgr(src, limit=1))
    own = (first.shape[1], first.shape[0])
    size = size or own
    label = "" if size == own else f"_{size[0]}x{size[1]}"
    out = workdir / f"live_{src.stem}{label}_{fps}fps.mp4"
    if out.is_file():
        return out
    frames = iter_bgr(src)
    if size != own:
        frames = (cv2.resize(image, size, interpolation=cv2.INTER_CUBIC) for image in frames)
    return _encode(out, frames, fps, size)
