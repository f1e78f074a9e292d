"""What the fleet is doing, read from Redis alone: members (alive, with their facts and measurements) and
cameras (desired, and who runs them), as pure functions over a client for `affectstream fleet status`,
`cameras ls` and `health --all`. Nothing here writes, and nothing scans the keyspace: the members are the
sorted set `keys.FLEET_MEMBERS` with their facts in `keys.FLEET_INFO`, each member's measurements its stats
record (`pipeline.fleet.stats`), and a camera's owner its fence (`pipeline.fleet.fences`): a live member's
worker in it is the owner, a dead member's fence is no owner (the camera waits for the next claim), a run's
writer lease names that run. Ages are Redis's: a member's `beat_age_s` is its TTL less the time left before
its score (Redis TIME) passes, a camera's `lease_age_s` is Redis's TIME now less the claim time in its
fence, and a last frame's age is what the owner measured when it wrote its stats plus that record's age (its
TTL less its PTTL). No member's wall clock is compared with another's or with the reader's (`last_frame_ts`
is shown as data).
"""

from __future__ import annotations

import json
import time
from typing import Any

from affectstream.pipeline.fleet.cameras import list_cameras
from affectstream.pipeline.fleet.fences import claimed_ms, is_fleet_token
from affectstream.pipeline.streams.keys import (
    FLEET_CAMERAS,
    FLEET_INFO,
    FLEET_MEMBERS,
    holder_of,
    lease_key,
    member_stats_key,
    text,
)
from affectstream.pipeline.streams.liveness import beat_age_s, read_with_pttl
from affectstream.pipeline.streams.scripts import LuaScript
from affectstream.pipeline.tables import format_table

# One slot (`{fleet}`): Redis's clock, the members' deadlines and their facts at one moment.
_READ = LuaScript("""
return {redis.call('TIME'), redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2])}
""")


def read_members(client) -> tuple[int, list[dict[str, Any]], list[str]]:
    """(Redis's clock in ms, member records sorted by id, unreadable entries).

    A record is the member's facts `{member, worker, host, pid, capacity, ttl_ms}` (docs/fleet.md) with
    `beat_age_s`, seconds since its last beat by Redis's clock (None when its facts do not state a TTL),
    and `stats`, its stats record with that record's own age in `stats_age_s` ({} when there is none).
    """
    (sec, usec), scores, info = _READ(client, [FLEET_MEMBERS, FLEET_INFO], [])
    now_ms = int(sec) * 1000 + int(usec) // 1000
    deadline = {text(scores[i]): int(float(scores[i + 1])) for i in range(0, len(scores), 2)}
    members, bad = [], []
    for i in range(0, len(info), 2):
        name = text(info[i])
        try:
            facts = json.loads(info[i + 1])
            if not isinstance(facts, dict):
                raise ValueError("not a member's facts")
        except ValueError:
            bad.append(f"{FLEET_INFO} {name}")
            continue
        left = deadline.get(name, now_ms) - now_ms
        members.append({**facts, "member": name, "beat_age_s": beat_age_s(facts, max(0, left))})
    members.sort(key=lambda m: m["member"])
    keys = [member_stats_key(m["member"]) for m in members]
    for m, key, (raw, pttl) in zip(members, keys, read_with_pttl(client, keys), strict=True):
        m["stats"] = {}
        if raw is None:
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or not isinstance(record.get("cameras", {}), dict):
                raise ValueError("not a stats record")
        except ValueError:
            bad.append(key)
            continue
        m["stats"] = {**record, "stats_age_s": beat_age_s(record, pttl)}
    return now_ms, members, bad


def _plus_age(seconds: Any, age: Any) -> float | None:
    """A duration the member measured when it wrote its stats, plus that record's age: that duration now."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or age is None:
        return None
    return round(seconds + age, 3)


def camera_rows(client, now_ms: int, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per camera that is desired or still run (a removed camera runs until its owner's next
    round): URL as shown by `Camera.safe_url`, owner (from its fence), lease age and the owner's numbers."""
    desired = list_cameras(client)
    by_worker = {m.get("worker"): m for m in members}
    reported = {name for m in members for name in m["stats"].get("cameras", {})}
    names = sorted(set(desired) | reported)
    pipe = client.pipeline(transaction=False)  # one GET each: the fences are in their cameras' slots
    for name in names:
        pipe.get(lease_key(name))
    fences = [text(v) for v in pipe.execute()] if names else []
    rows = []
    for name, fence in zip(names, fences, strict=True):
        worker = holder_of(fence)
        owner = by_worker.get(worker)
        if not desired.get(name) and not owner:
            continue  # reported before it was released: gone now
        stats = (owner or {}).get("stats", {})
        numbers = stats.get("cameras", {}).get(name) or {}
        claimed = claimed_ms(fence)
        camera = desired.get(name)
        rows.append(
            {
                "name": name,
                "desired": camera is not None,
                "url": camera.safe_url if camera else None,
                "options": camera.options if camera else {},
                # a live member; a run writing it under its writer lease; "" for none or a dead member's fence
                "owner": owner["member"] if owner else ("" if is_fleet_token(fence) else worker),
                "worker": worker,
                "lease_age_s": None if claimed is None else round(max(0, now_ms - claimed) / 1000, 3),
                "fps": numbers.get("fps"),
                "decoded": numbers.get("decoded"),
                "dropped": numbers.get("dropped"),
                "dropped_by": numbers.get("dropped_by"),
                "last_frame_ts": numbers.get("last_frame_ts"),
                "last_frame_age_s": _plus_age(numbers.get("last_frame_age_s"), stats.get("stats_age_s")),
            }
        )
    return rows


def unreadable_cameras(client) -> list[str]:
    """Names in the cameras hash whose value is not a camera (skipped by members, named by `cameras ls`)."""
    return sorted(set(map(text, client.hkeys(FLEET_CAMERAS))) - set(list_cameras(client)))


def member_rows(members: list[dict[str, Any]], cameras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "member": m["member"],
            "worker": m.get("worker", ""),
            "host": m.get("host", ""),
            "pid": m.get("pid"),
            "capacity": m.get("capacity"),
            "cameras": [c["name"] for c in cameras if c["owner"] == m["member"]],
            "beat_age_s": m["beat_age_s"],
        }
        for m in members
    ]


def fleet_status(client) -> dict[str, Any]:
    """Members and cameras as plain data (`fleet status --json`); `ts` is when (this host's clock: data)."""
    now_ms, members, bad = read_members(client)
    cameras = camera_rows(client, now_ms, members)
    return {
        "ts": time.time(),
        "members": member_rows(members, cameras),
        "cameras": cameras,
        "unreadable": bad + [f"{FLEET_CAMERAS} {name}" for name in unreadable_cameras(client)],
    }


def _seconds(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f} s{suffix}"


def _number(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def format_members(rows: list[dict[str, Any]]) -> str:
    capacity = sum(r["capacity"] or 0 for r in rows)
    held = sum(len(r["cameras"]) for r in rows)
    head = f"members: {len(rows)}, capacity {capacity}, holding {held} camera(s)"
    if not rows:
        return head
    table = format_table(
        ("member", "host", "pid", "capacity", "cameras", "last beat"),
        [
            (
                r["member"],
                r["host"],
                r["pid"],
                r["capacity"],
                ",".join(r["cameras"]) or "-",
                _seconds(r["beat_age_s"], " ago"),
            )
            for r in rows
        ],
        align="<<>><<",
    )
    return f"{head}\n{table}"


def format_cameras(rows: list[dict[str, Any]]) -> str:
    unowned = sum(not r["owner"] for r in rows)
    head = f"cameras: {len(rows)}, {len(rows) - unowned} owned, {unowned} unowned"
    if not rows:
        return head
    table = format_table(
        ("camera", "owner", "lease age", "fps", "dropped", "last frame", "url"),
        [
            (
                r["name"],
                r["owner"] or "(unowned)",
                _seconds(r["lease_age_s"]),
                _number(r["fps"], 1),
                _number(r["dropped"]),
                _seconds(r["last_frame_age_s"], " ago"),
                r["url"] if r["desired"] else "(removed, stopping)",
            )
            for r in rows
        ],
        align="<<>>>><",
    )
    return f"{head}\n{table}"


def format_camera_list(rows: list[dict[str, Any]]) -> str:
    """`cameras ls`: what is desired, with who holds it."""
    if not rows:
        return "no cameras (`affectstream cameras add NAME URL`)"
    return format_table(
        ("camera", "owner", "lease age", "options", "url"),
        [
            (
                r["name"],
                r["owner"] or "(unowned)",
                _seconds(r["lease_age_s"]),
                " ".join(f"{k}={v}" for k, v in sorted(r["options"].items())) or "-",
                r["url"],
            )
            for r in rows
        ],
        align="<<><<",
    )


def format_status(status: dict[str, Any]) -> str:
    parts = [format_members(status["members"]), format_cameras(status["cameras"])]
    if status["unreadable"]:
        parts.append("unreadable (skipped): " + ", ".join(status["unreadable"]))
    return "\n\n".join(parts)
