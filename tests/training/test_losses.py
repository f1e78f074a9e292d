"""Losses: hand-checked CCC, masking of missing labels, soft and weighted cross-entropy."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from affectstream.training.losses import ccc, class_weights, expression_loss, va_loss  # noqa: E402

pytestmark = pytest.mark.train


def test_ccc_by_hand():
    pred = torch.tensor([0.0, 0.5, 1.0])
    target = torch.tensor([0.0, 1.0, 1.0])
    expected = 2 * (1 / 6) / (1 / 6 + 2 / 9 + (0.5 - 2 / 3) ** 2)
    assert float(ccc(pred, target)) == pytest.approx(expected, rel=1e-5)


def test_soft_ce_equals_hard_ce_for_one_hot():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    label = torch.tensor([0, 1])
    dist = torch.eye(3)[label]
    hard = torch.nn.functional.cross_entropy(logits, label)
    assert float(expression_loss(logits, dist, label, "soft", None)) == pytest.approx(float(hard))


def test_soft_ce_by_hand():
    logits = torch.zeros(1, 2)  # log-softmax = log(1/2) for both classes
    dist = torch.tensor([[0.7, 0.3]])
    assert float(expression_loss(logits, dist, torch.tensor([0]), "soft", None)) == pytest.approx(math.log(2))


def test_missing_labels_are_masked():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0]], requires_grad=True)
    label = torch.tensor([0, -1])
    loss = expression_loss(logits, torch.eye(2)[label.clamp(min=0)], label, "weighted", None)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0  # the unlabelled sample contributes nothing
    none = expression_loss(logits, torch.zeros(2, 2), torch.tensor([-1, -1]), "soft", None)
    assert none.item() == 0.0


def test_class_weights_inverse_frequency():
    w = class_weights(torch.tensor([10, 30, 0]))
    # 1/10 and 1/30 scaled to mean 1 over 3 classes; absent class 0
    s = 3 / (1 / 10 + 1 / 30)
    assert w.tolist() == pytest.approx([s / 10, s / 30, 0.0])


def test_va_loss_masks_and_perfect_prediction_is_zero():
    target = torch.tensor([[0.1, 0.2], [0.5, -0.3], [9.0, 9.0]])
    mask = torch.tensor([True, True, False])
    pred = target.clone()
    pred[2] = -9.0  # wrong, but masked out
    assert float(va_loss(pred, target, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(va_loss(None, target, mask)) == 0.0
    assert float(va_loss(pred, target, torch.tensor([True, False, False]))) == 0.0
