"""The fleet's desired cameras: one Redis hash, written by `affectstream cameras ...`, read by members.

Each field is a camera name; its value is JSON `{"url": ..., "options": {...}, "added": <unix s>}` where
`options` are `SourceSpec` fields (`rtsp_transport`, `timeout_s`, ...). The URL is stored as given: it may
carry credentials, or an `${ENV}` reference that each member resolves from its own environment, so a
password need not be stored in Redis at all (`resolve`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.masking import mask_url, url_secrets
from affectstream.pipeline.sources.spec import SourceSpec, SourceSpecError
from affectstream.pipeline.streams.keys import FLEET_CAMERAS, check_name, text
from affectstream.settings.interpolate import UnsetVariable, expand

# `name` and `url` are the camera itself; `live` is always true for a fleet camera.
_NOT_OPTIONS = ("name", "url", "live")
_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_BARE_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_DEFAULTED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-")


@dataclass(frozen=True)
class Camera:
    """One desired camera as stored (the URL unresolved)."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    added: float = 0.0

    @property
    def safe_url(self) -> str:
        """The URL to show: passwords masked; one whose secrets are all bare `${ENV}` references is
        shown as written (they hold no secret, but a `${ENV:-default}` may: then it is masked)."""
        secrets = url_secrets(self.url)
        if secrets and all(_BARE_REF.fullmatch(s) for s in secrets) and not _DEFAULTED.search(self.url):
            return self.url
        return mask_url(self.url)

    def resolve(self) -> SourceSpec:
        """The camera as this member reads it: `${ENV}` expanded here, validated as a live source.

        Raises:
            ConfigError: An unset variable or an invalid option (the message names the camera, never a secret).
        """
        try:
            url = expand(self.url)
        except UnsetVariable as exc:
            raise ConfigError(f"camera {self.name}: ${{{exc.name}}} is not set on this member") from None
        try:
            return SourceSpec(name=self.name, url=url, live=True, **self.options)
        except (SourceSpecError, TypeError) as exc:
            raise ConfigError(f"camera {self.name}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "options": self.options, "added": self.added}, sort_keys=True)


def check_camera(name: str, url: str, options: dict[str, Any] | None = None) -> Camera:
    """A camera to store, checked as a member would read it (options valid, name key-safe); `${ENV}`
    references are kept unresolved, checked with a placeholder value.

    Raises:
        ConfigError: Bad name, URL or option.
    """
    try:
        check_name(name)
    except ValueError as exc:
        raise ConfigError(f"camera name: {exc}") from None
    options = dict(options or {})
    for key in _NOT_OPTIONS:
        if key in options:
            raise ConfigError(f"camera {name}: {key!r} is not an option (it is set by the command)")
    camera = Camera(name, url, options, time.time())
    Camera(name, _ENV_REF.sub("x", url), options).resolve()  # raises on a bad scheme or option
    return camera


def add_camera(client, camera: Camera) -> bool:
    """Store `camera` (replacing one of the same name); True when it is new."""
    return bool(client.hset(FLEET_CAMERAS, camera.name, camera.to_json()))


def remove_camera(client, name: str) -> bool:
    """Remove a camera; True when it existed. Its owner stops it within a claim round."""
    return bool(client.hdel(FLEET_CAMERAS, name))


def list_cameras(client) -> dict[str, Camera]:
    """Every desired camera by name. A value that is not valid JSON is skipped (and named by
    `cameras ls`), not fatal: one bad entry must not stop the fleet."""
    out = {}
    for raw_name, raw in client.hgetall(FLEET_CAMERAS).items():
        name = text(raw_name)
        try:
            data = json.loads(text(raw))
            out[name] = Camera(
                name, str(data["url"]), dict(data.get("options") or {}), float(data.get("added", 0))
            )
        except (ValueError, KeyError, TypeError):
            continue
    return out
