"""What each reply of a round trip means for the `Outbox`'s entries (`pipeline.streams.outbox`): written
(acknowledged entries are remembered, `Retained`, and expected to stay), lost by Redis (the kept ones sent
again, in front), fenced (the lease is gone: the source is dropped), or refused for good (the source fails).
A mixin: it works on the Outbox's own state.
"""

from __future__ import annotations

import logging

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.entry_ids import format_id, last_id, parse_id
from affectstream.pipeline.streams.keys import frames_key, source_of
from affectstream.pipeline.streams.outbox_state import OutboxState
from affectstream.pipeline.streams.writer import Fenced, RedisLostData, Written

log = logging.getLogger(__name__)


class OutboxReplies(OutboxState):
    """Reply handling, mixed into `Outbox`, whose attributes it uses."""

    def _resend_lost(self, key: str, lost: RedisLostData, todo: dict[str, list]) -> bool:
        """Redis lost acknowledged entries of `key` (a failover, a restart): put those still kept in front of
        the key's pending entries, same ids, and expect the stream's last id as it is now. False for a file
        pass whose lost entries are no longer all kept: the worker's restart reads the file again from what
        the stream has. A live source's entries no longer kept are gone: said in an `error` event
        (`redis_data_lost`) and counted in `data_lost`."""
        source = source_of(key)
        kept, complete = self._retained.since(key, lost.last)
        if not complete and source in self.resume_after and key not in self._finished:
            return False
        log.warning(
            "%s: Redis lost entries after %s (a failover or a restart); sending the %d kept here again",
            key,
            lost.last,
            len(kept),
        )
        if not complete:
            self._report_lost(key, lost.last)
        self._expect[key] = lost.last
        todo[key] = kept + todo.get(key, [])
        self._tails_due = True  # the server lost data: the other streams may have lost some too
        return True

    def _check_other_tails(self, todo: dict[str, list]) -> None:
        """After a server change or a loss (`_tails_due`), before the next attempt: check every other stream this worker wrote,
        not only those it writes now (a file whose pass ended, a camera between frames), and put what they
        lost into `todo` too. A connection error midway leaves it due for the attempt after."""
        if not self._tails_due:
            return
        for key, expect in list(self._expect.items()):
            if key in todo:
                continue
            last = format_id(last_id(self.client, key))
            if parse_id(last) < parse_id(expect):
                self._resend_lost(key, RedisLostData(key, last), todo)
            else:
                self._verify.discard(key)
        self._tails_due = False

    def _report_lost(self, key: str, last: str) -> None:
        """Entries of `key` above `last` that Redis lost and this worker no longer holds: an `error` event
        (`redis_data_lost`) and `data_lost`."""
        source = source_of(key)
        self.data_lost[source] += 1
        detail = f"Redis lost entries of {key} after {last} that this worker no longer holds"
        log.error("source %s: %s", source, detail)
        if source in self._event_ids:
            self._queue_event(source, "error", {"reason": "redis_data_lost", "detail": detail})

    def _settle(self, key: str, reply: Written | Exception, entries: list, is_events: bool) -> None:
        source = source_of(key)
        if isinstance(reply, Written):
            if reply.rejected:
                self._rejected.update(reply.rejected)
                log.error(
                    "%s: %d entries not written: another writer went past their ids", key, len(reply.rejected)
                )
            acknowledged = [e for e in entries if e[0] not in reply.rejected]
            if acknowledged:  # Redis must keep these: checked at the stream's next write (`_resend_lost`)
                self._expect[key] = max(self._expect.get(key, "0-0"), acknowledged[-1][0], key=parse_id)
                self._retained.add(key, acknowledged)
            if is_events:
                self.lost_events += len(reply.rejected)
                self._events_done(key, entries)
                self._finish_pass(source, entries)
            return
        if isinstance(reply, RedisLostData):
            raise reply
        if isinstance(reply, Fenced):
            if is_events:
                self._events_done(key, entries)
            elif key == frames_key(source):  # (a tracks key's entries are not frames)
                self.dropped.add(source, "fenced", len(entries))
            if source not in self._fenced:
                self._fenced.add(source)
                log.warning("source %s: %s", source, reply)
                # Only while the source still holds the lease this write was fenced with: else the claim loop
                # dropped it already (keep the `lost` it queued) or claimed it again (a new, valid lease).
                if self._fences.get(source) == self._sent_fences.get(key):
                    self.remove_source(source)
                    self._on_fenced(source, reply.holder)
            return
        reason = f"Redis refused writes to {key}: {mask_text(str(reply))}"
        if is_events:
            # The source's frames may still be fine, but nothing will ever say so: fail it.
            self.lost_events += len(entries)
            self._events_done(key, entries)
        self._fail_source(source, reason)

    def _fail_source(self, source: str, reason: str) -> None:
        if source in self.failed:
            return
        self.failed[source] = reason
        log.error("source %s failed: %s", source, reason)
        self._on_source_failed(source, reason)
        self.add_event(source, "error", {"reason": reason})
