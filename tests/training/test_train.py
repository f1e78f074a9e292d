"""Learning-rate schedule, time budget and resume."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import FIXTURES, REPO, tiny_overrides

pytestmark = pytest.mark.train


def test_lr_schedule():
    from affectstream.training.train import lr_at

    assert lr_at(0, 100, 10, 1.0, "cosine") == pytest.approx(0.1)  # warm-up is linear
    assert lr_at(9, 100, 10, 1.0, "cosine") == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 1.0, "cosine") == pytest.approx(0.5)  # half way through the cosine
    assert lr_at(100, 100, 10, 1.0, "cosine") == pytest.approx(0.0)
    assert lr_at(50, 100, 10, 1.0, "constant") == 1.0
    # a slow run (time fraction ahead of the step fraction) anneals by time
    assert lr_at(20, 100, 10, 1.0, "cosine", time_frac=0.5) == pytest.approx(0.5)


def test_resume_continues_where_it_stopped(tmp_path, monkeypatch):
    from affectstream.training.config import load_recipe
    from affectstream.training.train import train

    monkeypatch.setenv("AFFECTNET_ROOT", str(FIXTURES / "affectnet"))
    over = tiny_overrides(**{"data.input_size": 32, "optim.max_steps": 0, "optim.batch_size": 3})
    recipe = load_recipe(REPO / "configs/model/affectnet7_paper.yaml", over)
    train(recipe, tmp_path, progress=False)
    recipe2 = load_recipe(REPO / "configs/model/affectnet7_paper.yaml", {**over, "optim.epochs": 2})
    train(recipe2, tmp_path, progress=False)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2] and steps == [2, 4]  # 6 training images, batch 3
