"""Whole pictures from a network demuxer that hands out pieces of them.

FFmpeg's RTSP (and MPEG-TS) demuxers run the H.264/H.265 parser over the depacketised stream, and that
parser starts a new "frame" at every SPS/PPS/VPS that follows a slice. Restreamers (gst-rtsp-server with
`rtph264pay config-interval=-1`, DeepStream, Jetson) repeat the parameter sets before every slice of a
keyframe, so a multi-slice keyframe leaves `av_read_frame` as several packets. Decoded one by one, each
gives a "frame" that holds one slice and green (or stale) everywhere else. The decoder's own way around it
(`flags2 +chunks`) outputs whole pictures but flags every such keyframe as corrupt, so the flag would mean
nothing. Here the pieces are joined again before decoding: a packet whose first slice is the first of
its picture starts a new picture; every other packet belongs to the one before.

Cost: a picture is decoded when the next one starts, one frame interval later (the end of a picture is
not marked in what the demuxer hands out).
"""

from __future__ import annotations

from typing import Any

# NAL unit types of coded slices, per codec (H.264: 1-5; H.265: 0-31).
_H264_SLICES = range(1, 6)
_HEVC_SLICES = range(0, 32)
JOINED_CODECS = ("h264", "hevc")


def _nal_units(data: bytes):
    """Yield (header offset) of each NAL unit in an Annex B byte stream."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        if start < len(data):
            yield start
        i = data.find(b"\x00\x00\x01", start)


def starts_picture(codec: str, data: bytes) -> bool | None:
    """Whether the first slice in `data` (Annex B) is the first of its picture; None when it has no slice.

    H.264: `first_mb_in_slice` is ue(v) coded right after the 1-byte NAL header, and 0 codes as a single 1
    bit. H.265: `first_slice_segment_in_pic_flag` is the first bit after the 2-byte NAL header.
    """
    for at in _nal_units(data):
        if codec == "h264":
            if (data[at] & 0x1F) in _H264_SLICES and at + 1 < len(data):
                return bool(data[at + 1] & 0x80)
        elif ((data[at] >> 1) & 0x3F) in _HEVC_SLICES and at + 2 < len(data):
            return bool(data[at + 2] & 0x80)
    return None


class PictureJoiner:
    """Joins the packets of one picture into one packet (H.264 and H.265; other codecs pass through).

    Args:
        codec: The stream's codec name (`codec_context.name`).
    """

    def __init__(self, codec: str) -> None:
        self._codec = codec if codec in JOINED_CODECS else None
        self._pending: list[Any] = []

    def push(self, packet: Any) -> list[Any]:
        """The packets to decode that `packet` completes: 0 or 1 whole pictures, and at the end of the
        stream (the empty packet the demuxer ends with) the last picture and that packet, which drains the
        decoder."""
        if self._codec is None:
            return [packet]
        if not packet.size:
            done = [self._join()] if self._pending else []
            self._pending = []
            return [*done, packet]
        if self._pending and starts_picture(self._codec, bytes(packet)):
            done = [self._join()]
            self._pending = [packet]
            return done
        self._pending.append(packet)
        return []

    def _join(self) -> Any:
        import av

        parts = self._pending
        if len(parts) == 1:
            return parts[0]
        joined = av.Packet(b"".join(bytes(p) for p in parts))
        # The first piece of a stream's first picture often has no timestamp yet; a later piece has it.
        timed = next((p for p in parts if p.pts is not None), parts[0])
        joined.pts, joined.dts = timed.pts, timed.dts
        if timed.time_base is not None:
            joined.time_base = timed.time_base
        return joined
