"""The MQTT sink of `affectstream bridge mqtt` (paho-mqtt): each record as JSON on `<prefix>/<source>/tracks`
or `<prefix>/<source>/frames`, at the QoS asked (1 by default: the broker's PUBACK comes before the bridge
acknowledges the entry), retained if asked.

`mqtt://[user[:password]@]host[:port]` (1883) or `mqtts://` (TLS, 8883; `ca` for a private CA). The
password is masked wherever the URL appears (`pipeline.masking`). paho reconnects on its own, with a capped
backoff; until it has, `send` raises `SinkUnavailable` and the bridge retries the record. A broker that
refuses the credentials is a `SinkRefused`: retrying would not help.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import unquote, urlsplit

from affectstream.pipeline.consumers.bridge import SinkUnavailable
from affectstream.pipeline.errors import AffectstreamError, ConfigError
from affectstream.pipeline.masking import mask_url, register_url
from affectstream.pipeline.streams.keys import process_id

log = logging.getLogger(__name__)

PORTS = {"mqtt": 1883, "mqtts": 8883}


class SinkRefused(AffectstreamError):
    """The sink refuses the bridge for good (credentials, a bad request): fix it and start again."""

    exit_code = 1


class MqttSink:
    """Publishes records to one broker.

    Args:
        url: `mqtt://` or `mqtts://` URL.
        qos: 0, 1 or 2; at least 1 for at-least-once (with 0 nothing says the broker has it).
        retain: Publish retained messages (a new subscriber gets each topic's last one).
        prefix: The topics' first level.
        client_id: The MQTT client id (default `affectstream-bridge-<host>-<pid>`).
        ca: A CA certificate file for `mqtts://` (default: the system's).
        timeout_s: How long to wait for a PUBACK before the record is retried.
    """

    def __init__(
        self,
        url: str,
        *,
        qos: int = 1,
        retain: bool = False,
        prefix: str = "affectstream",
        client_id: str | None = None,
        ca: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        import paho.mqtt.client as mqtt

        register_url(url)
        self.url = mask_url(url)
        parts = urlsplit(url)
        if parts.scheme not in PORTS or not parts.hostname:
            raise ConfigError(f"broker URL {self.url}: write mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        if qos not in (0, 1, 2):
            raise ConfigError(f"--qos {qos}: 0, 1 or 2")
        self.qos, self.retain, self.prefix, self.timeout_s = qos, retain, prefix.rstrip("/"), timeout_s
        self._refused: str | None = None
        self._connected = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"affectstream-bridge-{process_id()}"
        )
        if parts.username is not None:
            self._client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            self._client.tls_set(ca_certs=ca)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_async(parts.hostname, parts.port or PORTS[parts.scheme], keepalive=30)
        self._client.loop_start()

    def _on_connect(self, _client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            if reason.value in (0x04, 0x05, 0x86, 0x87):  # bad user name or password, not authorised
                self._refused = f"broker {self.url} refused the bridge: {reason}"
            log.warning("broker %s refused the connection: %s", self.url, reason)
            return
        log.info("connected to broker %s", self.url)
        self._connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason, _properties) -> None:
        if self._connected.is_set():
            log.warning("lost the broker %s (%s); reconnecting", self.url, reason)
        self._connected.clear()

    def topic(self, kind: str, source: str) -> str:
        return f"{self.prefix}/{source}/{kind}"

    def send(self, kind: str, source: str, record: dict) -> None:
        """Publish one record; returns once the broker has it (QoS >= 1).

        Raises:
            SinkUnavailable: Not connected, or no PUBACK within `timeout_s` (the record is sent again).
            SinkRefused: The broker refused the credentials.
        """
        import paho.mqtt.client as mqtt

        if self._refused:
            raise SinkRefused(self._refused)
        if not self._connected.wait(timeout=min(self.timeout_s, 1.0)):
            raise SinkUnavailable(f"not connected to broker {self.url}")
        info = self._client.publish(
            self.topic(kind, source), json.dumps(record, separators=(",", ":")), self.qos, self.retain
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise SinkUnavailable(f"broker {self.url}: {mqtt.error_string(info.rc)}")
        if self.qos:
            try:
                info.wait_for_publish(timeout=self.timeout_s)
            except (RuntimeError, ValueError) as exc:  # the connection went while the message was queued
                raise SinkUnavailable(f"broker {self.url}: {exc}") from None
            if not info.is_published():
                raise SinkUnavailable(f"broker {self.url}: no acknowledgement within {self.timeout_s} s")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
