"""Aff-Wild2 (ABAW) reader: per-video annotation txt files plus ``cropped_aligned`` frames.

Layout under the root (any ABAW2-6 release, see `scoring.abaw.find_split`)::

    cropped_aligned/<video>/00001.jpg ...                  (frame i of the video is line i, 1-based)
    [annotations/]{VA_Estimation_Challenge,VA_Set}/{Train_Set,Validation_Set}/<video>.txt
    [annotations/]{EXPR_Classification_Challenge,EXPR_Recognition_Challenge,EXPR_Set}/{...}/<video>.txt

The files are read by `scoring.abaw`, the one reader the archive's `evaluate-abaw` uses too.
Invalid values: VA -5, EXPR -1. A frame with either annotation is a sample; the other is masked. EXPR
classes map to the recipe's label set by name, so the 7-class (ABAW2) and 8-class (ABAW3+, Other) sets
both load; an annotated class the label set lacks (Other, for a 7-class label set) is masked. Frames
without an image (the cropper missed the face) are skipped. A split with no usable label of a task the
recipe trains is an error naming the folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from affectstream.scoring.abaw import (
    abaw_class,
    find_split,
    looked_for,
    parse_expr,
    read_va,
    split_files,
    va_valid,
)
from affectstream.scoring.errors import AnnotationFormatError, LayoutError
from affectstream.training.data.base import Samples, load_images
from affectstream.training.errors import DataError
from affectstream.training.labels import LabelSet, get_label_set

log = logging.getLogger(__name__)
TASKS = ("VA", "EXPR")


def _class_map(classes: tuple[str, ...], labels: LabelSet, path: Path) -> np.ndarray:
    """Annotation class index -> label-set index (-1 where the label set lacks the class)."""
    by_abaw = {abaw_class(name): i for i, name in enumerate(labels.labels)}
    if None in by_abaw:
        raise DataError(f"label set {labels.name} has classes without an ABAW class: {labels.labels}")
    return np.array([by_abaw.get(abaw_class(name), -1) for name in classes], np.int64)


def _read(task: str, path: Path, labels: LabelSet) -> np.ndarray:
    """VA as float32 [T, 2] (NaN where not annotated) or EXPR as label-set indices [T] (-1 where not)."""
    try:
        if task == "VA":
            va = read_va(path)
            return np.where(va_valid(va)[:, None], va, np.nan).astype(np.float32)
        values, classes = parse_expr(path)
    except AnnotationFormatError as exc:
        raise DataError(str(exc)) from exc
    mapped = np.concatenate([_class_map(classes, labels, path), [-1]])
    return mapped[values]  # -1 indexes the appended -1


def load_affwild2(
    root: str | Path,
    split: str,
    size: int,
    colour: str,
    frame_step: int = 1,
    label_set: str = "affwild2_8",
    tasks: tuple[str, ...] = TASKS,
) -> Samples:
    """Load an ABAW split (VA and EXPR merged per frame), every `frame_step`-th frame.

    Args:
        tasks: The tasks the recipe trains; a split without a usable label of one is an error.

    Raises:
        DataError: Unknown split, no annotation folder or no usable label for a task, a malformed file.
    """
    root = Path(root)
    labels = get_label_set(label_set)
    try:
        dirs = find_split(root, split, TASKS)
    except LayoutError as exc:
        raise DataError(str(exc)) from exc
    files = {task: split_files(dirs[task]) for task in TASKS}
    for task in tasks:
        if not files[task]:
            raise DataError(
                f"Aff-Wild2 {split}: no {task} annotation files; looked for {looked_for(root, task, split)}"
            )
    videos = sorted(set(files["VA"]) | set(files["EXPR"]))
    paths, label, va, ids = [], [], [], []
    for video in videos:
        v = _read("VA", files["VA"][video], labels) if video in files["VA"] else np.zeros((0, 2), np.float32)
        e = _read("EXPR", files["EXPR"][video], labels) if video in files["EXPR"] else np.zeros(0, np.int64)
        for i in range(0, max(len(v), len(e)), frame_step):
            frame = root / "cropped_aligned" / video / f"{i + 1:05d}.jpg"
            lab = int(e[i]) if i < len(e) else -1
            val = v[i] if i < len(v) else np.array([np.nan, np.nan])
            if (lab < 0 and np.isnan(val).any()) or not frame.exists():
                continue
            paths.append(frame)
            label.append(lab)
            va.append(val)
            ids.append(f"{video}/{i + 1:05d}")
    label_arr = np.asarray(label, np.int64)
    va_arr = np.asarray(va, np.float32).reshape(-1, 2)
    va_mask = ~np.isnan(va_arr).any(1)
    usable = {"VA": int(va_mask.sum()), "EXPR": int((label_arr >= 0).sum())}
    for task in tasks:
        if not usable[task]:
            raise DataError(
                f"Aff-Wild2 {split}: no usable {task} label under {dirs[task]} (every frame is unannotated, "
                f"or has no image under {root / 'cropped_aligned'}); the recipe trains {task}"
            )
    dist = np.zeros((len(label_arr), labels.num_classes), np.float32)
    dist[label_arr >= 0, label_arr[label_arr >= 0]] = 1.0
    return Samples(
        images=load_images(paths, size, colour),
        label=label_arr,
        dist=dist,
        va=np.nan_to_num(va_arr).astype(np.float32),
        va_mask=va_mask,
        label_set=labels,
        ids=ids,
    )
