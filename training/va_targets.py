"""Class valence/arousal centroids from published aggregate figures (the ``affectnet_rank`` table).

For a one-hot class indicator with prevalence p, Spearman's rho with valence is the point-biserial
correlation of the indicator with valence *ranks*. With ranks scaled to percentiles u in [0, 1]
(mean 1/2, sd 1/sqrt(12)), the class's mean percentile is

    u_c = 1/2 + rho_c * sqrt(1/12) * sqrt((1 - p_c) / p_c)

and 2 u_c - 1 puts it on the [-1, 1] scale. The inputs are the MTL-GCN paper's AffectNet-7 rho
(``configs/graph/affectnet_paper_rho.json``) and AffectNet's training class counts (the AffectNet paper;
the same numbers set the class weights in the authors' code). Check: sum_c rho_c sqrt(p_c (1 - p_c)) must
be 0 when the rho were computed over exactly these classes; it is -0.0001 for both dimensions.
"""

from __future__ import annotations

import math

# AffectNet training images per class (manually annotated, 7 classes).
AFFECTNET7_TRAIN_COUNTS = {
    "Neutral": 74874,
    "Happy": 134415,
    "Sad": 25459,
    "Surprise": 14090,
    "Fear": 6378,
    "Disgust": 3803,
    "Anger": 24882,
}


def rank_centroids(
    rho: dict[str, tuple[float, float]], counts: dict[str, int]
) -> dict[str, tuple[float, float]]:
    """Mean valence/arousal percentile of each class, on [-1, 1], from rho and class counts."""
    total = sum(counts.values())
    out = {}
    for name, (rv, ra) in rho.items():
        p = counts[name] / total
        k = 2.0 * math.sqrt(1.0 / 12.0) * math.sqrt((1.0 - p) / p)
        out[name] = (rv * k, ra * k)
    return out


def consistency(rho: dict[str, tuple[float, float]], counts: dict[str, int]) -> tuple[float, float]:
    """sum_c rho_c sqrt(p_c (1 - p_c)) per dimension: ~0 iff rho covers exactly these classes."""
    total = sum(counts.values())
    w = {n: math.sqrt(counts[n] / total * (1 - counts[n] / total)) for n in counts}
    return tuple(sum(rho[n][d] * w[n] for n in counts) for d in (0, 1))  # type: ignore[return-value]
