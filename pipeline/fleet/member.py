"""A fleet member's claim loop: a thread of the worker process that decides which cameras the worker runs.

Every third of `fleet.lease_ttl_s` the member beats, in a thread of its own (`pipeline.fleet.view`: its
liveness, by Redis's clock). Every `fleet.claim_every_s` (docs/fleet.md, "Balance"): cameras whose writes
were fenced are lost (stopped at once, frames in flight dropped, `lost` written), and so are all of them
when a beat found the member declared dead or none got through for a whole TTL (others may run them by
now); it reads the fleet's versions (one HMGET) and, only when one moved, what changed; it computes which
cameras are its own (`pipeline.fleet.assign`, the same answer on every member); cameras removed or changed
are released (their frames already taken published, then `released`, then the fence deleted); cameras no
longer its own are released too, in one batch at most every `fleet.rebalance_every_s`; and cameras newly
its own are claimed by writing their fences (`pipeline.fleet.fences`): free ones, ones of dead members,
and, once their holder has released them, ones a live member still runs. In steady state a round is that
one HMGET, a beat every third of a TTL and a stats write every few seconds (`pipeline.fleet.stats`):
nothing grows with the number of members or cameras.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.fleet.assign import assign
from affectstream.pipeline.fleet.cameras import Camera, read_cameras
from affectstream.pipeline.fleet.fences import Claim, Fences, takeable
from affectstream.pipeline.fleet.stats import StatsWriter
from affectstream.pipeline.fleet.view import FleetView
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import FLEET_VERSION, host_id

log = logging.getLogger(__name__)


@dataclass
class Held:
    camera: Camera  # as claimed (a changed one is released and claimed again)
    claim: Claim
    since: float  # monotonic time of the claim


class Member:
    """The claim loop of `worker` (a running `pipeline.runtime.worker.Worker`) under `cfg` (a `FleetConfig`).

    `start()` runs it; `stop_claiming()` when the worker stops taking frames (it keeps beating while the
    worker drains); `close()` once every frame is published: `released` for each camera, the fences deleted,
    the member leaves, so the other members take its cameras at once. `client`: a connection of its own
    (default: one to `redis_url`).
    """

    def __init__(self, worker, cfg, redis_url: str, client: redis.Redis | None = None) -> None:
        from affectstream.pipeline.fleet.capacity import member_capacity

        self.worker = worker
        self.cfg = cfg
        self.member = cfg.member or worker.worker_id.rsplit("-w", 1)[0]
        self.capacity = member_capacity(cfg.max_sources)
        if client is None:
            # Short timeouts and no retries inside a call (the loop is the retry): a cut-off member must
            # notice within its TTL, not after redis-py's retries of each command.
            client = connect(redis_url, timeout_s=max(0.2, min(2.0, cfg.lease_ttl_s / 5)))
            client.set_retry(Retry(NoBackoff(), 0))
        self.client = client
        self.view = FleetView(client, self.member, cfg.lease_ttl_s)
        self.fences = Fences(client, worker.worker_id)
        self.stats = StatsWriter(client, self.member, worker)
        self.held: dict[str, Held] = {}
        self.mine: set[str] = set()  # the cameras assigned to this member
        self.waiting: set[str] = set()  # its own, still run by a live member that has not released them yet
        self._tried: set[str] = set()  # what the last claim attempt was for
        self._unusable: set[str] = set()  # cameras whose URL or options do not resolve here (warned once)
        self._unable_told: set[str] = set()  # ... as the member's facts say (`view.unable`)
        self._beat_ok: float | None = None  # monotonic time the last beat that got through was sent
        self._rejoined = False  # a beat found this member reaped: its cameras may be others' now
        self._retry_at = 0.0  # when to look at the fences of `waiting` again without a handover
        self._last_rebalance = -float("inf")
        self._claiming = True
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fleet-member", daemon=True)
        # Beats in a thread of their own: a slow round (a release draining, a large change to read) must
        # not make the member look dead.
        self._beats = threading.Thread(target=self._beat_loop, name="fleet-beat", daemon=True)
        self._unreachable = False

    # -- lifecycle --------------------------------------------------------------------------------
    def announce(self) -> None:
        """Join the fleet (the first beat) without claiming yet: members started together that all announce
        first compute one assignment from the start. `start` does it when it was not done."""
        if self._beat_ok is None:
            self.beat()

    def start(self) -> None:
        log.info(
            "fleet member %s (worker %s): capacity %d cameras",
            self.member,
            self.worker.worker_id,
            self.capacity,
        )
        with contextlib.suppress(redis.RedisError):  # before the first round: members starting together
            self.announce()  # see each other
        self._thread.start()
        self._beats.start()

    def stop_claiming(self) -> None:
        self._claiming = False

    def close(self) -> None:
        """After the worker published its last frame: `released` for each camera, fences deleted, gone."""
        self._claiming = False
        self._closed.set()
        for thread in (self._thread, self._beats):
            if thread.is_alive():
                thread.join(10)
        for name in self.held:
            self.worker.outbox.add_event(name, "released", self._detail("stopping"))
        try:
            self.worker.outbox.flush_events()
        except Exception as exc:  # the fences go anyway: the others must not wait for this member's TTL
            log.warning("fleet: could not publish `released` events: %s", mask_text(str(exc)))
        for name in list(self.held):
            self._drop_fence(name)
        with contextlib.suppress(redis.RedisError):
            self.view.leave()
            self.stats.delete()
        self.client.close()

    def _loop(self) -> None:
        while not self._closed.wait(self.cfg.claim_every_s):
            try:
                self.round()
                if self._unreachable:
                    log.warning("fleet: Redis reachable again")
                    self._unreachable = False
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not self._unreachable:
                    log.warning("fleet: Redis unreachable (%s); retrying", mask_text(str(exc)))
                    self._unreachable = True
                self._stop_expired()
            except Exception:  # the loop must outlive any one bad round
                log.exception("fleet: claim round failed")

    def _beat_loop(self) -> None:
        while not self._closed.wait(self.cfg.lease_ttl_s / 3):
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):  # the round says so
                self.beat()

    # -- one round --------------------------------------------------------------------------------
    def round(self) -> None:
        """One claim round (the module docstring); the loop calls it every `claim_every_s`."""
        for name, holder in self.worker.fenced():
            self._lose(name, f"a write was fenced; the fence is held by {holder or 'nobody'}")
        if self._rejoined:  # silent past its TTL (paused, cut off): the others may run its cameras by now
            self._rejoined = False
            for name in list(self.held):
                self._lose(name, "this member was declared dead (no beat for a whole TTL)")
        now = time.monotonic()
        self._stop_expired()
        if not self._claiming:
            return
        changes = self.view.refresh()
        if changes.any:
            out = assign(self.view.cameras, self.view.capacities, self.view.unable)
            self.mine = {c for c, m in out.items() if m == self.member}
            self._unusable = (
                self._unusable - changes.cameras
            ) & self.view.cameras  # replaced: another chance
        for name in [n for n in self.held if n not in self.view.cameras]:
            self._release(name, "removed")
        replaced = read_cameras(self.client, sorted(changes.cameras & set(self.held)))
        for name, camera in replaced.items():
            held = self.held[name].camera
            if (camera.url, camera.options) != (held.url, held.options):
                self._release(name, "changed")
        self._rebalance(now)
        want = self.mine - set(self.held) - self._unusable - self._static()
        if want and (want != self._tried or changes.handovers or (self.waiting and now >= self._retry_at)):
            self._retry_at = now + self.cfg.lease_ttl_s / 3
            self._claim(want)
        if self._unusable != self._unable_told:  # the assignment passes them to another member
            self._unable_told = set(self._unusable)
            self.view.update_facts(self._facts())
        if self.stats.due(now, self.held):
            self.stats.write(self.held)

    def beat(self) -> None:
        """Say this member lives for another TTL (the beat thread does, every third of a TTL)."""
        sent = time.monotonic()
        beat = self.view.beat(self._facts())
        if beat.rejoined and self._beat_ok is not None:
            self._rejoined = True
        self._beat_ok = sent

    def _facts(self) -> dict:
        return {
            "member": self.member,
            "worker": self.worker.worker_id,
            "host": host_id(),
            "pid": os.getpid(),
            "capacity": self.capacity,
            "ttl_ms": self.view.ttl_ms,
            "unable": sorted(self._unable_told),
        }

    def _stop_expired(self) -> None:
        """Once no beat got through for a whole TTL, the others may have taken the cameras: stop them."""
        if (
            self.held
            and self._beat_ok is not None
            and time.monotonic() - self._beat_ok >= self.cfg.lease_ttl_s
        ):
            for name in list(self.held):
                self._lose(name, "Redis unreachable for a whole lease TTL")

    def _static(self) -> set[str]:
        """The config's own sources (never claimed): a worker's sources that are not fleet cameras."""
        return set(self.worker.source_names) - set(self.held)

    def _rebalance(self, now: float) -> None:
        """Release, in one batch, the cameras now assigned to another member (at most every
        `rebalance_every_s`; the batch stops after a third of a TTL, so a round stays short)."""
        extra = [n for n in self.held if n not in self.mine]
        if not extra or now - self._last_rebalance < self.cfg.rebalance_every_s:
            return
        self._last_rebalance = now
        for name in sorted(extra):
            if time.monotonic() - now > self.cfg.lease_ttl_s / 3:
                break
            self._release(name, "rebalance")
        self.client.hincrby(FLEET_VERSION, "handovers", 1)  # the members waiting for them look now

    def _claim(self, want: set[str]) -> None:
        self._tried = set(want)
        found = self.fences.holders(sorted(want))
        live = self.view.live_workers
        own = set(self.held)
        free = {c: v for c, v in found.items() if takeable(v, live, self.worker.worker_id, own, c)}
        cameras = read_cameras(self.client, sorted(free))
        specs = {}
        for name in free:
            if name not in cameras:
                continue  # removed meanwhile
            try:
                specs[name] = cameras[name].resolve()
            except ConfigError as exc:
                self._unusable.add(name)
                log.warning("fleet: skipping %s", exc)
        for name, claim in self.fences.claim({n: free[n] for n in specs}).items():
            try:
                self.worker.add_source(specs[name], fence=claim.fence, first=("claimed", self._detail()))
            except Exception:
                self.fences.drop(claim)
                raise
            self.held[name] = Held(cameras[name], claim, time.monotonic())
            log.info("fleet: claimed %s (%d held)", name, len(self.held))
        # Tried again on a handover, or at the next beat: held by a live member, or another claim came first.
        self.waiting = want - set(self.held) - self._unusable

    # -- giving cameras up ------------------------------------------------------------------------
    def _release(self, name: str, why: str) -> None:
        """Drain `name`, publish `released` under its fence, then delete the fence."""
        # At most a third of a TTL: the round also stops fenced cameras, which must not wait long.
        left = self.worker.remove_source(
            name, drain=True, then=("released", self._detail(why)), timeout_s=self.cfg.lease_ttl_s / 3
        )
        self._drop_fence(name)
        log.info("fleet: released %s (%s)%s", name, why, f"; {left} frames not drained" if left else "")

    def _lose(self, name: str, why: str) -> None:
        """`name` may be another member's now: stop it at once, drop its frames in flight, write `lost`
        unfenced. Its fence is left as it is (a new holder's, or this member's own, which it may take again)."""
        if self.held.pop(name, None) is None:
            return
        dropped = self.worker.remove_source(name, drain=False, then=("lost", self._detail(why)))
        self._tried.discard(name)
        log.warning("fleet: lost %s (%s); %d frames in flight dropped", name, why, dropped)

    def _drop_fence(self, name: str) -> None:
        held = self.held.pop(name)
        self._tried.discard(name)
        try:
            self.fences.drop(held.claim)
        except redis.RedisError as exc:  # a fence of a member that left is free for the taking anyway
            log.warning("fleet: could not delete the fence of %s: %s", name, mask_text(str(exc)))

    def _detail(self, reason: str = "") -> dict:
        detail = {"member": self.member, "worker": self.worker.worker_id}
        return {**detail, "reason": reason} if reason else detail
