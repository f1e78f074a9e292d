"""Per-track temporal smoothing of class probabilities and valence/arousal.

A face's per-frame prediction flickers with small changes of the crop; averaging a track's last few
frames steadies it. Two forms:

- `CausalSmoother` (live): each face is averaged with the previous `window - 1` observations of its
  track, so it only ever looks back and adds no latency.
- `smooth_centred` (archives): each frame is averaged over the track's frames within `window // 2`
  frames either side, which does not lag behind expression changes the way a causal window does.

Only frames in which the track is present are averaged; the expression label becomes the arg-max of the
averaged probabilities. A window of 1 (or less) changes nothing. Faces are plain dicts as in a result
entry (`probs` {label: p}, `valence`, `arousal`, `expr`) or `FaceResult` objects.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from affectstream.pipeline.types import FrameResult


def _mean_face(faces: Sequence[dict]) -> dict:
    """Average of `faces` (same track): probs per label, valence and arousal; expr = arg-max."""
    last = faces[-1]
    labels = list(last["probs"])
    probs = {k: sum(f["probs"].get(k, 0.0) for f in faces) / len(faces) for k in labels}
    out = dict(last, probs=probs, expr=max(labels, key=probs.__getitem__) if labels else last["expr"])
    for key in ("valence", "arousal"):
        values = [f[key] for f in faces if f.get(key) is not None]
        out[key] = sum(values) / len(values) if values else None
    return out


def smooth_centred(frames: Sequence[Sequence[dict]], window: int) -> list[list[dict]]:
    """Centred per-track smoothing of a whole video.

    Args:
        frames: Per frame, the faces found in it (dicts with `track`, `probs`, `valence`, `arousal`).
        window: Width in frames (odd widths are symmetric; an even one is rounded up to the next odd).

    Returns:
        The same structure with averaged `probs`, `valence`, `arousal` and the matching `expr`.
    """
    if window <= 1:
        return [list(faces) for faces in frames]
    half = window // 2
    by_track: dict[int, list[tuple[int, dict]]] = {}
    for i, faces in enumerate(frames):
        for face in faces:
            by_track.setdefault(face["track"], []).append((i, face))
    smoothed: dict[tuple[int, int], dict] = {}
    for track, seq in by_track.items():
        lo = 0
        for j, (i, _face) in enumerate(seq):
            while seq[lo][0] < i - half:
                lo += 1
            hi = j
            while hi + 1 < len(seq) and seq[hi + 1][0] <= i + half:
                hi += 1
            # the face itself last, so fields that are not averaged (box, score) stay its own
            group = [f for _, f in seq[lo : hi + 1] if f is not seq[j][1]] + [seq[j][1]]
            smoothed[(i, track)] = _mean_face(group)
    return [[smoothed[(i, face["track"])] for face in faces] for i, faces in enumerate(frames)]


class CausalSmoother:
    """Live smoothing: average each track's last `window` observations.

    Args:
        window: Observations per track to average (1 = off).
        forget_after: Frames after which a track that was not seen is forgotten (bounds memory).
    """

    def __init__(self, window: int, *, forget_after: int = 150) -> None:
        self.window = max(1, int(window))
        self.forget_after = forget_after
        self._history: dict[tuple[str, int], deque] = {}
        self._last_seen: dict[tuple[str, int], int] = {}

    def apply(self, result: FrameResult) -> FrameResult:
        """Return `result` with every face replaced by its track's running average (input unchanged)."""
        if self.window <= 1:
            return result
        faces = []
        for face in result.faces:
            key = (result.source, face.track)
            hist = self._history.setdefault(key, deque(maxlen=self.window))
            hist.append(
                {"probs": face.probs, "valence": face.valence, "arousal": face.arousal, "expr": face.expr}
            )
            self._last_seen[key] = result.frame
            mean = _mean_face(hist)
            faces.append(
                replace(
                    face,
                    probs=mean["probs"],
                    expr=mean["expr"],
                    valence=mean["valence"],
                    arousal=mean["arousal"],
                )
            )
        self._forget(result.source, result.frame)
        return replace(result, faces=faces)

    def _forget(self, source: str, frame: int) -> None:
        stale = [
            k for k, seen in self._last_seen.items() if k[0] == source and frame - seen > self.forget_after
        ]
        for key in stale:
            del self._history[key], self._last_seen[key]
