"""`python -m bench.fleet_scale --redis URL --members M --cameras C --seconds S`: the fleet's control plane at
scale (issue 27, docs/fleet.md "Scale").

It adds C cameras whose URLs are never opened, then runs M members, each the real claim loop of `run --fleet`
(`pipeline.fleet.member.Member`: beats, versions, assignment, claims and fences, rebalancing, releases) on
its own Redis connection, as threads of this process; only the worker under each member is a stub (no
decoding, no publishing: `add_source` records the camera). Member capacity: ceil((C + 1) / M) (room for the
camera the bench adds) unless `--capacity` (at least ceil(C / M)).

Phases: settle (every camera run by exactly one member, each member running what the assignment gives it;
at most `--settle-timeout` s), two rounds and a second for the last writes of settling, a steady window
(`--window` s, nothing changes: what is measured), then `cameras add` and `cameras rm` of one camera (each
must take effect within `--react-timeout` s), then idle until S seconds have passed since the start, or
SIGTERM; the members then stop as on SIGTERM (released,
fences deleted, gone). Exit 0; 1 when settling or reacting took too long, or, with `--check`, when a target
was missed (<= 20 commands/s per member); 2 for a bad argument or a Redis whose fleet is not empty.

How traffic is measured, over the steady window:
- Redis's own count: the deltas of INFO commandstats (every command, those run inside scripts included;
  INFO and CLIENT themselves left out) and of INFO stats total_net_input_bytes / total_net_output_bytes,
  less the bench's own connection, divided by M: commands/s and bytes/s per member on average. Only this
  bench should use the server meanwhile (an otherwise idle Redis, or one started for it).
- Each member's own connections, counted as they send and receive (commands sent, bytes on the socket both
  ways): the spread over members (median, max). Scripts count one command here.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import redis

from affectstream.pipeline.config import load_config
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.fleet.cameras import add_camera, add_cameras, check_camera, remove_camera
from affectstream.pipeline.fleet.member import Member
from affectstream.pipeline.runtime.metrics import WorkerReading
from affectstream.pipeline.streams.keys import (
    FLEET_CAMERAS,
    FLEET_CHANGES,
    FLEET_INFO,
    FLEET_MEMBERS,
    FLEET_VERSION,
    lease_key,
    member_stats_key,
)

TARGET_CMDS_PER_S = 20.0


class Traffic:
    """What one client sent and received (commands, bytes), counted on its sockets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.commands = self.sent = self.received = 0

    def snapshot(self) -> tuple[int, int, int]:
        with self.lock:
            return self.commands, self.sent, self.received


class _CountedSocket:
    def __init__(self, sock: socket.socket, traffic: Traffic) -> None:
        self._sock, self._traffic = sock, traffic

    def recv(self, *args):
        data = self._sock.recv(*args)
        with self._traffic.lock:
            self._traffic.received += len(data)
        return data

    def recv_into(self, buf, *args):
        n = self._sock.recv_into(buf, *args)
        with self._traffic.lock:
            self._traffic.received += n
        return n

    def sendall(self, data, *args):
        with self._traffic.lock:
            self._traffic.sent += len(data)
        return self._sock.sendall(data, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def counted_client(url: str, traffic: Traffic, name: str, timeout_s: float = 2.0) -> redis.Redis:
    """A client of its own whose every socket counts into `traffic` (redis:// or unix:// URLs)."""
    pool_kwargs = redis.connection.parse_url(url)
    base = pool_kwargs.pop("connection_class", redis.Connection)

    class Counted(base):  # type: ignore[misc, valid-type]
        def _connect(self):
            return _CountedSocket(super()._connect(), traffic)

        def send_command(self, *args, **kwargs):
            with traffic.lock:
                traffic.commands += 1
            return super().send_command(*args, **kwargs)

        def pack_commands(self, commands):
            commands = list(commands)
            with traffic.lock:
                traffic.commands += len(commands)
            return super().pack_commands(commands)

    pool = redis.ConnectionPool(
        connection_class=Counted,
        client_name=name,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        **pool_kwargs,
    )
    return redis.Redis(connection_pool=pool)


class StubWorker:
    """What the claim loop uses of a `Worker`, with no decoding and no publishing: it runs nothing."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.running: set[str] = set()
        self.published_by_source: Counter[str] = Counter()
        self.last_frame_ts: dict[str, float] = {}
        self.last_frame_mono: dict[str, float] = {}
        self.outbox = self

    def add_source(self, spec, fence=None, first=None) -> None:
        if spec.name in self.running:
            raise ValueError(f"source {spec.name!r} is already running in {self.worker_id}")
        self.running = self.running | {spec.name}

    def remove_source(self, name, *, drain, then=None, timeout_s=5.0) -> int:
        self.running = self.running - {name}
        return 0

    def add_event(self, name, kind, detail=None) -> None:
        pass

    def flush_events(self) -> None:
        pass

    def fenced(self) -> list:
        return []

    def reading(self) -> WorkerReading:
        return WorkerReading()

    @property
    def source_names(self) -> list[str]:
        return list(self.running)


def server_counters(client: redis.Redis) -> tuple[int, int, int]:
    """(commands, bytes in, bytes out) as Redis counts them; INFO and CLIENT themselves left out."""
    stats = client.info("commandstats")
    commands = sum(
        int(v["calls"])
        for k, v in stats.items()
        if k.split("_", 1)[1].split("|")[0] not in ("info", "client")
    )
    net = client.info("stats")
    return commands, int(net["total_net_input_bytes"]), int(net["total_net_output_bytes"])


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # room for the camera the bench adds, so that adding it does not push another camera out
        self.capacity = args.capacity or math.ceil((args.cameras + 1) / args.members)
        self.own = Traffic()
        self.client = counted_client(args.redis, self.own, "fleet-bench")
        self.cameras = [f"bench-{i:05d}" for i in range(args.cameras)]
        self.members: list[Member] = []
        self.traffic: list[Traffic] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.report: dict = {
            "members": args.members,
            "cameras": args.cameras,
            "capacity": self.capacity,
            "redis_version": self.client.info("server")["redis_version"],
        }

    def left_s(self) -> float:
        return self.args.seconds - (time.monotonic() - self.started)

    def say(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:7.2f} s] {line}", flush=True)

    # -- phases -----------------------------------------------------------------------------------
    def setup(self) -> None:
        for key in (FLEET_CAMERAS, FLEET_MEMBERS):
            if self.client.exists(key):
                raise SystemExit(
                    f"error: {key} exists: this Redis has a fleet; run the bench on an empty database "
                    "(e.g. redis://host:6379/15) or a Redis of its own"
                )
        fleet = {
            "enabled": True,
            "max_sources": self.capacity,
            "lease_ttl_s": self.args.lease_ttl,
            "claim_every_s": self.args.claim_every,
            "rebalance_every_s": self.args.rebalance_every,
        }
        names = [f"bench-m{i:03d}" for i in range(self.args.members)]
        configs = [load_config(None, {"fleet": {**fleet, "member": n}}).fleet for n in names]  # checked first
        for i in range(0, len(self.cameras), 1000):
            add_cameras(
                self.client, [check_camera(n, f"rtsp://127.0.0.1:9/{n}") for n in self.cameras[i : i + 1000]]
            )
        for name, cfg in zip(names, configs, strict=True):
            traffic = Traffic()
            client = counted_client(
                self.args.redis, traffic, name, timeout_s=max(0.2, min(2.0, cfg.lease_ttl_s / 5))
            )
            self.members.append(Member(StubWorker(f"{name}-w0"), cfg, self.args.redis, client=client))
            self.traffic.append(traffic)
        for member in self.members:  # as members started together: all beat before the first round
            member.announce()
        for member in self.members:
            member.start()
        self.say(
            f"{self.args.members} members started on {self.args.cameras} cameras, capacity {self.capacity}"
        )

    def running(self) -> Counter[str]:
        return Counter(c for m in self.members for c in m.worker.running)

    def settled(self) -> bool:
        run = self.running()
        return (
            len(run) == len(self.cameras)
            and max(run.values(), default=1) == 1
            and all(m.worker.running == m.mine and not m.waiting for m in self.members)
        )

    def wait(self, ok, timeout: float) -> float | None:
        start = time.monotonic()
        while not self.stop.is_set() and self.left_s() > 0:
            if ok():
                return round(time.monotonic() - start, 2)
            if time.monotonic() - start > timeout:
                return None
            time.sleep(0.05)
        return None

    def measure(self, seconds: float) -> None:
        before = server_counters(self.client), self.own.snapshot(), [t.snapshot() for t in self.traffic]
        start = time.monotonic()
        self.stop.wait(seconds)
        dt = time.monotonic() - start
        after = server_counters(self.client), self.own.snapshot(), [t.snapshot() for t in self.traffic]
        (c0, i0, o0), own0, m0 = before
        (c1, i1, o1), own1, m1 = after
        n = len(self.members)
        # less the bench's own connection: its INFO calls are not counted; bytes are
        bytes_in = (i1 - i0) - (own1[1] - own0[1])
        bytes_out = (o1 - o0) - (own1[2] - own0[2])
        cmds = [(b[0] - a[0]) / dt for a, b in zip(m0, m1, strict=True)]
        sent = [(b[1] - a[1]) / dt for a, b in zip(m0, m1, strict=True)]
        received = [(b[2] - a[2]) / dt for a, b in zip(m0, m1, strict=True)]
        self.report["steady"] = {
            "window_s": round(dt, 2),
            "redis_commands_per_s_per_member": round((c1 - c0) / dt / n, 2),
            "redis_bytes_in_per_s_per_member": round(bytes_in / dt / n, 1),
            "redis_bytes_out_per_s_per_member": round(bytes_out / dt / n, 1),
            "member_commands_per_s": _spread(cmds),
            "member_bytes_sent_per_s": _spread(sent),
            "member_bytes_received_per_s": _spread(received),
        }
        s = self.report["steady"]
        self.say(
            f"steady {dt:.1f} s: per member {s['redis_commands_per_s_per_member']} commands/s, "
            f"{s['redis_bytes_in_per_s_per_member'] + s['redis_bytes_out_per_s_per_member']:.0f} bytes/s "
            f"(Redis's count); each member's connection: max {s['member_commands_per_s']['max']} commands/s"
        )

    def react(self) -> None:
        added = time.monotonic()
        add_camera(self.client, check_camera("bench-extra", "rtsp://127.0.0.1:9/bench-extra"))
        self.report["react_add_s"] = self.wait(
            lambda: self.running()["bench-extra"] == 1, self.args.react_timeout
        )
        self.say(f"cameras add: running after {self.report['react_add_s']} s")
        remove_camera(self.client, "bench-extra")
        self.report["react_rm_s"] = self.wait(
            lambda: not self.running()["bench-extra"], self.args.react_timeout
        )
        self.report["react_total_s"] = round(time.monotonic() - added, 2)
        self.say(f"cameras rm: stopped after {self.report['react_rm_s']} s")

    def close(self) -> None:
        start = time.monotonic()
        closing = [threading.Thread(target=m.close, daemon=True) for m in self.members]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(15)
        self.report["close_s"] = round(time.monotonic() - start, 2)
        pipe = self.client.pipeline(transaction=False)
        for key in (FLEET_CAMERAS, FLEET_CHANGES, FLEET_VERSION, FLEET_MEMBERS, FLEET_INFO):
            pipe.delete(key)
        for name in [*self.cameras, "bench-extra"]:
            pipe.delete(lease_key(name))
        for member in self.members:
            pipe.delete(member_stats_key(member.member))
        pipe.execute()
        self.client.close()

    def run(self) -> int:
        self.setup()
        self.report["setup_s"] = round(time.monotonic() - self.started, 2)
        self.report["settle_s"] = self.wait(self.settled, self.args.settle_timeout)
        self.say(f"settled after {self.report['settle_s']} s")
        ok = self.report["settle_s"] is not None
        if ok and not self.stop.is_set():
            # The round that made the last claim may still be writing its stats record (O(cameras held)).
            self.stop.wait(2 * self.args.claim_every + 1.0)
            self.measure(max(1.0, min(self.args.window, self.left_s() - 5.0)))
        if ok and not self.stop.is_set():
            self.react()
            ok = self.report["react_add_s"] is not None and self.report["react_rm_s"] is not None
        while not self.stop.is_set() and self.left_s() > 0:
            self.stop.wait(min(1.0, self.left_s()))
        self.report["ran_s"] = round(time.monotonic() - self.started, 2)
        self.close()
        steady = self.report.get("steady")
        self.report["targets_met"] = bool(
            steady and steady["redis_commands_per_s_per_member"] <= TARGET_CMDS_PER_S
        )
        text = json.dumps(self.report, indent=1)
        print(text)
        if self.args.json:
            Path(self.args.json).write_text(text + "\n")
        if not ok and not self.stop.is_set():
            return 1
        return 1 if self.args.check and not self.report["targets_met"] else 0


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)} if values else {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fleet_scale", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--redis", required=True, metavar="URL", help="redis:// or unix:// (an otherwise idle server)"
    )
    p.add_argument("--members", type=int, required=True, metavar="M")
    p.add_argument("--cameras", type=int, required=True, metavar="C")
    p.add_argument(
        "--seconds", type=float, required=True, metavar="S", help="run this long (or until SIGTERM)"
    )
    p.add_argument(
        "--capacity", type=int, default=0, help="cameras per member at most (default ceil((C+1)/M))"
    )
    p.add_argument("--window", type=float, default=20.0, help="steady window measured, seconds")
    p.add_argument("--settle-timeout", type=float, default=60.0)
    p.add_argument("--react-timeout", type=float, default=15.0)
    p.add_argument("--lease-ttl", type=float, default=5.0, help="fleet.lease_ttl_s")
    p.add_argument("--claim-every", type=float, default=0.5, help="fleet.claim_every_s")
    p.add_argument("--rebalance-every", type=float, default=5.0, help="fleet.rebalance_every_s")
    p.add_argument("--json", metavar="PATH", help="also write the report here")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if args.members < 1 or args.cameras < 1 or args.seconds <= 0:
        p.error("--members, --cameras and --seconds must be positive")
    if args.capacity and args.capacity < math.ceil(args.cameras / args.members):
        p.error(f"--capacity must be at least ceil(C/M) = {math.ceil(args.cameras / args.members)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        bench = Bench(args)
    except redis.RedisError as exc:
        print(f"error: cannot reach Redis: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: bench.stop.set())
    signal.signal(signal.SIGINT, lambda *_: bench.stop.set())
    try:
        return bench.run()
    except (
        ConfigError
    ) as exc:  # a fleet setting out of range (e.g. --claim-every above a third of --lease-ttl)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
