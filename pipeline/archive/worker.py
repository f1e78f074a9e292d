"""`archive work`: worker processes that take jobs from the queue until stopped (or until it is empty).

Any number of these may run, on any number of machines, against one Redis. SIGTERM or SIGINT stops a
worker at the next chunk boundary: what it computed is published, and its job goes straight back to the
queue for another worker to resume. A worker killed outright leaves its job pending; once the job has
been idle for `idle_timeout_s`, another worker takes it over (XAUTOCLAIM) and resumes it. With more than
one process, `pipeline.runtime.supervisor` starts, restarts and stops them, as it does `run`'s workers.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from functools import partial

from affectstream.engines.errors import EngineError
from affectstream.pipeline.archive import jobs
from affectstream.pipeline.archive.params import JobParams
from affectstream.pipeline.archive.run import JobFailed, JobLost, JobReleased, run_job
from affectstream.pipeline.errors import AffectstreamError
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.runtime.heartbeat import clear_heartbeat, write_heartbeat
from affectstream.pipeline.streams.keys import process_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs (what it computes is fixed by each job's `JobParams`).

    Attributes:
        redis_url: The queue's Redis.
        detector: Detector for jobs that name none (path or pack name; empty: $AFFECTSTREAM_DETECTOR).
        engine: Engine backend name (`engines.create_engine`).
        threads: ONNX Runtime threads per process for detector and engine (0: cores / processes).
        idle_timeout_s: A job whose worker has been silent this long is taken over.
        max_attempts: Claims of one job before it is marked failed (its workers keep dying).
        until_empty: Exit 0 once no job is queued or running.
        poll_s: How long one wait for a new job blocks.
        restart_backoff_s: Wait before restarting a crashed worker process (`archive work -j N`).
    """

    redis_url: str
    detector: str = ""
    engine: str = "onnxruntime"
    threads: int = 0
    idle_timeout_s: float = 60.0
    max_attempts: int = 3
    until_empty: bool = False
    poll_s: float = 1.0
    restart_backoff_s: float = 1.0


class ProcessorCache:
    """One `FrameProcessor` per distinct (detector, model, detector size, detect_every), built on first use."""

    def __init__(self, opts: WorkerOptions) -> None:
        self.opts = opts
        self._built: dict[tuple, object] = {}

    def __call__(self, params: JobParams):
        from affectstream.engines import create_engine
        from affectstream.pipeline.errors import DetectorError
        from affectstream.pipeline.frames.build import load_detectors
        from affectstream.pipeline.frames.detector_files import configured_detector
        from affectstream.pipeline.frames.processor import FrameProcessor

        detector = params.detector or configured_detector(self.opts.detector)
        key = (detector, params.model, params.det_size, params.detect_every)
        if key not in self._built:
            threads = self.opts.threads or 1
            # A part the job named is the job's problem (fail it); a worker default is this worker's
            # (stop it, and leave the job to workers that are set up right).
            # One single-threaded detector per core of this process: `in_order` detects that many frames
            # at once while the engine runs (the job's results are the same as one frame at a time).
            try:
                dets = load_detectors(detector, count=threads, input_size=(params.det_size, params.det_size))
            except DetectorError as exc:
                if params.detector:
                    raise JobFailed(f"the job's detector cannot be loaded: {exc}") from exc
                raise
            options = {"threads": threads} if self.opts.engine == "onnxruntime" else {}
            try:
                engine = create_engine(self.opts.engine, params.model, **options)
            except EngineError as exc:
                if params.model not in ("", "default"):
                    raise JobFailed(f"the job's model cannot be loaded: {exc}") from exc
                raise
            self._built[key] = FrameProcessor(dets, engine, detect_every=params.detect_every)
        return self._built[key]


def _beat(client, consumer: str, job: str, published: int, ttl_s: float) -> None:
    write_heartbeat(client, consumer, int(ttl_s * 1000), published=published, sources=[], archive_job=job)


def work_loop(opts: WorkerOptions, stop: threading.Event) -> int:
    """Claim and run jobs until `stop` is set (or the queue is empty with `until_empty`); returns 0."""
    from affectstream.pipeline.streams.connection import connect

    client = connect(opts.redis_url)
    consumer = process_id()  # unique per process and readable in `archive status`
    cache = ProcessorCache(opts)
    idle_ms = int(opts.idle_timeout_s * 1000)
    done = 0
    log.info("archive worker %s: waiting for jobs", consumer)
    while not stop.is_set():
        _beat(client, consumer, "", done, opts.idle_timeout_s)
        job = jobs.claim(
            client,
            consumer,
            idle_ms=idle_ms,
            block_ms=int(opts.poll_s * 1000),
            max_attempts=opts.max_attempts,
        )
        if job is None:
            if opts.until_empty and jobs.queue_empty(client):
                log.info("archive worker %s: queue empty, %d job(s) done here", consumer, done)
                break
            continue
        log.info("job %s (%s): attempt %d on %s", job.id, job.path, job.attempts, consumer)
        _beat(client, consumer, job.id, done, opts.idle_timeout_s)
        try:
            summary = run_job(
                client,
                job,
                cache,
                consumer=consumer,
                stop=stop,
                touch_every_s=opts.idle_timeout_s / 4,
                heartbeat=partial(_beat, client, consumer, job.id, done, opts.idle_timeout_s),
            )
            done += 1
            log.info("job %s done: %d frames -> %s", job.id, summary["frames"], job.out)
        except JobFailed as exc:
            log.warning("job %s failed: %s", job.id, exc)
            jobs.fail(client, job, str(exc))
        except JobReleased:
            log.info("job %s handed back to the queue (worker stopping)", job.id)
            jobs.release(client, job)
        except JobLost:
            log.warning("job %s was taken over by another worker (this one stalled); dropping it", job.id)
        except (AffectstreamError, EngineError):
            jobs.release(client, job)  # this worker is misconfigured (detector, model, backend): not the job
            raise
        except Exception as exc:
            import redis

            if isinstance(exc, redis.RedisError):
                raise  # Redis trouble is not the job's fault: leave it pending for another worker
            log.exception("job %s: unexpected error", job.id)
            jobs.fail(client, job, mask_text(f"internal error: {type(exc).__name__}: {exc}"))
    clear_heartbeat(client, consumer)
    return 0


def work(opts: WorkerOptions, processes: int = 1) -> int:
    """Run `processes` workers (1: in this process); returns 0 when all stopped cleanly, else 1."""
    from affectstream.pipeline.runtime.supervisor import ProcessGroup, Slot, stop_on_signals

    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if not opts.threads:
        opts = replace(opts, threads=max(1, (os.cpu_count() or 1) // processes))
    if processes == 1:
        stop = threading.Event()
        stop_on_signals(stop)  # the chunk in hand is finished and its job handed back
        return work_loop(opts, stop)
    slots = [Slot(f"archive-{i}", work_loop, (opts,)) for i in range(processes)]
    if ProcessGroup(slots, restart_backoff_s=opts.restart_backoff_s).run():
        return 0
    log.error(
        "archive workers %s exited with errors", [s.name for s in slots if s.process and s.process.exitcode]
    )
    return 1
