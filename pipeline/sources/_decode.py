"""The per-packet decode step that every decode loop shares (file iterator, live loop), and realtime pacing."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.sources._av import BgrConverter

log = logging.getLogger("affectstream.pipeline.sources")

# Consecutive packets the decoder rejects before a file counts as corrupt (isolated bad packets are
# skipped: one damaged GOP should not cost the rest of an archive).
MAX_BAD_PACKETS = 25


@dataclass
class DecodeStats:
    """Counters of one decode.

    Attributes:
        packets: Non-empty packets demuxed (what the completeness check compares with the header).
        discarded: Packets the container marks as not for display (edit lists): a header's frame count
            includes them, the decoded frames do not.
        skipped: Undecodable packets skipped under the bad-packet tolerance.
        decoded: Frames decoded.
        corrupt: Decoded frames the decoder flagged as damaged (a lost slice, a missing reference); they are
            counted in `decoded` too.
    """

    packets: int = 0
    discarded: int = 0
    skipped: int = 0
    decoded: int = 0
    corrupt: int = 0


class PacketDecoder:
    """Decodes one stream packet by packet: tolerates isolated bad packets and gives every frame a pts.

    Args:
        stream: The PyAV video stream.
        name: Source name, for log lines.
        max_bad_packets: Consecutive undecodable packets skipped before the error is raised (0: raise at
            once; callers that match frames by index need that, as a skipped packet shifts every later
            index).
        stats: Counters to update (a new `DecodeStats` if None).
    """

    def __init__(
        self, stream: Any, name: str, max_bad_packets: int, stats: DecodeStats | None = None
    ) -> None:
        self.name = name
        self.stats = stats if stats is not None else DecodeStats()
        self.to_bgr = BgrConverter()
        self._ctx = stream.codec_context
        self._rate = float(stream.average_rate or stream.guessed_rate or 25)
        self._max_bad = max_bad_packets
        self._bad = 0
        self._last_pts: float | None = None

    def decode(self, packet: Any) -> list[tuple[float, Any]]:
        """The (pts in seconds, PyAV frame) pairs that `packet` completes; [] for a skipped bad packet.

        `packet` may be one that `PictureJoiner` built (it belongs to no stream): it is decoded by the
        stream's codec context either way. Frames flagged `is_corrupt` are returned and counted.
        """
        import av

        self.stats.packets += bool(packet.size)
        self.stats.discarded += bool(packet.is_discard)
        try:
            frames = self._ctx.decode(packet)
            self._bad = 0
        except av.error.InvalidDataError as exc:
            self._bad += 1
            if self._bad > self._max_bad:
                raise
            self.stats.skipped += 1
            log.warning("source %s: skipped an undecodable packet: %s", self.name, mask_text(str(exc)))
            return []
        out = []
        for vf in frames:
            # RTSP's first frame often has no pts: continue the clock from the previous frame.
            if vf.time is not None:
                pts = float(vf.time)
            else:
                pts = self._last_pts + 1.0 / self._rate if self._last_pts is not None else 0.0
            self._last_pts = pts
            out.append((pts, vf))
        self.stats.decoded += len(out)
        self.stats.corrupt += sum(vf.is_corrupt for _, vf in out)
        return out


class Pacer:
    """Sleeps so frames leave at their presentation times (realtime replay of a file)."""

    def __init__(self, stop: threading.Event | None) -> None:
        self._stop = stop if stop is not None else threading.Event()
        self._t0: float | None = None
        self._p0 = 0.0

    def wait_for(self, pts: float) -> None:
        now = time.monotonic()
        if self._t0 is None or pts < self._p0:
            self._t0, self._p0 = now, pts
            return
        delay = self._t0 + (pts - self._p0) - now
        if delay > 0:
            self._stop.wait(delay)
