"""What a member measured of its cameras, for `fleet status`: telemetry beside the control plane, which no
member reads.

`keys.member_stats_key(member)`: JSON `{member, worker, cameras: {name: {fps, decoded, dropped, dropped_by,
last_frame_ts, last_frame_age_s}}, ttl_ms}`, written every `STATS_EVERY_S` when it changed (a camera's
numbers move with its frames), else only its TTL is renewed, so a member whose cameras deliver nothing (the
scale bench's) costs one small command per interval. `last_frame_age_s` is measured on the member's monotonic
clock as of the write; a reader adds the record's age by Redis's clock (`ttl_ms` less its PTTL).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable

from affectstream.pipeline.streams.keys import member_stats_key

STATS_EVERY_S = 5.0
_TTL_MS = int(3 * STATS_EVERY_S * 1000)


class StatsWriter:
    """Writes one member's stats record (`due` says when) from its worker's counters."""

    def __init__(self, client, member: str, worker) -> None:
        self.client = client
        self.member = member
        self.worker = worker
        self._at = time.monotonic()
        self._published: Counter[str] = Counter()
        self._last = ""
        self._cameras: set[str] = set()

    def due(self, now: float, cameras: Iterable[str]) -> bool:
        """Every `STATS_EVERY_S`, and as soon as the member's cameras changed (`fleet status` lists them)."""
        return now - self._at >= STATS_EVERY_S or set(cameras) != self._cameras

    def write(self, cameras: Iterable[str]) -> None:
        now, reading = time.monotonic(), self.worker.reading()
        dt = max(1e-3, now - self._at)
        stats = {}
        for name in sorted(cameras):
            published = self.worker.published_by_source[name]
            decoded, dropped, _reconnects, _state = reading.sources.get(name, (0, 0, 0, "down"))
            last_mono = self.worker.last_frame_mono.get(name)
            stats[name] = {
                "fps": round((published - self._published.get(name, published)) / dt, 2),
                "decoded": decoded,
                "dropped": dropped,
                "dropped_by": reading.dropped.get(name, {}),  # reason -> frames (`outbox.DROP_REASONS`)
                "last_frame_ts": self.worker.last_frame_ts.get(name),  # data: the capture wall time
                "last_frame_age_s": None if last_mono is None else round(max(0.0, now - last_mono), 3),
            }
        self._published = Counter({name: self.worker.published_by_source[name] for name in stats})
        self._cameras = set(stats)
        self._at = now
        record = json.dumps(
            {"member": self.member, "worker": self.worker.worker_id, "cameras": stats, "ttl_ms": _TTL_MS}
        )
        if record == self._last and self.client.pexpire(member_stats_key(self.member), _TTL_MS):
            return
        self.client.set(member_stats_key(self.member), record, px=_TTL_MS)
        self._last = record

    def delete(self) -> None:
        self.client.delete(member_stats_key(self.member))
