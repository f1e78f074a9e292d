"""Fixtures of the fault tests: redis-servers that a test may stop, kill and restart, always cleaned up."""

from __future__ import annotations

import pytest

from tests.faults.harness import RedisProcess


@pytest.fixture
def redis_process(tmp_path):
    """`redis_process(aof=True)` starts a private redis-server; all are stopped after the test."""
    made: list[RedisProcess] = []

    def make(aof: bool = True) -> RedisProcess:
        server = RedisProcess(tmp_path / f"redis{len(made)}", aof=aof).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
