"""The dashboard's arithmetic: rates and shares from workers' cumulative counters, latency percentiles.

A worker's heartbeat carries each of its sources' cumulative counters (decoded, dropped, reconnects,
published: monotonic while the worker process lives). One `CounterSeries` keeps one (worker, source)
pair's samples, stamped with when the heartbeat was written (`state.Beat.seen`: by its age in Redis, else its
own `ts`; not when the dashboard read it), so rates stay right however late or often the dashboard reads.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    ts: float  # when the heartbeat was written (unix seconds, `state.Beat.seen`)
    decoded: int
    dropped: int
    reconnects: int
    published: int


class CounterSeries:
    """Samples of one worker's counters for one source, newest last, bounded in count and age."""

    def __init__(self, maxlen: int = 512) -> None:
        self.samples: deque[Sample] = deque(maxlen=maxlen)

    def add(self, sample: Sample) -> bool:
        """Append `sample` unless it is not newer than the last one (the same heartbeat read twice)."""
        if self.samples and sample.ts <= self.samples[-1].ts:
            return False
        self.samples.append(sample)
        return True

    def prune(self, before: float) -> None:
        """Drop samples older than `before`, keeping the newest one (the current totals)."""
        while len(self.samples) > 1 and self.samples[0].ts < before:
            self.samples.popleft()

    @property
    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def rate(self, field: str, window_s: float) -> float | None:
        """Per second over the last `window_s` of samples (at least two samples; None otherwise).

        The reference is the oldest sample in the window, or the one before the newest when the window
        holds only the newest (a heartbeat period longer than the window).
        """
        if len(self.samples) < 2:
            return None
        newest = self.samples[-1]
        ref = self.samples[-2]
        for s in self.samples:
            if s.ts >= newest.ts - window_s and s is not newest:
                ref = s
                break
        dt = newest.ts - ref.ts
        return max(0, getattr(newest, field) - getattr(ref, field)) / dt if dt > 0 else None

    def delta(self, field: str, since: float) -> int | None:
        """Increase of `field` over the samples from `since` on (None with fewer than two)."""
        inside = [s for s in self.samples if s.ts >= since]
        if len(inside) < 2:
            return None
        return max(0, getattr(inside[-1], field) - getattr(inside[0], field))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
