"""What the parts of the `Outbox` share (`pipeline.streams.outbox`, `outbox_events`, `outbox_replies`): its
attributes, declared once with their types, and the methods one part calls on another. The Outbox sets
them all in its `__init__`; nothing here holds state of its own.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable

from affectstream.pipeline.streams.drops import DropCounts
from affectstream.pipeline.streams.entry_ids import ClockIds
from affectstream.pipeline.streams.retained import Retained
from affectstream.pipeline.streams.writer import Fence


class OutboxState:
    client: object
    worker: str
    failed: dict[str, str]  # source -> reason (permanent failures)
    lost_events: int
    dropped: DropCounts
    data_lost: Counter[str]
    resume_after: dict[str, int]  # file source -> last frame its pass already has
    _pass_published: Counter[str]
    _rejected: set[str]
    _lock: threading.Lock
    _events: dict[str, deque]
    _frame_ids: dict[str, Callable[[int, float], str]]
    _event_ids: dict[str, ClockIds]
    _expect: dict[str, str]
    _retained: Retained
    _tails_due: bool  # Redis lost data: check every expected stream's tail before the next attempt
    _verify: set[str]  # stream keys whose tail their next write checks (the server changed)
    _finished: set[str]  # frames keys of file passes whose `eof` is in their stream
    _fences: dict[str, Fence]
    _fenced: set[str]
    _sent_fences: dict[str, Fence]
    _drained: Callable[[str], bool]
    _on_source_failed: Callable[[str, str], None]
    _on_fenced: Callable[[str, str], None]

    def owns(self, source: str) -> bool:
        raise NotImplementedError

    def remove_source(self, source: str, then: tuple[str, dict] | None = None) -> None:
        raise NotImplementedError

    def add_event(self, source: str, kind: str, detail: dict | None = None) -> None:
        raise NotImplementedError

    def _queue_event(self, source: str, kind: str, detail: dict | None) -> None:
        raise NotImplementedError

    def _events_done(self, key: str, entries: list) -> None:
        raise NotImplementedError

    def _finish_pass(self, source: str, entries: list) -> None:
        raise NotImplementedError

    def _send(self, frames: dict[str, list], events: dict[str, list]) -> None:
        raise NotImplementedError

    def _fail_source(self, source: str, reason: str) -> None:
        raise NotImplementedError

    def _close_tracks(self, events: dict[str, list], frames: dict[str, list]) -> dict[str, list]:
        raise NotImplementedError
