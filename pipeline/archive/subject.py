"""Which face is the video's subject in each frame, and why (written per frame beside the ABAW files).

A video has one annotated subject, but a frame may show several faces, and the subject's face may be
missing (turned away, occluded, out of shot). The track policies rank the video's tracks once:

- `largest-track` (default): by the sum of their box areas over the video, which favours the face that is
  both large and on screen for long;
- `central-track`: by mean distance of the box centre from the frame centre (smallest first), the
  person the camera frames;
- `longest-track`: by the number of frames the track appears in.

The subject is the top-ranked track, joined by lower-ranked tracks that are the same person seen again
after the tracker lost them: a track joins when it shares no frame with the subject's tracks and starts
(or ends) within `JOIN_WIDTHS` face widths of where the subject's adjacent track ended (or starts). A
frame where none of the subject's tracks is present has no subject face, even if other people are
visible: it is filled (`pipeline.archive.fill`) rather than given another person's expression.

`largest-face` ranks nothing: every frame takes its largest face (no identity; other people included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

POLICIES = ("largest-track", "central-track", "longest-track", "largest-face")
JOIN_WIDTHS = 1.5  # how far (in face widths) a lost subject may reappear and still be the subject
JOIN_SCALE = 2.0  # and how much larger or smaller its face may be


@dataclass(frozen=True)
class Choice:
    """The subject decision of one frame.

    Attributes:
        face: The subject's face (None: no subject face in this frame).
        others: Track ids of the other faces in the frame, not taken.
        reason: Why `face` was taken, or why there is none.
    """

    face: dict | None
    others: tuple[int, ...]
    reason: str


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _check(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"subject policy {policy!r} is not one of {POLICIES}")


def rank_tracks(frames: Sequence[Sequence[dict]], policy: str, size: tuple[int, int]) -> list[int]:
    """Track ids of a video, best subject candidate first (ties: lower track id first).

    Args:
        frames: Per frame, the faces (`track`, `box`).
        policy: One of `POLICIES` (`largest-face` ranks nothing and returns []).
        size: Frame (width, height), for `central-track`.
    """
    _check(policy)
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


def _near(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Centre distance of two boxes in mean face widths, or None when their sizes differ too much."""
    wa, wb = max(a[2] - a[0], 1e-6), max(b[2] - b[0], 1e-6)
    if max(wa, wb) / min(wa, wb) > JOIN_SCALE:
        return None
    d = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return d / ((wa + wb) / 2)


def subject_tracks(frames: Sequence[Sequence[dict]], ranked: list[int]) -> dict[int, str]:
    """{track: why it is the subject} for the top-ranked track and the tracks that join it."""
    if not ranked:
        return {}
    seen: dict[int, list[int]] = {}
    boxes: dict[tuple[int, int], list[float]] = {}
    for i, faces in enumerate(frames):
        for f in faces:
            seen.setdefault(f["track"], []).append(i)
            boxes[f["track"], i] = f["box"]
    chosen = {ranked[0]: f"rank 1 of {len(ranked)}"}
    used = set(seen[ranked[0]])
    for rank, t in enumerate(ranked[1:], start=2):
        if used.intersection(seen[t]):
            continue
        first, last = seen[t][0], seen[t][-1]
        before = [i for i in used if i < first]
        after = [i for i in used if i > last]
        joins = []
        if before:
            j = max(before)
            joins.append((_near(boxes[_owner(chosen, boxes, j), j], boxes[t, first]), j))
        if after:
            j = min(after)
            joins.append((_near(boxes[_owner(chosen, boxes, j), j], boxes[t, last]), j))
        ok = [(d, j) for d, j in joins if d is not None and d <= JOIN_WIDTHS]
        if ok:
            d, j = min(ok)
            chosen[t] = (
                f"rank {rank} of {len(ranked)}, joined: no shared frame, {d:.2f} face widths from frame {j}"
            )
            used.update(seen[t])
    return chosen


def _owner(chosen: dict[int, str], boxes: dict[tuple[int, int], list[float]], frame: int) -> int:
    return next(t for t in chosen if (t, frame) in boxes)


def choose(frames: Sequence[Sequence[dict]], policy: str, size: tuple[int, int]) -> list[Choice]:
    """Per frame, the subject's face under `policy` and the reason (see the module docstring)."""
    _check(policy)
    out: list[Choice] = []
    if policy == "largest-face":
        for faces in frames:
            if not faces:
                out.append(Choice(None, (), "no face"))
                continue
            best = max(faces, key=lambda f: (_area(f["box"]), -f["track"]))
            others = tuple(f["track"] for f in faces if f is not best)
            out.append(Choice(best, others, f"largest of {len(faces)} faces"))
        return out
    subject = subject_tracks(frames, rank_tracks(frames, policy, size))
    for faces in frames:
        mine = [f for f in faces if f["track"] in subject]
        face = mine[0] if mine else None
        others = tuple(f["track"] for f in faces if f is not face)
        if face is not None:
            reason = f"subject track {face['track']} ({policy} {subject[face['track']]})"
        elif faces:
            reason = "subject not visible; other people's faces not taken"
        else:
            reason = "no face"
        out.append(Choice(face, others, reason))
    return out


def select_subject(frames: Sequence[Sequence[dict]], policy: str, size: tuple[int, int]) -> list[dict | None]:
    """Per frame, the subject's face under `policy` (None when the subject is not visible)."""
    return [c.face for c in choose(frames, policy, size)]
