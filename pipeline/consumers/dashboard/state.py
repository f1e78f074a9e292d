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
from collections import Counter, deque
from dataclasses import dataclass, field

import redis

from affectstream.pipeline.consumers.dashboard.series import CounterSeries, Sample, percentile
from affectstream.pipeline.errors import SchemaVersionError
from affectstream.pipeline.streams import keys
from affectstream.pipeline.streams.entries import Entry, decode_entry, read_many
from affectstream.pipeline.streams.liveness import beat_age_s, read_with_pttl

log = logging.getLogger(__name__)

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
STATUSES = ("live", "starting", "reconnecting", "down", "finished", "stopped", "stale")


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


def _event_detail(kind: str, fields: dict) -> str:
    reason = fields.get("reason") or fields.get("error") or ""
    if reason:
        return reason
    if kind in ("eof", "stopped") and fields.get("frames"):
        return f"{fields['frames']} frames"
    if kind in ("claimed", "released") and fields.get("member"):
        return f"{kind} by {fields['member']}"
    return fields.get("detail", "")


class DashboardState:
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

    # -- snapshot --------------------------------------------------------------------------------
    def _owner(self, name: str) -> tuple[Beat | None, dict | None]:
        """The newest heartbeat whose worker reads `name` now, with its stats of `name`."""
        best: tuple[Beat | None, dict | None] = (None, None)
        for beat in self._beats.values():
            s = beat.stats.get(name)
            if (
                isinstance(s, dict)
                and s.get("state") in READER_STATUS
                and (best[0] is None or beat.seen > best[0].seen)
            ):
                best = (beat, s)
        return best

    def _status(
        self, s: SourceState, beat: Beat | None, stats: dict | None, now: float
    ) -> tuple[str, str, float]:
        """(status, detail, last seen) of one source; the newest of its event and its heartbeat decides."""
        last_seen = max(s.event_ts, s.last_ts, beat.seen if beat else 0.0)
        status, detail = "", ""
        if s.event:
            status, detail = EVENT_STATUS[s.event], s.event_detail
        if beat is not None and stats is not None and beat.ts > s.event_ts:
            said = READER_STATUS[stats["state"]]
            if said != status:
                status, detail = said, ""
        if not status:  # results without events or heartbeats (e.g. an archive job's publisher)
            status = "live"
        if status in ACTIVE:
            if now - last_seen > self.stale_s:
                return "stale", f"was {status}", last_seen
            if status == "live" and s.last_ts and now - s.last_ts > self.stale_s and not detail:
                detail = f"no results for {now - s.last_ts:.0f} s"
        return status, detail, last_seen

    def _rates(self, name: str, owner: Beat | None, now: float) -> dict:
        """Input frames/s (owner's decoded), drops over the window (every worker that read `name`)."""
        series = self._series.get((owner.worker, name)) if owner else None
        input_fps = None
        if series is not None and owner is not None and now - owner.seen <= self.stale_s:
            input_fps = series.rate("decoded", self.rate_window_s)
        decoded = dropped = None
        for (_, source), ser in self._series.items():
            if source != name:
                continue
            d, x = ser.delta("decoded", now - self.window_s), ser.delta("dropped", now - self.window_s)
            if d is not None and x is not None:
                decoded, dropped = (decoded or 0) + d, (dropped or 0) + x
        share = dropped / decoded if decoded and dropped is not None else (0.0 if decoded == 0 else None)
        last = series.last if series is not None else None
        return {
            "input_fps": None if input_fps is None else round(input_fps, 2),
            "decoded_1m": decoded,
            "dropped_1m": dropped,
            "drop_share": None if share is None else round(share, 4),
            "dropping": bool(share is not None and share > self.drop_warning and dropped),
            "reconnects": last.reconnects if last else None,
        }

    def _forget(self, now: float) -> None:
        """Drop sources, heartbeats and counter series with no news for `forget_after_s`."""
        horizon = now - self.forget_after_s
        self._beats = {w: b for w, b in self._beats.items() if b.seen >= horizon}
        for key in [k for k, ser in self._series.items() if ser.last is None or ser.last.ts < horizon]:
            del self._series[key]
        for name in list(self._sources):
            s = self._sources[name]
            beat, _ = self._owner(name)
            if max(s.event_ts, s.last_ts, beat.seen if beat else 0.0) < horizon:
                del self._sources[name]

    def snapshot(self) -> dict:
        now = time.time()
        with self._lock:
            self._forget(now)
            sources = [self._describe(self._sources[name], now) for name in sorted(self._sources)]
            shown = {s["name"] for s in sources}
            va_from = now - self.va_window_s
            # One point per track per half second: a bounded message however many faces are in view.
            points: dict[tuple, tuple] = {}
            by_source: dict[str, Counter] = {}
            for t, src, tr, ex, v, a in self._faces:
                if src not in shown:
                    continue
                if t >= now - self.window_s:
                    by_source.setdefault(src, Counter())[ex] += 1
                if t >= va_from and v is not None and a is not None:
                    points[src, tr, int(t * 2)] = (t, src, tr, ex, v, a)
        va = [
            {"source": src, "track": tr, "expr": ex, "v": round(v, 4), "a": round(a, 4), "ts": round(t, 3)}
            for t, src, tr, ex, v, a in sorted(points.values(), key=lambda p: p[0])
        ][-6000:]
        total: Counter[str] = Counter()
        for counts in by_source.values():
            total.update(counts)
        return {
            "now": now,
            "sources": sources,
            "va": va,
            "va_window_s": self.va_window_s,
            "shares": {
                "window_s": self.window_s,
                "total": sum(total.values()),
                "counts": dict(total.most_common()),
                "by_source": {k: dict(v.most_common()) for k, v in sorted(by_source.items())},
            },
            "settings": {
                "stale_s": self.stale_s,
                "forget_after_s": self.forget_after_s,
                "drop_warning": self.drop_warning,
                "window_s": self.window_s,
                "rate_window_s": self.rate_window_s,
            },
            "errors": self.errors,
        }

    def _processed_fps(self, s: SourceState, now: float) -> float | None:
        """Results per second whose capture time lies in the rate window ending 1 s ago (results still in
        flight are not counted as missing). A source that began publishing inside the window is measured
        over the time it has published, so a camera that just started is not shown at a fraction of its
        rate beside its input frames/s; None until it has published for a second."""
        end = now - 1
        start = end - self.rate_window_s
        if s.recent and s.recent[0][0] > start:
            start = s.recent[0][0]
        if end - start < 1.0:
            return None
        return sum(1 for t, _ in s.recent if start <= t <= end) / (end - start)

    def _describe(self, s: SourceState, now: float) -> dict:
        beat, stats = self._owner(s.name)
        status, detail, last_seen = self._status(s, beat, stats, now)
        recent = [ms for t, ms in s.recent if t >= now - self.window_s]
        fps = self._processed_fps(s, now) if status in ACTIVE else None
        last = s.last
        faces = []
        if last is not None and status in ACTIVE and now - last.result.ts <= self.stale_s:
            faces = [
                {
                    "track": f.track,
                    "expr": f.expr,
                    "conf": round(f.probs.get(f.expr, 0.0), 3),
                    "valence": f.valence,
                    "arousal": f.arousal,
                }
                for f in last.result.faces
            ]
        kind = None
        if stats is not None and stats.get("live") is not None:
            kind = "camera" if stats["live"] else "file"
        p50, p95 = percentile(recent, 50), percentile(recent, 95)
        return {
            "name": s.name,
            "status": status,
            "detail": detail,
            "kind": kind,
            "last_seen": round(last_seen, 3) if last_seen else None,
            "last_age_s": round(now - last_seen, 1) if last_seen else None,
            "worker": beat.worker if beat else (s.event_worker or None),
            "member": beat.member if beat else None,
            "fps": None if fps is None else round(fps, 2),
            "latency_p50_ms": None if p50 is None else round(p50, 1),
            "latency_p95_ms": None if p95 is None else round(p95, 1),
            **self._rates(s.name, beat, now),
            "frames": s.frames,
            "last_frame": last.result.frame if last else None,
            "model": last.result.model if last else "",
            "faces": faces,
            "bad_entries": s.bad,
        }
