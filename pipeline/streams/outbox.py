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

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.drops import DROP_REASONS as DROP_REASONS  # the list, where it was
from affectstream.pipeline.streams.drops import DropCounts
from affectstream.pipeline.streams.entry_ids import (
    ClockIds,
    PassIds,
    format_id,
    last_id,
    pass_base_after,
)
from affectstream.pipeline.streams.keys import events_key, frames_key, source_of
from affectstream.pipeline.streams.outbox_events import OutboxEvents
from affectstream.pipeline.streams.outbox_replies import OutboxReplies
from affectstream.pipeline.streams.outbox_tracks import OutboxTracks
from affectstream.pipeline.streams.replies import is_transient
from affectstream.pipeline.streams.retained import Retained
from affectstream.pipeline.streams.server_watch import ServerChanged, ServerWatch
from affectstream.pipeline.streams.writer import (
    EVENTS_MAXLEN,
    Fence,
    RedisLostData,
    StreamWriter,
    Written,
    encode_frame,
)
from affectstream.pipeline.types import FrameResult

log = logging.getLogger(__name__)


class _Transient(redis.RedisError):
    """Some streams of a round trip failed transiently; the round trip is retried for them only."""


class PublishGaveUp(RuntimeError):
    """The worker is stopping and Redis stayed unreachable for the whole drain period."""


class Outbox(OutboxEvents, OutboxReplies, OutboxTracks):
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
        min_replicas_acked: Entries count as written once this many replicas have them (`redis.min_replicas_acked`).
        retention_s: Trim the streams by age too (`redis.retention_s`); None: by `maxlen` only.
        watch: The `ServerWatch` of `client`'s connections (`connect(url, watch=...)`): streams' tails are
            checked against what was acknowledged only after the server changed. None: on every write
            (an `XINFO STREAM` inside each publish call).
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
        min_replicas_acked: int = 0,
        retention_s: float | None = None,
        track_updates_s: float | None = None,
        watch: ServerWatch | None = None,
    ) -> None:
        self.client = client
        self._watch = watch
        self._verify: set[str] = set()  # stream keys whose tail the next write checks (a server change)
        self._track_updates_s, self._tracks = track_updates_s, {}
        self.worker = worker
        self.maxlen = maxlen
        self.failed: dict[str, str] = {}  # source -> reason (permanent failures)
        self.lost_events = 0
        self.dropped = DropCounts()  # (source, reason) -> frames never published
        self.stalled = False  # Redis refuses writes right now (transient): a retry is under way
        self._pass_published: Counter[str] = Counter()  # file source -> frames of its pass published here
        self._rejected: set[str] = set()  # entry ids of the current round trip that another writer went past
        self._writer = StreamWriter(client, retention_s=retention_s, min_replicas_acked=min_replicas_acked)
        self._stopping, self._drain_s = stopping, drain_s
        self._on_source_failed, self._drained, self._on_fenced = on_source_failed, drained, on_fenced
        self._lock = threading.Lock()
        self._events: dict[str, deque] = {}
        self._frame_ids: dict[str, Callable[[int, float], str]] = {}
        self._event_ids: dict[str, ClockIds] = {}
        self._expect: dict[str, str] = {}  # stream key -> last id acknowledged there: Redis must keep it
        self._retained = Retained()  # what Redis acknowledged lately, to send again if it loses it
        self._tails_due = False
        self._finished: set[str] = set()
        self.data_lost: Counter[str] = Counter()  # source -> times Redis lost entries no longer held here
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
        # Capped at 2 s: a master that comes back, or a replica promoted in its place, gets the first retry
        # within 2 s (docs/deploy.md promises the first write within 10 s of a promotion).
        self._retry = Retry(
            ExponentialWithJitterBackoff(cap=2.0, base=0.1),
            retries=-1,
            supported_errors=(redis.ConnectionError, redis.TimeoutError, ServerChanged, _Transient),
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
            self._open_tracks(spec.name)
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
            self._tracks.pop(source, None)
            for key in (frames_key(source), events_key(source)):  # another writer may write them now
                self._expect.pop(key, None)
                self._retained.forget(key)
            if source in self._events:
                self._events[source].clear()
        if then is not None:
            self._queue_event(source, *then)

    def owns(self, source: str) -> bool:
        return source in self._frame_ids

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
                self._track_entries(r, frames)
            frames.setdefault(frames_key(r.source), []).append((r.entry_id, encode_frame(r, self.worker)))
            kept.append(r)
        events = self._ready_events()
        self._close_tracks(events, frames)
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

    def _guarded(self):
        return self._watch.guarding() if self._watch else contextlib.nullcontext()

    def _take_server_change(self) -> None:
        """A connection reached another server since the last attempt (`ServerWatch`): every stream this
        worker wrote is checked before the next entry goes to it (the ones of this round trip by the
        publish script, the others by `_check_other_tails`)."""
        if self._watch is None or (changed := self._watch.changed()) is None:
            return
        log.info("a Redis connection reached another server (a failover or a restart): checking stream tails")
        self._verify.update(self._expect)
        self._tails_due = True
        self._watch.acknowledge(changed)

    def _verifies(self, key: str) -> bool:
        """Whether this write of `key` checks its tail: after a server change, or always without a watch
        (or with one whose servers do not say their run_id)."""
        return self._watch is None or self._watch.blind or key in self._verify

    def _send(self, frames: dict[str, list], events: dict[str, list]) -> None:
        todo = {**frames, **events}
        stopping_since = None
        self._fenced = set()
        with self._lock:  # fixed for every retry: a lost lease must fence the retries too
            fences = {k: self._fences[source_of(k)] for k in todo if source_of(k) in self._fences}
        self._sent_fences = fences

        def attempt() -> None:
            with self._guarded():
                self._take_server_change()
                self._check_other_tails(todo)
                caps = {k: EVENTS_MAXLEN if k in events else self.maxlen for k in todo}
                expect = {k: v for k, v in self._expect.items() if k in todo and self._verifies(k)}
                outcome = self._writer.write(todo, caps, expect, fences)
            transient: Exception | None = None
            for key, reply in outcome.items():
                if isinstance(reply, Written):
                    self._verify.discard(key)
                if isinstance(reply, RedisLostData) and self._resend_lost(key, reply, todo):
                    transient = reply  # sent again, lost entries first, by the retry
                elif isinstance(reply, Written) or not is_transient(reply):
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
