"""Cluster and Sentinel URLs: parsed in one place, errors masked, and real clients for each form."""

from __future__ import annotations

import pytest

from affectstream.pipeline.errors import ConfigError, RedisUnavailable
from affectstream.pipeline.masking import mask_text, mask_url
from affectstream.pipeline.streams.connection import by_slot, connect, is_cluster
from affectstream.pipeline.streams.urls import CLUSTER, SENTINEL, parse_redis_url


def test_cluster_url_forms():
    t = parse_redis_url("redis+cluster://u:pw-1234@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert t.kind == CLUSTER and t.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert t.options["username"] == "u" and t.options["password"] == "pw-1234" and "ssl" not in t.options
    tls = parse_redis_url("rediss+cluster://h:7000/0?ssl_cert_reqs=none")
    assert tls.options["ssl"] is True and tls.options["ssl_cert_reqs"] == "none"


def test_cluster_db_other_than_zero_is_a_config_error():
    with pytest.raises(ConfigError, match="only database 0") as err:
        parse_redis_url("redis+cluster://:hunter22@h:7000/3")
    assert "hunter22" not in str(err.value)


def test_sentinel_url_forms():
    t = parse_redis_url("redis+sentinel://app:p%40ss-word@s1:26379,s2/mymaster/2?sentinel_password=sek-9999")
    assert t.kind == SENTINEL and t.nodes == (("s1", 26379), ("s2", 26379))
    assert (t.service, t.db) == ("mymaster", 2)
    assert t.options["password"] == "p@ss-word" and t.sentinel_options == {"password": "sek-9999"}
    assert "sentinel_password" not in t.options
    tls = parse_redis_url("rediss+sentinel://s1/svc?ssl_ca_certs=/ca.pem")
    assert tls.options["ssl"] is True and tls.sentinel_options["ssl_ca_certs"] == "/ca.pem"


@pytest.mark.parametrize(
    "url, why",
    [
        ("redis+sentinel://:pw-secret@s1:26379", "name the master"),
        ("redis+sentinel://:pw-secret@s1:26379/svc/x", "must be a number"),
        ("redis+cluster://:pw-secret@h:99999", "out of range"),
        ("redis+cluster://:pw-secret@h:1,,h:2", "no host"),
        ("redis+cluster://:pw-secret@h:7000/db", "database 0"),
        ("redis+whatever://:pw-secret@h", "scheme must be one of"),
        ("redis+cluster://:pw-secret@h:7000?ssl_ca_certs=/ca.pem", "need a TLS scheme"),
        ("redis://:pw-secret@h:6379/0?ssl_cert_reqs=none", "need a TLS scheme"),
    ],
)
def test_malformed_urls_name_the_problem_masked(url, why):
    with pytest.raises(ConfigError, match=why) as err:
        parse_redis_url(url)
    assert "pw-secret" not in str(err.value)


def test_passwords_masked_in_multi_host_urls():
    url = "rediss+sentinel://u:zz-top-9@s1:26379,s2:26380/svc?sentinel_password=qq-bottom-8"
    assert mask_url(url) == "rediss+sentinel://u:***@s1:26379,s2:26380/svc?sentinel_password=***"
    parse_redis_url(url)  # registers both secrets: masked wherever redis-py quotes them alone
    assert "zz-top-9" not in mask_text("AUTH zz-top-9 failed") and "qq-bottom-8" not in mask_text(
        "qq-bottom-8"
    )


def test_connect_cluster(cluster_url):
    client = connect(cluster_url)
    assert is_cluster(client) and client.ping()
    keys = [f"affect:{{cam-{i}}}:frames" for i in range(20)]
    groups = by_slot(client, keys)
    assert sorted(k for g in groups for k in g) == sorted(keys) and len(groups) > 1
    assert all(len({client.keyslot(k) for k in g}) == 1 for g in groups)


def test_connect_sentinel_with_passwords(sentinel_set, sentinel_url):
    client = connect(sentinel_url)
    assert not is_cluster(client) and client.ping()
    client.set("k", "v")
    assert sentinel_set.client(sentinel_set.master).get("k") == b"v"
    assert connect(sentinel_set.url(db=3)).connection_pool.connection_kwargs["db"] == 3


def test_unreachable_and_refused_are_masked(sentinel_set, cluster_set):
    wrong = sentinel_set.url().replace("sent-pw-2", "wrong-sentinel-pw")
    with pytest.raises(RedisUnavailable) as err:
        connect(wrong, timeout_s=1)
    assert "wrong-sentinel-pw" not in str(err.value) and "data-pw-1" not in str(err.value)
    with pytest.raises(RedisUnavailable, match="cannot reach"):
        connect(sentinel_set.url().replace("/affect/", "/nosuchservice/"), timeout_s=1)
    with pytest.raises(RedisUnavailable) as err:
        connect("redis+cluster://:not-this-pw@127.0.0.1:1", timeout_s=0.5)
    assert "not-this-pw" not in str(err.value)


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_tls_variants_on_real_servers(kind, fresh_sets):
    """rediss+cluster:// and rediss+sentinel:// against servers that speak TLS only (a test CA)."""
    from affectstream.pipeline.streams.writer import ResultPublisher
    from tests.consumer.test_consume import make_result

    servers = fresh_sets(kind, tls=True, password="tls-data-pw")
    url = servers.url if kind == "cluster" else servers.url()
    assert url.startswith(f"rediss+{kind}://") and "ssl_ca_certs=" in url
    client = connect(url)
    sources = [f"cam-{i}" for i in range(4)]
    assert (
        ResultPublisher(client, 100).publish([make_result(s, 0) for s in sources], ids=["1-0"] * 4)
        == [True] * 4
    )
    assert all(client.xlen(f"affect:{{{s}}}:frames") == 1 for s in sources)
    with pytest.raises(RedisUnavailable):  # the same servers refuse a client without TLS
        connect(url.replace("rediss+", "redis+").split("?")[0], timeout_s=1)
