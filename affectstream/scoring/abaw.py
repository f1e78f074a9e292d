"""The Aff-Wild2 (ABAW) file formats: the one reader and writer of annotations and predictions.

Used by the archive (prediction files, `evaluate-abaw`) and by training (`training.data.affwild2`), so
both follow one set of rules. Numpy only, and no import of `pipeline` or `training`: it sits below both.

Per-video files, as in the challenge's folders (line i after the header = frame i of the video, 0-based;
the challenge's cropped frames `%05d.jpg` are 1-based, so line i is image i + 1):

- VA: header `valence,arousal`, one `v,a` line per frame; -5 in either column = frame not annotated.
- EXPR: header `Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other` (ABAW3 and later) or the
  first seven of those (ABAW2); one class index per frame; -1 = frame not annotated.

Release layouts (`find_split`): the task folder is `VA_Set` (ABAW2) or `VA_Estimation_Challenge`
(ABAW3+), and `EXPR_Set` (ABAW2), `EXPR_Recognition_Challenge` or `EXPR_Classification_Challenge`
(ABAW3-6), each holding `Train_Set/` and `Validation_Set/`.

Submission files of the recent challenges (`submission_text`, `read_submission`): one file per task,
header `image_location,valence,arousal` (or `image_location,` + the EXPR class names), then one row per
frame, `video/00001.jpg,v,a` (or `video/00001.jpg,class`).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from affectstream.scoring.errors import AnnotationFormatError, LayoutError

EXPR_CLASSES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
EXPR_CLASSES_7 = EXPR_CLASSES[:7]  # ABAW2: no Other
ABAW_EXPR = EXPR_CLASSES  # the order predictions are written in
VA_HEADER = "valence,arousal"
EXPR_HEADER = ",".join(EXPR_CLASSES)
EXPR_HEADER_7 = ",".join(EXPR_CLASSES_7)
SUBMISSION_KEY = "image_location"
NO_ROW = {"VA": np.nan, "EXPR": -2}  # a frame a submission file has no row for
EXPR_INVALID = -1
VA_INVALID = -5.0
TASK_DIRS = {
    "VA": ("VA_Estimation_Challenge", "VA_Set"),
    "EXPR": ("EXPR_Classification_Challenge", "EXPR_Recognition_Challenge", "EXPR_Set"),
}
SPLIT_DIRS = {"train": "Train_Set", "valid": "Validation_Set"}
_IMAGE = re.compile(r"^(?P<video>.+)/(?P<frame>\d+)\.(?:jpg|png)$")

# Model label names (lower case) that mean an ABAW class; anything else (FER+/AffectNet "Contempt",
# "Unknown") has no ABAW class and is never predicted.
_SYNONYMS = {
    "neutral": "Neutral",
    "anger": "Anger",
    "angry": "Anger",
    "disgust": "Disgust",
    "disgusted": "Disgust",
    "fear": "Fear",
    "fearful": "Fear",
    "happiness": "Happiness",
    "happy": "Happiness",
    "sadness": "Sadness",
    "sad": "Sadness",
    "surprise": "Surprise",
    "surprised": "Surprise",
    "other": "Other",
}


def abaw_class(label: str) -> int | None:
    """ABAW class index of a model or annotation label name, or None when it has no ABAW class."""
    name = _SYNONYMS.get(label.strip().lower())
    return EXPR_CLASSES.index(name) if name else None


def abaw_probs(probs: dict[str, float]) -> np.ndarray:
    """A model's class probabilities on the eight ABAW classes (0 for classes the model lacks)."""
    out = np.zeros(len(EXPR_CLASSES))
    for label, p in probs.items():
        idx = abaw_class(label)
        if idx is not None:
            out[idx] = max(out[idx], float(p))
    return out


def expr_index(probs: dict[str, float]) -> int:
    """ABAW class of a face: arg-max over the model's classes that have an ABAW class (-1 if none do)."""
    best, best_p = EXPR_INVALID, -math.inf
    for label, p in probs.items():
        idx = abaw_class(label)
        if idx is not None and p > best_p:
            best, best_p = idx, p
    return best


def _num(x: float) -> str:
    """Six decimals, or an integer for whole values."""
    return str(int(x)) if float(x).is_integer() else f"{x:.6f}"


def va_text(va: np.ndarray) -> str:
    """The VA file of [frames, 2] valence, arousal."""
    return "\n".join([VA_HEADER, *(f"{_num(v)},{_num(a)}" for v, a in va)]) + "\n"


def expr_text(classes: Iterable[int]) -> str:
    """The EXPR file (ABAW3+ header) of one class index per frame."""
    return "\n".join([EXPR_HEADER, *(str(int(c)) for c in classes)]) + "\n"


def write_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder and a rename.

    A reader (or a worker that crashes half-way) never sees a partial file: it is the old file or the new.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _norm(line: str) -> str:
    return line.strip().replace(" ", "")


def _read_lines(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationFormatError(f"{path}: cannot read: {exc}") from exc
    while lines and not lines[-1].strip():  # a trailing blank line is common in the official files
        lines.pop()
    return lines


def _body(path: Path, headers: tuple[str, ...]) -> tuple[str, list[str]]:
    lines = _read_lines(path)
    if not lines or _norm(lines[0]) not in headers:
        got = lines[0].strip()[:80] if lines else "an empty file"
        want = " or ".join(repr(h) for h in headers)
        raise AnnotationFormatError(f"{path}: line 1 must be the header {want}, found {got!r}")
    return _norm(lines[0]), lines[1:]


def _va_row(fields: list[str], path: Path, n: int, line: str) -> tuple[float, float]:
    try:
        if len(fields) != 2:
            raise ValueError(f"{len(fields)} fields")
        v, a = float(fields[0]), float(fields[1])
        if not (math.isfinite(v) and math.isfinite(a)):
            raise ValueError("not a finite number")
    except ValueError as exc:
        raise AnnotationFormatError(
            f"{path}:{n}: expected `valence,arousal`, found {line[:80]!r} ({exc})"
        ) from exc
    return v, a


def _expr_value(text: str, classes: int, path: Path, n: int, line: str) -> int:
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise AnnotationFormatError(f"{path}:{n}: expected a class index, found {line[:80]!r}") from exc
    if not EXPR_INVALID <= value < classes:
        raise AnnotationFormatError(f"{path}:{n}: class {value} is outside -1..{classes - 1}")
    return value


def read_va(path: str | Path) -> np.ndarray:
    """A VA file as float64 [frames, 2] (frames not annotated keep their -5)."""
    path = Path(path)
    _, body = _body(path, (VA_HEADER,))
    rows = [_va_row(line.split(","), path, n, line) for n, line in enumerate(body, start=2)]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def parse_expr(path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """An EXPR file as int64 [frames] (not annotated: -1) and its class names (7 or 8, by the header)."""
    path = Path(path)
    header, body = _body(path, (EXPR_HEADER, EXPR_HEADER_7))
    classes = EXPR_CLASSES if header == EXPR_HEADER else EXPR_CLASSES_7
    values = [_expr_value(line, len(classes), path, n, line) for n, line in enumerate(body, start=2)]
    return np.asarray(values, dtype=np.int64), classes


def read_expr(path: str | Path) -> np.ndarray:
    """An EXPR file as int64 [frames] (frames not annotated keep their -1)."""
    return parse_expr(path)[0]


def va_valid(va: np.ndarray) -> np.ndarray:
    """[frames] bool: annotated frames of a VA array (neither column -5)."""
    return (va[:, 0] != VA_INVALID) & (va[:, 1] != VA_INVALID)


def kind_of(path: str | Path) -> str | None:
    """ "VA", "EXPR", "VA-submission" or "EXPR-submission" from a file's header line, None otherwise."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = _norm(fh.readline())
    except (OSError, UnicodeDecodeError):
        return None
    kinds = {VA_HEADER: "VA", EXPR_HEADER: "EXPR", EXPR_HEADER_7: "EXPR"}
    kinds |= {f"{SUBMISSION_KEY},{h}": f"{k}-submission" for h, k in list(kinds.items())}
    return kinds.get(first)


def submission_text(kind: str, videos: dict[str, np.ndarray]) -> str:
    """One task's submission file: a row per frame of every video (`video/00001.jpg,...`), videos sorted."""
    header = f"{SUBMISSION_KEY},{VA_HEADER if kind == 'VA' else EXPR_HEADER}"
    lines = [header]
    for video in sorted(videos):
        for i, row in enumerate(videos[video]):
            value = f"{_num(row[0])},{_num(row[1])}" if kind == "VA" else str(int(row))
            lines.append(f"{video}/{i + 1:05d}.jpg,{value}")
    return "\n".join(lines) + "\n"


def read_submission(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """A submission file as ("VA" | "EXPR", {video: per-frame array}).

    Frames a video has no row for (below its highest row) hold `NO_ROW` (VA: NaN, EXPR: -2), so a
    scorer can tell them from a row that says -5 or -1; a row given twice is an error.
    """
    path = Path(path)
    heads = {f"{SUBMISSION_KEY},{h}": h for h in (VA_HEADER, EXPR_HEADER, EXPR_HEADER_7)}
    header, body = _body(path, tuple(heads))
    kind = "VA" if heads[header] == VA_HEADER else "EXPR"
    classes = len(heads[header].split(","))
    rows: dict[str, dict[int, object]] = {}
    for n, line in enumerate(body, start=2):
        key, _, rest = line.strip().partition(",")
        m = _IMAGE.match(key)
        if not m or int(m["frame"]) < 1:
            raise AnnotationFormatError(f"{path}:{n}: expected `video/00001.jpg,...`, found {line[:80]!r}")
        frames = rows.setdefault(m["video"], {})
        index = int(m["frame"]) - 1
        if index in frames:
            raise AnnotationFormatError(f"{path}:{n}: {key} is given twice")
        if kind == "VA":
            frames[index] = _va_row(rest.split(","), path, n, line)
        else:
            frames[index] = _expr_value(rest, classes, path, n, line)
    out = {}
    for video, frames in rows.items():
        arr: np.ndarray
        if kind == "VA":
            arr = np.full((max(frames) + 1, 2), NO_ROW["VA"])
        else:
            arr = np.full(max(frames) + 1, NO_ROW["EXPR"], np.int64)
        for i, value in frames.items():
            arr[i] = value
        out[video] = arr
    return kind, out


def _task_dirs(root: Path, names: tuple[str, ...]) -> list[Path]:
    """Folders named like a task: `root` itself, or one or two levels down (`<root>/annotations/<task>`).

    Not deeper: the level below holds the frame folders, hundreds of thousands of images.
    """
    found = [root] if root.name in names else []
    for depth in ("*", "*/*"):
        found += sorted(p for p in root.glob(depth) if p.name in names and p.is_dir())
    return found


def find_split(root: str | Path, split: str, tasks: Iterable[str] = ("VA", "EXPR")) -> dict[str, Path | None]:
    """The annotation folder of each task for `split` ("train" or "valid"), under any ABAW2-6 layout.

    Returns:
        {task: folder holding the split's per-video .txt files, or None when the release lacks the task}.

    Raises:
        LayoutError: `root` is no folder, the split is unknown, or a task is present in two layouts.
    """
    root = Path(root)
    if split not in SPLIT_DIRS:
        raise LayoutError(f"unknown Aff-Wild2 split {split!r}; allowed values: {', '.join(SPLIT_DIRS)}")
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder (the Aff-Wild2 root, holding the annotation folders)")
    out: dict[str, Path | None] = {}
    for task in tasks:
        dirs = [d / SPLIT_DIRS[split] for d in _task_dirs(root, TASK_DIRS[task])]
        dirs = [d for d in dirs if d.is_dir()]
        if len(dirs) > 1:
            raise LayoutError(
                f"{task} annotations for {SPLIT_DIRS[split]} in {len(dirs)} places under {root}: "
                f"{', '.join(map(str, dirs))}; keep one release"
            )
        out[task] = dirs[0] if dirs else None
    return out


def split_files(folder: Path | None) -> dict[str, Path]:
    """{video: path} of the .txt files in a split folder (none when the folder is None)."""
    return {p.stem: p for p in sorted(folder.glob("*.txt"))} if folder is not None else {}


def looked_for(root: str | Path, task: str, split: str) -> str:
    """Where `find_split` looks for a task's split, for error messages."""
    return f"{Path(root)}/[annotations/]{{{','.join(TASK_DIRS[task])}}}/{SPLIT_DIRS[split]}/*.txt"
