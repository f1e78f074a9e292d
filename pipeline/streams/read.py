"""Consumer API: read published results back as typed `FrameResult`s.

Two ways to read the per-source result streams (`affect:{<source>}:frames`, schema v1):

- `read_results` — plain `XREAD`: every reader sees every entry, from a point in time, from the
  beginning, or new entries only. Good for dashboards, tails and analysis scripts.
- `GroupReader` — a Redis consumer group (`XREADGROUP` + `XACK`): the entries of a group are shared
  among its consumers, each entry is delivered to one of them, and entries that a crashed consumer
  never acknowledged are claimed by a live one (`XAUTOCLAIM`), so processing is at-least-once.

Sources are names or shell-style globs (`cam-*`), matched against the streams present in Redis.
Every entry's schema version is checked; an unknown `v` raises `SchemaVersionError` naming it.

Example:
    >>> from affectstream.pipeline.streams.connection import connect
    >>> from affectstream.pipeline.streams.read import read_results
    >>> for entry in read_results(connect("redis://127.0.0.1:6379/0"), ["cam-*"], start="0"):
    ...     print(entry.source, entry.result.frame, [f.expr for f in entry.result.faces])
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import redis

from affectstream.pipeline.errors import AffectstreamError, SchemaVersionError
from affectstream.pipeline.streams import keys
from affectstream.pipeline.types import FaceResult, FrameResult

START_NEW = "$"
START_BEGINNING = "0-0"
_MAX_SEQ = 2**64 - 1
_WALL_MS = 10**11  # stream ids below this (1973) are not insertion times but frame numbers
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
                expr=str(face["expr"]),
                probs={str(k): float(p) for k, p in face["probs"].items()},
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


def _last_id(client: redis.Redis, key: str) -> str:
    """The id after which new entries of `key` will land ("0-0" for a stream that does not exist)."""
    try:
        return keys.text(client.xinfo_stream(key)["last-generated-id"])
    except redis.ResponseError:  # no such key
        return START_BEGINNING


def _decode_batch(response) -> Iterator[tuple[str, str, dict]]:
    for key, entries in response or []:
        source = keys.source_of_stream(key) or keys.text(key)
        for entry_id, fields in entries:
            if entry_id is not None:  # redis-py's placeholder for an entry deleted while pending
                yield source, keys.text(entry_id), fields


def read_results(
    client: redis.Redis,
    sources: Iterable[str],
    *,
    start: str | float | datetime | None = START_NEW,
    follow: bool = True,
    block_ms: int = 1000,
    count: int = 256,
    rescan_s: float = 2.0,
    should_stop=None,
) -> Iterator[Entry]:
    """Iterate results of one or many sources, in order within each source.

    Args:
        client: Redis client (as from `pipeline.streams.connection.connect`).
        sources: Source names and globs; with `follow`, globs are re-expanded every `rescan_s` and
            streams that appear later are read from their beginning.
        start: Where to start; see `start_id`.
        follow: Keep waiting for new entries (True) or stop once caught up (False).
        block_ms: How long one XREAD waits; bounds how fast `should_stop` is noticed.
        count: Entries per stream per XREAD.
        rescan_s: How often globs are re-expanded while following.
        should_stop: Optional callable; iteration ends when it returns True.

    Yields:
        `Entry` objects. Raises `SchemaVersionError` on an entry of an unknown schema version.
    """
    patterns = list(sources)
    first = start_id(start)
    at_time = start.timestamp() if isinstance(start, datetime) else start
    at_time = float(at_time) if isinstance(at_time, int | float) and not isinstance(at_time, bool) else None
    positions: dict[str, str] = {}
    since_ts: dict[str, float] = {}  # streams whose ids are not times: skip entries captured before

    def add(found: list[str], initial: str) -> None:
        for source in found:
            key = keys.frames_key(source)
            if key in positions:
                continue
            positions[key] = _last_id(client, key) if initial == START_NEW else initial
            if at_time is not None and initial == first:
                top = _last_id(client, key)
                if int(top.split("-")[0]) < _WALL_MS:  # archive ids number frames (`<frame>-1`)
                    positions[key], since_ts[key] = START_BEGINNING, at_time
                    continue
                # A file pass's ids carry the pass's start (`<start ms>-<frame>`), not each frame's time:
                # start at the last entry at or before `at_time` (for a pass, its start) and skip by `ts`.
                before = client.xrevrange(key, max=first, min="-", count=1)
                if before:
                    ms = int(before[0][0].split(b"-")[0])
                    positions[key], since_ts[key] = f"{ms - 1}-0", at_time

    # Positions are fixed now, not at the first next(): "$" means new since this call.
    add(resolve_sources(client, patterns), first)
    return _follow(client, patterns, positions, since_ts, add, follow, block_ms, count, rescan_s, should_stop)


def _follow(client, patterns, positions, since_ts, add, follow, block_ms, count, rescan_s, should_stop):
    last_scan = time.monotonic()
    while not (should_stop and should_stop()):
        if follow and time.monotonic() - last_scan > rescan_s:
            add(resolve_sources(client, patterns), START_BEGINNING)
            last_scan = time.monotonic()
        if not positions:
            if not follow:
                return
            time.sleep(min(block_ms / 1000, rescan_s))
            continue
        response = client.xread(positions, count=count, block=block_ms if follow else None)
        if not response and not follow:
            return
        for source, entry_id, fields in _decode_batch(response):
            key = keys.frames_key(source)
            positions[key] = entry_id
            result = decode_entry(fields, source=source, entry_id=entry_id)
            if key in since_ts:
                if result.ts < since_ts[key]:
                    continue
                del since_ts[key]  # capture times only grow within a stream
            yield Entry(source, entry_id, result)


def latest(client: redis.Redis, source: str, n: int) -> list[Entry]:
    """The newest `n` entries of one source, oldest first."""
    rows = client.xrevrange(keys.frames_key(source), count=n)
    out = [
        Entry(source, keys.text(i), decode_entry(f, source=source, entry_id=keys.text(i))) for i, f in rows
    ]
    return out[::-1]


def read_all(client: redis.Redis, source: str, *, page: int = 1000) -> Iterator[Entry]:
    """Every entry of one source, oldest first (paged XRANGE; no blocking)."""
    key = keys.frames_key(source)
    lower = "-"
    while True:
        rows = client.xrange(key, min=lower, max="+", count=page)
        for entry_id, fields in rows:
            entry_id = keys.text(entry_id)
            yield Entry(source, entry_id, decode_entry(fields, source=source, entry_id=entry_id))
        if len(rows) < page:
            return
        lower = "(" + keys.text(rows[-1][0])


@dataclass(frozen=True, slots=True)
class Delivery(Entry):
    """An entry delivered to a consumer of a group; `claimed` when taken over from another consumer."""

    claimed: bool = False


class GroupReader:
    """At-least-once reading of result streams through a Redis consumer group.

    Each entry goes to one consumer of the group; it stays pending until `ack`. When a consumer dies
    before acknowledging, a live consumer of the same group claims its entries once they have been
    idle for `claim_idle_ms` (`XAUTOCLAIM`) and they are delivered again. A consumer that restarts
    under the same name first gets its own pending entries back.

    Args:
        client: Redis client.
        sources: Source names and globs (expanded once, at construction).
        group: Consumer group name; created on each stream when missing (`XGROUP CREATE MKSTREAM`).
        consumer: This consumer's name, unique within the group (e.g. host name + pid).
        start: Where a newly created group starts: "$" (new entries only) or "0" (everything kept).
        claim_idle_ms: How long an entry must sit unacknowledged before another consumer claims it;
            longer than the slowest processing of one batch.
        block_ms: How long one XREADGROUP waits.
        count: Entries per stream per read.
    """

    def __init__(
        self,
        client: redis.Redis,
        sources: Iterable[str],
        group: str,
        consumer: str,
        *,
        start: str = START_NEW,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1000,
        count: int = 64,
    ) -> None:
        self.client = client
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.count = count
        self.sources = resolve_sources(client, sources)
        self._keys = [keys.frames_key(s) for s in self.sources]
        create_at = start_id(start)
        for key in self._keys:
            try:
                client.xgroup_create(key, group, id=create_at, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._own_pending_done = False
        self._next_claim = 0.0

    def _deliveries(self, response, claimed: bool) -> list[Delivery]:
        out = []
        for source, entry_id, fields in _decode_batch(response):
            if not fields:  # trimmed away (MAXLEN) while pending: nothing to deliver, drop it
                self.client.xack(keys.frames_key(source), self.group, entry_id)
                continue
            result = decode_entry(fields, source=source, entry_id=entry_id)
            out.append(Delivery(source, entry_id, result, claimed=claimed))
        return out

    def claim(self) -> list[Delivery]:
        """Take over entries that other consumers left unacknowledged for `claim_idle_ms`."""
        out = []
        for key in self._keys:
            cursor = "0-0"
            while True:
                reply = self.client.xautoclaim(
                    key, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.count
                )
                cursor, entries = keys.text(reply[0]), reply[1]
                out.extend(self._deliveries([(key, entries)], claimed=True))
                if cursor == "0-0" or not entries:
                    break
        return out

    def read(self, block_ms: int | None = None) -> list[Delivery]:
        """The next deliveries: own pending ones first, then claimed ones, then new ones."""
        if not self._keys:
            return []
        if not self._own_pending_done:
            # id 0 returns this consumer's own pending entries (a restart under the same name)
            reply = self.client.xreadgroup(self.group, self.consumer, dict.fromkeys(self._keys, "0"))
            self._own_pending_done = True
            pending = self._deliveries(reply, claimed=False)
            if pending:
                return pending
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + max(self.claim_idle_ms / 2000, 0.05)
            claimed = self.claim()
            if claimed:
                return claimed
        block = self.block_ms if block_ms is None else block_ms
        reply = self.client.xreadgroup(
            self.group, self.consumer, dict.fromkeys(self._keys, ">"), count=self.count, block=block or None
        )
        return self._deliveries(reply, claimed=False)

    def ack(self, *deliveries: Entry) -> int:
        """Acknowledge processed entries; returns how many were still pending."""
        pipe = self.client.pipeline(transaction=False)
        for d in deliveries:
            pipe.xack(d.stream, self.group, d.id)
        return sum(pipe.execute())

    def pending(self) -> int:
        """How many entries of this group are delivered but not acknowledged, over all its streams."""
        return sum(int(self.client.xpending(key, self.group)["pending"]) for key in self._keys)

    def __iter__(self) -> Iterator[Delivery]:
        """Deliveries forever (acknowledge each with `ack` once it is processed)."""
        while True:
            yield from self.read()
