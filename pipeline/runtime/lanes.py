"""Work sharing in a worker's prepare stage: any prepare thread detects any source's next frame; each
source's frames are still tracked and queued for the engine in frame order.

Why: with sources pinned to prepare threads, a thread whose sources had ended (the short files of an
archive batch) or were idle (a quiet camera beside a busy one) left its core unused while the other
thread still had frames; one long file ran on one core. Detection, the costly step, needs no state,
so it runs on whichever thread is free; the tracker needs the previous frame's result, so that step
and the hand-off to the engine queue wait for the frame's turn.

A `SourceLane` wraps one source: `take` (one thread at a time) pulls its next frame and gives it a
sequence number; `in_order(seq)` admits the holder of each sequence number in turn. It owns the source's
`SourceContext`, the one place where per-source state lives (the processing stages hold none), so
archive jobs and rendering, which take frames in order without a lane, use a context alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from affectstream.pipeline.frames.context import SourceContext
from affectstream.pipeline.types import Frame


class LaneAborted(RuntimeError):
    """The worker failed while a thread waited for its turn: an earlier frame will never arrive."""


@dataclass(frozen=True, slots=True)
class Taken:
    """A frame taken from a lane: its order within the source and whether to run the detector on it."""

    lane: SourceLane
    frame: Frame
    seq: int
    detect: bool


class SourceLane:
    """One source's frames, taken by any thread, admitted to the ordered step one by one.

    Args:
        source: A started source (`get(timeout)`, `finished`, `name`).
        context: The source's state; its `detect_due` is asked once per taken frame, in frame order.
        skip_until: Frames with an index up to this one are dropped (already published before a restart).
        on_take: Called with the lane's name for each frame taken, before `take` returns it and before
            `close` can return: a worker that closes the lane has counted every frame taken from it.
    """

    def __init__(
        self,
        source,
        context: SourceContext,
        skip_until: int = -1,
        on_take: Callable[[str], None] = lambda _name: None,
    ) -> None:
        self.source = source
        self.name = source.name
        self.context = context
        self.skip_until = skip_until
        self.skipped = (
            0  # frames at or below `skip_until` passed over: in the stream already, not ours to count
        )
        self.finished = False
        self._on_take = on_take
        self._take = threading.Lock()
        self._turn = threading.Condition()
        self._next = 0  # sequence number of the next frame taken
        self._admitted = 0  # sequence number of the next frame allowed into the ordered step

    def take(self, timeout: float = 0.0) -> Taken | None:
        """The source's next frame, or None: no frame within `timeout`, another thread is taking, or the
        source ended (then `finished` is set)."""
        if not self._take.acquire(blocking=False):
            return None
        try:
            while not self.finished:
                frame = self.source.get(timeout=timeout)
                if frame is None:
                    if self.source.finished:
                        self.finished = True
                    return None
                if frame.index > self.skip_until:
                    break
                self.skipped += 1
                timeout = 0.0  # a skipped frame is not a wait: look at the next one at once
            else:
                return None  # closed
            seq, self._next = self._next, self._next + 1
            self._on_take(self.name)
            return Taken(self, frame, seq, self.context.detect_due())
        finally:
            self._take.release()

    def close(self) -> None:
        """Take no more frames (a camera removed while the worker runs); returns once no `take` is under way."""
        with self._take:
            self.finished = True

    @contextmanager
    def in_order(self, seq: int, aborted: Callable[[], bool]) -> Iterator[None]:
        """Wait until every earlier frame of this source has passed, then hold the turn for `seq`.

        Raises:
            LaneAborted: `aborted()` turned true while waiting (the thread holding an earlier frame failed).
        """
        with self._turn:
            while self._admitted != seq:
                if aborted():
                    raise LaneAborted(f"{self.name}: frame sequence {seq} abandoned after a failure")
                self._turn.wait(0.1)
        # Only the holder of `seq` gets here until it increments `_admitted`: the step needs no lock.
        try:
            yield
        finally:
            with self._turn:
                self._admitted += 1
                self._turn.notify_all()
