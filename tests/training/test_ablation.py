"""The ablation command: arms differ in one setting, finished runs are skipped, the best two get a second seed."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import shared_path, tiny_overrides

pytestmark = pytest.mark.train


def _fake_train(calls: list, accuracy: dict):
    def train(recipe, out_dir, resume=True, progress=True):
        calls.append((recipe.model.head, recipe.graph.orientation, recipe.seed, out_dir.name))
        out_dir.mkdir(parents=True, exist_ok=True)
        arm = out_dir.name.rpartition("_s")[0]
        with (out_dir / "log.jsonl").open("a") as fh:
            for epoch in range(1, recipe.optim.epochs + 1):
                fh.write(
                    json.dumps(
                        {
                            "epoch": epoch,
                            "elapsed": 1.0 * epoch,
                            "val_accuracy": accuracy[arm],
                            "val_macro_f1": 0.5,
                            "val_abaw_va": None,
                        }
                    )
                    + "\n"
                )
        return {}

    return train


def test_protocol_and_resume(tmp_path, monkeypatch):
    import affectstream.training.train as train_module
    from affectstream.training.ablation import run_ablation

    calls: list = []
    acc = {"single_task": 0.5, "multi_task": 0.7, "mtlgcn_formula": 0.6, "mtlgcn_authors": 0.8}
    monkeypatch.setattr(train_module, "train", _fake_train(calls, acc))
    table = run_ablation(tmp_path, {"optim.epochs": 2}, list(acc))
    assert calls == [
        ("linear", "formula", 0, "single_task_s0"),
        ("multitask", "formula", 0, "multi_task_s0"),
        ("mtlgcn", "formula", 0, "mtlgcn_formula_s0"),
        ("mtlgcn", "authors", 0, "mtlgcn_authors_s0"),
        ("mtlgcn", "authors", 1, "mtlgcn_authors_s1"),
        ("multitask", "formula", 1, "multi_task_s1"),
    ]
    assert "| mtlgcn_authors | 1 | 2/2 | 80.00% | 0.500 | – | 2 |" in table
    calls.clear()
    run_ablation(tmp_path, {"optim.epochs": 2}, list(acc))  # everything finished: nothing reruns
    assert calls == []
    run_ablation(tmp_path, {"optim.epochs": 3}, ["single_task"], seeds=[0])  # a longer budget resumes
    assert calls == [("linear", "formula", 0, "single_task_s0")]


def test_unknown_arm_is_refused(tmp_path):
    from affectstream.training.ablation import run_ablation
    from affectstream.training.errors import ConfigError

    with pytest.raises(ConfigError, match="mtlgcn_authors"):
        run_ablation(tmp_path, {}, ["gcn"])


def test_one_real_arm_on_ferplus(tmp_path):
    shared_path("data", "ferplus")
    from affectstream.training.ablation import main

    over = {
        **tiny_overrides(**{"data.limit": 64, "optim.max_steps": 0, "optim.batch_size": 16}),
        "optim.epochs": 1,
    }
    args = ["-o", str(tmp_path), "--arms", "mtlgcn_authors", "--seed", "0"]
    for key, value in over.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [(r["arm"], r["seed"], r["epoch"]) for r in rows] == [("mtlgcn_authors", 0, 1)]
    assert isinstance(rows[0]["va_mean_ccc"], float)  # the multi-task arms report VA
