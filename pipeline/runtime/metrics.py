"""Prometheus metrics: one endpoint per `affectstream run`, served by the supervisor.

Each worker process keeps a private registry, served on an ephemeral loopback port that it reports to
the supervisor: its histograms, plus `WorkerCollector`, which reads the counters at scrape time from
where they live (the sources' own decoded/dropped/reconnect counters, the worker's published counts),
so that two numbers of one scrape are always consistent with each other. The supervisor's endpoint
(`metrics.port`) fetches every live worker's page when it is scraped, labels each sample with its
`worker` slot and merges the families (`WorkersCollector`), and adds whether each worker is up and how often
it was restarted. `FAMILIES` is the one list of what is exported (docs/monitoring.md).

The `worker` label is the slot (`w0`, `w1`, ...), not the worker id (`{host}-{pid}-w0`): a restarted worker or
a new run keeps its series, so the number of series stays bounded; the scrape's `instance` tells runs apart.

Over 300 lines on purpose: the one list of families and every collector that exports them stay together.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# `_created` series double every counter's series count for nothing a dashboard uses.
disable_created_metrics()

PREFIX = "affectstream_"

# Family name -> (type, help, labels). Counters' samples end in `_total`, histograms' in
# `_bucket`/`_sum`/`_count`, as prometheus_client writes them.
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "affectstream_frames_decoded": ("counter", "Frames decoded from the source", ("source", "worker")),
    "affectstream_frames_published": ("counter", "Frame entries written to Redis", ("source", "worker")),
    "affectstream_frames_dropped": (
        "counter",
        "Decoded frames not published, by reason (decoded = published + dropped)",
        ("source", "worker", "reason"),
    ),
    "affectstream_faces": ("counter", "Faces published", ("source", "worker")),
    "affectstream_expressions": (
        "counter",
        "Faces published, by top expression",
        ("source", "worker", "expression"),
    ),
    "affectstream_source_reconnects": ("counter", "Reconnect attempts of the source", ("source", "worker")),
    "affectstream_redis_data_lost": (
        "counter",
        "Times Redis lost acknowledged entries of the source that the worker no longer held to send again",
        ("source", "worker"),
    ),
    "affectstream_source_up": (
        "gauge",
        "1 while the source's reader is live and reading",
        ("source", "worker"),
    ),
    "affectstream_source_state": (
        "gauge",
        "1 for the source's current reader state",
        ("source", "worker", "state"),
    ),
    "affectstream_queue_depth": ("gauge", "Items waiting in a worker queue", ("worker", "queue")),
    "affectstream_queue_capacity": ("gauge", "Capacity of a worker queue", ("worker", "queue")),
    "affectstream_batch_fill_ratio": (
        "gauge",
        "Mean faces per engine call over batch.max_batch, last 60 s",
        ("worker",),
    ),
    "affectstream_engine_batch_faces": ("histogram", "Faces per engine call", ("worker",)),
    "affectstream_stage_duration_seconds": ("histogram", "Time per stage call", ("worker", "stage")),
    "affectstream_frame_latency_seconds": (
        "histogram",
        "Capture to XADD, per published frame",
        ("source", "worker"),
    ),
    "affectstream_build_info": (
        "gauge",
        "Always 1: what this worker runs",
        ("worker", "version", "model", "backend"),
    ),
    "affectstream_worker_up": ("gauge", "1 while the worker process is alive and answers", ("worker",)),
    "affectstream_worker_restarts": ("counter", "Restarts of the worker process after a crash", ("worker",)),
    "affectstream_consumer_group_lag": (
        "gauge",
        "Entries of a results stream not yet delivered to a consumer group (XINFO GROUPS lag)",
        ("source", "group"),
    ),
}

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12)
# Faces per engine call is a whole number >= 1: one bucket per size up to 8, so a quantile rounded up
# (`ceil`, as the dashboard does) is exact there; histogram_quantile interpolates from 0 inside the first
# bucket, which made calls of one face show a p50 of 0.5. Up to `batch.max_batch`'s 4096.
_BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096)
SCRAPE_TIMEOUT_S = 2.0


def _family(name: str, **kw) -> CounterMetricFamily | GaugeMetricFamily:
    kind, doc, labels = FAMILIES[name]
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(name, doc, labels=list(labels), **kw)


def _histogram(name: str, registry: CollectorRegistry, worker: str, buckets) -> Histogram:
    _, doc, labels = FAMILIES[name]
    # `worker` is added by the supervisor when it merges the pages
    return Histogram(name, doc, [lb for lb in labels if lb != "worker"], buckets=buckets, registry=registry)


class WorkerMetrics:
    """The metrics of one worker process.

    Args:
        read: Called at scrape time; returns a `WorkerReading` of the worker's counters and gauges.
    """

    def __init__(self, read: Callable[[], WorkerReading] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.batch_size = _histogram("affectstream_engine_batch_faces", r, "", _BATCH_BUCKETS)
        self.stage_seconds = _histogram("affectstream_stage_duration_seconds", r, "", _LATENCY_BUCKETS)
        self.latency_seconds = _histogram("affectstream_frame_latency_seconds", r, "", _LATENCY_BUCKETS)
        self._fills: deque[tuple[float, int]] = deque(maxlen=4096)  # (time, faces) of engine calls
        if read is not None:
            r.register(WorkerCollector(read))

    def engine_call(self, faces: int) -> None:
        self.batch_size.observe(faces)
        self._fills.append((time.monotonic(), faces))

    def batch_fill(self, max_batch: int, window_s: float = 60.0) -> float:
        """Mean faces per engine call over `max_batch` in the last `window_s` (0 when there was none)."""
        horizon = time.monotonic() - window_s
        recent = [n for t, n in list(self._fills) if t >= horizon]
        return sum(recent) / len(recent) / max_batch if recent else 0.0

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve this registry; returns the port (an ephemeral one with `port=0`)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port


class WorkerReading:
    """What `WorkerCollector` exports besides the histograms, read at one instant.

    `published`, `faces`, `expressions` must be read before `sources` (decoded): a frame is counted as
    decoded before it can be taken, so reading in this order keeps decoded >= published in every scrape.
    """

    def __init__(self) -> None:
        self.published: dict[str, int] = {}
        self.faces: dict[str, int] = {}
        self.expressions: dict[tuple[str, str], int] = {}
        self.sources: dict[
            str, tuple[int, int, int, str]
        ] = {}  # name -> (decoded, dropped, reconnects, state)
        self.dropped: dict[str, dict[str, int]] = {}  # name -> {reason: frames} (`outbox.DROP_REASONS`)
        self.data_lost: dict[str, int] = {}  # name -> times Redis lost what the outbox no longer held
        self.queues: dict[str, tuple[int, int]] = {}  # name -> (depth, capacity)
        self.batch_fill = 0.0
        self.build: dict[str, str] = {}  # version, model, backend


class WorkerCollector(Collector):
    def __init__(self, read: Callable[[], WorkerReading]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        from affectstream.pipeline.sources import STATES
        from affectstream.pipeline.streams.outbox import DROP_REASONS

        r = self.read()
        worker = ""  # the supervisor fills it in

        def per_source(
            name: str, values: Iterable[tuple[str, float]]
        ) -> CounterMetricFamily | GaugeMetricFamily:
            family = _family(name)
            for source, value in values:
                family.add_metric([source, worker], value)
            return family

        names = sorted(set(r.sources) | set(r.published))
        stats = {n: r.sources.get(n, (0, 0, 0, "down")) for n in names}
        yield per_source("affectstream_frames_decoded", ((n, stats[n][0]) for n in names))
        yield per_source("affectstream_frames_published", ((n, r.published.get(n, 0)) for n in names))
        # every reason of every source, 0 until it happens: a healthy camera shows 0 drops, not no data
        dropped = _family("affectstream_frames_dropped")
        for n in names:
            counts = r.dropped.get(n, {})
            for reason in sorted(set(DROP_REASONS) | set(counts)):
                dropped.add_metric([n, worker, reason], counts.get(reason, 0))
        yield dropped
        yield per_source("affectstream_faces", ((n, r.faces.get(n, 0)) for n in names))
        yield per_source("affectstream_source_reconnects", ((n, stats[n][2]) for n in names))
        yield per_source("affectstream_redis_data_lost", ((n, r.data_lost.get(n, 0)) for n in names))
        yield per_source("affectstream_source_up", ((n, float(stats[n][3] == "live")) for n in r.sources))
        expressions = _family("affectstream_expressions")
        for (source, expr), faces in sorted(r.expressions.items()):
            expressions.add_metric([source, worker, expr], faces)
        yield expressions
        state = _family("affectstream_source_state")
        for n in sorted(r.sources):
            for s in STATES:
                state.add_metric([n, worker, s], float(stats[n][3] == s))
        yield state
        depth, capacity = _family("affectstream_queue_depth"), _family("affectstream_queue_capacity")
        for q, (d, c) in sorted(r.queues.items()):
            depth.add_metric([worker, q], d)
            capacity.add_metric([worker, q], c)
        yield depth
        yield capacity
        fill = _family("affectstream_batch_fill_ratio")
        fill.add_metric([worker], r.batch_fill)
        yield fill
        if r.build:
            info = _family("affectstream_build_info")
            info.add_metric([worker, r.build["version"], r.build["model"], r.build["backend"]], 1)
            yield info


class WorkersCollector(Collector):
    """The supervisor's view: every live worker's page, fetched at scrape time, merged, `worker`-labelled.

    Args:
        workers: Returns {worker id: (metrics port or None, alive, restarts)} of the run's workers.
    """

    def __init__(self, workers: Callable[[], dict[str, tuple[int | None, bool, int]]]) -> None:
        self.workers = workers
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="scrape")

    @staticmethod
    def _fetch(port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT_S) as page:
            return page.read().decode()

    def collect(self) -> Iterator[Metric]:
        workers = self.workers()
        pages = {
            w: self._pool.submit(self._fetch, port)
            for w, (port, alive, _) in workers.items()
            if port and alive
        }
        merged: dict[str, Metric] = {}
        up = _family("affectstream_worker_up")
        restarts = _family("affectstream_worker_restarts")
        for worker, (_, _, n) in sorted(workers.items()):
            slot = worker_slot(worker)
            ok = False
            if worker in pages:
                try:
                    text = pages[worker].result(timeout=SCRAPE_TIMEOUT_S + 1)
                    ok = True
                except Exception as exc:  # a worker starting, stopping or hung: it shows as not up
                    log.debug("scrape of %s failed: %s", worker, exc)
                if ok:
                    _merge(merged, text, slot)
            up.add_metric([slot], float(ok))
            restarts.add_metric([slot], n)
        yield from merged.values()
        yield up
        yield restarts


def worker_slot(worker: str) -> str:
    """The `worker` label of a worker id: its slot in the run, `{run}-w1` -> `w1`."""
    return worker.rpartition("-")[2]


def _merge(merged: dict[str, Metric], text: str, worker: str) -> None:
    """Add the families of one worker's page to `merged`, each sample labelled with `worker`."""
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(PREFIX):
            continue  # the client library's own process/platform collectors are not registered; be safe
        into = merged.get(family.name)
        if into is None:
            into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        for s in family.samples:
            labels = {**s.labels, "worker": worker}
            into.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)


class GroupLagCollector(Collector):
    """The lag of every consumer group on every results stream of the run's Redis, read at scrape time.

    Redis (7.0+) keeps each group's lag itself, so this is one SCAN and one XINFO GROUPS per stream; a
    group whose lag Redis cannot tell (entries deleted inside its range) is left out. Every run on the same
    Redis reports the same values: aggregate with `max`.
    """

    def __init__(self, client) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        from affectstream.pipeline.streams.keys import FRAMES_SUFFIX, source_of_stream, text

        lag = _family("affectstream_consumer_group_lag")
        try:
            for key in sorted(
                text(k) for k in self.client.scan_iter(match=f"affect:{{*{FRAMES_SUFFIX}", count=1000)
            ):
                for group in self.client.xinfo_groups(key):
                    if group.get("lag") is not None:
                        lag.add_metric([source_of_stream(key) or key, text(group["name"])], group["lag"])
        except Exception as exc:  # Redis away: the workers' own metrics still answer; lag shows no data
            log.debug("consumer group lag not read: %s", exc)
        yield lag


class RunMetricsServer:
    """The run's one endpoint: `WorkersCollector` over the ports that workers report, and the consumer
    groups' lag (`GroupLagCollector`) from the run's Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ports: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self._workers: Callable[[], dict[str, tuple[bool, int]]] = dict

    def worker_port(self, worker: str, port: int) -> None:
        """A worker (re)started and serves its page on `port`."""
        with self._lock:
            self._ports[worker] = port

    def _view(self) -> dict[str, tuple[int | None, bool, int]]:
        with self._lock:
            ports = dict(self._ports)
        return {w: (ports.get(w), alive, n) for w, (alive, n) in self._workers().items()}

    def serve(
        self, host: str, port: int, workers: Callable[[], dict[str, tuple[bool, int]]], redis_url: str
    ) -> int:
        """Start serving; `workers` returns {worker id: (alive, restarts)}. Returns the bound port."""
        from affectstream.pipeline.streams.connection import connect

        self._workers = workers
        self.registry.register(WorkersCollector(self._view))
        self.registry.register(GroupLagCollector(connect(redis_url)))
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
