"""A worker's frame stages on their threads: prepare (one thread per detector) and the engine.

Both halves of the frame path are `FrameProcessor`'s (`prepare`, `complete`: the same calls an archive
job, `render` and the Python API make in one thread); here they overlap. Prepare threads take any
source's next frame (`pipeline.runtime.intake`), detect it on their own detector and, in frame order
per source (`SourceLane.in_order`), track and align it for the engine queue. The engine thread gathers
the faces of many frames into one engine call (`MicroBatcher`) and hands the results, in arrival order,
to the publisher (`pipeline.runtime.publisher`). A queue closes with `STOP`; the first failure of any
stage is kept in the worker's `Halt` and stops the others.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from affectstream.pipeline.runtime.batcher import STOP, MicroBatcher
from affectstream.pipeline.runtime.lanes import LaneAborted

log = logging.getLogger(__name__)


class Halt:
    """A worker's stop flag and the first failure of any of its stages."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.failed: BaseException | None = None

    def fail(self, exc: BaseException, where: str, *, trace: bool = True) -> None:
        """Record `exc` (the first one wins) and stop every stage; `trace`: log its traceback (not for
        an expected failure such as Redis staying away)."""
        if self.failed is None:
            self.failed = exc
        log.error("%s failed: %s", where, exc, exc_info=exc if trace else None)
        self.stop.set()

    def is_failed(self) -> bool:
        return self.failed is not None


class PrepareStage:
    """detect -> track -> align, one thread per detector; the last thread to end closes `out`."""

    def __init__(self, processor, intake, outbox, out: queue.Queue, metrics, halt: Halt) -> None:
        self._processor = processor
        self._intake = intake
        self._outbox = outbox
        self._out = out
        self._metrics = metrics
        self._halt = halt
        self._idle = [threading.Event() for _ in processor.detectors]  # set while a thread waits for frames
        self._running = len(self._idle)
        self._lock = threading.Lock()

    def threads(self) -> list[threading.Thread]:
        # Each thread starts its round robin at another source, so they spread over the sources.
        return [
            threading.Thread(target=self._loop, args=(detector, self._idle[i], i), name=f"prepare-{i}")
            for i, detector in enumerate(self._processor.detectors)
        ]

    def idle(self) -> bool:
        """Whether every prepare thread waits for frames (nothing can reach the engine queue soon)."""
        return all(e.is_set() for e in self._idle)

    def _loop(self, detector, idle: threading.Event, cursor: int) -> None:
        try:
            while not self._intake.ended(self._halt.stop.is_set()):
                taken, cursor = self._intake.take(cursor, idle)
                if taken is None:
                    continue
                idle.clear()
                t = time.perf_counter()
                lane, frame = taken.lane, taken.frame
                if lane.source.spec.live and self._outbox.stalled:
                    # The newest frame is what counts once Redis is back.
                    self._intake.skip(taken, "redis_unavailable", self._halt.is_failed)
                    continue
                detections = (
                    detector.detect(frame.image, lane.context.detector_input) if taken.detect else None
                )
                # In frame order per source: the tracker needs it, and the engine keeps it.
                with lane.in_order(taken.seq, aborted=self._halt.is_failed):
                    self._put(self._processor.prepare(frame, lane.context, detections))
                self._metrics.stage_seconds.labels(stage="prepare").observe(time.perf_counter() - t)
        except LaneAborted:
            pass  # another prepare thread failed first and reported it
        except BaseException as exc:
            self._halt.fail(exc, "prepare stage")
        finally:
            idle.set()
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self._out.put(STOP)

    def _put(self, item) -> None:
        """Hand a prepared frame to the engine stage, waiting for room. While Redis refuses writes the
        stages behind wait too: the cameras' frames that arrive meanwhile are skipped here, counted as
        `redis_unavailable` (else their buffers would replace them unread, and they would read `stale`)."""
        while True:
            try:
                self._out.put(item, timeout=0.05)
                return
            except queue.Full:
                if self._outbox.stalled:
                    self._intake.discard_live_buffers("redis_unavailable")


class EngineStage:
    """engine -> finish -> smooth for batches of prepared frames, results to `out` in arrival order.

    Args:
        batch: The `batch:` config section (faces per engine call, how long a batch waits for more).
        live: Cameras are among the sources: a batch waits `max_wait_ms` for more faces; archives wait
            `file_max_wait_ms`, longer: nobody watches their latency, and at ~1 face per frame a 10 ms wait
            gives engine calls of 1-2 faces (docs/bench.md: `batch.file_max_wait_ms`).
    """

    def __init__(
        self, processor, inbox: queue.Queue, out: queue.Queue, metrics, halt: Halt, batch, *, live: bool
    ):
        self._processor = processor
        self._inbox = inbox
        self._out = out
        self._metrics = metrics
        self._halt = halt
        self._max_faces = batch.max_batch
        self._wait_ms = batch.max_wait_ms if live else batch.file_max_wait_ms
        self._snapshots = None
        self._batcher: MicroBatcher

    def connect(self, *, producer_idle, snapshots=None) -> None:
        """`producer_idle`: whether the prepare stage waits for frames (`MicroBatcher`); `snapshots`: a
        `SnapshotWriter` offered every frame with its result, or None."""
        self._snapshots = snapshots
        self._batcher = MicroBatcher(
            self._inbox, max_faces=self._max_faces, max_wait_ms=self._wait_ms, producer_idle=producer_idle
        )

    def run(self) -> None:
        try:
            while batch := self._batcher.next_batch():
                t = time.perf_counter()
                results = self._processor.complete(batch)
                self._metrics.stage_seconds.labels(stage="engine").observe(time.perf_counter() - t)
                self._metrics.engine_call(sum(len(p.faces) for p in batch))
                for prepared, result in zip(batch, results, strict=True):
                    if self._snapshots is not None:
                        self._snapshots.offer(prepared.frame.image, result)
                    self._out.put(result)
        except BaseException as exc:
            self._halt.fail(exc, "engine stage")
            while self._batcher.next_batch():  # unblock the prepare threads until they send STOP
                pass
        finally:
            self._out.put(STOP)
