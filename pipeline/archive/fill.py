"""A prediction for every frame: how frames without the subject's face are filled.

ABAW scores every annotated frame, including frames where our detector found no face or the subject was
not the face it found; a marker such as -5 written there would enter the CCC as a value. So the files
get a value for every frame, and the per-frame decisions (`frames/<video>.csv`) say which were filled.

Policies (`--fill`), for a frame whose subject is not visible:

- `interpolate` (default): between the subject's predictions on both sides of the gap, linearly
  (VA, and the class probabilities whose arg-max is the EXPR class); at the start or end of the video,
  the nearest prediction is held;
- `nearest`: the subject's nearest prediction in time (the earlier one on ties);
- `mean`: the video's mean prediction of the subject (mean VA, arg-max of the mean probabilities);
- `neutral`: valence 0, arousal 0, Neutral.

`interpolate` and `nearest` reach at most `max_gap` frames from a prediction (0 = no limit); frames
farther away get the video mean. A video with no subject prediction at all is `neutral` throughout.
The default was measured (docs/archive.md, "Fill policy"): on real model trajectories with real
detection gaps, `interpolate` without a limit scored highest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FILLS = ("interpolate", "nearest", "mean", "neutral")
DEFAULT_FILL = "interpolate"
DEFAULT_MAX_GAP = 0


@dataclass(frozen=True)
class Filled:
    """Every frame's values, and how each was obtained.

    Attributes:
        values: [frames, k], no NaN.
        how: Per frame, "" where the subject's own prediction was used, else how it was filled
            ("interpolated 10..21", "nearest 10", "video mean", "neutral").
    """

    values: np.ndarray
    how: list[str]


def _gaps(missing: np.ndarray) -> list[tuple[int, int]]:
    """Runs [start, end] (inclusive) of True in `missing`."""
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def fill_series(x: np.ndarray, policy: str, max_gap: int, neutral: np.ndarray) -> Filled:
    """Fill the rows of `x` [frames, k] that are NaN.

    Args:
        x: Per frame, the subject's prediction; a row of NaN where there is none.
        policy: One of `FILLS`.
        max_gap: Frames farther than this from any prediction get the video mean (0 = no limit).
        neutral: The `neutral` value [k].
    """
    if policy not in FILLS:
        raise ValueError(f"fill policy {policy!r} is not one of {FILLS}")
    x = np.array(x, dtype=np.float64, copy=True)
    missing = np.isnan(x).any(axis=1)
    how = [""] * len(x)
    if not missing.any():
        return Filled(x, how)
    if missing.all() or policy == "neutral":
        x[missing] = neutral
        return Filled(x, ["neutral" if m else "" for m in missing])
    mean = x[~missing].mean(axis=0)
    limit = max_gap if max_gap > 0 else len(x)
    for s, e in _gaps(missing):
        prev = s - 1 if s > 0 else None
        nxt = e + 1 if e + 1 < len(x) else None
        for i in range(s, e + 1):
            dp = i - prev if prev is not None else None
            dn = nxt - i if nxt is not None else None
            near = min(d for d in (dp, dn) if d is not None)
            if policy == "mean" or near > limit:
                x[i], how[i] = mean, "video mean"
            elif policy == "interpolate" and dp is not None and dn is not None and e - s + 1 <= 2 * limit:
                w = dp / (dp + dn)
                x[i], how[i] = (1 - w) * x[prev] + w * x[nxt], f"interpolated {prev}..{nxt}"
            else:
                j = prev if dn is None or (dp is not None and dp <= dn) else nxt
                x[i], how[i] = x[j], f"nearest {j}"
    return Filled(x, how)


def fill_predictions(
    va: np.ndarray, probs: np.ndarray, policy: str, max_gap: int
) -> tuple[Filled, np.ndarray]:
    """Filled VA [frames, 2] and EXPR classes [frames] from the subject's VA and ABAW class probabilities.

    Args:
        va: [frames, 2], NaN where the subject has no prediction.
        probs: [frames, 8] ABAW class probabilities, NaN where the subject has no prediction.
        policy: One of `FILLS`.
        max_gap: See `fill_series`.

    Returns:
        The filled VA (with the per-frame `how`) and the EXPR class per frame (never -1).
    """
    neutral_probs = np.zeros(probs.shape[1])
    neutral_probs[0] = 1.0  # ABAW class 0 is Neutral
    va_f = fill_series(va, policy, max_gap, np.zeros(2))
    p_f = fill_series(probs, policy, max_gap, neutral_probs)
    return va_f, p_f.values.argmax(axis=1)
