"""IoU tracker: unit behaviour, and track ids over real videos decoded with PyAV."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.pipeline.frames.track import IoUTracker, iou_matrix
from affectstream.pipeline.types import Detection
from tests.conftest import need_shared


def _det(x: float, y: float, size: float = 50.0) -> Detection:
    box = np.array([x, y, x + size, y + size], np.float32)
    landmarks = np.array(
        [[x + 15, y + 20], [x + 35, y + 20], [x + 25, y + 30], [x + 18, y + 40], [x + 32, y + 40]], np.float32
    )
    return Detection(box=box, score=0.9, landmarks=landmarks)


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 50, 60]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0], [0.0, 0.0, 0.0]])


def test_ids_are_stable_new_and_never_reused():
    tracker = IoUTracker(iou_threshold=0.3, max_missed=1)
    first = tracker.update([_det(0, 0), _det(200, 0)])
    assert [d.track for d in first] == [1, 2]
    moved = tracker.update([_det(205, 3), _det(4, 2)])  # order swapped, both moved a little
    assert [d.track for d in moved] == [2, 1]
    assert tracker.update([_det(8, 4)])[0].track == 1  # face 2 missed once: kept
    assert tracker.ended == [] and tracker.active == [1, 2]
    assert tracker.update([_det(12, 6)])[0].track == 1  # missed twice: ended
    assert tracker.ended == [2] and tracker.active == [1]
    assert tracker.update([_det(12, 6), _det(205, 3)])[1].track == 3  # back where 2 was: a new id
    tracker.reset()
    assert tracker.ended == [1, 3] and tracker.active == []
    assert tracker.update([_det(12, 6)])[0].track == 4


def test_a_briefly_missed_face_keeps_its_id():
    tracker = IoUTracker(max_missed=3)
    tracker.update([_det(0, 0)])
    for _ in range(3):
        assert tracker.update([]) == []
    assert tracker.update([_det(3, 0)])[0].track == 1


def test_carry_extrapolates_with_constant_velocity():
    tracker = IoUTracker()
    tracker.update([_det(0, 0, 100)])
    tracker.carry()
    tracker.carry()
    tracker.update([_det(30, 15, 100)])  # 3 frames later: 10, 5 px per frame
    carried = tracker.carry()
    assert len(carried) == 1 and carried[0].track == 1
    np.testing.assert_allclose(carried[0].box, [40, 20, 140, 120])
    np.testing.assert_allclose(carried[0].landmarks[0], [55, 40])
    for _ in range(5):  # never more than one detection interval ahead
        carried = tracker.carry()
    np.testing.assert_allclose(carried[0].box, [60, 30, 160, 130])
    assert carried[0].box.dtype == np.float32 and carried[0].landmarks.dtype == np.float32
    # the prediction is what the next detection is matched against: a fast face keeps its id
    assert tracker.update([_det(95, 50, 100)])[0].track == 1


def test_carry_without_extrapolation_and_without_missed_tracks():
    tracker = IoUTracker(extrapolate=False)
    tracker.update([_det(0, 0), _det(200, 0)])
    tracker.update([_det(10, 0)])
    carried = tracker.carry()
    assert [d.track for d in carried] == [1]  # track 2 was not seen at the last detection
    np.testing.assert_allclose(carried[0].box, [10, 0, 60, 50])


def test_bad_settings():
    with pytest.raises(ValueError, match="iou_threshold 0"):
        IoUTracker(iou_threshold=0)
    with pytest.raises(ValueError, match="max_missed -1"):
        IoUTracker(max_missed=-1)


# --- real videos -----------------------------------------------------------------------------------


def _frames(name: str, every: int = 1):
    """BGR frames of a shared video, decoded with PyAV (container always closed)."""
    import av

    with av.open(str(need_shared("media", "videos", name))) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index % every == 0:
                yield frame.to_ndarray(format="bgr24")


def _detector(size):
    from affectstream.pipeline.frames.detect import FaceDetector

    return FaceDetector(need_shared("models", "scrfd_500m.onnx"), input_size=size)


def test_one_stable_track_through_the_pexels_video():
    """Every frame at 320x192 (same scale as 320x320 on 16:9 frames, ~2x faster): face in >=95%."""
    detector, tracker = _detector((320, 192)), IoUTracker()
    counts, ids = [], set()
    for image in _frames("WolfgangLanger_Pexels.mp4"):
        faces = tracker.update(detector.detect(image))
        counts.append(len(faces))
        ids.update(f.track for f in faces)
    assert len(counts) == 472
    assert np.mean(np.asarray(counts) > 0) >= 0.95
    assert max(counts) == 1 and ids == {1}


def test_no_face_video_gives_no_face():
    """All frames, at the detector size "auto" picks for 960x540 (640x384: the scale of 640x640)."""
    detector, tracker = _detector("auto"), IoUTracker()
    frames = 0
    for image in _frames("no_face.mp4"):
        assert tracker.update(detector.detect(image)) == []
        frames += 1
    assert frames > 90 and tracker.active == []


@pytest.mark.parametrize("name", ["face_noface.mov", "noface_face.mov"])
def test_track_ends_and_starts(name):
    detector, tracker = _detector((320, 192)), IoUTracker(max_missed=5)
    seen, ended = [], []
    for image in _frames(name):
        faces = tracker.update(detector.detect(image))
        seen.append(tuple(f.track for f in faces))
        ended.extend(tracker.ended)
    with_face = [i for i, ids in enumerate(seen) if ids]
    assert {ids for ids in seen if ids} == {(1,)}  # one face, one id, while it is visible
    run = with_face[-1] - with_face[0] + 1
    assert len(with_face) >= 0.95 * run and run >= 50  # one contiguous appearance
    if name == "face_noface.mov":
        assert with_face[0] == 0 and with_face[-1] < len(seen) - 20
        assert ended == [1] and tracker.active == []  # the track ended after max_missed empty frames
    else:
        assert with_face[0] > 20 and not seen[0]
        assert tracker.active == [1]
