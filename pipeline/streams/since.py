"""Replay from a time: `10m` ago or a point in time, as the start of a read (`tail --since/--from`, the
consumer API's `start=`).

"Ago" is counted on Redis's clock (`TIME`), not this host's: stream ids of live results and events are the
Redis times they were added at, and a consumer whose clock is off must still get the last ten minutes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import redis

from affectstream.pipeline.errors import AffectstreamError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `1h30m`, `2d`, `500ms` (a bare number is seconds) as a timedelta.

    Raises:
        AffectstreamError: Anything else, naming the forms it takes.
    """
    text = text.strip().lower()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise AffectstreamError(f"{text!r} is not a duration: write e.g. 90s, 10m, 1h30m or 2d")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (`2026-12-07T16:00:00`, `2026-12-07 16:00`, with or without a UTC offset: none
    means this host's time zone) or unix seconds, as an aware datetime.

    Raises:
        AffectstreamError: Anything else.
    """
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text)).astimezone()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).astimezone()
    except ValueError:
        raise AffectstreamError(
            f"{text!r} is not a time: write e.g. 2026-12-07T16:00:00, 2026-12-07T16:00:00+00:00 or unix seconds"
        ) from None


def redis_now(client: redis.Redis) -> float:
    """Redis's clock now, unix seconds."""
    reply = client.time()
    if isinstance(reply, dict):  # a cluster client may ask each node: their clocks agree well enough
        reply = next(iter(reply.values()))
    seconds, micros = reply
    return int(seconds) + int(micros) / 1e6


def start_at(client: redis.Redis, start: str | float | datetime | timedelta | None) -> str | float | None:
    """A read's start with a `timedelta` (that long before Redis's clock now) and a datetime turned into
    unix seconds; any other start (`$`, `0`, a stream id, seconds) as given."""
    if isinstance(start, timedelta):
        return redis_now(client) - start.total_seconds()
    if isinstance(start, datetime):
        return start.timestamp()
    if isinstance(start, int | float) and not isinstance(start, bool):
        return float(start)
    return start
