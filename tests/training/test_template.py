"""The landmark template matches where SCRFD finds landmarks on the training crops."""

from __future__ import annotations

import json

import numpy as np

from tests.training.conftest import REPO, shared_path


def test_shipped_template_matches_ferplus_crops():
    from affectstream.training.data.ferplus import load_ferplus
    from affectstream.training.template import compute_template

    detector = shared_path("models", "scrfd_500m.onnx")
    samples = load_ferplus(shared_path("data", "ferplus"), "valid", 48, "gray", weak_va=False)
    crops = samples.images[np.linspace(0, len(samples) - 1, 40).astype(int)]
    got = compute_template(crops, detector)
    assert got["detected"] >= 36
    pts = np.asarray(got["template"])
    shipped = np.asarray(json.loads((REPO / "configs/model/ferplus_template.json").read_text())["template"])
    # 40 validation crops vs 500 training crops: the means agree within a pixel or two
    assert np.abs(pts - shipped).max() < 2.0
    le, re, nose, lm, rm = shipped
    assert le[0] < nose[0] < re[0] and lm[0] < rm[0]
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])


def test_align_onto_template_is_identity_for_template_points():
    from affectstream.training.template import align

    tpl = np.array([[15.0, 18.0], [32.0, 18.0], [24.0, 28.0], [17.0, 36.0], [31.0, 36.0]], np.float32)
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[100, 100] = 255
    # landmarks at 4x scale + offset: the warp must undo exactly that
    crop = align(frame, tpl * 4 + 20, tpl, 48)
    assert crop.shape == (48, 48, 3)
    y, x = np.unravel_index(crop[..., 0].argmax(), (48, 48))
    assert abs(x - (100 - 20) / 4) <= 1 and abs(y - (100 - 20) / 4) <= 1
