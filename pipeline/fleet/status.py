"""What the fleet is doing, read from Redis alone: members (their records) and cameras (desired, leased).

Pure functions over a client, for `affectstream fleet status`, `cameras ls`, `health --all` and the
dashboard. Nothing here writes. The truth about who owns a camera is its lease (`keys.holder_of` of
the token); a member record only adds what the owner measured (fps, drops, claim time), so an owner
whose record has expired still shows as the owner.

Ages are Redis's: a record's `beat_age_s` comes from its key's TTL (`pipeline.streams.liveness`), and a lease's age
or a last frame's is what the owner measured on its own clocks when it wrote the record plus that age.
No member's wall clock is compared with another's or with the reader's (`ts`, `claimed`, `last_frame_ts`
are shown as data).
"""

from __future__ import annotations

import json
import time
from typing import Any

from affectstream.pipeline.fleet.cameras import list_cameras
from affectstream.pipeline.streams.keys import FLEET_CAMERAS, MEMBER_PATTERN, holder_of, lease_key, text
from affectstream.pipeline.streams.liveness import beat_age_s, read_with_pttl
from affectstream.pipeline.tables import format_table


def read_members(client) -> tuple[list[dict[str, Any]], list[str]]:
    """(member records sorted by id, keys of records that are not valid JSON).

    A record is `{member, worker, host, pid, capacity, cameras: {name: {claimed, held_s, fps, decoded,
    dropped, last_frame_ts, last_frame_age_s}}, ts, ttl_ms}` (docs/fleet.md); it expires when its member
    stops beating. Each record read gets `beat_age_s`: seconds since it was written, by Redis's clock (None
    for a record that does not state its `ttl_ms`).
    """
    keys = sorted(text(k) for k in client.scan_iter(match=MEMBER_PATTERN, count=1000))
    members, bad = [], []
    for key, (raw, pttl) in zip(keys, read_with_pttl(client, keys), strict=True):
        if raw is None:  # expired between SCAN and GET
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or not isinstance(record.get("cameras", {}), dict):
                raise ValueError("not a member record")
        except ValueError:
            bad.append(key)
            continue
        members.append({**record, "beat_age_s": beat_age_s(record, pttl)})
    return sorted(members, key=lambda m: str(m.get("member", ""))), bad


def _since_beat(seconds: Any, member: dict[str, Any] | None) -> float | None:
    """A duration the member measured when it wrote its record, plus the record's age: that duration now."""
    beat = (member or {}).get("beat_age_s")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or beat is None:
        return None
    return round(seconds + beat, 3)


def member_rows(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "member": m.get("member", ""),
            "worker": m.get("worker", ""),
            "host": m.get("host", ""),
            "pid": m.get("pid"),
            "capacity": m.get("capacity"),
            "cameras": sorted(m.get("cameras", {})),
            "beat_age_s": m.get("beat_age_s"),
        }
        for m in members
    ]


def camera_rows(client, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per camera that is desired or still held (a removed camera is held until its owner's
    next round): URL as shown by `Camera.safe_url`, owner, lease age and the owner's numbers."""
    desired = list_cameras(client)
    by_worker = {m.get("worker"): m for m in members}
    held = {name for m in members for name in m.get("cameras", {})}
    names = sorted(set(desired) | held)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(lease_key(name))
        pipe.pttl(lease_key(name))
    replies = pipe.execute() if names else []
    rows = []
    for i, name in enumerate(names):
        worker, pttl = holder_of(replies[2 * i]), replies[2 * i + 1]
        owner = by_worker.get(worker) if worker else None
        stats = (owner or {}).get("cameras", {}).get(name) or {}
        camera = desired.get(name)
        rows.append(
            {
                "name": name,
                "desired": camera is not None,
                "url": camera.safe_url if camera else None,
                "options": camera.options if camera else {},
                "owner": owner.get("member", worker) if owner else worker,  # "" when unowned
                "worker": worker,
                "lease_age_s": _since_beat(stats.get("held_s"), owner),
                "lease_ttl_s": round(pttl / 1000, 3) if pttl and pttl > 0 else None,
                "fps": stats.get("fps"),
                "decoded": stats.get("decoded"),
                "dropped": stats.get("dropped"),
                "dropped_by": stats.get("dropped_by"),
                "last_frame_ts": stats.get("last_frame_ts"),
                "last_frame_age_s": _since_beat(stats.get("last_frame_age_s"), owner),
            }
        )
    return rows


def unreadable_cameras(client) -> list[str]:
    """Names in the cameras hash whose value is not a camera (skipped by members, named by `cameras ls`)."""
    return sorted(set(map(text, client.hkeys(FLEET_CAMERAS))) - set(list_cameras(client)))


def fleet_status(client) -> dict[str, Any]:
    """Members and cameras as plain data (`fleet status --json`); `ts` is when (this host's clock: data)."""
    members, bad = read_members(client)
    return {
        "ts": time.time(),
        "members": member_rows(members),
        "cameras": camera_rows(client, members),
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
