"""The CLI: light import, and train -> evaluate -> export end to end on a hand-made fixture."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.training.conftest import FIXTURES, REPO, tiny_overrides

pytestmark = pytest.mark.train


def test_importing_cli_does_not_import_torch():
    code = "import affectstream.training, affectstream.training.cli, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_register_adds_subcommands():
    import argparse

    from affectstream.training.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "a.pt", "-o", "b.onnx"])
    assert args.command == "export" and callable(args.handler)


def _sets(**extra) -> list[str]:
    return [a for k, v in tiny_overrides(**extra).items() for a in ("--set", f"{k}={v}")]


def test_train_evaluate_export(tmp_path, monkeypatch, capsys):
    from affectstream.training.__main__ import main

    monkeypatch.setenv("AFFECTNET_ROOT", str(FIXTURES / "affectnet"))
    run = tmp_path / "run"
    recipe = REPO / "configs/model/affectnet7_paper.yaml"
    sets = _sets(**{"data.input_size": 32, "export.template": "configs/model/ferplus_template.json"})
    assert main(["train", "-c", str(recipe), "-o", str(run), "--no-progress", *sets]) == 0
    assert {"recipe.yaml", "last.pt", "best.pt", "log.jsonl"} <= {p.name for p in run.iterdir()}
    # resume: the run is complete, so a second call trains nothing and keeps the epoch count
    assert main(["train", "-c", str(recipe), "-o", str(run), "--no-progress", *sets]) == 0
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
    capsys.readouterr()

    assert main(["evaluate", str(run / "best.pt"), "-o", str(tmp_path / "r.json")]) == 0
    table = capsys.readouterr().out
    assert "accuracy=" in table and "Neutral" in table
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n"] == 2 and len(report["confusion"]) == 7

    out = tmp_path / "m.onnx"
    assert main(["export", str(run / "best.pt"), "-o", str(out)]) == 0
    from affectstream.engines.spec import EngineSpec

    spec = EngineSpec.from_onnx(out)
    assert spec.model_id == "mtlgcn-affectnet7-densenet121" and spec.colour == "rgb"


def test_bad_recipe_exits_2(tmp_path, capsys):
    from affectstream.training.__main__ import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: fast}\n")
    assert main(["train", "-c", str(bad), "-o", str(tmp_path / "r")]) == 2
    assert "optim.lr" in capsys.readouterr().err
