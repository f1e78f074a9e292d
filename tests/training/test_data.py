"""Readers on the real FER+ and AFEW-VA files and the hand-made AffectNet and Aff-Wild2 fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.training.errors import DataError
from tests.training.conftest import FIXTURES, shared_path


def test_ferplus_valid_votes_and_majority():
    from affectstream.training.data.ferplus import load_ferplus, read_votes

    root = shared_path("data", "ferplus")
    names, votes = read_votes(root / "FER2013Valid" / "label.csv")
    assert len(names) == 3579 and votes.shape == (3579, 10)
    s = load_ferplus(root, "valid", 48, "gray")
    # rows whose majority is unknown / not-a-face are dropped
    assert len(s) == int((votes.argmax(1) < 8).sum()) == 3555
    assert s.images.shape == (3555, 48, 48, 1) and s.images.dtype == np.uint8
    np.testing.assert_allclose(s.dist.sum(1), 1.0, rtol=1e-6)
    i = s.ids.index(names[0])
    assert s.dist[i].argmax() == s.label[i] == votes[0, :8].argmax()
    # weak VA = votes x centroids, e.g. an all-Happy image gets Happy's centroid (affectnet_rank: 0.524, 0.009)
    happy = np.flatnonzero(s.dist[:, 1] == 1.0)[0]
    np.testing.assert_allclose(s.va[happy], [0.524, 0.009], atol=1e-6)
    assert s.va_mask.all()


def test_ferplus_rgb_and_resize():
    from affectstream.training.data.ferplus import load_ferplus

    s = load_ferplus(shared_path("data", "ferplus"), "valid", 64, "rgb", weak_va=False)
    assert s.images.shape[1:] == (64, 64, 3)
    assert not s.va_mask.any()
    with pytest.raises(DataError, match="split"):
        load_ferplus(shared_path("data", "ferplus"), "nope", 48, "gray")


def test_afew_va_real_clip():
    from affectstream.training.data.afew_va import load_afew_va

    s = load_afew_va(shared_path("data", "afew_va"), "all", 48, "gray")
    assert len(s) == 42 and s.images.shape == (42, 48, 48, 1)
    # the clip's labels are constant: V = 0, A = 5 on [-10, 10] -> (0, 0.5)
    np.testing.assert_allclose(s.va, np.tile([0.0, 0.5], (42, 1)))
    assert (s.label == -1).all() and s.va_mask.all()
    assert s.ids[0] == "001/00000"


def test_affectnet_fixture():
    from affectstream.training.data.affectnet import load_affectnet

    root = FIXTURES / "affectnet"
    s = load_affectnet(root, "train", 64, "rgb", "affectnet7")
    # codes 8 and 10 dropped; 7 (Contempt) dropped for AffectNet-7
    assert s.label.tolist() == [0, 1, 2, 3, 6, 4]
    assert s.va_mask.tolist() == [True] * 5 + [False]  # the Fear row has VA -2
    np.testing.assert_allclose(s.va[1], [0.8, 0.2])
    assert s.images.shape == (6, 64, 64, 3)
    s8 = load_affectnet(root, "train", 32, "gray", "affectnet8", eye_level=True)
    assert 7 in s8.label.tolist() and s8.images.shape[-1] == 1
    v = load_affectnet(root, "valid", 32, "gray", "affectnet7")
    assert v.label.tolist() == [5, 1]


def test_affwild2_fixture():
    from affectstream.training.data.affwild2 import load_affwild2

    s = load_affwild2(FIXTURES / "affwild2", "train", 48, "rgb")
    # video 10-60: frame 3 has VA -5 but EXPR 4; frame 4 has EXPR -1 but VA; frame 5 has no image
    assert s.ids == [
        "10-60-1280x720/00001",
        "10-60-1280x720/00002",
        "10-60-1280x720/00003",
        "10-60-1280x720/00004",
        "video2/00001",
        "video2/00002",
        "video2/00003",
    ]
    assert s.label.tolist() == [0, 4, 4, -1, -1, -1, -1]
    assert s.va_mask.tolist() == [True, True, False, True, True, True, True]
    np.testing.assert_allclose(s.va[3], [0.3, -0.1])
    assert s.label_set.labels[-1] == "Other"
    assert len(load_affwild2(FIXTURES / "affwild2", "train", 48, "rgb", frame_step=2)) == 4
    v = load_affwild2(FIXTURES / "affwild2", "valid", 48, "gray")
    assert v.label.tolist() == [5, 5, 6]


def test_create_dataset_unknown_name():
    from affectstream.training.config import DataConfig
    from affectstream.training.data import create_dataset
    from affectstream.training.errors import ConfigError

    with pytest.raises(ConfigError, match="ferplus"):
        create_dataset(DataConfig(dataset="nope"), "train")
