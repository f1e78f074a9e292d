"""Consumer API for track events (`affect:{<source>}:tracks`, `pipeline.streams.tracks`): typed records.

Example:
    >>> from affectstream.pipeline.streams.track_read import read_tracks
    >>> for t in read_tracks(client, ["cam-*"], start=timedelta(hours=1)):
    ...     if t.event == "end" and t.detail["dominant_expr"] == "Anger" and t.detail["duration_s"] > 4:
    ...         print(t.source, t.track, "looked angry for", t.detail["duration_s"], "s")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis

from affectstream.pipeline.errors import SchemaVersionError
from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.entries import START_BEGINNING
from affectstream.pipeline.streams.events import read_kept
from affectstream.pipeline.streams.tracks import TRACKS_VERSION

_INTS = ("track", "frame", "frames", "first_frame", "peak_frame")
_FLOATS = {"pts", "ts", "duration_s", "prob", "valence", "arousal", "valence_mean", "arousal_mean"}
_FLOATS |= {"dominant_share", "peak_prob"}
_LISTS = ("box",)


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One track event.

    Attributes:
        source: The source.
        id: Its entry id (derived from its frame's entry id).
        event: `start`, `update` or `end`.
        track: The track id (as in the frames' `faces[].track`).
        frame: The frame it happened at (`end` after a source ended: the track's last frame).
        pts: That frame's presentation time (s).
        ts: That frame's capture time (unix s).
        detail: start/update: `box`, `expr`, `prob`, `valence`, `arousal` (update: `duration_s`, `frames`
            so far); end: `duration_s`, `frames`, `first_frame`, `valence_mean`, `arousal_mean`,
            `dominant_expr`, `dominant_share`, `peak_expr`, `peak_prob`, `peak_frame`, `reason` (`gone`,
            or the event that ended the source: `eof`, `stopped`, `released`, `lost`). Valence-arousal
            fields are absent for a model without them.
    """

    source: str
    id: str
    event: str
    track: int
    frame: int
    pts: float
    ts: float
    detail: dict[str, Any] = field(default_factory=dict)


def decode_track(fields: dict, *, source: str = "?", entry_id: str = "?") -> TrackEvent:
    """A tracks entry (bytes or str fields) as a `TrackEvent`.

    Raises:
        SchemaVersionError: An unknown `v` or a malformed field.
    """
    f = {keys.text(k): keys.text(v) for k, v in fields.items()}
    where = f"track event {entry_id} of source {source!r}"
    if f.get("v") != str(TRACKS_VERSION):
        raise SchemaVersionError(
            f"{where} has tracks version v={f.get('v')!r}; this consumer reads v{TRACKS_VERSION}: "
            "upgrade affectstream on the consumer side"
        )
    try:
        typed = {name: _typed(name, value) for name, value in f.items() if name != "v"}
        head = {name: typed.pop(name) for name in ("source", "event", "track", "frame", "pts", "ts")}
        return TrackEvent(id=entry_id, detail=typed, **head)
    except (KeyError, ValueError, TypeError) as exc:
        raise SchemaVersionError(f"{where} is not a valid track event: {type(exc).__name__}: {exc}") from exc


def _typed(name: str, value: str) -> Any:
    if name in _INTS:
        return int(value)
    if name in _FLOATS:
        return float(value)
    if name in _LISTS:
        return [float(v) for v in json.loads(value)]
    return value


def read_tracks(
    client: redis.Redis,
    sources: Iterable[str],
    *,
    start: str | float | datetime | timedelta | None = START_BEGINNING,
    page: int = 1000,
) -> Iterator[TrackEvent]:
    """Every track event of the sources (names, or globs of sources with a results stream) from `start`
    on, source by source, oldest first (paged XRANGE; no blocking); `start` as `read_events` takes it."""
    return read_kept(client, sources, keys.tracks_key, decode_track, start=start, page=page)
