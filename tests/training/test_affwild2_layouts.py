"""Aff-Wild2 releases ABAW2 to ABAW6: every folder name, the 7- and 8-class sets, the empty-split error.

Annotation files are written per test; the frames are the repository's cropped_aligned fixture images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstream.scoring.abaw import EXPR_HEADER, EXPR_HEADER_7, find_split
from affectstream.training.data.affwild2 import load_affwild2
from affectstream.training.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "affwild2" / "cropped_aligned"


def release(
    tmp: Path,
    va_dir: str | None,
    expr_dir: str | None,
    header: str = EXPR_HEADER,
    expr: str = "0\n4\n7\n",
    parent: str = "annotations",
) -> Path:
    """A release root with video3 (3 frames) annotated in the given folders, for both splits."""
    root = tmp / "release"
    (root / "cropped_aligned").mkdir(parents=True)
    (root / "cropped_aligned" / "video3").symlink_to(FIXTURES / "video3")
    for split in ("Train_Set", "Validation_Set"):
        if va_dir:
            d = root / parent / va_dir / split
            d.mkdir(parents=True)
            (d / "video3.txt").write_text("valence,arousal\n0.1,0.2\n-5,-5\n0.3,-0.4\n")
        if expr_dir:
            d = root / parent / expr_dir / split
            d.mkdir(parents=True)
            (d / "video3.txt").write_text(f"{header}\n{expr}")
    return root


@pytest.mark.parametrize("va_dir", ["VA_Set", "VA_Estimation_Challenge"])
@pytest.mark.parametrize(
    "expr_dir", ["EXPR_Set", "EXPR_Recognition_Challenge", "EXPR_Classification_Challenge"]
)
@pytest.mark.parametrize("split", ["train", "valid"])
def test_every_layout_loads_both_tasks(tmp_path, va_dir, expr_dir, split):
    root = release(tmp_path, va_dir, expr_dir)
    s = load_affwild2(root, split, 32, "rgb")
    assert s.ids == ["video3/00001", "video3/00002", "video3/00003"]
    assert s.label.tolist() == [0, 4, 7]  # Neutral, Happy (ABAW "Happiness"), Other
    assert s.va_mask.tolist() == [True, False, True]
    np.testing.assert_allclose(s.va[2], [0.3, -0.4])
    assert find_split(root, split)["EXPR"].parent.name == expr_dir


def test_layout_without_annotations_folder(tmp_path):
    root = release(
        tmp_path, "VA_Estimation_Challenge", "EXPR_Classification_Challenge", parent="6th_ABAW_Annotations"
    )
    assert load_affwild2(root, "valid", 32, "rgb").label.tolist() == [0, 4, 7]


def test_seven_class_abaw2_set(tmp_path):
    root = release(tmp_path, "VA_Set", "EXPR_Set", header=EXPR_HEADER_7, expr="6\n5\n-1\n")
    assert load_affwild2(root, "train", 32, "rgb").label.tolist() == [6, 5, -1]
    s7 = load_affwild2(root, "train", 32, "rgb", label_set="affwild2_7")
    assert s7.label.tolist() == [6, 5, -1] and s7.label_set.num_classes == 7
    bad = release(tmp_path / "b", "VA_Set", "EXPR_Set", header=EXPR_HEADER_7, expr="7\n0\n0\n")
    with pytest.raises(DataError, match=r"video3.txt:2: class 7 is outside -1..6"):
        load_affwild2(bad, "train", 32, "rgb")


def test_eight_class_set_on_a_seven_class_recipe_masks_other(tmp_path):
    root = release(tmp_path, "VA_Estimation_Challenge", "EXPR_Classification_Challenge")
    s = load_affwild2(root, "train", 32, "rgb", label_set="affwild2_7")
    assert s.label.tolist() == [0, 4, -1]


def test_empty_split_is_an_error_naming_the_path(tmp_path):
    root = release(tmp_path, "VA_Estimation_Challenge", None)
    with pytest.raises(
        DataError,
        match=r"no EXPR annotation files; looked for .*release/\[annotations/\]"
        r"\{EXPR_Classification_Challenge,.*\}/Validation_Set",
    ):
        load_affwild2(root, "valid", 32, "rgb")
    assert len(load_affwild2(root, "valid", 32, "rgb", tasks=("VA",))) == 2  # a VA-only recipe is fine
    unannotated = release(tmp_path / "u", "VA_Set", "EXPR_Set", expr="-1\n-1\n-1\n")
    with pytest.raises(DataError, match=r"no usable EXPR label under .*EXPR_Set/Train_Set"):
        load_affwild2(unannotated, "train", 32, "rgb")


def test_two_releases_in_one_root_is_an_error(tmp_path):
    root = release(tmp_path, "VA_Set", "EXPR_Set")
    (root / "annotations" / "EXPR_Classification_Challenge" / "Train_Set").mkdir(parents=True)
    with pytest.raises(DataError, match="EXPR annotations for Train_Set in 2 places"):
        load_affwild2(root, "train", 32, "rgb")
