"""Keep credentials out of logs, events, published entries, key names and metric labels.

Two layers:
- **Structure**: the password of any URL (`scheme://user:password@host`) and secret-looking query
  parameters (`?password=`, `token=`, ...) are replaced by `***`. A password may hold any character
  (`@`, `:`, `/`, `%40`, unicode): the user info runs to the *last* `@` that is followed by a host.
- **Known values**: every password this process was given (`register_url`: source URLs and the Redis URL,
  raw and percent-decoded) is masked wherever it appears, e.g. when FFmpeg or redis-py quote it alone.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

_MASK = "***"
_MIN_KNOWN = 4  # shorter registered secrets are masked in URLs only: masking "ab" everywhere garbles logs

_HOST = r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._~%-]+)(?::[0-9]*)?"
_END = r"(?=[/?#\s'\"<>),;\]]|$)"
_SCHEME = r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)"
# In free text the user info cannot hold whitespace (it would run into the next words); in a URL alone it can.
_USERINFO_TEXT = re.compile(_SCHEME + r"(?P<info>\S*)@(?=" + _HOST + _END + ")")
_USERINFO_URL = re.compile(_SCHEME + r"(?P<info>.*)@(?=" + _HOST + _END + ")", re.S)
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:password|sentinel_password|passwd|pwd|pass|token|access_token|auth|api_key|apikey|key|secret|signature|sig)=)[^&#\s'\"]*"
)

_known: set[str] = set()
_known_lock = threading.Lock()


def _mask_info(m: re.Match) -> str:
    user, sep, _password = m["info"].partition(":")
    # "user:password" keeps the user (it helps debugging); a lone user info may be a token: mask it all.
    return f"{m['scheme']}{user}:{_MASK}@" if sep else f"{m['scheme']}{_MASK}@"


def _mask_known(text: str) -> str:
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def mask_text(text: str) -> str:
    """Mask passwords of every URL found in free text (exception messages, FFmpeg errors) and every
    registered secret."""
    text = _USERINFO_TEXT.sub(_mask_info, text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{_MASK}", text)
    return _mask_known(text)


def mask_url(url: str) -> str:
    """`url` with its password (any characters) and secret query parameters replaced by `***`."""
    return mask_text(_USERINFO_URL.sub(_mask_info, url, count=1))


def url_secrets(url: str) -> list[str]:
    """The secrets in `url`: the password (or a lone user-info token) and secret query values,
    each as written and percent-decoded."""
    found = []
    m = _USERINFO_URL.match(url)
    if m:
        _user, sep, password = m["info"].partition(":")
        found.append(password if sep else m["info"])
    found += [q.group(0).split("=", 1)[1] for q in _QUERY_SECRET.finditer(url)]
    return [s for v in found if v for s in {v, unquote(v)}]


def register_url(url: str) -> None:
    """Remember the secrets of `url` so that `mask_text` hides them wherever they appear later."""
    with _known_lock:
        _known.update(s for s in url_secrets(url) if len(s) >= _MIN_KNOWN)


def strip_userinfo(url: str) -> tuple[str, str]:
    """(`scheme://`, the rest after any user info and its `@`) of a URL; ("", url) without a scheme."""
    m = _USERINFO_URL.match(url)
    if m:
        return m["scheme"], url[m.end() :]
    scheme = re.match(_SCHEME, url)
    return (scheme["scheme"], url[scheme.end() :]) if scheme else ("", url)
