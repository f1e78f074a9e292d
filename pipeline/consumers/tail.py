"""`affectstream tail`: the newest result entries of one or many sources, as a table or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TextIO

import redis

from affectstream.pipeline.errors import AffectstreamError
from affectstream.pipeline.streams.entries import Entry, list_sources, resolve_sources
from affectstream.pipeline.streams.read import latest, read_results

COLUMNS = (("time", 12), ("source", 16), ("frame", 7), ("pts", 9), ("n", 2), ("ms", 7), ("faces", 0))


def entry_dict(entry: Entry) -> dict:
    """A JSON-ready view of an entry: the schema-v1 fields, faces decoded, plus the stream id."""
    r = entry.result
    faces = [
        {
            "track": f.track,
            "box": f.box,
            "score": f.score,
            "expr": f.expr,
            "probs": f.probs,
            "valence": f.valence,
            "arousal": f.arousal,
        }
        for f in r.faces
    ]
    for face in faces:  # absent stays absent: a model without valence-arousal has none (not null)
        for name in ("valence", "arousal"):
            if face[name] is None:
                del face[name]
    return {
        "id": entry.id,
        "source": r.source,
        "frame": r.frame,
        "pts": r.pts,
        "ts": r.ts,
        "n": len(faces),
        "faces": faces,
        "model": r.model,
        "latency_ms": r.latency_ms,
    }


def _signed(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:+.2f}"


def face_summary(entry: Entry) -> str:
    """`#3 Happy 0.82 V+0.41 A-0.12; #4 ...` (or `-` when no face)."""
    parts = [
        f"#{f.track} {f.expr} {f.probs.get(f.expr, 0.0):.2f} V{_signed(f.valence)} A{_signed(f.arousal)}"
        for f in entry.result.faces
    ]
    return "; ".join(parts) or "-"


def format_row(entry: Entry) -> str:
    r = entry.result
    clock = datetime.fromtimestamp(r.ts).strftime("%H:%M:%S.%f")[:-3]
    cells = (
        clock,
        r.source,
        str(r.frame),
        f"{r.pts:.3f}",
        str(len(r.faces)),
        f"{r.latency_ms:.1f}",
        face_summary(entry),
    )
    return "  ".join(c.ljust(w) if w else c for c, (_, w) in zip(cells, COLUMNS, strict=True)).rstrip()


def header() -> str:
    return "  ".join(name.ljust(w) if w else name for name, w in COLUMNS).rstrip()


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def newest(client: redis.Redis, sources: Iterable[str], n: int) -> list[Entry]:
    """The newest `n` entries over all `sources`, oldest first (ordered by capture time)."""
    if n <= 0:  # `tail -n 0 -f`: new entries only (XREVRANGE refuses COUNT 0)
        return []
    entries = [e for s in sources for e in latest(client, s, n)]
    entries.sort(key=lambda e: (e.result.ts, e.source, _id_key(e.id)))
    return entries[-n:]


def tail(
    client: redis.Redis,
    patterns: list[str],
    *,
    n: int = 10,
    follow: bool = False,
    as_json: bool = False,
    out: TextIO,
    should_stop: Callable[[], bool] | None = None,
    start: timedelta | datetime | None = None,
) -> int:
    """Print the newest `n` entries of the sources matching `patterns` (or, given `start`, every entry
    from that time on: a `timedelta` before Redis's clock now, or a datetime), then follow if asked.

    Returns:
        The number of entries printed.

    Raises:
        AffectstreamError: Without `follow`, when no source matches (the message lists what exists).
    """
    if n < 0:
        raise AffectstreamError(f"-n must be >= 0, got {n}")
    sources = resolve_sources(client, patterns)
    existing = set(list_sources(client))
    if not follow and not any(s in existing for s in sources):
        have = ", ".join(sorted(existing)[:20]) or "none"
        raise AffectstreamError(f"no results stream matches {patterns}; sources present: {have}")
    # Open the follower before reading the backlog, so nothing published in between is lost;
    # entries that land in both are printed once (ids only grow within a stream).
    follower = None
    if follow and start is None:
        follower = read_results(client, patterns, start="$", should_stop=should_stop)

    printed = 0
    last: dict[str, tuple[int, int]] = {}

    def emit(entry: Entry) -> None:
        nonlocal printed
        key = _id_key(entry.id)
        if key <= last.get(entry.source, (-1, -1)):
            return
        last[entry.source] = key
        out.write((json.dumps(entry_dict(entry)) if as_json else format_row(entry)) + "\n")
        out.flush()
        printed += 1

    if not as_json:
        out.write(header() + "\n")
    if start is not None:  # one reader: the replay from `start`, then (follow) what comes after it
        for entry in read_results(client, patterns, start=start, follow=follow, should_stop=should_stop):
            emit(entry)
        return printed
    for entry in newest(client, [s for s in sources if s in existing], n):
        emit(entry)
    if follower is not None:
        for entry in follower:
            emit(entry)
    return printed
