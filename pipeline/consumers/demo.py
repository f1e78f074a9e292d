"""`affectstream demo`: the whole pipeline on a clip built from images shipped with insightface.

No camera, GPU or network is needed once the detector weights are present: the clip is made from
the real face photos in `insightface/data/images/` (a six-face group and a portrait), encoded with
PyAV, run through the same supervisor and workers as `affectstream run`, and summarised from the
results stream in Redis.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from affectstream.pipeline.streams.keys import frames_key

CLIP_SIZE = (640, 360)
CLIP_FPS = 10


def _fit(image: np.ndarray, width: int, height: int, zoom: float, shift: float) -> np.ndarray:
    """Crop a window of the image (zoomed and shifted) and scale it to width x height (slow pan)."""
    import cv2

    h, w = image.shape[:2]
    win_w = min(w, int(h * width / height / zoom))
    win_h = min(h, int(win_w * height / width))
    x0 = int((w - win_w) * shift)
    y0 = (h - win_h) // 2
    return cv2.resize(image[y0 : y0 + win_h, x0 : x0 + win_w], (width, height), interpolation=cv2.INTER_AREA)


def _letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    resized = cv2.resize(image, (int(w * scale), int(h * scale)))
    canvas = np.full((height, width, 3), 32, np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return canvas


def build_demo_clip(out: Path, seconds: float = 4.0) -> Path:
    """Write a short H.264 clip from insightface's bundled images; returns its path."""
    import av
    import cv2
    import insightface

    images = Path(insightface.__file__).parent / "data" / "images"
    group = cv2.imread(str(images / "t1.jpg"))
    portrait = cv2.imread(str(images / "Tom_Hanks_54745.png"))
    if group is None or portrait is None:
        raise FileNotFoundError(f"insightface's sample images are missing under {images}")
    width, height = CLIP_SIZE
    n = int(seconds * CLIP_FPS)
    frames = [_fit(group, width, height, 1.0 + 0.15 * i / n, i / n) for i in range(n // 2)]
    frames += [_letterbox(portrait, width, height)] * (n - n // 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def summarise(client, sources: list[str], since_ms: int = 0) -> list[dict]:
    """Per-source totals read back from the results streams (entries added since `since_ms`).

    FPS is frames over the time from the first frame's capture to the last entry's XADD (entry ids
    carry the server's millisecond clock), so model loading and start-up are not counted.
    """
    rows = []
    for name in sources:
        frames = faces = 0
        exprs: Counter = Counter()
        vals, ars = [], []
        first_ts = last_added = 0.0
        for _entry_id, fields in client.xrange(frames_key(name), min=f"{since_ms}-0"):
            if not frames:
                first_ts = float(fields[b"ts"])
            # when it was added: capture time + decode-to-XADD latency (a file pass's ids are not times)
            last_added = float(fields[b"ts"]) + float(fields[b"latency_ms"]) / 1000.0
            frames += 1
            for face in json.loads(fields[b"faces"]):
                faces += 1
                exprs[face["expr"]] += 1
                if face["valence"] is not None:
                    vals.append(face["valence"])
                    ars.append(face["arousal"])
        rows.append(
            {
                "source": name,
                "frames": frames,
                "faces": faces,
                "expressions": dict(exprs.most_common()),
                "valence": float(np.mean(vals)) if vals else None,
                "arousal": float(np.mean(ars)) if ars else None,
                "fps": frames / max(last_added - first_ts, 1e-3) if frames else 0.0,
            }
        )
    return rows


def format_summary(rows: list[dict]) -> str:
    from affectstream.pipeline.tables import format_table

    def number(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    cells = [
        (
            r["source"],
            r["frames"],
            r["faces"],
            f"{r['fps']:.1f}",
            number(r["valence"]),
            number(r["arousal"]),
            ", ".join(f"{k} {v}" for k, v in r["expressions"].items()) or "-",
        )
        for r in rows
    ]
    header = ("source", "frames", "faces", "fps", "valence", "arousal", "expressions")
    return format_table(header, cells, align="<>>>>><", rule=True)
