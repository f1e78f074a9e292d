"""What the dashboard shows, kept up to date from Redis by one reader thread.

Three things are read, nothing is written (but the snapshot requests of `app`):

- result streams (`affect:{*}:frames`): processed frames/s, latency p50/p95, faces in view, expression
  shares and valence/arousal points per source;
- event streams (`affect:{*}:events`): a source's state changes (started, reconnecting, eof, error,
  stopped, fleet claims and releases) with their reasons;
- worker heartbeats (`keys.HEARTBEAT_PATTERN`, every `workers.heartbeat_s`): each source's owner worker
  and fleet member, its reader's state and cumulative counters, hence input frames/s and drops.

Recency is judged by the times Redis holds (a result's capture `ts`, an event's `ts`, a heartbeat's age),
never by when the dashboard read them: entries seeded from an old run are old. A heartbeat that states its
TTL (`ttl_ms`) is dated by Redis's clock (`pipeline.streams.liveness`: its TTL less its key's PTTL, taken from this
host's clock now), so a worker on a host whose clock is off is not shown stale; one that does not is dated
by its `ts`. A source with no news for `stale_s` is shown stale (with its last-seen time); after
`forget_after_s` it is dropped from the page.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

import redis

from affectstream.pipeline.consumers.dashboard.records import EVENT_STATUS, READER_STATUS, Beat, SourceState
from affectstream.pipeline.consumers.dashboard.series import CounterSeries, Sample
from affectstream.pipeline.consumers.dashboard.snapshot import SnapshotView
from affectstream.pipeline.errors import SchemaVersionError
from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.entries import Entry, decode_entry, read_many
from affectstream.pipeline.streams.liveness import beat_age_s, read_with_pttl

log = logging.getLogger(__name__)


def _event_detail(kind: str, fields: dict) -> str:
    reason = fields.get("reason") or fields.get("error") or ""
    if reason:
        return reason
    if kind in ("eof", "stopped") and fields.get("frames"):
        return f"{fields['frames']} frames"
    if kind in ("claimed", "released") and fields.get("member"):
        return f"{kind} by {fields['member']}"
    return fields.get("detail", "")


class DashboardState(SnapshotView):
    """Aggregates the streams and heartbeats into snapshots (thread-safe; memory bounded by windows).

    Args:
        client: Redis client.
        window_s: Window of the expression shares, drops and latency percentiles ("the last minute").
        va_window_s: How far back valence/arousal points go (circumplex and per-track timelines).
        rate_window_s: Window of the frames/s figures.
        stale_s: A source with no news (results, events, heartbeats that list it) for this long is stale.
        forget_after_s: A source with no news for this long is no longer shown.
        drop_warning: Share of decoded frames dropped over `window_s` above which a source is flagged.
        seed: Newest entries read per results stream when it is first seen.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        window_s: float = 60.0,
        va_window_s: float = 60.0,
        rate_window_s: float = 5.0,
        stale_s: float = 10.0,
        forget_after_s: float = 3600.0,
        drop_warning: float = 0.05,
        seed: int = 500,
    ) -> None:
        self.client = client
        self.window_s, self.va_window_s, self.rate_window_s = window_s, va_window_s, rate_window_s
        self.stale_s, self.forget_after_s, self.drop_warning = stale_s, forget_after_s, drop_warning
        self.seed = seed
        self._lock = threading.Lock()
        self._sources: dict[str, SourceState] = {}
        # (ts, source, track, expr, valence, arousal) within the longest window; the cap bounds memory
        self._faces: deque = deque(maxlen=200_000)
        self._beats: dict[str, Beat] = {}  # worker -> its newest heartbeat
        self._series: dict[tuple[str, str], CounterSeries] = {}  # (worker, source) -> counter samples
        self._positions: dict[str, str] = {}
        self._last_scan = 0.0
        self._last_beats = 0.0
        self.errors = 0

    def _source(self, name: str) -> SourceState:
        state = self._sources.get(name)
        if state is None:
            state = self._sources[name] = SourceState(name)
        return state

    # -- reading ---------------------------------------------------------------------------------
    def discover(self) -> None:
        """Find new streams (seeding them with their newest entries) and read the heartbeats."""
        found = []
        for pattern in (keys.frames_key("*"), keys.events_key("*")):
            found += [keys.text(k) for k in self.client.scan_iter(match=pattern, count=500, _type="stream")]
        for key in found:
            if key in self._positions:
                continue
            rows = self.client.xrevrange(key, count=5 if key.endswith(keys.EVENTS_SUFFIX) else self.seed)
            self._positions[key] = keys.text(rows[0][0]) if rows else "0-0"
            self._ingest(key, rows[::-1])
        self._last_scan = time.monotonic()
        self.read_heartbeats()

    def read_heartbeats(self) -> int:
        """Read every worker heartbeat (SCAN + GET and PTTL each); returns how many were read."""
        names = [keys.text(k) for k in self.client.scan_iter(match=keys.HEARTBEAT_PATTERN, count=500)]
        now = time.time()
        beats = []
        for key, (raw, pttl) in zip(names, read_with_pttl(self.client, names), strict=True):
            try:
                doc = json.loads(raw) if raw else None
                if not isinstance(doc, dict):
                    continue
                stats = doc.get("stats") or {}
                ts, age = float(doc.get("ts") or 0), beat_age_s(doc, pttl)
                beats.append(
                    Beat(
                        keys.worker_of(key),
                        ts,
                        doc.get("member") or None,
                        stats if isinstance(stats, dict) else {},
                        ts if age is None else now - age,
                    )
                )
            except (ValueError, TypeError) as exc:
                log.warning("unreadable heartbeat %s: %s", key, type(exc).__name__)
        with self._lock:
            for beat in beats:
                self._beat(beat)
        self._last_beats = time.monotonic()
        return len(beats)

    def _beat(self, beat: Beat) -> None:
        old = self._beats.get(beat.worker)
        if old is not None and beat.ts <= old.ts:
            return
        self._beats[beat.worker] = beat
        for source, s in beat.stats.items():
            if not isinstance(s, dict):
                continue
            series = self._series.setdefault((beat.worker, source), CounterSeries())
            series.add(
                Sample(
                    beat.seen,
                    int(s.get("decoded") or 0),
                    int(s.get("dropped") or 0),
                    int(s.get("reconnects") or 0),
                    int(s.get("published") or 0),
                )
            )
            series.prune(beat.seen - self.window_s - 5)
            if s.get("state") in READER_STATUS:  # read now (a source it stopped reading keeps its counters)
                self._source(source)

    def poll(self, block_ms: int = 500, scan_s: float = 2.0, beats_s: float = 1.0) -> int:
        """One round: rescan for streams and reread heartbeats when due, then one blocking XREAD (per slot on
        a cluster)."""
        if time.monotonic() - self._last_scan >= scan_s:
            self.discover()
        elif time.monotonic() - self._last_beats >= beats_s:
            self.read_heartbeats()
        if not self._positions:
            time.sleep(block_ms / 1000)
            return 0
        reply = read_many(self.client, self._positions, count=1000, block_ms=block_ms)
        n = 0
        for key, rows in reply or []:
            key = keys.text(key)
            if rows:
                self._positions[key] = keys.text(rows[-1][0])
                n += self._ingest(key, rows)
        return n

    def _ingest(self, key: str, rows) -> int:
        source = keys.source_of_stream(key)
        with self._lock:
            if source is None:
                name = keys.source_of_stream(key, keys.EVENTS_SUFFIX)
                if name is not None:
                    for _, fields in rows:
                        self._event(name, {keys.text(k): keys.text(v) for k, v in fields.items()})
                return len(rows)
            state = self._source(source)
            for entry_id, fields in rows:
                try:
                    result = decode_entry(fields, source=source, entry_id=keys.text(entry_id))
                except SchemaVersionError as exc:
                    state.bad += 1
                    self.errors += 1
                    log.warning("%s", exc)
                    continue
                state.frames += 1
                if result.ts >= state.last_ts:
                    state.last_ts = result.ts
                    state.last = Entry(source, keys.text(entry_id), result)
                state.recent.append((result.ts, result.latency_ms))
                for f in result.faces:
                    self._faces.append((result.ts, source, f.track, f.expr, f.valence, f.arousal))
            horizon = time.time() - max(self.window_s, self.va_window_s)
            while self._faces and self._faces[0][0] < horizon:
                self._faces.popleft()
            while state.recent and state.recent[0][0] < horizon:
                state.recent.popleft()
        return len(rows)

    def _event(self, source: str, fields: dict) -> None:
        kind = fields.get("kind", "")
        if kind not in EVENT_STATUS:
            return  # `lost`, or a kind this dashboard does not know: no news about the source's state
        ts = float(fields.get("ts", 0) or 0)
        state = self._source(source)
        if ts < state.event_ts:
            return
        state.event, state.event_ts = kind, ts
        state.event_detail = _event_detail(kind, fields)
        state.event_worker = fields.get("worker", "")

    def run(self, stop: threading.Event, block_ms: int = 500) -> None:
        """Poll until `stop` is set; Redis errors are logged and retried (the page shows them)."""
        while not stop.is_set():
            try:
                self.poll(block_ms=block_ms)
            except redis.RedisError as exc:
                self.errors += 1
                log.warning("dashboard cannot read Redis: %s", type(exc).__name__)
                stop.wait(1.0)
