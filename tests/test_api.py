"""The notebook API (`affectstream.analyze_image`, `analyze_video`) against a real `run` of the same file."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import affectstream
from affectstream.pipeline.errors import ExtraUnavailable, SourceError
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.read import read_all
from tests.conftest import REPO, need_shared
from tests.test_run_files import run_cli


@pytest.fixture(autouse=True)
def _detector(monkeypatch):
    """The detector `run` gets in these tests, through the same variable (the default config reads it)."""
    monkeypatch.setenv("AFFECTSTREAM_DETECTOR", str(need_shared("models", "scrfd_500m.onnx")))


def test_video_rows_equal_what_run_publishes(redis_url):
    video = need_shared("media", "videos", "single_face.mp4")
    df = affectstream.analyze_video(video, progress=False)
    code, out = run_cli("--source", f"clip={video}", redis_url=redis_url)
    assert code == 0, out
    published = [e.result for e in read_all(connect(redis_url), "clip")]

    assert df.attrs["frames"] == len(published) == 72
    labels = df.attrs["labels"]
    assert list(df.columns) == [
        *("frame", "pts", "time", "track", "box", "score", "expr"),
        *labels,
        *("valence", "arousal"),
    ]
    expected = [(r, f) for r in published for f in r.faces]
    assert len(df) == len(expected) > 60
    # The stream keeps boxes to 0.1 px and scores, probabilities and valence-arousal to 1e-4
    # (pipeline/streams/encode.py); the engine's batches also differ (run batches across frames).
    for row, (r, face) in zip(df.itertuples(index=False), expected, strict=True):
        got = row._asdict()
        assert (got["frame"], got["track"], got["expr"]) == (r.frame, face.track, face.expr)
        assert got["pts"] == pytest.approx(r.pts, abs=1e-6)
        assert got["time"] == pytest.approx(r.pts - published[0].pts, abs=1e-6)
        assert got["box"] == pytest.approx(face.box, abs=0.06)
        assert got["score"] == pytest.approx(face.score, abs=2e-4)
        assert [got[label] for label in labels] == pytest.approx([face.probs[x] for x in labels], abs=2e-4)
        assert (got["valence"], got["arousal"]) == pytest.approx((face.valence, face.arousal), abs=2e-4)


def test_every_nth_frame_and_a_second_source_of_faces():
    video = need_shared("media", "videos", "face_noface.mov")
    full = affectstream.analyze_video(video, progress=False)
    third = affectstream.analyze_video(video, every=3, progress=True)
    assert third.attrs["frames"] == math.ceil(169 / 3)
    assert set(third["frame"]) <= set(range(0, 169, 3))
    # Every frame is detected, so a sampled frame's faces are the same as in the full pass.
    same = full[full["frame"].isin(third["frame"])].reset_index(drop=True)
    np.testing.assert_allclose(np.array(same["box"].tolist()), np.array(third["box"].tolist()), atol=1e-3)
    assert (same["expr"] == third["expr"]).all()
    # The face disappears: frames after it have no rows, yet they were analysed.
    assert full.attrs["frames"] == 169 and full["frame"].max() < 168


def test_image_faces_from_a_path_and_from_an_array():
    import cv2

    path = need_shared("media", "images", "multi_face.jpg")
    faces = affectstream.analyze_image(path)
    assert len(faces) == 5
    for face in faces:
        assert abs(sum(face.probs.values()) - 1.0) < 1e-3
        assert face.expr == max(face.probs, key=face.probs.get)
        assert -1.0 <= face.valence <= 1.0 and -1.0 <= face.arousal <= 1.0
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 and 0 <= y1 < y2 and face.score >= 0.5
    from_array = affectstream.analyze_image(cv2.imread(str(path)))
    assert [f.box for f in from_array] == [f.box for f in faces]
    assert [f.expr for f in from_array] == [f.expr for f in faces]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 5), np.uint8), "shape"),
        ("missing.jpg", "does not exist"),
    ],
)
def test_a_bad_picture_is_a_source_error(bad, reason, tmp_path):
    if isinstance(bad, str):
        bad = tmp_path / bad
    with pytest.raises(SourceError, match=reason):
        affectstream.analyze_image(bad)


def test_a_video_it_cannot_read_raises_source_error_with_the_reason(tmp_path):
    video = need_shared("media", "videos", "single_face.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(SourceError, match="does not exist"):
        affectstream.analyze_video(tmp_path / "none.mp4", progress=False)
    with pytest.raises(SourceError, match="notes.mp4"):
        affectstream.analyze_video(text, progress=False)
    with pytest.raises(SourceError, match="truncated"):
        affectstream.analyze_video(truncated, progress=False)
    with pytest.raises(ValueError, match="every"):
        affectstream.analyze_video(video, every=0)


def test_import_stays_light_and_a_missing_extra_names_it():
    """`import affectstream` loads no decoder or model runtime; without pandas the API says which extra."""
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import affectstream\n"
        "heavy = [m for m in ('av', 'onnxruntime', 'cv2', 'affectstream.api') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'analyze_video' in dir(affectstream)\n"
        "try:\n"
        f"    affectstream.analyze_video({str(need_shared('media', 'videos', 'single_face.mp4'))!r})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=os.environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"{ExtraUnavailable.__name__} the notebook API needs pandas: pip install 'affectstream[notebook]'"
    )
