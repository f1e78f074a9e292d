"""`detector.backend: torch`: the SCRFD graph in torch gives what ONNX Runtime on the CPU gives.

On the CPU (always) the whole detector is compared with the ONNX Runtime one on the shared media; on
CUDA (where a GPU exists) the raw graph outputs are compared with ONNX Runtime CPU and the detections
with the torch CPU detector, so the GPU check needs neither insightface nor onnxruntime-gpu.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import need_shared

torch = pytest.importorskip("torch", reason="the torch detector needs torch (the [train] extra)")

from affectstream.pipeline.errors import DetectorError  # noqa: E402
from affectstream.pipeline.frames.detect import FaceDetector  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU visible to torch")
BOX_TOL = 0.05  # pixels; float32 summation order differs between the runtimes
SCORE_TOL = 1e-4


@pytest.fixture(scope="module")
def scrfd():
    return need_shared("models", "scrfd_500m.onnx")


def _frames() -> list[np.ndarray]:
    """The multi-face still and every 10th frame of the shared face video (faces and motion)."""
    import cv2

    frames = [cv2.imread(str(need_shared("media", "images", "multi_face.jpg")))]
    capture = cv2.VideoCapture(str(need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")))
    index = 0
    while len(frames) < 9:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 10 == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def _same(a, b, box_tol=BOX_TOL, score_tol=SCORE_TOL) -> None:
    assert len(a) == len(b)
    if a:
        np.testing.assert_allclose(np.stack([f.box for f in a]), np.stack([f.box for f in b]), atol=box_tol)
        np.testing.assert_allclose(
            np.stack([f.landmarks for f in a]), np.stack([f.landmarks for f in b]), atol=box_tol
        )
        np.testing.assert_allclose([f.score for f in a], [f.score for f in b], atol=score_tol)


@pytest.mark.parametrize("size", [(640, 640), "auto"])
def test_torch_cpu_matches_onnxruntime_on_shared_media(scrfd, size):
    ort = FaceDetector(scrfd, input_size=size, providers=["CPUExecutionProvider"])
    ours = FaceDetector(scrfd, input_size=size, backend="torch", device="cpu")
    assert ours.providers == ["torch:cpu"]
    total = 0
    for frame in _frames():
        a, b = ours.detect(frame), ort.detect(frame)
        _same(a, b)
        total += len(a)
    assert total >= 9  # five faces in the still, one per video frame


def test_unknown_backend_names_the_allowed_ones(scrfd):
    with pytest.raises(DetectorError, match="'onnxruntime', 'torch'"):
        FaceDetector(scrfd, backend="tensorflow")


def test_silent_cpu_fallback_is_an_error():
    """onnxruntime-gpu lists CUDA even when its libraries cannot load; the session then runs on the CPU."""
    from affectstream.engines.errors import BackendUnavailable
    from affectstream.engines.onnxruntime import check_active

    with pytest.raises(
        BackendUnavailable, match=r"could not enable \['CUDAExecutionProvider'\] and would run on"
    ):
        check_active(
            ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], what="detector x"
        )
    check_active([("CPUExecutionProvider", {})], ["CPUExecutionProvider"], what="detector x")


def test_processor_from_config_wires_the_backend(scrfd, tmp_path):
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.frames.build import processor_from_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"detector:\n  model: {scrfd}\n  backend: torch\n  input_size: [320, 320]\n")
    processor = processor_from_config(load_config(cfg_file))
    assert processor.detector.backend == "torch"
    assert processor.detector.providers[0].startswith("torch:")
    processor.engine.close()


@pytest.mark.gpu
@cuda
def test_torch_cuda_graph_outputs_match_onnxruntime_cpu(scrfd):
    import onnxruntime

    from affectstream.pipeline.frames.detect_torch import TorchSCRFD

    model = TorchSCRFD(scrfd, device="cuda")
    session = onnxruntime.InferenceSession(str(scrfd), providers=["CPUExecutionProvider"])
    blob = np.random.default_rng(0).uniform(-1, 1, (1, 3, 384, 640)).astype(np.float32)
    ref = session.run(None, {model.input_name: blob})
    ours = model.session_for((640, 384)).run(model.output_names, {model.input_name: blob})
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, ours, strict=True))
    assert worst <= 2e-2, worst  # TF32 convolutions on Ampere and later


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("size", [(640, 640), "auto"])
def test_torch_cuda_detections_match_cpu(scrfd, size):
    gpu = FaceDetector(scrfd, input_size=size, backend="torch", device="cuda")
    cpu = FaceDetector(scrfd, input_size=size, backend="torch", device="cpu")
    assert gpu.providers == ["torch:cuda"]
    for frame in _frames():
        _same(gpu.detect(frame), cpu.detect(frame), box_tol=1.0, score_tol=5e-3)
