"""The fleet's desired cameras: one Redis hash, written by `affectstream cameras ...`, read by members. Every
change bumps the `cameras` version (`keys.FLEET_VERSION`) and is logged (`keys.FLEET_CHANGES`) in the same
script, so a member reads what changed, not the whole list (`pipeline.fleet.view`). Each field is a camera
name; its value is JSON `{"url": ..., "options": {...}, "added": <unix s>}` where `options` are `SourceSpec`
fields (`rtsp_transport`, `timeout_s`, ...). The URL is stored as given: it may carry credentials, or an
`${ENV}` reference that each member resolves from its own environment, so a password need not be stored in
Redis at all (`resolve`).
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
from affectstream.pipeline.streams.keys import (
    FLEET_CAMERAS,
    FLEET_CHANGES,
    FLEET_V1_CAMERAS,
    FLEET_VERSION,
    check_name,
    text,
)
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


# KEYS cameras, changes, version; ARGV op (add|rm), then a name and (add) its JSON per camera. Bumps the
# cameras version and logs the change (one entry; `reload` when it names too many cameras to be worth
# listing). Returns how many fields were added (add) or removed (rm).
_CHANGE = """
local v = redis.call('HINCRBY', KEYS[3], 'cameras', 1)
local op, n, names = ARGV[1], 0, {}
local step = op == 'add' and 2 or 1
for i = 2, #ARGV, step do
  if op == 'add' then n = n + redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else n = n + redis.call('HDEL', KEYS[1], ARGV[i]) end
  names[#names + 1] = ARGV[i]
end
if #names > tonumber(LOG_NAMES) then op, names = 'reload', {} end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', LOG_ENTRIES, '*',
           'v', v, 'op', op, 'names', table.concat(names, ' '))
return n
"""
_LOG_NAMES = 100  # a change naming more cameras makes members re-read the names instead
_LOG_ENTRIES = 1000  # changes kept; a member further behind re-reads the names
_KEYS = [FLEET_CAMERAS, FLEET_CHANGES, FLEET_VERSION]


def _change(client, op: str, args: list[str]) -> int:
    script = _CHANGE.replace("LOG_NAMES", str(_LOG_NAMES)).replace("LOG_ENTRIES", str(_LOG_ENTRIES))
    return int(client.eval(script, len(_KEYS), *_KEYS, op, *args))


def add_cameras(client, cameras: list[Camera]) -> int:
    """Store `cameras` (replacing those of the same names) in one step; how many are new."""
    return _change(client, "add", [x for c in cameras for x in (c.name, c.to_json())]) if cameras else 0


def add_camera(client, camera: Camera) -> bool:
    """Store `camera` (replacing one of the same name); True when it is new."""
    return bool(add_cameras(client, [camera]))


def remove_camera(client, name: str) -> bool:
    """Remove a camera; True when it existed. Its owner stops it within a claim round."""
    return bool(_change(client, "rm", [name]))


def read_change_log(client, after: str) -> list[tuple[str, int, str, list[str]]]:
    """(entry id, cameras version, op, names) of each change logged after the entry id `after`."""
    out = []
    for entry_id, fields in client.xrange(FLEET_CHANGES, min=f"({after}", max="+"):
        f = {text(k): text(v) for k, v in fields.items()}
        out.append((text(entry_id), int(f.get("v") or 0), f.get("op", ""), f.get("names", "").split()))
    return out


def _parse(name: str, raw) -> Camera | None:
    try:
        data = json.loads(text(raw))
        return Camera(name, str(data["url"]), dict(data.get("options") or {}), float(data.get("added", 0)))
    except (ValueError, KeyError, TypeError):
        return None


def read_cameras(client, names: list[str]) -> dict[str, Camera]:
    """The desired cameras of these names (one HMGET); a missing or unreadable one is left out."""
    if not names:
        return {}
    found = zip(names, client.hmget(FLEET_CAMERAS, names), strict=True)
    return {name: camera for name, raw in found if raw is not None and (camera := _parse(name, raw))}


def list_cameras(client) -> dict[str, Camera]:
    """Every desired camera by name. A value that is not valid JSON is skipped (and named by
    `cameras ls`), not fatal: one bad entry must not stop the fleet."""
    out = {}
    for raw_name, raw in client.hgetall(FLEET_CAMERAS).items():
        name = text(raw_name)
        if camera := _parse(name, raw):
            out[name] = camera
    return out


def migrate_v1(client) -> int:
    """Move the cameras of fleet schema 1 (`keys.FLEET_V1_CAMERAS`) into schema 2, keeping any camera of the
    same name already there, then delete the old list; how many moved. Run once every member is upgraded."""
    old = {}
    for raw_name, raw in client.hgetall(FLEET_V1_CAMERAS).items():
        name = text(raw_name)
        if (camera := _parse(name, raw)) is not None:
            old[name] = camera
    existing = set(map(text, client.hkeys(FLEET_CAMERAS)))
    moved = add_cameras(client, [c for n, c in sorted(old.items()) if n not in existing])
    client.delete(FLEET_V1_CAMERAS)
    return moved
