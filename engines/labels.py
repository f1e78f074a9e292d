"""The one set of expression labels: what every result, stream, training label set and document calls
each class.

The names are the shipped model's (and the label embeddings' of training): `Neutral`, `Happy`, `Surprise`,
`Sad`, `Anger`, `Disgust`, `Fear`, `Contempt`, and `Other` for Aff-Wild2's extra class. A model whose spec
spells a class otherwise (`Happiness`, `sad`, `angry`) is read with these names (`EngineSpec`), and so are
stream entries written before the names were one set (`pipeline.streams.entries.decode_entry`). Only the
ABAW files keep the challenge's own header (`Happiness`, `Sadness`: `affectstream.scoring.abaw`).
"""

from __future__ import annotations

EXPRESSIONS = ("Neutral", "Happy", "Surprise", "Sad", "Anger", "Disgust", "Fear", "Contempt", "Other")

# Other spellings of the classes above (compared in lower case): FER+, AffectNet and ABAW names, adjectives.
_SYNONYMS = {
    **{name.lower(): name for name in EXPRESSIONS},
    "happiness": "Happy",
    "sadness": "Sad",
    "angry": "Anger",
    "disgusted": "Disgust",
    "fearful": "Fear",
    "surprised": "Surprise",
}


def canonical_label(label: str) -> str:
    """The one name of an expression class; a class outside the set (a model's own) keeps its name."""
    return _SYNONYMS.get(label.strip().lower(), label)
