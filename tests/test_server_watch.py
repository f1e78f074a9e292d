"""A worker's client knows which server its connections reach (`ServerWatch`, a run_id per address), so the
outbox checks its streams' tails only when that changed, on real redis-servers: no `XINFO STREAM` while
the server stays the same (reconnects included), a check after a restart whichever thread met it first,
and a check on every write when the server will not say its run_id (an ACL without INFO)."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from affectstream.pipeline.sources import SourceSpec
from affectstream.pipeline.streams.connection import EmbeddedRedis, connect
from affectstream.pipeline.streams.keys import frames_key
from affectstream.pipeline.streams.server_watch import ServerChanged, ServerWatch
from affectstream.pipeline.types import FrameResult
from tests.test_outbox import _outbox


def _xinfo_calls(client) -> int:
    """XINFO calls so far (Redis 7 counts `xinfo|stream`, Redis 6 `xinfo`)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.split("|")[0] == "cmdstat_xinfo")


def _camera(client, watch):
    box = _outbox(client, {}, [], watch)
    box.add_source(SourceSpec(name="cam", url="rtsp://cam/x", live=True))
    return box


def _publish(box, frames, now):
    return box.publish([FrameResult("cam", j, j / 25, now + j / 25) for j in frames])


@pytest.fixture
def restartable(tmp_path):
    """A redis-server without persistence on a fixed port: a restart comes back empty with a new run_id."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = EmbeddedRedis(tmp_path / "r", port=port, aof=False)
    server.start()
    yield server
    server.stop()


def test_same_server_no_tail_checks_even_across_reconnects(redis_url):
    watch = ServerWatch()
    client, probe = connect(redis_url, watch=watch), connect(redis_url)
    box = _camera(client, watch)
    now = time.time()
    before = _xinfo_calls(probe)
    for j in range(20):
        _publish(box, [j], now)
    probe.client_kill_filter(_type="normal", skipme=True)  # every connection of the writer dropped
    probe.ping()
    for j in range(20, 40):
        _publish(box, [j], now)
    assert _xinfo_calls(probe) == before  # the server is the same one: nothing to check
    assert probe.xlen(frames_key("cam")) == 40 and watch.generation == 0


def test_a_restart_met_by_another_thread_first_is_still_checked(restartable):
    """The heartbeat (or a claim) may reconnect first: its connection does not raise, but the outbox's
    next write checks the tails before anything reaches the new server."""
    watch = ServerWatch()
    client = connect(restartable.url, watch=watch)
    box = _camera(client, watch)
    now = time.time()
    _publish(box, range(10), now)
    restartable.stop()
    restartable.start()
    for _ in range(20):  # redis-py reconnects; a connection outside the outbox's writes never raises
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    assert watch.changed() == 1
    probe = connect(restartable.url)
    assert probe.xlen(frames_key("cam")) == 0
    _publish(box, [10], now)
    frames = [int(f[b"frame"]) for _id, f in probe.xrange(frames_key("cam"))]
    assert frames == list(range(11)) and not box.data_lost and watch.changed() is None


def test_inside_the_writer_a_new_server_raises_before_any_command():
    watch = ServerWatch()
    watch.connected("a:1", "r1")  # the first server
    watch.connected("a:1", "r2")  # a restart seen outside the writer: recorded, no raise
    with watch.guarding(), pytest.raises(ServerChanged):
        watch.connected("a:1", "r2")
    watch.acknowledge(watch.changed())
    with watch.guarding():
        watch.connected("a:1", "r2")  # checked: connections go on


def test_a_server_that_hides_its_run_id_gets_a_tail_check_on_every_write(redis_url):
    admin = connect(redis_url)
    admin.acl_setuser("noinfo", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-info"])
    try:
        url = redis_url.replace("redis://", "redis://noinfo:pw@")
        watch = ServerWatch()
        box = _camera(connect(url, watch=watch), watch)
        now = time.time()
        _publish(box, [0], now)  # the first write has nothing to expect yet
        before = _xinfo_calls(admin)
        for j in range(1, 6):
            _publish(box, [j], now)
        assert watch.blind and _xinfo_calls(admin) - before == 5
    finally:
        admin.acl_deluser("noinfo")
