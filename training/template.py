"""The landmark template: where SCRFD puts the five landmarks on the training images.

The pipeline aligns each detected face with a similarity transform onto ``spec.template``; for the crops
to be framed like the training images, the template is the mean SCRFD landmark position over a sample of
training images, expressed in model-input pixels.

``python -m training.template -c <recipe>`` writes the recipe's template JSON and the side-by-side check
``docs/training/framing_check.png`` (pipeline-style aligned video crops above FER+ training images).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from affectstream.training.config import REPO, expand

DETECT_SIDE = 192  # SCRFD misses faces on 48 px crops; at ~192 px it finds nearly all of them
PAD = 0.5  # fraction of the side added around a tight crop so the detector sees some context


def load_detector(path: str | Path, size: int):
    import insightface

    det = insightface.model_zoo.get_model(str(path))
    det.prepare(ctx_id=-1, input_size=(size, size), det_thresh=0.3)
    return det


def detector_side(crop_side: int) -> tuple[float, int]:
    """(upscale factor, detector input side) for square crops of `crop_side` pixels."""
    scale = max(1.0, DETECT_SIDE / crop_side)
    big = int(round(crop_side * scale))
    return scale, big + 2 * int(PAD * big)


def landmarks_on_crop(det, crop: np.ndarray) -> np.ndarray | None:
    """The best face's 5 landmarks in the crop's pixel coordinates, or None."""
    import cv2

    side = crop.shape[0]
    bgr = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.ndim == 2 or crop.shape[2] == 1 else crop
    scale, _ = detector_side(side)
    big = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    pad = int(PAD * big.shape[0])
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    _, kps = det.detect(big, max_num=1)
    if kps is None or len(kps) == 0:
        return None
    # Undo pad and upscale; cv2.resize maps pixel centres, hence the half-pixel terms.
    pts = (kps[0] - pad + 0.5) / scale - 0.5
    return pts if np.all((pts > -0.25 * side) & (pts < 1.25 * side)) else None


def compute_template(crops: np.ndarray, detector_path: Path) -> dict:
    """Mean SCRFD landmarks over [N, S, S, C] training crops (BGR or grey), in crop pixels."""
    side = crops.shape[1]
    det = load_detector(detector_path, detector_side(side)[1])
    found = [pts for pts in (landmarks_on_crop(det, c) for c in crops) if pts is not None]
    if not found:
        raise RuntimeError("the detector found no face in any template image")
    mean = np.mean(found, axis=0)
    return {
        "template": [[round(float(x), 3), round(float(y), 3)] for x, y in mean],
        "input_size": side,
        "images": len(crops),
        "detected": len(found),
        "std_px": [round(float(v), 3) for v in np.std(found, axis=0).mean(0)],
    }


def align(frame_bgr: np.ndarray, kps: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Pipeline-style alignment: a similarity transform of the landmarks onto the template."""
    import cv2

    m, _ = cv2.estimateAffinePartial2D(kps.astype(np.float32), template.astype(np.float32), method=cv2.LMEDS)
    return cv2.warpAffine(frame_bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def framing_check(video: Path, detector_path: Path, refs: np.ndarray, template: dict, out: Path) -> None:
    """Save aligned grey video crops (top row) above training crops (bottom row), 3x enlarged."""
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
    refs_grey = [r[..., 0].copy() if r.shape[2] == 1 else cv2.cvtColor(r, cv2.COLOR_RGB2GRAY) for r in refs]
    refs_grey = refs_grey[: len(crops)]
    for row in (crops, refs_grey):  # mark the template points so the framing can be compared by eye
        for img in row:
            for x, y in tpl:
                cv2.circle(img, (int(round(x)), int(round(y))), 1, 255, -1)
    grid = np.vstack([np.hstack(crops), np.hstack(refs_grey)])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


def main(argv: list[str] | None = None) -> None:
    from affectstream.training.config import load_recipe
    from affectstream.training.data import create_dataset

    shared = Path(expand("${AFFECTSTREAM_SHARED}"))
    p = argparse.ArgumentParser(prog="python -m training.template")
    p.add_argument(
        "-c",
        "--config",
        default=str(REPO / "configs/model/ferplus_mtlgcn.yaml"),
        help="recipe whose training crops define the framing",
    )
    p.add_argument("--detector", type=Path, default=shared / "models/scrfd_500m.onnx")
    p.add_argument("--video", type=Path, default=shared / "media/videos/WolfgangLanger_Pexels.mp4")
    p.add_argument("-n", type=int, default=500, help="number of training crops to average over")
    p.add_argument("--out", type=Path, help="template JSON (default: the recipe's export.template)")
    p.add_argument("--check", type=Path, default=REPO / "docs/training/framing_check.png")
    args = p.parse_args(argv)
    recipe = load_recipe(args.config)
    samples = create_dataset(recipe.data, recipe.data.train_split)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(samples), min(args.n, len(samples)), replace=False))
    crops = samples.images[idx]
    if crops.shape[3] == 3:  # the readers give RGB; SCRFD wants BGR
        crops = crops[..., ::-1].copy()
    template = compute_template(crops, args.detector)
    template.update(detector=args.detector.name, recipe=Path(args.config).name)
    out = args.out or (REPO / recipe.export.template)
    out.write_text(json.dumps(template, indent=1) + "\n")
    print(json.dumps(template))
    framing_check(args.video, args.detector, samples.images[idx[:8]], template, args.check)
    print(f"wrote {out} and {args.check}")


if __name__ == "__main__":
    main()
