"""The model-file contract: what an MTL-GCN model says about itself.

An exported ONNX carries its `EngineSpec` as JSON in the metadata property `affectstream.spec`;
a TensorRT plan carries the same JSON in a sidecar file. Everything the runtime needs to feed the
model (crop size, colour, normalisation, where the five landmarks must land) comes from here, so
the pipeline never hard-codes a model's preprocessing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from affectstream.engines.errors import ModelFileError
from affectstream.engines.labels import canonical_label

METADATA_KEY = "affectstream.spec"
INPUT_NAME = "input"
OUTPUT_PROBS = "probs"
OUTPUT_VA = "va"
COLOURS = ("rgb", "gray")


def set_metadata(model, props: Mapping[str, str]) -> None:
    """Set metadata properties of a loaded ONNX `ModelProto` (an existing key is replaced)."""
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


@dataclass(frozen=True)
class EngineSpec:
    """Preprocessing and output contract of one model.

    Attributes:
        model_id: Stable name of the model, published with every result.
        input_size: (height, width) of the aligned face crop in pixels.
        colour: "rgb" (3 channels, RGB order) or "gray" (1 channel, BT.601 luma).
        mean: Per-channel mean, applied as (pixel / 255 - mean) / std.
        std: Per-channel standard deviation.
        labels: Expression class names, in output order.
        has_va: Whether the model predicts valence and arousal (output `va`, shape [N, 2]).
        template: Where the five landmarks (left eye, right eye, nose, left and right mouth corner,
            insightface order) land in the crop, in crop pixels; a similarity transform maps the
            detected landmarks onto it.
    """

    model_id: str
    input_size: tuple[int, int]
    colour: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: tuple[str, ...]
    has_va: bool
    template: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ModelFileError(f"spec colour {self.colour!r} is not one of {COLOURS}")
        channels = 1 if self.colour == "gray" else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ModelFileError(f"spec mean/std need {channels} values for colour {self.colour!r}")
        if len(self.template) != 5:
            raise ModelFileError("spec template needs 5 landmark points")
        if not self.labels:
            raise ModelFileError("spec has no labels")
        # One set of names in every result (engines.labels), whatever the model file spells.
        labels = tuple(canonical_label(name) for name in self.labels)
        if len(set(labels)) != len(labels):
            raise ModelFileError(f"spec labels {list(self.labels)} name a class twice")
        object.__setattr__(self, "labels", labels)

    @property
    def channels(self) -> int:
        return 1 if self.colour == "gray" else 3

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EngineSpec:
        try:
            raw = json.loads(text)
            return cls(
                model_id=str(raw["model_id"]),
                input_size=(int(raw["input_size"][0]), int(raw["input_size"][1])),
                colour=str(raw["colour"]),
                mean=tuple(float(x) for x in raw["mean"]),
                std=tuple(float(x) for x in raw["std"]),
                labels=tuple(str(x) for x in raw["labels"]),
                has_va=bool(raw["has_va"]),
                template=tuple((float(p[0]), float(p[1])) for p in raw["template"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"malformed engine spec: {exc}") from exc

    @classmethod
    def from_onnx(cls, path: str | Path) -> EngineSpec:
        """Read the spec from an ONNX file's metadata (`affectstream.spec`)."""
        import onnxruntime  # lazy: heavy, and the runtime already depends on it

        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        try:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors on bad files
            raise ModelFileError(f"{path} is not a loadable ONNX model: {exc}") from exc
        return cls.from_metadata(session.get_modelmeta().custom_metadata_map, path)

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str | Path) -> EngineSpec:
        """Read the spec from an ONNX metadata map (as `InferenceSession.get_modelmeta()` gives it).

        Args:
            props: The model's custom metadata properties.
            source: Where they came from, named in the error message.
        """
        if METADATA_KEY not in props:
            raise ModelFileError(
                f"{source} has no '{METADATA_KEY}' metadata; export it with `affectstream export`"
            )
        return cls.from_json(props[METADATA_KEY])
