"""The dashboard's snapshot: each source's status, rates, latency and faces, the expression shares and
the valence/arousal points, computed from what `DashboardState` read (a mixin of it: the reading and the
showing are apart, the data is one)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

from affectstream.pipeline.consumers.dashboard.records import (
    ACTIVE,
    EVENT_STATUS,
    READER_STATUS,
    Beat,
    SourceState,
)
from affectstream.pipeline.consumers.dashboard.series import percentile


class SnapshotView:
    """`snapshot()` and its parts, over `DashboardState`'s attributes (`_sources`, `_beats`, `_series`,
    `_faces`, `_lock` and the windows)."""

    _sources: dict[str, SourceState]
    _beats: dict[str, Beat]
    _series: dict
    _faces: deque
    _lock: threading.Lock
    window_s: float
    va_window_s: float
    rate_window_s: float
    stale_s: float
    forget_after_s: float
    drop_warning: float
    errors: int

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
