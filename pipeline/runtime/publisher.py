"""A worker's publisher: results from the engine stage to Redis through the outbox, and what was published.

One thread takes results in arrival order (frame order per source), writes them with the events that
are due (`Outbox.publish`: exactly once, fenced, retried while Redis is away) and counts what it
published per source: frames, faces, top expressions and the last frame's time, which metrics,
heartbeats and a fleet member's record read. When the engine stage ends it flushes the events still
queued. A Redis that lost a file's entries, or stays unreachable through the drain, fails the worker
(the supervisor restarts it, and the pass resumes).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import Counter

from affectstream.pipeline.frames.processor import stamp_latency
from affectstream.pipeline.runtime.batcher import STOP

BATCH = 256  # results per outbox call at most: one script call each, and events are not held back long


class Publisher:
    """Publishes `inbox`'s results until it closes with `STOP`.

    Args:
        outbox: The worker's `Outbox`.
        inbox: The engine stage's results.
        settled: Called with each batch once the outbox published or dropped it (`Intake.settled`).
        metrics: The worker's `WorkerMetrics`.
        halt: The worker's `Halt`.
        counts_lock: Held while the counts change (scrapes read them under it).
    """

    def __init__(
        self, outbox, inbox: queue.Queue, settled, metrics, halt, counts_lock: threading.Lock
    ) -> None:
        self._outbox = outbox
        self._inbox = inbox
        self._settled = settled
        self._metrics = metrics
        self._halt = halt
        self._counts_lock = counts_lock
        self.published = 0
        self.by_source: Counter[str] = Counter()
        self.faces_by_source: Counter[str] = Counter()
        self.expressions: Counter[tuple[str, str]] = Counter()  # (source, top expression) -> faces
        self.last_frame_ts: dict[str, float] = {}  # source -> capture time of its last published frame
        self.last_frame_mono: dict[str, float] = {}  # source -> the same frame's `mono` (ages are durations)

    def run(self) -> None:
        done = False
        try:
            while not done:
                batch = []
                with contextlib.suppress(queue.Empty):  # a short wait: events (a camera reconnecting) go out
                    batch.append(self._inbox.get(timeout=0.1))  # even when no frame comes
                while batch and len(batch) < BATCH:
                    try:
                        batch.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
                if batch and batch[-1] is STOP:
                    batch.pop()
                    done = True
                self._publish(batch)
            self._outbox.flush_events()
        except Exception as exc:
            self._halt.fail(exc, "publishing", trace=False)
            while not done and self._inbox.get() is not STOP:  # let the engine stage finish
                pass

    def _publish(self, batch: list) -> None:
        stamp_latency(batch)  # decode -> XADD, the latency consumers care about
        t = time.perf_counter()
        try:
            published = self._outbox.publish(batch)
        finally:
            self._settled(batch)
        if batch:
            self._metrics.stage_seconds.labels(stage="publish").observe(time.perf_counter() - t)
        with self._counts_lock:
            for r in published:
                self.by_source[r.source] += 1
                self.faces_by_source[r.source] += len(r.faces)
                for face in r.faces:
                    self.expressions[r.source, face.expr] += 1
                self.last_frame_ts[r.source] = r.ts
                self.last_frame_mono[r.source] = r.mono
            self.published += len(published)
        for r in published:
            self._metrics.latency_seconds.labels(source=r.source).observe(r.latency_ms / 1000.0)
