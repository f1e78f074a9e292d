"""Model construction: the ResNet stem option and its error for backbones without a stem pool."""

from __future__ import annotations

import pytest

from affectstream.training.errors import ConfigError

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.train


def _model(**kw):
    from affectstream.training.model import AffectModel, ModelConfig

    cfg = ModelConfig(head="linear", backbone_args={"channels": [8, 8, 8, 8]}, **kw)
    return AffectModel(cfg)


def test_stem_pool_false_keeps_twice_the_resolution():
    x = torch.zeros(2, 1, 48, 48)
    pooled = _model().backbone.forward_features(x)
    unpooled = _model(stem_pool=False).backbone.forward_features(x)
    # Stock ResNet at 48 px: /32 -> 2x2 last stage; without the stem max-pool: /16 -> 3x3.
    assert pooled.shape[-2:] == (2, 2)
    assert unpooled.shape[-2:] == (3, 3)
    logits, va = _model(stem_pool=False)(x)
    assert logits.shape == (2, 8) and va is None


def test_stem_pool_false_needs_a_backbone_with_a_stem_pool():
    from affectstream.training.model import AffectModel, ModelConfig

    with pytest.raises(ConfigError, match="stem_pool"):
        AffectModel(ModelConfig(head="linear", backbone="mobilenetv3_small_050", stem_pool=False))
