"""BlazeFace (Apache-2.0 weights) against SCRFD-500M (non-commercial) on the shared videos and images.

Every frame of every shared video (and the shared still images) goes through SCRFD at 640x640, the
repository's default detector, and through each shipped BlazeFace model. SCRFD's faces are the reference:

* recall: SCRFD faces that a BlazeFace face overlaps at IoU >= 0.5 (and >= 0.3: the two box conventions
  differ, BlazeFace's boxes are tighter);
* extra: BlazeFace faces overlapping no SCRFD face at IoU >= 0.3 (a false positive, or a face SCRFD missed);
* landmarks: each point's distance to SCRFD's, as a fraction of SCRFD's eye distance (matched faces);
* detection time: the median of one call, one intra-op thread;
* the model's outputs on the same faces, each detector's landmarks aligning its own crop: expression agrees
  (same top class), |valence| and |arousal| differences (mean), the shipped model.

Prints a table and writes JSON (`--out`). Docs: docs/detection/README.md ("BlazeFace").

    .venv/bin/python bench/detectors.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from affectstream.pipeline.tables import format_table  # noqa: E402
from bench.inputs import detector_path, need, shared_dir, shared_videos  # noqa: E402

BLAZEFACE = ("blazeface_short_range", "blazeface_full_range")
BASELINE = "scrfd_2.5g"


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] IoU of x1, y1, x2, y2 boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def frames():
    """(input name, BGR frame) of every shared video frame and every shared image."""
    import cv2

    from affectstream.pipeline.sources.files import read_video

    for video in shared_videos():
        for frame in read_video(video):
            yield video.name, frame.image
    images = need(shared_dir() / "media" / "images")
    for image in sorted(images.glob("*.jpg")):
        yield image.name, cv2.imread(str(image))


class Tally:
    """What one detector found, against SCRFD-500M's faces, input by input."""

    def __init__(self) -> None:
        self.ref = self.r50 = self.r30 = self.found = self.extra = self.same = 0
        self.ious: list[float] = []
        self.kps: list[np.ndarray] = []
        self.dv: list[float] = []
        self.da: list[float] = []
        self.ms: list[float] = []
        self.per_input: dict[str, list[int]] = {}  # input -> [SCRFD faces, found at IoU >= 0.5, extra]

    def add(self, source: str, ref, ref_out, found, out) -> None:
        """One input: SCRFD's faces `ref` and the model's outputs on them, this detector's `found` and `out`."""
        boxes = np.array([f.box for f in found]).reshape(-1, 4)
        ref_boxes = np.array([f.box for f in ref]).reshape(-1, 4)
        overlap = iou(ref_boxes, boxes) if len(ref) and len(found) else np.zeros((len(ref), len(found)))
        extra = int((overlap.max(axis=0, initial=0.0) < 0.3).sum()) if len(found) else 0
        per = self.per_input.setdefault(source, [0, 0, 0])
        self.ref, self.found, self.extra = self.ref + len(ref), self.found + len(found), self.extra + extra
        per[0] += len(ref)
        per[2] += extra
        if not len(found):
            return
        for i, face in enumerate(ref):
            j = int(overlap[i].argmax())
            best = float(overlap[i, j])
            self.r30 += best >= 0.3
            if best < 0.5:
                continue
            self.r50 += 1
            per[1] += 1
            self.ious.append(best)
            eye = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
            self.kps.append(np.linalg.norm(found[j].landmarks - face.landmarks, axis=1) / eye)
            self.same += int(out[0][j].argmax() == ref_out[0][i].argmax())
            self.dv.append(abs(float(out[1][j, 0] - ref_out[1][i, 0])))
            self.da.append(abs(float(out[1][j, 1] - ref_out[1][i, 1])))

    def report(self) -> dict:
        kps = np.array(self.kps).reshape(-1, 5)
        mean = lambda values: float(np.mean(values)) if values else None  # noqa: E731
        return {
            "scrfd_faces": self.ref,
            "blazeface_faces": self.found,
            "recall_iou50": self.r50 / max(self.ref, 1),
            "recall_iou30": self.r30 / max(self.ref, 1),
            "extra": self.extra,
            "mean_iou": mean(self.ious),
            "landmark_error_per_point": [round(float(v), 3) for v in kps.mean(axis=0)] if len(kps) else None,
            "expression_agreement": self.same / max(self.r50, 1),
            "valence_mean_abs_diff": mean(self.dv),
            "arousal_mean_abs_diff": mean(self.da),
            "detect_ms_median": float(np.median(self.ms)),
            "recall_per_input": {k: f"{v[1]}/{v[0]} (+{v[2]})" for k, v in self.per_input.items()},
        }


def timed(detector, image):
    """(faces, milliseconds) of one detect call."""
    start = time.monotonic()
    faces = detector.detect(image)
    return faces, (time.monotonic() - start) * 1000


def compare(limit: int = 0, threshold: float | None = None) -> dict:
    from affectstream.engines import create_engine
    from affectstream.engines.preprocess import to_input
    from affectstream.pipeline.frames.align import align_face
    from affectstream.pipeline.frames.blazeface import BlazeFaceDetector
    from affectstream.pipeline.frames.detect import FaceDetector

    scrfd = FaceDetector(detector_path(), input_size=(640, 640), threads=1)
    ref_ms: list[float] = []
    ours = {name: BlazeFaceDetector(name, threads=1, threshold=threshold) for name in BLAZEFACE}
    # What changing detector costs anyway: a larger SCRFD against the small one.
    ours[BASELINE] = FaceDetector(need(shared_dir() / "models" / "scrfd_2.5g.onnx"), threads=1)
    engine = create_engine("onnxruntime", "default")
    spec = engine.spec

    def outputs(image, faces):
        crops = [align_face(image, face.landmarks, spec) for face in faces]
        return engine.infer(to_input(crops, spec)) if crops else (np.zeros((0, 0)), np.zeros((0, 2)))

    tallies = {name: Tally() for name in ours}
    count = 0
    for source, image in frames():
        count += 1
        if limit and count > limit:
            break
        ref, ms = timed(scrfd, image)
        ref_ms.append(ms)
        ref_out = outputs(image, ref)
        for name, detector in ours.items():
            found, ms = timed(detector, image)
            tallies[name].ms.append(ms)
            tallies[name].add(source, ref, ref_out, found, outputs(image, found))
    report: dict = {
        "inputs": count,
        "reference": f"SCRFD-500M 640x640 ({Path(detector_path()).name})",
        "reference_detect_ms_median": float(np.median(ref_ms)),
        "threshold": threshold,
    }
    report.update({name: tally.report() for name, tally in tallies.items()})
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "var" / "detectors.json")
    parser.add_argument("--limit", type=int, default=0, help="stop after this many inputs (0: all)")
    parser.add_argument("--threshold", type=float, help="BlazeFace's score threshold (default: its own, 0.6)")
    args = parser.parse_args(argv)
    report = compare(args.limit, args.threshold)
    rows = []
    for name in (*BLAZEFACE, BASELINE):
        r = report[name]
        rows.append(
            [
                name,
                f"{r['blazeface_faces']}/{r['scrfd_faces']}",
                f"{r['recall_iou50']:.1%}",
                f"{r['recall_iou30']:.1%}",
                str(r["extra"]),
                f"{r['mean_iou']:.3f}" if r["mean_iou"] is not None else "-",
                " ".join(f"{v:.2f}" for v in r["landmark_error_per_point"] or []),
                f"{r['expression_agreement']:.1%}",
                f"{r['valence_mean_abs_diff']:.3f} / {r['arousal_mean_abs_diff']:.3f}"
                if r["valence_mean_abs_diff"] is not None
                else "-",
                f"{r['detect_ms_median']:.1f}",
            ]
        )
    header = [
        "model",
        "faces/SCRFD-500M's",
        "recall IoU>=.5",
        ">=.3",
        "extra",
        "IoU",
        "landmark err (eye dist)",
        "same expression",
        "|dV| / |dA|",
        "ms/frame",
    ]
    print(
        f"{report['inputs']} inputs; reference {report['reference']}, "
        f"{report['reference_detect_ms_median']:.1f} ms/frame (median, one thread)"
    )
    print(format_table(header, rows))
    for name in (*BLAZEFACE, BASELINE):
        print(name, "recall per input:", report[name]["recall_per_input"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
