"""`evaluate-abaw` on hand-made files in the exact Aff-Wild2 formats (tests/archive/fixtures/).

Expected numbers were worked out by hand (exact fractions) from the fixture files:

- VA vidA: annotation lines 2 and 5 are -5 and ignored (their predictions 0.9,-0.9 and -5 would wreck the
  score if counted). Valid valence: truth = prediction = [0.5, -0.5, 0.5, -0.5], CCC 1. Valid arousal:
  truth [0.2, 0.4, 0.6, 0.8], prediction 0.1 higher; var 0.05 each, CCC = 0.1 / (0.1 + 0.01) = 10/11.
- VA vidB: valence [0, 0.2] predicted [0.2, 0], CCC -1; arousal constant and equal: CCC undefined.
- Overall (all frames concatenated, as ABAW does): valence 149/155, arousal 70/73.
- EXPR vidA: line 3 is -1 and ignored; per-class F1 = [1, 1, 0 (missed: predicted -1), 0 (never
  annotated nor predicted on a valid frame), 2/3, 0 (false positive), 1, 1]; macro 14/24; accuracy 5/7.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from affectstream.pipeline.archive.evaluate import EvaluationError, evaluate, format_report
from affectstream.scoring.abaw import read_expr, read_va
from affectstream.scoring.errors import AnnotationFormatError
from tests.archive.conftest import cli

FIX = Path(__file__).parent / "fixtures"


def test_scores_match_hand_computed_values():
    report = evaluate(FIX / "pred", FIX / "annotations")
    a = report["VA"]["videos"]["vidA"]
    assert (a["frames"], a["valid"]) == (6, 4)
    assert a["ccc_valence"] == pytest.approx(1.0)
    assert a["ccc_arousal"] == pytest.approx(10 / 11)
    assert a["va"] == pytest.approx((1 + 10 / 11) / 2)
    b = report["VA"]["videos"]["vidB"]
    assert b["ccc_valence"] == pytest.approx(-1.0) and b["ccc_arousal"] is None and b["va"] is None
    overall = report["VA"]["overall"]
    assert overall["valid"] == 6
    assert overall["ccc_valence"] == pytest.approx(149 / 155)
    assert overall["ccc_arousal"] == pytest.approx(70 / 73)
    e = report["EXPR"]["videos"]["vidA"]
    assert (e["frames"], e["valid"]) == (8, 7)
    assert e["f1"] == pytest.approx(14 / 24)
    assert e["accuracy"] == pytest.approx(5 / 7)
    assert list(e["f1_per_class"].values()) == pytest.approx([1, 1, 0, 0, 2 / 3, 0, 1, 1])
    assert list(e["f1_per_class"]) == [
        "Neutral",
        "Anger",
        "Disgust",
        "Fear",
        "Happiness",
        "Sadness",
        "Surprise",
        "Other",
    ]
    text = format_report(report)
    assert "vidA" in text and "OVERALL" in text


def test_cli_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "report.json"
    proc = cli(
        "evaluate-abaw",
        "--pred",
        str(FIX / "pred"),
        "--annotations",
        str(FIX / "annotations"),
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "OVERALL" in proc.stdout
    assert json.loads(out.read_text())["EXPR"]["overall"]["f1"] == pytest.approx(14 / 24)


def test_frame_count_mismatch_names_the_video(tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(FIX / "pred", pred)
    (pred / "VA" / "vidB.txt").write_text("valence,arousal\n0.2,0.1\n")
    with pytest.raises(EvaluationError, match=r"VA vidB: 1 predicted frames .* but 2 annotated"):
        evaluate(pred, FIX / "annotations")
    proc = cli("evaluate-abaw", "--pred", str(pred), "--annotations", str(FIX / "annotations"))
    assert proc.returncode == 2 and "vidB" in proc.stderr


def test_missing_prediction_is_listed_not_scored(tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(FIX / "pred", pred)
    (pred / "VA" / "vidB.txt").unlink()
    report = evaluate(pred, FIX / "annotations")
    assert report["VA"]["missing"] == ["vidB"]
    assert report["VA"]["overall"]["ccc_arousal"] == pytest.approx(10 / 11)


def test_malformed_files_are_named(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("valence,arousal\n0.1,0.2\n0.3\n")
    with pytest.raises(AnnotationFormatError, match=r"bad.txt:3"):
        read_va(bad)
    bad.write_text("Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n0\n9\n")
    with pytest.raises(AnnotationFormatError, match=r"bad.txt:3: class 9"):
        read_expr(bad)
    bad.write_text("arousal,valence\n0.1,0.2\n")
    with pytest.raises(AnnotationFormatError, match="header"):
        read_va(bad)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(EvaluationError, match="no VA or EXPR annotation"):
        evaluate(FIX / "pred", empty)


def test_submission_scores_like_per_video_files_and_needs_every_annotated_frame(tmp_path):
    from affectstream.pipeline.archive.submission import write_submission

    write_submission(FIX / "pred", tmp_path / "sub")
    assert evaluate(tmp_path / "sub", FIX / "annotations") == evaluate(FIX / "pred", FIX / "annotations")
    va = tmp_path / "sub" / "VA.txt"
    va.write_text(
        "\n".join(line for line in va.read_text().splitlines() if not line.startswith("vidA/00006"))
    )
    with pytest.raises(EvaluationError, match=r"VA vidA: no row for annotated frame vidA/00006.jpg"):
        evaluate(tmp_path / "sub", FIX / "annotations")
