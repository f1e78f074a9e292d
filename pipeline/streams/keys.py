"""Every Redis key and stream name, in one place (schema v1, see DESIGN.md)."""

import os
import re
import socket

SCHEMA_VERSION = 1

# The one rule for names that go into key names and log lines (source and camera names, fleet member
# ids): no braces, colons, whitespace or newlines. Match it with `fullmatch` (`is_key_safe`): `$` would
# accept a trailing newline.
NAME_MAX = 100
KEY_SAFE_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{NAME_MAX}}}")
KEY_SAFE_RULE = f"use 1-{NAME_MAX} letters, digits, '_', '.' or '-'"
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.-]+")


def is_key_safe(name: object) -> bool:
    """True when `name` is a string that follows the rule (`KEY_SAFE_NAME`, the whole string)."""
    return isinstance(name, str) and KEY_SAFE_NAME.fullmatch(name) is not None


def check_name(name: str) -> str:
    """`name` when it follows the rule.

    Raises:
        ValueError: `'p:q' is not allowed; use 1-100 letters, ...` (callers put the key path in front).
    """
    if not is_key_safe(name):
        raise ValueError(f"{name!r} is not allowed; {KEY_SAFE_RULE}")
    return name


def safe_name(text: str, default: str = "source", limit: int = NAME_MAX) -> str:
    """A name derived from free text (a file stem, a host name) made to follow the rule: each run of other
    characters becomes `_`, outer `_` are stripped, at most `limit` characters; `default` when nothing is left."""
    return _UNSAFE_RUN.sub("_", text).strip("_")[:limit] or default


# Archive jobs (pipeline/archive), jobs schema 2: the queue, the index and every job's hash share the hash
# tag `{jobs}`, so one MULTI may span them on a cluster (schema 1 names: `affect:jobs`, `affect:jobs:index`,
# `affect:job:<id>`; docs/deploy.md says how to move). A job's frames stream has its source's own tag.
JOBS_STREAM = "affect:{jobs}:queue"
JOBS_GROUP = "workers"


_SOURCE_PREFIX = "affect:{"
FRAMES_SUFFIX = "}:frames"
EVENTS_SUFFIX = "}:events"
TRACKS_SUFFIX = "}:tracks"


def text(value: bytes | str | None) -> str:
    """A Redis reply as text: clients without `decode_responses` return bytes ("" for a missing value)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def frames_key(source: str) -> str:
    """Results stream of one source; the hash tag keeps a source's keys in one cluster slot."""
    return f"{_SOURCE_PREFIX}{source}{FRAMES_SUFFIX}"


def events_key(source: str) -> str:
    return f"{_SOURCE_PREFIX}{source}{EVENTS_SUFFIX}"


def tracks_key(source: str) -> str:
    """Track events of one source (`start`, `update`, `end`: `pipeline.streams.tracks`), in its slot."""
    return f"{_SOURCE_PREFIX}{source}{TRACKS_SUFFIX}"


def source_of(key: str) -> str:
    """The source id inside a stream key's hash tag (`affect:{cam}:frames` -> `cam`)."""
    return key.split("{", 1)[1].rsplit("}", 1)[0]


def source_of_stream(key: bytes | str, suffix: str = FRAMES_SUFFIX) -> str | None:
    """The source id of a results stream key (or, with `EVENTS_SUFFIX`, an events key); None when not one."""
    key = text(key)
    if key.startswith(_SOURCE_PREFIX) and key.endswith(suffix):
        return key[len(_SOURCE_PREFIX) : -len(suffix)]
    return None


def snapshot_key(source: str) -> str:
    """A JPEG of the source's latest frame with its faces drawn (opt-in: `snapshots.enabled`); it expires."""
    return f"{_SOURCE_PREFIX}{source}}}:snapshot"


def snapshot_request_key(source: str) -> str:
    """Set (with a short expiry) by a dashboard showing the source: workers write snapshots only meanwhile."""
    return f"{_SOURCE_PREFIX}{source}}}:snapshot:request"


def heartbeat_key(worker: str) -> str:
    """JSON {ts, pid, host, member, sources, published, stats, queues} (docs/consumer/README.md), expiring after
    `heartbeat_ttl_s`; `affectstream health` judges staleness by its age in Redis (TTL minus PTTL, never by
    ts) and this host's workers by host."""
    return f"affect:worker:{worker}:heartbeat"


HEARTBEAT_PATTERN = "affect:worker:*:heartbeat"


def heartbeat_ttl_s(stale_after_s: float) -> int:
    """The TTL a worker's heartbeat is written with under `workers.stale_after_s`: it expires well after it
    is stale, so `health` still reports a hung worker, and the keys of past runs do not pile up. Readers
    tell a beat's age by Redis's clock from it (`pipeline.streams.liveness`)."""
    return max(60, int(stale_after_s * 10))


def host_id() -> str:
    """This host's name, key-safe: the first part of run, member and worker ids (`{host}-{pid}-w0`), and
    the `host` of a heartbeat, by which `affectstream health` finds this host's workers."""
    return safe_name(socket.gethostname(), "host", 40)


def process_id() -> str:
    """This process, key-safe and unique on this host while it runs: `<host>-<pid>` (a run's id, an archive
    worker's consumer name; a writer lease's holder, which `writer_leases` reads back as host and pid)."""
    return f"{host_id()}-{os.getpid()}"


def worker_of(key: bytes | str) -> str:
    """The worker id of a heartbeat key (`affect:worker:vm-1-w0:heartbeat` -> `vm-1-w0`)."""
    return text(key).split(":")[2]


def job_key(job_id: str) -> str:
    return f"affect:{{jobs}}:job:{job_id}"


# Every job id ever submitted, for `archive status` without SCAN.
JOBS_INDEX = "affect:{jobs}:index"


# Camera fleet (pipeline/fleet, docs/fleet.md), fleet schema 2. The fleet-wide keys share the hash tag
# `{fleet}`, so one script or MULTI may span them on a cluster. Schema 1 (`affect:fleet:cameras`, one
# `affect:fleet:member:<id>` record per member, read with SCAN) is migrated by `affectstream fleet migrate`.
FLEET_SCHEMA = 2
# The desired cameras: a hash name -> JSON {"url", "options", "added"}; `affectstream cameras ...` write it.
FLEET_CAMERAS = "affect:{fleet}:cameras"
# What changed in it: a stream of {v: cameras version, op: add|rm|reload, names: space-separated}.
FLEET_CHANGES = "affect:{fleet}:changes"
# Versions, a hash {members, cameras, handovers}: members read it every round and the rest only on change.
FLEET_VERSION = "affect:{fleet}:version"
# Live members: a sorted set member -> the Redis TIME (ms) at which it counts as dead unless it beats again.
FLEET_MEMBERS = "affect:{fleet}:members"
# Each live member's facts: a hash member -> JSON {member, worker, host, pid, capacity, ttl_ms, unable}.
FLEET_INFO = "affect:{fleet}:info"
FLEET_V1_CAMERAS = "affect:fleet:cameras"


def member_stats_key(member: str) -> str:
    """JSON {member, worker, cameras: {name: {fps, decoded, ...}}, ttl_ms}: what a member measured of its
    cameras, for `fleet status` (telemetry, not read by members), expiring."""
    return f"affect:fleet:stats:{member}"


def lease_key(source: str) -> str:
    """The one writer of a source's streams: a run's writer lease (`pipeline.streams.writer_leases`: the
    token `<run id>/<random>`, with a TTL) or a fleet camera's fence (`pipeline.fleet.fences`: `<worker>/<random>/
    <claimed, Redis ms>`, written at the claim, no TTL). Same hash tag as the source's streams, so the publish
    script checks it in the same slot."""
    return f"{_SOURCE_PREFIX}{source}}}:lease"


def pass_key(source: str) -> str:
    """A hash {base, file, run} of the file pass being written, until its `eof` is in the stream."""
    return f"{_SOURCE_PREFIX}{source}}}:pass"


def holder_of(token: bytes | str | None) -> str:
    """The worker id in a lease token (`vm-12-w0/4f..` -> `vm-12-w0`); "" when none."""
    return text(token).split("/", 1)[0]
