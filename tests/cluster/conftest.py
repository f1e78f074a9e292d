"""Fixtures of the cluster and Sentinel tests: one 6-node cluster and one Sentinel set per session (flushed
per test), and fresh ones for the tests that kill a master (`fresh_cluster`, `fresh_sentinel`)."""

from __future__ import annotations

import pytest

from tests.cluster.servers import ClusterSet, SentinelSet


@pytest.fixture(scope="session")
def cluster_set(tmp_path_factory):
    servers = ClusterSet(tmp_path_factory.mktemp("cluster"))
    try:
        yield servers.start_all()
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def sentinel_set(tmp_path_factory):
    servers = SentinelSet(
        tmp_path_factory.mktemp("sentinel"), password="data-pw-1", sentinel_password="sent-pw-2"
    )
    try:
        yield servers.start_all()
    finally:
        servers.stop()


@pytest.fixture
def cluster_url(cluster_set):
    """The session cluster's URL, every master flushed before the test."""
    client = cluster_set.cluster_client()
    client.flushall()
    client.close()
    return cluster_set.url


@pytest.fixture
def sentinel_url(sentinel_set):
    """The session Sentinel set's URL (database 0), its master flushed before the test."""
    sentinel_set.client(sentinel_set.named_master()).flushall()
    return sentinel_set.url()


@pytest.fixture(params=["cluster", "sentinel"])
def ha_url(request):
    """Each test using it runs once on the cluster and once through Sentinel."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def fresh_sets(tmp_path):
    """`fresh_sets(kind, **kw)` starts a private cluster or Sentinel set that a test may kill nodes of."""
    made = []

    def make(kind: str, **kw):
        servers = (ClusterSet if kind == "cluster" else SentinelSet)(tmp_path / f"{kind}{len(made)}", **kw)
        made.append(servers)
        return servers.start_all()

    yield make
    for servers in made:
        servers.stop()
