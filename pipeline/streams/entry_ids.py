"""Stream entry ids, chosen once per entry and reused on every retry (the exactly-once rule, DESIGN.md).

Two rules, one mechanism (`pipeline.streams.writer.StreamWriter` adds only ids above the stream's last id):

- A **pass** over a file (`PassIds`): `<base>-<frame index>`. `base` is fixed when `affectstream run`
  starts (wall-clock ms, above the stream's last id), so a restarted worker of the same run recomputes
  the same ids and resumes after the last frame its pass published, and a new run appends a full new pass.
- A **clock** (`ClockIds`): live frames and events get `<capture ms>-<seq>`, never below the last id:
  consumers can still read a camera's stream by time (XRANGE with ms bounds).
"""

from __future__ import annotations

import threading
import time

import redis

Id = tuple[int, int]


def parse_id(text: str | bytes) -> Id:
    """`"1700000000000-3"` -> (1700000000000, 3)."""
    if isinstance(text, bytes):
        text = text.decode()
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry: Id) -> str:
    return f"{entry[0]}-{entry[1]}"


def last_id(client: redis.Redis, key: str) -> Id:
    """The stream's last generated id ((0, 0) when the stream does not exist)."""
    try:
        info = client.xinfo_stream(key)
    except redis.ResponseError as exc:
        text = str(exc).lower()
        # No stream yet; or a key of another type, which the first write reports, failing that source alone.
        if "no such key" in text or text.startswith("wrongtype"):
            return (0, 0)
        raise
    return parse_id(info["last-generated-id"])


def pass_base_after(last: Id) -> int:
    """The `base` of a new pass over a file: now in ms (data: a consumer may read passes by time), but
    always above the stream's last id, however the wall clock was set."""
    return max(int(time.time() * 1000), last[0] + 1)


class PassIds:
    """Ids of one pass over a file: frame i -> `<base>-<i>`."""

    def __init__(self, base: int) -> None:
        self.base = base

    def __call__(self, frame: int, ts: float) -> str:
        return f"{self.base}-{frame}"

    def last_frame(self, last: Id) -> int:
        """The last frame this pass has in a stream whose last id is `last`; -1 when none."""
        return last[1] if last[0] == self.base else -1


class ClockIds:
    """Strictly increasing ids from capture times: `<max(ts ms, last ms)>-<seq>` (thread-safe)."""

    def __init__(self, after: Id = (0, 0)) -> None:
        self._last = after
        self._lock = threading.Lock()

    def __call__(self, frame: int, ts: float) -> str:
        ms = int(ts * 1000)
        with self._lock:
            last_ms, last_seq = self._last
            self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
            return format_id(self._last)
