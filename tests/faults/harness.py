"""What the fault tests share: a redis-server they may stop, kill and restart; `affectstream run` as a
real process; and audits that count what a consumer would find in the streams.

Every trial appends one row to $AFFECTSTREAM_FAULT_REPORT (JSON lines) when it is set; `docs/reliability.md`
tabulates those rows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from affectstream.pipeline.streams.connection import EmbeddedRedis
from affectstream.pipeline.streams.entry_ids import parse_id
from affectstream.pipeline.streams.keys import HEARTBEAT_PATTERN, events_key, frames_key
from tests.conftest import REPO, need_shared
from tests.rtsp_fixtures import free_port


class RedisProcess(EmbeddedRedis):
    """A redis-server on a loopback port, owned by one test: SIGSTOP, SIGKILL and restart it at will
    (same port and data directory, so a restart finds its AOF)."""

    def __init__(self, data_dir: Path, aof: bool = True) -> None:
        super().__init__(data_dir, port=free_port(), aof=aof)

    def start(self, timeout_s: float = 15.0) -> RedisProcess:
        super().start(timeout_s)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=10)

    def pause(self) -> None:
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self._proc.send_signal(signal.SIGCONT)
        self._proc.kill()
        self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a stopped server cannot act on SIGTERM
        super().stop()


def start_run(
    redis_url: str, sources: dict[str, str], tmp_path: Path, extra: str = "", env: dict | None = None
) -> subprocess.Popen:
    """`affectstream run` with `sources` (name -> url), output to tmp_path/run.log; `env` over ours."""
    lines = ["sources:"] + [f"  - {{name: {name}, url: '{url}'}}" for name, url in sources.items()]
    cfg = tmp_path / "run.yaml"
    detector = need_shared("models", "scrfd_500m.onnx")
    cfg.write_text(
        "\n".join(lines) + f"\ndetector:\n  model: '{detector}'\n"
        "workers:\n  heartbeat_s: 0.5\n  restart_backoff_s: 0.2\n" + extra
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(tmp_path / "run.log", "a") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "affectstream", "run", "-c", str(cfg), "--redis", redis_url],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def worker_pids(client: redis.Redis) -> list[int]:
    pids = []
    for key in client.scan_iter(match=HEARTBEAT_PATTERN):
        raw = client.get(key)
        if raw:
            beat = json.loads(raw)
            if "archive_job" not in beat:  # `run` workers only
                pids.append(int(beat["pid"]))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its dead parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout: float, every: float = 0.1, proc: subprocess.Popen | None = None) -> bool:
    """Poll `predicate` until true (True), `timeout` passes or `proc` exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            if predicate():
                return True
        except redis.RedisError:
            pass
        time.sleep(every)
    return False


def frames_of(client: redis.Redis, source: str) -> list[tuple[tuple[int, int], int, str]]:
    """(entry id, frame, worker) of every entry of a source's results stream, in stream order."""
    return [
        (parse_id(eid), int(f[b"frame"]), f.get(b"worker", b"").decode())
        for eid, f in client.xrange(frames_key(source))
    ]


@dataclass
class Audit:
    """What a consumer finds in one file pass (or one live source)."""

    source: str
    expected: int | None
    published: int
    duplicates: int
    gaps: int
    in_order: bool
    events: list[str]

    @property
    def complete(self) -> bool:
        return self.duplicates == 0 and self.gaps == 0 and self.in_order and self.expected == self.published


def passes_of(client: redis.Redis, source: str, archive: bool = False) -> list[list[int]]:
    """Frame indices per pass, oldest pass first (a run's passes share the id's ms part; an archive job's
    stream is one pass)."""
    passes: dict[int, list[int]] = {}
    for (ms, _seq), frame, _worker in frames_of(client, source):
        passes.setdefault(0 if archive else ms, []).append(frame)
    return [passes[k] for k in sorted(passes)]


def _audit(source: str, frames: list[int], expected: int, events: list[str]) -> Audit:
    unique = set(frames)
    return Audit(
        source,
        expected,
        len(frames),
        len(frames) - len(unique),
        len(set(range(expected)) - unique),
        frames == sorted(frames),
        events,
    )


def audit_file(
    client: redis.Redis, source: str, expected: int, pass_index: int = -1, archive: bool = False
) -> Audit:
    """One pass of a file: exactly frames 0..expected-1, in order?"""
    passes = passes_of(client, source, archive)
    return _audit(source, passes[pass_index] if passes else [], expected, event_kinds(client, source))


def audit_prefix(client: redis.Redis, source: str, pass_index: int) -> Audit:
    """A pass that was cut short (its run died): frames 0..k-1, no duplicate, no gap."""
    frames = passes_of(client, source)[pass_index]
    return _audit(source, frames, max(frames) + 1 if frames else 0, [])


def audit_live(client: redis.Redis, source: str, order_by: str = "ts") -> Audit:
    """A camera: each captured frame at most once (no two entries with the same capture time and frame
    index) and in capture order, across worker restarts. `order_by="frame"`: capture order by the reader's
    frame index, where the wall clock was stepped back (capture times then go back too) and no worker
    restarted (a new reader counts from 0)."""
    frames = [(float(f[b"ts"]), int(f[b"frame"])) for _eid, f in client.xrange(frames_key(source))]
    order = [ts for ts, _frame in frames] if order_by == "ts" else [frame for _ts, frame in frames]
    return Audit(
        source,
        None,
        len(frames),
        len(frames) - len(set(frames)),
        0,
        order == sorted(order),
        event_kinds(client, source),
    )


def accounts(log: str) -> list[dict]:
    """Every worker's closing account per source (`accounting {...}` lines)."""
    return [json.loads(m) for m in re.findall(r"accounting (?:does not add up )?(\{.*\})", log)]


def assert_accounts_hold(log: str, sources: list[str]) -> list[dict]:
    """Each source has a closing account, and each adds up: decoded = published + dropped, none in flight."""
    found = accounts(log)
    assert "does not add up" not in log, log[-3000:]
    assert {a["source"] for a in found} >= set(sources), (found, log[-3000:])
    for a in found:
        assert a["in_flight"] == 0 and a["decoded"] == a["published"] + sum(a["dropped"].values()), a
    return found


def event_kinds(client: redis.Redis, source: str) -> list[str]:
    return [f[b"kind"].decode() for _i, f in client.xrange(events_key(source))]


def report(row: dict) -> None:
    """Append one trial's row to $AFFECTSTREAM_FAULT_REPORT (JSON lines), when set."""
    path = os.environ.get("AFFECTSTREAM_FAULT_REPORT")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(json.dumps(row, default=lambda o: {**asdict(o), "complete": o.complete}) + "\n")
