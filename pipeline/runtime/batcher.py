"""Micro-batching of prepared frames: one engine call for the faces of many frames and sources."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

STOP = object()  # sentinel: no more items will come
_SLICE = 0.002  # seconds between checks of the producer's idle hint while waiting


class MicroBatcher:
    """Gathers items from `inbox` until `max_faces` faces or `max_wait_ms` after the first item.

    Items are `process.Prepared`; order is kept (FIFO), so per-source frame order survives batching.
    Frames without faces never wait: a batch is cut as soon as nothing more is queued and the only
    items in hand have no faces.

    `producer_idle` (optional) tells whether the producer is waiting for input; while it is, nothing
    can arrive within the wait, so the batch is cut at once instead of adding `max_wait_ms` of
    latency to every frame of a live stream (docs/bench.md, 142887b).
    """

    def __init__(
        self,
        inbox: queue.Queue,
        *,
        max_faces: int,
        max_wait_ms: float,
        producer_idle: Callable[[], bool] | None = None,
    ) -> None:
        self.inbox = inbox
        self.max_faces = max_faces
        self.max_wait = max_wait_ms / 1000.0
        self.producer_idle = producer_idle
        self.stopped = False

    def next_batch(self) -> list:
        """Block for the next batch; returns [] once STOP was seen and the inbox is drained."""
        if self.stopped:
            return []
        first = self.inbox.get()
        if first is STOP:
            self.stopped = True
            return []
        batch, faces = [first], len(first.faces)
        deadline = time.monotonic() + self.max_wait
        while faces < self.max_faces:
            timeout = deadline - time.monotonic()
            if faces == 0 or timeout <= 0 or (self.producer_idle is not None and self.producer_idle()):
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
            else:
                try:
                    # With an idle hint, wait in slices so a producer going idle cuts the batch early.
                    item = self.inbox.get(timeout=min(timeout, _SLICE) if self.producer_idle else timeout)
                except queue.Empty:
                    if self.producer_idle is not None and time.monotonic() < deadline:
                        continue
                    break
            if item is STOP:
                self.stopped = True
                break
            batch.append(item)
            faces += len(item.faces)
        return batch
