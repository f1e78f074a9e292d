"""Worker liveness from heartbeat keys: the check behind `affectstream health` (and compose healthchecks)."""

from __future__ import annotations

import json
import time

import redis

from pipeline.keys import HEARTBEAT_PATTERN, worker_of


def worker_health(client: redis.Redis, stale_after_s: float) -> tuple[bool, list[str]]:
    """(healthy, one line per worker). Unhealthy when no worker has a heartbeat or any is stale."""
    lines, healthy, now = [], True, time.time()
    keys = sorted(client.scan_iter(match=HEARTBEAT_PATTERN, count=1000))
    for key in keys:
        raw = client.get(key)
        if raw is None:
            continue
        beat = json.loads(raw)
        age = now - float(beat["ts"])
        stale = age > stale_after_s
        healthy &= not stale
        worker = worker_of(key)
        state = "STALE" if stale else "ok"
        lines.append(
            f"{worker}: {state} (last beat {age:.1f} s ago, pid {beat['pid']}, published {beat['published']})"
        )
    if not lines:
        return False, ["no worker heartbeat found"]
    return healthy, lines
