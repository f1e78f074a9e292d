"""What a worker counted, read at one instant: per source decoded, published and dropped by reason.

`read_worker` builds the `WorkerReading` that metrics scrapes, heartbeats and a fleet member's record
export; `accounting` turns it into each source's account, decoded = published + dropped + in flight,
which the worker logs when it ends (`accounting {...}`, what the fault tests check) and which must add
up in every reading. The order of the reads is what keeps it true while frames move: published and
dropped first, then the sources' decoded counts (a source counts a frame as decoded before it can be
taken), so decoded >= published + dropped at every instant.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

import affectstream
from affectstream.pipeline.runtime.intake import reader_counts
from affectstream.pipeline.runtime.metrics import WorkerReading

log = logging.getLogger(__name__)

READER_DROPS = ("stale", "corrupt")  # counted by the readers themselves; the rest by the outbox


class WorkerAccounts:
    """Reads a running worker's parts: `reading` (metrics scrapes, heartbeats, a fleet member's record),
    `accounting` (per source) and `beat_fields` (its heartbeat).

    Args:
        queues: The worker's queues by name, reported with their depth and capacity.
        build: Version, model and backend of the worker.
    """

    def __init__(
        self, intake, publisher, outbox, counts_lock, metrics, *, queues: dict, max_batch: int, build
    ):
        self._intake = intake
        self._publisher = publisher
        self._outbox = outbox
        self._counts_lock = counts_lock
        self._metrics = metrics
        self._queues = queues
        self._max_batch = max_batch
        self._build = build

    def reading(self) -> WorkerReading:
        r = read_worker(self._intake, self._publisher, self._outbox, self._counts_lock)
        r.queues = {name: (q.qsize(), q.maxsize) for name, q in self._queues.items()}
        r.queues["outbox_events"] = (self._outbox.pending_events(), 0)
        r.batch_fill = self._metrics.batch_fill(self._max_batch)
        r.build = self._build
        return r

    def accounting(self) -> dict[str, dict]:
        """Per source: {decoded, published, dropped: {reason: n}, in_flight}; decoded = published +
        dropped + in_flight in every reading, in_flight 0 once the worker ended."""
        return accounting(self.reading(), self._intake.in_flight())

    def beat_fields(self, member: str | None) -> dict:
        """The worker's own fields of its heartbeat (`pipeline.runtime.heartbeat`)."""
        r = self.reading()
        lanes = self._intake.lanes
        return {
            "published": self._publisher.published,
            "member": member,
            "sources": list(lanes),
            "stats": beat_stats(r, lanes),
            "queues": {k: list(v) for k, v in r.queues.items()},
        }


def read_worker(intake, publisher, outbox, counts_lock) -> WorkerReading:
    """Counters and per-source states of a worker's parts now (queues, fill and build: the caller's)."""
    r = WorkerReading()
    with counts_lock:
        lanes = intake.lanes  # replaced, never mutated
        r.published = dict(publisher.by_source)
        r.faces = dict(publisher.faces_by_source)
        r.expressions = dict(publisher.expressions)
        retired = dict(intake.retired)
        dropped = outbox.dropped.snapshot()
        r.data_lost = dict(outbox.data_lost)
    counts = {name: reader_counts(lane) for name, lane in lanes.items()}
    for name in retired.keys() | counts.keys():
        c = retired.get(name, Counter()) + counts.get(name, Counter())
        by_reason = {reason: c[reason] for reason in READER_DROPS if c[reason]}
        by_reason.update({reason: n for (source, reason), n in dropped.items() if source == name and n})
        state = lanes[name].source.state if name in lanes else "down"
        r.sources[name] = (c["decoded"], sum(by_reason.values()), c["reconnects"], state)
        r.dropped[name] = by_reason
    return r


def build_facts(processor) -> dict[str, str]:
    """Version, model and backend of a worker (the `build` of its reading: `affectstream_build_info`)."""
    return {
        "version": affectstream.version(),
        "model": processor.engine.spec.model_id,
        "backend": type(processor.engine).__name__,
    }


def accounting(reading: WorkerReading, in_flight: dict[str, int]) -> dict[str, dict]:
    """Per source: {decoded, published, dropped: {reason: n}, in_flight}."""
    return {
        name: {
            "decoded": decoded,
            "published": reading.published.get(name, 0),
            "dropped": reading.dropped.get(name, {}),
            "in_flight": in_flight.get(name, 0),
        }
        for name, (decoded, _dropped, _reconnects, _state) in reading.sources.items()
    }


def log_accounting(worker_id: str, accounts: dict[str, dict]) -> None:
    """One line per source with its account; an error when it does not add up (a frame lost unsaid)."""
    for name, a in sorted(accounts.items()):
        line = json.dumps({"worker": worker_id, "source": name, **a}, sort_keys=True)
        if a["decoded"] == a["published"] + sum(a["dropped"].values()) + a["in_flight"]:
            log.info("accounting %s", line)
        else:
            log.error("accounting does not add up %s", line)


def beat_stats(reading: WorkerReading, lanes: dict) -> dict[str, dict]:
    """The `stats` of a worker's heartbeat: per source what the dashboard and `health` show."""
    return {
        name: {
            "decoded": decoded,
            "dropped": dropped,
            "dropped_by": reading.dropped.get(name, {}),
            "reconnects": reconnects,
            "state": state,
            "published": reading.published.get(name, 0),
            "faces": reading.faces.get(name, 0),
            "live": bool(lanes[name].source.spec.live) if name in lanes else None,
        }
        for name, (decoded, dropped, reconnects, state) in reading.sources.items()
    }
