"""Plain data passed between pipeline stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        source: Source id.
        index: 0-based index of the frame among the frames this source decoded (files: in the file).
        pts: Presentation time in seconds.
        ts: Capture wall time (unix seconds) when the frame left the decoder.
        image: H x W x 3 uint8, BGR (what insightface expects).
        connection: Which (re)connection of the source decoded it (0 = the first): faces tracked over
            a camera's previous connection are other tracks, so the tracker restarts when it changes.
        mono: This process's monotonic clock when the frame was made: what durations (latency) and
            "before or after" within the process are measured by, since `ts` jumps when the clock is set.
    """

    source: str
    index: int
    pts: float
    ts: float
    image: np.ndarray
    connection: int = 0
    mono: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Detection:
    """One face found by the detector (or carried by the tracker between detections)."""

    box: np.ndarray  # [4] float32 x1, y1, x2, y2 in frame pixels
    score: float
    landmarks: np.ndarray  # [5, 2] float32, insightface order
    track: int = -1


@dataclass(slots=True)
class FaceResult:
    track: int
    box: list[float]
    score: float
    landmarks: list[list[float]]
    expr: str
    probs: dict[str, float]
    valence: float | None
    arousal: float | None


@dataclass(slots=True)
class FrameResult:
    source: str
    frame: int
    pts: float
    ts: float
    faces: list[FaceResult] = field(default_factory=list)
    model: str = ""
    latency_ms: float = 0.0
    entry_id: str | None = None  # the stream entry id, chosen once when first published (pipeline.outbox)
    mono: float = field(default_factory=time.monotonic)  # its frame's `Frame.mono`
    ended_tracks: list[int] = field(default_factory=list)  # tracks the tracker let go at this frame
