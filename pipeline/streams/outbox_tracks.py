"""The track events half of the `Outbox` (`pipeline.streams.outbox`): each published frame's track events
(`pipeline.streams.tracks`) go into the same round trip as the frame, under the same fence, with ids derived
from the frame's; when a source ends (`eof`, `stopped`, `released`, `lost`) its open tracks end with it, in
the round trip of that event. A mixin: it works on the Outbox's own state.
"""

from __future__ import annotations

from affectstream.pipeline.streams.keys import source_of, tracks_key
from affectstream.pipeline.streams.outbox_state import OutboxState
from affectstream.pipeline.streams.tracks import TrackEvents
from affectstream.pipeline.types import FrameResult

ENDS_TRACKS = ("eof", "stopped", "released", "lost")  # events after which a source has no more frames here


class OutboxTracks(OutboxState):
    """Track events per source; `_track_updates_s` None: none are written. Mixed into `Outbox`."""

    _track_updates_s: float | None
    _tracks: dict[str, TrackEvents]

    def _open_tracks(self, source: str) -> None:
        if self._track_updates_s is not None:
            self._tracks[source] = TrackEvents(source, self._track_updates_s)

    def _track_entries(self, r: FrameResult, frames: dict[str, list]) -> None:
        """Add `r`'s track entries (its `entry_id` just chosen: once per frame) to the round trip."""
        tracks = self._tracks.get(r.source)
        if tracks is not None:
            entries = tracks.frame(r)
            if entries:
                frames.setdefault(tracks_key(r.source), []).extend(entries)

    def _close_tracks(self, events: dict[str, list], frames: dict[str, list]) -> dict[str, list]:
        """End the open tracks of the sources that `events` (ready to go) end; returns `frames`."""
        for key, entries in events.items():
            reason = next((f["kind"] for _id, f in entries if f.get("kind") in ENDS_TRACKS), None)
            tracks = self._tracks.get(source_of(key)) if reason else None
            if tracks is not None and reason is not None:
                closing = tracks.close(reason)
                if closing:
                    frames.setdefault(tracks_key(tracks.source), []).extend(closing)
        return frames
