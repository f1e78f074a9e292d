"""The JSON Schemas of results, events and track events stream entries, and validators for decoded entries."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

# Every kind an events stream carries (schema v1). A source's reader: `degraded` when a live source keeps
# delivering pictures the decoder flags as corrupt (detail: corrupt, decoded, rate, window_s); a stopped
# source emits no event of its own (the worker stopping it knows). `stopped`: written by a worker that
# stops reading a configured source on purpose (SIGTERM), so that no one mistakes it for a live or failed
# one. A fleet camera's changes of owner (`claimed`, `released`, `lost`, each with the member and worker).
READER_EVENT_KINDS = ("started", "reconnecting", "recovered", "degraded", "eof", "error")
WORKER_EVENT_KINDS = ("stopped",)
FLEET_EVENT_KINDS = ("claimed", "released", "lost")
EVENT_KINDS = (*READER_EVENT_KINDS, *WORKER_EVENT_KINDS, *FLEET_EVENT_KINDS)
# The stored form of events entries (`v`): 2 stores booleans as `true`/`false` and leaves out details that
# have no value; v1 entries (no `v` field) stored Python's "True", "False" and "None". Readers read both.
EVENT_VERSION = 2
# Detail fields that are not text, by type (event_entry.schema.json says the same); the rest are text.
EVENT_NUMBERS = {
    "ts": float,
    "width": int,
    "height": int,
    "fps": float,
    "frames": int,
    "decoded": int,
    "attempt": int,
    "attempts": int,
    "delay_s": float,
    "down_s": float,
    "corrupt": int,
    "rate": float,
    "window_s": float,
}
EVENT_BOOLEANS = ("live",)


@cache
def _schema(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath(name).read_text())


def frame_entry_schema() -> dict:
    return _schema("frame_entry.schema.json")


def event_entry_schema() -> dict:
    return _schema("event_entry.schema.json")


def track_entry_schema() -> dict:
    return _schema("track_entry.schema.json")


def validate_track(fields: dict[str, str]) -> None:
    """Raise jsonschema.ValidationError when a tracks entry (str -> str) breaks tracks v1."""
    import jsonschema

    jsonschema.validate(fields, track_entry_schema())


def validate_entry(fields: dict[str, str]) -> None:
    """Raise jsonschema.ValidationError when a results entry (str -> str) breaks schema v1."""
    import jsonschema

    schema = frame_entry_schema()
    jsonschema.validate(fields, schema)
    faces = json.loads(fields["faces"])
    jsonschema.validate(faces, {"$ref": "#/$defs/faces", "$defs": schema["$defs"]})
    if len(faces) != int(fields["n"]):
        raise jsonschema.ValidationError(f"n={fields['n']} but faces has {len(faces)} items")


def validate_event(fields: dict[str, str]) -> None:
    """Raise jsonschema.ValidationError when an events entry (str -> str) breaks schema v1."""
    import jsonschema

    jsonschema.validate(fields, event_entry_schema())
