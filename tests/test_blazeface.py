"""`detector.model: blazeface_full_range` / `_short_range`: MediaPipe's detectors (Apache-2.0 weights, shipped) on the shared videos.

SCRFD-500M (the repository's default) is the reference: BlazeFace finds the same faces, its five landmarks
land where SCRFD's do, and the model says the same about the faces it aligns (docs/detection/README.md has the
full comparison, `bench/detectors.py`).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from affectstream.pipeline.errors import DetectorError
from affectstream.pipeline.frames.blazeface import (
    MODELS,
    MOUTH_WIDTH,
    BlazeFaceDetector,
    anchor_centres,
    five_points,
)
from tests.conftest import REPO, need_shared


def _frames(name: str, every: int, limit: int = 0):
    from affectstream.pipeline.sources.files import read_video

    out = [
        frame.image for frame in read_video(need_shared("media", "videos", name)) if frame.index % every == 0
    ]
    return out[:limit] if limit else out


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def scrfd():
    from affectstream.pipeline.frames.detect import FaceDetector

    return FaceDetector(need_shared("models", "scrfd_500m.onnx"), input_size=(640, 640), threads=1)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_anchors_match_the_model_outputs(name):
    detector = BlazeFaceDetector(name, threads=1)
    rows = detector.session.get_outputs()[0].shape[1]
    assert anchor_centres(detector.spec).shape == (rows, 2)
    assert detector.input_size == (detector.spec.side, detector.spec.side)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_faces_scrfd_finds_with_landmarks_where_scrfd_puts_them(name, scrfd):
    detector = BlazeFaceDetector(name, threads=1)
    frames = _frames("single_face.mp4", 6) + _frames("WolfgangLanger_Pexels.mp4", 40)
    for image in frames:
        ref = scrfd.detect(image)
        found = detector.detect(image)
        assert len(ref) == 1 and len(found) == 1
        face, want = found[0], ref[0]
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert _iou(face.box, want.box) > 0.5
        eye = float(np.linalg.norm(want.landmarks[1] - want.landmarks[0]))
        error = np.linalg.norm(face.landmarks - want.landmarks, axis=1) / eye
        assert error[:3].max() < 0.2 and error[3:].max() < 0.35, error  # eyes, nose; derived mouth corners
        left, right, nose, mouth_l, mouth_r = face.landmarks
        assert left[0] < right[0] and mouth_l[0] < mouth_r[0]  # SCRFD's order: image left first
        assert max(left[1], right[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_face_no_detection(name, scrfd):
    """Every frame without a face (SCRFD's word) of the videos that have such frames: none at the default
    threshold (0.6); at MediaPipe's 0.5 a few frames of these did show one."""
    detector = BlazeFaceDetector(name, threads=1)
    empty = [image for video in ("no_face.mp4", "face_noface.mov") for image in _frames(video, 1)]
    empty = [image for image in empty if not scrfd.detect(image)]
    assert len(empty) > 150
    assert sum(len(detector.detect(image)) for image in empty) == 0


def test_the_model_says_the_same_with_either_detector():
    """The expression of each face of a video, aligned by BlazeFace's landmarks or by SCRFD's."""
    from affectstream.api import analyze_video

    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    ref = analyze_video(
        video, every=8, progress=False, detector=str(need_shared("models", "scrfd_500m.onnx"))
    )
    ours = analyze_video(video, every=8, progress=False, detector="blazeface_full_range")
    assert len(ref) == len(ours) == 59  # one face in each of the 59 analysed frames
    same = float((ref["expr"].to_numpy() == ours["expr"].to_numpy()).mean())
    valence = float(np.abs(ref["valence"].to_numpy() - ours["valence"].to_numpy()).mean())
    assert same >= 0.85 and valence < 0.08, (same, valence)


def test_five_points_follow_the_eye_line():
    # A face turned by 120 degrees: its first eye is no longer on the image's left, and stays first.
    angle = np.radians(120)
    along, down = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    first, second = np.array([100.0, 100.0]), np.array([100.0, 100.0]) + 40 * along
    mouth = (first + second) / 2 + 45 * down
    six = np.array([[first, second, (first + second) / 2 + 20 * down, mouth, first - along, second + along]])
    points = five_points(six)[0]
    np.testing.assert_allclose(points[:2], [first, second])
    np.testing.assert_allclose((points[3] + points[4]) / 2, mouth)
    np.testing.assert_allclose(points[4] - points[3], 40 * MOUTH_WIDTH * along)


def test_the_config_selects_it_with_its_own_threshold():
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.frames.build import load_detectors

    cfg = load_config(None, {"detector": {"model": "blazeface_short_range"}})
    (detector,) = load_detectors(cfg.detector.model, threshold=cfg.detector.threshold)
    assert isinstance(detector, BlazeFaceDetector) and detector.threshold == 0.6
    assert detector.providers == ["CPUExecutionProvider"]
    cfg = load_config(None, {"detector": {"model": "blazeface_full_range", "threshold": 0.4}})
    assert load_detectors(cfg.detector.model, threshold=cfg.detector.threshold)[0].threshold == 0.4


def test_bad_settings_are_named():
    with pytest.raises(DetectorError, match="runs on 'onnxruntime' only"):
        BlazeFaceDetector("blazeface_full_range", backend="torch")
    with pytest.raises(DetectorError, match="between 0 and 1"):
        BlazeFaceDetector("blazeface_short_range", threshold=1.5)
    with pytest.raises(DetectorError, match="no BlazeFace model 'blazeface_tiny'"):
        BlazeFaceDetector("blazeface_tiny")


def test_render_with_blazeface(tmp_path):
    """The command line: `--detector blazeface` on a verb that detects faces."""
    video = need_shared("media", "videos", "single_face.mp4")
    out = tmp_path / "out.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "affectstream",
            "render",
            str(video),
            "-o",
            str(out),
            "--detector",
            "blazeface_full_range",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "blazeface_full_range.onnx" in proc.stderr and out.stat().st_size > 0
