"""Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter")."""

from __future__ import annotations

import random


class Backoff:
    """Delays for reconnect attempts 1, 2, 3, ...: uniform in [0, min(cap, first * 2**(attempt-1))].

    Full jitter spreads the reconnects of many cameras that failed together (a switch reboot) instead
    of having them hit the network in lockstep.
    """

    def __init__(self, first_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()

    def bound(self, attempt: int) -> float:
        """The largest delay attempt `attempt` (1-based) may wait."""
        # min() on the exponent first keeps 2**n from overflowing after days of retries.
        return min(self.cap_s, self.first_s * 2 ** min(max(attempt, 1) - 1, 60))

    def delay(self, attempt: int) -> float:
        """A random delay for attempt `attempt` (1-based)."""
        return self._rng.uniform(0.0, self.bound(attempt))
