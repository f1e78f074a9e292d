"""Draw FaceDetector output (box, score, five landmarks) on an image.

Usage: .venv/bin/python docs/detection/draw_detections.py IMAGE OUT [--detector MODEL] [--input-size 640x640]
"""

from __future__ import annotations

import argparse
import os

import cv2

from affectstream.pipeline.frames.detect import FaceDetector

# insightface landmark order: left eye, right eye, nose, left and right mouth corner (BGR colours)
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("out")
    shared = os.environ.get("AFFECTSTREAM_SHARED", "../shared")
    parser.add_argument("--detector", default=f"{shared}/models/scrfd_500m.onnx")
    parser.add_argument("--input-size", default="640x640", help="WxH, or auto")
    args = parser.parse_args()
    size = "auto" if args.input_size == "auto" else tuple(int(v) for v in args.input_size.split("x"))
    image = cv2.imread(args.image)
    if image is None:
        raise SystemExit(f"cannot read image {args.image}")
    faces = FaceDetector(args.detector, input_size=size).detect(image)
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), (40, 220, 40), thickness)
        cv2.putText(
            image,
            f"{face.score:.2f}",
            (x1, max(12, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness,
            (40, 220, 40),
            thickness,
        )
        for (x, y), colour in zip(face.landmarks, COLOURS, strict=True):
            cv2.circle(image, (int(round(x)), int(round(y))), thickness + 1, colour, -1)
    cv2.imwrite(args.out, image)
    print(f"{len(faces)} faces -> {args.out}")


if __name__ == "__main__":
    main()
