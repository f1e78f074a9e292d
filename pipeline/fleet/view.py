"""A member's view of the fleet, who is alive (with what capacity) and which cameras are desired, kept up to
date for one small read per round. Liveness: each member beats (`beat`, a script) into the sorted set
`keys.FLEET_MEMBERS`, scored with the Redis TIME at which it counts as dead unless it beats again (now + its
TTL), so no member's clock takes part; the same script reaps members past their score (they leave
`keys.FLEET_INFO` too) and bumps the `members` version when the set changed, and a member that finds itself
newly added while it thought it was a member was reaped: it must give up its cameras (`Beat.rejoined`).
Every round a member reads `keys.FLEET_VERSION` ({members, cameras, handovers}, one HMGET), and only when a
version moved: the live members' facts (`HGETALL keys.FLEET_INFO`, O(members)) or the camera changes since
the last it saw (`keys.FLEET_CHANGES`, XRANGE from its last id); a gap in the changes (trimmed) or a
`reload` entry means re-reading the camera names. `handovers` moves when a member released a camera to
another, so members waiting for one look at its fence then, not every round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from affectstream.pipeline.fleet.cameras import read_change_log
from affectstream.pipeline.streams.keys import (
    FLEET_CAMERAS,
    FLEET_CHANGES,
    FLEET_INFO,
    FLEET_MEMBERS,
    FLEET_VERSION,
    text,
)
from affectstream.pipeline.streams.scripts import LuaScript

# KEYS members, info, version; ARGV member, ttl ms, info JSON. Returns {1 if it was not a member, reaped}.
_BEAT = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local new = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if new == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 64)
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
if new == 1 or #dead > 0 then redis.call('HINCRBY', KEYS[3], 'members', 1) end
return {new, #dead}
""")
# KEYS members, info, version; ARGV member, facts JSON: new facts of a live member (what it cannot run).
_FACTS = LuaScript("""
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'members', 1)
return 1
""")
_LEAVE = LuaScript("""
local gone = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if gone == 1 then redis.call('HINCRBY', KEYS[3], 'members', 1) end
return gone
""")
_FLEET_KEYS = [FLEET_MEMBERS, FLEET_INFO, FLEET_VERSION]
# KEYS cameras, version, changes: {names joined by spaces, cameras version, id of the last change logged}.
_NAMES = LuaScript("""
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
return {table.concat(redis.call('HKEYS', KEYS[1]), ' '), redis.call('HGET', KEYS[2], 'cameras') or '0',
        last[1] and last[1][1] or ''}
""")


@dataclass
class Beat:
    rejoined: bool  # this member had been reaped (it was silent past its TTL): its cameras are not its own
    reaped: int


@dataclass
class Changes:
    members: bool = False  # the live members changed: recompute the assignment
    cameras: set[str] = field(default_factory=set)  # names added or replaced (or all, after a reload)
    removed: set[str] = field(default_factory=set)
    handovers: bool = False  # a member released a camera to another

    @property
    def any(self) -> bool:
        return self.members or bool(self.cameras or self.removed)


class FleetView:
    """The fleet as one member sees it (`client`: its own connection)."""

    def __init__(self, client, member: str, ttl_s: float) -> None:
        self.client = client
        self.member = member
        self.ttl_ms = int(ttl_s * 1000)
        self.members: dict[str, dict] = {}  # live member -> its facts {worker, capacity, ...}
        self.cameras: set[str] = set()
        self._versions: list[bytes | None] = [None, None, None]
        self._changes_id = "0-0"
        self._cameras_v = -1
        self._members_read = False

    # -- liveness ---------------------------------------------------------------------------------
    def beat(self, facts: dict) -> Beat:
        """Say this member lives for another TTL (by Redis's clock) and reap the members that did not."""
        new, reaped = _BEAT(self.client, _FLEET_KEYS, [self.member, self.ttl_ms, json.dumps(facts)])
        return Beat(bool(new), int(reaped))

    def update_facts(self, facts: dict) -> None:
        """Replace this member's facts (they changed: a camera it cannot run); the others re-read them."""
        _FACTS(self.client, _FLEET_KEYS, [self.member, json.dumps(facts)])

    def leave(self) -> None:
        _LEAVE(self.client, _FLEET_KEYS, [self.member])

    @property
    def capacities(self) -> dict[str, int]:
        return {m: int(f.get("capacity") or 0) for m, f in self.members.items()}

    @property
    def unable(self) -> dict[str, list[str]]:
        """member -> the cameras whose URL or options it cannot resolve (its facts' `unable`)."""
        return {m: list(f.get("unable") or []) for m, f in self.members.items()}

    @property
    def live_workers(self) -> set[str]:
        return {str(f.get("worker")) for f in self.members.values()}

    # -- what changed -----------------------------------------------------------------------------
    def refresh(self) -> Changes:
        """One HMGET; the members or the camera changes re-read only when their version moved."""
        versions = self.client.hmget(FLEET_VERSION, "members", "cameras", "handovers")
        members_v, cameras_v, handovers_v = versions
        changes = Changes(handovers=handovers_v != self._versions[2] and self._versions[2] is not None)
        if members_v != self._versions[0] or not self._members_read:
            self.members = read_members_info(self.client)
            self._members_read = changes.members = True
        if cameras_v != self._versions[1] or self._cameras_v < 0:
            self._read_cameras(changes, int(cameras_v or 0))
        self._versions = list(versions)
        return changes

    def _read_cameras(self, changes: Changes, version: int) -> None:
        entries = [] if self._cameras_v < 0 else read_change_log(self.client, self._changes_id)
        cameras, v, last = set(self.cameras), self._cameras_v, self._changes_id
        for entry_id, entry_v, op, names in entries:
            if entry_v <= v:
                continue  # already applied (read with the names)
            if entry_v > v + 1 or op == "reload":
                break
            if op == "add":  # in order: `rm x` then `add x` leaves x desired
                cameras |= set(names)
                changes.cameras.update(names)
            else:
                cameras -= set(names)
                changes.removed.update(names)
            v, last = entry_v, entry_id
        if v != version:  # first read, a trimmed log, a reload, or a change not logged yet
            self._reload(changes)
            return
        self.cameras, self._cameras_v, self._changes_id = cameras, v, last

    def _reload(self, changes: Changes) -> None:
        # Names, version and log position of one moment; the names as one string (10,000 names parse
        # a hundred times faster so than as 10,000 replies).
        names, version, last = _NAMES(self.client, [FLEET_CAMERAS, FLEET_VERSION, FLEET_CHANGES], [])
        now = set(text(names).split())
        changes.removed |= self.cameras - now
        changes.cameras |= now
        self.cameras = now
        self._cameras_v = int(version or 0)
        self._changes_id = text(last) or "0-0"


def read_members_info(client) -> dict[str, dict]:
    """Live member -> its facts, from `keys.FLEET_INFO` (an entry that is not a JSON object is skipped)."""
    out = {}
    for name, raw in client.hgetall(FLEET_INFO).items():
        try:
            facts = json.loads(raw)
        except ValueError:
            continue
        if isinstance(facts, dict):
            out[text(name)] = facts
    return out
