"""Fixtures for training tests: tiny recipes (timm's test_resnet) and hand-made dataset fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def shared_path(*parts: str) -> Path:
    """Path under AFFECTSTREAM_SHARED; skips, or fails when AFFECTSTREAM_REQUIRE_SHARED=1 (tests/conftest.py)."""
    from tests.conftest import need_shared

    return need_shared(*parts)


@pytest.fixture(autouse=True)
def _few_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # CI has 2 cores shared by everything; tiny models gain nothing from more
    yield
    torch.set_num_threads(before)


def tiny_overrides(**extra) -> dict:
    """Recipe overrides that make any recipe a seconds-long smoke run."""
    out = {
        "model.backbone": "test_resnet",
        # The paper recipes' DenseNet-only settings do not apply to the tiny backbone.
        "model.pretrained_file": "",
        "model.final_act": True,
        "optim.batch_size": 4,
        "optim.epochs": 1,
        "optim.max_steps": 2,
        "threads": 1,
        "device": "cpu",
    }
    out.update(extra)
    return out
