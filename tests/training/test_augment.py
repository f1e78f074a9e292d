"""Tensor augmentation and the preprocessing contract."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from affectstream.training.augment import normalize, random_affine, random_erase  # noqa: E402
from affectstream.training.config import AugmentConfig  # noqa: E402


def test_normalize_is_the_spec_contract():
    img = torch.tensor([[[[0], [255]], [[51], [102]]]], dtype=torch.uint8)  # NHWC, 1 channel
    x = normalize(img, (0.5,), (0.25,))
    assert x.shape == (1, 1, 2, 2)
    assert x.flatten().tolist() == pytest.approx([-2.0, 2.0, (0.2 - 0.5) / 0.25, (0.4 - 0.5) / 0.25])


def test_identity_warp_keeps_the_image():
    x = torch.rand(3, 1, 8, 8)
    cfg = AugmentConfig(hflip=False, rotate=0.0, translate=0.0, scale=(1.0, 1.0))
    out = random_affine(x, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)


def test_flip_and_erase():
    x = torch.arange(4.0).view(1, 1, 1, 4).repeat(64, 1, 4, 1)
    cfg = AugmentConfig(hflip=True, rotate=0.0, translate=0.0, scale=(1.0, 1.0))
    out = random_affine(x, cfg, torch.Generator().manual_seed(0))
    flipped = torch.isclose(out[:, 0, 0], x[:, 0, 0].flip(-1)).all(1)
    kept = torch.isclose(out[:, 0, 0], x[:, 0, 0]).all(1)
    assert (flipped | kept).all() and 10 < int(flipped.sum()) < 54
    erased = random_erase(torch.ones(16, 1, 16, 16), 1.0, torch.Generator().manual_seed(0))
    assert (erased == 0).flatten(1).any(1).all()
