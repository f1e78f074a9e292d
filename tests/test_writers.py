"""Writer leases (pipeline/streams/writer_leases.py) against a real redis-server: one writer per stream, taken over from
a dead run of this host, kept through a Redis stall that outlives its TTL, and the passes they resume."""

from __future__ import annotations

import subprocess
import time

import pytest

from affectstream.pipeline.sources import SourceSpec
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key, host_id, lease_key, pass_key
from affectstream.pipeline.streams.writer import Fenced, StreamWriter, Written
from affectstream.pipeline.streams.writer_leases import WriterBusy, WriterLeases, finish_pass


def _file(name: str, url: str = "/media/clip.mp4") -> SourceSpec:
    return SourceSpec(name=name, url=url, live=False)


def _dead_run() -> str:
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{host_id()}-{child.pid}"  # a pid of this host that is gone


def test_one_writer_per_source_all_or_none(redis_url):
    client = connect(redis_url)
    first = WriterLeases(client, "otherhost-1")
    first.acquire([_file("b")])
    second = WriterLeases(client, "thishost-2")
    with pytest.raises(WriterBusy, match=r"'b' is being written by run otherhost-1.*another name"):
        second.acquire([_file("a"), _file("b")])
    assert not client.exists(lease_key("a")), "a refused run kept the leases it had taken"
    first.release()
    assert not client.exists(lease_key("b"))
    assert set(second.acquire([_file("a"), _file("b")])) == {"a", "b"}
    second.release()


def test_a_dead_run_of_this_host_is_taken_over_with_its_pass(redis_url):
    client = connect(redis_url)
    dead = WriterLeases(client, _dead_run())
    base = dead.acquire([_file("clip")])["clip"]
    client.xadd(frames_key("clip"), {"frame": "0"}, id=f"{base}-0")
    dead._stop.set()  # it died: nobody renews or releases its lease
    taker = WriterLeases(client, "x-1")
    assert taker.acquire([_file("clip")]) == {"clip": base}  # the same pass, resumed
    assert client.get(lease_key("clip")).decode().startswith("x-1/")
    taker.release()
    other_file = WriterLeases(client, "x-2")
    assert other_file.acquire([_file("clip", "/media/another.mp4")])["clip"] > base  # not another file's pass
    other_file.release()


def test_a_finished_pass_is_not_resumed(redis_url):
    client = connect(redis_url)
    run = WriterLeases(client, "x-1")
    base = run.acquire([_file("clip")])["clip"]
    client.xadd(frames_key("clip"), {"frame": "0"}, id=f"{base}-0")
    finish_pass(client, "clip", base)
    run.release()
    assert not client.exists(pass_key("clip"))
    assert WriterLeases(client, "x-2").acquire([_file("clip")])["clip"] > base


def test_a_lease_that_expired_in_a_stall_is_taken_again_by_the_write_unless_another_holds_it(redis_url):
    client = connect(redis_url)
    run = WriterLeases(client, "x-1", ttl_s=0.2)
    run.acquire([_file("clip")])
    run._stop.set()
    time.sleep(0.3)  # Redis stalled longer than the TTL: the lease is gone, nobody took it
    assert not client.exists(lease_key("clip"))
    writer = StreamWriter(client)
    fence = run.fence("clip")
    assert writer.write(
        {frames_key("clip"): [("5-0", {"a": "1"})]}, 100, fences={frames_key("clip"): fence}
    ) == {frames_key("clip"): Written(1, 0)}
    assert client.get(lease_key("clip")).decode() == fence.token
    client.set(lease_key("clip"), "x-9/other")  # now another run holds it: fenced, nothing written
    out = writer.write({frames_key("clip"): [("6-0", {"a": "1"})]}, 100, fences={frames_key("clip"): fence})
    assert isinstance(out[frames_key("clip")], Fenced) and client.xlen(frames_key("clip")) == 1


def test_a_lease_its_holder_stopped_renewing_is_waited_out_then_taken(redis_url):
    """Another host's run died: its lease (PTTL far below a renewed one's) is waited out, not refused."""
    client = connect(redis_url)
    client.set(lease_key("clip"), "otherhost-7/dead", px=1500)  # last renewed 28.5 s ago, by Redis's count
    started = time.monotonic()
    run = WriterLeases(client, "x-1")
    run.acquire([_file("clip")])
    assert 1.0 < time.monotonic() - started < 5.0
    assert client.get(lease_key("clip")).decode().startswith("x-1/")
    run.release()
    client.set(lease_key("clip"), "otherhost-8/alive", px=29_000)  # renewed a second ago: refused at once
    with pytest.raises(WriterBusy, match="otherhost-8"):
        WriterLeases(client, "x-2").acquire([_file("clip")])
