"""Video sources: files, RTSP, HTTP(S)/HLS and V4L2 devices, decoded by PyAV.

A `Source` reads on its own thread (`run`); finite sources can also be read synchronously with
`VideoFile` / `read_video` and inspected with `probe` (`archive`, `render`): one decode path for all.
`import pipeline.sources` does not import PyAV; it loads when a source opens.
"""

from pipeline.sources._av import BgrConverter
from pipeline.sources._decode import DecodeStats
from pipeline.sources.files import TruncatedVideo, VideoFile, VideoInfo, probe, read_video
from pipeline.sources.reader import EVENT_KINDS as READER_EVENT_KINDS
from pipeline.sources.reader import STATES, EventCallback, Source, SourceStats, open_source
from pipeline.sources.spec import KINDS, SourceSpec, SourceSpecError, kind_from_url

# Every kind a source's events stream carries: its reader's; `stopped`, written by a worker that stops
# reading a configured source on purpose (SIGTERM), so that no one mistakes it for a live or failed one;
# and a fleet camera's changes of owner (`claimed`, `released`, `lost`, each with the member and worker:
# pipeline.fleet.member).
WORKER_EVENT_KINDS = ("stopped",)
FLEET_EVENT_KINDS = ("claimed", "released", "lost")
EVENT_KINDS = (*READER_EVENT_KINDS, *WORKER_EVENT_KINDS, *FLEET_EVENT_KINDS)

__all__ = [
    "BgrConverter",
    "DecodeStats",
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
