"""One worker process: its sources' reader threads -> prepare -> micro-batched engine -> publisher.

Stages run in threads joined by bounded queues (PyAV, OpenCV and ONNX Runtime release the GIL), so
decoding, detection, inference and Redis writes overlap. SIGTERM stops taking new frames; every
frame already taken from a source is still inferred and published before the process exits.

Per-source state (tracker, detect cadence, smoother) lives in each source's `SourceContext`, owned by
its lane; the stages (`FrameProcessor`) are built once and shared by all sources.

Sources can be added and removed while it runs (`add_source`, `remove_source`): a fleet member's claim
loop (`pipeline.fleet.member`, a thread of this process) does so as it claims, releases and loses camera
leases; a fleet worker runs until stopped, with no source at all if there is none to claim.

Every frame is accounted for, per source: decoded = published + dropped{reason} (`outbox.DROP_REASONS`)
+ in flight, the last 0 once the worker ends; `accounting()` reads it, metrics and heartbeats export it,
and the worker logs it per source when it ends (`accounting {...}`, what the fault tests check).

Exit status (`pipeline.runtime.supervisor`): 0 when every frame taken was published and no source failed;
`EXIT_SOURCES_FAILED` when sources failed for good (a file that cannot be read, a stream key Redis
refuses: restarting would not help), reported to the supervisor by name; `EXIT_CANNOT_RUN` when a model
or detector cannot load; 1 when a stage failed (the supervisor restarts the worker, which resumes its
files' passes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Mapping

from affectstream.pipeline.errors import EXIT_SOURCES_FAILED
from affectstream.pipeline.frames.processor import FrameProcessor, stamp_latency
from affectstream.pipeline.runtime.batcher import STOP, MicroBatcher
from affectstream.pipeline.runtime.metrics import WorkerMetrics, WorkerReading
from affectstream.pipeline.runtime.snapshots import SnapshotWriter
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import heartbeat_key, heartbeat_ttl_s, host_id
from affectstream.pipeline.streams.outbox import Outbox
from affectstream.pipeline.streams.writer import Fence

log = logging.getLogger(__name__)

DRAIN_RETRY_S = 30.0  # how long a stopping worker keeps retrying an unreachable Redis


class Worker:
    """Runs `specs` (a list of `SourceSpec`) until the finite ones end or `stop()` is called.

    Args:
        cfg: The validated `Config`.
        specs: The sources this worker owns.
        worker_id: Id unique per run and host (heartbeat key, logs, the `worker` field of entries).
        redis_url: Where to publish.
        passes: File source name -> pass base of this run (`entry_ids.PassIds`): a restarted worker
            resumes its run's pass; files not named here start a new pass.
        fences: Source name -> the run's writer lease of it (`pipeline.streams.writer_leases`): its entries are written
            only while the run holds it.
        metrics: Serve this worker's metrics on an ephemeral loopback port and call this with the port
            (the supervisor's endpoint merges them); None = no metrics endpoint.
        stop: Set to stop (the signal handlers set it); a new event when None.
        report: Called with (source, reason) for each source that failed for good.
    """

    def __init__(
        self,
        cfg,
        specs,
        worker_id: str,
        redis_url: str,
        *,
        passes: dict[str, int] | None = None,
        fences: Mapping | None = None,
        metrics=None,
        stop: threading.Event | None = None,
        report=None,
    ) -> None:
        self.cfg = cfg
        self.specs = list(specs)
        self.worker_id = worker_id
        self.redis_url = redis_url
        self.redis = connect(redis_url)
        self.passes = dict(passes or {})
        self.fences = dict(fences or {})
        self.metrics = WorkerMetrics(read=self.reading)
        self._on_metrics_port = metrics
        self._build: dict[str, str] = {}  # version, model, backend: set by `run` once the engine is loaded
        self._snapshots: SnapshotWriter | None = None  # when `snapshots.enabled`
        self.outbox: Outbox  # made by `run`, before any source starts
        self.source_errors: dict[str, str] = {}  # file sources whose reader failed (name -> reason)
        self._report = report
        self._inflight: Counter[str] = Counter()  # frames taken, not yet published or dropped
        self._lanes: dict = {}  # source name -> SourceLane; replaced, never mutated (threads iterate it)
        self._processor: FrameProcessor  # made by `run`: what `add_source` builds a lane's state with
        self._fleet = cfg.fleet.enabled  # runs until stopped, sources come and go
        self._fenced: queue.SimpleQueue = queue.SimpleQueue()  # sources whose lease turned out lost
        self._sources_lock = threading.Lock()  # one add or remove at a time
        self._files = {spec.name for spec in self.specs if not spec.live}
        self._stop = stop or threading.Event()
        self._idle: list[threading.Event] = []  # per prepare thread: set while it waits for frames
        self._lock = threading.Lock()
        self._preparing = 0  # prepare threads still running; the last one to end sends STOP
        self._prepared: queue.Queue = queue.Queue(maxsize=4 * cfg.batch.max_batch)
        self._results: queue.Queue = queue.Queue(maxsize=8 * cfg.batch.max_batch)
        self.taken = 0  # frames taken from sources and accepted for processing
        # Counters of sources removed while running (`_reader_counts`): a camera claimed again gets a new
        # reader that counts from 0, and its totals in this worker must not go back.
        self._retired: dict[str, Counter[str]] = {}
        self._counts_lock = threading.Lock()  # published / faces / expressions, read by scrapes
        self.published = 0
        self.published_by_source: Counter[str] = Counter()
        self.faces_by_source: Counter[str] = Counter()
        self.expressions: Counter[tuple[str, str]] = Counter()  # (source, top expression) -> faces
        self.last_frame_ts: dict[str, float] = {}  # source -> capture time of its last published frame
        self.last_frame_mono: dict[str, float] = {}  # source -> the same frame's `mono` (ages are durations)
        self.failed: BaseException | None = None

    def stop(self) -> None:
        self._stop.set()

    # -- events and failures ----------------------------------------------------------------------
    def _on_event(self, source: str, kind: str, detail: dict) -> None:
        """Reader threads' events: queued in the outbox, published in order with the frames."""
        if kind == "error" and source in self._files:
            self.source_errors[source] = str(detail.get("reason", "error"))
            self._failed_for_good(source, self.source_errors[source])
        self.outbox.add_event(source, kind, detail)

    def _on_publish_failed(self, source: str, reason: str) -> None:
        """A stream of `source` refuses writes for good: stop reading it; the others go on."""
        lane = self._lanes.get(source)
        if lane is not None:
            lane.finished = True
            lane.source.stop(timeout=0)
        self._failed_for_good(source, reason)

    def _on_fenced(self, source: str, holder: str) -> None:
        """A write of `source` was fenced (its lease is lost): stop reading it now. A fleet camera's claim
        loop (`fenced()`) does the rest; a configured source fails: another run writes its stream now."""
        lane = self._lanes.get(source)
        if lane is not None:
            lane.finished = True
            lane.source.stop(timeout=0)
        if source in self.fences:
            self._failed_for_good(
                source,
                f"run {holder or 'unknown'} took over writing {source}'s streams; "
                "this run stopped writing them",
            )
        else:
            self._fenced.put((source, holder))

    def fenced(self) -> list[tuple[str, str]]:
        """(source, holder) of every fenced write since the last call."""
        out = []
        while not self._fenced.empty():
            out.append(self._fenced.get())
        return out

    def _failed_for_good(self, source: str, reason: str) -> None:
        if self._report is not None:
            self._report(source, reason)

    def _drained(self, source: str) -> bool:
        lane = self._lanes.get(source)
        with self._lock:
            return lane is not None and lane.finished and self._inflight[source] == 0

    def _settled(self, results) -> None:
        with self._lock:
            for r in results:
                self._inflight[r.source] -= 1

    def _count_taken(self, source: str) -> None:
        with self._lock:
            self.taken += 1
            self._inflight[source] += 1

    # -- sources coming and going -----------------------------------------------------------------
    @property
    def source_names(self) -> list[str]:
        return list(self._lanes)

    def add_source(self, spec, fence: Fence | None = None, first: tuple[str, dict] | None = None) -> None:
        """Start reading `spec` (any thread, while `run` runs); its entries are written only while the
        lease `fence` holds its token; `first` (kind, detail) is its first event."""
        with self._sources_lock:
            if spec.name in self._lanes:
                raise ValueError(f"source {spec.name!r} is already running in {self.worker_id}")
            self.outbox.add_source(spec, fence)
            try:
                if first is not None:
                    self.outbox.add_event(spec.name, *first)
                self._start_lane(spec)
            except BaseException:
                self.outbox.remove_source(spec.name)
                raise

    def _start_lane(self, spec) -> None:
        from affectstream.pipeline.runtime.lanes import SourceLane
        from affectstream.pipeline.sources import open_source

        context = self._processor.new_source(
            spec.name, smooth_window=self.cfg.smoothing.window, live=spec.live
        )
        lane = SourceLane(
            open_source(spec, self._on_event),
            context,
            self.outbox.resume_after.get(spec.name, -1),
            on_take=self._count_taken,
        )
        self._lanes = {**self._lanes, spec.name: lane}
        lane.source.start()

    def remove_source(
        self, name: str, *, drain: bool, then: tuple[str, dict] | None = None, timeout_s: float = 5.0
    ) -> int:
        """Stop `name` (any thread, while `run` runs) and forget it.

        `drain` (the camera is released): every frame already taken is published, then the event `then`,
        all still under its fence, before this returns. Else (the lease is lost): its frames in flight are
        dropped, never published, and `then` is written without a fence. Returns the frames left
        unpublished (those in flight when not draining, or when draining took longer than `timeout_s`).
        """
        with self._sources_lock:
            lane = self._lanes.get(name)
            if lane is None:
                return 0
            lane.close()  # every frame taken from it is counted in _inflight from here on
            lane.source.stop(timeout=0)
            deadline = time.monotonic() + timeout_s
            if drain:
                while self._inflight[name] > 0 and time.monotonic() < deadline and not self.failed:
                    time.sleep(0.01)
                if then is not None:
                    self.outbox.add_event(name, *then)
                    then = None
                while self.outbox.pending_events(name) and time.monotonic() < deadline and not self.failed:
                    time.sleep(0.01)
            self._discard_buffered(lane, "shutdown")  # decoded, never taken
            # With the lanes, so that no reading counts the source twice or not at all.
            with self._counts_lock:
                self._retired[name] = self._retired.get(name, Counter()) + _reader_counts(lane)
                self._lanes = {k: v for k, v in self._lanes.items() if k != name}
            left = max(0, self._inflight[name])
            self.outbox.remove_source(name, then)
            return left

    # -- stages ---------------------------------------------------------------------------------

    def _take(self, cursor: int, idle: threading.Event):
        """The next frame of any source, round robin from `cursor`; None when none is ready yet.

        Returns (taken, next cursor).
        """
        active = [lane for lane in self._lanes.values() if not lane.finished]
        for k in range(len(active)):
            i = (cursor + k) % len(active)
            if taken := active[i].take(0.0):
                return taken, i + 1
        idle.set()  # about to wait: the batcher need not wait for this thread
        # One source left: block on it briefly (lowest latency for a single camera); else poll.
        if len(active) == 1 and (taken := active[0].take(0.05)):
            return taken, cursor
        time.sleep(0.002 if active else 0.05)  # a fleet member with no camera: no busy loop
        return None, cursor

    def _ended(self) -> bool:
        """Whether the prepare stage is done: stopped, or (outside a fleet) every source finished."""
        return self._stop.is_set() or (
            not self._fleet and all(lane.finished for lane in self._lanes.values())
        )

    def _prepare_loop(self, processor, detector, idle: threading.Event, cursor: int) -> None:
        from affectstream.pipeline.runtime.lanes import LaneAborted

        try:
            while not self._ended():
                taken, cursor = self._take(cursor, idle)
                if taken is None:
                    continue
                idle.clear()
                t = time.perf_counter()
                lane, frame = taken.lane, taken.frame
                if lane.source.spec.live and self.outbox.stalled:
                    self._skip(
                        taken, "redis_unavailable"
                    )  # the newest frame is what counts once Redis is back
                    continue
                detections = (
                    detector.detect(frame.image, lane.context.detector_input) if taken.detect else None
                )
                with lane.in_order(taken.seq, aborted=lambda: self.failed is not None):
                    # in frame order per source: the tracker needs it, and the engine keeps it
                    self._put_prepared(processor.prepare(frame, lane.context, detections))
                self.metrics.stage_seconds.labels(stage="prepare").observe(time.perf_counter() - t)
        except LaneAborted:
            pass  # another prepare thread failed first and reported it
        except BaseException as exc:
            self.failed = exc
            self._stop.set()  # the other prepare threads end too, as a single one would have
            log.exception("prepare stage failed")
        finally:
            idle.set()
            with self._lock:
                self._preparing -= 1
                last = self._preparing == 0
            if last:
                self._prepared.put(STOP)

    def _skip(self, taken, reason: str) -> None:
        """Drop a taken frame unprocessed, keeping its lane's order and its account."""
        with taken.lane.in_order(taken.seq, aborted=lambda: self.failed is not None):
            pass
        self.outbox.dropped.add(taken.lane.name, reason)
        with self._lock:
            self._inflight[taken.lane.name] -= 1

    def _put_prepared(self, item) -> None:
        """Hand a prepared frame to the engine stage, waiting for room. While Redis refuses writes the
        stages behind wait too: the cameras' frames that arrive meanwhile are skipped here, counted as
        `redis_unavailable` (else their buffers would replace them unread, and they would read `stale`)."""
        while True:
            try:
                self._prepared.put(item, timeout=0.05)
                return
            except queue.Full:
                if self.outbox.stalled:
                    for lane in self._lanes.values():
                        if lane.source.spec.live and not lane.finished:
                            self._discard_buffered(lane, "redis_unavailable")

    def _discard_buffered(self, lane, reason: str) -> None:
        """Count and discard the frames waiting in a source's buffer (never taken: no order to keep)."""
        left = 0
        while lane.source.get(0) is not None:
            left += 1
        if left:
            self.outbox.dropped.add(lane.name, reason, left)

    def _abandon_in_flight(self) -> None:
        """A failed worker's frames still in its queues will not be published by it: count them
        (`worker_failed`); its restart reads the pass again from what the stream holds."""
        with self._lock:
            left = {source: n for source, n in self._inflight.items() if n > 0}
            for source, n in left.items():
                self.outbox.dropped.add(source, "worker_failed", n)
                self._inflight[source] = 0

    def _engine_loop(self, processor) -> None:
        # Archives wait longer for fuller batches: nobody watches their latency, and at ~1 face per
        # frame a 10 ms wait gives engine calls of 1-2 faces (bench/: x1.04 frames/s with 100 ms).
        live = self._fleet or any(spec.live for spec in self.specs)
        wait_ms = self.cfg.batch.max_wait_ms if live else self.cfg.batch.file_max_wait_ms
        batcher = MicroBatcher(
            self._prepared,
            max_faces=self.cfg.batch.max_batch,
            max_wait_ms=wait_ms,
            producer_idle=lambda: all(e.is_set() for e in self._idle),
        )
        try:
            while batch := batcher.next_batch():
                t = time.perf_counter()
                results = processor.infer(batch)
                self.metrics.stage_seconds.labels(stage="engine").observe(time.perf_counter() - t)
                self.metrics.engine_call(sum(len(p.faces) for p in batch))
                for prepared, r in zip(batch, results, strict=True):  # in frame order per source (smoother)
                    lane = self._lanes.get(r.source)  # None: removed meanwhile (the outbox drops it)
                    r = lane.context.smooth(r) if lane is not None else r
                    if self._snapshots is not None:
                        self._snapshots.offer(prepared.frame.image, r)
                    self._results.put(r)
        except BaseException as exc:
            self.failed = exc
            log.exception("engine stage failed")
            self._stop.set()
            while batcher.next_batch():  # unblock the prepare threads until they send STOP
                pass
        finally:
            self._results.put(STOP)

    def _publish_loop(self) -> None:
        """Frames in arrival order, with the events that are due, until the engine stage ends; then
        the events still queued. A Redis that lost a file's entries, or stays unreachable through
        the drain, fails the worker (the supervisor restarts it, and the pass resumes)."""
        done = False
        try:
            while not done:
                batch = []
                with contextlib.suppress(queue.Empty):  # a short wait: events (a camera reconnecting) go out
                    batch.append(self._results.get(timeout=0.1))  # even when no frame comes
                while batch and len(batch) < 256:
                    try:
                        batch.append(self._results.get_nowait())
                    except queue.Empty:
                        break
                if batch and batch[-1] is STOP:
                    batch.pop()
                    done = True
                self._publish(batch)
            self.outbox.flush_events()
        except Exception as exc:
            self.failed = exc
            self._stop.set()
            log.error("publishing failed: %s", exc)
            while not done and self._results.get() is not STOP:  # let the engine stage finish
                pass

    def _publish(self, batch: list) -> None:
        stamp_latency(batch)  # decode -> XADD, the latency consumers care about
        t = time.perf_counter()
        try:
            published = self.outbox.publish(batch)
        finally:
            self._settled(batch)
        if batch:
            self.metrics.stage_seconds.labels(stage="publish").observe(time.perf_counter() - t)
        with self._counts_lock:
            for r in published:
                self.published_by_source[r.source] += 1
                self.faces_by_source[r.source] += len(r.faces)
                for face in r.faces:
                    self.expressions[r.source, face.expr] += 1
                self.last_frame_ts[r.source] = r.ts
                self.last_frame_mono[r.source] = r.mono
            self.published += len(published)
        for r in published:
            self.metrics.latency_seconds.labels(source=r.source).observe(r.latency_ms / 1000.0)

    def _heartbeat_loop(self) -> None:
        key = heartbeat_key(self.worker_id)
        while not self._stop.wait(self.cfg.workers.heartbeat_s):
            self._beat(key)

    def reading(self) -> WorkerReading:
        """This worker's counters and gauges now (metrics scrapes and heartbeats).

        Published and dropped counts are read before the sources' decoded counts, and a source counts a
        frame as decoded before it can be taken: so decoded >= published + dropped in every reading.
        """
        r = WorkerReading()
        outbox = getattr(self, "outbox", None)
        with self._counts_lock:
            lanes = self._lanes  # replaced, never mutated
            r.published = dict(self.published_by_source)
            r.faces = dict(self.faces_by_source)
            r.expressions = dict(self.expressions)
            retired = dict(self._retired)
            dropped = outbox.dropped.snapshot() if outbox is not None else Counter()
        counts = {name: _reader_counts(lane) for name, lane in lanes.items()}
        for name in retired.keys() | counts.keys():
            c = retired.get(name, Counter()) + counts.get(name, Counter())
            by_reason = {reason: c[reason] for reason in ("stale", "corrupt") if c[reason]}
            by_reason.update({reason: n for (source, reason), n in dropped.items() if source == name and n})
            state = lanes[name].source.state if name in lanes else "down"
            r.sources[name] = (c["decoded"], sum(by_reason.values()), c["reconnects"], state)
            r.dropped[name] = by_reason
        r.queues = {
            "prepared": (self._prepared.qsize(), self._prepared.maxsize),
            "results": (self._results.qsize(), self._results.maxsize),
        }
        if outbox is not None:
            r.queues["outbox_events"] = (outbox.pending_events(), 0)
        r.batch_fill = self.metrics.batch_fill(self.cfg.batch.max_batch)
        r.build = self._build
        return r

    def _say_stopped(self) -> None:
        """`stopped` for each configured source that did not end by itself (a stop, SIGTERM), written
        after its last frame; a fleet camera says `released` instead (its member does)."""
        static = {spec.name for spec in self.specs}
        stopped = [
            (name, lane)
            for name, lane in self._lanes.items()
            if name in static and lane.source.state not in ("eof", "error")
        ]
        for name, lane in stopped:
            self.outbox.add_event(name, "stopped", {"frames": lane.source.stats.decoded})
        if stopped and not self.failed:
            try:
                self.outbox.flush_events()
            except Exception as exc:  # its frames are all out; only the word "stopped" is missing
                log.warning("could not publish `stopped` events: %s", exc)

    def accounting(self) -> dict[str, dict]:
        """Per source: {decoded, published, dropped: {reason: n}, in_flight}; decoded = published +
        dropped + in_flight in every reading, in_flight 0 once the worker ended."""
        r = self.reading()
        with self._lock:
            inflight = dict(self._inflight)
        return {
            name: {
                "decoded": d,
                "published": r.published.get(name, 0),
                "dropped": r.dropped.get(name, {}),
                "in_flight": inflight.get(name, 0),
            }
            for name, (d, _x, _n, _state) in r.sources.items()
        }

    def _log_accounting(self) -> None:
        """One line per source with its account; an error when it does not add up (a frame lost unsaid)."""
        for name, a in sorted(self.accounting().items()):
            line = json.dumps({"worker": self.worker_id, "source": name, **a}, sort_keys=True)
            if a["decoded"] == a["published"] + sum(a["dropped"].values()) + a["in_flight"]:
                log.info("accounting %s", line)
            else:
                log.error("accounting does not add up %s", line)

    def _beat(self, key: str) -> None:
        r = self.reading()
        lanes = self._lanes
        stats = {
            name: {
                "decoded": d,
                "dropped": x,
                "dropped_by": r.dropped.get(name, {}),
                "reconnects": n,
                "state": state,
                "published": r.published.get(name, 0),
                "faces": r.faces.get(name, 0),
                "live": bool(lanes[name].source.spec.live) if name in lanes else None,
            }
            for name, (d, x, n, state) in r.sources.items()
        }
        try:
            # Expires well after `stale_after_s`: `health` still reports a hung worker as stale, and
            # the keys of past runs (ids are unique per run) do not pile up. `ttl_ms` lets a reader tell the
            # beat's age from the key's PTTL by Redis's clock alone (`pipeline.streams.liveness`); `ts` is data.
            ttl_ms = int(heartbeat_ttl_s(self.cfg.workers.stale_after_s) * 1000)
            self.redis.set(
                key,
                json.dumps(
                    {
                        "ts": time.time(),
                        "ttl_ms": ttl_ms,
                        "pid": os.getpid(),
                        "host": host_id(),
                        "published": self.published,
                        "member": (self.cfg.fleet.member or None) if self._fleet else None,
                        "sources": list(lanes),
                        "stats": stats,
                        "queues": {k: list(v) for k, v in r.queues.items()},
                    }
                ),
                px=ttl_ms,
            )
        except Exception as exc:
            log.warning("heartbeat failed: %s", exc)

    # -- main -----------------------------------------------------------------------------------
    def run(self) -> int:
        """Run to completion; 0 when every frame taken was published, 1 when a stage failed."""
        from affectstream.pipeline.frames.processor import processor_from_config

        processor = self._processor = processor_from_config(
            self.cfg, parallel=True
        )  # every model loaded before the first frame
        detectors = processor.detectors  # one prepare thread each
        self._build = {
            "version": _version(),
            "model": processor.engine.spec.model_id,
            "backend": type(processor.engine).__name__,
        }
        if self._on_metrics_port is not None:
            self._on_metrics_port(self.metrics.serve("127.0.0.1", 0))
        if self.cfg.snapshots.enabled:
            self._snapshots = SnapshotWriter(connect(self.redis_url), self.cfg.snapshots)
            self._snapshots.start()
        self._beat(heartbeat_key(self.worker_id))
        self.outbox = Outbox(
            self.redis,
            self.worker_id,
            (),
            self.passes,
            maxlen=self.cfg.redis.maxlen,
            stopping=self._stop.is_set,
            drain_s=DRAIN_RETRY_S,
            on_source_failed=self._on_publish_failed,
            drained=self._drained,
            on_fenced=self._on_fenced,
        )
        for spec in self.specs:
            self.outbox.add_source(spec, self.fences.get(spec.name))
            self._start_lane(spec)
        member = None
        if self._fleet:
            from affectstream.pipeline.fleet.member import Member

            member = Member(self, self.cfg.fleet, self.redis_url)
        self._idle = [threading.Event() for _ in detectors]
        self._preparing = len(detectors)
        # Each thread starts its round robin at another source, so they spread over the sources.
        prepare = [
            threading.Thread(
                target=self._prepare_loop, args=(processor, det, self._idle[i], i), name=f"prepare-{i}"
            )
            for i, det in enumerate(detectors)
        ]
        threads = [
            *prepare,
            threading.Thread(target=self._engine_loop, args=(processor,), name="engine"),
            threading.Thread(target=self._publish_loop, name="publish"),
        ]
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        for t in threads:
            t.start()
        beat.start()
        if member is not None:
            member.start()
        for t in prepare:  # prepare ends at EOF of every source, on stop(), or on failure
            _join(t)
        if member is not None:
            member.stop_claiming()  # it keeps renewing its leases while the last frames drain
        for lane in self._lanes.values():
            lane.source.stop()
            self._discard_buffered(lane, "shutdown")  # decoded, never taken
        for t in threads[len(prepare) :]:
            _join(t)
        self._say_stopped()
        if self._snapshots is not None:
            self._snapshots.close()
        if member is not None:
            member.close()  # `released` for each camera, then the leases deleted: the takers start now
        processor.engine.close()  # device buffers freed now, in their CUDA context, not by destructors at exit
        self._stop.set()
        if self.failed:
            self._abandon_in_flight()
        self._beat(heartbeat_key(self.worker_id))
        self.redis.close()
        log.info("worker %s: took %d frames, published %d", self.worker_id, self.taken, self.published)
        self._log_accounting()
        box = self.outbox
        if box.lost_events:
            log.error("worker %s: %d events could not be published", self.worker_id, box.lost_events)
        if self.failed:
            return 1
        return EXIT_SOURCES_FAILED if (self.source_errors or box.failed) else 0


def _reader_counts(lane) -> Counter[str]:
    """What a lane's reader counted: decoded (less the frames a resumed pass passed over: they are in the
    stream already, published by an earlier worker of the run), stale and corrupt drops, reconnects."""
    stats = lane.source.stats
    return Counter(
        decoded=stats.decoded - lane.skipped,
        stale=stats.dropped,
        corrupt=stats.corrupt,
        reconnects=stats.reconnects,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("affectstream")
    except PackageNotFoundError:
        return "unknown"


def _join(thread: threading.Thread) -> None:
    """Join in slices: a signal delivered to another thread only runs its Python handler when the
    main thread executes bytecode, which a join without timeout never does."""
    while thread.is_alive():
        thread.join(0.2)


def worker_main(
    cfg,
    specs,
    worker_id: str,
    redis_url: str,
    passes: dict[str, int],
    fences: dict,
    ports=None,
    failures=None,
    *,
    stop: threading.Event,
) -> int:
    """A worker process's target (`pipeline.runtime.supervisor`); `fences` the run's writer leases of `specs`
    (`pipeline.streams.writer_leases`); `ports` is a queue that receives (worker id,
    metrics port) once it serves its metrics (None: no metrics); `failures` one that receives (worker id,
    source, reason) for each source that failed for good."""
    from affectstream.pipeline.masking import register_url

    for url in [redis_url, *(spec.url for spec in specs)]:  # a spawned process starts with no known secret
        register_url(url)
    report = None if failures is None else (lambda source, reason: failures.put((worker_id, source, reason)))
    metrics = None if ports is None else (lambda port: ports.put((worker_id, port)))
    worker = Worker(
        cfg,
        specs,
        worker_id,
        redis_url,
        passes=passes,
        fences=fences,
        metrics=metrics,
        stop=stop,
        report=report,
    )
    return worker.run()
