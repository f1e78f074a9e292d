"""A fleet camera's fence: the token of the worker that runs it, written once when it claims the camera.

The key is `keys.lease_key(camera)`, in the hash tag of the camera's streams, so the publish script
(`pipeline.streams.writer`, `Fence`) compares it with the writer's token in the same slot and round trip as
its XADDs: a member that lost the camera adds nothing. The value is `<worker>/<random hex>/<claimed ms>`,
the last part from Redis's clock (TIME inside the claim script), so `fleet status` tells how long a camera
has been held without any member's clock. There is no TTL and nothing to renew: whether the holder still
runs the camera is its member's liveness (`pipeline.fleet.view`), and a claim replaces only the very
value the claimer read (compare and set), so two members never both think they took it. A run's writer lease
(`pipeline.streams.writer_leases`, `<run>/<random>`, two parts) lives in the same key and is never taken
by a member.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from affectstream.pipeline.streams.keys import holder_of, lease_key, text
from affectstream.pipeline.streams.scripts import LuaScript, is_noscript
from affectstream.pipeline.streams.writer import Fence

# KEYS[1] the fence; ARGV: the value expected there ("" = none), the token to write. Returns the value
# written, or "" when another value was there (the claim lost a race; nothing written).
_CLAIM = LuaScript("""
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return '' end
local t = redis.call('TIME')
local value = ARGV[2] .. '/' .. (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], value)
return value
""")
# KEYS[1] the fence; ARGV[1] the value to remove: a fence another member took is left to it.
_DROP = LuaScript("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
""")


def is_fleet_token(value: str) -> bool:
    """A member's fence (three parts), not a run's writer lease (two)."""
    return value.count("/") == 2


def claimed_ms(value: str) -> int | None:
    """When a fence was written, in Redis ms; None for a value that is not a member's fence."""
    last = value.rsplit("/", 1)[-1]
    return int(last) if is_fleet_token(value) and last.isdigit() else None


@dataclass(frozen=True)
class Claim:
    """A camera this member's worker holds: the fence value it wrote."""

    camera: str
    value: str

    @property
    def fence(self) -> Fence:
        return Fence(lease_key(self.camera), self.value)


class Fences:
    """Reads, claims and drops fences of one member's worker over `client`."""

    def __init__(self, client, worker: str) -> None:
        self.client = client
        self.worker = worker

    def holders(self, cameras: Iterable[str]) -> dict[str, str]:
        """camera -> the value in its fence ("" when none), one round trip."""
        cameras = list(cameras)
        if not cameras:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for camera in cameras:
            pipe.get(lease_key(camera))
        return {c: text(v) for c, v in zip(cameras, pipe.execute(), strict=True)}

    def claim(self, found: dict[str, str]) -> dict[str, Claim]:
        """Claim each camera of `found` (camera -> the value read there, which this claim replaces),
        one round trip; the cameras claimed (a value changed since it was read is left alone)."""
        tokens = {c: f"{self.worker}/{uuid.uuid4().hex}" for c in found}
        written: dict[str, str] = {}
        for _attempt in range(2):  # a server without the script (restarted, failed over) loads it once
            todo = [c for c in found if c not in written]
            if not todo:
                break
            pipe = self.client.pipeline(transaction=False)
            for camera in todo:
                _CLAIM.queue(pipe, [lease_key(camera)], [found[camera], tokens[camera]])
            replies = pipe.execute(raise_on_error=False)
            for camera, reply in zip(todo, replies, strict=True):
                if is_noscript(reply):
                    continue
                if isinstance(reply, Exception):
                    raise reply
                written[camera] = text(reply)
            if len(written) < len(found):
                _CLAIM.load(self.client)
        return {c: Claim(c, v) for c, v in written.items() if v}

    def drop(self, claim: Claim) -> bool:
        """Delete the fence if it still holds this claim; False when another member's value is there."""
        return bool(_DROP(self.client, [lease_key(claim.camera)], [claim.value]))


def takeable(value: str, live_workers: set[str], own_worker: str, own: set[str], camera: str) -> bool:
    """Whether a member may replace the fence `value` of `camera`: nobody's; a member's fence whose worker
    is not live (its member is dead or gone); or this worker's own from an earlier tenure that it no longer
    runs (`own`: the cameras it runs now). Never a run's writer lease, never a live member's fence."""
    if not value:
        return True
    if not is_fleet_token(value):
        return False
    holder = holder_of(value)
    if holder == own_worker:
        return camera not in own
    return holder not in live_workers


def clear_dead_fence(client, camera: str, live_workers: set[str]) -> bool:
    """Delete the fence of a removed camera when its holder is no live member (`cameras rm` of a camera
    whose member died: nobody else would, and a run of that name must not find it held)."""
    value = text(client.get(lease_key(camera)))
    if not is_fleet_token(value) or holder_of(value) in live_workers:
        return False
    return bool(_DROP(client, [lease_key(camera)], [value]))
