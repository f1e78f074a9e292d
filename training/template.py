"""The landmark template: where SCRFD puts the five landmarks on the training images.

The pipeline aligns each detected face with a similarity transform onto ``spec.template``; for the crops
to be framed like the training images, the template is the mean SCRFD landmark position over a sample of
training images, expressed in model-input pixels.

``python -m training.template`` writes ``configs/model/ferplus_template.json`` and the side-by-side check
``docs/training/framing_check.png`` (pipeline-style aligned video crops above FER+ training images).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training.config import REPO, expand

UPSCALE = 4  # SCRFD misses faces at 48 px; at 192 px it finds nearly all of them
PAD = 0.5  # fraction of the side added around the tight FER crop so the detector sees some context


def load_detector(path: str | Path, size: int):
    import insightface

    det = insightface.model_zoo.get_model(str(path))
    det.prepare(ctx_id=-1, input_size=(size, size), det_thresh=0.3)
    return det


def landmarks_on_crop(det, img_bgr: np.ndarray) -> np.ndarray | None:
    """The best face's 5 landmarks in the original crop's pixel coordinates, or None."""
    import cv2

    side = img_bgr.shape[0]
    big = cv2.resize(img_bgr, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    pad = int(PAD * big.shape[0])
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    _, kps = det.detect(big, max_num=1)
    if kps is None or len(kps) == 0:
        return None
    # Undo pad and upscale; cv2.resize maps pixel centres, hence the half-pixel terms.
    pts = (kps[0] - pad + 0.5) / UPSCALE - 0.5
    return pts if np.all((pts > -0.25 * side) & (pts < 1.25 * side)) else None


def compute_template(image_paths: list[Path], detector_path: Path, input_size: int) -> dict:
    """Mean landmarks over the images, rescaled from the source crop side to `input_size` pixels."""
    import cv2

    det = None
    found = []
    side = None
    for path in image_paths:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        side = img.shape[0]
        if det is None:
            big = int(side * UPSCALE * (1 + 2 * PAD))
            det = load_detector(detector_path, big)
        pts = landmarks_on_crop(det, img)
        if pts is not None:
            found.append(pts)
    if not found:
        raise RuntimeError("the detector found no face in any template image")
    mean = np.mean(found, axis=0)
    scaled = (mean + 0.5) * input_size / side - 0.5
    return {
        "template": [[round(float(x), 3), round(float(y), 3)] for x, y in scaled],
        "input_size": input_size,
        "source_side": side,
        "images": len(image_paths),
        "detected": len(found),
        "std_px": [round(float(v), 3) for v in (np.std(found, axis=0) * input_size / side).mean(0)],
    }


def align(frame_bgr: np.ndarray, kps: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Pipeline-style alignment: a similarity transform of the landmarks onto the template."""
    import cv2

    m, _ = cv2.estimateAffinePartial2D(kps.astype(np.float32), template.astype(np.float32), method=cv2.LMEDS)
    return cv2.warpAffine(frame_bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def framing_check(video: Path, detector_path: Path, train_paths: list[Path], template: dict, out: Path) -> None:
    """Save aligned grey video crops (top row) above FER+ training images (bottom row), 3x enlarged."""
    import cv2

    size = template["input_size"]
    tpl = np.asarray(template["template"], np.float32)
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    det = load_detector(detector_path, 640)
    crops = []
    for idx in np.linspace(0, total - 1, 8).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, frame = cap.read()
        if not ok:
            continue
        _, kps = det.detect(frame, max_num=1)
        if kps is None or len(kps) == 0:
            continue
        crops.append(cv2.cvtColor(align(frame, kps[0], tpl, size), cv2.COLOR_BGR2GRAY))
    cap.release()
    refs = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (size, size)) for p in train_paths[: len(crops)]]
    for row in (crops, refs):  # mark the template points so the framing can be compared by eye
        for img in row:
            for x, y in tpl:
                cv2.circle(img, (int(round(x)), int(round(y))), 1, 255, -1)
    grid = np.vstack([np.hstack(crops), np.hstack(refs)])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


def main(argv: list[str] | None = None) -> None:
    shared = Path(expand("${AFFECTSTREAM_SHARED}"))
    p = argparse.ArgumentParser(prog="python -m training.template")
    p.add_argument("--images", type=Path, default=shared / "data/ferplus/FER2013Train")
    p.add_argument("--detector", type=Path, default=shared / "models/scrfd_500m.onnx")
    p.add_argument("--video", type=Path, default=shared / "media/videos/WolfgangLanger_Pexels.mp4")
    p.add_argument("-n", type=int, default=1000, help="number of training images to average over")
    p.add_argument("--size", type=int, default=64, help="model input side in pixels")
    p.add_argument("--out", type=Path, default=REPO / "configs/model/ferplus_template.json")
    p.add_argument("--check", type=Path, default=REPO / "docs/training/framing_check.png")
    args = p.parse_args(argv)
    paths = sorted(args.images.glob("*.png"))
    rng = np.random.default_rng(0)
    sample = [paths[i] for i in sorted(rng.choice(len(paths), min(args.n, len(paths)), replace=False))]
    template = compute_template(sample, args.detector, args.size)
    template["detector"] = args.detector.name
    args.out.write_text(json.dumps(template, indent=1) + "\n")
    print(json.dumps(template))
    framing_check(args.video, args.detector, sample[:8], template, args.check)
    print(f"wrote {args.out} and {args.check}")


if __name__ == "__main__":
    main()
