"""Result entries and the streams that hold them: decoding schema v1, naming sources, start positions, and
reading many streams in one call.

`read_many` / `read_group_many` read several streams as one `XREAD` / `XREADGROUP` where Redis allows it: a
single server, or Sentinel's master. On a Redis Cluster one command may only name keys of one hash slot, so
the streams are grouped by slot (`connection.by_slot`), each group read without blocking in one pipelined
round trip (redis-py sends each node its groups), and the call polls every `POLL_S` until something comes
or its block time is over: the same answer, at most `POLL_S` later than a blocking read would give it.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import redis

from affectstream.engines.labels import canonical_label
from affectstream.pipeline.errors import AffectstreamError, SchemaVersionError
from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.connection import by_slot
from affectstream.pipeline.types import FaceResult, FrameResult

POLL_S = 0.05  # how often a cluster read of streams in several slots asks again while waiting
START_NEW = "$"
START_BEGINNING = "0-0"
_MAX_SEQ = 2**64 - 1
WALL_MS = 10**11  # stream ids below this (1973) are not insertion times but frame numbers
_GLOB_CHARS = "*?["
_REQUIRED = ("v", "source", "frame", "pts", "ts", "n", "faces")


@dataclass(frozen=True, slots=True)
class Entry:
    """One result entry read from a stream.

    Attributes:
        source: Source id (from the stream key).
        id: Redis stream entry id, e.g. "1732752000000-0".
        result: The decoded frame result (`landmarks` are empty: schema v1 does not carry them).
    """

    source: str
    id: str
    result: FrameResult

    @property
    def stream(self) -> str:
        return keys.frames_key(self.source)


def list_sources(client: redis.Redis) -> list[str]:
    """Every source that has a results stream, sorted."""
    found = set()
    for key in client.scan_iter(match=keys.frames_key("*"), count=500, _type="stream"):
        source = keys.source_of_stream(key)
        if source is not None:
            found.add(source)
    return sorted(found)


def resolve_sources(client: redis.Redis, patterns: Iterable[str]) -> list[str]:
    """Expand source names and globs into source ids.

    A plain name is kept even when its stream does not exist yet (a reader may start before the
    producer); a glob expands to the matching streams present now.
    """
    patterns = list(patterns)
    if not patterns:
        raise AffectstreamError("no source given: name one or more sources or globs (e.g. 'cam-*')")
    present = list_sources(client) if any(c in p for p in patterns for c in _GLOB_CHARS) else []
    out: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in _GLOB_CHARS):
            out.extend(s for s in present if fnmatch.fnmatchcase(s, pattern))
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def decode_entry(fields: dict, *, source: str = "?", entry_id: str = "?") -> FrameResult:
    """Decode one schema-v1 entry (fields as bytes or str) into a `FrameResult`.

    Raises:
        SchemaVersionError: `v` is missing or not a version this code reads, or a field is malformed.
    """
    f = {keys.text(k): keys.text(v) for k, v in fields.items()}
    where = f"entry {entry_id} of source {source!r}"
    if "v" not in f:
        raise SchemaVersionError(f"{where} has no schema version field 'v'; is it an affectstream stream?")
    if f["v"] != str(keys.SCHEMA_VERSION):
        raise SchemaVersionError(
            f"{where} has schema version v={f['v']!r}; this consumer reads v={keys.SCHEMA_VERSION}: "
            "upgrade affectstream on the consumer side"
        )
    missing = [name for name in _REQUIRED if name not in f]
    if missing:
        raise SchemaVersionError(f"{where} lacks schema v1 fields {missing}")
    try:
        faces = [
            FaceResult(
                track=int(face["track"]),
                box=[float(x) for x in face["box"]],
                score=float(face["score"]),
                landmarks=[],
                expr=canonical_label(str(face["expr"])),  # entries from before the one set of names
                probs={canonical_label(str(k)): float(p) for k, p in face["probs"].items()},
                valence=None if face.get("valence") is None else float(face["valence"]),
                arousal=None if face.get("arousal") is None else float(face["arousal"]),
            )
            for face in json.loads(f["faces"])
        ]
        return FrameResult(
            source=f["source"],
            frame=int(f["frame"]),
            pts=float(f["pts"]),
            ts=float(f["ts"]),
            faces=faces,
            model=f.get("model", ""),
            latency_ms=float(f.get("latency_ms", 0.0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SchemaVersionError(f"{where} is not valid schema v1: {type(exc).__name__}: {exc}") from exc


def start_id(start: str | float | datetime | None) -> str:
    """Translate a start position into an exclusive XREAD id.

    Args:
        start: "$" or None (new entries only), "0" / "0-0" (from the beginning), a stream id
            ("1732752000000-0", exclusive), or a point in time as unix seconds or a datetime (entries
            added at or after it; result-stream ids of live sources are their insertion times in ms;
            `read_results` filters archive streams, whose ids are frame numbers, by capture time).
    """
    if start is None or start == START_NEW:
        return START_NEW
    if isinstance(start, datetime):
        start = start.timestamp()
    if isinstance(start, int | float) and not isinstance(start, bool):
        at_ms = int(float(start) * 1000)
        # XREAD is exclusive: the largest id just before `at_ms` makes `at_ms-0` the first one returned.
        return START_BEGINNING if at_ms <= 0 else f"{at_ms - 1}-{_MAX_SEQ}"
    text = str(start)
    if text in ("0", "-"):
        return START_BEGINNING
    ms, _, seq = text.partition("-")
    if not ms.isdigit() or (seq and not seq.isdigit()):
        raise AffectstreamError(
            f"start {text!r} is not '$', '0', a stream id like '1732752000000-0' or unix seconds"
        )
    return text


def last_id(client: redis.Redis, key: str) -> str:
    """The id after which new entries of `key` will land ("0-0" for a stream that does not exist)."""
    try:
        return keys.text(client.xinfo_stream(key)["last-generated-id"])
    except redis.ResponseError:  # no such key
        return START_BEGINNING


def decode_batch(response) -> Iterator[tuple[str, str, dict]]:
    for key, entries in response or []:
        source = keys.source_of_stream(key) or keys.text(key)
        for entry_id, fields in entries:
            if entry_id is not None:  # redis-py's placeholder for an entry deleted while pending
                yield source, keys.text(entry_id), fields


def read_many(
    client: redis.Redis, positions: dict[str, str], *, count: int, block_ms: int | None = None
) -> list:
    """`XREAD` of every stream in `positions` (key -> last id read), waiting up to `block_ms` for an entry
    (None: not at all); the reply as redis-py gives it, a list of (key, entries)."""
    return _many(client, positions, block_ms, lambda c, sub, block: c.xread(sub, count=count, block=block))


def read_group_many(
    client: redis.Redis,
    group: str,
    consumer: str,
    positions: dict[str, str],
    *,
    count: int | None = None,
    block_ms: int | None = None,
) -> list:
    """`XREADGROUP` of `group` as `consumer` over every stream in `positions` (key -> `>` or an id)."""
    return _many(
        client,
        positions,
        block_ms,
        lambda c, sub, block: c.xreadgroup(group, consumer, sub, count=count, block=block),
    )


def _many(client: redis.Redis, positions: dict[str, str], block_ms: int | None, read) -> list:
    """`read(target, streams, block)` once when Redis may read all `positions` in one command, else per
    slot group in one pipeline, polled until something comes or `block_ms` is over."""
    groups = by_slot(client, positions)
    if len(groups) <= 1:
        return read(client, positions, block_ms) or []
    deadline = time.monotonic() + (block_ms or 0) / 1000
    while True:
        pipe = client.pipeline(transaction=False)
        for group in groups:
            read(pipe, {key: positions[key] for key in group}, None)
        out = [item for reply in pipe.execute() for item in (reply or [])]
        left = deadline - time.monotonic()
        if out or left <= 0:
            return out
        time.sleep(min(POLL_S, left))
