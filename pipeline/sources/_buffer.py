"""The hand-over between a reader thread and its consumer: a 1-slot mailbox or a bounded queue, and the
doorbell that tells a consumer of many sources that one of them has something new."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Doorbell:
    """Rung by every buffer of a worker when it gets a frame or closes; its prepare threads wait on it
    instead of polling every source every few milliseconds (which cost CPU per frame at many cameras).

    `seen = bell.rings` before looking at the sources, then `bell.wait(seen, timeout)` sleeps only if
    nothing rang since: no ring between the look and the wait is lost.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.rings = 0

    def ring(self) -> None:
        with self._cond:
            self.rings += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self.rings == seen:
                self._cond.wait(timeout)


class FrameBuffer(Generic[T]):
    """Thread-safe buffer with the two source policies.

    Live (`keep_newest=True`): one slot; a new item replaces an unread one, which is counted in `dropped`,
    so the consumer always sees the newest frame and latency stays bounded.
    File (`keep_newest=False`): `size` slots; `put` blocks while full (backpressure), nothing is dropped.

    `close()` tells the consumer that no more items will come; `get` then returns what is left and
    afterwards None at once instead of waiting out its timeout.
    """

    def __init__(self, size: int, keep_newest: bool, doorbell: Doorbell | None = None) -> None:
        self._doorbell = doorbell
        self._items: deque[T] = deque()
        self._size = 1 if keep_newest else size
        self._keep_newest = keep_newest
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: T, cancel: threading.Event) -> bool:
        """Add `item`; under the file policy wait for space until `cancel` is set.

        Returns:
            False when `cancel` was set (or the buffer closed) before the item could be added.
        """
        with self._cond:
            if self._keep_newest:
                if len(self._items) >= self._size:
                    self._items.popleft()
                    self.dropped += 1
            else:
                # Waiting in short slices keeps `cancel` (set by stop() without the lock) responsive.
                while len(self._items) >= self._size and not self._closed:
                    if cancel.is_set():
                        return False
                    self._cond.wait(0.05)
            if self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
        if self._doorbell is not None:
            self._doorbell.ring()
        return True

    def get(self, timeout: float) -> T | None:
        """The next item, or None after `timeout` seconds or at once when closed and empty."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._items:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more items will be put; wake every waiter."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._doorbell is not None:
            self._doorbell.ring()

    @property
    def drained(self) -> bool:
        """True when closed and nothing is left to get."""
        with self._cond:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
