"""What the fleet trials share: members as real process trees (`affectstream run --fleet`), and the analysis
of what they left in Redis: who held each camera when (`tenures`), frames published by two members in
overlapping time (`overlap_frames`), moves (`claimed` events) and takeover times.

Every trial appends one row to $AFFECTSTREAM_FLEET_REPORT (JSON lines) when it is set;
`python -m tests.fleet.harness var/fleet.jsonl` prints the table of docs/fleet.md ("Measured").
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

from affectstream.pipeline.fleet.cameras import add_camera, check_camera
from affectstream.pipeline.streams.keys import events_key, frames_key, holder_of, lease_key, text
from tests.conftest import REPO, need_shared

REPORT_ENV = "AFFECTSTREAM_FLEET_REPORT"


def fleet_config(path: Path, ttl_s: float, max_sources: int = 8, extra: str = "") -> Path:
    """A member config: no static sources, a short lease TTL, light detection (many cameras share 2 cores)."""
    detector = need_shared("models", "scrfd_500m.onnx")
    path.write_text(
        f"detector:\n  model: '{detector}'\n  input_size: [320, 192]\n  detect_every: 3\n"
        "workers:\n  heartbeat_s: 0.5\n  restart_backoff_s: 0.2\n"
        f"fleet:\n  lease_ttl_s: {ttl_s}\n  claim_every_s: 0.5\n  rebalance_every_s: 2.0\n"
        f"  max_sources: {max_sources}\n" + extra
    )
    return path


@dataclass
class Member:
    """One fleet member: `affectstream run --fleet --member ID`, a supervisor and its worker process."""

    member: str
    config: Path
    redis_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    proc: subprocess.Popen | None = None
    _tree: list[psutil.Process] = field(default_factory=list, repr=False)

    @property
    def worker(self) -> str:
        """The worker id its result entries and lease tokens carry (docs/fleet.md)."""
        return f"{self.member}-w0"

    def start(self) -> Member:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        cmd = [
            sys.executable,
            "-m",
            "affectstream",
            "run",
            "--fleet",
            "--member",
            self.member,
            "-c",
            str(self.config),
            "--redis",
            self.redis_url,
        ]
        with open(self.log_path, "a") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def tree(self) -> list[psutil.Process]:
        """The supervisor and every process under it (its worker, multiprocessing's helpers)."""
        assert self.proc is not None
        try:
            root = psutil.Process(self.proc.pid)
            self._tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass  # gone: keep the last tree seen, so a kill still reaches orphans
        return self._tree

    def signal_all(self, sig: int) -> float:
        """Send `sig` to the whole tree (children first); returns the wall time just before the first
        signal: a continued worker may act before the last one is sent."""
        procs = self.tree()
        at = time.time()
        for proc in reversed(procs):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        return at

    def kill(self) -> float:
        """SIGKILL the supervisor and its worker (a machine gone); returns the wall time of the kill."""
        at = self.signal_all(signal.SIGKILL)
        self.reap()
        return at

    def terminate(self) -> float:
        """SIGTERM to the supervisor, as `docker stop` does: it drains, releases its leases and exits."""
        assert self.proc is not None
        at = time.time()
        self.proc.terminate()
        return at

    def reap(self, timeout: float = 30.0) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Leave nothing running (a stopped member is continued first, so it can die)."""
        if self.proc is None:
            return
        self.tree()
        self.signal_all(signal.SIGCONT)
        self.signal_all(signal.SIGKILL)
        self.reap()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class Fleet:
    """Members of one trial (all started from one config) and the cameras they share, all on `camera_url`
    (one RTSP server; every camera is its own session). `close()` leaves no member running."""

    def __init__(self, redis_url: str, camera_url: str, workdir: Path, ttl_s: float, max_sources: int = 8):
        self.redis_url, self.camera_url, self.workdir, self.ttl_s = redis_url, camera_url, workdir, ttl_s
        self.client = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.config = fleet_config(workdir / "member.yaml", ttl_s, max_sources)
        self.members: dict[str, Member] = {}
        self.cameras: list[str] = []

    def add_cameras(self, *names: str) -> None:
        for name in names:
            add_camera(self.client, check_camera(name, self.camera_url))
            self.cameras.append(name)

    def start(self, *names: str, env: dict[str, str] | None = None) -> list[Member]:
        started = [
            Member(n, self.config, self.redis_url, self.workdir / f"{n}.log", dict(env or {})).start()
            for n in names
        ]
        self.members.update((m.member, m) for m in started)
        return started

    def held(self) -> dict[str, list[str]]:
        """worker -> the cameras whose lease it holds."""
        out: dict[str, list[str]] = defaultdict(list)
        for camera, worker in holders(self.client, self.cameras).items():
            if worker:
                out[worker].append(camera)
        return dict(out)

    def settled(self, counts: dict[str, int], since_ts: float) -> bool:
        """Members hold `counts` cameras each (member -> count) and every camera has a frame captured
        after `since_ts` from its holder."""
        held = self.held()
        if {w: len(c) for w, c in held.items()} != {self.members[m].worker: n for m, n in counts.items()}:
            return False
        return all(w in publishers_since(self.client, c, since_ts) for w, cams in held.items() for c in cams)

    def wait_settled(self, counts: dict[str, int], timeout: float = 90.0) -> None:
        """Wait for `settled(counts)`, with frames newer than the wait's start; fails with the logs."""
        since = time.time()
        if wait_for(lambda: self.settled(counts, since), timeout, every=0.2) is None:
            raise AssertionError(f"not settled at {counts}: leases {self.held()}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {m.member}\n{m.log()[-3000:]}" for m in self.members.values())

    def overlap_frames(self) -> int:
        return sum(overlaps(self.client, self.cameras).values())

    def close(self) -> None:
        for member in self.members.values():
            member.close()
        self.client.close()


@dataclass
class Tenure:
    """One holding of a camera by one worker: its frames from one `claimed` event to the next, as
    positions in the results stream (the order Redis appended them: publication order)."""

    worker: str
    first: int
    last: int
    frames: int = 0


def entries(client: redis.Redis, camera: str) -> list[tuple[float, str]]:
    """(capture ts, worker) of every entry of a camera's results stream, in stream order."""
    return [(float(f[b"ts"]), text(f.get(b"worker"))) for _eid, f in client.xrange(frames_key(camera))]


def tenures(client: redis.Redis, camera: str) -> list[Tenure]:
    """A frame belongs to its worker's latest `claimed` before its capture (both times from that
    member's own clock); a worker with no `claimed` event has one tenure."""
    claims: dict[str, list[float]] = defaultdict(list)
    for event in events(client, camera, ("claimed",)):
        claims[event["worker"]].append(event["ts"])
    out: dict[tuple[str, int], Tenure] = {}
    for position, (ts, worker) in enumerate(entries(client, camera)):
        key = (worker, bisect.bisect(claims[worker], ts))
        tenure = out.setdefault(key, Tenure(worker, position, position))
        tenure.last, tenure.frames = position, tenure.frames + 1
    return list(out.values())


def overlap_frames(client: redis.Redis, camera: str) -> int:
    """Frames of `camera` appended while another worker's tenure was under way (between its first and
    last frame in stream order): 0 is the fleet's safety property. Stream order is publication order,
    so both two members publishing at once and a late write of a member that lost the camera count."""
    held = tenures(client, camera)
    return sum(
        1
        for position, (_ts, worker) in enumerate(entries(client, camera))
        if any(t.worker != worker and t.first < position < t.last for t in held)
    )


def overlaps(client: redis.Redis, cameras: list[str]) -> dict[str, int]:
    """Overlapping frames per camera (only the cameras that have any)."""
    found = {camera: overlap_frames(client, camera) for camera in cameras}
    return {camera: n for camera, n in found.items() if n}


def holders(client: redis.Redis, cameras: list[str]) -> dict[str, str]:
    """camera -> worker holding its lease ("" when free)."""
    return {camera: holder_of(client.get(lease_key(camera))) for camera in cameras}


def publishers_since(client: redis.Redis, camera: str, since_ts: float) -> set[str]:
    """Workers that published a frame of `camera` captured after `since_ts`."""
    start = f"{int(since_ts * 1000)}-0"  # live entry ids are `<capture ms>-<seq>`
    return {text(f.get(b"worker")) for _eid, f in client.xrange(frames_key(camera), min=start)}


def first_frame_after(client: redis.Redis, camera: str, worker: str, after_ts: float) -> float | None:
    """Capture time of the first frame of `camera` from `worker` captured after `after_ts`."""
    return next((ts for ts, w in entries(client, camera) if w == worker and ts > after_ts), None)


def events(client: redis.Redis, camera: str, kinds: tuple[str, ...]) -> list[dict]:
    """The camera's events of `kinds` as {kind, worker, member, reason, ts}, oldest first (an event's detail
    keys are fields of its entry)."""
    out = []
    for _eid, f in client.xrange(events_key(camera)):
        kind = text(f.get(b"kind"))
        if kind in kinds:
            out.append(
                {
                    "kind": kind,
                    "worker": text(f.get(b"worker")),
                    "member": text(f.get(b"member")),
                    "reason": text(f.get(b"reason")),
                    "ts": float(f[b"ts"]),
                }
            )
    return out


def moves_since(client: redis.Redis, cameras: list[str], since_ts: float) -> list[dict]:
    """Every `claimed` event after `since_ts`, oldest first, with its camera."""
    found = [{**e, "camera": camera} for camera in cameras for e in events(client, camera, ("claimed",))]
    return sorted((e for e in found if e["ts"] > since_ts), key=lambda e: e["ts"])


def wait_for(predicate, timeout: float, every: float = 0.05) -> float | None:
    """Poll `predicate` until it is true; the wall time it first was, or None after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.time()
        except redis.RedisError:
            pass
        time.sleep(every)
    return None


def first_frames_by_others(
    client: redis.Redis, cameras: list[str], not_worker: str, since_ts: float, timeout: float
) -> dict[str, float]:
    """When each camera's newest frame, captured after `since_ts`, came from another worker than
    `not_worker`, as a consumer polling every 50 ms sees it (cameras never taken over are absent)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(seen) < len(cameras):
        now = time.time()
        for camera in cameras:
            if camera not in seen and publishers_since(client, camera, since_ts) - {not_worker}:
                seen[camera] = now
        time.sleep(0.05)
    return seen


def report(row: dict) -> None:
    """Append one trial's row to $AFFECTSTREAM_FLEET_REPORT (JSON lines), when set."""
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


# What each trial times, from the event to (times_s) the first frame published after it.
TIMED = {
    "SIGKILL a member": "kill -> another member's first frame",
    "SIGSTOP past the TTL, then SIGCONT": "stop -> another member's first frame",
    "a member leaves (SIGTERM)": "SIGTERM -> another member's first frame",
    "a member joins (1 -> 2, 4 cameras)": "`released` -> the joiner's first frame",
    "cameras add": "`cameras add` -> first frame",
    "cameras rm": "`cameras rm` -> `released` (last frame)",
    "lease taken by another token": "lease overwritten -> `lost`",
}


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "-"


def table(rows: list[dict]) -> str:
    """One line per trial kind: trials, TTL, the times (median / max), moves and the safety counts."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["trial"], row["ttl_s"])].append(row)
    lines = [
        "| trial | trials | lease TTL s | timed | n | until claimed s (median / max) | time s "
        "(median / max) | moves | frames after fencing | overlapping frames |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (trial, ttl), items in groups.items():
        times = [t for r in items for t in r.get("times_s", [])]
        claimed = [t for r in items for t in r.get("claimed_s", [])]
        moves = [str(r["moves"]) for r in items if "moves" in r]
        fenced = [r["frames_after_fencing"] for r in items if "frames_after_fencing" in r]
        lines.append(
            f"| {trial} | {len(items)} | {ttl:g} | {TIMED.get(trial, '')} | {len(times)} | {_stats(claimed)} "
            f"| {_stats(times)} | {', '.join(moves) or '-'} | {sum(fenced) if fenced else '-'} "
            f"| {sum(r['overlap_frames'] for r in items)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    lines = [line for path in sys.argv[1:] for line in Path(path).read_text().splitlines()]
    print(table([json.loads(line) for line in lines if line.strip()]))
