"""Fleet members on a real Redis: fences, the fence check in the publish script, the outbox's handling of a
lost camera, the claim loop (claims, removals, a rival's fence, a member declared dead, one cut off), the
config rules; and members as separate `affectstream run --fleet` processes against the real RTSP server: two
split four cameras, `cameras rm` and `cameras add` take effect within 2 s."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import redis

from affectstream.pipeline.config import load_config
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.fleet.assign import assign
from affectstream.pipeline.fleet.cameras import add_camera, check_camera, remove_camera
from affectstream.pipeline.fleet.fences import Fences, takeable
from affectstream.pipeline.fleet.member import Member
from affectstream.pipeline.fleet.view import FleetView
from affectstream.pipeline.runtime.metrics import WorkerReading
from affectstream.pipeline.sources import EVENT_KINDS, SourceSpec
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import (
    FLEET_CHANGES,
    FLEET_INFO,
    FLEET_MEMBERS,
    events_key,
    frames_key,
    holder_of,
    lease_key,
    member_stats_key,
)
from affectstream.pipeline.streams.outbox import Outbox
from affectstream.pipeline.streams.replies import is_transient
from affectstream.pipeline.streams.schema import event_entry_schema, validate_event
from affectstream.pipeline.streams.writer import Fence, Fenced, StreamWriter, Written
from affectstream.pipeline.types import FrameResult
from tests.faults.harness import RedisProcess
from tests.fleet.harness import Fleet, events, publishers_since, wait_for


def _entries(ids):
    return [(i, {"frame": i.split("-")[1]}) for i in ids]


def lease_holder(client, camera: str) -> str:
    """The worker whose fence (or writer lease) `camera` carries; "" when none."""
    return holder_of(client.get(lease_key(camera)))


def test_fences_claim_compare_and_set_and_drop_only_their_own(redis_url):
    client = connect(redis_url)
    mine, other = Fences(client, "m1-w0"), Fences(client, "m2-w0")
    claims = mine.claim({"cam": ""})
    value = claims["cam"].value
    assert value.startswith("m1-w0/") and value.count("/") == 2 and lease_holder(client, "cam") == "m1-w0"
    redis_ms = int(client.time()[0]) * 1000
    assert abs(int(value.rsplit("/", 1)[1]) - redis_ms) < 2000  # claimed when, by Redis's clock
    assert client.pttl(lease_key("cam")) == -1  # no TTL: nothing to renew
    assert other.claim({"cam": ""}) == {}  # it read "nobody", but somebody came first: nothing written
    assert mine.holders(["cam", "free"]) == {"cam": value, "free": ""}
    taken = other.claim({"cam": value})["cam"]  # replacing the value it read (a dead member's)
    assert not mine.drop(claims["cam"]) and lease_holder(client, "cam") == "m2-w0"
    assert other.drop(taken) and not client.exists(lease_key("cam"))
    client.script_flush()  # a restarted or failed-over server: the scripts are loaded again on NOSCRIPT
    assert set(mine.claim({"cam": "", "cam2": ""})) == {"cam", "cam2"}
    assert FleetView(client, "m1", 3).beat({"worker": "m1-w0", "capacity": 1}).rejoined


def test_who_may_replace_a_fence():
    live = {"m2-w0"}
    assert takeable("", live, "m1-w0", set(), "cam")
    assert takeable("m3-w0/ab/1", live, "m1-w0", set(), "cam")  # its member is not alive
    assert not takeable("m2-w0/ab/1", live, "m1-w0", set(), "cam")  # a live member runs it
    assert takeable("m1-w0/ab/1", live, "m1-w0", set(), "cam")  # its own, from before it was declared dead
    assert not takeable("m1-w0/ab/1", live, "m1-w0", {"cam"}, "cam")
    assert not takeable("host-12/ab", live, "m1-w0", set(), "cam")  # a run's writer lease: never


def test_a_writer_with_a_stale_token_is_fenced_and_writes_nothing(redis_url):
    client = connect(redis_url)
    writer = StreamWriter(client)
    old = Fences(client, "m1-w0").claim({"cam": ""})["cam"]
    key = frames_key("cam")
    assert writer.write({key: _entries(["5-0"])}, 100, fences={key: old.fence}) == {key: Written(1, 0)}
    new = Fences(client, "m2-w0").claim({"cam": old.value})["cam"]  # m1 was declared dead; m2 took it
    out = writer.write(
        {key: _entries(["6-0", "6-1"]), "other": _entries(["1-0"])}, 100, fences={key: old.fence}
    )
    assert isinstance(out[key], Fenced) and out[key].holder == "m2-w0"
    assert not is_transient(out[key])
    assert [e[0] for e in client.xrange(key)] == [b"5-0"]  # nothing added by the fenced writer
    assert out["other"] == Written(1, 0)  # other streams of the round trip are not affected
    assert writer.write({key: _entries(["6-0"])}, 100, fences={key: new.fence}) == {key: Written(1, 0)}
    client.delete(lease_key("cam"))  # no fence at all is no fence of ours either
    assert isinstance(writer.write({key: _entries(["7-0"])}, 100, fences={key: new.fence})[key], Fenced)


def test_the_outbox_drops_a_fenced_sources_frames_and_tells_the_worker(redis_url):
    client = connect(redis_url)
    fenced: list[tuple[str, str]] = []
    box = Outbox(
        client,
        "m1-w0",
        [],
        {},
        maxlen=100,
        stopping=lambda: False,
        drain_s=1.0,
        on_source_failed=lambda *a: pytest.fail(f"not a source failure: {a}"),
        drained=lambda _s: True,
        on_fenced=lambda *a: fenced.append(a),
    )
    claim = Fences(client, "m1-w0").claim({"cam": ""})["cam"]
    box.add_source(SourceSpec(name="cam", url="rtsp://127.0.0.1:1/x", live=True), claim.fence)
    box.add_event("cam", "claimed", {"member": "m1"})
    now = time.time()
    assert len(box.publish([FrameResult("cam", 0, 0.0, now)])) == 1
    client.set(lease_key("cam"), "m2-w0/abc/1")  # taken over while this member was paused
    assert (
        box.publish([FrameResult("cam", 1, 0.04, now + 0.04), FrameResult("cam", 2, 0.08, now + 0.08)]) == []
    )
    assert fenced == [("cam", "m2-w0")] and box.dropped["cam", "fenced"] == 2 and not box.failed
    assert box.publish([FrameResult("cam", 3, 0.12, now + 0.12)]) == []  # forgotten: dropped, never sent
    assert box.dropped["cam", "fenced"] == 3 and client.xlen(frames_key("cam")) == 1
    box.remove_source("cam", then=("lost", {"member": "m1"}))  # what the claim loop does next
    box.flush_events()
    written = [{k.decode(): v.decode() for k, v in f.items()} for _id, f in client.xrange(events_key("cam"))]
    assert [e["kind"] for e in written] == ["claimed", "lost"]
    for entry in written:
        validate_event(entry)


def test_the_event_schema_names_every_kind():
    assert event_entry_schema()["properties"]["kind"]["enum"] == list(EVENT_KINDS)


class FakeWorker:
    """What the claim loop uses of a `Worker`, recording what it is asked to do (no models, no cameras)."""

    worker_id = "m1-w0"

    def __init__(self) -> None:
        self.running: dict[str, tuple[str, str]] = {}  # camera -> fence
        self.calls: list[tuple] = []
        self.published_by_source: Counter[str] = Counter()
        self.last_frame_ts: dict[str, float] = {}
        self.last_frame_mono: dict[str, float] = {}
        self.outbox = self  # `add_event` and `flush_events` of the outbox, recorded too
        self._fenced: list[tuple[str, str]] = []

    def add_source(self, spec, fence=None, first=None) -> None:
        self.running[spec.name] = fence
        self.calls.append(("add", spec.name, first[0]))

    def remove_source(self, name, *, drain, then=None, timeout_s=5.0) -> int:
        del self.running[name]
        self.calls.append(("remove", name, drain, then[0]))
        return 0

    def add_event(self, name, kind, detail=None) -> None:
        self.calls.append(("event", name, kind))

    def flush_events(self) -> None:
        pass

    def fenced(self) -> list:
        out, self._fenced = self._fenced, []
        return out

    def fence_lost(self, name: str, holder: str) -> None:
        self._fenced.append((name, holder))

    def reading(self) -> WorkerReading:
        return WorkerReading()

    @property
    def source_names(self) -> list[str]:
        return list(self.running)


def _member(url: str, **fleet) -> tuple[Member, FakeWorker]:
    worker = FakeWorker()
    cfg = load_config(None, {"fleet": {"enabled": True, "member": "m1", **fleet}}).fleet
    return Member(worker, cfg, url), worker


def _add(client, *names: str) -> None:
    for name in names:
        add_camera(client, check_camera(name, "rtsp://127.0.0.1:1/x"))


def test_claim_loop_claims_its_cameras_follows_changes_and_notices_a_rival(redis_url):
    client = connect(redis_url)
    _add(client, "a", "b", "c")
    member, worker = _member(redis_url, max_sources=2, lease_ttl_s=3, claim_every_s=0.1)
    member.start()  # its first beat: alone in the fleet, its share is its capacity
    member._closed.set()  # rounds are run by hand here
    member.round()
    assert len(worker.running) == 2 and all(c[2] == "claimed" for c in worker.calls)
    for name, fence in worker.running.items():
        assert fence == Fence(lease_key(name), client.get(lease_key(name)).decode())
    assert client.zscore(FLEET_MEMBERS, "m1") is not None
    first, second = sorted(worker.running)
    remove_camera(client, first)
    member.round()  # released (drained), and the third camera claimed in its place
    assert ("remove", first, True, "released") in worker.calls and not client.exists(lease_key(first))
    assert set(worker.running) == {"a", "b", "c"} - {first}
    add_camera(client, check_camera(second, "rtsp://127.0.0.1:2/changed"))
    member.round()  # a changed URL: released and claimed again
    assert ("remove", second, True, "released") in worker.calls and second in worker.running
    # A live member (with no room, so the assignment stays) overwrote it while this one was paused.
    FleetView(client, "m2", 3).beat({"member": "m2", "worker": "m2-w0", "capacity": 0, "ttl_ms": 3000})
    client.set(lease_key(second), "m2-w0/x/1")
    worker.fence_lost(second, "m2-w0")  # what the outbox reports at the next write
    member.round()  # lost, and not taken back from a live member
    assert ("remove", second, False, "lost") in worker.calls and second not in worker.running
    assert lease_holder(client, second) == "m2-w0"
    member.close()  # `released` for what it still holds, the fences deleted, the member gone
    assert not [n for n in "abc" if lease_holder(client, n) == "m1-w0"]
    assert client.zscore(FLEET_MEMBERS, "m1") is None and not client.exists(member_stats_key("m1"))


def test_a_steady_round_is_one_small_read(redis_url):
    """The control plane's promise (issue 27): once settled, a round reads the versions and nothing else."""
    client = connect(redis_url)
    _add(client, *[f"cam{i}" for i in range(40)])
    member, worker = _member(redis_url, max_sources=40, lease_ttl_s=3, claim_every_s=0.1)
    member.start()
    member._closed.set()
    member.round()
    assert len(worker.running) == 40
    member.round()  # settled
    calls = []
    member.client.execute_command = lambda *a, **kw: (
        calls.append(a[0]) or redis.Redis.execute_command(member.client, *a, **kw)
    )
    member.round()
    assert calls == ["HMGET"]
    member.close()


def test_a_member_declared_dead_gives_its_cameras_up(redis_url):
    client = connect(redis_url)
    _add(client, "a", "b")
    member, worker = _member(redis_url, max_sources=2, lease_ttl_s=3, claim_every_s=0.1)
    member.start()
    member._closed.set()
    member.round()
    assert len(worker.running) == 2
    client.zrem(FLEET_MEMBERS, "m1")  # what another member's beat does to one silent for a TTL
    member.beat()  # its next beat: it finds itself reaped
    member.round()  # it rejoins: its cameras are lost (others may run them), then claimed again
    lost = [c for c in worker.calls if c[0] == "remove"]
    assert sorted(c[1] for c in lost) == ["a", "b"] and all(c[2:] == (False, "lost") for c in lost)
    assert len(worker.running) == 2  # its own fences, from before: taken again
    member.close()


def test_a_member_cut_off_from_redis_stops_its_cameras_once_others_may_run_them(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    try:
        client = server.client()
        _add(client, "a", "b")
        member, worker = _member(server.url, max_sources=2, lease_ttl_s=1.5, claim_every_s=0.1)
        member.start()
        assert wait_for(lambda: len(worker.running) == 2, timeout=10)
        server.pause()
        paused = time.time()
        stopped = wait_for(lambda: not worker.running, timeout=10)
        assert stopped is not None and stopped - paused < 1.5 + 1.0
        assert sorted(c[1] for c in worker.calls if c[0] == "remove") == ["a", "b"]
        assert all(c[2:] == (False, "lost") for c in worker.calls if c[0] == "remove")
        server.resume()  # it keeps trying, and claims them again once Redis answers
        assert wait_for(lambda: len(worker.running) == 2, timeout=10)
        member.close()
    finally:
        server.stop()


def test_fleet_config_rules():
    with pytest.raises(ConfigError, match="a fleet member runs one worker; start more members"):
        load_config(None, {"fleet": {"enabled": True}, "workers": {"count": 2}})
    with pytest.raises(ConfigError, match="fleet.member"):
        load_config(None, {"fleet": {"member": "a:b"}})
    with pytest.raises(ConfigError, match="fleet.claim_every_s"):
        load_config(None, {"fleet": {"lease_ttl_s": 3, "claim_every_s": 1}})
    cfg = load_config(None, {"fleet": {"enabled": True, "max_sources": "4"}})
    assert cfg.fleet.max_sources == 4 and not cfg.sources  # no static source needed
    assert load_config(None, {}).fleet.max_sources == "auto"


@pytest.mark.rtsp
def test_two_members_split_cameras_and_follow_adds_and_removals(redis_url, rtsp_server, tmp_path):
    fleet = Fleet(redis_url, rtsp_server.url, tmp_path, ttl_s=3.0, max_sources=2)
    try:
        fleet.add_cameras("cam0", "cam1", "cam2", "cam3")
        fleet.start("m1", "m2")
        fleet.wait_settled({"m1": 2, "m2": 2})
        owner = {c: w for w, cams in fleet.held().items() for c in cams}

        removed_at = time.time()
        remove_camera(fleet.client, "cam0")
        stopped = wait_for(lambda: lease_holder(fleet.client, "cam0") == "", timeout=10)
        assert stopped is not None and stopped - removed_at < 2.0, fleet.logs()
        released = events(fleet.client, "cam0", ("released",))
        assert released and released[-1]["worker"] == owner["cam0"]
        time.sleep(0.5)
        assert not publishers_since(fleet.client, "cam0", stopped), "frames captured after the release"

        added_at = time.time()
        add_camera(fleet.client, check_camera("cam4", rtsp_server.url))
        fleet.cameras.append("cam4")
        claimed = wait_for(lambda: lease_holder(fleet.client, "cam4") != "", timeout=10)
        assert claimed is not None and claimed - added_at < 2.0, fleet.logs()
        # the member the assignment names took it (not necessarily the one with room: the assignment is
        # recomputed from the camera names, and may move one more camera to make room)
        assert lease_holder(fleet.client, "cam4") in {"m1-w0", "m2-w0"}
        assert wait_for(lambda: publishers_since(fleet.client, "cam4", added_at), timeout=30), fleet.logs()
        assert fleet.overlap_frames() == 0
        for _id, fields in fleet.client.xrange(events_key("cam0")):
            validate_event({k.decode(): v.decode() for k, v in fields.items()})

        stopping = time.time()
        for member in fleet.members.values():
            member.terminate()
        for member in fleet.members.values():
            assert member.reap(30) == 0, fleet.logs()
        assert time.time() - stopping < 10
        assert not [c for c in fleet.cameras if fleet.client.exists(lease_key(c))]  # SIGTERM released them
    except redis.RedisError:
        raise AssertionError(fleet.logs()) from None
    finally:
        fleet.close()


def test_the_view_follows_camera_changes_in_order_and_reloads_after_a_gap(redis_url):
    client = connect(redis_url)
    _add(client, "a", "b")
    view = FleetView(client, "m1", 3)
    assert view.refresh().cameras == {"a", "b"} and view.cameras == {"a", "b"}
    remove_camera(client, "a")
    _add(client, "a")  # removed, then added again: desired
    remove_camera(client, "b")
    changes = view.refresh()
    assert view.cameras == {"a"} and "a" in changes.cameras and changes.removed == {"a", "b"}
    assert not view.refresh().any  # nothing changed: one HMGET, nothing else read
    _add(client, "c")
    client.xtrim(FLEET_CHANGES, maxlen=0)  # the log no longer holds what this member has not seen
    _add(client, "d")
    view.refresh()
    assert view.cameras == {"a", "c", "d"}


def test_a_camera_a_member_cannot_resolve_goes_to_one_that_can(redis_url, monkeypatch):
    """A `${VAR}` one member lacks: it says so in its facts, and the assignment gives the camera to another."""
    client = connect(redis_url)
    add_camera(client, check_camera("x", "rtsp://viewer:${CAM_X_PW}@10.0.0.9/s"))
    first = assign(["x"], {"m1": 4, "m2": 4})["x"]  # the member x goes to while both can run it
    second = "m2" if first == "m1" else "m1"
    members = {}
    for name in (first, second):
        worker = FakeWorker()
        worker.worker_id = f"{name}-w0"
        cfg = load_config(
            None, {"fleet": {"enabled": True, "member": name, "max_sources": 4, "lease_ttl_s": 3}}
        ).fleet
        members[name] = Member(worker, cfg, redis_url)
        members[name].announce()
    monkeypatch.delenv("CAM_X_PW", raising=False)
    members[first].round()  # it cannot resolve x: skipped, and its facts say so
    assert not members[first].worker.running
    assert json.loads(client.hget(FLEET_INFO, first))["unable"] == ["x"]
    monkeypatch.setenv("CAM_X_PW", "pw")  # (one process: the second member has the variable)
    members[second].round()
    assert list(members[second].worker.running) == ["x"]
    members[first].round()
    assert not members[first].worker.running and lease_holder(client, "x") == f"{second}-w0"
    for member in members.values():
        member.close()
