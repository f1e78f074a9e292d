"""Liveness from Redis: the check behind `affectstream health` (and compose and Kubernetes probes).

By default it judges this host's workers only, so that a container's probe says whether *its* workers
are alive, not whether the fleet is; `--all` judges every worker and the fleet (members that stopped
beating, desired cameras nobody holds).
"""

from __future__ import annotations

import json
import time

import redis

from pipeline.keys import HEARTBEAT_PATTERN, worker_of


def _on_host(worker: str, beat: dict, host: str) -> bool:
    # Workers name their host (`keys.host_id`) in their beat, since `--member` may choose an id without
    # it; a beat of an older worker has no host, and its id is `{host}-{pid}-w<i>`.
    return beat["host"] == host if "host" in beat else worker.startswith(f"{host}-")


def worker_health(
    client: redis.Redis, stale_after_s: float, host: str | None = None
) -> tuple[bool, list[str]]:
    """(healthy, one line per worker). Unhealthy when no worker has a heartbeat or any is stale.

    Args:
        client: Redis client.
        stale_after_s: A heartbeat older than this is stale.
        host: Judge only the workers of this host (`keys.host_id()`); None: every worker.
    """
    lines, healthy, now = [], True, time.time()
    keys = sorted(client.scan_iter(match=HEARTBEAT_PATTERN, count=1000))
    for key in keys:
        raw = client.get(key)
        if raw is None:
            continue
        beat = json.loads(raw)
        worker = worker_of(key)
        if host is not None and not _on_host(worker, beat, host):
            continue
        age = now - float(beat["ts"])
        stale = age > stale_after_s
        healthy &= not stale
        state = "STALE" if stale else "ok"
        lines.append(
            f"{worker}: {state} (last beat {age:.1f} s ago, pid {beat['pid']}, published {beat['published']})"
        )
    if not lines:
        return False, ["no worker heartbeat found" + (f" on host {host}" if host is not None else "")]
    return healthy, lines


def fleet_health(client: redis.Redis, stale_after_s: float) -> tuple[bool, list[str]]:
    """(healthy, one line per problem) of the fleet: a member record older than `stale_after_s`, a
    desired camera that no member holds. No fleet (no cameras, no members) is healthy."""
    from pipeline.fleet.status import fleet_status

    status = fleet_status(client)
    lines = [
        f"member {m['member']}: STALE (last beat {m['beat_age_s']} s ago)"
        for m in status["members"]
        if m["beat_age_s"] is None or m["beat_age_s"] > stale_after_s
    ]
    lines += [f"camera {c['name']}: UNOWNED" for c in status["cameras"] if c["desired"] and not c["owner"]]
    lines += [f"unreadable: {what}" for what in status["unreadable"]]
    desired = [c for c in status["cameras"] if c["desired"]]
    held = sum(bool(c["owner"]) for c in desired)
    summary = f"fleet: {len(status['members'])} member(s), {held} of {len(desired)} camera(s) held"
    return not lines, [summary, *lines]
