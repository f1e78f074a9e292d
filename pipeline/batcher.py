"""Micro-batching of prepared frames: one engine call for the faces of many frames and sources."""

from __future__ import annotations

import queue
import time

STOP = object()  # sentinel: no more items will come


class MicroBatcher:
    """Gathers items from `inbox` until `max_faces` faces or `max_wait_ms` after the first item.

    Items are `process.Prepared`; order is kept (FIFO), so per-source frame order survives batching.
    Frames without faces never wait: a batch is cut as soon as nothing more is queued and the only
    items in hand have no faces.
    """

    def __init__(self, inbox: queue.Queue, *, max_faces: int, max_wait_ms: float) -> None:
        self.inbox = inbox
        self.max_faces = max_faces
        self.max_wait = max_wait_ms / 1000.0
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
            if faces == 0 or timeout <= 0:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
            else:
                try:
                    item = self.inbox.get(timeout=timeout)
                except queue.Empty:
                    break
            if item is STOP:
                self.stopped = True
                break
            batch.append(item)
            faces += len(item.faces)
        return batch
