"""Keep credentials out of logs, events and published entries."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_MASK = "***"
# user:password@ inside any URL-looking text (rtsp://, redis://, http://, ...)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@")
# ?password=... or &password=... query parameters
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd|token|auth)=)[^&\s]*")


def mask_url(url: str) -> str:
    """Return `url` with any password replaced by `***` (the user name stays, it helps debugging)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if parts.password is None:
        return mask_text(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:{_MASK}@{host}"
    return mask_text(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def mask_text(text: str) -> str:
    """Mask passwords of every URL found in free text (exception messages, FFmpeg errors)."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{_MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{_MASK}", text)
