"""Fleet members whose wall clocks are off (issue 24, DESIGN.md "Clocks"): liveness is measured by Redis (a
member's deadline in the members' set, from Redis TIME), never by comparing members' clocks, so a member
10 s behind or ahead still gets its share of the cameras, and neither `health --all` nor `fleet status`
calls it stale.

The clock is shifted inside the member's processes (`tests/clockshift/sitecustomize.py`): `time.time` reads
10 s off there, as on a host whose NTP is broken; the monotonic clock is untouched.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import redis

from affectstream.pipeline.cli.main import main
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import FLEET_INFO, FLEET_MEMBERS, frames_key
from tests.conftest import REPO
from tests.fleet.harness import Fleet, wait_for
from tests.fleet.test_member import _add, _member

CLOCKSHIFT = REPO / "tests" / "clockshift"
OFFSET_ENV = "AFFECTSTREAM_TEST_CLOCK_OFFSET_S"
TTL_S = 3.0


def clock_off(seconds: float) -> dict[str, str]:
    """The environment of a member process whose wall clock reads `seconds` off (negative: behind)."""
    return {"PYTHONPATH": f"{CLOCKSHIFT}:{REPO}", OFFSET_ENV: str(seconds)}


def other_member(
    client, name: str, *, capacity: int, skew_s: float, age_s: float, ttl_ms: int = 3000
) -> None:
    """Another member as its beat leaves it, `age_s` ago by Redis's clock (its deadline in the members' set
    is then TTL less that from now), from a host whose clock is `skew_s` off (only its `ts`, data, shows it)."""
    sec, usec = client.time()
    now_ms = sec * 1000 + usec // 1000
    facts = {
        "member": name,
        "worker": f"{name}-w0",
        "host": "vm-x",
        "pid": 1,
        "capacity": capacity,
        "ttl_ms": ttl_ms,
        "ts": time.time() - age_s + skew_s,
    }
    client.zadd(FLEET_MEMBERS, {name: now_ms + ttl_ms - int(age_s * 1000)})
    client.hset(FLEET_INFO, name, json.dumps(facts))


@pytest.mark.parametrize(
    "skew_s, age_s, claimed",
    [
        # A member that beat 0.2 s ago (by Redis) counts, whatever its host's clock says: a fair share of 2.
        (-10.0, 0.2, 2),
        (10.0, 0.2, 2),
        (-600.0, 0.2, 2),
        # One silent for more than its TTL is dead (reaped by the next beat): all 4 are taken.
        (0.0, 4.0, 4),
        (10.0, 4.0, 4),
        (600.0, 4.0, 4),
    ],
)
def test_another_member_is_judged_by_its_age_in_redis(redis_url, skew_s, age_s, claimed):
    client = connect(redis_url)
    _add(client, "a", "b", "c", "d")
    other_member(client, "m2", capacity=4, skew_s=skew_s, age_s=age_s)
    member, worker = _member(redis_url, max_sources=4, lease_ttl_s=3, claim_every_s=0.1)
    member.start()
    member._closed.set()  # rounds by hand
    member.round()
    assert len(worker.running) == claimed
    facts = json.loads(client.hget(FLEET_INFO, "m1"))  # its own facts state its TTL
    sec, usec = client.time()
    left = client.zscore(FLEET_MEMBERS, "m1") - (sec * 1000 + usec // 1000)
    assert facts["ttl_ms"] == 3000 and 2000 < left <= 3000
    member.close()


def _held(fleet: Fleet) -> Counter[str]:
    return Counter({worker: len(cams) for worker, cams in fleet.held().items()})


def _published_by(client: redis.Redis, cameras: list[str], worker: str) -> int:
    return sum(
        1
        for c in cameras
        for _id, f in client.xrevrange(frames_key(c), count=200)
        if f.get(b"worker") == worker.encode()
    )


@pytest.mark.rtsp
@pytest.mark.parametrize(
    "skew_s, first",
    [
        # A member 10 s behind joins a member that holds every camera (the holder saw the joiner as dead).
        pytest.param(-10.0, "on-time", id="behind-joins"),
        # A member on time joins one 10 s ahead that holds every camera (the joiner looked dead to it).
        pytest.param(10.0, "off", id="ahead-holds"),
    ],
)
def test_a_member_whose_clock_is_off_gets_its_share_and_is_not_stale(
    redis_url, rtsp_server, tmp_path, capsys, skew_s, first
):
    fleet = Fleet(redis_url, rtsp_server.url, tmp_path, TTL_S, max_sources=4)
    envs = {"on-time": {}, "off": clock_off(skew_s)}
    try:
        fleet.add_cameras("cam0", "cam1", "cam2", "cam3")
        second = "off" if first == "on-time" else "on-time"
        fleet.start(first, env=envs[first])
        ok = wait_for(lambda: _held(fleet) == Counter({f"{first}-w0": 4}), timeout=90, every=0.2)
        assert ok is not None, f"{first} did not take all four: {fleet.held()}\n{fleet.logs()}"
        fleet.start(second, env=envs[second])
        want = Counter({"on-time-w0": 2, "off-w0": 2})
        ok = wait_for(lambda: _held(fleet) == want, timeout=90, every=0.2)
        assert ok is not None, f"not split 2/2: {fleet.held()}\n{fleet.logs()}"
        time.sleep(2 * TTL_S)  # and it stays split (no member releases what the other then takes back)
        assert _held(fleet) == want, fleet.logs()
        assert wait_for(lambda: _published_by(fleet.client, fleet.cameras, "off-w0") > 10, timeout=60), (
            fleet.logs()
        )
        assert fleet.overlap_frames() == 0

        capsys.readouterr()
        argv = ["-c", str(fleet.config), "--redis", redis_url]
        assert main(["health", "--all", "--stale-after", "3", *argv]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "off-w0: ok" in out and "on-time-w0: ok" in out and "STALE" not in out
        assert main(["fleet", "status", "--json", *argv]) == 0
        members = {m["member"]: m for m in json.loads(capsys.readouterr().out)["members"]}
        assert set(members) == {"on-time", "off"}
        assert all(0 <= m["beat_age_s"] < TTL_S for m in members.values()), members
    finally:
        fleet.close()
