"""Video sources: files, RTSP, HTTP(S)/HLS and V4L2 devices, decoded by PyAV.

A `Source` reads on its own thread (`run`); finite sources can also be read synchronously with
`VideoFile` / `read_video` and inspected with `probe` (`archive`, `render`): one decode path for all.
`import affectstream.pipeline.sources` does not import PyAV; it loads when a source opens.
"""

from affectstream.pipeline.sources._av import BgrConverter
from affectstream.pipeline.sources._buffer import Doorbell
from affectstream.pipeline.sources._decode import DecodeStats
from affectstream.pipeline.sources.files import TruncatedVideo, VideoFile, VideoInfo, probe, read_video
from affectstream.pipeline.sources.reader import STATES, EventCallback, Source, SourceStats, open_source
from affectstream.pipeline.sources.spec import KINDS, SourceSpec, SourceSpecError, kind_from_url
from affectstream.pipeline.streams.schema import (
    EVENT_KINDS,
    FLEET_EVENT_KINDS,
    READER_EVENT_KINDS,
    WORKER_EVENT_KINDS,
)

__all__ = [
    "BgrConverter",
    "DecodeStats",
    "Doorbell",
    "EVENT_KINDS",
    "FLEET_EVENT_KINDS",
    "READER_EVENT_KINDS",
    "WORKER_EVENT_KINDS",
    "KINDS",
    "STATES",
    "EventCallback",
    "Source",
    "SourceSpec",
    "SourceSpecError",
    "SourceStats",
    "TruncatedVideo",
    "VideoFile",
    "VideoInfo",
    "kind_from_url",
    "open_source",
    "probe",
    "read_video",
]
