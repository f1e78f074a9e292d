"""The webhook sink of `affectstream bridge webhook`: each track event POSTed as JSON to one URL.

At least once, with an idempotency key: every request carries `Idempotency-Key: <source>/<kind>/<entry id>`
(the same on every retry and after a restart), so the receiver can drop a repeat. A connection error, a
timeout, 408, 425, 429 or a 5xx is retried by the bridge with backoff (`SinkUnavailable`); any other 4xx is a
refusal (`SinkRefused`: the bridge stops, the entry stays pending for its next start). 2xx and 3xx count as
delivered. The URL's secrets (user info, `token=`-like parameters) are masked in every message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from affectstream.pipeline.consumers.bridge import SinkUnavailable
from affectstream.pipeline.consumers.mqtt_sink import SinkRefused
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.masking import mask_text, mask_url, register_url

RETRIED = (408, 425, 429)  # and every 5xx


class WebhookSink:
    """POSTs records to `url` (http:// or https://), waiting at most `timeout_s` for each answer."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        register_url(url)
        self.url, self.timeout_s = url, timeout_s
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"webhook URL {mask_url(url)}: write http(s)://HOST[:PORT]/PATH")

    def send(self, kind: str, source: str, record: dict) -> None:
        """POST one record; returns once the receiver answered 2xx or 3xx.

        Raises:
            SinkUnavailable: No answer, or an answer worth retrying.
            SinkRefused: A 4xx that a retry would get again.
        """
        request = urllib.request.Request(
            self.url,
            data=json.dumps(record, separators=(",", ":")).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": f"{source}/{kind}/{record['id']}",
                "User-Agent": "affectstream-bridge",
            },
        )
        where = mask_url(self.url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the answer's connection
            if exc.code in RETRIED or exc.code >= 500:
                raise SinkUnavailable(f"{where} answered {exc.code} {exc.reason}") from None
            raise SinkRefused(f"{where} refused a track event: {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, name not found
            raise SinkUnavailable(f"{where}: {mask_text(str(exc))}") from None
