"""Label sets: expression class names in model output order, and weak valence/arousal centroids."""

from __future__ import annotations

from dataclasses import dataclass

from affectstream.engines.labels import canonical_label
from affectstream.scoring.abaw import EXPR_CLASSES
from affectstream.training.errors import ConfigError


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of expression classes.

    Attributes:
        name: Registry name, e.g. "ferplus8".
        labels: Class names in output order (as published in the engine spec).
    """

    name: str
    labels: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        return self.labels.index(label)


_AFFECTNET7 = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger")
# ABAW's header order, under the one set of class names (engines.labels; the label embeddings say "Happy",
# "Sad"); the ABAW module maps these names to its own (`abaw_class`).
_ABAW8 = tuple(canonical_label(n) for n in EXPR_CLASSES)

LABEL_SETS: dict[str, LabelSet] = {
    "affectnet7": LabelSet("affectnet7", _AFFECTNET7),
    "affectnet8": LabelSet("affectnet8", _AFFECTNET7 + ("Contempt",)),
    # FER+ column order of label.csv (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt).
    "ferplus8": LabelSet(
        "ferplus8", ("Neutral", "Happy", "Surprise", "Sad", "Anger", "Disgust", "Fear", "Contempt")
    ),
    "affwild2_8": LabelSet("affwild2_8", _ABAW8),  # ABAW3+
    "affwild2_7": LabelSet("affwild2_7", _ABAW8[:7]),  # ABAW2: no Other
}

# Per-class (valence, arousal) centroids for weak VA targets (vote distribution x centroids) on data
# without VA ground truth (FER+). Chosen per recipe with data.va_centroids; the provenance of each table is
# in engines/models/MODEL_CARD.md ("Weak valence/arousal targets"). The table models shipped before 2026-12-07
# were trained with (AffectNetC25's per-class means) was removed: its source forbids use by others.
#   affectnet_rank: derived from published aggregate figures only (training.va_targets.rank_centroids): the
#       MTL-GCN paper's Spearman rho of each AffectNet-7 class with valence/arousal and AffectNet's training
#       class counts give each class's mean valence/arousal percentile, mapped to [-1, 1]. No figure exists
#       for Contempt: it sits at the scale's midpoint (0, 0).
VA_CENTROID_TABLES: dict[str, dict[str, tuple[float, float]]] = {
    "affectnet_rank": {
        "Neutral": (-0.323, -0.274),
        "Happy": (0.524, 0.009),
        "Sad": (-0.833, -0.798),
        "Surprise": (-0.071, 0.854),
        "Fear": (-0.465, 0.899),
        "Disgust": (-0.872, 0.713),
        "Anger": (-0.715, 0.771),
        "Contempt": (0.0, 0.0),
    },
}


def get_label_set(name: str) -> LabelSet:
    """Look a label set up by name; raises ConfigError listing the valid names."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ConfigError(f"unknown label set {name!r}; choose one of {sorted(LABEL_SETS)}") from None


def va_centroid_matrix(label_set: LabelSet, table: str = "affectnet_rank") -> list[tuple[float, float]]:
    """Centroids of one table in the label set's order; raises ConfigError for an unknown table or a class
    without a centroid (e.g. Other)."""
    if table not in VA_CENTROID_TABLES:
        raise ConfigError(
            f"data.va_centroids: {table!r} is not allowed; allowed values: {sorted(VA_CENTROID_TABLES)}"
        )
    centroids = VA_CENTROID_TABLES[table]
    missing = [name for name in label_set.labels if name not in centroids]
    if missing:
        raise ConfigError(f"no valence/arousal centroid for {missing}; weak VA targets need one per class")
    return [centroids[name] for name in label_set.labels]
