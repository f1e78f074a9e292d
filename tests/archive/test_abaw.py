"""Aff-Wild2 writers, the subject policies and smoothing, on hand-built face lists."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.pipeline.archive.subject import choose, select_subject
from affectstream.pipeline.frames.smooth import CausalSmoother, smooth_centred
from affectstream.pipeline.types import FaceResult, FrameResult
from affectstream.scoring.abaw import (
    EXPR_HEADER,
    abaw_class,
    expr_index,
    expr_text,
    read_expr,
    read_va,
    va_text,
    write_atomic,
)

FERPLUS = ("Neutral", "Happy", "Surprise", "Sad", "Anger", "Disgust", "Fear", "Contempt")


def face(track, box, v=0.0, a=0.0, top="Neutral"):
    probs = {k: (0.65 if k == top else 0.05) for k in FERPLUS}
    return {"track": track, "box": box, "score": 0.9, "expr": top, "probs": probs, "valence": v, "arousal": a}


def test_label_mapping_follows_abaw_order_and_never_predicts_other_without_it():
    assert [
        abaw_class(n) for n in ("Neutral", "anger", "Disgust", "fear", "Happy", "Sadness", "surprise")
    ] == list(range(7))
    assert abaw_class("Contempt") is None
    # Contempt is the model's top class, but it has no ABAW class: the best mappable class wins
    probs = {"Neutral": 0.1, "Happiness": 0.3, "Contempt": 0.6}
    assert expr_index(probs) == 4
    assert expr_index({"Contempt": 1.0}) == -1


def test_files_have_one_line_per_frame(tmp_path):
    va = va_text(np.array([[0.25, -0.5], [0.0, 0.0], [0.1, 0.2]]))
    assert va == "valence,arousal\n0.250000,-0.500000\n0,0\n0.100000,0.200000\n"
    ex = expr_text([4, 0, 7])
    assert ex.splitlines() == [EXPR_HEADER, "4", "0", "7"]
    write_atomic(tmp_path / "VA" / "v.txt", va)
    write_atomic(tmp_path / "EXPR" / "v.txt", ex)
    assert read_va(tmp_path / "VA" / "v.txt").tolist() == [[0.25, -0.5], [0, 0], [0.1, 0.2]]
    assert read_expr(tmp_path / "EXPR" / "v.txt").tolist() == [4, 0, 7]
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_subject_policies():
    big_corner = [0, 0, 200, 200]  # 40000 px^2, far from the centre of a 640x360 frame
    small_centre = [300, 160, 340, 200]  # 1600 px^2 at the centre
    frames = [
        [face(1, big_corner), face(2, small_centre)],
        [face(2, small_centre)],
        [face(2, small_centre), face(3, [500, 0, 510, 10])],
        [],
    ]
    size = (640, 360)
    # the subject is one person: while track 1 (the largest) is gone, track 2 is someone else
    assert [f and f["track"] for f in select_subject(frames, "largest-track", size)] == [1, None, None, None]
    why = choose(frames, "largest-track", size)
    assert why[0].others == (2,) and "rank 1 of 3" in why[0].reason
    assert why[1].reason == "subject not visible; other people's faces not taken"
    assert why[3].reason == "no face"
    assert [f and f["track"] for f in select_subject(frames, "central-track", size)] == [2, 2, 2, None]
    assert [f and f["track"] for f in select_subject(frames, "longest-track", size)] == [2, 2, 2, None]
    assert [f and f["track"] for f in select_subject(frames, "largest-face", size)] == [1, 2, 2, None]
    with pytest.raises(ValueError, match="one of"):
        select_subject(frames, "loudest", size)


def test_centred_smoothing_averages_each_track_over_its_own_frames():
    vals = [0.0, 0.3, 0.9, 0.3, 0.0]
    frames = [[face(1, [0, 0, 1, 1], v, -v), face(2, [5, 5, 6, 6], 1.0, 1.0)] for v in vals]
    frames[2] = [frames[2][0]]  # track 2 absent in the middle frame
    out = smooth_centred(frames, 3)
    assert [f[0]["valence"] for f in out] == pytest.approx([0.15, 0.4, 0.5, 0.4, 0.15])
    assert [f[0]["arousal"] for f in out] == pytest.approx([-0.15, -0.4, -0.5, -0.4, -0.15])
    assert all(f[1]["valence"] == 1.0 for f in out if len(f) > 1)  # not mixed with track 1
    assert smooth_centred(frames, 1) == frames


def test_causal_smoothing_looks_back_only():
    smoother = CausalSmoother(window=2)
    outs = []
    for i, (v, top, p) in enumerate([(0.0, "Happy", 0.6), (1.0, "Sad", 0.9), (0.5, "Sad", 0.9)]):
        probs = {k: (p if k == top else (1 - p) / 7) for k in FERPLUS}
        fr = FaceResult(
            track=7, box=[0, 0, 1, 1], score=1, landmarks=[], expr=top, probs=probs, valence=v, arousal=v
        )
        outs.append(smoother.apply(FrameResult(source="cam", frame=i, pts=i, ts=0, faces=[fr])))
    assert [o.faces[0].valence for o in outs] == pytest.approx([0.0, 0.5, 0.75])
    assert [o.faces[0].expr for o in outs] == ["Happy", "Sad", "Sad"]
    assert outs[1].faces[0].probs["Happy"] == pytest.approx((0.6 + 0.1 / 7) / 2)


def test_fill_policies_on_gaps_inside_and_at_the_edges():
    from affectstream.pipeline.archive.fill import fill_series

    nan = np.nan
    x = np.array([[nan], [1.0], [nan], [nan], [nan], [5.0], [nan]])
    f = fill_series(x, "interpolate", 0, np.zeros(1))
    assert f.values[:, 0].tolist() == [1, 1, 2, 3, 4, 5, 5]
    assert f.how == [
        "nearest 1",
        "",
        "interpolated 1..5",
        "interpolated 1..5",
        "interpolated 1..5",
        "",
        "nearest 5",
    ]
    assert fill_series(x, "nearest", 0, np.zeros(1)).values[:, 0].tolist() == [1, 1, 1, 1, 5, 5, 5]
    assert fill_series(x, "mean", 0, np.zeros(1)).values[:, 0].tolist() == [3, 1, 3, 3, 3, 5, 3]
    assert fill_series(x, "neutral", 0, np.zeros(1)).values[:, 0].tolist() == [0, 1, 0, 0, 0, 5, 0]
    # a limit of 1 frame: the middle of the 3-frame gap is too far from both sides and gets the mean
    limited = fill_series(x, "interpolate", 1, np.zeros(1))
    assert limited.values[:, 0].tolist() == [1, 1, 1, 3, 5, 5, 5] and limited.how[3] == "video mean"
    assert fill_series(np.full((2, 1), nan), "nearest", 0, np.ones(1)).how == ["neutral", "neutral"]


def test_submission_rows_are_checked(tmp_path):
    from affectstream.scoring.abaw import read_submission, submission_text
    from affectstream.scoring.errors import AnnotationFormatError

    text = submission_text("VA", {"b": np.array([[0.5, -0.5]]), "a": np.array([[0.1, 0.2], [0.3, 0.4]])})
    assert text.splitlines() == [
        "image_location,valence,arousal",
        "a/00001.jpg,0.100000,0.200000",
        "a/00002.jpg,0.300000,0.400000",
        "b/00001.jpg,0.500000,-0.500000",
    ]
    path = tmp_path / "VA.txt"
    path.write_text(text)
    kind, videos = read_submission(path)
    assert kind == "VA" and videos["a"].tolist() == [[0.1, 0.2], [0.3, 0.4]]
    path.write_text(text + "a/00002.jpg,0,0\n")
    with pytest.raises(AnnotationFormatError, match=r"VA.txt:5: a/00002.jpg is given twice"):
        read_submission(path)
    path.write_text("image_location," + EXPR_HEADER + "\nclip/00000.jpg,3\n")
    with pytest.raises(AnnotationFormatError, match=r"VA.txt:2: expected `video/00001.jpg"):
        read_submission(path)
