"""What a Redis error means for the write that got it: the one table (DESIGN.md, "Redis replies classed").

- **transient**: the server will accept the same write later (it is loading, out of memory under
  `noeviction`, failing to save its RDB, a read-only replica during failover, paused, busy with a script,
  a cluster resharding). Retried with backoff, the same entry ids every time; live sources count the
  frames they skip meanwhile as `dropped{reason="redis_unavailable"}`, files wait.
- **reload**: the server lost our script (a restart, `SCRIPT FLUSH`, a failover to a replica that never
  saw it); redis-py loads it again, so it is retried like a transient error.
- **permanent**: a reply about one key's content or rights (WRONGTYPE, an ACL refusal, a bad argument):
  retrying cannot help, and it fails only the source whose key it names.

Connection loss and timeouts (no reply at all) are transient, and so is a connection that reached another
server (`ServerChanged`: the writer checks its streams, then writes); an authentication failure is not.
"""

from __future__ import annotations

import re

import redis

from affectstream.pipeline.streams.server_watch import ServerChanged

TRANSIENT, RELOAD, PERMANENT = "transient", "reload", "permanent"

# Error code (the reply's first word) -> class. A code not listed is permanent.
REPLY_CLASS: dict[str, str] = {
    "OOM": TRANSIENT,  # maxmemory reached under noeviction: consumers trimming or reading frees it
    "MISCONF": TRANSIENT,  # an RDB save failed (a full disk) and stop-writes-on-bgsave-error is on
    "READONLY": TRANSIENT,  # a replica, e.g. an old master just demoted in a failover
    "LOADING": TRANSIENT,  # a restarted server still loading its AOF or RDB
    "BUSY": TRANSIENT,  # a long script runs on the server
    "MASTERDOWN": TRANSIENT,  # a replica that lost its master (replica-serve-stale-data no)
    "NOREPLICAS": TRANSIENT,  # min-replicas-to-write not met
    "TRYAGAIN": TRANSIENT,  # cluster: a multi-key request during resharding
    "CLUSTERDOWN": TRANSIENT,  # cluster: slots not covered for now
    "NOSCRIPT": RELOAD,
    "WRONGTYPE": PERMANENT,
    "NOPERM": PERMANENT,
    "ERR": PERMANENT,
}

# The code of a reply, at its start or, inside a script's error, quoted after a dash:
# "Error running script (...): @user_script:31: -OOM command not allowed ...".
_CODE = re.compile(r"(?:^|\s-)([A-Z]{2,})\b")


def reply_code(exc: BaseException) -> str:
    """The error code of a reply (`OOM`, `MISCONF`, ...): the first listed one it quotes, else its first."""
    codes = _CODE.findall(str(exc))
    for code in codes:
        if code in REPLY_CLASS and REPLY_CLASS[code] != PERMANENT:
            return code
    return codes[0] if codes else ""


def error_class(exc: BaseException) -> str:
    """`TRANSIENT`, `RELOAD` or `PERMANENT` for an exception raised by a Redis call."""
    if isinstance(exc, redis.AuthenticationError):
        return PERMANENT
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ServerChanged)):
        return TRANSIENT
    if isinstance(exc, (redis.BusyLoadingError, redis.ReadOnlyError)):
        return TRANSIENT
    if isinstance(exc, redis.exceptions.NoScriptError):
        return RELOAD
    if isinstance(exc, redis.ResponseError):
        # redis-py strips the codes it maps to classes (OOM, NOSCRIPT, ...) from the text, keeping them in
        # `status_code`; a script's error may still quote a transient one in its text ("ERR ... -OOM").
        listed = REPLY_CLASS.get(getattr(exc, "status_code", None) or "", PERMANENT)
        return listed if listed != PERMANENT else REPLY_CLASS.get(reply_code(exc), PERMANENT)
    return PERMANENT


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying with backoff (transient, or a script to load again)."""
    return error_class(exc) != PERMANENT
