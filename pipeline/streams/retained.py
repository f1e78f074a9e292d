"""The entries Redis acknowledged lately, kept so that what a failover or a restart lost can be sent again.

Redis acknowledges a write once its master has it; a replica gets it a moment later. A master that dies in
that moment takes the write with it, and a promoted replica, or a restarted server without persistence,
answers with a stream whose last id is below what this worker saw acknowledged. The publish script
reports that (`LOST <last id>`, `pipeline.streams.writer.RedisLostData`) at the next write of the stream;
the outbox then takes the entries above that id from here and sends them again with the same ids, so the
stream ends up as if nothing had happened. A window per stream, bounded in entries and in age: what fell
out of it before the loss cannot be sent again, and `since` says so rather than leaving a silent gap.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from affectstream.pipeline.streams.entry_ids import Id, parse_id

RETAIN_ENTRIES = 4096  # per stream: a few seconds of a file pass, two minutes of a 30 fps camera
RETAIN_S = 60.0  # a replica lags by milliseconds; a restart without persistence loses everything anyway


class Retained:
    """Acknowledged entries per stream key, oldest first (thread-safe).

    Args:
        max_entries: Entries kept per stream.
        max_age_s: How long (monotonic) an entry is kept.
    """

    def __init__(self, max_entries: int = RETAIN_ENTRIES, max_age_s: float = RETAIN_S) -> None:
        self.max_entries, self.max_age_s = max_entries, max_age_s
        self._kept: dict[str, deque[tuple[Id, float, tuple]]] = {}
        self._dropped_top: dict[str, Id] = {}  # key -> the newest id let go of
        self._lock = threading.Lock()

    def add(self, key: str, entries: list) -> None:
        """Remember `entries` ((id, fields), ids ascending) as acknowledged; ids already kept are skipped
        (entries sent again after a loss)."""
        now = time.monotonic()
        with self._lock:
            kept = self._kept.setdefault(key, deque())
            for entry in entries:
                entry_id = parse_id(entry[0])
                if not kept or entry_id > kept[-1][0]:
                    kept.append((entry_id, now, entry))
            while kept and (len(kept) > self.max_entries or now - kept[0][1] > self.max_age_s):
                self._dropped_top[key] = kept.popleft()[0]

    def since(self, key: str, last: str) -> tuple[list, bool]:
        """(the kept entries of `key` above `last`, whether they are all that was acknowledged above it:
        False when some such entry is no longer kept and can never be sent again)."""
        after = parse_id(last)
        with self._lock:
            kept = [entry for entry_id, _, entry in self._kept.get(key, ()) if entry_id > after]
            return kept, self._dropped_top.get(key, (0, 0)) <= after

    def forget(self, key: str) -> None:
        with self._lock:
            self._kept.pop(key, None)
            self._dropped_top.pop(key, None)
