"""What a source is: a validated, immutable description (no I/O, no PyAV import)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ValidationInfo, field_validator

from affectstream.pipeline.errors import SourceError
from affectstream.pipeline.masking import mask_url, strip_userinfo
from affectstream.pipeline.streams.keys import check_name, safe_name
from affectstream.settings.typed import Range, typed

KINDS = ("file", "rtsp", "http", "device")
RTSP_TRANSPORTS = ("auto", "tcp", "udp", "udp_multicast", "http", "https")
# What a file source, a folder of sources and an archive job accept (FFmpeg reads more, e.g. text as "tty").
VIDEO_SUFFIXES = (
    ".mp4",
    ".mov",
    ".mkv",
    ".avi",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".mts",
    ".flv",
    ".wmv",
    ".3gp",
)
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")
_SCHEME_KINDS = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http", "file": "file"}
_SECONDS = Annotated[float, Range(0, 3600, open_low=True)]


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
    try:
        return _guess_kind(url)
    except ValueError as exc:
        raise SourceSpecError(f"SourceSpec.url: {exc}") from None


def _guess_kind(url: str) -> str:
    match = _SCHEME.match(url)
    if match:
        scheme = match["scheme"].lower()
        if scheme not in _SCHEME_KINDS:
            raise ValueError(
                f"unsupported scheme {scheme!r} in {mask_url(url)!r}; "
                f"allowed: {', '.join(sorted(_SCHEME_KINDS))}:// or a file path or /dev/video*"
            )
        return _SCHEME_KINDS[scheme]
    if url.startswith("/dev/video"):
        return "device"
    return "file"


@typed(SourceSpecError, prefix="SourceSpec")
class SourceSpec:
    """One video source and how to read it.

    Attributes:
        name: Source id (used in Redis keys and events): `keys.KEY_SAFE_NAME`.
        url: File path, `rtsp://` URL, `http(s)://` URL (also HLS `.m3u8`) or a V4L2 device `/dev/video*`.
        kind: "file", "rtsp", "http" or "device"; None guesses it from `url`.
        live: Newest-frame policy and reconnects (True) or every frame and end at EOF (False);
            None means files are not live and everything else is.
        rtsp_transport: RTSP lower transport (FFmpeg's `rtsp_transport`); TCP survives lossy networks.
            "auto": TCP first, then UDP when the server refuses TCP (461 Unsupported transport, as VLC's
            RTSP output and several NVRs do).
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
    rtsp_transport: Literal["auto", "tcp", "udp", "udp_multicast", "http", "https"] = "auto"
    timeout_s: _SECONDS = 5.0
    silent_after_s: _SECONDS = 5.0
    backoff_first_s: _SECONDS = 0.5
    backoff_cap_s: _SECONDS = 5.0
    queue_size: Annotated[int, Range(1, 10_000)] = 8
    realtime: bool = False

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        return check_name(name)  # it goes into key names and log lines

    @field_validator("url")
    @classmethod
    def _readable(cls, url: str) -> str:
        if not url.strip():
            raise ValueError(f"expected a path or URL, got {url!r}")
        _guess_kind(url)
        return url

    @field_validator("kind")
    @classmethod
    def _kind_of_url(cls, kind: str | None, info: ValidationInfo) -> str | None:
        if "url" not in info.data:
            return kind  # the url's own error is reported
        guessed = _guess_kind(info.data["url"])
        # A local path may be a file or a device (e.g. /dev/v4l/by-id/...); a URL scheme decides alone.
        if kind is not None and kind != guessed and not {kind, guessed} <= {"file", "device"}:
            raise ValueError(
                f"{kind!r} does not match url {mask_url(info.data['url'])!r} (which is a {guessed!r} source); "
                "leave kind out to guess it from the url"
            )
        return kind or guessed

    @field_validator("live")
    @classmethod
    def _live_unless_file(cls, live: bool | None, info: ValidationInfo) -> bool | None:
        return info.data.get("kind") != "file" if live is None else live

    @field_validator("backoff_cap_s")
    @classmethod
    def _cap_above_first(cls, cap: float, info: ValidationInfo) -> float:
        first = info.data.get("backoff_first_s", 0.0)
        if cap < first:
            raise ValueError(
                f"{cap!r} is below backoff_first_s {first!r}; the cap must be >= the first delay"
            )
        return cap

    @field_validator("realtime")
    @classmethod
    def _pace_files_only(cls, realtime: bool, info: ValidationInfo) -> bool:
        kind = info.data.get("kind")
        if realtime and kind not in (None, "file"):
            raise ValueError(
                f"only file sources can be paced; a {kind} source already delivers frames at its own rate"
            )
        return realtime

    @property
    def safe_url(self) -> str:
        """The URL with any password masked: the only form that may reach logs and events."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        # The dataclass repr would print the password of the url into tracebacks and logs.
        return (
            f"SourceSpec(name={self.name!r}, url={self.safe_url!r}, kind={self.kind!r}, live={self.live!r})"
        )


def source_name_from_url(url: str) -> str:
    """A readable source id from a path or URL (`keys.safe_name`): the last path segment's stem, else the host.

    Never the user info or the query (they may hold credentials): `rtsp://alice:pw@cam:8554/` -> `cam_8554`.
    """
    scheme, rest = strip_userinfo(url)
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    host, path = rest.partition("/")[::2] if scheme else ("", rest)
    stem = Path(path.rstrip("/")).stem if path.strip("/") else host
    return safe_name(stem)
