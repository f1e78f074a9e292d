"""How long ago a beat was written, by Redis's clock alone (DESIGN.md "Clocks").

A beat (a fleet member's record, a worker's heartbeat) is a key written with `SET ... PX ttl` whose payload
states that TTL (`ttl_ms`). Redis counts the TTL down on its own clock, so `ttl_ms - PTTL` is the time since
the write as Redis measured it. Neither the writer's wall clock nor the reader's takes part: a member whose
clock is minutes off is exactly as alive as its beats are recent, and a reader on another host judges it
the same. The wall-clock `ts` in a payload stays as data (shown, never compared).
"""

from __future__ import annotations

from typing import Any

from affectstream.pipeline.streams.keys import text


def read_with_pttl(client, keys: list[str]) -> list[tuple[str | None, int]]:
    """(value as text or None, PTTL in ms) of each key, in one round trip (one key per command: any
    cluster slot)."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.pttl(key)
    replies = pipe.execute()
    return [
        (None if raw is None else text(raw), int(pttl))
        for raw, pttl in zip(replies[::2], replies[1::2], strict=True)
    ]


def beat_age_s(doc: dict[str, Any], pttl_ms: int, default_ttl_ms: float | None = None) -> float | None:
    """Seconds since a beat was written, from its key's PTTL and the TTL it was written with (the payload's
    `ttl_ms`, else `default_ttl_ms`); None when that cannot be known (no TTL stated, the key has no TTL)."""
    ttl = doc.get("ttl_ms", default_ttl_ms)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0 or pttl_ms < 0:
        return None
    return round(max(0.0, ttl - pttl_ms) / 1000, 3)
