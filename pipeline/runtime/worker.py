"""One worker process: the wiring of its parts, from its sources' readers to Redis.

    intake (readers, lanes) -> prepare stage -> engine stage -> publisher -> outbox -> Redis

Each part is its own small class in `pipeline.runtime`: `Intake` (sources, the next frame, each frame's
account), `PrepareStage` and `EngineStage` (the frame path's halves on their threads), `Publisher`, the
`Outbox` (`pipeline.streams`: exactly-once writes, events, drops by reason), heartbeats, snapshots and
metrics. The worker builds them, connects them with bounded queues (PyAV, OpenCV and ONNX Runtime release
the GIL, so decoding, detection, inference and Redis writes overlap), starts and stops them in order and
turns their outcome into an exit status. SIGTERM stops taking new frames; every frame already taken from
a source is still inferred and published first.

Sources come and go while it runs (`add_source`, `remove_source`) as a fleet member's claim loop
(`pipeline.fleet.member`, a thread of this process) claims, releases and loses cameras. Every frame is
accounted for, per source: decoded = published + dropped{reason} + in flight (`pipeline.runtime.accounts`).

Exit status: 0 when every frame taken was published and no source failed; `EXIT_SOURCES_FAILED` when
sources failed for good (`pipeline.runtime.failures`: restarting would not help); `EXIT_CANNOT_RUN` when a
model cannot load; 1 when a stage failed (the supervisor restarts the worker; its files' passes resume).
About 300 lines, on purpose: every part is built, connected, started and stopped here, in one order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping

from affectstream.pipeline.errors import EXIT_SOURCES_FAILED
from affectstream.pipeline.runtime.accounts import WorkerAccounts, build_facts, log_accounting
from affectstream.pipeline.runtime.failures import SourceFailures
from affectstream.pipeline.runtime.heartbeat import Heartbeat
from affectstream.pipeline.runtime.intake import Intake
from affectstream.pipeline.runtime.metrics import WorkerMetrics, WorkerReading
from affectstream.pipeline.runtime.publisher import Publisher
from affectstream.pipeline.runtime.snapshots import SnapshotWriter
from affectstream.pipeline.runtime.stages import EngineStage, Halt, PrepareStage
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import heartbeat_ttl_s
from affectstream.pipeline.streams.outbox import Outbox
from affectstream.pipeline.streams.server_watch import ServerWatch
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
        fences: Source name -> the run's writer lease of it (`pipeline.streams.writer_leases`): its entries
            are written only while the run holds it.
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
        # The outbox writes through this client: its watch tells it when a connection met another server
        # (a failover, a restart) so it checks its streams' tails then rather than on every write.
        self._server_watch = ServerWatch()
        self.redis = connect(redis_url, watch=self._server_watch)
        self.passes = dict(passes or {})
        self.fences = dict(fences or {})
        self.metrics = WorkerMetrics(read=self.reading)
        self._on_metrics_port = metrics
        self._halt = Halt(stop or threading.Event())
        self._fleet = cfg.fleet.enabled  # runs until stopped, sources come and go
        self._failures = SourceFailures(
            lambda source: self._intake.stop_reading(source),
            report,
            files={spec.name for spec in self.specs if not spec.live},
            fenced_sources=set(self.fences),
        )
        self._heartbeat = Heartbeat(
            self.redis,
            worker_id,
            int(heartbeat_ttl_s(cfg.workers.stale_after_s) * 1000),
            self._beat_fields,
            interval_s=cfg.workers.heartbeat_s,
            stop=self._halt.stop,
        )
        self._sources_lock = threading.Lock()  # one add or remove at a time
        self._counts_lock = threading.Lock()  # what scrapes read: the publisher's counts, retired sources
        self._prepared: queue.Queue = queue.Queue(maxsize=4 * cfg.batch.max_batch)
        self._results: queue.Queue = queue.Queue(maxsize=8 * cfg.batch.max_batch)
        self._accounts: WorkerAccounts | None = None
        # Made by `run` once the models are loaded, before any source starts.
        self.outbox: Outbox
        self._intake: Intake
        self._publisher: Publisher

    def stop(self) -> None:
        self._halt.stop.set()

    @property
    def failed(self) -> BaseException | None:
        return self._halt.failed

    @property  # what a fleet member reads: its cameras, their published counts and last frames
    def source_names(self) -> list[str]:
        return list(self._intake.lanes)

    @property
    def published_by_source(self):
        return self._publisher.by_source

    @property
    def last_frame_ts(self) -> dict[str, float]:
        return self._publisher.last_frame_ts

    @property
    def last_frame_mono(self) -> dict[str, float]:
        return self._publisher.last_frame_mono

    def fenced(self) -> list[tuple[str, str]]:
        """(source, holder) of every fenced write of a fleet camera since the last call."""
        return self._failures.fenced()

    def _on_event(self, source: str, kind: str, detail: dict) -> None:
        """Reader threads' events: queued in the outbox, published in order with the frames."""
        self._failures.on_event(source, kind, detail)
        self.outbox.add_event(source, kind, detail)

    # -- sources coming and going -----------------------------------------------------------------
    def add_source(self, spec, fence: Fence | None = None, first: tuple[str, dict] | None = None) -> None:
        """Start reading `spec` (any thread, while `run` runs); its entries are written only while the
        fence `fence` holds its token; `first` (kind, detail) is its first event."""
        with self._sources_lock:
            if spec.name in self._intake.lanes:
                raise ValueError(f"source {spec.name!r} is already running in {self.worker_id}")
            self.outbox.add_source(spec, fence)
            try:
                if first is not None:
                    self.outbox.add_event(spec.name, *first)
                self._intake.start(spec)
            except BaseException:
                self.outbox.remove_source(spec.name)
                raise

    def remove_source(
        self, name: str, *, drain: bool, then: tuple[str, dict] | None = None, timeout_s: float = 5.0
    ) -> int:
        """Stop `name` (any thread, while `run` runs) and forget it.

        `drain` (the camera is released): every frame already taken is published, then the event `then`,
        all still under its fence, before this returns. Else (the camera is lost): its frames in flight are
        dropped, never published, and `then` is written without a fence. Returns the frames left
        unpublished (those in flight when not draining, or when draining took longer than `timeout_s`).
        """
        with self._sources_lock:
            return self._intake.remove(
                name, drain=drain, then=then, timeout_s=timeout_s, failed=self._halt.is_failed
            )

    # -- what it counted (`pipeline.runtime.accounts`) ------------------------------------------
    def reading(self) -> WorkerReading:
        return self._accounts.reading() if self._accounts else WorkerReading()  # None: models loading

    def accounting(self) -> dict[str, dict]:
        return self._accounts.accounting() if self._accounts else {}

    def _beat_fields(self) -> dict:
        member = (self.cfg.fleet.member or None) if self._fleet else None
        return self._accounts.beat_fields(member) if self._accounts else {"published": 0, "sources": []}

    def _build_parts(self):
        """Load the models, then make the parts and connect them; returns (processor, snapshots, threads)."""
        from affectstream.pipeline.frames.build import per_core, processor_from_config

        # Every model is loaded before the first frame is read.
        processor = processor_from_config(self.cfg, detectors=per_core())
        on = self.cfg.snapshots.enabled
        snapshots = SnapshotWriter(connect(self.redis_url), self.cfg.snapshots) if on else None
        self.outbox = Outbox(
            self.redis,
            self.worker_id,
            (),
            self.passes,
            maxlen=self.cfg.redis.maxlen,
            min_replicas_acked=self.cfg.redis.min_replicas_acked,
            retention_s=self.cfg.redis.retention_s,
            stopping=self._halt.stop.is_set,
            drain_s=DRAIN_RETRY_S,
            on_source_failed=self._failures.on_publish_failed,
            drained=lambda source: self._intake.drained(source),
            on_fenced=self._failures.on_fenced,
            track_updates_s=self.cfg.tracks.update_every_s if self.cfg.tracks.enabled else None,
            watch=self._server_watch,
        )
        self._intake = Intake(
            processor,
            self.outbox,
            self._on_event,
            smooth_window=self.cfg.smoothing.window,
            fleet=self._fleet,
            counts_lock=self._counts_lock,
        )
        self._publisher = Publisher(
            self.outbox, self._results, self._intake.settled, self.metrics, self._halt, self._counts_lock
        )
        self._accounts = WorkerAccounts(
            self._intake,
            self._publisher,
            self.outbox,
            self._counts_lock,
            self.metrics,
            queues={"prepared": self._prepared, "results": self._results},
            max_batch=self.cfg.batch.max_batch,
            build=build_facts(processor),
        )
        prepare = PrepareStage(processor, self._intake, self.outbox, self._prepared, self.metrics, self._halt)
        live = self._fleet or any(spec.live for spec in self.specs)
        engine = EngineStage(
            processor, self._prepared, self._results, self.metrics, self._halt, self.cfg.batch, live=live
        )
        engine.connect(producer_idle=prepare.idle, snapshots=snapshots)
        threads = [
            *prepare.threads(),
            threading.Thread(target=engine.run, name="engine"),
            threading.Thread(target=self._publisher.run, name="publish"),
        ]
        return processor, snapshots, threads

    def run(self) -> int:  # noqa: PLR0915 -- the start and stop order of the parts, read in one place
        """Run to completion; 0 when every frame taken was published, 1 when a stage failed."""
        processor, snapshots, threads = self._build_parts()
        if self._on_metrics_port is not None:
            self._on_metrics_port(self.metrics.serve("127.0.0.1", 0))
        if snapshots is not None:
            snapshots.start()
        self._heartbeat.beat()
        for spec in self.specs:
            self.outbox.add_source(spec, self.fences.get(spec.name))
            self._intake.start(spec)
        member = None
        if self._fleet:
            from affectstream.pipeline.fleet.member import Member

            member = Member(self, self.cfg.fleet, self.redis_url)
        prepare = [t for t in threads if t.name.startswith("prepare-")]
        for t in threads:
            t.start()
        self._heartbeat.start()
        if member is not None:
            member.start()
        for t in prepare:  # prepare ends at EOF of every source, on stop(), or on failure
            _join(t)
        if member is not None:
            member.stop_claiming()  # it keeps beating (its fences stand) while the last frames drain
        self._intake.stop_all()
        for t in threads[len(prepare) :]:
            _join(t)
        self._intake.say_stopped({spec.name for spec in self.specs}, flush=not self.failed)
        if snapshots is not None:
            snapshots.close()
        if member is not None:
            member.close()  # `released` for each camera, then its fences cleared: the takers start now
        processor.engine.close()  # device buffers freed now, in their CUDA context, not by destructors at exit
        self._halt.stop.set()
        if self.failed:
            self._intake.abandon("worker_failed")
        self._heartbeat.beat()
        self.redis.close()
        log.info(
            "worker %s: took %d frames, published %d",
            self.worker_id,
            self._intake.taken,
            self._publisher.published,
        )
        log_accounting(self.worker_id, self.accounting())
        if self.outbox.lost_events:
            log.error("worker %s: %d events could not be published", self.worker_id, self.outbox.lost_events)
        if self.failed:
            return 1
        return EXIT_SOURCES_FAILED if (self._failures.reader_errors or self.outbox.failed) else 0


def _join(thread: threading.Thread) -> None:
    """Join in slices: a signal delivered to another thread only runs its Python handler when the
    main thread executes bytecode, which a join without timeout never does."""
    while thread.is_alive():
        thread.join(0.2)
