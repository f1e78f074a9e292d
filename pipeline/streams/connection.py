"""Redis clients from one URL, and "the configured Redis, else the embedded one": the one module that
connects (URL forms and their parsing: `pipeline.streams.urls`; the embedded server: `pipeline.streams.embedded`).

A single server (`redis://`, `rediss://`, `unix://`) gets a `redis.Redis`; a cluster (`redis+cluster://`) a
`redis.RedisCluster`, which follows MOVED/ASK and re-reads the slot map after a failover; Sentinel
(`redis+sentinel://`) a `redis.Redis` whose pool asks the sentinels for the master on every new
connection and drops connections to a demoted one (READONLY), so a client follows a promotion by itself.
Code that must treat a cluster differently (one slot per multi-key command) asks `is_cluster` and groups
keys with `by_slot`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import RedisClusterException
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from affectstream.pipeline.errors import RedisUnavailable
from affectstream.pipeline.masking import mask_text, mask_url
from affectstream.pipeline.streams.embedded import EmbeddedRedis
from affectstream.pipeline.streams.replies import is_transient
from affectstream.pipeline.streams.server_watch import ServerWatch, watched
from affectstream.pipeline.streams.urls import CLUSTER, SENTINEL, RedisTarget, parse_redis_url
from affectstream.settings.env import REDIS_URL as REDIS_URL_ENV

log = logging.getLogger(__name__)


def check_redis_url(url: str) -> None:
    """Raise a one-line, masked `ConfigError` when `url` is not a Redis URL this project can use."""
    parse_redis_url(url)


def _connection_class(target: RedisTarget, watch: ServerWatch | None) -> dict:
    """`connection_class=` for the client's pool: redis-py's own for the URL's kind, reporting each new
    connection's server to `watch` when there is one."""
    if watch is None:
        return {}
    tls = bool(target.options.get("ssl")) or target.url.startswith("rediss")
    if target.kind == SENTINEL:
        base: type = SentinelManagedSSLConnection if tls else SentinelManagedConnection
    elif target.url.startswith("unix:"):
        base = UnixDomainSocketConnection
    else:
        base = SSLConnection if tls else Connection
    return {"connection_class": watched(base, watch)}


def _client(target: RedisTarget, timeout_s: float, watch: ServerWatch | None) -> redis.Redis:
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    kind = _connection_class(target, watch)
    if target.kind == CLUSTER:
        nodes = [ClusterNode(host, port) for host, port in target.nodes]
        return RedisCluster(startup_nodes=nodes, **timeouts, **target.options, **kind)
    if target.kind == SENTINEL:
        sentinels = Sentinel(
            list(target.nodes), sentinel_kwargs={**timeouts, **target.sentinel_options}, **timeouts
        )
        return sentinels.master_for(
            target.service, db=target.db, health_check_interval=30, **timeouts, **target.options, **kind
        )
    return redis.Redis.from_url(target.url, health_check_interval=30, **timeouts, **kind)


def connect(url: str, *, timeout_s: float = 5.0, watch: ServerWatch | None = None) -> redis.Redis:
    """Open a client for `url` and check the server answers; errors keep their reason (TLS, auth,
    timeout, no master known to the sentinels) and never show the password. With `watch`, every new
    connection of the client reports its server there (`pipeline.streams.server_watch`: a writer's client)."""
    target = parse_redis_url(url)
    try:
        client = _client(target, timeout_s, watch)
    except (redis.RedisError, RedisClusterException) as exc:  # a cluster client reads the slot map at once
        reason = mask_text(f"{type(exc).__name__}: {exc}")
        raise RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {reason}") from None
    try:
        client.ping()
    except redis.ResponseError as exc:
        if not is_transient(exc):
            client.close()
            raise RedisUnavailable(f"Redis at {mask_url(url)} refused PING: {mask_text(str(exc))}") from None
        # Reachable, but refusing writes for now (MISCONF also refuses PING): the writes will be retried.
        log.warning("Redis at %s refuses writes for now: %s", mask_url(url), mask_text(str(exc)))
    except (redis.RedisError, RedisClusterException) as exc:
        client.close()
        reason = mask_text(f"{type(exc).__name__}: {exc}")
        raise RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {reason}") from None
    return client


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client (and its pipelines): multi-key commands must stay in one slot."""
    return isinstance(client, RedisCluster)


def by_slot(client: redis.Redis, keys: Iterable[str]) -> list[list[str]]:
    """`keys` grouped so that each group may go into one multi-key command: all of them on a single server
    (or through Sentinel), one group per hash slot on a cluster. Order is kept within each group."""
    keys = list(keys)
    if not is_cluster(client):
        return [keys] if keys else []
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(client.keyslot(key), []).append(key)
    return list(groups.values())


# Policies under which Redis deletes keys without a TTL when memory is full: results would vanish unsaid.
EVICTING_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")


def maxmemory_policy(client: redis.Redis) -> str:
    """The server's `maxmemory-policy` (from INFO, which managed Redis services allow when CONFIG is not);
    on a cluster the first evicting one among the masters, else theirs."""
    if not is_cluster(client):
        return str(client.info("memory").get("maxmemory_policy", "noeviction"))
    replies = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
    policies = [str(info.get("maxmemory_policy", "noeviction")) for info in replies.values()]
    return next((p for p in policies if p in EVICTING_POLICIES), policies[0] if policies else "noeviction")


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
