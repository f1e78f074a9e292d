"""`evaluate-abaw`: score Aff-Wild2-format predictions against annotations the way ABAW does.

Both folders are searched recursively for `.txt` files; each file's header says whether it is a VA or an
EXPR file, and predictions pair with annotations by file name (the video name). So the challenge's own
annotation folders (`VA_Estimation_Challenge/Validation_Set/*.txt`) work as they are, and so does an
`archive` output folder (`VA/`, `EXPR/`).

- VA: frames annotated -5 (valence or arousal) are ignored; CCC of valence and of arousal, and their
  mean (the ABAW VA score). The overall scores are computed over all videos' frames concatenated, as in
  the challenge, not averaged per video.
- EXPR: frames annotated -1 are ignored; F1 per class over the eight ABAW classes in their official
  order, macro-averaged (a class neither annotated nor predicted scores 0, as sklearn does with all
  labels given). A prediction of -1 on an annotated frame counts as a miss.

Predictions must have exactly one line per annotated frame; a different count is an error naming the
video, since it usually means frames were dropped or the wrong video was matched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.archive.abaw import ABAW_EXPR, EXPR_INVALID, VA_INVALID, kind_of, read_expr, read_va
from pipeline.errors import AffectstreamError
from training.metrics import ccc, confusion, per_class_f1


class EvaluationError(AffectstreamError, ValueError):
    """Predictions and annotations cannot be compared; the message names the folder or video."""


def collect(root: str | Path) -> dict[str, dict[str, Path]]:
    """{"VA": {video: path}, "EXPR": {video: path}} of the Aff-Wild2 files under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root} is not a folder")
    found: dict[str, dict[str, Path]] = {"VA": {}, "EXPR": {}}
    for path in sorted(root.rglob("*.txt")):
        kind = kind_of(path)
        if kind is None:
            continue
        if path.stem in found[kind]:
            raise EvaluationError(
                f"two {kind} files for video {path.stem!r}: {found[kind][path.stem]} and {path}"
            )
        found[kind][path.stem] = path
    return found


def _nan_to_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def va_scores(pred: np.ndarray, ann: np.ndarray) -> dict:
    """CCC of valence and arousal over the frames whose annotation is valid, and their mean."""
    valid = (ann[:, 0] != VA_INVALID) & (ann[:, 1] != VA_INVALID)
    p, a = pred[valid], ann[valid]
    covered = (p[:, 0] != VA_INVALID) & (p[:, 1] != VA_INVALID)
    out = {"frames": int(len(ann)), "valid": int(valid.sum()),
           "predicted": float(covered.mean()) if len(p) else None}  # fmt: skip
    if not len(p):
        return out | {"ccc_valence": None, "ccc_arousal": None, "va": None}
    cv, ca = ccc(p[:, 0], a[:, 0]), ccc(p[:, 1], a[:, 1])
    return out | {
        "ccc_valence": _nan_to_none(cv),
        "ccc_arousal": _nan_to_none(ca),
        "va": _nan_to_none((cv + ca) / 2),
    }


def expr_scores(pred: np.ndarray, ann: np.ndarray) -> dict:
    """Macro-F1 over the eight ABAW classes and accuracy, over the frames whose annotation is valid."""
    valid = ann != EXPR_INVALID
    p, a = pred[valid], ann[valid]
    c = len(ABAW_EXPR)
    out = {"frames": int(len(ann)), "valid": int(valid.sum()),
           "predicted": float((p != EXPR_INVALID).mean()) if len(p) else None}  # fmt: skip
    if not len(p):
        return out | {"f1": None, "accuracy": None, "f1_per_class": None}
    # an extra column collects the -1 predictions: misses for the annotated class, no class's hit
    cm = confusion(a, np.where(p == EXPR_INVALID, c, p), c + 1)
    f1 = per_class_f1(cm)[:c]
    return out | {"f1": float(f1.mean()), "accuracy": float((p == a).mean()),
                  "f1_per_class": {name: float(v) for name, v in zip(ABAW_EXPR, f1, strict=True)}}  # fmt: skip


def _pairs(kind: str, pred: dict[str, Path], ann: dict[str, Path], reader) -> tuple[list, list[str]]:
    pairs, missing = [], []
    for video, ann_path in sorted(ann.items()):
        if video not in pred:
            missing.append(video)
            continue
        p, a = reader(pred[video]), reader(ann_path)
        if len(p) != len(a):
            raise EvaluationError(
                f"{kind} {video}: {len(p)} predicted frames ({pred[video]}) but {len(a)} annotated ({ann_path})"
            )
        pairs.append((video, p, a))
    return pairs, missing


def evaluate(pred_dir: str | Path, ann_dir: str | Path) -> dict:
    """Per-video and overall ABAW scores of the predictions in `pred_dir`.

    Returns:
        {"VA": {"videos": {video: scores}, "overall": scores, "missing": [videos without prediction]},
         "EXPR": {...}}; a task without annotations is absent.

    Raises:
        EvaluationError: No annotations found, or a prediction's frame count differs from its annotation's.
    """
    pred, ann = collect(pred_dir), collect(ann_dir)
    if not ann["VA"] and not ann["EXPR"]:
        raise EvaluationError(f"no VA or EXPR annotation files (by their header line) under {ann_dir}")
    report: dict = {}
    for kind, reader, scorer in (("VA", read_va, va_scores), ("EXPR", read_expr, expr_scores)):
        if not ann[kind]:
            continue
        pairs, missing = _pairs(kind, pred[kind], ann[kind], reader)
        videos = {video: scorer(p, a) for video, p, a in pairs}
        overall = (
            scorer(np.concatenate([p for _, p, _ in pairs]), np.concatenate([a for _, _, a in pairs]))
            if pairs
            else None
        )
        report[kind] = {"videos": videos, "overall": overall, "missing": missing}
    return report


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def format_report(report: dict) -> str:
    """A plain-text table of `evaluate`'s report."""
    lines = []
    if "VA" in report:
        lines.append(f"{'VA video':<32} {'frames':>7} {'valid':>7} {'CCC-V':>6} {'CCC-A':>6} {'VA':>6}")
        rows = [*report["VA"]["videos"].items(), ("OVERALL", report["VA"]["overall"])]
        for video, s in rows:
            if s is not None:
                lines.append(f"{video:<32} {s['frames']:>7} {s['valid']:>7} {_fmt(s['ccc_valence'])} "
                             f"{_fmt(s['ccc_arousal'])} {_fmt(s['va'])}")  # fmt: skip
    if "EXPR" in report:
        lines.append(f"{'EXPR video':<32} {'frames':>7} {'valid':>7} {'F1':>6} {'acc':>6}")
        rows = [*report["EXPR"]["videos"].items(), ("OVERALL", report["EXPR"]["overall"])]
        for video, s in rows:
            if s is not None:
                lines.append(
                    f"{video:<32} {s['frames']:>7} {s['valid']:>7} {_fmt(s['f1'])} {_fmt(s['accuracy'])}"
                )
    for kind in ("VA", "EXPR"):
        if report.get(kind, {}).get("missing"):
            lines.append(f"no {kind} prediction for: {', '.join(report[kind]['missing'])}")
    return "\n".join(lines)
