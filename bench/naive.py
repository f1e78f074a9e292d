"""The naive baseline: the loop a user would write without affectstream.

For each decoded frame: detect with insightface's own SCRFD (`model_zoo.get_model(...).detect`), crop
each face box, run the model on one face at a time, and `XADD` one entry synchronously. Same detector
file, detector input size, threshold and model as the pipeline run it is compared with; nothing is
overlapped or batched. The time of each part is kept, to show where a naive loop spends it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.inputs import iter_bgr


@dataclass
class NaiveRun:
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    parts: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("decode", "detect", "crop_model", "xadd"), 0.0)
    )

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class NaiveLoop:
    """Loads the detector and the model the way their own documentation shows, once.

    Args:
        detector: SCRFD ONNX file.
        model: The MTL-GCN ONNX file (its spec says crop size, colour and normalisation).
        det_size: Detector input (width, height), or "auto" (the pipeline's size rule, per frame).
        threshold: Detector score threshold.
    """

    def __init__(
        self, detector: Path, model: Path, det_size: tuple[int, int] | str, threshold: float = 0.5
    ) -> None:
        import onnxruntime
        from insightface.model_zoo import get_model

        from affectstream.engines.spec import EngineSpec

        self.det = get_model(str(detector), providers=["CPUExecutionProvider"])
        self.auto = det_size == "auto"
        self.det.prepare(
            ctx_id=-1, input_size=(640, 640) if self.auto else tuple(det_size), det_thresh=threshold
        )
        self.session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.spec = EngineSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map, model)

    def _face_input(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        import cv2

        h, w = self.spec.input_size
        x1, y1, x2, y2 = (int(v) for v in box[:4])
        crop = image[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
        crop = cv2.resize(crop, (w, h))
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY if self.spec.colour == "gray" else cv2.COLOR_BGR2RGB)
        x = crop.astype(np.float32) / 255.0
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        mean = np.asarray(self.spec.mean, np.float32)[:, None, None]
        std = np.asarray(self.spec.std, np.float32)[:, None, None]
        return ((x - mean) / std)[None].astype(np.float32)

    def run(self, videos: list[Path], client, maxlen: int = 100_000) -> NaiveRun:
        """Process every frame of `videos` in order and publish one entry per frame; returns timings."""
        from affectstream.pipeline.frames.scrfd import auto_input_size
        from affectstream.pipeline.streams.keys import frames_key

        out = NaiveRun()
        labels = self.spec.labels
        keys = []
        start = time.perf_counter()
        for vi, video in enumerate(videos):
            key = frames_key(f"bench-naive-{vi}")
            keys.append(key)
            frames = iter_bgr(video)
            index = 0
            while True:
                t0 = time.perf_counter()
                image = next(frames, None)
                t1 = time.perf_counter()
                out.parts["decode"] += t1 - t0
                if image is None:
                    break
                size = auto_input_size(image.shape[1], image.shape[0]) if self.auto else None
                bboxes, _kpss = self.det.detect(image, input_size=size)
                t2 = time.perf_counter()
                faces = []
                for box in bboxes:
                    probs, va = self.session.run(None, {"input": self._face_input(image, box)})
                    best = int(np.argmax(probs[0]))
                    faces.append(
                        {
                            "box": [round(float(v), 1) for v in box[:4]],
                            "score": round(float(box[4]), 4),
                            "expr": labels[best],
                            "probs": {k: round(float(p), 4) for k, p in zip(labels, probs[0], strict=True)},
                            "valence": round(float(va[0, 0]), 4),
                            "arousal": round(float(va[0, 1]), 4),
                        }
                    )
                t3 = time.perf_counter()
                client.xadd(
                    key,
                    {"frame": index, "ts": time.time(), "n": len(faces), "faces": json.dumps(faces)},
                    maxlen=maxlen,
                    approximate=True,
                )
                out.parts["detect"] += t2 - t1
                out.parts["crop_model"] += t3 - t2
                out.parts["xadd"] += time.perf_counter() - t3
                out.frames += 1
                out.faces += len(faces)
                index += 1
        out.seconds = time.perf_counter() - start
        client.delete(*keys)
        return out
