"""IoU face tracker: stable track ids across frames, and boxes carried between detections.

One tracker per source. Call `update(detections)` on frames the detector ran on and `carry()` on
the frames in between (`detect_every: N` > 1), exactly once per frame either way: the tracker
counts those calls as frames to extrapolate motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from affectstream.pipeline.types import Detection


def iou_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pairwise intersection over union of [N, 4] and [M, 4] x1, y1, x2, y2 boxes -> [N, M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class _Track:
    id: int
    det: Detection  # last matched detection
    box_velocity: np.ndarray  # [4] pixels per frame
    kps_velocity: np.ndarray  # [5, 2] pixels per frame
    interval: int = 1  # frames between its last two matches
    since: int = 0  # frames since its last match
    missed: int = 0  # consecutive updates without a match


class IoUTracker:
    """Greedy IoU matching of detections to tracks, with optional constant-velocity motion.

    Args:
        iou_threshold: Minimum IoU between a track's (predicted) box and a detection to match.
        max_missed: A track ends after this many consecutive `update` calls without a match; until
            then a face the detector missed briefly keeps its id when it is found again.
        extrapolate: Move carried and predicted boxes with each track's velocity, measured between
            its last two matches (capped at one detection interval ahead, so a stalled detector does
            not send boxes off the frame).

    Track ids start at 1, increase, and are never reused by one tracker (`reset` keeps the counter).
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, *, extrapolate: bool = True) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold {iou_threshold!r} must be in (0, 1]")
        if max_missed < 0:
            raise ValueError(f"max_missed {max_missed!r} must be >= 0")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.extrapolate = extrapolate
        self._tracks: list[_Track] = []
        self._next_id = 1
        self.ended: list[int] = []  # ids of the tracks that ended at the last update

    @property
    def active(self) -> list[int]:
        """Ids of the live tracks (including ones missed for up to `max_missed` updates)."""
        return [t.id for t in self._tracks]

    def reset(self) -> None:
        """Forget all tracks (new file, reconnect); later ids still never repeat earlier ones."""
        self.ended = [t.id for t in self._tracks]
        self._tracks = []

    def _ahead(self, track: _Track) -> int:
        return min(track.since, track.interval) if self.extrapolate else 0

    def _predicted_box(self, track: _Track) -> np.ndarray:
        return track.det.box + track.box_velocity * self._ahead(track)

    def update(self, detections: list[Detection]) -> list[Detection]:
        """Assign track ids to one frame's detections.

        Args:
            detections: The detector's output for this frame.

        Returns:
            The same detections (order kept), each with `track` set: a matched track's id, or a new id.
        """
        for track in self._tracks:
            track.since += 1
        pairs = self._match(detections)
        matched_tracks = set()
        for ti, di in pairs:
            track, det = self._tracks[ti], detections[di]
            if self.extrapolate:
                track.box_velocity = (det.box - track.det.box) / track.since
                track.kps_velocity = (det.landmarks - track.det.landmarks) / track.since
            track.interval, track.since, track.missed = track.since, 0, 0
            track.det = det
            det.track = track.id
            matched_tracks.add(ti)
        kept, self.ended = [], []
        for ti, track in enumerate(self._tracks):
            if ti not in matched_tracks:
                track.missed += 1
                if track.missed > self.max_missed:
                    self.ended.append(track.id)
                    continue
            kept.append(track)
        matched_dets = {di for _, di in pairs}
        for di, det in enumerate(detections):
            if di not in matched_dets:
                det.track = self._next_id
                self._next_id += 1
                kept.append(_Track(det.track, det, np.zeros(4, np.float32), np.zeros((5, 2), np.float32)))
        self._tracks = kept
        return detections

    def _match(self, detections: list[Detection]) -> list[tuple[int, int]]:
        if not self._tracks or not detections:
            return []
        predicted = np.stack([self._predicted_box(t) for t in self._tracks])
        iou = iou_matrix(predicted, np.stack([d.box for d in detections]))
        pairs: list[tuple[int, int]] = []
        # Greedy by IoU: faces rarely overlap, so it agrees with the optimal (Hungarian) assignment
        # in practice and needs no scipy at runtime.
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            ti, di = divmod(int(flat), iou.shape[1])
            if iou[ti, di] < self.iou_threshold:
                break
            if any(ti == p or di == q for p, q in pairs):
                continue
            pairs.append((ti, di))
        return pairs

    def carry(self) -> list[Detection]:
        """The faces of the last detection, for a frame the detector skipped.

        Returns:
            New `Detection`s (track ids set) for the tracks matched at the last update, moved by their
            velocity when `extrapolate` is on.
        """
        out = []
        for track in self._tracks:
            track.since += 1
            if track.missed:
                continue  # not seen at the last detection: nothing to carry
            ahead = self._ahead(track)
            out.append(
                Detection(
                    box=(track.det.box + track.box_velocity * ahead).astype(np.float32),
                    score=track.det.score,
                    landmarks=(track.det.landmarks + track.kps_velocity * ahead).astype(np.float32),
                    track=track.id,
                )
            )
        return out
