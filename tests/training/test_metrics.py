"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from affectstream.scoring import metrics


def test_classification_by_hand():
    label = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    cm = metrics.confusion(label, pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics.accuracy(label, pred) == pytest.approx(4 / 6)
    # recall: 2/3, 1/2, 1/1
    np.testing.assert_allclose(metrics.per_class_recall(cm), [2 / 3, 1 / 2, 1.0])
    # precision: 2/2, 1/2, 1/2 -> F1 = 2PR/(P+R): 0.8, 0.5, 2/3
    np.testing.assert_allclose(metrics.per_class_f1(cm), [0.8, 0.5, 2 / 3])
    assert metrics.macro_f1(cm) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_absent_class_counts_as_zero_f1_and_nan_recall():
    cm = metrics.confusion(np.array([0, 1]), np.array([0, 1]), 3)
    assert metrics.per_class_f1(cm).tolist() == [1.0, 1.0, 0.0]
    assert math.isnan(metrics.per_class_recall(cm)[2])


def test_regression_by_hand():
    pred = np.array([0.0, 0.5, 1.0])
    target = np.array([0.0, 1.0, 1.0])
    # means 0.5 and 2/3; var 1/6 and 2/9; cov = ((-.5)(-2/3) + 0 + (.5)(1/3)) / 3 = 1/6
    ccc = 2 * (1 / 6) / (1 / 6 + 2 / 9 + (0.5 - 2 / 3) ** 2)
    assert metrics.ccc(pred, target) == pytest.approx(ccc)
    assert metrics.pcc(pred, target) == pytest.approx((1 / 6) / math.sqrt(1 / 6 * 2 / 9))
    assert metrics.rmse(pred, target) == pytest.approx(math.sqrt(0.25 / 3))
    assert metrics.sagr(np.array([0.2, -0.1, 0.3]), np.array([0.5, 0.4, 0.1])) == pytest.approx(2 / 3)
    assert metrics.ccc(target, target) == pytest.approx(1.0)


def test_reports():
    rep = metrics.classification_report(np.array([0, 1]), np.array([0, 0]), ("A", "B"))
    assert rep["accuracy"] == 0.5 and rep["confusion"] == [[1, 0], [1, 0]]
    assert rep["recall"] == {"A": 1.0, "B": 0.0}
    assert rep["abaw_expr"] == rep["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    va = metrics.va_report(np.array([[0.1, 0.2], [0.3, 0.1]]), np.array([[0.1, 0.2], [0.3, 0.1]]))
    assert va["abaw_va"] == pytest.approx(1.0) and va["valence"]["rmse"] == 0.0
