"""The dashboard's records: what it keeps per worker heartbeat and per source, and what events and reader
states say about a source's status (read by `state` and shown by `snapshot`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from affectstream.pipeline.streams.entries import Entry

# What each event kind (`pipeline.sources.EVENT_KINDS`) says about its source. A fleet camera's
# `claimed` is live; its former owner's `lost` may come after the new owner's events, so it says nothing
# (docs/fleet.md). `stopped` (a worker stopped reading on purpose) and `released` (a fleet member handed
# the camera back) are not failures.
EVENT_STATUS = {
    "started": "live",
    "recovered": "live",
    "claimed": "live",
    "reconnecting": "reconnecting",
    "eof": "finished",
    "error": "down",
    "stopped": "stopped",
    "released": "stopped",
}
# A heartbeat's reader state (`pipeline.sources.STATES`); `down` there means the worker no longer reads
# the source (its counters are kept): the source's own events say why.
READER_STATUS = {
    "starting": "starting",
    "live": "live",
    "reconnecting": "reconnecting",
    "eof": "finished",
    "error": "down",
}
ACTIVE = ("live", "starting", "reconnecting")


@dataclass
class Beat:
    """The newest heartbeat of one worker."""

    worker: str
    ts: float  # the worker's wall clock: orders one worker's beats
    member: str | None
    stats: dict  # source -> {decoded, dropped, reconnects, published, faces, state, live}
    seen: float = 0.0  # when it was written on this host's clock (by its age in Redis, else `ts`): recency


@dataclass
class SourceState:
    name: str
    event: str = ""  # last event kind that says something (not `lost`)
    event_ts: float = 0.0
    event_detail: str = ""
    event_worker: str = ""
    frames: int = 0  # entries read since the dashboard started (including the seed)
    last_ts: float = 0.0  # capture ts of the newest entry
    last: Entry | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=8192))  # (ts, latency_ms) of entries
    bad: int = 0  # entries that failed the schema check
