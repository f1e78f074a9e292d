"""`evaluate-abaw`: score Aff-Wild2-format predictions against annotations the way ABAW does.

Both folders are searched recursively for `.txt` files; each file's header says what it is (a VA or EXPR
file of one video, or a challenge submission file holding every video of one task). Per-video
predictions pair with annotations by file name (the video name), submission rows by their
`video/00001.jpg` location. So the challenge's own annotation folders work as they are, and so do an
`archive` output folder (`VA/`, `EXPR/`) and the submission files `archive submission` writes.

- VA: frames annotated -5 are ignored; CCC of valence and of arousal, and their mean (the ABAW VA
  score). The overall scores are over all videos' frames concatenated, as in the challenge.
- EXPR: frames annotated -1 are ignored; F1 per class over the annotation set's classes (eight, or seven
  for ABAW2) in the official order, macro-averaged (a class neither annotated nor predicted scores 0, as
  sklearn does with all labels given). A prediction of -1 on an annotated frame counts as a miss.

Beside the scores: the share of annotated frames that were filled (no subject face; from the
`frames/<video>.csv` decisions the archive writes beside its predictions, when present) and the scores
on the covered (not filled) frames only.

Per-video predictions must have exactly one line per annotated frame; a different count is an error
naming the video, since it usually means frames were dropped or the wrong video was matched. A
submission must have a row for every annotated frame.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.pipeline.errors import AffectstreamError
from affectstream.scoring.abaw import (
    EXPR_INVALID,
    NO_ROW,
    kind_of,
    parse_expr,
    read_submission,
    read_va,
    va_valid,
)
from affectstream.scoring.errors import AnnotationFormatError
from affectstream.scoring.metrics import ccc, confusion, per_class_f1

FRAMES_STATUS = "status"


class EvaluationError(AffectstreamError, ValueError):
    """Predictions and annotations cannot be compared; the message names the folder or video."""


def _add(found: dict[str, Any], kind: str, video: str, value, where: str) -> None:
    if video in found[kind]:
        raise EvaluationError(f"two {kind} files for video {video!r}: {found[kind][video][1]} and {where}")
    found[kind][video] = (value, where)


def collect(root: str | Path) -> dict[str, Any]:
    """{"VA"|"EXPR": {video: (array, where)}, "frames": {video: (covered mask, where)}} under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root} is not a folder")
    found: dict[str, Any] = {"VA": {}, "EXPR": {}, "frames": {}}
    for path in sorted(root.rglob("*.txt")):
        kind = kind_of(path)
        if kind == "VA":
            _add(found, kind, path.stem, read_va(path), str(path))
        elif kind == "EXPR":
            values, classes = parse_expr(path)
            _add(found, kind, path.stem, (values, classes), str(path))
        elif kind is not None:  # a submission file
            task, videos = read_submission(path)
            for video, arr in videos.items():
                _add(found, task, video, arr if task == "VA" else (arr, None), f"{path} ({video})")
            found.setdefault("submitted", set()).update((task, v) for v in videos)
    for path in sorted(root.rglob("*.csv")):
        covered = read_covered(path)
        if covered is not None:
            _add(found, "frames", path.stem, covered, str(path))
    return found


def read_covered(path: Path) -> np.ndarray | None:
    """[frames] bool, True where the subject's own prediction was used, from a `frames/<video>.csv`
    the archive wrote (None for any other csv)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not rows or FRAMES_STATUS not in rows[0] or "frame" not in rows[0]:
        return None
    for n, row in enumerate(rows):
        if row["frame"] != str(n) or row[FRAMES_STATUS] not in ("subject", "filled"):
            raise AnnotationFormatError(f"{path}:{n + 2}: expected frame {n}, status subject or filled")
    return np.array([row[FRAMES_STATUS] == "subject" for row in rows])


def _none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _va(p: np.ndarray, a: np.ndarray) -> dict:
    if not len(p):
        return {"ccc_valence": None, "ccc_arousal": None, "va": None}
    cv, ca = ccc(p[:, 0], a[:, 0]), ccc(p[:, 1], a[:, 1])
    return {"ccc_valence": _none(cv), "ccc_arousal": _none(ca), "va": _none((cv + ca) / 2)}


def _expr(p: np.ndarray, a: np.ndarray, classes: int) -> dict:
    if not len(p):
        return {"f1": None, "accuracy": None}
    # an extra column collects the -1 predictions: misses for the annotated class, no class's hit
    cm = confusion(a, np.where(p == EXPR_INVALID, classes, p), classes + 1)
    f1 = per_class_f1(cm)[:classes]
    return {"f1": float(f1.mean()), "accuracy": float((p == a).mean()), "f1_per_class": f1.tolist()}


def _scores(kind: str, pred: np.ndarray, ann: np.ndarray, covered: np.ndarray | None, classes) -> dict:
    valid = va_valid(ann) if kind == "VA" else ann != EXPR_INVALID
    p, a = pred[valid], ann[valid]
    score = _va if kind == "VA" else (lambda p, a: _expr(p, a, len(classes)))
    out = {"frames": int(len(ann)), "valid": int(valid.sum())} | score(p, a)
    if kind == "EXPR" and out.get("f1_per_class") is not None:
        out["f1_per_class"] = dict(zip(classes, out["f1_per_class"], strict=True))
    if covered is None:
        return out | {"filled_share": None, "covered": None}
    cov = covered[valid]
    return out | {
        "filled_share": float(1 - cov.mean()) if len(cov) else None,
        "covered": {"valid": int(cov.sum())} | score(p[cov], a[cov]),
    }


def _pair(kind: str, video: str, pred: tuple, ann_len: int, submitted: bool, ann: np.ndarray) -> np.ndarray:
    arr, where = pred
    if submitted and len(arr) <= ann_len:  # rows may stop before the annotation's last, unannotated, frames
        pad = np.full((ann_len - len(arr), *arr.shape[1:]), NO_ROW[kind])
        arr = np.concatenate([arr, pad.astype(arr.dtype)])
        valid = va_valid(ann) if kind == "VA" else ann != EXPR_INVALID
        unpredicted = valid & (np.isnan(arr).any(axis=1) if kind == "VA" else arr == NO_ROW[kind])
        if unpredicted.any():
            first = int(np.flatnonzero(unpredicted)[0])
            raise EvaluationError(
                f"{kind} {video}: no row for annotated frame {video}/{first + 1:05d}.jpg in {where} "
                f"({int(unpredicted.sum())} such frames); ABAW needs a prediction for every annotated frame"
            )
    if len(arr) != ann_len:
        raise EvaluationError(
            f"{kind} {video}: {len(arr)} predicted frames ({where}) but {ann_len} annotated"
        )
    return arr


def evaluate(pred_dir: str | Path, ann_dir: str | Path) -> dict:
    """Per-video and overall ABAW scores of the predictions in `pred_dir`.

    Returns:
        {"VA": {"videos": {video: scores}, "overall": scores, "missing": [videos without prediction]},
         "EXPR": {...}}; a task without annotations is absent. Scores carry `filled_share` and `covered`
        (the scores on frames not filled), None where the predictions come without frame decisions.

    Raises:
        EvaluationError: No annotations found, or a prediction's frame count differs from its annotation's.
    """
    pred, ann = collect(pred_dir), collect(ann_dir)
    if not ann["VA"] and not ann["EXPR"]:
        raise EvaluationError(f"no VA or EXPR annotation files (by their header line) under {ann_dir}")
    submitted: set[tuple[str, str]] = pred.get("submitted", set())
    report: dict = {}
    for kind in ("VA", "EXPR"):
        if not ann[kind]:
            continue
        videos, missing, cat = {}, [], []
        for video, (a, _) in sorted(ann[kind].items()):
            a, classes = (a, None) if kind == "VA" else a
            if video not in pred[kind]:
                missing.append(video)
                continue
            given = pred[kind][video] if kind == "VA" else (pred[kind][video][0][0], pred[kind][video][1])
            p = _pair(kind, video, given, len(a), (kind, video) in submitted, a)
            cov = pred["frames"].get(video, (None,))[0]
            if cov is not None and len(cov) != len(a):
                raise EvaluationError(f"{video}: {len(cov)} frame decisions but {len(a)} annotated frames")
            videos[video] = _scores(kind, p, a, cov, classes)
            cat.append((p, a, cov, classes))
        overall = None
        if cat:
            covs = [c for _, _, c, _ in cat]
            cov_all = None if any(c is None for c in covs) else np.concatenate(covs)
            classes = max((c for *_, c in cat), key=lambda c: len(c or ()))
            overall = _scores(
                kind,
                np.concatenate([p for p, *_ in cat]),
                np.concatenate([a for _, a, *_ in cat]),
                cov_all,
                classes,
            )
        report[kind] = {"videos": videos, "overall": overall, "missing": missing}
    return report


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def _cov(s: dict, key: str) -> str:
    return _fmt(s["covered"][key] if s.get("covered") else None)


def format_report(report: dict) -> str:
    """A plain-text table of `evaluate`'s report (filled: share of annotated frames filled; cov: the
    score on the frames not filled)."""
    lines = []
    if "VA" in report:
        lines.append(
            f"{'VA video':<32} {'frames':>7} {'valid':>7} {'CCC-V':>6} {'CCC-A':>6} {'VA':>6} "
            f"{'filled':>6} {'VA cov':>6}"
        )
        for video, s in [*report["VA"]["videos"].items(), ("OVERALL", report["VA"]["overall"])]:
            if s is not None:
                lines.append(
                    f"{video:<32} {s['frames']:>7} {s['valid']:>7} {_fmt(s['ccc_valence'])} "
                    f"{_fmt(s['ccc_arousal'])} {_fmt(s['va'])} {_fmt(s['filled_share'])} "
                    f"{_cov(s, 'va')}"
                )
    if "EXPR" in report:
        lines.append(
            f"{'EXPR video':<32} {'frames':>7} {'valid':>7} {'F1':>6} {'acc':>6} {'filled':>6} {'F1 cov':>6}"
        )
        for video, s in [*report["EXPR"]["videos"].items(), ("OVERALL", report["EXPR"]["overall"])]:
            if s is not None:
                lines.append(
                    f"{video:<32} {s['frames']:>7} {s['valid']:>7} {_fmt(s['f1'])} "
                    f"{_fmt(s['accuracy'])} {_fmt(s['filled_share'])} {_cov(s, 'f1')}"
                )
    for kind in ("VA", "EXPR"):
        if report.get(kind, {}).get("missing"):
            lines.append(f"no {kind} prediction for: {', '.join(report[kind]['missing'])}")
    return "\n".join(lines)
