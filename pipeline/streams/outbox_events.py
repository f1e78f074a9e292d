"""The events half of the `Outbox` (`pipeline.streams.outbox`): a source's events queued in order, ids and
times fixed when they happen, sent with the frames' round trips; an `eof` held until every frame of its
source is published and made to say how many frames of the pass are in the stream; a finished pass's
record closed once its `eof` is in. A mixin: it works on the Outbox's own state, under its lock.
"""

from __future__ import annotations

import logging
import time

import redis

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.encode import encode_event
from affectstream.pipeline.streams.entry_ids import PassIds
from affectstream.pipeline.streams.keys import events_key, frames_key, source_of
from affectstream.pipeline.streams.outbox_state import OutboxState
from affectstream.pipeline.streams.writer_leases import finish_pass

log = logging.getLogger(__name__)

HELD_UNTIL_DRAINED = ("eof",)  # events that must follow the source's last frame


class OutboxEvents(OutboxState):
    """Events queued per source; see the module docstring. Mixed into `Outbox`, whose attributes it uses."""

    def add_event(self, source: str, kind: str, detail: dict | None = None) -> None:
        """Queue an event (any thread); its id and time are fixed now. Events of a source this worker
        no longer has (its reader's last words after a lost lease) are dropped."""
        if self.owns(source):
            self._queue_event(source, kind, detail)

    def _queue_event(self, source: str, kind: str, detail: dict | None) -> None:
        ts = time.time()
        entry = (
            self._event_ids[source](0, ts),
            encode_event(source, kind, detail, ts=ts, worker=self.worker),
        )
        with self._lock:
            self._events[source].append((kind, entry))

    def _ready_events(self) -> dict[str, list]:
        """Queued events that may go now, per events key, in order (a held `eof` and what follows it wait)."""
        out: dict[str, list] = {}
        eofs = []
        with self._lock:
            for source, queue in self._events.items():
                ready = []
                for kind, entry in queue:
                    if kind in HELD_UNTIL_DRAINED and not self._drained(source):
                        break
                    if kind == "eof":
                        eofs.append((source, entry[1]))
                    ready.append(entry)
                if ready:
                    out[events_key(source)] = ready
        for source, fields in eofs:
            self._count_pass(source, fields)
        return out

    def _count_pass(self, source: str, fields: dict) -> None:
        """Make a file's `eof` say how many frames of its pass are in the stream; fewer than the reader
        decoded fails the source (the run must not exit 0 on a partial pass)."""
        if source not in self.resume_after or "decoded" in fields:
            return  # a camera's, or counted already (a retry)
        in_stream = self.resume_after[source] + 1 + self._pass_published[source]
        decoded = int(fields.get("frames", in_stream))
        fields["frames"], fields["decoded"] = str(in_stream), str(decoded)
        if in_stream != decoded:
            self._fail_source(
                source,
                f"pass incomplete: {in_stream} of the {decoded} frames decoded are in {frames_key(source)}",
            )

    def _events_done(self, key: str, entries: list) -> None:
        """Unqueue the events of `entries` (the head of the source's queue when they were sent). By id, not
        by count: the queue may have been cleared meanwhile and hold a newer event (`lost`) that must stay."""
        sent = {entry_id for entry_id, _fields in entries}
        with self._lock:
            queue = self._events[source_of(key)]
            while queue and queue[0][1][0] in sent:
                queue.popleft()

    def pending_events(self, source: str | None = None) -> int:
        with self._lock:
            if source is not None:
                return len(self._events.get(source, ()))
            return sum(len(q) for q in self._events.values())

    def flush_events(self) -> None:
        """Publish every queued event (at shutdown: held ones too, whatever the drain state)."""
        self._drained = lambda _source: True
        events = self._ready_events()
        if events:
            self._send(self._close_tracks(events, {}), events)

    def _finish_pass(self, source: str, entries: list) -> None:
        """Once a file's `eof` is in its stream, its pass is no longer one to resume (`pipeline.streams.writer_leases`)."""
        ids = self._frame_ids.get(source)
        if not isinstance(ids, PassIds) or not any(fields.get("kind") == "eof" for _id, fields in entries):
            return
        self._finished.add(frames_key(source))  # lost later: reported, not read again (`_resend_lost`)
        try:
            finish_pass(self.client, source, ids.base)
        except redis.RedisError as exc:  # a later run resumes the finished pass: it only re-reads the file
            log.warning("source %s: could not close its pass record: %s", source, mask_text(str(exc)))
