"""`redis.min_replicas_acked` (WAIT) and `redis.retention_s` (trimming by age, Redis's clock) on real servers."""

from __future__ import annotations

import time

import pytest

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.replies import is_transient
from affectstream.pipeline.streams.writer import NotReplicated, StreamWriter, Written

KEY = "affect:{cam}:frames"


def test_a_write_counts_once_a_replica_has_it(sentinel_set, sentinel_url):
    client = connect(sentinel_url)
    writer = StreamWriter(client, min_replicas_acked=1, wait_ms=300)
    assert writer.write({KEY: [("1-0", {"a": "1"})]}, 100)[KEY] == Written(1, 0)
    sentinel_set.pause(sentinel_set.replica)
    try:
        late = writer.write({KEY: [("2-0", {"a": "2"})]}, 100)[KEY]
        assert isinstance(late, NotReplicated) and is_transient(late)
    finally:
        sentinel_set.resume(sentinel_set.replica)
    # the retry finds the entry on the master (present) and the replica confirms it now
    deadline = time.monotonic() + 10
    while True:
        again = writer.write({KEY: [("2-0", {"a": "2"})]}, 100)[KEY]
        if isinstance(again, Written) or time.monotonic() > deadline:
            break
    assert again == Written(0, 1)
    assert sentinel_set.client(sentinel_set.replica).xlen(KEY) == 2


def test_min_replicas_acked_is_a_config_error_on_a_cluster(cluster_url):
    with pytest.raises(ConfigError, match="not available on a Redis Cluster"):
        StreamWriter(connect(cluster_url), min_replicas_acked=1)


def test_retention_trims_by_age_on_redis_clock(ha_url):
    client = connect(ha_url)
    now_ms = int(client.time()[0]) * 1000
    old = [(f"{now_ms - 60_000}-{i}", {"f": str(i)}) for i in range(500)]  # a minute old by Redis's clock
    StreamWriter(client).write({KEY: old}, 10_000)
    assert client.xlen(KEY) == 500
    StreamWriter(client, retention_s=30).write({KEY: [(f"{now_ms}-0", {"f": "new"})]}, 10_000)
    left = client.xrange(KEY)
    assert left[-1][0] == f"{now_ms}-0".encode()
    assert len(left) < 100  # `MINID ~` keeps at most the tail of one macro node of old entries


def test_scripts_come_back_after_a_flush(ha_url):
    """A promoted replica, a restarted node, `SCRIPT FLUSH`: the publish script is loaded again (NOSCRIPT)."""
    from affectstream.pipeline.streams.writer import ResultPublisher
    from tests.consumer.test_consume import make_result

    client = connect(ha_url)
    publisher = ResultPublisher(client, maxlen=100)
    sources = [f"cam-{i}" for i in range(6)]
    assert publisher.publish([make_result(s, 0) for s in sources], ids=["1-0"] * 6) == [True] * 6
    client.script_flush()  # every master on a cluster
    assert publisher.publish([make_result(s, 1) for s in sources], ids=["2-0"] * 6) == [True] * 6
    assert all(client.xlen(f"affect:{{{s}}}:frames") == 2 for s in sources)


def test_run_with_wait_and_retention_through_sentinel(sentinel_set, sentinel_url, cluster_url):
    from tests.cluster.test_verbs import cli
    from tests.conftest import need_shared

    video = need_shared("media", "videos", "single_face.mp4")
    durable = ("--set", "redis.min_replicas_acked=1", "--set", "redis.retention_s=3600")
    code, out = cli("run", "--source", f"clip={video}", *durable, url=sentinel_url)
    assert code == 0, out[-3000:]
    replica = sentinel_set.client(sentinel_set.replica)
    assert [int(f[b"frame"]) for _id, f in replica.xrange("affect:{clip}:frames")] == list(range(72))
    code, out = cli(
        "run", "--source", f"clip={video}", "--set", "redis.min_replicas_acked=1", url=cluster_url
    )
    assert code == 2 and "not available on a Redis Cluster" in out, out[-2000:]
