"""Video sources: files, RTSP, HTTP(S)/HLS and V4L2 devices, decoded by PyAV on one thread per source.

`import pipeline.sources` does not import PyAV; it loads when a source opens.
"""

from pipeline.sources._av import BgrConverter
from pipeline.sources.reader import EVENT_KINDS, STATES, EventCallback, Source, SourceStats, open_source
from pipeline.sources.spec import KINDS, SourceSpec, SourceSpecError, kind_from_url

__all__ = [
    "BgrConverter",
    "EVENT_KINDS",
    "KINDS",
    "STATES",
    "EventCallback",
    "Source",
    "SourceSpec",
    "SourceSpecError",
    "SourceStats",
    "kind_from_url",
    "open_source",
]
