"""A worker's sources: their lanes, which frame to take next, and the account of every frame taken.

The intake owns the worker's `SourceLane`s (`pipeline.runtime.lanes`): it starts and stops them as
sources are added and removed, hands the prepare threads the next frame of any source (round robin), and
counts each frame from the moment it is taken until it is published (`settled`) or dropped with a reason
(`skip`, `discard_buffered`, `abandon`; the reasons are `outbox.DROP_REASONS`). That count is what makes
decoded = published + dropped + in flight hold per source at every reading (`pipeline.runtime.accounts`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from affectstream.pipeline.runtime.lanes import SourceLane, Taken
from affectstream.pipeline.sources import Doorbell

log = logging.getLogger(__name__)


class Intake:
    """The sources one worker reads.

    Args:
        processor: The `FrameProcessor` whose `new_source` makes each source's state.
        outbox: The worker's `Outbox`: where each source's stream and pass live, and where drops are counted.
        on_event: Called with (source, kind, detail) for the readers' events.
        smooth_window: The smoothing window of every source's state.
        fleet: A fleet worker runs until stopped: sources come and go, and none at all is not the end.
        counts_lock: Held while a removed source's counts move to `retired` (`pipeline.runtime.accounts`
            reads under it too, so that no reading counts a source twice or not at all).
    """

    def __init__(
        self,
        processor,
        outbox,
        on_event: Callable[[str, str, dict], None],
        *,
        smooth_window: int,
        fleet: bool,
        counts_lock: threading.Lock,
    ) -> None:
        self._processor = processor
        self._outbox = outbox
        self._on_event = on_event
        self._smooth_window = smooth_window
        self._fleet = fleet
        self._counts_lock = counts_lock
        self.lanes: dict[str, SourceLane] = {}  # replaced, never mutated (threads iterate it)
        # Counters of sources removed while running (`reader_counts`): a camera claimed again gets a new
        # reader that counts from 0, and its totals in this worker must not go back.
        self.retired: dict[str, Counter[str]] = {}
        self.taken = 0  # frames taken from sources and accepted for processing
        self._inflight: Counter[str] = Counter()  # frames taken, not yet published or dropped
        self._lock = threading.Lock()
        self._doorbell = Doorbell()  # rung by every source's buffer: `take` waits on it, never polls

    # -- sources ----------------------------------------------------------------------------------
    def start(self, spec) -> None:
        """Open `spec`, give it its own state and a lane, and start its reader."""
        from affectstream.pipeline.sources import open_source

        context = self._processor.new_source(spec.name, smooth_window=self._smooth_window, live=spec.live)
        lane = SourceLane(
            open_source(spec, self._on_event, self._doorbell),
            context,
            self._outbox.resume_after.get(spec.name, -1),
            on_take=self._count_taken,
        )
        self.lanes = {**self.lanes, spec.name: lane}
        lane.source.start()

    def stop_reading(self, name: str) -> None:
        """Take no more frames of `name` (its stream refuses writes, or its lease is lost)."""
        lane = self.lanes.get(name)
        if lane is not None:
            lane.finished = True
            lane.source.stop(timeout=0)

    def remove(
        self,
        name: str,
        *,
        drain: bool,
        then: tuple[str, dict] | None,
        timeout_s: float,
        failed: Callable[[], bool],
    ) -> int:
        """Stop `name` and forget it (`Worker.remove_source` says what `drain` and `then` mean); returns the
        frames left unpublished."""
        lane = self.lanes.get(name)
        if lane is None:
            return 0
        lane.close()  # every frame taken from it is counted in _inflight from here on
        lane.source.stop(timeout=0)
        deadline = time.monotonic() + timeout_s
        if drain:
            while self._inflight[name] > 0 and time.monotonic() < deadline and not failed():
                time.sleep(0.01)
            if then is not None:
                self._outbox.add_event(name, *then)
                then = None
            while self._outbox.pending_events(name) and time.monotonic() < deadline and not failed():
                time.sleep(0.01)
        self.discard_buffered(lane, "shutdown")  # decoded, never taken
        with self._counts_lock:
            self.retired[name] = self.retired.get(name, Counter()) + reader_counts(lane)
            self.lanes = {k: v for k, v in self.lanes.items() if k != name}
        left = max(0, self._inflight[name])
        self._outbox.remove_source(name, then)
        return left

    def stop_all(self) -> None:
        """Stop every reader; what they decoded and nobody took is counted as `shutdown`."""
        for lane in self.lanes.values():
            lane.source.stop()
            self.discard_buffered(lane, "shutdown")

    def say_stopped(self, configured: set[str], *, flush: bool) -> None:
        """`stopped` for each `configured` source that did not end by itself (a stop, SIGTERM), after its
        last frame (`flush`: written now); a fleet camera says `released` instead (its member does)."""
        stopped = [
            (name, lane)
            for name, lane in self.lanes.items()
            if name in configured and lane.source.state not in ("eof", "error")
        ]
        for name, lane in stopped:
            self._outbox.add_event(name, "stopped", {"frames": lane.source.stats.decoded})
        if stopped and flush:
            try:
                self._outbox.flush_events()
            except Exception as exc:  # its frames are all out; only the word "stopped" is missing
                log.warning("could not publish `stopped` events: %s", exc)

    # -- taking frames ----------------------------------------------------------------------------
    def take(self, cursor: int, idle: threading.Event) -> tuple[Taken | None, int]:
        """The next frame of any source, round robin from `cursor`, and the next cursor; None when no
        frame is ready yet (then `idle` is set: the batcher need not wait for this thread), after waiting
        up to 50 ms for a source's buffer to ring the doorbell."""
        seen = self._doorbell.rings
        active = [lane for lane in self.lanes.values() if not lane.finished]
        for k in range(len(active)):
            i = (cursor + k) % len(active)
            if taken := active[i].take(0.0):
                return taken, i + 1
        idle.set()
        self._doorbell.wait(seen, 0.05)
        return None, cursor

    def ended(self, stopping: bool) -> bool:
        """Whether there is nothing more to take: stopping, or (outside a fleet) every source finished."""
        return stopping or (not self._fleet and all(lane.finished for lane in self.lanes.values()))

    def _count_taken(self, source: str) -> None:
        with self._lock:
            self.taken += 1
            self._inflight[source] += 1

    # -- the account of frames taken ----------------------------------------------------------------
    def settled(self, results) -> None:
        """`results` were published or dropped by the outbox (which counted the drops)."""
        with self._lock:
            for r in results:
                self._inflight[r.source] -= 1

    def skip(self, taken: Taken, reason: str, aborted: Callable[[], bool]) -> None:
        """Drop a taken frame unprocessed, keeping its lane's order and its account."""
        with taken.lane.in_order(taken.seq, aborted=aborted):
            pass
        self._outbox.dropped.add(taken.lane.name, reason)
        with self._lock:
            self._inflight[taken.lane.name] -= 1

    def discard_buffered(self, lane: SourceLane, reason: str) -> None:
        """Count and discard the frames waiting in a source's buffer (never taken: no order to keep)."""
        left = 0
        while lane.source.get(0) is not None:
            left += 1
        if left:
            self._outbox.dropped.add(lane.name, reason, left)

    def discard_live_buffers(self, reason: str) -> None:
        """`discard_buffered` for every running camera (the stages behind wait for Redis)."""
        for lane in self.lanes.values():
            if lane.source.spec.live and not lane.finished:
                self.discard_buffered(lane, reason)

    def abandon(self, reason: str) -> None:
        """Count every frame still in flight as dropped for `reason` (a failed worker will not publish
        them; its restart reads the pass again from what the stream holds)."""
        with self._lock:
            left = {source: n for source, n in self._inflight.items() if n > 0}
            for source, n in left.items():
                self._outbox.dropped.add(source, reason, n)
                self._inflight[source] = 0

    def drained(self, source: str) -> bool:
        """Whether `source` ended and every frame taken from it is published or dropped."""
        lane = self.lanes.get(source)
        with self._lock:
            return lane is not None and lane.finished and self._inflight[source] == 0

    def in_flight(self) -> dict[str, int]:
        with self._lock:
            return dict(self._inflight)


def reader_counts(lane: SourceLane) -> Counter[str]:
    """What a lane's reader counted: decoded (less the frames a resumed pass passed over: they are in the
    stream already, published by an earlier worker of the run), stale and corrupt drops, reconnects."""
    stats = lane.source.stats
    return Counter(
        decoded=stats.decoded - lane.skipped,
        stale=stats.dropped,
        corrupt=stats.corrupt,
        reconnects=stats.reconnects,
    )
