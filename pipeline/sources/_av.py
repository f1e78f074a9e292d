"""PyAV plumbing: open a container the way each source kind needs, describe failures without secrets.

PyAV (and FFmpeg's libraries) load here only, when a source actually opens.
"""

from __future__ import annotations

import errno
import time
from typing import Any

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.sources.spec import SourceSpec


def transports(spec: SourceSpec, last: str | None = None) -> tuple[str | None, ...]:
    """The RTSP transports to try, in order, for one open of `spec` ((None,) for other kinds).

    `auto` tries TCP, then UDP when the server refuses TCP; `last` (the one that worked before) goes first.
    """
    if spec.kind != "rtsp":
        return (None,)
    if spec.rtsp_transport != "auto":
        return (spec.rtsp_transport,)
    return ("udp", "tcp") if last == "udp" else ("tcp", "udp")


def transport_refused(exc: BaseException) -> bool:
    """Whether `exc` is FFmpeg's answer to an RTSP SETUP refused with 461 Unsupported transport.

    FFmpeg turns that reply (and only that one) into EPROTONOSUPPORT when no other transport is allowed.
    """
    return isinstance(exc, OSError) and exc.errno == errno.EPROTONOSUPPORT


def open_options(spec: SourceSpec, transport: str | None = None) -> dict[str, str]:
    """FFmpeg options for `spec` (the ones the FFmpeg 8 inside av 18 knows).

    RTSP's `timeout` is the socket I/O timeout in microseconds (FFmpeg 5 renamed the old `stimeout` to it);
    HTTP takes the same, and HLS copies `rw_timeout` to every segment it fetches.
    """
    us = str(int(spec.timeout_s * 1_000_000))
    if spec.kind == "rtsp":
        # Audio tracks would only cost a SETUP round trip and bandwidth: faces live in the picture.
        # Probing: the codec parameters come with the SDP (or the first keyframe) and the frame rate is only
        # reported, so half a second of stream instead of FFmpeg's default (~1.2 s measured): a camera
        # taken over by another fleet member, or reconnected, delivers its first frame that much sooner.
        return {
            "rtsp_transport": transport or transports(spec)[0] or "tcp",
            "timeout": us,
            "allowed_media_types": "video",
            "analyzeduration": "500000",
        }
    if spec.kind == "http":
        return {"timeout": us, "rw_timeout": us}
    return {}


def read_timeout(spec: SourceSpec) -> float:
    """Seconds av_read_frame may block before PyAV's interrupt callback gives up.

    For a live source this is the silence limit: a camera that keeps the connection open but sends
    nothing is down after `silent_after_s`, not after the longer TCP timeouts.
    """
    return min(spec.timeout_s, spec.silent_after_s) if spec.live else spec.timeout_s


def open_container(spec: SourceSpec, transport: str | None = None) -> Any:
    """Open `spec` for reading and return the PyAV input container (the caller closes it).

    `transport` is one of `transports(spec)` (the first when None).

    Raises:
        av.error.FFmpegError, OSError: The source cannot be opened (see `describe_error`).
    """
    import av

    path = spec.url[len("file://") :] if spec.url.startswith("file://") else spec.url
    started = time.monotonic()
    try:
        return av.open(
            path,
            mode="r",
            format="v4l2" if spec.kind == "device" else None,
            options=open_options(spec, transport),
            timeout=(spec.timeout_s, read_timeout(spec)),
        )
    except av.error.FFmpegError as exc:
        # A server that accepts the connection and never answers makes FFmpeg's RTSP/HTTP demuxer give up
        # at its socket timeout with "Invalid data found": name it for what it is.
        waited = time.monotonic() - started
        if spec.kind in ("rtsp", "http") and waited >= 0.9 * spec.timeout_s:
            raise TimeoutError(
                f"{spec.safe_url} accepted the connection but sent nothing for {waited:.1f} s (timed out)"
            ) from exc
        raise


def describe_error(
    exc: BaseException, spec: SourceSpec, opening: bool = False, transport: str | None = None
) -> str:
    """A one-line reason for `exc` that names the problem and never contains a password.

    Args:
        exc: What PyAV (or the OS) raised.
        spec: The source, for its masked URL and timeouts.
        opening: True when `exc` came from opening the source (the open timeout applies), False when
            it came from reading (the read timeout applies).
        transport: The RTSP transport that was tried.
    """
    import av

    if opening and spec.kind == "rtsp" and transport_refused(exc):
        tried = transport or transports(spec)[0]
        other = "tcp" if tried == "udp" else "udp"
        return (
            f"{spec.safe_url} answered SETUP with 461 Unsupported transport: it does not stream over "
            f"rtsp_transport {tried}; set rtsp_transport: {other} (or auto) for this source"
        )
    if isinstance(exc, TimeoutError):
        return mask_text(str(exc))
    if isinstance(exc, av.error.ExitError):
        # PyAV's interrupt callback fired: nothing arrived within the open or read timeout.
        if opening:
            return f"{spec.safe_url} did not open within {spec.timeout_s:g} s (timed out)"
        return f"no data from {spec.safe_url} for {read_timeout(spec):g} s (timed out)"
    text = str(exc) or repr(exc)
    return mask_text(f"{type(exc).__name__}: {text}")


def video_stream(container: Any, spec: SourceSpec) -> Any:
    """The first video stream of `container`.

    Raises:
        ValueError: The container has no video stream.
    """
    if not container.streams.video:
        raise ValueError(f"{spec.safe_url} has no video stream")
    stream = container.streams.video[0]
    # Frame threading adds a few frames of latency: fine for archives, bad for cameras. Cameras decode on
    # one thread: under slice threading FFmpeg neither conceals nor flags a picture that lost a slice, and
    # a flagged frame is what keeps a damaged picture away from the model (1080p H.264: ~5 ms a frame).
    stream.thread_type = "NONE" if spec.live else "AUTO"
    return stream


def stream_info(stream: Any, transport: str | None = None) -> dict[str, Any]:
    """What `started` and `recovered` events (and `probe`) tell about the stream."""
    rate = stream.average_rate or stream.guessed_rate
    ctx = stream.codec_context
    return {
        "codec": ctx.name,
        "width": ctx.width,
        "height": ctx.height,
        "fps": round(float(rate), 3) if rate else None,
        "frames": stream.frames or None,
        **({"transport": transport} if transport else {}),
    }


class BgrConverter:
    """Decoded frames to BGR arrays through one reused swscale context (one converter per reader thread).

    `VideoFrame.to_ndarray(format="bgr24")` builds a new reformatter, and with it a new swscale
    context, for every frame: most of the conversion's cost (docs/bench.md, "Reused swscale context"). A kept
    `VideoReformatter` rebuilds its context only when the frame size or format changes.
    """

    def __init__(self) -> None:
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()

    def __call__(self, frame: Any) -> Any:
        return self._reformatter.reformat(frame, format="bgr24").to_ndarray()
