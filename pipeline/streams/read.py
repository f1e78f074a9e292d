"""Consumer API: read published results back as typed `FrameResult`s.

Two ways to read the per-source result streams (`affect:{<source>}:frames`, schema v1):

- `read_results` — plain `XREAD`: every reader sees every entry, from a point in time, from the
  beginning, or new entries only. Good for dashboards, tails and analysis scripts.
- `GroupReader` — a Redis consumer group (`XREADGROUP` + `XACK`): the entries of a group are shared
  among its consumers, each entry is delivered to one of them, and entries that a crashed consumer
  never acknowledged are claimed by a live one (`XAUTOCLAIM`), so processing is at-least-once.

Sources are names or shell-style globs (`cam-*`), matched against the streams present in Redis.
Every entry's schema version is checked; an unknown `v` raises `SchemaVersionError` naming it. Both work
alike on one server, through Sentinel and on a Redis Cluster, where the streams of many sources sit in
many slots and are read per slot (`pipeline.streams.entries.read_many`).

Example:
    >>> from affectstream.pipeline.streams.connection import connect
    >>> from affectstream.pipeline.streams.read import read_results
    >>> for entry in read_results(connect("redis://127.0.0.1:6379/0"), ["cam-*"], start="0"):
    ...     print(entry.source, entry.result.frame, [f.expr for f in entry.result.faces])
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.entries import (
    START_BEGINNING,
    START_NEW,
    WALL_MS,
    Entry,
    decode_batch,
    decode_entry,
    last_id,
    read_group_many,
    read_many,
    resolve_sources,
    start_id,
)
from affectstream.pipeline.streams.since import start_at


def read_results(
    client: redis.Redis,
    sources: Iterable[str],
    *,
    start: str | float | datetime | timedelta | None = START_NEW,
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
        start: Where to start; see `start_id`; or a `timedelta`: that long before Redis's clock now
            (`pipeline.streams.since`; `tail --since 10m`).
        follow: Keep waiting for new entries (True) or stop once caught up (False).
        block_ms: How long one XREAD waits; bounds how fast `should_stop` is noticed.
        count: Entries per stream per XREAD.
        rescan_s: How often globs are re-expanded while following.
        should_stop: Optional callable; iteration ends when it returns True.

    Yields:
        `Entry` objects. Raises `SchemaVersionError` on an entry of an unknown schema version.
    """
    patterns = list(sources)
    start = start_at(client, start)
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
            positions[key] = last_id(client, key) if initial == START_NEW else initial
            if at_time is not None and initial == first:
                top = last_id(client, key)
                if int(top.split("-")[0]) < WALL_MS:  # archive ids number frames (`<frame>-1`)
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
        response = read_many(client, positions, count=count, block_ms=block_ms if follow else None)
        if not response and not follow:
            return
        for source, entry_id, fields in decode_batch(response):
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
        for source, entry_id, fields in decode_batch(response):
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
            reply = read_group_many(self.client, self.group, self.consumer, dict.fromkeys(self._keys, "0"))
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
        reply = read_group_many(
            self.client,
            self.group,
            self.consumer,
            dict.fromkeys(self._keys, ">"),
            count=self.count,
            block_ms=block or None,
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
