"""Evaluation metrics (numpy only): classification and valence/arousal regression, ABAW scores."""

from __future__ import annotations

import numpy as np


def confusion(label: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, C] counts, rows = true class, columns = predicted class."""
    m = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(m, (label, pred), 1)
    return m


def accuracy(label: np.ndarray, pred: np.ndarray) -> float:
    return float((label == pred).mean()) if len(label) else float("nan")


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall per true class; NaN for a class without samples."""
    support = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 per class; 0 when a class is never predicted nor present."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean F1 over all classes (sklearn's f1_score(average="macro") with all labels)."""
    return float(per_class_f1(cm).mean())


def ccc(pred: np.ndarray, target: np.ndarray) -> float:
    """Concordance correlation coefficient (population moments)."""
    pm, tm = pred.mean(), target.mean()
    cov = ((pred - pm) * (target - tm)).mean()
    denom = pred.var() + target.var() + (pm - tm) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def pcc(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    ps, ts = pred.std(), target.std()
    if ps == 0 or ts == 0:
        return float("nan")
    return float(((pred - pred.mean()) * (target - target.mean())).mean() / (ps * ts))


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(((pred - target) ** 2).mean()))


def sagr(pred: np.ndarray, target: np.ndarray) -> float:
    """Sign agreement: fraction of samples where prediction and target have the same sign."""
    return float((np.sign(pred) == np.sign(target)).mean())


def classification_report(label: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1 (= ABAW EXPR score), per-class recall/F1 and the confusion matrix."""
    cm = confusion(label, pred, len(names))
    recall, f1 = per_class_recall(cm), per_class_f1(cm)
    return {
        "n": int(len(label)),
        "accuracy": accuracy(label, pred),
        "macro_f1": macro_f1(cm),
        "abaw_expr": macro_f1(cm),
        "recall": {n: (None if np.isnan(r) else float(r)) for n, r in zip(names, recall, strict=True)},
        "f1": {n: float(v) for n, v in zip(names, f1, strict=True)},
        "confusion": cm.tolist(),
    }


def va_report(pred: np.ndarray, target: np.ndarray) -> dict:
    """CCC, PCC, RMSE, SAGR for valence and arousal, and the ABAW VA score (mean CCC)."""
    out: dict = {"n": int(len(target))}
    for d, name in enumerate(("valence", "arousal")):
        p, t = pred[:, d], target[:, d]
        out[name] = {"ccc": ccc(p, t), "pcc": pcc(p, t), "rmse": rmse(p, t), "sagr": sagr(p, t)}
    out["abaw_va"] = (out["valence"]["ccc"] + out["arousal"]["ccc"]) / 2
    return out
