"""INT8 calibration data: real FER+ face crops, preprocessed like the runtime (no TensorRT needed)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from affectstream.engines.calibration import load_crops
from affectstream.engines.errors import EngineBuildError
from tests.conftest import need_shared


@pytest.fixture(scope="module")
def crops_dir(tmp_path_factory):
    src = need_shared("data", "ferplus", "FER2013Valid")
    folder = tmp_path_factory.mktemp("crops")
    for png in sorted(src.glob("*.png"))[:20]:
        shutil.copy(png, folder / png.name)
    (folder / "label.csv").write_text("ignored, not an image\n")
    return folder


def test_crops_are_normalised_like_the_runtime(crops_dir, tiny):
    import cv2

    from affectstream.engines.preprocess import to_input

    batch = load_crops(crops_dir, tiny.spec)
    assert batch.shape == (20, 1, 32, 32) and batch.dtype == np.float32 and batch.flags.c_contiguous
    first = sorted(crops_dir.glob("*.png"))[0]
    grey = cv2.cvtColor(
        cv2.resize(cv2.imread(str(first)), (32, 32), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
    )
    np.testing.assert_array_equal(batch[0], to_input([grey], tiny.spec)[0])
    assert batch.std() > 0.1  # real faces, not a constant


def test_limit_and_npy_batches(crops_dir, tiny, tmp_path):
    assert len(load_crops(crops_dir, tiny.spec, limit=7)) == 7
    np.save(tmp_path / "a.npy", np.zeros((4, 1, 32, 32), np.float32))
    assert load_crops(tmp_path, tiny.spec).shape == (4, 1, 32, 32)
    np.save(tmp_path / "b.npy", np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(EngineBuildError, match=r"b.npy: expected \[N, 1, 32, 32\]"):
        load_crops(tmp_path, tiny.spec)


def test_missing_or_empty_folder(tmp_path, tiny):
    with pytest.raises(EngineBuildError, match="does not exist"):
        load_crops(tmp_path / "nope", tiny.spec)
    with pytest.raises(EngineBuildError, match="no face crops"):
        load_crops(tmp_path, tiny.spec)
