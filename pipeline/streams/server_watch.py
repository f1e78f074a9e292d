"""Which Redis server a client's connections reach, so that a writer checks its streams only when it changed.

A stream can lose acknowledged entries only by the server behind it changing: a restart without
persistence, or a failover to a replica that had not received the last writes. Either way the client
opens a new connection, and the server on the other end has a new `run_id` (INFO server: random per
process start; a promoted replica keeps its own). So instead of asking every stream's last id on every
write (`XINFO STREAM`, half of Redis's CPU per frame at camera pace), a writer's client carries a
`ServerWatch`: each new connection reads the server's `run_id` before its first command, and one that
reaches a server not seen before (or an address whose server restarted) is recorded. The writer
(`pipeline.streams.outbox`) writes inside `guarding()`: a new connection made there while a change is
unchecked raises `ServerChanged` before anything is sent on it, and the writer's next attempt starts by
taking the change (`changed`, `acknowledge`) and checking the tails of the streams it wrote against what it
saw acknowledged, sending again what was lost. So no write reaches a new server unchecked, whichever
thread's connection met it first; other threads' connections (reads) never raise.

A connection that cannot read `INFO` (an ACL without `+info`) leaves the watch `blind`: the writer then
checks the tail on every write, as without a watch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import redis
from redis.connection import AbstractConnection

_PROBE = ("INFO", "server")


class ServerChanged(redis.RedisError):
    """A connection reached a server this client had not written to (or one that restarted): the
    streams must be checked before the next write. Not a ConnectionError, so redis-py does not retry it
    by itself; `pipeline.streams.replies` classes it transient, so the writer's own retry does."""


class ServerWatch:
    """The servers (address -> run_id) one client's connections reached, and whether the writer has
    checked its streams since the last change (thread-safe)."""

    def __init__(self) -> None:
        self._run_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every server not seen before, after the first
        self._checked = 0  # the generation the writer has checked its streams for
        self.blind = False  # some server would not say its run_id: check on every write
        self._local = threading.local()

    @contextlib.contextmanager
    def guarding(self) -> Iterator[None]:
        """Connections made by this thread inside the block raise `ServerChanged` while a change is unchecked."""
        self._local.guarded = True
        try:
            yield
        finally:
            self._local.guarded = False

    def connected(self, address: str, run_id: str | None) -> None:
        """Record a new connection's server; inside `guarding`, raise `ServerChanged` while a change is
        unchecked."""
        with self._lock:
            if run_id is None:
                self.blind = True
                return
            if self._run_ids.get(address) != run_id:
                first = not self._run_ids
                self._run_ids[address] = run_id
                if not first:
                    self.generation += 1
            if self.generation != self._checked and getattr(self._local, "guarded", False):
                raise ServerChanged(f"{address}: a Redis server not written to before (run_id {run_id[:8]})")

    def changed(self) -> int | None:
        """The generation to `acknowledge` once the streams are checked, or None when nothing changed."""
        with self._lock:
            return None if self.generation == self._checked else self.generation

    def acknowledge(self, generation: int) -> None:
        with self._lock:
            self._checked = max(self._checked, generation)


def _run_id(connection) -> str | None:
    """The server's run_id, read on the fresh connection itself (None when INFO is refused)."""
    try:
        connection.send_command(*_PROBE, check_health=False)
        reply = connection.read_response()
    except redis.ResponseError:
        return None
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip()
    return None


def watched(connection_class: type[AbstractConnection], watch: ServerWatch) -> type:
    """A subclass of redis-py's `connection_class` that reports each new connection's server to `watch`.

    `on_connect_check_health` is the step every connection kind runs after AUTH/SELECT (plain, TLS, unix,
    Sentinel-managed, cluster nodes through their `redis_connect_func`), before the first command.
    """

    def on_connect_check_health(self, check_health: bool = True) -> None:
        connection_class.on_connect_check_health(self, check_health=check_health)
        address = getattr(self, "path", "") or f"{self.host}:{self.port}"
        watch.connected(address, _run_id(self))

    return type(
        f"Watched{connection_class.__name__}",
        (connection_class,),
        {"on_connect_check_health": on_connect_check_health},
    )
