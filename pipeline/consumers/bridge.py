"""Bridges: the track events (and frames) of the result streams to other systems, at least once.

A bridge reads the sources' `tracks` (and, if asked, `frames`) streams through a Redis consumer group, hands
each entry to a sink (`pipeline.consumers.mqtt_sink`, `webhook_sink`) as a typed JSON-ready record, and
acknowledges it only once the sink has it: a sink that is away is retried with capped, jittered exponential
backoff for as long as it takes, and a bridge that stops or dies resumes, under the same group and consumer
name, with its own unacknowledged entries first (`XREADGROUP ... 0`) and then where the group stopped. An
entry is never skipped; one delivered just before a crash may come twice (at-least-once: sinks carry the
entry's id, e.g. the webhook's `Idempotency-Key`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict

import redis

from affectstream.pipeline.consumers.tail import entry_dict
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.entries import Entry, decode_entry, read_group_many, resolve_sources
from affectstream.pipeline.streams.track_read import decode_track

log = logging.getLogger(__name__)

KINDS = ("tracks", "frames")
_KEY_OF = {"tracks": keys.tracks_key, "frames": keys.frames_key}


class SinkUnavailable(Exception):
    """The sink cannot take the record now (broker or server away, busy): retry it later."""


def record_of(kind: str, source: str, entry_id: str, fields: dict) -> dict:
    """A stream entry as the JSON object sinks send: typed, absent fields absent (`tail --json`'s form for
    frames; a track event's head and detail in one object)."""
    if kind == "frames":
        return entry_dict(Entry(source, entry_id, decode_entry(fields, source=source, entry_id=entry_id)))
    event = asdict(decode_track(fields, source=source, entry_id=entry_id))
    return {**{k: v for k, v in event.items() if k != "detail"}, **event["detail"]}


class Backoff:
    """Capped exponential delays with full jitter: `first`, doubling, at most `cap` seconds."""

    def __init__(self, first: float = 0.2, cap: float = 10.0) -> None:
        self.first, self.cap, self.attempt = first, cap, 0

    def wait(self, should_stop: Callable[[], bool]) -> None:
        delay = random.uniform(0, min(self.cap, self.first * 2**self.attempt))
        self.attempt += 1
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not should_stop():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def reset(self) -> None:
        self.attempt = 0


class GroupBridge:
    """Reads `kinds` streams of the sources matching `patterns` as consumer `consumer` of `group`.

    Args:
        client: Redis client.
        patterns: Source names and globs; globs are expanded again every `rescan_s` (new sources' streams
            are read from their beginning).
        kinds: Which streams: "tracks", "frames".
        group: The consumer group (created on each stream when missing, at `start`).
        consumer: This bridge's name in the group: the same name after a restart resumes its own entries.
        start: Where a new group starts: "$" (entries added from now on) or "0" (everything kept).
    """

    def __init__(
        self,
        client: redis.Redis,
        patterns: Iterable[str],
        kinds: Iterable[str],
        group: str,
        consumer: str,
        *,
        start: str = "$",
        count: int = 64,
        block_ms: int = 1000,
        rescan_s: float = 5.0,
    ) -> None:
        self.client, self.group, self.consumer = client, group, consumer
        self.patterns, self.kinds = list(patterns), [k for k in KINDS if k in set(kinds)]
        self.count, self.block_ms, self.rescan_s = count, block_ms, rescan_s
        self.delivered = 0
        self._positions: dict[str, str] = {}  # stream key -> "0" (own pending first) or ">"
        self._kind_of: dict[str, str] = {}
        self._scanned = 0.0
        self._scan(start)

    def _scan(self, start: str) -> None:
        for source in resolve_sources(self.client, self.patterns):
            for kind in self.kinds:
                key = _KEY_OF[kind](source)
                if key in self._positions:
                    continue
                try:
                    self.client.xgroup_create(key, self.group, id=start, mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._positions[key], self._kind_of[key] = "0", kind
        self._scanned = time.monotonic()

    def run(self, send: Callable[[str, str, dict], None], should_stop: Callable[[], bool]) -> int:
        """Deliver entries to `send(kind, source, record)` until `should_stop()`; returns how many.

        `send` raises `SinkUnavailable` to have the record retried after a backoff; anything else stops
        the bridge (the entry stays pending and comes first at the next start).
        """
        backoff = Backoff()
        while not should_stop():
            if time.monotonic() - self._scanned > self.rescan_s:
                self._scan("0")
            pending = [k for k, v in self._positions.items() if v == "0"]
            try:
                reply = self._read(pending)
            except redis.ConnectionError as exc:
                log.warning("Redis unreachable (%s); retrying", mask_text(str(exc)))
                backoff.wait(should_stop)
                continue
            left = {keys.text(key) for key, entries in reply if entries}
            for key in pending:
                if key not in left:
                    self._positions[key] = ">"  # its own pending entries are done: new ones from now on
            for key, entries in reply:
                key = keys.text(key)
                for entry_id, fields in entries:
                    if should_stop():
                        return self.delivered
                    self._deliver(key, keys.text(entry_id), fields, send, should_stop, backoff)
        return self.delivered

    def _read(self, pending: list[str]) -> list:
        if pending:  # after a restart: what this consumer had taken but not acknowledged, first
            positions = dict.fromkeys(pending, "0")
            return read_group_many(self.client, self.group, self.consumer, positions, count=self.count)
        if not self._positions:
            time.sleep(self.block_ms / 1000)
            return []
        return read_group_many(
            self.client, self.group, self.consumer, self._positions, count=self.count, block_ms=self.block_ms
        )

    def _deliver(self, key: str, entry_id: str, fields, send, should_stop, backoff: Backoff) -> None:
        source = keys.source_of(key)
        if not fields:  # trimmed away while pending: nothing left to deliver
            self.client.xack(key, self.group, entry_id)
            return
        record = record_of(self._kind_of[key], source, entry_id, fields)
        while not should_stop():
            try:
                send(self._kind_of[key], source, record)
            except SinkUnavailable as exc:
                log.warning("%s %s not delivered (%s); retrying", key, entry_id, mask_text(str(exc)))
                backoff.wait(should_stop)
                continue
            backoff.reset()
            self.client.xack(key, self.group, entry_id)
            self.delivered += 1
            return
