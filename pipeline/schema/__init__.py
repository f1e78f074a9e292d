"""The JSON Schema of results stream entries, and a validator for decoded entries."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def frame_entry_schema() -> dict:
    return json.loads(resources.files(__package__).joinpath("frame_entry.schema.json").read_text())


def validate_entry(fields: dict[str, str]) -> None:
    """Raise jsonschema.ValidationError when a results entry (str -> str) breaks schema v1."""
    import jsonschema

    schema = frame_entry_schema()
    jsonschema.validate(fields, schema)
    faces = json.loads(fields["faces"])
    jsonschema.validate(faces, {"$ref": "#/$defs/faces", "$defs": schema["$defs"]})
    if len(faces) != int(fields["n"]):
        raise jsonschema.ValidationError(f"n={fields['n']} but faces has {len(faces)} items")
