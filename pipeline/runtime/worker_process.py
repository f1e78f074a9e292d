"""The entry point of a `run` worker process: what `pipeline.runtime.supervisor` starts in each slot.

A spawned process starts with nothing of its parent's but its arguments: it registers the URLs' secrets
for masking again, and turns the supervisor's queues into the worker's callbacks (its metrics port, the
sources that failed for good) before it builds and runs its `Worker`.
"""

from __future__ import annotations

import threading

from affectstream.pipeline.runtime.worker import Worker


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
