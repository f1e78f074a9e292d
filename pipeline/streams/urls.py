"""Redis URLs, parsed once: which kind of deployment a URL names and the redis-py arguments to reach it.

Five forms (docs/deploy.md): `redis://[user:pw@]host:port[/db]` and `rediss://…` (one server, TLS),
`unix:///path.sock?db=N`, `redis+cluster://[user:pw@]host:port[,host:port…]` and `rediss+cluster://…`
(Redis Cluster: any reachable node finds the others; only database 0 exists, so another number is a
config error), `redis+sentinel://[user:pw@]host:port[,host:port…]/SERVICE[/db]` and `rediss+sentinel://…`
(the sentinels of master SERVICE; `user:pw@` authenticates to the data nodes, `?sentinel_password=` to
sentinels that require it). The query string holds redis-py's connection options (`ssl_ca_certs=…`,
`ssl_cert_reqs=none`, …), parsed by redis-py itself for every form. Nothing else in the project parses a
Redis URL: `pipeline.streams.connection` builds clients from the `RedisTarget` this module returns, and
every error names the URL with its passwords masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode

from redis.connection import parse_url

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.masking import mask_text, mask_url, register_url, strip_userinfo

SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"
SCHEMES = {
    "redis": SINGLE,
    "rediss": SINGLE,
    "unix": SINGLE,
    "redis+cluster": CLUSTER,
    "rediss+cluster": CLUSTER,
    "redis+sentinel": SENTINEL,
    "rediss+sentinel": SENTINEL,
}
DEFAULT_PORT = {CLUSTER: 6379, SENTINEL: 26379}
# Options of the sentinels themselves, not of the data nodes (taken out before redis-py sees the query).
_SENTINEL_QUERY = ("sentinel_password", "sentinel_username")
_HOSTPORT = re.compile(r"(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._~%-]+))(?::(?P<port>\d{1,5}))?")
_SERVICE = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL names.

    Attributes:
        kind: `SINGLE`, `CLUSTER` or `SENTINEL`.
        url: The URL as given (mask it before showing it: `mask_url`).
        nodes: Cluster startup nodes or sentinels, (host, port); empty for a single server.
        service: The Sentinel master name.
        db: The database number (always 0 on a cluster).
        options: redis-py connection options for the data nodes (user, password, TLS, ...).
        sentinel_options: Options for the sentinels (their password, TLS).
    """

    kind: str
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    options: dict = field(default_factory=dict)
    sentinel_options: dict = field(default_factory=dict)


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"redis url {mask_url(url)!r} is malformed: {mask_text(why)}")


def parse_redis_url(url: str) -> RedisTarget:
    """The `RedisTarget` of `url`; registers its secrets for masking first.

    Raises:
        ConfigError: Unknown scheme, no host, a path that is not a database number (or, for Sentinel, a
            service name), a database other than 0 on a cluster; the message masks the password.
    """
    register_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    kind = SCHEMES.get(scheme)
    if kind is None:
        raise ConfigError(f"redis url {mask_url(url)!r}: scheme must be one of {', '.join(SCHEMES)}")
    if kind == SINGLE:
        return _single(url, scheme)
    tls = scheme.startswith("rediss")
    _, rest = strip_userinfo(url)
    userinfo = url[len(scheme) + 3 : len(url) - len(rest)]  # "user:pw@" or ""
    before_query, _, query = rest.partition("?")
    netloc, _, path = before_query.partition("/")
    nodes = _nodes(url, netloc, DEFAULT_PORT[kind])
    pairs = parse_qsl(query, keep_blank_values=True)
    sentinel_query = {k: v for k, v in pairs if k in _SENTINEL_QUERY}
    node_query = urlencode([(k, v) for k, v in pairs if k not in _SENTINEL_QUERY])
    options = _node_options(url, f"{'rediss' if tls else 'redis'}://{userinfo}{nodes[0][0]}", node_query)
    if kind == CLUSTER:
        db = path.strip("/")
        if db not in ("", "0"):
            if not db.isdigit():
                raise _bad(url, f"the path must be empty or database 0, not {db!r}")
            raise ConfigError(
                f"redis url {mask_url(url)!r}: Redis Cluster has only database 0, not {db} "
                "(drop the /DB part or use /0)"
            )
        return RedisTarget(kind, url, nodes, options=options)
    service, _, db = path.strip("/").partition("/")
    if not _SERVICE.fullmatch(service):
        raise _bad(url, "name the master after the sentinels: redis+sentinel://host:26379/SERVICE[/DB]")
    if db and not db.isdigit():
        raise _bad(url, f"the database after the service must be a number, not {db!r}")
    sentinel_options = {k.removeprefix("sentinel_"): unquote(v) for k, v in sentinel_query.items()}
    if tls:  # the sentinels speak TLS as the data nodes do, with the same certificates
        sentinel_options |= {k: v for k, v in options.items() if k.startswith("ssl")}
    return RedisTarget(kind, url, nodes, service, int(db or 0), options, sentinel_options)


def _single(url: str, scheme: str) -> RedisTarget:
    try:
        parsed = parse_url(url)
        if scheme != "unix":
            db = strip_userinfo(url)[1].partition("/")[2].split("?", 1)[0]
            if db and not db.isdigit():  # redis-py would silently use db 0
                raise ValueError(f"the path must be a database number, not {db!r}")
            if not parsed.get("host"):
                raise ValueError("no host")
    except (ValueError, TypeError) as exc:
        raise _bad(url, str(exc)) from None
    if scheme != "rediss":
        _no_tls_options(url, parsed)
    return RedisTarget(SINGLE, url, db=int(parsed.get("db") or 0))


def _nodes(url: str, netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for part in netloc.split(","):
        m = _HOSTPORT.fullmatch(part.strip())
        if not m:
            raise _bad(url, f"{part!r} is not host:port" if part.strip() else "no host")
        port = int(m["port"] or default_port)
        if not 0 < port < 65536:
            raise _bad(url, f"port {port} out of range")
        nodes.append((m["ip6"] or m["host"], port))
    return tuple(nodes)


def _node_options(url: str, base: str, query: str) -> dict:
    """redis-py's own reading of the user info and the query (TLS options and the like)."""
    try:
        parsed = parse_url(f"{base}/0" + (f"?{query}" if query else ""))
    except (ValueError, TypeError) as exc:
        raise _bad(url, str(exc)) from None
    options = {k: v for k, v in parsed.items() if k not in ("host", "port", "db", "connection_class", "path")}
    if base.startswith("rediss://"):
        options["ssl"] = True
    else:
        _no_tls_options(url, options)
    return options


def _no_tls_options(url: str, options: dict) -> None:
    """TLS options on a plain URL would reach redis-py's plain connection, which fails with a TypeError."""
    tls = sorted(k for k in options if k.startswith("ssl"))
    if tls:
        raise _bad(
            url, f"{', '.join(tls)} need a TLS scheme (rediss://, rediss+cluster://, rediss+sentinel://)"
        )
