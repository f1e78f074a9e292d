"""Track events: a face's `start`, its `update`s and its `end`, on `affect:{<source>}:tracks` (tracks v1).

`TrackEvents` turns one source's published results, in frame order, into those entries: `start` on the
first frame a track is in (its box), `update` at most every `update_every_s` seconds of the source's time
(`pts`) while it stays (the current expression and valence-arousal, so far), `end` when the tracker lets it
go (`FrameResult.ended_tracks`) or the source ends (`close`), with the whole track's account: duration,
frames, mean valence and arousal, the dominant expression and its share, and the peak expression (the
strongest single-frame expression other than Neutral; Neutral's when it showed nothing else).

Exactly once, like frames: an entry's id is derived from its frame's entry id, `<ms>-<seq * 10000 + i>`
for the i-th track event of that frame, so the ids grow with the frames' and a retry (or a restarted
worker re-deriving them) writes the same ids, which the writer's script adds once
(`pipeline.streams.writer`). The outbox sends them in the frames' round trip, under the same fence.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from affectstream.pipeline.streams.entry_ids import parse_id
from affectstream.pipeline.types import FaceResult, FrameResult

TRACKS_VERSION = 1
PER_FRAME = 10_000  # track event ids per frame id: more events than this on one frame are not written
NEUTRAL = "Neutral"


@dataclass
class _Track:
    """What one open track has shown so far."""

    id: int
    first_frame: int
    first_pts: float
    last_frame: int
    last_pts: float
    last_ts: float
    reported_pts: float  # when its last start/update was
    frames: int = 0
    va_frames: int = 0
    valence_sum: float = 0.0
    arousal_sum: float = 0.0
    expressions: Counter[str] = field(default_factory=Counter)
    # (probability, expression, frame) of the strongest frame other than Neutral, and of Neutral's
    peak: tuple[float, str, int] = (-1.0, NEUTRAL, -1)
    neutral_peak: tuple[float, str, int] = (-1.0, NEUTRAL, -1)

    def add(self, r: FrameResult, face: FaceResult) -> None:
        self.frames += 1
        self.last_frame, self.last_pts, self.last_ts = r.frame, r.pts, r.ts
        self.expressions[face.expr] += 1
        if face.valence is not None and face.arousal is not None:
            self.va_frames += 1
            self.valence_sum += face.valence
            self.arousal_sum += face.arousal
        p = face.probs.get(face.expr, 0.0)
        if face.expr != NEUTRAL and p > self.peak[0]:
            self.peak = (p, face.expr, r.frame)
        elif face.expr == NEUTRAL and p > self.neutral_peak[0]:
            self.neutral_peak = (p, face.expr, r.frame)

    def account(self) -> dict:
        """The `end` event's detail."""
        expr, count = self.expressions.most_common(1)[0]
        prob, peak, frame = self.peak if self.peak[2] >= 0 else self.neutral_peak
        out = {
            "duration_s": round(self.last_pts - self.first_pts, 3),
            "frames": self.frames,
            "first_frame": self.first_frame,
            "dominant_expr": expr,
            "dominant_share": round(count / self.frames, 4),
            "peak_expr": peak,
            "peak_prob": round(prob, 4),
            "peak_frame": frame,
        }
        if self.va_frames:
            out["valence_mean"] = round(self.valence_sum / self.va_frames, 4)
            out["arousal_mean"] = round(self.arousal_sum / self.va_frames, 4)
        return out


class TrackEvents:
    """One source's track events from its results (call in frame order, once per published result).

    Args:
        source: The source's name.
        update_every_s: At most one `update` per track this often (source time, s); 0: none.
    """

    def __init__(self, source: str, update_every_s: float) -> None:
        self.source = source
        self.update_every_s = update_every_s
        self._open: dict[int, _Track] = {}
        self._last_id: tuple[int, int] | None = None  # the last frame's entry id
        self._used = 0  # track event ids of that frame used so far
        self._closed = False  # the source ended (`close`): frames still in flight open no track again

    def frame(self, r: FrameResult) -> list[tuple[str, dict[str, str]]]:
        """The track entries (id, fields) of one result, whose `entry_id` is set."""
        assert r.entry_id is not None, "track event ids derive from the frame's entry id"
        if self._closed:
            return []
        self._last_id, self._used = parse_id(r.entry_id), 0
        out = []
        for face in r.faces:
            track = self._open.get(face.track)
            if track is None:
                track = self._open[face.track] = _Track(
                    face.track, r.frame, r.pts, r.frame, r.pts, r.ts, r.pts
                )
                track.add(r, face)
                out.append(self._entry("start", track, r, _now(face)))
                continue
            track.add(r, face)
            if self.update_every_s and r.pts - track.reported_pts >= self.update_every_s:
                track.reported_pts = r.pts
                detail = {
                    **_now(face),
                    "duration_s": round(r.pts - track.first_pts, 3),
                    "frames": track.frames,
                }
                out.append(self._entry("update", track, r, detail))
        for ended in r.ended_tracks:
            track = self._open.pop(ended, None)
            if track is not None:
                out.append(self._entry("end", track, r, {**track.account(), "reason": "gone"}))
        return [entry for entry in out if entry is not None]

    def close(self, reason: str) -> list[tuple[str, dict[str, str]]]:
        """`end` for every open track (the source ended: `eof`, `stopped`, a lost lease), after the last frame."""
        self._closed = True
        if self._last_id is None:
            return []
        out = [self._entry("end", t, None, {**t.account(), "reason": reason}) for t in self._open.values()]
        self._open.clear()
        return [entry for entry in out if entry is not None]

    @property
    def open_tracks(self) -> list[int]:
        return list(self._open)

    def _entry(
        self, event: str, track: _Track, r: FrameResult | None, detail: dict
    ) -> tuple[str, dict] | None:
        assert self._last_id is not None
        if self._used >= PER_FRAME:
            return None
        ms, seq = self._last_id
        entry_id = f"{ms}-{seq * PER_FRAME + self._used}"
        self._used += 1
        frame, pts, ts = (
            (r.frame, r.pts, r.ts) if r is not None else (track.last_frame, track.last_pts, track.last_ts)
        )
        fields = {
            "v": str(TRACKS_VERSION),
            "event": event,
            "source": self.source,
            "track": str(track.id),
            "frame": str(frame),
            "pts": f"{pts:.6f}",
            "ts": f"{ts:.6f}",
        }
        for name, value in detail.items():
            fields[name] = json.dumps(value) if isinstance(value, list) else str(value)
        return entry_id, fields


def _now(face: FaceResult) -> dict:
    """A face's state on one frame, as `start` and `update` tell it."""
    out: dict = {
        "box": [round(v, 1) for v in face.box],
        "expr": face.expr,
        "prob": round(face.probs.get(face.expr, 0.0), 4),
    }
    if face.valence is not None and face.arousal is not None:
        out["valence"], out["arousal"] = round(face.valence, 4), round(face.arousal, 4)
    return out
