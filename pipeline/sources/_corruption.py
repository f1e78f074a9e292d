"""When a camera keeps delivering damaged pictures: the rate behind a `degraded` event."""

from __future__ import annotations

import time
from collections.abc import Callable

# Over one window, at least this many corrupt frames and this share of the decoded ones is "persisting":
# a single lost packet on a good link is one or two frames, not a camera to look at.
WINDOW_S = 5.0
MIN_CORRUPT = 3
MIN_RATE = 0.05


class CorruptionWatch:
    """Counts decoded and corrupt frames per window; says when a window's corrupt rate is too high.

    Args:
        window_s: Window length in seconds (monotonic clock).
        clock: The clock (tests pass their own).
    """

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._start: float | None = None
        self._decoded = 0
        self._corrupt = 0

    def add(self, corrupt: bool) -> dict | None:
        """Count one decoded frame; at the end of a degraded window, the `degraded` event's detail."""
        now = self._clock()
        if self._start is None:
            self._start = now
        self._decoded += 1
        self._corrupt += corrupt
        if now - self._start < self.window_s:
            return None
        decoded, bad, span = self._decoded, self._corrupt, now - self._start
        self._start, self._decoded, self._corrupt = now, 0, 0
        if bad < MIN_CORRUPT or bad < MIN_RATE * decoded:
            return None
        return {
            "corrupt": bad,
            "decoded": decoded,
            "rate": round(bad / decoded, 3),
            "window_s": round(span, 1),
        }
