"""What a source is: a validated, immutable description (no I/O, no PyAV import)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pipeline.errors import SourceError
from pipeline.masking import mask_url

KINDS = ("file", "rtsp", "http", "device")
RTSP_TRANSPORTS = ("tcp", "udp", "udp_multicast", "http", "https")
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")
_SCHEME_KINDS = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http", "file": "file"}


class SourceSpecError(SourceError, ValueError):
    """A `SourceSpec` field is invalid; the message names the field, the bad value and what is allowed.

    It is a `ValueError` too, so config loaders that wrap `ValueError` report it with the key path.
    """


def kind_from_url(url: str) -> str:
    """Guess the kind of a source from its URL or path.

    Args:
        url: A file path, `file://`, `rtsp://`, `rtsps://`, `http(s)://` URL or a `/dev/video*` device.

    Returns:
        One of `KINDS`.

    Raises:
        SourceSpecError: The URL has a scheme that no source kind reads.
    """
    match = _SCHEME.match(url)
    if match:
        scheme = match["scheme"].lower()
        if scheme not in _SCHEME_KINDS:
            raise SourceSpecError(
                f"SourceSpec.url: unsupported scheme {scheme!r} in {mask_url(url)!r}; "
                f"allowed: {', '.join(sorted(_SCHEME_KINDS))}:// or a file path or /dev/video*"
            )
        return _SCHEME_KINDS[scheme]
    if url.startswith("/dev/video"):
        return "device"
    return "file"


@dataclass(frozen=True)
class SourceSpec:
    """One video source and how to read it.

    Attributes:
        name: Source id (used in Redis keys and events).
        url: File path, `rtsp://` URL, `http(s)://` URL (also HLS `.m3u8`) or a V4L2 device `/dev/video*`.
        kind: "file", "rtsp", "http" or "device"; None guesses it from `url`.
        live: Newest-frame policy and reconnects (True) or every frame and end at EOF (False);
            None means files are not live and everything else is.
        rtsp_transport: RTSP lower transport (FFmpeg's `rtsp_transport`); TCP survives lossy networks.
        timeout_s: Open and socket I/O timeout.
        silent_after_s: A live source that is connected but delivers no frame for this long is down.
        backoff_first_s: Upper bound of the first reconnect delay (full jitter: uniform in [0, bound]).
        backoff_cap_s: Upper bound of any reconnect delay (the bound doubles per failed attempt).
        queue_size: Frames buffered ahead of the consumer under the file policy (the reader blocks when
            full, it never drops).
        realtime: Files only: deliver frames at their native rate (replay a file as if it were a camera).
    """

    name: str
    url: str
    kind: Literal["file", "rtsp", "http", "device"] | None = None
    live: bool | None = None
    rtsp_transport: Literal["tcp", "udp", "udp_multicast", "http", "https"] = "tcp"
    timeout_s: float = 5.0
    silent_after_s: float = 5.0
    backoff_first_s: float = 0.5
    backoff_cap_s: float = 5.0
    queue_size: int = 8
    realtime: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SourceSpecError(f"SourceSpec.name: expected a non-empty string, got {self.name!r}")
        if not isinstance(self.url, str) or not self.url.strip():
            raise SourceSpecError(
                f"SourceSpec.url of {self.name!r}: expected a path or URL, got {self.url!r}"
            )
        guessed = kind_from_url(self.url)
        kind = self.kind if self.kind is not None else guessed
        if kind not in KINDS:
            raise SourceSpecError(
                f"SourceSpec.kind of {self.name!r}: {kind!r} is not allowed; allowed: {', '.join(KINDS)}"
            )
        # A local path may be a file or a device (e.g. /dev/v4l/by-id/...); a URL scheme decides alone.
        if kind != guessed and not (guessed in ("file", "device") and kind in ("file", "device")):
            raise SourceSpecError(
                f"SourceSpec.kind of {self.name!r}: {kind!r} does not match url {mask_url(self.url)!r} "
                f"(which is a {guessed!r} source); leave kind out to guess it from the url"
            )
        object.__setattr__(self, "kind", kind)
        if self.live is None:
            object.__setattr__(self, "live", kind != "file")
        elif not isinstance(self.live, bool):
            raise SourceSpecError(
                f"SourceSpec.live of {self.name!r}: expected true, false or None, got {self.live!r}"
            )
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            raise SourceSpecError(
                f"SourceSpec.rtsp_transport of {self.name!r}: {self.rtsp_transport!r} is not allowed; "
                f"allowed: {', '.join(RTSP_TRANSPORTS)}"
            )
        for field in ("timeout_s", "silent_after_s", "backoff_first_s", "backoff_cap_s"):
            value = getattr(self, field)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
                or value > 3600
            ):
                raise SourceSpecError(
                    f"SourceSpec.{field} of {self.name!r}: expected seconds > 0 and at most 3600, got {value!r}"
                )
        if self.backoff_cap_s < self.backoff_first_s:
            raise SourceSpecError(
                f"SourceSpec.backoff_cap_s of {self.name!r}: {self.backoff_cap_s!r} is below "
                f"backoff_first_s {self.backoff_first_s!r}; the cap must be >= the first delay"
            )
        if isinstance(self.queue_size, bool) or not isinstance(self.queue_size, int) or not 1 <= self.queue_size <= 10_000:
            raise SourceSpecError(
                f"SourceSpec.queue_size of {self.name!r}: expected an integer from 1 to 10000, got {self.queue_size!r}"
            )
        if not isinstance(self.realtime, bool):
            raise SourceSpecError(
                f"SourceSpec.realtime of {self.name!r}: expected true or false, got {self.realtime!r}"
            )
        if self.realtime and kind != "file":
            raise SourceSpecError(
                f"SourceSpec.realtime of {self.name!r}: only file sources can be paced; a {kind} source "
                "already delivers frames at its own rate"
            )

    @property
    def safe_url(self) -> str:
        """The URL with any password masked: the only form that may reach logs and events."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        # The dataclass repr would print the password of the url into tracebacks and logs.
        return (
            f"SourceSpec(name={self.name!r}, url={self.safe_url!r}, kind={self.kind!r}, live={self.live!r})"
        )
