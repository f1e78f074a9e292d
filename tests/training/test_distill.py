"""Self-distillation: an ensemble teacher from real tiny FER+ runs, the mixed target, refusals."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tests.training.conftest import REPO, shared_path, tiny_overrides

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.train

RECIPE = REPO / "configs/model/ferplus_mtlgcn.yaml"
N = 48  # data.limit: 48 training and 48 validation images, 3 steps of 16 per epoch


def _over(**extra) -> dict:
    return tiny_overrides(**{"data.limit": N, "optim.max_steps": 0, "optim.batch_size": 16, **extra})


def _samples(label_set: str = "ferplus8"):
    """Three hand-made samples with known votes (8 classes)."""
    from affectstream.training.data.base import Samples
    from affectstream.training.labels import get_label_set

    dist = np.zeros((3, 8), np.float32)
    dist[0, :2] = 0.5
    dist[1, 2] = 1.0
    dist[2, [0, 3]] = 0.1, 0.9
    return Samples(
        images=np.zeros((3, 4, 4, 1), np.uint8),
        label=np.array([0, 2, 3]),
        dist=dist,
        va=np.zeros((3, 2), np.float32),
        va_mask=np.zeros(3, bool),
        label_set=get_label_set(label_set),
        ids=["a.png", "b.png", "c.png"],
    )


def _teacher_rows() -> np.ndarray:
    t = np.zeros((3, 8), np.float32)
    t[0, :3] = 0.1, 0.7, 0.2
    t[1, 2:4] = 0.5
    t[2, 3:5] = 0.2, 0.8
    return t


def test_mixed_target_by_hand(tmp_path):
    from affectstream.training.config import recipe_from_dict
    from affectstream.training.distill import distill_targets, write_teacher
    from affectstream.training.train import _batch

    samples = _samples()
    write_teacher(tmp_path / "t.npz", _teacher_rows(), samples)
    recipe = recipe_from_dict(
        {"data": {"teacher": str(tmp_path / "t.npz")}, "loss": {"distill_weight": 0.25}}
    )
    batch = _batch(distill_targets(samples, recipe), np.array([2, 0]), torch.device("cpu"))
    # 0.75 * votes + 0.25 * teacher, worked out on paper
    expected = torch.zeros(2, 8)
    expected[0, [0, 3, 4]] = torch.tensor([0.075, 0.725, 0.2])
    expected[1, :3] = torch.tensor([0.4, 0.55, 0.05])
    assert torch.allclose(batch["dist"], expected, atol=1e-6)
    assert batch["label"].tolist() == [3, 0]  # the labels stay the votes' majority
    # distillation off: the targets are the votes, teacher or not
    off = recipe_from_dict({"data": {"teacher": str(tmp_path / "t.npz")}})
    assert distill_targets(samples, off) is samples


def test_a_teacher_for_other_samples_is_refused(tmp_path):
    from affectstream.training.distill import load_teacher, write_teacher
    from affectstream.training.errors import ConfigError

    samples = _samples()
    path = tmp_path / "t.npz"
    write_teacher(path, _teacher_rows(), samples, source="ferplus 'train'")
    assert np.array_equal(load_teacher(path, samples), _teacher_rows())
    with pytest.raises(
        ConfigError,
        match=r"data\.teacher: .*made for ferplus 'train'.* has 3 samples; the "
        r"training split has 2 \(another split",
    ):
        load_teacher(path, samples.subset(np.arange(2)))
    other_votes = samples.dist.copy()
    other_votes[1] = other_votes[0]
    with pytest.raises(ConfigError, match=r"data\.teacher: .*other labels or votes"):
        load_teacher(path, dataclasses.replace(samples, dist=other_votes))
    with pytest.raises(ConfigError, match=r"data\.teacher: .*another label set"):
        load_teacher(path, _samples("affectnet8"))  # also 8 classes, in another order
    with pytest.raises(ConfigError, match=r"data\.teacher: .*gone\.npz does not exist"):
        load_teacher(tmp_path / "gone.npz", samples)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match=r"data\.teacher: cannot read"):
        load_teacher(tmp_path / "bad.npz", samples)


def test_bad_combinations_name_the_key(tmp_path, capsys):
    from affectstream.training.__main__ import main
    from affectstream.training.config import recipe_from_dict
    from affectstream.training.errors import ConfigError

    assert recipe_from_dict({}).loss.distill_weight == 0 and recipe_from_dict({}).data.teacher == ""
    with pytest.raises(ConfigError, match=r"loss\.distill_weight: 0\.5 needs data\.teacher"):
        recipe_from_dict({"loss": {"distill_weight": 0.5}})
    with pytest.raises(ConfigError, match=r"loss\.distill_weight: 0\.5 needs loss\.ce: soft.*'weighted'"):
        recipe_from_dict({"data": {"teacher": "t.npz"}, "loss": {"distill_weight": 0.5, "ce": "weighted"}})
    with pytest.raises(
        ConfigError, match=r"loss\.distill_weight: 1\.5 is out of range; allowed: from 0\.0 to 1"
    ):
        recipe_from_dict({"data": {"teacher": "t.npz"}, "loss": {"distill_weight": 1.5}})
    with pytest.raises(ConfigError, match=r"loss\.distill_weight: -0\.1 is out of range"):
        recipe_from_dict({"loss": {"distill_weight": -0.1}})
    # the same from the command line: exit 2 with the key named, before any data is read
    assert main(["train", "-c", str(RECIPE), "--set", "loss.distill_weight=0.5"]) == 2
    assert "loss.distill_weight: 0.5 needs data.teacher" in capsys.readouterr().err
    assert main(["teacher", "-o", str(tmp_path / "t.npz"), str(tmp_path / "gone.pt")]) == 2
    assert "gone.pt does not exist" in capsys.readouterr().err


def test_two_runs_teach_a_third_that_resumes(tmp_path, monkeypatch, capsys):  # noqa: PLR0915 (one end-to-end scenario, its checks in order)
    shared_path("data", "ferplus")
    from affectstream.training.__main__ import main
    from affectstream.training.build import build_model
    from affectstream.training.checkpoint import load_checkpoint, recipe_of
    from affectstream.training.config import load_recipe
    from affectstream.training.data import create_dataset
    from affectstream.training.distill import teacher_probs
    from affectstream.training.errors import ConfigError
    from affectstream.training.evaluate import evaluate_checkpoint, predict
    from affectstream.training.train import train

    members = []
    for seed in (0, 1):
        train(load_recipe(RECIPE, _over(seed=seed)), tmp_path / f"s{seed}", progress=False)
        members.append(tmp_path / f"s{seed}" / "best.pt")
    teacher = tmp_path / "teacher.npz"
    capsys.readouterr()
    assert main(["teacher", "-o", str(teacher), *map(str, members)]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 (mirror-averaged): train accuracy=" in out and "valid accuracy=" in out
    assert out.count("member ") == 2

    # The file: each member's probabilities averaged with those of the mirror image, then over members.
    with np.load(teacher) as z:
        probs = z["probs"]
    train_set_recipe = load_recipe(RECIPE, _over())
    train_set = create_dataset(train_set_recipe.data, "train")
    mirrored = dataclasses.replace(train_set, images=np.ascontiguousarray(train_set.images[:, :, ::-1]))
    expected = []
    for path in members:
        ck = load_checkpoint(path)
        recipe = recipe_of(ck)
        model = build_model(recipe)
        model.load_state_dict(ck["model"])
        expected.append((predict(model, train_set, recipe)[0] + predict(model, mirrored, recipe)[0]) / 2)
    assert probs.shape == (N, 8) and np.allclose(probs, np.mean(expected, 0), atol=1e-5)
    assert np.allclose(teacher_probs(members, train_set_recipe.data, "train"), probs, atol=1e-6)
    assert not np.allclose(expected[0], expected[1], atol=1e-3)  # two different members

    # The student: every target it trains on is 0.5 * votes + 0.5 * teacher of some training sample.
    mixed = 0.5 * train_set.dist + 0.5 * probs
    seen = []
    import affectstream.training.train as train_module

    loss = train_module.expression_loss

    def spy(logits, dist, *args):
        seen.append(dist.detach().cpu().numpy().copy())
        return loss(logits, dist, *args)

    monkeypatch.setattr(train_module, "expression_loss", spy)
    student = tmp_path / "student"
    sets = {"data.teacher": str(teacher), "loss.distill_weight": 0.5}
    train(load_recipe(RECIPE, _over(**sets)), student, progress=False)
    train(load_recipe(RECIPE, _over(**sets, **{"optim.epochs": 2})), student, progress=False)  # resumes
    log = [json.loads(line) for line in (student / "log.jsonl").read_text().splitlines()]
    assert [(e["epoch"], e["step"]) for e in log] == [(1, 3), (2, 6)]
    assert "resumed from" in capsys.readouterr().out
    rows = np.concatenate(seen)
    assert len(rows) == 6 * 16
    nearest = np.abs(rows[:, None, :] - mixed[None]).max(2).min(1)
    assert nearest.max() < 1e-6
    assert np.abs(rows[:, None, :] - train_set.dist[None]).max(2).min(1).min() > 1e-3  # not the votes
    assert recipe_of(load_checkpoint(student / "last.pt")).loss.distill_weight == 0.5

    # A teacher made for the training split does not fit the validation split (same size, other votes) ...
    with pytest.raises(
        ConfigError, match=r"data\.teacher: .*made for ferplus 'train'.*other labels or votes"
    ):
        train(
            load_recipe(RECIPE, _over(**sets, **{"data.train_split": "valid"})),
            tmp_path / "x",
            progress=False,
        )
    # ... and the student evaluates without its teacher: checkpoints do not need the file.
    teacher.unlink()
    assert evaluate_checkpoint(str(student / "best.pt"))["n"] == N
