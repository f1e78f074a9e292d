"""Redis Streams publishing, schema v1 (DESIGN.md): one entry per processed frame, faces or not.

Exactly once: every entry (frame or event) gets its id once, before its first attempt (`pipeline.streams.entry_ids`),
and every attempt sends that same id through one Lua script per stream, which adds the entries whose id is
above the stream's last id and skips the others. A retry after a timeout (the server may have executed the
first attempt), after a partial failure or after a restart therefore never writes an entry twice, and the
skip is the normal "already published" case, not an error.

Fencing (docs/fleet.md): a fleet camera's writes carry its lease key and the writer's token; the script
compares them with `GET` before any `XADD`, in the same round trip, and answers `FENCED <holder>` when the
lease is no longer the writer's (it expired while the member was paused or cut off, and another may hold
it now): the write adds nothing, and a member that lost a camera never publishes another frame of it.

One writer per stream (DESIGN.md, "Deployment rules"): a file or a configured camera is written under its
run's writer lease (`pipeline.streams.writer_leases`), a fleet camera under its member's camera lease; both are the
same key, checked the same way. An entry the script skips is counted as published only when its very id is
in the stream (`present`); one that another writer went past is `rejected`, and never counted.

Errors are classified in one table (`pipeline.streams.replies`): connection loss, timeouts, OOM under
`noeviction`, MISCONF, LOADING, READONLY and the like are retried by the caller with redis-py's `Retry`;
anything else (WRONGTYPE, ACL refusals, a bad argument) is a fault of one stream's key, returned for that
key alone so the caller fails only the source that owns it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.streams.connection import is_cluster
from affectstream.pipeline.streams.encode import encode_event, encode_frame
from affectstream.pipeline.streams.encode import encode_faces as encode_faces  # archive outputs use it
from affectstream.pipeline.streams.keys import events_key, frames_key, holder_of, text
from affectstream.pipeline.streams.publish_script import PUBLISH
from affectstream.pipeline.streams.scripts import is_noscript
from affectstream.pipeline.types import FrameResult

EVENTS_MAXLEN = 10_000


class RedisLostData(redis.RedisError):
    """A stream's last id is below one this process had written and seen acknowledged: the server
    restarted without the entries (no AOF, or the last second of an `everysec` AOF)."""

    def __init__(self, key: str, last: str) -> None:
        super().__init__(f"{key}: Redis lost acknowledged entries (its last id is now {last})")
        self.key = key
        self.last = last


class Fenced(redis.RedisError):
    """A write of a leased stream whose lease the writer no longer holds; nothing was added."""

    def __init__(self, key: str, holder: str) -> None:
        super().__init__(f"{key}: lease lost (now held by {holder or 'nobody'}); nothing written")
        self.key = key
        self.holder = holder


@dataclass(frozen=True)
class Written:
    """The outcome of one stream's entries in one call (they come in id order: `added` ones are a suffix)."""

    added: int
    skipped: int  # already in the stream: an earlier attempt (or an earlier run of the same pass) wrote them
    rejected: tuple[str, ...] = ()  # ids below the stream's last id yet absent: another writer went past them


@dataclass(frozen=True)
class Fence:
    """The lease a stream's writes are checked against, in the same round trip as the XADD.

    `take_ms` > 0: a writer lease, taken again (for that many ms) when it expired and nobody holds it (a
    Redis stall outlived its TTL); 0: a fleet camera's lease, which only its claim loop takes.
    """

    key: str
    token: str
    take_ms: int = 0


Entry = tuple[str, Mapping[str, str]]  # (entry id, fields)


class NotReplicated(redis.TimeoutError):
    """Fewer replicas than `min_replicas_acked` confirmed a round trip's writes in time: retried (the
    entries are then `present`) until they do; a timeout, so `pipeline.streams.replies` calls it transient."""


class StreamWriter:
    """Idempotent, capped appends of entries with ids chosen by the caller, many streams per round trip.

    Args:
        client: Redis client.
        retention_s: Also trim each stream by age (Redis's clock, `XTRIM MINID ~`), once per tenth of it
            at most; None: by count only. Only for streams whose ids are times (not archive jobs').
        min_replicas_acked: A round trip counts as written once this many replicas have it (`WAIT`);
            0: once the master has it. Not on a cluster (a config error there).
        wait_ms: How long one `WAIT` waits.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        retention_s: float | None = None,
        min_replicas_acked: int = 0,
        wait_ms: int = 1000,
    ) -> None:
        if min_replicas_acked and is_cluster(client):
            raise ConfigError(
                "redis.min_replicas_acked is not available on a Redis Cluster: set min-replicas-to-write "
                "on its masters instead (docs/deploy.md)"
            )
        self.client = client
        self.retention_ms = int(retention_s * 1000) if retention_s else 0
        self.min_replicas_acked, self.wait_ms = min_replicas_acked, wait_ms
        self._trim_due: dict[str, float] = {}  # key -> when (monotonic) to trim it by time next

    def write(
        self,
        batches: Mapping[str, Sequence[Entry]],
        maxlen: Mapping[str, int] | int,
        expect: Mapping[str, str] | None = None,
        fences: Mapping[str, Fence] | None = None,
    ) -> dict[str, Written | Exception]:
        """Append each key's entries (ids strictly increasing per key) in one pipelined round trip.

        Args:
            batches: Stream key -> entries to add, in id order.
            maxlen: The approximate cap (`MAXLEN ~`), one for all keys or per key.
            expect: Stream key -> the last id this writer saw acknowledged there; a stream whose last id
                is below it answers `RedisLostData`.
            fences: Stream key -> `Fence`: the key is written only while the lease holds the token,
                else it answers `Fenced` (lease keys share their stream's hash tag).

        Returns:
            Key -> `Written`, or the exception of that key's script (per key: one key's fault leaves the
            others written).

        Raises:
            redis.ConnectionError, redis.TimeoutError: The round trip failed as a whole; the server may
                have executed any part of it, which a retry with the same ids makes harmless.
        """
        keys = [k for k, entries in batches.items() if entries]
        if not keys:
            return {}
        calls = {}
        for key in keys:
            cap = maxlen if isinstance(maxlen, int) else maxlen[key]
            fence = (fences or {}).get(key)
            lease, token, take = (fence.key, fence.token, fence.take_ms or "") if fence else ("", "", "")
            args: list = [cap, (expect or {}).get(key, ""), token, take, self._retention_now(key)]
            for entry_id, fields in batches[key]:
                args += [entry_id, 2 * len(fields)]
                for name, value in fields.items():
                    args += [name, value]
            calls[key] = ([key, lease] if lease else [key], args)
        replies = self._run(calls)
        out: dict[str, Written | Exception] = {}
        for key, reply in replies.items():
            if isinstance(reply, Exception):
                out[key] = _classify(key, reply)
            else:
                added, present, rejected = reply
                out[key] = Written(int(added), int(present), tuple(text(i) for i in rejected))
        return out

    def _retention_now(self, key: str) -> int | str:
        """The retention to trim `key` by in this call, or "" when it was trimmed lately."""
        if not self.retention_ms or time.monotonic() < self._trim_due.get(key, 0.0):
            return ""
        self._trim_due[key] = time.monotonic() + max(1.0, self.retention_ms / 10_000)
        return self.retention_ms

    def _run(self, calls: dict[str, tuple[list, list]]) -> dict:
        """One pipelined `EVALSHA` per key (and a `WAIT` behind them on the same connection); the keys a
        server answered NOSCRIPT for go again once the script is loaded (it adds nothing when not run)."""
        replies: dict = {}
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for key_list, args in calls.values():
                PUBLISH.queue(pipe, key_list, args)
            if self.min_replicas_acked:
                pipe.execute_command("WAIT", self.min_replicas_acked, self.wait_ms)
            got = pipe.execute(raise_on_error=False)
            if self.min_replicas_acked and _short(got.pop(), self.min_replicas_acked):
                late = NotReplicated(f"fewer than {self.min_replicas_acked} replicas acknowledged in time")
                got = [reply if isinstance(reply, Exception) else late for reply in got]
            replies.update(zip(calls, got, strict=True))
            calls = {key: call for key, call in calls.items() if is_noscript(replies[key])}
            if not calls or attempt:
                break
            PUBLISH.load(self.client)
        return replies


def _short(acked: object, wanted: int) -> bool:
    return isinstance(acked, Exception) or int(acked) < wanted  # type: ignore[call-overload]


def _classify(key: str, reply: Exception) -> Exception:
    """The script's own error replies as their exceptions; anything else as redis-py raised it."""
    code, _, rest = str(reply).partition(" ")
    if code == "LOST":
        return RedisLostData(key, rest)
    if code == "FENCED":
        return Fenced(key, holder_of(rest))
    return reply


class ResultPublisher:
    """Capped frame publishing outside a worker (archive jobs, tools, tests).

    Args:
        client: Redis client.
        maxlen: Approximate cap of each results stream (`XADD MAXLEN ~`).
    """

    def __init__(self, client: redis.Redis, maxlen: int) -> None:
        self.client = client
        self.maxlen = maxlen
        self._writer = StreamWriter(client)

    def publish(self, results: Sequence[FrameResult], ids: Sequence[str] | None = None) -> list:
        """Write `results` in one round trip.

        Without `ids` Redis picks them (`*`; a retry could duplicate: tools and tests only) and the
        replies are the new ids. With `ids` (strictly increasing per source) the write is idempotent:
        the reply per result is True when it was added and False when its id was already in the stream.

        Raises:
            redis.RedisError: The round trip failed, or a stream refused its entries, or another writer
                went past some of them (`rejected`: they are not in the stream).
        """
        if not results:
            return []
        if ids is None:
            pipe = self.client.pipeline(transaction=False)
            for result in results:
                pipe.xadd(
                    frames_key(result.source), encode_frame(result), maxlen=self.maxlen, approximate=True
                )
            return pipe.execute()
        batches: dict[str, list[Entry]] = {}
        position: list[tuple[str, int]] = []  # result -> (key, place among that key's entries)
        for result, entry_id in zip(results, ids, strict=True):
            entries = batches.setdefault(frames_key(result.source), [])
            position.append((frames_key(result.source), len(entries)))
            entries.append((entry_id, encode_frame(result)))
        written: dict[str, Written] = {}
        for key, reply in self._writer.write(batches, self.maxlen).items():
            if isinstance(reply, Exception):
                raise reply
            if reply.rejected:
                raise redis.RedisError(
                    f"{key}: {len(reply.rejected)} entries below its last id and absent: "
                    "another writer went past them"
                )
            written[key] = reply
        # Within one key the script skips a prefix (ids at or below the last id) and adds the rest.
        return [place >= written[key].skipped for key, place in position]


def publish_event(client: redis.Redis, source: str, kind: str, detail: dict | None = None) -> None:
    """Append one source event with a Redis-chosen id (tools and tests; workers queue events durably)."""
    client.xadd(
        events_key(source), encode_event(source, kind, detail), maxlen=EVENTS_MAXLEN, approximate=True
    )
