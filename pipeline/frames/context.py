"""One source's state across its frames: the tracker, the smoother and the detection cadence.

The stages (`processor.FrameProcessor`) hold no per-source state; a worker's lane, an archive job and
`render` each keep one `SourceContext` per source and pass it to the stages in frame order.
"""

from __future__ import annotations

from affectstream.pipeline.frames.smooth import CausalSmoother
from affectstream.pipeline.frames.track import IoUTracker
from affectstream.pipeline.types import Detection, Frame, FrameResult


class SourceContext:
    """Everything that depends on one source's earlier frames (tracker, smoother) and how it is detected
    (cadence, detector input).

    Call `detect_due` once per frame in frame order, and `track` and `smooth` in frame order too.

    Args:
        name: The source's name.
        detect_every: Run the detector on every Nth frame; the tracker carries the boxes in between.
        smooth_window: Per-track causal smoothing over this many observations (1 = off).
        detector_input: The detector input of this source's frames, a size or "auto"; None: the
            detector's own (live cameras and files differ, `FrameProcessor.new_source`).
        detect_phase: Which frames of each `detect_every` are detected after the first one (which always
            is, as the first after a reset): cameras started together at one frame rate would otherwise all
            need the detector on the same frames, and a burst of detections is what drops a camera's frames.
    """

    def __init__(
        self,
        name: str,
        *,
        detect_every: int = 1,
        smooth_window: int = 1,
        detector_input: tuple[int, int] | str | None = None,
        detect_phase: int = 0,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.name = name
        self.detect_every = detect_every
        self.detect_phase = detect_phase % detect_every
        self.detector_input = detector_input
        self.tracker = IoUTracker()
        self.smoother = CausalSmoother(smooth_window)
        self.connection = 0  # the source connection of the last frame tracked
        self._seen = 0  # frames counted by `detect_due` since the last reset

    def detect_due(self) -> bool:
        """Whether the next frame is a detection frame; counts that frame."""
        n, self._seen = self._seen, self._seen + 1
        return n == 0 or (n - self.detect_phase) % self.detect_every == 0

    def reset(self) -> None:
        """Forget the tracks (a reconnect, an archive chunk); the next frame is detected. Track ids keep
        counting, never reused."""
        self.tracker.reset()
        self._seen = 0

    def track(self, frame: Frame, detections: list[Detection] | None) -> tuple[list[Detection], list[int]]:
        """Track ids for `frame`'s detections, or the carried tracks when it was not detected (None); and
        the ids of the tracks that ended at this frame (gone from view, or the camera reconnected)."""
        ended: list[int] = []
        if frame.connection != self.connection:  # the camera reconnected: faces seen before are other tracks
            self.connection = frame.connection
            self.reset()
            ended = self.tracker.ended
        if detections is None:
            return self.tracker.carry(), ended
        faces = self.tracker.update(detections)
        return faces, ended + self.tracker.ended

    def smooth(self, result: FrameResult) -> FrameResult:
        return self.smoother.apply(result)
