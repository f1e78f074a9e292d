"""What an archive job computes: its parameters, fixed at submit time so that every worker that takes the
job (a first run, a resume, a take-over) produces the same results."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from pydantic import field_validator, model_validator

from affectstream.pipeline.archive.fill import DEFAULT_FILL, DEFAULT_MAX_GAP, FILLS
from affectstream.pipeline.archive.subject import POLICIES
from affectstream.pipeline.errors import ConfigError
from affectstream.settings.typed import OneOf, Range, typed, validate


@typed(ConfigError)
class JobParams:
    """Processing parameters of one archive job (stored as JSON in the job's hash)."""

    detect_every: Annotated[int, Range(1)] = 1
    """Detector on every Nth frame; the tracker carries boxes in between."""
    det_size: Annotated[int, Range(32)] = 640
    """Square detector input in pixels, a multiple of 32 (e.g. 320 or 640)."""
    detector: str = ""
    """Detector model path or pack name; empty = the worker's `--detector`."""
    model: str = "default"
    """Emotion model (.onnx path, or "default" for the shipped one)."""
    subject: Annotated[str, OneOf(POLICIES)] = "largest-track"
    """Subject policy for the ABAW files (see `pipeline.archive.subject`)."""
    smooth: Annotated[int, Range(0)] = 0
    """Centred per-track smoothing window in frames for the ABAW files (0 or 1 = off)."""
    fill: Annotated[str, OneOf(FILLS)] = DEFAULT_FILL
    """How frames without the subject's face get a prediction (see `pipeline.archive.fill`)."""
    fill_max_gap: Annotated[int, Range(0)] = DEFAULT_MAX_GAP
    """Frames farther than this from a prediction get the video mean (0 = no limit)."""
    chunk: Annotated[int, Range(1)] = 64
    """Frames per durable commit, a multiple of detect_every; the tracker restarts at each chunk."""

    @field_validator("det_size")
    @classmethod
    def _strides(cls, size: int) -> int:
        if size % 32:
            raise ValueError(f"{size} is not allowed; it must be a multiple of 32 (SCRFD's strides)")
        return size

    @model_validator(mode="after")
    def _whole_detect_cycles(self) -> JobParams:
        if self.chunk % self.detect_every:
            raise ValueError(
                f"chunk {self.chunk} must be a positive multiple of detect_every {self.detect_every}"
            )
        return self

    @classmethod
    def from_dict(cls, raw: dict) -> JobParams:
        raw = {k: v for k, v in raw.items() if k != "va_invalid"}  # jobs queued before every frame was filled
        return validate(cls, raw, ConfigError)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
