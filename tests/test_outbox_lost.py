"""Redis losing acknowledged entries (a restart without persistence; the same reply a promoted replica
gives, tests/cluster/test_failover.py): the outbox sends what it still holds again, same ids, and says what it
no longer holds (`error` event `redis_data_lost`, `data_lost`) instead of leaving a silent gap. Each test runs
twice: with a worker's client, whose `ServerWatch` sees the restart (a new run_id) and has the tails checked
then, and with a plain client, whose every write checks its stream's tail."""

from __future__ import annotations

import socket
import time

import pytest

from affectstream.pipeline.sources import SourceSpec
from affectstream.pipeline.streams.connection import EmbeddedRedis, connect
from affectstream.pipeline.streams.keys import events_key, frames_key
from affectstream.pipeline.streams.retained import Retained
from affectstream.pipeline.streams.server_watch import ServerWatch
from affectstream.pipeline.types import FrameResult
from tests.test_outbox import _outbox


def _restart_empty(tmp_path) -> tuple[EmbeddedRedis, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = EmbeddedRedis(tmp_path / "r", port=port, aof=False)
    return server, server.start()


@pytest.fixture(params=["watched", "plain"])
def client_of(request):
    """`client_of(url)` -> (client, watch or None), closed after the test."""
    made = []

    def make(url):
        watch = ServerWatch() if request.param == "watched" else None
        made.append(connect(url, watch=watch))
        return made[-1], watch

    yield make
    for client in made:
        client.close()


def _file_and_camera(client, watch):
    """An outbox writing a file pass (`clip`, base 1000) and a camera (`cam`)."""
    box = _outbox(client, {"clip": 1000}, [], watch)
    box.add_source(SourceSpec(name="clip", url="/media/clip.mp4", live=False))
    box.add_source(SourceSpec(name="cam", url="rtsp://cam/x", live=True))
    return box


def _frames(client, source):
    return [int(f[b"frame"]) for _id, f in client.xrange(frames_key(source))]


def test_a_restart_that_lost_everything_is_filled_again_from_the_outbox(tmp_path, client_of):
    server, url = _restart_empty(tmp_path)
    try:
        client, watch = client_of(url)
        box = _file_and_camera(client, watch)
        now = time.time()
        for i in range(0, 30, 10):
            box.publish(
                [FrameResult(s, j, j / 25, now + j / 25) for s in ("clip", "cam") for j in range(i, i + 10)]
            )
        assert _frames(client, "clip") == list(range(30))
        server.stop()  # no AOF, no RDB: it comes back empty
        server.start()
        out = box.publish([FrameResult(s, 30, 1.2, now + 1.2) for s in ("clip", "cam")])
        assert len(out) == 2
        assert _frames(client, "clip") == list(range(31)) and _frames(client, "cam") == list(range(31))
        assert not box.data_lost and not box.failed
    finally:
        server.stop()


def test_what_the_outbox_no_longer_holds_is_reported(tmp_path, client_of):
    server, url = _restart_empty(tmp_path)
    try:
        client, watch = client_of(url)
        box = _outbox(client, {}, [], watch)
        box._retained = Retained(max_entries=5)  # a short window: older entries are gone from here
        box.add_source(SourceSpec(name="cam", url="rtsp://cam/x", live=True))
        now = time.time()
        box.publish([FrameResult("cam", j, j / 25, now + j / 25) for j in range(20)])
        server.stop()
        server.start()
        box.publish([FrameResult("cam", 20, 0.8, now + 0.8)])
        box.publish([])  # the error event goes with the next round trip
        assert _frames(client, "cam") == list(range(15, 21))  # the 5 still held, then the new one
        assert box.data_lost["cam"] == 1
        errors = [f for _id, f in client.xrange(events_key("cam")) if f[b"kind"] == b"error"]
        assert errors and errors[0][b"reason"] == b"redis_data_lost"
    finally:
        server.stop()


def test_a_finished_pass_lost_with_the_server_is_sent_again(tmp_path, client_of):
    """A camera's next write finds the server lost data: every stream this worker wrote is checked, and the
    finished file's frames and events, which nothing writes any more, come back too."""
    server, url = _restart_empty(tmp_path)
    try:
        client, watch = client_of(url)
        box = _file_and_camera(client, watch)
        now = time.time()
        box.publish([FrameResult("clip", j, j / 25, now) for j in range(50)])
        box.add_event("clip", "eof", {"frames": 50})
        box.publish([FrameResult("cam", 0, 0.0, now)])
        assert [f[b"kind"] for _id, f in client.xrange(events_key("clip"))] == [b"eof"]
        server.stop()
        server.start()
        box.publish([FrameResult("cam", 1, 0.04, now + 0.04)])
        assert _frames(client, "clip") == list(range(50)) and _frames(client, "cam") == [0, 1]
        assert [f[b"kind"] for _id, f in client.xrange(events_key("clip"))] == [b"eof"]
        assert not box.data_lost
    finally:
        server.stop()
