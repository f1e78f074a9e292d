"""Consumer API for source events (`affect:{<source>}:events`): typed records, not the strings Redis stores.

An `Event` has its numbers as numbers, `live` as a boolean, and details that were not given absent from
`detail` (events v1, written before `v` was stored, said "True", "False" and "None"; both read alike).

Example:
    >>> from affectstream.pipeline.streams.events import read_events
    >>> for event in read_events(client, ["cam-*"], start=timedelta(minutes=10)):
    ...     print(event.source, event.kind, event.detail.get("reason"))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis

from affectstream.pipeline.errors import AffectstreamError, SchemaVersionError
from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.entries import START_BEGINNING, START_NEW, resolve_sources
from affectstream.pipeline.streams.schema import EVENT_BOOLEANS, EVENT_NUMBERS, EVENT_VERSION
from affectstream.pipeline.streams.since import start_at

_V1_ABSENT = "None"  # what events v1 stored for a detail without a value
_BOOLEANS = {"true": True, "false": False, "True": True, "False": False}  # v2, v1


@dataclass(frozen=True, slots=True)
class Event:
    """One source event.

    Attributes:
        source: The source it is about.
        id: Its stream entry id.
        kind: `started`, `reconnecting`, `recovered`, `degraded`, `eof`, `error`, `stopped`, `claimed`,
            `released` or `lost` (`pipeline.streams.schema.EVENT_KINDS`).
        ts: When it happened, unix seconds.
        worker: The worker that wrote it ("" when not said).
        detail: The kind's details (`docs/consumer/README.md`), typed; missing when not given.
    """

    source: str
    id: str
    kind: str
    ts: float
    worker: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def decode_event(fields: dict, *, source: str = "?", entry_id: str = "?") -> Event:
    """An events entry (bytes or str fields, v1 or v2) as an `Event`.

    Raises:
        SchemaVersionError: An unknown `v`, or a field that is not what its name says.
    """
    f = {keys.text(k): keys.text(v) for k, v in fields.items()}
    where = f"event {entry_id} of source {source!r}"
    version = f.pop("v", "1")
    if version not in ("1", str(EVENT_VERSION)):
        raise SchemaVersionError(
            f"{where} has events version v={version!r}; this consumer reads v1 and v{EVENT_VERSION}: "
            "upgrade affectstream on the consumer side"
        )
    try:
        detail = {
            name: _typed(name, value)
            for name, value in f.items()
            if name not in ("kind", "source", "ts", "worker") and value != _V1_ABSENT
        }
        return Event(
            source=f.get("source", source),
            id=entry_id,
            kind=f["kind"],
            ts=float(f["ts"]),
            worker=f.get("worker", ""),
            detail=detail,
        )
    except (KeyError, ValueError) as exc:
        raise SchemaVersionError(f"{where} is not a valid event: {type(exc).__name__}: {exc}") from exc


def _typed(name: str, value: str) -> Any:
    if name in EVENT_BOOLEANS:
        if value not in _BOOLEANS:
            raise ValueError(f"{name}={value!r} is not true or false")
        return _BOOLEANS[value]
    kind = EVENT_NUMBERS.get(name)
    if kind is None:
        return value
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def read_events(
    client: redis.Redis,
    sources: Iterable[str],
    *,
    start: str | float | datetime | timedelta | None = START_BEGINNING,
    page: int = 1000,
) -> Iterator[Event]:
    """Every event of the sources (names or globs of sources with a results stream) from `start` on,
    source by source, oldest first (paged XRANGE; no blocking).

    `start`: "0" (everything kept), a stream id, unix seconds, a datetime, or a `timedelta`: that long
    before Redis's clock now (event ids are the Redis times they were added at).
    """
    return read_kept(client, sources, keys.events_key, decode_event, start=start, page=page)


def read_kept(
    client: redis.Redis, sources: Iterable[str], key_of, decode, *, start, page: int = 1000
) -> Iterator:
    """`decode(fields, source=, entry_id=)` of every entry of each source's `key_of(source)` stream from
    `start` on (as `read_events` takes it), source by source, in pages of `page`."""
    lower = first_id(client, start)
    for source in resolve_sources(client, sources):
        key, after = key_of(source), lower
        while True:
            rows = client.xrange(key, min=after, max="+", count=page)
            for entry_id, fields in rows:
                entry_id = keys.text(entry_id)
                yield decode(fields, source=source, entry_id=entry_id)
            if len(rows) < page:
                break
            after = "(" + keys.text(rows[-1][0])


def first_id(client: redis.Redis, start) -> str:
    """The inclusive XRANGE id of a read's `start`."""
    at = start_at(client, start)
    if at == START_NEW:
        raise AffectstreamError("a read of what is kept starts at '0', a stream id or a time, not '$'")
    if isinstance(at, float):
        return f"{max(0, int(at * 1000))}-0"
    return "-" if at in ("0", "0-0", "-", None) else str(at)
