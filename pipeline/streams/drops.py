"""Every decoded frame accounted for: the reasons a frame was not published, and the counter of them.

`DROP_REASONS` is the one list (DESIGN.md, "Every frame accounted for"); `DropCounts` is the thread-safe
(source, reason) -> frames counter that the reader, the worker and the outbox add to and that metrics
scrapes, heartbeats and the closing account read.
"""

from __future__ import annotations

import threading
from collections import Counter

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
