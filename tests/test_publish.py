"""The idempotent writer on a real Redis: retries with the same ids add nothing, one key's fault stays
with that key, a server that lost acknowledged entries is noticed, errors are classified."""

from __future__ import annotations

import redis

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.entry_ids import ClockIds, PassIds, last_id, parse_id, pass_base_after
from affectstream.pipeline.streams.replies import is_transient
from affectstream.pipeline.streams.writer import RedisLostData, StreamWriter, Written


def entries(ids):
    return [(i, {"frame": i.split("-")[1]}) for i in ids]


def test_a_retry_with_the_same_ids_adds_nothing(redis_url):
    client = connect(redis_url)
    writer = StreamWriter(client)
    batch = {"s1": entries(["5-0", "5-1", "5-2"]), "s2": entries(["7-0"])}
    first = writer.write(batch, 100)
    assert first == {"s1": Written(3, 0), "s2": Written(1, 0)}
    # the server executed the first attempt but the client timed out: the retry sends it all again
    again = writer.write({"s1": entries(["5-0", "5-1", "5-2", "5-3"]), "s2": entries(["7-0"])}, 100)
    assert again == {"s1": Written(1, 3), "s2": Written(0, 1)}
    assert [e[0] for e in client.xrange("s1")] == [b"5-0", b"5-1", b"5-2", b"5-3"]


def test_a_wrongtype_key_fails_alone(redis_url):
    client = connect(redis_url)
    client.set("bad", "x")
    out = StreamWriter(client).write({"bad": entries(["1-0"]), "good": entries(["1-0", "1-1"])}, 100)
    assert isinstance(out["bad"], redis.ResponseError) and "WRONGTYPE" in str(out["bad"])
    assert not is_transient(out["bad"])
    assert out["good"] == Written(2, 0) and client.xlen("good") == 2


def test_lost_entries_are_noticed(redis_url):
    client = connect(redis_url)
    writer = StreamWriter(client)
    writer.write({"s": entries(["9-0", "9-1"])}, 100)
    client.delete("s")  # what a restart without AOF looks like
    out = writer.write({"s": entries(["9-2"])}, 100, expect={"s": "9-1"})
    assert isinstance(out["s"], RedisLostData) and out["s"].last == "0-0"
    assert not client.exists("s")  # nothing written past the gap


def test_oom_under_noeviction_is_transient(redis_url):
    client = connect(redis_url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    try:
        out = StreamWriter(client).write({"s": entries(["1-0"])}, 100)
    finally:
        client.config_set("maxmemory", 0)
    assert is_transient(out["s"]), out["s"]
    assert not client.exists("s")


def test_ids_passes_and_clocks(redis_url):
    client = connect(redis_url)
    assert last_id(client, "none") == (0, 0)
    client.xadd("s", {"a": 1}, id="100-4")
    base = pass_base_after(last_id(client, "s"))
    assert base > 100
    ids = PassIds(base)
    assert (
        ids(7, 0.0) == f"{base}-7"
        and ids.last_frame(parse_id(f"{base}-7")) == 7
        and ids.last_frame((100, 4)) == -1
    )
    clock = ClockIds(after=(2000, 3))
    assert [clock(0, t) for t in (1.0, 2.0, 2.0005, 3.0)] == ["2000-4", "2000-5", "2000-6", "3000-0"]


def test_entries_another_writer_went_past_are_rejected_not_counted(redis_url):
    """Two passes of one stream interleaving: the older pass's later entries are below the stream's last id
    and absent. They are `rejected` (lost), never `skipped` (already there), so nobody counts them."""
    client = connect(redis_url)
    writer = StreamWriter(client)
    assert writer.write({"s": entries(["100-0", "100-1"])}, 1000)["s"] == Written(2, 0)
    assert writer.write({"s": entries(["200-0"])}, 1000)["s"] == Written(1, 0)  # the newer pass
    out = writer.write({"s": entries(["100-1", "100-2", "100-3"])}, 1000)["s"]  # the older pass goes on
    assert out == Written(0, 1, ("100-2", "100-3")), out
    assert client.xlen("s") == 3
