"""Fixtures for training tests: tiny recipes (timm's test_resnet) and hand-made dataset fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def shared_path(*parts: str) -> Path:
    """Path under AFFECTSTREAM_SHARED; skip when missing, fail when AFFECTSTREAM_REQUIRE_SHARED=1."""
    root = Path(os.environ.get("AFFECTSTREAM_SHARED", REPO.parent / "shared")).resolve()
    path = root.joinpath(*parts)
    if not path.exists():
        msg = f"{path} is missing (set AFFECTSTREAM_SHARED to the shared/ folder)"
        if os.environ.get("AFFECTSTREAM_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


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
        "optim.batch_size": 4,
        "optim.epochs": 1,
        "optim.max_steps": 2,
        "threads": 1,
        "device": "cpu",
    }
    out.update(extra)
    return out
