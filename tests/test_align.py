"""Five-point alignment and engine input: geometry, colour, normalisation, on real faces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from affectstream.engines.preprocess import to_input
from affectstream.engines.spec import EngineSpec
from affectstream.pipeline.frames.align import align_face, similarity_transform, transform_points
from tests.conftest import REPO, need_shared

# insightface's ArcFace 112x112 template: a realistic face framing for the geometric checks.
TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)
SHIPPED = REPO / "engines" / "models" / "mtlgcn_ferplus.onnx"


def _spec(colour: str = "rgb", size: tuple[int, int] = (112, 112), template=TEMPLATE) -> EngineSpec:
    channels = 1 if colour == "gray" else 3
    return EngineSpec(
        model_id="test",
        input_size=size,
        colour=colour,
        mean=(0.485, 0.456, 0.406)[:channels],
        std=(0.229, 0.224, 0.225)[:channels],
        labels=("neutral", "happy"),
        has_va=True,
        template=template,
    )


@pytest.fixture(scope="module")
def faces():
    """(image, detections) of single_face.jpg and multi_face.jpg, from the real SCRFD."""
    import cv2

    from affectstream.pipeline.frames.detect import FaceDetector

    detector = FaceDetector(need_shared("models", "scrfd_500m.onnx"), input_size=(640, 640))
    out = []
    for name in ("single_face.jpg", "multi_face.jpg"):
        image = cv2.imread(str(need_shared("media", "images", name)))
        out.append((image, detector.detect(image)))
    return out


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (5, 2))
    angle, scale, shift = math.radians(17), 0.37, np.array([-40.0, 12.5])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = similarity_transform(src, src @ rot.T + shift)
    np.testing.assert_allclose(matrix, np.hstack((rot, shift[:, None])), atol=1e-9)


def test_landmarks_land_on_the_template(faces):
    """A template that is a similarity image of real landmarks is hit to well under a pixel."""
    image, dets = faces[0]
    landmarks = dets[0].landmarks
    angle, scale = math.radians(-9), 0.6
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    template = landmarks.astype(np.float64) @ rot.T
    template += np.array([56.0, 60.0]) - template.mean(axis=0)
    matrix = similarity_transform(landmarks, template)
    assert np.abs(transform_points(matrix, landmarks) - template).max() < 1.0
    assert align_face(image, landmarks, _spec(template=tuple(map(tuple, template)))).shape == (112, 112, 3)


def test_eyes_of_the_aligned_crop_are_at_the_template(faces):
    """Detect again on the aligned crops: the eyes are where the transform sent them, near the template."""
    import cv2

    from affectstream.pipeline.frames.detect import FaceDetector

    detector = FaceDetector(need_shared("models", "scrfd_500m.onnx"), input_size=(320, 320))
    spec = _spec()
    errors = []
    for image, dets in faces:
        for det in dets:
            crop = align_face(image, det.landmarks, spec)
            # SCRFD wants some context around a face: the crop, twice as large, on a black canvas.
            canvas = np.zeros((320, 320, 3), np.uint8)
            canvas[48:272, 48:272] = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), (224, 224))
            found = detector.detect(canvas)
            assert len(found) == 1
            eyes = (found[0].landmarks[:2] - 48) / 2
            mapped = transform_points(
                similarity_transform(det.landmarks, np.asarray(TEMPLATE)), det.landmarks
            )
            errors.append(np.abs(eyes - mapped[:2]).max())
            # the least-squares fit moves the eyes only a few pixels off the template
            assert np.abs(mapped[:2] - np.asarray(TEMPLATE[:2])).max() < 8.0
    assert len(errors) == 6
    assert np.median(errors) < 3.0 and max(errors) < 8.0, errors


def test_rgb_and_gray_crops(faces):
    import cv2

    image, dets = faces[0]
    rgb = align_face(image, dets[0].landmarks, _spec("rgb", size=(120, 100)))
    gray = align_face(image, dets[0].landmarks, _spec("gray", size=(120, 100)))
    assert rgb.shape == (120, 100, 3) and rgb.dtype == np.uint8
    assert gray.shape == (120, 100) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    red = np.zeros((200, 200, 3), np.uint8)
    red[..., 2] = 255  # BGR red
    landmarks = np.asarray(TEMPLATE, np.float32) + 40
    assert tuple(align_face(red, landmarks, _spec("rgb"))[56, 56]) == (255, 0, 0)
    assert align_face(red, landmarks, _spec("gray"))[56, 56] == round(0.299 * 255)


def test_to_input_normalises_per_channel(faces):
    image, dets = faces[1]
    spec = _spec()
    crops = [align_face(image, d.landmarks, spec) for d in dets]
    batch = to_input(crops, spec)
    assert batch.shape == (5, 3, 112, 112) and batch.dtype == np.float32 and batch.flags.c_contiguous
    expected = (np.stack(crops).astype(np.float64) / 255 - spec.mean) / spec.std
    np.testing.assert_allclose(batch, expected.transpose(0, 3, 1, 2), atol=1e-5)
    buffer = np.full((8, 3, 112, 112), np.nan, np.float32)
    reused = to_input(crops[:2], spec, out=buffer)
    assert reused.base is buffer and reused.shape == (2, 3, 112, 112)
    np.testing.assert_array_equal(reused, batch[:2])


def test_to_input_gray():
    spec = _spec("gray", size=(48, 40))
    crops = [np.full((48, 40), 255, np.uint8), np.zeros((48, 40), np.uint8)]
    batch = to_input(crops, spec)
    assert batch.shape == (2, 1, 48, 40)
    np.testing.assert_allclose(batch[0], (1 - 0.485) / 0.229, rtol=1e-6)
    np.testing.assert_allclose(batch[1], -0.485 / 0.229, rtol=1e-6)
    assert to_input([], spec).shape == (0, 1, 48, 40)


def test_bad_inputs_are_named():
    spec = _spec()
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\[5, 2\] landmarks, got shape \(4, 2\)"):
        align_face(image, np.zeros((4, 2)), spec)
    with pytest.raises(ValueError, match="coincide"):
        align_face(image, np.ones((5, 2)), spec)
    with pytest.raises(ValueError, match="NaN"):
        align_face(image, np.full((5, 2), np.nan), spec)
    with pytest.raises(ValueError, match="uint8 BGR image"):
        align_face(image.astype(np.float32), np.asarray(TEMPLATE), spec)
    with pytest.raises(ValueError, match=r"crop 1 is uint8 \(112, 112\)"):
        to_input([np.zeros((112, 112, 3), np.uint8), np.zeros((112, 112), np.uint8)], spec)


@pytest.mark.skipif(not SHIPPED.is_file(), reason=f"the shipped model {SHIPPED} is not trained yet")
def test_shipped_model_template_frames_real_faces(faces):
    """With the shipped model's own spec, real faces' eyes land within a few pixels of its template."""
    spec = EngineSpec.from_onnx(Path(SHIPPED))
    height, width = spec.input_size
    for image, dets in faces:
        for det in dets:
            crop = align_face(image, det.landmarks, spec)
            assert crop.shape[:2] == (height, width)
            mapped = transform_points(
                similarity_transform(det.landmarks, np.asarray(spec.template)), det.landmarks
            )
            assert np.abs(mapped[:2] - np.asarray(spec.template[:2])).max() < 0.1 * width
