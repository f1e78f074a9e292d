"""SCRFD detector on real images and real weights: counts, parity with insightface, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstream.pipeline.errors import DetectorError
from affectstream.pipeline.frames.detect import (
    FaceDetector,
)
from affectstream.pipeline.frames.detector_files import resolve_detector
from affectstream.pipeline.frames.scrfd import auto_input_size
from tests.conftest import need_shared


@pytest.fixture(scope="module")
def scrfd() -> Path:
    return need_shared("models", "scrfd_500m.onnx")


@pytest.fixture(scope="module")
def detector(scrfd) -> FaceDetector:
    return FaceDetector(scrfd, input_size=(640, 640))


def _image(*parts: str) -> np.ndarray:
    import cv2

    return cv2.imread(str(need_shared(*parts)))


def _insightface_image(name: str) -> np.ndarray:
    import cv2
    import insightface

    return cv2.imread(str(Path(insightface.__file__).parent / "data" / "images" / name))


def test_multi_face_has_five_faces(detector):
    image = _image("media", "images", "multi_face.jpg")
    faces = detector.detect(image)
    assert len(faces) == 5
    height, width = image.shape[:2]
    for face in faces:
        assert face.box.dtype == np.float32 and face.box.shape == (4,)
        assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
        assert 0.5 <= face.score <= 1.0 and face.track == -1
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        # the eyes lie inside the box, left eye (image left) before right eye
        eyes = face.landmarks[:2]
        assert ((eyes >= face.box[:2]) & (eyes <= face.box[2:])).all()
        assert eyes[0, 0] < eyes[1, 0]
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


@pytest.mark.parametrize("size", [(640, 640), (320, 320), "auto"])
@pytest.mark.parametrize("name", ["multi_face.jpg", "t1.jpg"])
def test_matches_insightface_detect(scrfd, size, name):
    """The fast pre/post-processing gives what insightface's SCRFD.detect gives."""
    image = _image("media", "images", name) if name == "multi_face.jpg" else _insightface_image(name)
    det = FaceDetector(scrfd, input_size=size)
    ours = det.detect(image)
    ref_boxes, ref_kps = det._model.detect(
        image, input_size=det.input_size_for(image.shape[1], image.shape[0])
    )
    assert len(ours) == len(ref_boxes) > 0
    height, width = image.shape[:2]
    ref_xyxy = np.clip(ref_boxes[:, :4], 0, [width, height, width, height])
    np.testing.assert_allclose(np.stack([f.box for f in ours]), ref_xyxy, atol=1e-3)
    np.testing.assert_allclose(np.stack([f.landmarks for f in ours]), ref_kps, atol=1e-3)
    np.testing.assert_allclose([f.score for f in ours], ref_boxes[:, 4], atol=1e-6)


def test_buffers_are_reset_between_frame_shapes(detector):
    """A frame of another shape in between must not leave pixels in the padding of the next one."""
    multi, other = _image("media", "images", "multi_face.jpg"), _insightface_image("t1.jpg")
    first = detector.detect(multi)
    assert len(detector.detect(other)) == 6
    again = detector.detect(multi)
    np.testing.assert_array_equal(np.stack([f.box for f in first]), np.stack([f.box for f in again]))


def test_max_faces_keeps_the_faces_insightface_ranks_first(scrfd):
    image = _image("media", "images", "multi_face.jpg")
    det = FaceDetector(scrfd, input_size=(640, 640), max_faces=2)
    two = det.detect(image)
    assert len(two) == 2
    ref, _ = det._model.detect(image, input_size=(640, 640), max_num=2)
    assert {tuple(np.round(f.box, 2)) for f in two} == {tuple(np.round(b[:4], 2)) for b in ref}
    assert [f.score for f in two] == sorted((f.score for f in two), reverse=True)


def test_auto_input_size():
    assert auto_input_size(640, 360) == (640, 384)
    assert auto_input_size(1920, 1080) == (640, 384)
    assert auto_input_size(960, 540) == (640, 384)
    assert auto_input_size(360, 640) == (384, 640)
    assert auto_input_size(320, 240) == (320, 256)  # small frames are not upscaled
    assert auto_input_size(640, 640) == (640, 640)
    with pytest.raises(ValueError, match="0x10"):
        auto_input_size(0, 10)


def test_auto_detector_uses_frame_shape(scrfd):
    det = FaceDetector(scrfd, input_size="auto")
    assert det.input_size == "auto"
    assert det.input_size_for(960, 540) == (640, 384)
    assert len(det.detect(_image("media", "images", "multi_face.jpg"))) == 5


def test_unavailable_providers_are_an_error_naming_them(scrfd):
    """A detector asked for providers this onnxruntime lacks does not quietly run elsewhere (the engine's
    policy too): the error names what is missing."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    requested = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    missing = [p for p in requested if p not in available]
    if not missing:
        pytest.skip("this onnxruntime has every provider asked for")
    with pytest.raises(DetectorError, match="not available") as caught:
        FaceDetector(scrfd, input_size=(320, 320), providers=requested)
    assert all(name in str(caught.value) for name in missing)
    det = FaceDetector(scrfd, input_size=(320, 320), providers=["CPUExecutionProvider"])
    assert det.providers == ["CPUExecutionProvider"]


def test_detector_providers_default_and_options():
    """The detector's providers follow the engine's one policy (`engines.onnxruntime.choose_providers`)."""
    import onnxruntime

    from affectstream.engines.onnxruntime import choose_providers

    available = onnxruntime.get_available_providers()
    default = choose_providers("auto", None)
    assert default[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in default) == ("CUDAExecutionProvider" in available)
    with_options = choose_providers(
        "auto", [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    )
    assert with_options == [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers(),
    reason="onnxruntime-gpu with CUDA is not installed here (CPU-only onnxruntime)",
)
def test_cuda_provider_matches_cpu(scrfd):
    image = _image("media", "images", "multi_face.jpg")
    gpu = FaceDetector(scrfd, input_size=(640, 640), providers=["CUDAExecutionProvider"])
    assert gpu.providers[0] == "CUDAExecutionProvider"
    cpu = FaceDetector(scrfd, input_size=(640, 640), providers=["CPUExecutionProvider"])
    a, b = gpu.detect(image), cpu.detect(image)
    assert len(a) == len(b) == 5
    np.testing.assert_allclose(np.stack([f.box for f in a]), np.stack([f.box for f in b]), atol=1.0)


def test_missing_path_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "det.onnx"
    with pytest.raises(DetectorError) as err:
        resolve_detector(str(missing))
    text = str(err.value)
    assert str(missing) in text and "AFFECTSTREAM_DETECTOR" in text and "--detector PATH" in text


def test_missing_pack_names_the_expected_file(tmp_path):
    with pytest.raises(DetectorError) as err:
        resolve_detector("buffalo_sc", root=tmp_path, download=False)
    assert str(tmp_path / "models" / "buffalo_sc" / "det_500m.onnx") in str(err.value)
    assert "AFFECTSTREAM_DETECTOR" in str(err.value)


def test_missing_pack_after_a_failed_download(tmp_path):
    """insightface's own download is tried (it fails offline, or with 404 for this name)."""
    with pytest.raises(DetectorError) as err:
        resolve_detector("affectstream_no_such_pack", root=tmp_path)
    assert str(tmp_path / "models" / "affectstream_no_such_pack" / "det_*.onnx") in str(err.value)
    assert "could not download" in str(err.value)


def test_pack_and_directory_resolve(tmp_path, scrfd):
    pack = tmp_path / "models" / "buffalo_sc"
    pack.mkdir(parents=True)
    (pack / "w600k_mbf.onnx").write_bytes(b"not a detector")
    (pack / "det_500m.onnx").symlink_to(scrfd)
    assert resolve_detector("buffalo_sc", root=tmp_path, download=False) == scrfd.resolve()
    assert resolve_detector(str(pack)) == scrfd.resolve()
    assert resolve_detector(str(scrfd)) == scrfd.resolve()


def test_bad_settings_and_models_are_clear_errors(tmp_path, scrfd):
    with pytest.raises(DetectorError, match="600x600 must be positive multiples of 32"):
        FaceDetector(scrfd, input_size=(600, 600))
    with pytest.raises(DetectorError, match="'big' is not"):
        FaceDetector(scrfd, input_size="big")
    with pytest.raises(DetectorError, match="threshold 1.5"):
        FaceDetector(scrfd, threshold=1.5)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file")
    with pytest.raises(DetectorError, match=f"cannot load detector {garbage}"):
        FaceDetector(garbage)


def test_non_detector_onnx_is_rejected(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 100, 100])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 100, 100])],
    )
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(DetectorError, match="is not a face detector"):
        FaceDetector(path)


def test_detect_rejects_bad_images(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_fixed_input_larger_than_the_frame_never_enlarges_it(scrfd):
    """A 640x360 close-up in a 1280x736 input would be enlarged 2x past SCRFD's largest anchors (0 faces)."""
    from affectstream.pipeline.sources import read_video

    frame = next(iter(read_video(need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")))).image
    big = FaceDetector(scrfd, input_size=(1280, 736))
    assert big.input_size_for(640, 360) == (640, 384)  # its own size, rounded up to a multiple of 32
    assert big.input_size_for(1920, 1080) == (1280, 736)  # larger frames still shrink into the input
    assert big.input_size_for(640, 360, (640, 640)) == (640, 640)  # not enlarged: kept
    assert len(big.detect(frame)) == 1
    np.testing.assert_allclose(
        big.detect(frame)[0].box, FaceDetector(scrfd, input_size=(640, 384)).detect(frame)[0].box
    )
