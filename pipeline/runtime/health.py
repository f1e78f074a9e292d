"""Liveness from Redis: the check behind `affectstream health` (and compose and Kubernetes probes).

By default it judges this host's workers only, so that a container's probe says whether *its* workers
are alive, not whether the fleet is; `--all` judges every worker and the fleet (members that stopped
beating, desired cameras nobody holds).

A beat's age is Redis's (`pipeline.streams.liveness`: the TTL it was written with minus its key's PTTL), never this
host's clock minus the writer's `ts`: a worker on a host whose clock is off is judged by when it beat.
"""

from __future__ import annotations

import json

import redis

from affectstream.pipeline.streams.keys import HEARTBEAT_PATTERN, heartbeat_ttl_s, text, worker_of
from affectstream.pipeline.streams.liveness import beat_age_s, read_with_pttl


def _on_host(worker: str, beat: dict, host: str) -> bool:
    # Workers name their host (`keys.host_id`) in their beat, since `--member` may choose an id without
    # it; a beat of an older worker has no host, and its id is `{host}-{pid}-w<i>`.
    return beat["host"] == host if "host" in beat else worker.startswith(f"{host}-")


def worker_health(
    client: redis.Redis, stale_after_s: float, host: str | None = None, beat_ttl_s: float | None = None
) -> tuple[bool, list[str]]:
    """(healthy, one line per worker). Unhealthy when no worker has a heartbeat or any is stale.

    Args:
        client: Redis client.
        stale_after_s: A heartbeat older than this (by Redis's clock) is stale.
        host: Judge only the workers of this host (`keys.host_id()`); None: every worker.
        beat_ttl_s: The TTL of heartbeats that do not state theirs (`ttl_ms`):
            `keys.heartbeat_ttl_s(workers.stale_after_s)` of the workers' config; None: of `stale_after_s`.
    """
    ttl_s = heartbeat_ttl_s(stale_after_s) if beat_ttl_s is None else beat_ttl_s
    lines, healthy = [], True
    keys = sorted(text(k) for k in client.scan_iter(match=HEARTBEAT_PATTERN, count=1000))
    for key, (raw, pttl) in zip(keys, read_with_pttl(client, keys), strict=True):
        if raw is None:
            continue
        beat = json.loads(raw)
        worker = worker_of(key)
        if host is not None and not _on_host(worker, beat, host):
            continue
        age = beat_age_s(beat, pttl, ttl_s * 1000)
        stale = age is None or age > stale_after_s
        healthy &= not stale
        when = "age unknown: its key has no TTL" if age is None else f"last beat {age:.1f} s ago"
        lines.append(
            f"{worker}: {'STALE' if stale else 'ok'} ({when}, pid {beat['pid']}, published {beat['published']}"
            f"{_dropped(beat)})"
        )
    if not lines:
        return False, ["no worker heartbeat found" + (f" on host {host}" if host is not None else "")]
    return healthy, lines


def _dropped(beat: dict) -> str:
    """ ", dropped N (reason n, ...)" over the beat's sources; "" when nothing was dropped."""
    reasons: dict[str, int] = {}
    for stats in (beat.get("stats") or {}).values():
        for reason, n in (stats.get("dropped_by") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
    if not any(reasons.values()):
        return ""
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()) if n)
    return f", dropped {sum(reasons.values())} ({why})"


def fleet_health(client: redis.Redis, stale_after_s: float) -> tuple[bool, list[str]]:
    """(healthy, one line per problem) of the fleet: a member record older than `stale_after_s`, a
    desired camera that no member holds. No fleet (no cameras, no members) is healthy. A record's age is
    Redis's (`fleet.status.read_members`)."""
    from affectstream.pipeline.fleet.status import fleet_status

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
