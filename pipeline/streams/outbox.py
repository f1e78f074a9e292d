"""A worker's way out to Redis: frames and events with ids chosen once, written until acknowledged.

- Frames get their entry id when they reach the publish stage (`pipeline.streams.entry_ids`); events get theirs
  when they happen. Both keep it across every retry, so retries never duplicate (`pipeline.streams.writer`).
- Transient errors (`pipeline.streams.replies`: connection loss, OOM, MISCONF, READONLY, ...) are retried with
  capped, jittered exponential backoff (redis-py's `Retry`) for as long as the worker runs, `stalled` meanwhile
  (the worker then drops the live frames it takes as `redis_unavailable`; files wait); once it is stopping,
  for at most `drain_s`, after which what is left is counted and logged as lost.
- A permanent error on one stream (WRONGTYPE, ACL refusal) fails the source that owns it alone: its
  queued frames are dropped (counted), an `error` event names the key and the reason, and the other
  sources' entries of the same round trip are not sent again.
- Events are queued per source and published in order with the frames; an `eof` waits until the
  source's last frame is published, so a consumer that sees `eof` has every frame before it, and says how
  many frames of the pass are in the stream (`frames`); a pass with fewer than were decoded fails its source.
- Every frame handed to `publish` ends up published (in its stream: added now, or there already from an
  earlier attempt) or in `dropped[(source, reason)]` with one of `DROP_REASONS`: nothing is in neither.
- Sources come and go while the worker runs (a fleet member's cameras, `add_source`/`remove_source`). A
  leased camera's entries carry its fence (lease key, token), fixed when they are accepted and kept
  across retries; a `Fenced` reply means the lease is lost: its entries are dropped (`fenced`, never
  written), the source is forgotten and `on_fenced` tells the worker. A file's or a configured camera's
  writer lease (`pipeline.streams.writer_leases`) fences it the same way.
- "Before" and "after" within the process are judged on the monotonic clock (`Frame.mono`), never on
  capture wall times: a clock stepped back or forth by minutes drops no frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.entry_ids import (
    ClockIds,
    PassIds,
    format_id,
    last_id,
    parse_id,
    pass_base_after,
)
from affectstream.pipeline.streams.keys import events_key, frames_key, source_of
from affectstream.pipeline.streams.replies import is_transient
from affectstream.pipeline.streams.writer import (
    EVENTS_MAXLEN,
    Fence,
    Fenced,
    RedisLostData,
    StreamWriter,
    Written,
    encode_event,
    encode_frame,
)
from affectstream.pipeline.streams.writer_leases import finish_pass
from affectstream.pipeline.types import FrameResult

log = logging.getLogger(__name__)

HELD_UNTIL_DRAINED = ("eof",)  # events that must follow the source's last frame

# Why a decoded frame was not published: the one list (DESIGN.md, "Every frame accounted for"). The
# reader counts `stale` (a live source keeping only the newest frame) and `corrupt` (a picture the decoder
# flagged); the worker `redis_unavailable` (live frames skipped while Redis refuses writes), `shutdown`
# (decoded, never taken: the buffer at stop) and `worker_failed`; the outbox the rest. Nothing drops for a
# full queue: the worker's queues apply backpressure.
DROP_REASONS = (
    "stale",  # replaced unread under the live policy
    "corrupt",  # the decoder flagged the picture as damaged (a slice lost in transit)
    "redis_unavailable",  # live frames skipped while Redis refused writes; or given up on at shutdown
    "shutdown",  # decoded but never taken: in the source's buffer when the worker stopped
    "source_failed",  # its stream refused writes for good (WRONGTYPE, ACL): the source failed
    "fenced",  # the writer's lease was lost: another writer owns the stream now
    "rejected",  # the stream already went past its id (another writer): not in the stream
    "worker_failed",  # taken by a worker that failed (a stage, or Redis lost data): its restart resumes
)


class DropCounts(Counter):
    """(source, reason) -> frames dropped; added to by the stages' threads, read by metrics scrapes."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, source: str, reason: str, frames: int = 1) -> None:
        with self._lock:
            self[source, reason] += frames

    def snapshot(self) -> Counter:
        with self._lock:
            return Counter(dict(self))


class _Transient(redis.RedisError):
    """Some streams of a round trip failed transiently; the round trip is retried for them only."""


class PublishGaveUp(RuntimeError):
    """The worker is stopping and Redis stayed unreachable for the whole drain period."""


class Outbox:
    """Publishes a worker's frames and events exactly once per id.

    Args:
        client: Redis client.
        worker: The worker id written into every entry (`worker` field).
        sources: The worker's `SourceSpec`s.
        passes: File source name -> pass base (`entry_ids.PassIds`); files absent here start a new pass.
        maxlen: Cap of the results streams.
        stopping: True once the worker drains (the retry deadline starts then).
        drain_s: How long a stopping worker retries.
        on_source_failed: Called with (source, reason) when a source fails permanently.
        drained: `drained(source)` is True when every frame taken from the source has been published or
            dropped; held events (`eof`) wait for it.
        on_fenced: Called with (source, holder) when a write of a leased source was fenced.
    """

    def __init__(
        self,
        client: redis.Redis,
        worker: str,
        sources: Iterable,
        passes: dict[str, int],
        *,
        maxlen: int,
        stopping: Callable[[], bool],
        drain_s: float,
        on_source_failed: Callable[[str, str], None],
        drained: Callable[[str], bool],
        on_fenced: Callable[[str, str], None] = lambda *_: None,
    ) -> None:
        self.client = client
        self.worker = worker
        self.maxlen = maxlen
        self.failed: dict[str, str] = {}  # source -> reason (permanent failures)
        self.lost_events = 0
        self.dropped = DropCounts()  # (source, reason) -> frames never published
        self.stalled = False  # Redis refuses writes right now (transient): a retry is under way
        self._pass_published: Counter[str] = Counter()  # file source -> frames of its pass published here
        self._rejected: set[str] = set()  # entry ids of the current round trip that another writer went past
        self._writer = StreamWriter(client)
        self._stopping, self._drain_s = stopping, drain_s
        self._on_source_failed, self._drained, self._on_fenced = on_source_failed, drained, on_fenced
        self._lock = threading.Lock()
        self._events: dict[str, deque] = {}
        self._frame_ids: dict[str, Callable[[int, float], str]] = {}
        self._event_ids: dict[str, ClockIds] = {}
        self._expect: dict[str, str] = {}  # file frames key -> last id acknowledged for this pass
        self.resume_after: dict[str, int] = {}  # file source -> last frame its pass already has
        self._fences: dict[str, Fence] = {}  # leased source -> its lease
        self._since: dict[
            str, float
        ] = {}  # added source -> when (monotonic); frames made before are not its own
        self._fenced: set[str] = set()  # sources of the current round trip whose lease turned out lost
        self._sent_fences: dict[str, Fence] = {}  # key -> the fence of the current round trip
        self._passes = passes
        for spec in sources:
            self.add_source(spec)
        self._retry = Retry(
            ExponentialWithJitterBackoff(cap=5.0, base=0.1),
            retries=-1,
            supported_errors=(redis.ConnectionError, redis.TimeoutError, _Transient),
        )

    # -- sources --------------------------------------------------------------------------------
    def add_source(self, spec, fence: Fence | None = None) -> None:
        """Publish `spec`'s frames and events from now on; with `fence` only while that lease holds its
        token. Ids continue above what its streams have."""
        events_after = last_id(self.client, events_key(spec.name))
        last = last_id(self.client, frames_key(spec.name))
        with self._lock:
            self.failed.pop(spec.name, None)  # claimed again: its streams are tried afresh
            self._events.setdefault(spec.name, deque())
            self._event_ids[spec.name] = ClockIds(events_after)
            if fence is not None:
                self._fences[spec.name] = fence
            if spec.live:
                self._frame_ids[spec.name] = ClockIds(last)
                self._since[spec.name] = time.monotonic()
                return
            ids = PassIds(self._passes.get(spec.name) or pass_base_after(last))
            self._frame_ids[spec.name] = ids
            self.resume_after[spec.name] = ids.last_frame(last)
            if self.resume_after[spec.name] >= 0:
                self._expect[frames_key(spec.name)] = format_id(last)

    def remove_source(self, source: str, then: tuple[str, dict] | None = None) -> None:
        """Forget `source`: its frames still to come are dropped (`fenced`), its queued events
        too; `then` (kind, detail) is one last event, written without a fence (`lost`: the lease is gone)."""
        with self._lock:
            self._frame_ids.pop(source, None)
            self._fences.pop(source, None)
            if source in self._events:
                self._events[source].clear()
        if then is not None:
            self._queue_event(source, *then)

    def owns(self, source: str) -> bool:
        return source in self._frame_ids

    # -- events ---------------------------------------------------------------------------------
    def add_event(self, source: str, kind: str, detail: dict | None = None) -> None:
        """Queue an event (any thread); its id and time are fixed now. Events of a source this worker
        no longer has (its reader's last words after a lost lease) are dropped."""
        if self.owns(source):
            self._queue_event(source, kind, detail)

    def _queue_event(self, source: str, kind: str, detail: dict | None) -> None:
        ts = time.time()
        entry = (
            self._event_ids[source](0, ts),
            encode_event(source, kind, detail, ts=ts, worker=self.worker),
        )
        with self._lock:
            self._events[source].append((kind, entry))

    def _ready_events(self) -> dict[str, list]:
        """Queued events that may go now, per events key, in order (a held `eof` and what follows it wait)."""
        out: dict[str, list] = {}
        eofs = []
        with self._lock:
            for source, queue in self._events.items():
                ready = []
                for kind, entry in queue:
                    if kind in HELD_UNTIL_DRAINED and not self._drained(source):
                        break
                    if kind == "eof":
                        eofs.append((source, entry[1]))
                    ready.append(entry)
                if ready:
                    out[events_key(source)] = ready
        for source, fields in eofs:
            self._count_pass(source, fields)
        return out

    def _count_pass(self, source: str, fields: dict) -> None:
        """Make a file's `eof` say how many frames of its pass are in the stream; fewer than the reader
        decoded fails the source (the run must not exit 0 on a partial pass)."""
        if source not in self.resume_after or "decoded" in fields:
            return  # a camera's, or counted already (a retry)
        in_stream = self.resume_after[source] + 1 + self._pass_published[source]
        decoded = int(fields.get("frames", in_stream))
        fields["frames"], fields["decoded"] = str(in_stream), str(decoded)
        if in_stream != decoded:
            self._fail_source(
                source,
                f"pass incomplete: {in_stream} of the {decoded} frames decoded are in {frames_key(source)}",
            )

    def _events_done(self, key: str, entries: list) -> None:
        """Unqueue the events of `entries` (the head of the source's queue when they were sent). By id, not
        by count: the queue may have been cleared meanwhile and hold a newer event (`lost`) that must stay."""
        sent = {entry_id for entry_id, _fields in entries}
        with self._lock:
            queue = self._events[source_of(key)]
            while queue and queue[0][1][0] in sent:
                queue.popleft()

    def pending_events(self, source: str | None = None) -> int:
        with self._lock:
            if source is not None:
                return len(self._events.get(source, ()))
            return sum(len(q) for q in self._events.values())

    # -- frames ---------------------------------------------------------------------------------
    def publish(self, results: list[FrameResult]) -> list[FrameResult]:
        """Write `results` (and the events ready to go) until Redis acknowledges them; returns the
        results that are now in their streams. Every other one is counted in `dropped` with its reason.

        Raises:
            RedisLostData: A file's stream lost entries this worker had written (the caller restarts
                the pass from what the stream still has).
            PublishGaveUp: Stopping, and Redis stayed unreachable for `drain_s`.
        """
        frames: dict[str, list] = {}
        kept: list[FrameResult] = []
        for r in results:
            if r.source in self.failed:
                self.dropped.add(r.source, "source_failed")
                continue
            ids = self._frame_ids.get(r.source)
            if ids is None or r.mono < self._since.get(r.source, 0.0):  # lost, or made before a re-claim
                self.dropped.add(r.source, "fenced")
                continue
            if r.entry_id is None:  # chosen once: every retry sends the same id
                r.entry_id = ids(r.frame, r.ts)
            frames.setdefault(frames_key(r.source), []).append((r.entry_id, encode_frame(r, self.worker)))
            kept.append(r)
        events = self._ready_events()
        self._rejected = set()
        try:
            self._send(frames, events)
        except PublishGaveUp:
            for r in kept:
                self.dropped.add(r.source, "redis_unavailable")
            raise
        except RedisLostData:
            for r in kept:  # the restarted worker publishes them again
                self.dropped.add(r.source, "worker_failed")
            raise
        published = []
        for r in kept:
            if r.source in self._fenced:
                continue  # counted by _settle
            if r.source in self.failed:
                self.dropped.add(r.source, "source_failed")
            elif r.entry_id in self._rejected:
                self.dropped.add(r.source, "rejected")
            else:
                published.append(r)
                if r.source in self.resume_after:
                    self._pass_published[r.source] += 1
        return published

    def flush_events(self) -> None:
        """Publish every queued event (at shutdown: held ones too, whatever the drain state)."""
        self._drained = lambda _source: True
        events = self._ready_events()
        if events:
            self._send({}, events)

    def _send(self, frames: dict[str, list], events: dict[str, list]) -> None:
        todo = {**frames, **events}
        stopping_since = None
        self._fenced = set()
        with self._lock:  # fixed for every retry: a lost lease must fence the retries too
            fences = {k: self._fences[source_of(k)] for k in todo if source_of(k) in self._fences}
        self._sent_fences = fences

        def attempt() -> None:
            caps = {k: EVENTS_MAXLEN if k in events else self.maxlen for k in todo}
            expect = {k: v for k, v in self._expect.items() if k in todo}
            outcome = self._writer.write(todo, caps, expect, fences)
            transient = None
            for key, reply in outcome.items():
                if isinstance(reply, Written) or not is_transient(reply):
                    self._settle(key, reply, todo.pop(key), key in events)
                else:
                    transient = reply
            if transient is not None:
                raise _Transient(f"{len(todo)} streams not written: {transient}")
            self.stalled = False

        def failed(exc: Exception) -> None:
            nonlocal stopping_since
            self.stalled = True
            if self._stopping():
                stopping_since = stopping_since or time.monotonic()
                if time.monotonic() - stopping_since > self._drain_s:
                    raise PublishGaveUp(f"Redis unreachable while stopping: {mask_text(str(exc))}") from exc
            log.warning("publish failed (%s); retrying", mask_text(str(exc)))

        try:
            self._retry.call_with_retry(attempt, failed)
        except PublishGaveUp:
            self.lost_events += self.pending_events()
            with self._lock:
                for queue in self._events.values():
                    queue.clear()
            raise

    def _settle(self, key: str, reply: Written | Exception, entries: list, is_events: bool) -> None:
        source = source_of(key)
        if isinstance(reply, Written):
            if reply.rejected:
                self._rejected.update(reply.rejected)
                log.error(
                    "%s: %d entries not written: another writer went past their ids", key, len(reply.rejected)
                )
            if is_events:
                self.lost_events += len(reply.rejected)
                self._events_done(key, entries)
                self._finish_pass(source, entries)
            elif source in self.resume_after:  # files: Redis must keep what it acknowledged
                self._expect[key] = max(self._expect.get(key, "0-0"), entries[-1][0], key=parse_id)
            return
        if isinstance(reply, RedisLostData):
            raise reply
        if isinstance(reply, Fenced):
            if is_events:
                self._events_done(key, entries)
            else:
                self.dropped.add(source, "fenced", len(entries))
            if source not in self._fenced:
                self._fenced.add(source)
                log.warning("source %s: %s", source, reply)
                # Only while the source still holds the lease this write was fenced with: else the claim loop
                # dropped it already (keep the `lost` it queued) or claimed it again (a new, valid lease).
                if self._fences.get(source) == self._sent_fences.get(key):
                    self.remove_source(source)
                    self._on_fenced(source, reply.holder)
            return
        reason = f"Redis refused writes to {key}: {mask_text(str(reply))}"
        if is_events:
            # The source's frames may still be fine, but nothing will ever say so: fail it.
            self.lost_events += len(entries)
            self._events_done(key, entries)
        self._fail_source(source, reason)

    def _finish_pass(self, source: str, entries: list) -> None:
        """Once a file's `eof` is in its stream, its pass is no longer one to resume (`pipeline.streams.writer_leases`)."""
        ids = self._frame_ids.get(source)
        if not isinstance(ids, PassIds) or not any(fields.get("kind") == "eof" for _id, fields in entries):
            return
        try:
            finish_pass(self.client, source, ids.base)
        except redis.RedisError as exc:  # a later run resumes the finished pass: it only re-reads the file
            log.warning("source %s: could not close its pass record: %s", source, mask_text(str(exc)))

    def _fail_source(self, source: str, reason: str) -> None:
        if source in self.failed:
            return
        self.failed[source] = reason
        log.error("source %s failed: %s", source, reason)
        self._on_source_failed(source, reason)
        self.add_event(source, "error", {"reason": reason})
