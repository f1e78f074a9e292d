"""`fleet status` and `health` over hand-written member records, leases and heartbeats (the contract of
docs/fleet.md), on a real Redis: owners from fences, unowned and removed cameras, host filtering."""

from __future__ import annotations

import json
import re
import time

import pytest
import redis

from affectstream.pipeline.cli.main import main
from affectstream.pipeline.fleet.cameras import add_camera, check_camera
from affectstream.pipeline.fleet.status import fleet_status, format_status
from affectstream.pipeline.runtime.health import fleet_health, worker_health
from affectstream.pipeline.streams.keys import (
    FLEET_CAMERAS,
    FLEET_INFO,
    FLEET_MEMBERS,
    heartbeat_key,
    heartbeat_ttl_s,
    host_id,
    lease_key,
    member_stats_key,
)


@pytest.fixture
def client(redis_url):
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def redis_ms(client) -> int:
    sec, usec = client.time()
    return sec * 1000 + usec // 1000


def member(
    client,
    name: str,
    cameras: dict,
    *,
    capacity: int = 3,
    age_s: float = 0.5,
    host: str = "vm-a",
) -> None:
    """A member that beat `age_s` ago by Redis's clock (its deadline is its TTL less that from now) and
    wrote its stats record then."""
    ttl_ms = 30_000
    facts = {
        "member": name,
        "worker": f"{name}-w0",
        "host": host,
        "pid": 100,
        "capacity": capacity,
        "ttl_ms": ttl_ms,
    }
    client.zadd(FLEET_MEMBERS, {name: redis_ms(client) + ttl_ms - int(age_s * 1000)})
    client.hset(FLEET_INFO, name, json.dumps(facts))
    stats = {"member": name, "worker": f"{name}-w0", "cameras": cameras, "ttl_ms": 15_000}
    client.set(member_stats_key(name), json.dumps(stats), px=15_000 - int(age_s * 1000))


def lease(client, camera: str, worker: str, age_s: float = 30.0) -> None:
    """`worker`'s fence on `camera`, claimed `age_s` ago by Redis's clock."""
    client.set(lease_key(camera), f"{worker}/5f2c0e/{redis_ms(client) - int(age_s * 1000)}")


def beat(client, worker: str, *, age_s: float = 0.5, skew_s: float = 0.0, **extra) -> None:
    """A heartbeat as `pipeline.runtime.worker` writes it (no `ttl_ms`: the TTL of the default config), `age_s` ago
    by Redis's clock, from a host whose clock is `skew_s` off."""
    data = {"ts": time.time() - age_s + skew_s, "pid": 1, "published": 10, "sources": [], **extra}
    client.set(heartbeat_key(worker), json.dumps(data), px=int((heartbeat_ttl_s(15) - age_s) * 1000))


@pytest.fixture
def fleet(client):
    """Two members; `lobby` and `door` held by vm-a-1, `yard` desired and unowned, `old` removed from the
    desired cameras but still held by vm-b-2 (until its next round), one unreadable member record."""
    now = time.time()
    for name in ("lobby", "door", "yard"):
        add_camera(client, check_camera(name, f"rtsp://viewer:s3cret-pw@{name}.cam/s"))
    stats = {"fps": 29.7, "decoded": 900, "dropped": 4, "last_frame_ts": now - 0.2, "last_frame_age_s": 0.1}
    member(client, "vm-a-1", {"lobby": stats, "door": stats}, capacity=3)
    member(client, "vm-b-2", {"old": stats}, capacity=2, age_s=1.5, host="vm-b")
    lease(client, "lobby", "vm-a-1-w0")
    lease(client, "door", "vm-a-1-w0", age_s=5.0)
    lease(client, "old", "vm-b-2-w0")
    client.hset(FLEET_INFO, "garbled", "{")
    return now


def test_status_reads_members_and_cameras(client, fleet):
    status = fleet_status(client)
    members = {m["member"]: m for m in status["members"]}
    assert set(members) == {"vm-a-1", "vm-b-2"}
    assert members["vm-a-1"]["cameras"] == ["door", "lobby"] and members["vm-a-1"]["capacity"] == 3
    assert members["vm-b-2"]["host"] == "vm-b" and 1.4 < members["vm-b-2"]["beat_age_s"] < 1.6

    cameras = {c["name"]: c for c in status["cameras"]}
    assert list(cameras) == ["door", "lobby", "old", "yard"]
    lobby = cameras["lobby"]
    assert lobby["owner"] == "vm-a-1" and lobby["worker"] == "vm-a-1-w0"
    assert 29.9 < lobby["lease_age_s"] < 30.2
    assert (lobby["fps"], lobby["decoded"], lobby["dropped"]) == (29.7, 900, 4)
    assert 0.5 < lobby["last_frame_age_s"] < 0.7
    assert lobby["url"] == "rtsp://viewer:***@lobby.cam/s"
    assert 4.9 < cameras["door"]["lease_age_s"] < 5.2
    assert cameras["yard"]["owner"] == "" and cameras["yard"]["lease_age_s"] is None
    assert cameras["old"]["desired"] is False and cameras["old"]["owner"] == "vm-b-2"
    assert status["unreadable"] == [f"{FLEET_INFO} garbled"]
    assert "s3cret" not in json.dumps(status)


def test_the_fence_decides_the_owner_not_the_stats(client, fleet):
    """A member whose stats still list a camera another member has taken over is not its owner; a dead
    member's fence is no owner."""
    lease(client, "lobby", "vm-b-2-w0")
    lobby = next(c for c in fleet_status(client)["cameras"] if c["name"] == "lobby")
    assert lobby["owner"] == "vm-b-2" and lobby["fps"] is None  # vm-b-2 has not reported it yet
    client.zrem(FLEET_MEMBERS, "vm-b-2")  # reaped: dead
    client.hdel(FLEET_INFO, "vm-b-2")
    lobby = next(c for c in fleet_status(client)["cameras"] if c["name"] == "lobby")
    assert lobby["owner"] == "" and lobby["worker"] == "vm-b-2-w0"
    client.set(lease_key("lobby"), "vm-z-9/0a1b")  # a run's writer lease: that run writes it
    lobby = next(c for c in fleet_status(client)["cameras"] if c["name"] == "lobby")
    assert lobby["owner"] == "vm-z-9" and lobby["lease_age_s"] is None


def test_status_table_and_json_from_the_command(client, fleet, redis_url, capsys):
    assert main(["fleet", "status", "--redis", redis_url]) == 0
    out = capsys.readouterr().out
    assert "members: 2, capacity 5, holding 3 camera(s)" in out
    assert "cameras: 4, 3 owned, 1 unowned" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert rows["yard"].split()[1] == "(unowned)"
    assert "(removed, stopping)" in rows["old"] and "29.7" in rows["lobby"]
    assert "unreadable (skipped): affect:{fleet}:info garbled" in out
    assert "s3cret" not in out

    assert main(["fleet", "status", "--json", "--redis", redis_url]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {m["member"] for m in data["members"]} == {"vm-a-1", "vm-b-2"}
    assert len(data["cameras"]) == 4


def test_an_empty_fleet(client, redis_url, capsys):
    assert (
        format_status(fleet_status(client))
        == "members: 0, capacity 0, holding 0 camera(s)\n\ncameras: 0, 0 owned, 0 unowned"
    )
    assert fleet_health(client, 15) == (True, ["fleet: 0 member(s), 0 of 0 camera(s) held"])
    client.hset(FLEET_CAMERAS, "bad", "[]")
    assert main(["fleet", "status", "--json", "--redis", redis_url]) == 0
    assert json.loads(capsys.readouterr().out)["unreadable"] == [f"{FLEET_CAMERAS} bad"]


def test_health_checks_this_hosts_workers_by_default(client, redis_url, capsys):
    here = host_id()
    beat(client, f"{here}-100-w0")
    beat(client, "elsewhere-7-w0", age_s=120)  # another host's stale worker: not this host's problem
    healthy, lines = worker_health(client, 15, host=here)
    assert healthy and len(lines) == 1
    assert main(["health", "--redis", redis_url]) == 0
    out = capsys.readouterr().out
    assert f"{here}-100-w0: ok" in out and "elsewhere" not in out

    assert main(["health", "--all", "--redis", redis_url]) == 1
    err = capsys.readouterr().err
    assert "elsewhere-7-w0: STALE" in err and f"{here}-100-w0: ok" in err

    beat(client, f"{here}-100-w0", age_s=60)
    assert main(["health", "--redis", redis_url]) == 1


def test_health_uses_the_host_a_worker_names(client):
    """A member started with `--member lobby-box` has worker id `lobby-box-w0`: its beat names its host."""
    beat(client, "lobby-box-w0", host="vm-a")
    beat(client, "vm-a-9-w0", host="vm-b")  # the beat's host wins over the id's prefix
    healthy, lines = worker_health(client, 15, host="vm-a")
    assert healthy and len(lines) == 1 and lines[0].startswith("lobby-box-w0: ok")
    assert worker_health(client, 15, host="vm-c") == (False, ["no worker heartbeat found on host vm-c"])


def test_health_all_judges_the_fleet(client, fleet, redis_url, capsys):
    beat(client, "vm-a-1-w0")
    beat(client, "vm-b-2-w0")
    healthy, lines = fleet_health(client, 15)
    assert not healthy
    assert lines[0] == "fleet: 2 member(s), 2 of 3 camera(s) held"
    assert "camera yard: UNOWNED" in lines and f"unreadable: {FLEET_INFO} garbled" in lines
    client.hdel(FLEET_INFO, "garbled")
    lease(client, "yard", "vm-b-2-w0")
    assert fleet_health(client, 15)[0]
    healthy, lines = fleet_health(client, 1.0)  # vm-b-2 last beat 1.5 s ago, and more on a busy machine
    stale = re.fullmatch(r"member vm-b-2: STALE \(last beat (\d+\.\d+) s ago\)", lines[1])
    assert not healthy and len(lines) == 2 and stale and float(stale[1]) >= 1.5, lines
    assert main(["health", "--all", "--redis", redis_url]) == 0
    assert "fleet: 2 member(s), 3 of 3 camera(s) held" in capsys.readouterr().out


@pytest.mark.parametrize("skew_s", [-10.0, 10.0, -3600.0])
def test_a_member_whose_clock_is_off_is_judged_by_redis(client, redis_url, capsys, skew_s):
    """Issue 24: ages come from Redis (deadlines by its TIME, keys' TTLs), not from a writer's clock against
    the reader's: the member's `last_frame_ts` is off by `skew_s` and nothing else shows it."""
    add_camera(client, check_camera("gate", "rtsp://gate.cam/s"))
    member(
        client,
        "vm-c-3",
        {"gate": {"last_frame_ts": time.time() + skew_s, "last_frame_age_s": 0.1}},
        host="vm-c",
    )
    lease(client, "gate", "vm-c-3-w0", age_s=20.5)
    beat(client, "vm-c-3-w0", skew_s=skew_s, host="vm-c")
    status = fleet_status(client)
    assert 0.4 < status["members"][0]["beat_age_s"] < 0.7
    gate = status["cameras"][0]
    assert 20.4 < gate["lease_age_s"] < 20.8 and 0.5 < gate["last_frame_age_s"] < 0.8
    assert fleet_health(client, 5) == (True, ["fleet: 1 member(s), 1 of 1 camera(s) held"])
    healthy, lines = worker_health(client, 5, host="vm-c", beat_ttl_s=heartbeat_ttl_s(15))
    assert healthy and lines[0].startswith("vm-c-3-w0: ok (last beat 0.")
    assert main(["health", "--all", "--stale-after", "5", "--redis", redis_url]) == 0, capsys.readouterr().err
    assert "member vm-c-3" not in capsys.readouterr().out


def test_a_beat_of_stated_ttl_and_one_without_a_ttl(client):
    client.set(
        heartbeat_key("vm-d-1-w0"),
        json.dumps({"ts": 0, "pid": 1, "published": 0, "host": "vm-d", "ttl_ms": 4000}),
        px=1000,
    )
    healthy, lines = worker_health(client, 2.5, host="vm-d")
    assert not healthy and lines == ["vm-d-1-w0: STALE (last beat 3.0 s ago, pid 1, published 0)"]
    client.set(
        heartbeat_key("vm-d-1-w0"), json.dumps({"ts": time.time(), "pid": 1, "published": 0, "host": "vm-d"})
    )
    healthy, lines = worker_health(client, 2.5, host="vm-d")
    assert not healthy and "age unknown" in lines[0]


def test_an_archive_workers_beat_is_dated_by_redis(client):
    """`archive work` beats with its own TTL (the idle timeout): it states it, so `health --all` dates it."""
    from affectstream.pipeline.archive.worker import _beat

    _beat(client, "vm-e-5", "job1", 3, ttl_s=20)
    healthy, lines = worker_health(client, 15, beat_ttl_s=heartbeat_ttl_s(15))
    assert healthy and lines[0].startswith("vm-e-5: ok (last beat 0.0 s ago")


def test_health_says_what_each_worker_dropped_and_why(client):
    stats = {
        "cam": {"decoded": 12, "dropped": 5, "dropped_by": {"stale": 2, "redis_unavailable": 3}},
        "clip": {"decoded": 7, "dropped": 0, "dropped_by": {}},
    }
    beat = {"ts": 0, "pid": 1, "published": 14, "host": "vm-e", "ttl_ms": 60_000, "stats": stats}
    client.set(heartbeat_key("vm-e-1-w0"), json.dumps(beat), px=59_500)
    healthy, lines = worker_health(client, 5, host="vm-e")
    assert healthy and lines == [
        "vm-e-1-w0: ok (last beat 0.5 s ago, pid 1, published 14, dropped 5 (redis_unavailable 3, stale 2))"
    ]
