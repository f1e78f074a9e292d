"""A fleet member's claim loop: a thread of the worker process that owns the member's camera leases.

Every `fleet.claim_every_s` (docs/fleet.md, "Balance"):

1. cameras whose writes were fenced, or whose lease could not be renewed, are lost: stopped at once,
   their frames in flight dropped, `lost` written;
2. leases are renewed every third of their TTL; a member cut off from Redis stops its cameras once
   their leases may have expired (it cannot know whether another member took them) and keeps trying;
3. cameras no longer desired (`cameras rm`) or changed (`cameras add` of the same name) are released:
   their frames already taken are published, then `released`, then the lease is deleted;
4. free cameras are claimed, in random order (members starting together spread), up to the target:
   this member's capacity, or its fair share of the cameras when other members are alive;
5. a member above its fair share while another is below releases one camera, at most one per
   `fleet.rebalance_every_s`, and does not take it back for as long.

The member record (`keys.member_key`) is rewritten every round with a TTL of three lease TTLs, stated in
the record (`ttl_ms`), so that any reader knows its age by Redis's clock (`pipeline.streams.liveness`): members
judge each other alive by that, never by comparing their wall clocks. The leases live in this process, so
a member that dies loses them with it, after at most one TTL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import threading
import time
from collections import Counter

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.fleet.cameras import Camera, list_cameras
from affectstream.pipeline.fleet.leases import Lease
from affectstream.pipeline.fleet.status import read_members
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import host_id, member_key

log = logging.getLogger(__name__)


def fair_share(cameras: int, capacity: int, total_capacity: int) -> int:
    """A member's fair share: cameras x its capacity / the capacity of all live members, rounded up."""
    return math.ceil(cameras * capacity / total_capacity) if total_capacity else 0


class Member:
    """The claim loop of `worker` (a running `pipeline.runtime.worker.Worker`) under `cfg` (a `FleetConfig`).

    `start()` runs it; `stop_claiming()` when the worker stops taking frames (leases are still renewed
    while it drains); `close()` once every frame is published: `released` for each camera, then the
    leases are deleted, so the other members take them at once.
    """

    def __init__(self, worker, cfg, redis_url: str) -> None:
        from affectstream.pipeline.fleet.capacity import member_capacity

        self.worker = worker
        self.cfg = cfg
        self.member = cfg.member or worker.worker_id.rsplit("-w", 1)[0]
        self.capacity = member_capacity(cfg.max_sources)
        # Short timeouts and no retries inside a call (the loop is the retry): a cut-off member must
        # notice within its TTL, not after redis-py's ten retries of each command.
        self.client = connect(redis_url, timeout_s=max(0.2, min(2.0, cfg.lease_ttl_s / 5)))
        self.client.set_retry(Retry(NoBackoff(), 0))
        self.leases: dict[str, Lease] = {}
        self.cameras: dict[str, Camera] = {}  # as claimed (a changed one is released and claimed again)
        self._claimed: dict[str, float] = {}  # camera -> wall time claimed (data: shown, never compared)
        self._held_since: dict[str, float] = {}  # camera -> monotonic time claimed
        self._renewed: dict[str, float] = {}  # camera -> monotonic time its last renewal was sent
        self._hold_off: dict[str, float] = {}  # camera -> monotonic time until which not to reclaim it
        self._last_release = 0.0
        self._unusable: set[str] = set()  # cameras already warned about (bad URL or option here)
        self._published: Counter[str] = Counter()  # camera -> frames published at the last beat
        self._beat_at = time.monotonic()
        self._claiming = True
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fleet-member", daemon=True)
        self._unreachable = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        log.info(
            "fleet member %s (worker %s): capacity %d cameras",
            self.member,
            self.worker.worker_id,
            self.capacity,
        )
        with contextlib.suppress(redis.RedisError):  # announced before the first claim: members starting
            self._beat()  # together see each other's capacity
        self._thread.start()

    def stop_claiming(self) -> None:
        self._claiming = False

    def close(self) -> None:
        """After the worker published its last frame: `released` for each camera, leases deleted."""
        self._claiming = False
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for name in self.leases:
            self.worker.outbox.add_event(name, "released", self._detail("stopping"))
        try:
            self.worker.outbox.flush_events()
        except Exception as exc:  # the leases go anyway: the others must not wait for their TTL
            log.warning("fleet: could not publish `released` events: %s", mask_text(str(exc)))
        for name in list(self.leases):
            self._drop_lease(name)
        with contextlib.suppress(redis.RedisError):
            self.client.delete(member_key(self.member))
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

    # -- one round --------------------------------------------------------------------------------
    def round(self) -> None:
        """One claim round (the module docstring); the loop calls it every `claim_every_s`."""
        for name, holder in self.worker.fenced():
            self._lose(name, f"a write was fenced; the lease is held by {holder or 'nobody'}")
        self._renew()
        self._stop_expired()
        if not self._claiming:
            return
        desired = list_cameras(self.client)
        for name in list(self.leases):
            camera = desired.get(name)
            if camera is None:
                self._release(name, "removed")
            elif (camera.url, camera.options) != (self.cameras[name].url, self.cameras[name].options):
                self._release(name, "changed")
            else:
                continue
            self._renew()  # a release waits for its frames; the other leases must not wait as long
        others = self._other_members()
        total = self.capacity + sum(int(m.get("capacity") or 0) for m in others)
        fair = fair_share(len(desired), self.capacity, total)
        self._claim(desired, min(self.capacity, fair))
        self._rebalance(fair, others, len(desired), total)
        self._beat()

    def _renew(self) -> None:
        now = time.monotonic()
        for name, lease in list(self.leases.items()):
            if now - self._renewed[name] < lease.ttl_s / 3:
                continue
            if lease.renew():
                self._renewed[name] = now
            else:
                self._lose(name, "the lease expired before it was renewed")

    def _stop_expired(self) -> None:
        """Cameras whose lease may have expired by now (renewals did not get through) stop."""
        now = time.monotonic()
        for name in [n for n, sent in self._renewed.items() if now - sent >= self.cfg.lease_ttl_s]:
            self._lose(name, "Redis unreachable for a whole lease TTL")

    def _other_members(self) -> list[dict]:
        """The member records of the other live members: written within a lease TTL, by Redis's clock (the
        record's TTL), whatever their hosts' clocks say. A record outlives its member by up to three TTLs
        (for `fleet status`); counting a dead member's capacity that long would keep the fair share of the
        living below what they must take over, past TTL + 2 s. A record that states no TTL (an older
        member) counts while it exists."""
        members, _unreadable = read_members(self.client)
        return [
            m
            for m in members
            if m.get("member") != self.member
            and (m["beat_age_s"] is None or m["beat_age_s"] <= self.cfg.lease_ttl_s)
        ]

    def _claim(self, desired: dict[str, Camera], target: int) -> None:
        now = time.monotonic()
        static = set(self.worker.source_names) - set(self.leases)  # the config's own sources, never leased
        free = [
            c
            for name, c in desired.items()
            if name not in self.leases and name not in static and self._hold_off.get(name, 0.0) <= now
        ]
        random.shuffle(free)
        for camera in free:
            if len(self.leases) >= target:
                return
            try:
                spec = camera.resolve()
            except ConfigError as exc:
                if camera.name not in self._unusable:
                    self._unusable.add(camera.name)
                    log.warning("fleet: skipping %s", exc)
                continue
            self._unusable.discard(camera.name)
            lease = Lease(self.client, camera.name, self.worker.worker_id, self.cfg.lease_ttl_s)
            sent = time.monotonic()
            if not lease.acquire():
                continue  # another member holds it
            try:
                self.worker.add_source(spec, fence=lease.fence, first=("claimed", self._detail()))
            except Exception:
                lease.release()
                raise
            self.leases[camera.name], self.cameras[camera.name] = lease, camera
            self._renewed[camera.name], self._claimed[camera.name] = sent, time.time()
            self._held_since[camera.name] = sent
            log.info("fleet: claimed %s (%d held)", camera.name, len(self.leases))

    def _rebalance(self, fair: int, others: list[dict], cameras: int, total: int) -> None:
        """Give one camera up when holding more than the fair share while another member holds less."""
        now = time.monotonic()
        if len(self.leases) <= fair or now - self._last_release < self.cfg.rebalance_every_s:
            return
        for m in others:  # one with room below its share: a member at its capacity could not take it
            capacity = int(m.get("capacity") or 0)
            if len(m.get("cameras") or {}) < min(capacity, fair_share(cameras, capacity, total)):
                self._last_release = now
                self._release(max(self._held_since, key=self._held_since.__getitem__), "rebalance")
                return

    # -- giving cameras up ------------------------------------------------------------------------
    def _release(self, name: str, why: str) -> None:
        """Drain `name`, publish `released` under its lease, then delete the lease."""
        # At most a third of a TTL: the other leases are renewed in the same loop.
        left = self.worker.remove_source(
            name, drain=True, then=("released", self._detail(why)), timeout_s=self.cfg.lease_ttl_s / 3
        )
        self._drop_lease(name)
        self._hold_off[name] = time.monotonic() + self.cfg.rebalance_every_s
        log.info("fleet: released %s (%s)%s", name, why, f"; {left} frames not drained" if left else "")

    def _lose(self, name: str, why: str) -> None:
        """The lease of `name` is gone: stop it now, drop its frames in flight, write `lost` unfenced."""
        if name not in self.leases:
            return
        dropped = self.worker.remove_source(name, drain=False, then=("lost", self._detail(why)))
        self._forget(name)
        log.warning("fleet: lost %s (%s); %d frames in flight dropped", name, why, dropped)

    def _drop_lease(self, name: str) -> None:
        lease = self._forget(name)
        try:
            lease.release()
        except redis.RedisError as exc:  # it expires by itself within its TTL
            log.warning("fleet: could not delete the lease of %s: %s", name, mask_text(str(exc)))

    def _forget(self, name: str) -> Lease:
        self.cameras.pop(name, None)
        self._claimed.pop(name, None)
        self._held_since.pop(name, None)
        self._renewed.pop(name, None)
        return self.leases.pop(name)

    def _detail(self, reason: str = "") -> dict:
        detail = {"member": self.member, "worker": self.worker.worker_id}
        return {**detail, "reason": reason} if reason else detail

    # -- member record ----------------------------------------------------------------------------
    def _beat(self) -> None:
        """Rewrite the member record. Durations in it (`held_s`, `last_frame_age_s`) are measured here, as of
        the write; a reader adds the record's age by Redis's clock (`fleet.status`)."""
        now, wall, reading = time.monotonic(), time.time(), self.worker.reading()
        dt = max(1e-3, now - self._beat_at)
        cameras = {}
        for name in self.leases:
            published = self.worker.published_by_source[name]
            decoded, dropped, _reconnects, _state = reading.sources.get(name, (0, 0, 0, "down"))
            last_frame = self.worker.last_frame_ts.get(name)
            last_mono = self.worker.last_frame_mono.get(name)
            cameras[name] = {
                "claimed": self._claimed[name],
                "held_s": round(now - self._held_since[name], 3),
                "fps": round((published - self._published.get(name, published)) / dt, 2),
                "decoded": decoded,
                "dropped": dropped,
                "dropped_by": reading.dropped.get(name, {}),  # reason -> frames (`outbox.DROP_REASONS`)
                "last_frame_ts": last_frame,  # data: the capture wall time
                "last_frame_age_s": None if last_mono is None else round(max(0.0, now - last_mono), 3),
            }
            self._published[name] = published
        self._published = Counter({name: self._published[name] for name in self.leases})
        self._beat_at = now
        ttl_ms = int(3000 * self.cfg.lease_ttl_s)
        record = {
            "member": self.member,
            "worker": self.worker.worker_id,
            "host": host_id(),
            "pid": os.getpid(),
            "capacity": self.capacity,
            "cameras": cameras,
            "ts": wall,
            "ttl_ms": ttl_ms,
        }
        self.client.set(member_key(self.member), json.dumps(record), px=ttl_ms)
