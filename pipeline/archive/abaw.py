"""Aff-Wild2 (ABAW) prediction files: the subject policy, the VA/EXPR writers and readers.

Layout, as in the challenge's folders: `<out>/VA/<video>.txt` (header `valence,arousal`, one line per
frame, the invalid value -5 when the subject is not visible) and `<out>/EXPR/<video>.txt` (header
`Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other`, one class index per frame, -1 when the
subject is not visible). Line i after the header is frame i of the video (0-based here; the challenge's
cropped frames `%05d.jpg` are 1-based, so line i is image i + 1).

Subject policy: a video has one annotated subject, but a frame may show several faces. The policies rank
the video's tracks once, then each frame takes its highest-ranked face present:

- `largest-track` (default): tracks ordered by the sum of their box areas over the video, which favours
  the face that is both large and on screen for long;
- `central-track`: by mean distance of the box centre from the frame centre (smallest first), the
  person the camera frames;
- `longest-track`: by the number of frames the track appears in;
- `largest-face`: no ranking; every frame takes its largest face.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import AffectstreamError

ABAW_EXPR = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
VA_HEADER = "valence,arousal"
EXPR_HEADER = ",".join(ABAW_EXPR)
EXPR_INVALID = -1
VA_INVALID = -5.0
POLICIES = ("largest-track", "central-track", "longest-track", "largest-face")

# Model label names (lower case) that mean an ABAW class; anything else (FER+/AffectNet "Contempt",
# "Unknown") has no ABAW class and is never predicted.
_SYNONYMS = {
    "neutral": "Neutral", "anger": "Anger", "angry": "Anger", "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear", "happiness": "Happiness", "happy": "Happiness", "sadness": "Sadness",
    "sad": "Sadness", "surprise": "Surprise", "surprised": "Surprise", "other": "Other",
}  # fmt: skip


class AnnotationFormatError(AffectstreamError, ValueError):
    """A VA or EXPR file does not follow the Aff-Wild2 format; the message names the file and line."""


def abaw_class(label: str) -> int | None:
    """ABAW class index of a model label name, or None when it has no ABAW class."""
    name = _SYNONYMS.get(label.strip().lower())
    return ABAW_EXPR.index(name) if name else None


def expr_index(probs: dict[str, float]) -> int:
    """ABAW class of a face: arg-max over the model's classes that have an ABAW class (-1 if none do)."""
    best, best_p = EXPR_INVALID, -math.inf
    for label, p in probs.items():
        idx = abaw_class(label)
        if idx is not None and p > best_p:
            best, best_p = idx, p
    return best


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def rank_tracks(frames: Sequence[Sequence[dict]], policy: str, size: tuple[int, int]) -> list[int]:
    """Track ids of a video, best subject candidate first (ties: lower track id first).

    Args:
        frames: Per frame, the faces (`track`, `box`).
        policy: One of `POLICIES` (`largest-face` ranks nothing and returns []).
        size: Frame (width, height), for `central-track`.
    """
    if policy not in POLICIES:
        raise ValueError(f"subject policy {policy!r} is not one of {POLICIES}")
    if policy == "largest-face":
        return []
    w, h = size
    diag = math.hypot(w, h) or 1.0
    stats: dict[int, list[float]] = {}  # track -> [area sum, centre-distance sum, frames]
    for faces in frames:
        for f in faces:
            b = f["box"]
            s = stats.setdefault(f["track"], [0.0, 0.0, 0])
            s[0] += _area(b)
            s[1] += math.hypot((b[0] + b[2]) / 2 - w / 2, (b[1] + b[3]) / 2 - h / 2) / diag
            s[2] += 1
    if policy == "largest-track":
        key = {t: -s[0] for t, s in stats.items()}
    elif policy == "central-track":
        key = {t: s[1] / s[2] for t, s in stats.items()}
    else:
        key = {t: -s[2] for t, s in stats.items()}
    return sorted(stats, key=lambda t: (key[t], t))


def select_subject(frames: Sequence[Sequence[dict]], policy: str, size: tuple[int, int]) -> list[dict | None]:
    """Per frame, the subject's face under `policy` (None when the frame has no face)."""
    order = {t: i for i, t in enumerate(rank_tracks(frames, policy, size))}
    out: list[dict | None] = []
    for faces in frames:
        if not faces:
            out.append(None)
        elif policy == "largest-face":
            out.append(max(faces, key=lambda f: (_area(f["box"]), -f["track"])))
        else:
            out.append(min(faces, key=lambda f: order[f["track"]]))
    return out


def _num(x: float) -> str:
    """Six decimals, or an integer for whole values (so the invalid marker reads `-5` as in ABAW files)."""
    return str(int(x)) if float(x).is_integer() else f"{x:.6f}"


def va_text(subjects: Sequence[dict | None], invalid: float = VA_INVALID) -> str:
    """The VA file: `valence,arousal` per frame, `invalid` for both where no subject or no VA output."""
    lines = [VA_HEADER]
    for face in subjects:
        v = None if face is None else face.get("valence")
        a = None if face is None else face.get("arousal")
        if v is None or a is None:
            lines.append(f"{_num(invalid)},{_num(invalid)}")
        else:
            lines.append(f"{_num(v)},{_num(a)}")
    return "\n".join(lines) + "\n"


def expr_text(subjects: Sequence[dict | None]) -> str:
    """The EXPR file: the ABAW class index per frame, -1 where no subject."""
    lines = [EXPR_HEADER]
    lines += [str(EXPR_INVALID if face is None else expr_index(face["probs"])) for face in subjects]
    return "\n".join(lines) + "\n"


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


def _lines(path: Path, header: str) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationFormatError(f"{path}: cannot read: {exc}") from exc
    if not lines or lines[0].strip().replace(" ", "") != header:
        got = lines[0].strip() if lines else "an empty file"
        raise AnnotationFormatError(f"{path}: line 1 must be the header {header!r}, found {got!r}")
    body = lines[1:]
    while body and not body[-1].strip():  # a trailing blank line is common in the official files
        body.pop()
    return body


def read_va(path: str | Path) -> np.ndarray:
    """A VA file as float64 [frames, 2] (invalid frames keep their -5)."""
    path = Path(path)
    rows = []
    for n, line in enumerate(_lines(path, VA_HEADER), start=2):
        parts = line.split(",")
        try:
            if len(parts) != 2:
                raise ValueError(f"{len(parts)} fields")
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError as exc:
            raise AnnotationFormatError(
                f"{path}:{n}: expected `valence,arousal`, found {line!r} ({exc})"
            ) from exc
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def read_expr(path: str | Path) -> np.ndarray:
    """An EXPR file as int64 [frames] (invalid frames keep their -1)."""
    path = Path(path)
    values = []
    for n, line in enumerate(_lines(path, EXPR_HEADER), start=2):
        try:
            value = int(line.strip())
        except ValueError as exc:
            raise AnnotationFormatError(f"{path}:{n}: expected a class index, found {line!r}") from exc
        if not EXPR_INVALID <= value < len(ABAW_EXPR):
            raise AnnotationFormatError(f"{path}:{n}: class {value} is outside -1..{len(ABAW_EXPR) - 1}")
        values.append(value)
    return np.asarray(values, dtype=np.int64)


def kind_of(path: str | Path) -> str | None:
    """ "VA" or "EXPR" from a file's header line, None for anything else."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = fh.readline().strip().replace(" ", "")
    except (OSError, UnicodeDecodeError):
        return None
    return {VA_HEADER: "VA", EXPR_HEADER: "EXPR"}.get(first)
