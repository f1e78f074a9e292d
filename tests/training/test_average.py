"""Checkpoint averaging: the mean of the weights, BatchNorm re-estimated exactly, kept epochs, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.training.conftest import FIXTURES, REPO, tiny_overrides

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.train


def test_average_weights_is_the_mean_and_keeps_integer_buffers():
    from affectstream.training.average import average_weights
    from affectstream.training.errors import CheckpointError

    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9)}
    out = average_weights([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and int(out["n"]) == 9
    with pytest.raises(CheckpointError, match="different models"):
        average_weights([a, {"w": torch.zeros(2)}])


def test_recompute_batchnorm_gives_the_exact_statistics_of_the_data():
    from affectstream.training.average import recompute_batchnorm

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, bias=False), torch.nn.BatchNorm2d(1))
    torch.nn.init.ones_(model[0].weight)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(600, 4, 4, 1), dtype=np.uint8)
    recompute_batchnorm(model, images, (0.5,), (0.25,), batch_size=256)  # 3 uneven batches
    x = (images.astype(np.float64) / 255.0 - 0.5) / 0.25
    bn = model[1]
    # momentum None: the plain average over the batches of each batch's mean and unbiased variance
    batches = [x[i : i + 256] for i in range(0, 600, 256)]
    assert bn.running_mean.item() == pytest.approx(np.mean([b.mean() for b in batches]), abs=1e-5)
    assert bn.running_var.item() == pytest.approx(np.mean([b.var(ddof=1) for b in batches]), rel=1e-4)
    assert not model.training


def test_keep_epochs_then_average_from_the_cli(tmp_path, monkeypatch, capsys):
    from affectstream.training.checkpoint import load_checkpoint
    from affectstream.training.cli import cmd_average
    from affectstream.training.config import load_recipe
    from affectstream.training.train import train

    monkeypatch.setenv("AFFECTNET_ROOT", str(FIXTURES / "affectnet"))
    over = tiny_overrides(
        **{
            "data.input_size": 32,
            "optim.max_steps": 0,
            "optim.batch_size": 3,
            "optim.epochs": 3,
            "optim.keep_epochs": 2,
        }
    )
    train(load_recipe(REPO / "configs/model/affectnet7_paper.yaml", over), tmp_path, progress=False)
    kept = sorted(p.name for p in tmp_path.glob("epoch_*.pt"))
    assert kept == ["epoch_002.pt", "epoch_003.pt"]

    args = type(
        "Args", (), {"checkpoints": [str(tmp_path / k) for k in kept], "output": str(tmp_path / "avg.pt")}
    )
    assert cmd_average(args) == 0
    assert "accuracy=" in capsys.readouterr().out
    avg = load_checkpoint(tmp_path / "avg.pt")
    a, b = (load_checkpoint(tmp_path / k)["model"] for k in kept)
    name = next(k for k in avg["model"] if k.endswith("conv1.weight"))
    assert torch.allclose(avg["model"][name], (a[name] + b[name]) / 2)
    assert avg["best"]["averaged"] == args.checkpoints
    json.dumps(avg["best"])  # plain values only
