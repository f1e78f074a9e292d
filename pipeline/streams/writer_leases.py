"""One writer per stream: the writer leases of a run's configured sources, and the passes they resume.

Two `run`s of one source (the same file twice, two files whose names sanitise alike, one camera started
twice) would interleave or truncate each other's entries. So a run holds a lease on each of its configured
sources for as long as it runs: the key `keys.lease_key(source)` (the same key a fleet member's camera
lease uses, so a configured source and a fleet camera of one name exclude each other too) holding
`<run id>/<random>`, with a TTL that Redis counts down. The supervisor takes the leases before any worker
starts and renews them; every write of the source's entries is fenced with the token inside the publish
script (`pipeline.streams.writer.Fence`), so a run that lost its lease cannot write another entry.

A run that finds a source's lease held:
- by a live run (one that renews it): refuses at start (`WriterBusy`, exit 1), naming that run and how to
  choose another name;
- by a dead run of this host (its supervisor's pid is gone): takes the lease over at once;
- by a run that stopped renewing it (another host's run that died; its PTTL shows it): waits for the lease
  to expire, at most `WRITER_LEASE_S`, then takes it over. Liveness is judged by the TTL Redis counts down,
  never by comparing hosts' clocks.

Files: each pass over a file is recorded under `keys.pass_key(source)` ({base, file, run}) until its `eof`
is in the stream (`finish_pass`). A run that takes a source over with an unfinished pass of the same file
resumes that pass after its last published frame, as a restarted worker does; otherwise it starts a new
pass above everything in the stream.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterable

import redis

from affectstream.pipeline.errors import EXIT_FAILED, AffectstreamError
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.entry_ids import last_id, pass_base_after
from affectstream.pipeline.streams.keys import frames_key, holder_of, host_id, lease_key, pass_key, text
from affectstream.pipeline.streams.writer import Fence

log = logging.getLogger(__name__)

WRITER_LEASE_S = 30.0  # outlives the Redis stalls the fault suite makes (10 s) with room to spare
RENEW_EVERY_S = 5.0

# Renew: ours -> new TTL; free (it expired while Redis stalled, nobody took it) -> ours again; else the
# holder's token. Take over: only from the very token found dead.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return holder
"""
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_FINISH_PASS = """
if redis.call('HGET', KEYS[1], 'base') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class WriterBusy(AffectstreamError):
    """Another live run writes one of this run's sources."""

    exit_code = EXIT_FAILED


def file_digest(url: str) -> str:
    """What a pass record remembers of its file (not the URL itself: it may hold a password)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _dead_on_this_host(run: str) -> bool:
    """True when `run` (`<host>-<pid>`) is a run of this host whose process is gone."""
    host, _, pid = run.rpartition("-")
    if host != host_id() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class WriterLeases:
    """The writer leases of one run's configured sources.

    Args:
        client: Redis client.
        run: The run id (`<host>-<pid>`), written into each token.
        ttl_s: Lease time to live; renewed every `RENEW_EVERY_S`.
    """

    def __init__(self, client: redis.Redis, run: str, ttl_s: float = WRITER_LEASE_S) -> None:
        self.client = client
        self.run = run
        self.ttl_ms = int(ttl_s * 1000)
        self.tokens: dict[str, str] = {}
        self._renew = client.register_script(_RENEW)
        self._take_over = client.register_script(_TAKE_OVER)
        self._release = client.register_script(_RELEASE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, specs: Iterable) -> dict[str, int]:
        """Take the lease of every spec (all or none) and fix each file's pass; returns {file: pass base}.

        Raises:
            WriterBusy: A live run holds one of them (the leases taken so far are given back).
        """
        passes: dict[str, int] = {}
        try:
            for spec in specs:
                self._take(spec.name)
                if not spec.live:
                    passes[spec.name] = self._pass(spec.name, spec.url)
        except BaseException:
            self.release()
            raise
        self._thread = threading.Thread(target=self._renew_loop, name="writer-leases", daemon=True)
        self._thread.start()
        return passes

    def _take(self, source: str) -> None:
        key, token = lease_key(source), f"{self.run}/{uuid.uuid4().hex}"
        if self.client.set(key, token, nx=True, px=self.ttl_ms):
            self.tokens[source] = token
            return
        held = text(self.client.get(key))
        holder = holder_of(held)
        if (
            held
            and _dead_on_this_host(holder)
            and self._take_over(keys=[key], args=[held, token, self.ttl_ms])
        ):
            log.warning("source %s: run %s is gone; taking over its stream", source, holder)
            self.tokens[source] = token
            return
        if not held and self.client.set(key, token, nx=True, px=self.ttl_ms):  # it expired just now
            self.tokens[source] = token
            return
        # its holder stopped renewing it, and it expired
        if (
            held
            and self._wait_unless_renewed(key, held)
            and self.client.set(key, token, nx=True, px=self.ttl_ms)
        ):
            log.warning(
                "source %s: run %s stopped renewing its lease; taking over its stream", source, holder
            )
            self.tokens[source] = token
            return
        ttl = max(0.0, (self.client.pttl(key) or 0) / 1000)
        raise WriterBusy(
            f"source {source!r} is being written by run {holder or 'unknown'} (lease {key}); one stream "
            f"has one writer: stop that run, or give this source another name (--source OTHER=URL or "
            f"`name:` in the config). If that run is dead, its lease expires within {ttl:.0f} s."
        )

    def _wait_unless_renewed(self, key: str, held: str) -> bool:
        """Wait for a lease nobody renews to expire: True once it is gone, False when its holder renews it.

        A live holder renews every `RENEW_EVERY_S`, so its PTTL stays above TTL - 2 x that; below, the holder
        is gone (another host's run died) and waiting out the rest beats refusing. Judged by the TTL Redis
        counts down, never by comparing clocks.
        """
        stale_below = self.ttl_ms - 2 * RENEW_EVERY_S * 1000
        pttl = int(self.client.pttl(key))
        if pttl < 0 or pttl >= stale_below:
            return False
        log.warning(
            "lease %s: run %s has not renewed it for %.0f s; waiting %.0f s for it to expire",
            key,
            holder_of(held),
            (self.ttl_ms - pttl) / 1000,
            pttl / 1000,
        )
        while True:
            self._stop.wait(min(0.5, pttl / 1000 + 0.01))
            now_held, pttl = text(self.client.get(key)), int(self.client.pttl(key))
            if not now_held:
                return True
            if now_held != held or pttl >= stale_below:  # renewed after all, or another took it
                return False

    def _pass(self, source: str, url: str) -> int:
        """The pass base of `source` for this run: the unfinished pass of the same file, or a new one."""
        key, digest = pass_key(source), file_digest(url)
        record = {text(k): text(v) for k, v in self.client.hgetall(key).items()}
        last = last_id(self.client, frames_key(source))
        base = int(record["base"]) if record.get("base", "").isdigit() else 0
        if base and record.get("file") == digest and last[0] <= base:
            log.warning(
                "source %s: resuming the unfinished pass of run %s after frame %d",
                source,
                record.get("run", "?"),
                last[1] if last[0] == base else -1,
            )
            return base
        base = pass_base_after(last)
        self.client.hset(key, mapping={"base": base, "file": digest, "run": self.run})
        return base

    def fence(self, source: str) -> Fence:
        return Fence(lease_key(source), self.tokens[source], self.ttl_ms)

    def _renew_loop(self) -> None:
        """Renew every lease each `RENEW_EVERY_S` (its own thread: a stalled Redis must not hold up the
        supervisor); log a lease another run took."""
        while not self._stop.wait(RENEW_EVERY_S):
            self.renew()

    def renew(self) -> None:
        for source, token in list(self.tokens.items()):
            try:
                holder = text(self._renew(keys=[lease_key(source)], args=[token, self.ttl_ms]))
            except redis.RedisError as exc:
                # A stall: the TTL covers it, and the publish script takes a free lease again.
                log.warning("source %s: renewing the writer lease failed: %s", source, mask_text(str(exc)))
                continue
            if holder:
                log.error(
                    "source %s: run %s took over its stream; this run no longer writes it",
                    source,
                    holder_of(holder),
                )
                del self.tokens[source]

    def release(self) -> None:
        """Stop renewing and give back every lease still ours (the next run of these sources need not wait)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for source, token in list(self.tokens.items()):
            try:
                self._release(keys=[lease_key(source)], args=[token])
            except redis.RedisError as exc:
                log.warning("source %s: giving back the writer lease failed: %s", source, mask_text(str(exc)))
        self.tokens.clear()


def finish_pass(client: redis.Redis, source: str, base: int) -> None:
    """Forget the pass record of `source` once its `eof` is in the stream (the next run starts a new pass)."""
    client.eval(_FINISH_PASS, 1, pass_key(source), base)
