"""What the dashboard shows, kept up to date from the Redis streams by one reader thread.

The reader discovers result streams (`affect:{*}:frames`) and event streams (`affect:{*}:events`),
seeds itself with each stream's newest entries, then follows them with blocking XREADs. A snapshot
is a plain JSON-ready dict: per-source status, throughput, latency and faces in view; recent
valence/arousal points for the circumplex; expression shares over the last minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import redis

from pipeline import keys
from pipeline.consume import Entry, decode_entry
from pipeline.errors import SchemaVersionError

log = logging.getLogger(__name__)

# The status each event kind (`pipeline.sources.EVENT_KINDS`) leaves its source in; anything else: down.
# A fleet camera's `claimed` is live (no results soon after: stale, hence down); its former owner's `lost`
# may come after the new owner's events, so it changes nothing (docs/fleet.md).
EVENT_STATUS = {"started": "live", "recovered": "live", "reconnecting": "reconnecting",
                "eof": "down", "error": "down", "claimed": "live"}  # fmt: skip


@dataclass
class SourceState:
    name: str
    event: str = ""  # last event kind
    event_detail: str = ""
    event_ts: float = 0.0
    frames: int = 0  # entries seen since the dashboard started (including the seed)
    last_seen: float = 0.0  # local wall time when the newest entry was read
    last: Entry | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=4096))  # (ts, latency_ms)
    bad: int = 0  # entries that failed the schema check


class DashboardState:
    """Aggregates the streams into snapshots (thread-safe).

    Args:
        client: Redis client.
        window_s: Window of the expression shares.
        va_window_s: How far back circumplex points go.
        rate_window_s: Window of throughput and latency.
        stale_s: A source whose last event says live but has published nothing for this long is
            shown as down (its worker may be gone without a word).
        seed: Newest entries read per stream when it is first seen.
    """

    def __init__(self, client: redis.Redis, *, window_s: float = 60.0, va_window_s: float = 30.0,
                 rate_window_s: float = 5.0, stale_s: float = 10.0, seed: int = 500) -> None:  # fmt: skip
        self.client = client
        self.window_s, self.va_window_s = window_s, va_window_s
        self.rate_window_s, self.stale_s, self.seed = rate_window_s, stale_s, seed
        self._lock = threading.Lock()
        self._sources: dict[str, SourceState] = {}
        # (ts, source, track, expr, valence, arousal) within the longest window; the cap bounds memory
        self._faces: deque = deque(maxlen=200_000)
        self._positions: dict[str, str] = {}
        self._last_scan = 0.0
        self.errors = 0

    def _source(self, name: str) -> SourceState:
        state = self._sources.get(name)
        if state is None:
            state = self._sources[name] = SourceState(name)
        return state

    # -- reading ---------------------------------------------------------------------------------
    def discover(self) -> None:
        """Find new streams and seed them with their newest entries."""
        found = []
        for pattern in (keys.frames_key("*"), keys.events_key("*")):
            found += [keys.text(k) for k in self.client.scan_iter(match=pattern, count=500, _type="stream")]
        for key in found:
            if key in self._positions:
                continue
            rows = self.client.xrevrange(key, count=1 if key.endswith(keys.EVENTS_SUFFIX) else self.seed)
            self._positions[key] = keys.text(rows[0][0]) if rows else "0-0"
            self._ingest(key, rows[::-1])
        self._last_scan = time.monotonic()

    def poll(self, block_ms: int = 500, scan_s: float = 2.0) -> int:
        """One round: rescan for streams when due, then one blocking XREAD; returns entries read."""
        if time.monotonic() - self._last_scan >= scan_s:
            self.discover()
        if not self._positions:
            time.sleep(block_ms / 1000)
            return 0
        reply = self.client.xread(self._positions, count=1000, block=block_ms)
        n = 0
        for key, rows in reply or []:
            key = keys.text(key)
            if rows:
                self._positions[key] = keys.text(rows[-1][0])
                n += self._ingest(key, rows)
        return n

    def _ingest(self, key: str, rows) -> int:
        now = time.time()
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
                state.last_seen = now
                state.last = Entry(source, keys.text(entry_id), result)
                state.recent.append((result.ts, result.latency_ms))
                for f in result.faces:
                    self._faces.append((result.ts, source, f.track, f.expr, f.valence, f.arousal))
            horizon = now - max(self.window_s, self.va_window_s)
            while self._faces and self._faces[0][0] < horizon:
                self._faces.popleft()
        return len(rows)

    def _event(self, source: str, fields: dict) -> None:
        if fields.get("kind") == "lost":
            return
        state = self._source(source)
        state.event = fields.get("kind", "")
        state.event_ts = float(fields.get("ts", 0) or 0)
        state.event_detail = fields.get("reason") or fields.get("error") or fields.get("detail") or ""

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
    def _status(self, s: SourceState, now: float) -> tuple[str, str]:
        quiet = now - s.last_seen if s.last_seen else None
        if s.event:
            status = EVENT_STATUS.get(s.event, "down")
            detail = s.event if s.event not in ("started", "recovered", status) else ""
            if s.event_detail:
                detail = f"{detail}: {s.event_detail}" if detail else s.event_detail
            if (
                status == "live"
                and (quiet is None or quiet > self.stale_s)
                and now - s.event_ts > self.stale_s
            ):
                return "down", f"no results for {self.stale_s:.0f} s"
            return status, detail
        if quiet is not None and quiet <= self.stale_s:
            return "live", ""
        return "down", "no recent results" if s.last_seen else "no results yet"

    def snapshot(self) -> dict:
        now = time.time()
        with self._lock:
            sources = []
            for name in sorted(self._sources):
                s = self._sources[name]
                status, detail = self._status(s, now)
                recent = [(t, ms) for t, ms in s.recent if t >= now - self.rate_window_s]
                faces = []
                last = s.last
                if last is not None and status == "live":
                    faces = [{"track": f.track, "expr": f.expr, "conf": round(f.probs.get(f.expr, 0.0), 3),
                              "valence": f.valence, "arousal": f.arousal, "box": f.box}
                             for f in last.result.faces]  # fmt: skip
                sources.append({
                    "name": name, "status": status, "detail": detail, "frames": s.frames,
                    "fps": round(len(recent) / self.rate_window_s, 2),
                    "latency_ms": round(sum(ms for _, ms in recent) / len(recent), 1) if recent else None,
                    "last_frame": last.result.frame if last else None,
                    "last_age_s": round(now - s.last_seen, 1) if s.last_seen else None,
                    "model": last.result.model if last else "", "faces": faces, "bad_entries": s.bad,
                })  # fmt: skip
            va = [{"source": src, "track": tr, "expr": ex, "v": v, "a": a, "age": round(now - t, 2)}
                  for t, src, tr, ex, v, a in self._faces
                  if t >= now - self.va_window_s and v is not None and a is not None][-600:]  # fmt: skip
            shares = Counter(ex for t, _, _, ex, _, _ in self._faces if t >= now - self.window_s)
        total = sum(shares.values())
        return {
            "now": now,
            "sources": sources,
            "va": va,
            "shares": {
                "window_s": self.window_s,
                "total": total,
                "counts": dict(shares.most_common()),
            },  # fmt: skip
            "errors": self.errors,
        }
