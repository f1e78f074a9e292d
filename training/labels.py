"""Label sets: expression class names in model output order, and weak valence/arousal centroids."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.archive.abaw import EXPR_CLASSES
from training.errors import ConfigError


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
# ABAW's header order, under the model's class names (the label embeddings say "Happy", "Sad"); the ABAW
# module maps these names to its own (`abaw_class`).
_MODEL_NAME = {"Happiness": "Happy", "Sadness": "Sad"}
_ABAW8 = tuple(_MODEL_NAME.get(n, n) for n in EXPR_CLASSES)

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

# Mean (valence, arousal) per class from a 25-rater re-annotation of 1,600 AffectNet images; used only to
# derive weak VA targets (vote distribution x centroids) for data without VA ground truth (FER+).
VA_CENTROIDS: dict[str, tuple[float, float]] = {
    "Neutral": (-0.06, -0.38),
    "Happy": (0.29, -0.11),
    "Sad": (-0.42, 0.01),
    "Surprise": (-0.15, 0.17),
    "Fear": (-0.46, 0.23),
    "Disgust": (-0.42, 0.14),
    "Anger": (-0.38, 0.11),
    "Contempt": (-0.16, -0.23),
}


def get_label_set(name: str) -> LabelSet:
    """Look a label set up by name; raises ConfigError listing the valid names."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ConfigError(f"unknown label set {name!r}; choose one of {sorted(LABEL_SETS)}") from None


def va_centroid_matrix(label_set: LabelSet) -> list[tuple[float, float]]:
    """Centroids in the label set's order; raises ConfigError for a class without one (e.g. Other)."""
    missing = [name for name in label_set.labels if name not in VA_CENTROIDS]
    if missing:
        raise ConfigError(f"no valence/arousal centroid for {missing}; weak VA targets need one per class")
    return [VA_CENTROIDS[name] for name in label_set.labels]
