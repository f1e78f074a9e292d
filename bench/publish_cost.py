"""What one published frame costs Redis: commands (as Redis counts them, those run inside the publish script
included), Redis CPU, bytes in on the wire and memory per entry; marginal, over a file pass in batches and
at camera pace (one frame per round trip), through the worker's own `Outbox` with a writer-lease fence.

`python -m bench.publish_cost [--redis URL] [--frames N]`; `make bench` reports it (bench/run.py). Targets
(issue 27): <= 1.1 commands and <= 20 us of Redis CPU per frame. Commands and bytes are exact counts;
CPU is Redis's own `used_cpu_user + used_cpu_sys`, noisy on a shared machine (the median of `runs`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

TARGET_COMMANDS, TARGET_CPU_US = 1.1, 20.0
BATCHES = {"file pass, 8 frames a round trip": 8, "file pass, 64 a round trip": 64, "camera pace": 1}


def _frames(source: str, start: int, n: int, now: float):
    from affectstream.pipeline.types import FaceResult, FrameResult

    probs = {"Neutral": 0.1, "Happy": 0.6, "Surprise": 0.05, "Sad": 0.05}
    probs |= {"Anger": 0.05, "Disgust": 0.05, "Fear": 0.05, "Contempt": 0.05}
    face = FaceResult(1, [232.0, 92.9, 286.0, 166.2], 0.89, [], "Happy", probs, 0.27, -0.13)
    return [
        FrameResult(source, i, i / 30, now + i / 30, [face], "mtlgcn", 12.5) for i in range(start, start + n)
    ]


def _info(client, section: str) -> list[dict]:
    """INFO `section` of the server, or of every master of a cluster (a stream lives on one of them)."""
    from redis.cluster import RedisCluster

    from affectstream.pipeline.streams.connection import is_cluster

    if is_cluster(client):
        return list(client.info(section, target_nodes=RedisCluster.PRIMARIES).values())
    return [client.info(section)]


def _counters(client) -> tuple[int, float, int]:
    """(commands so far except INFO, Redis CPU s, bytes received), summed over the masters."""
    calls = sum(
        v["calls"] for s in _info(client, "commandstats") for k, v in s.items() if k != "cmdstat_info"
    )
    cpu = sum(float(c["used_cpu_user"]) + float(c["used_cpu_sys"]) for c in _info(client, "cpu"))
    wire = sum(int(n["total_net_input_bytes"]) for n in _info(client, "stats"))
    return calls, cpu, wire


def _pass(client, watch, batch: int, frames: int, tag: str) -> tuple[int, float, int]:
    """Publish `frames` frames of a new source in round trips of `batch`; the counters' deltas."""
    from affectstream.pipeline.sources import SourceSpec
    from affectstream.pipeline.streams.keys import lease_key
    from affectstream.pipeline.streams.outbox import Outbox
    from affectstream.pipeline.streams.writer import Fence

    source = f"bench-{tag}-{batch}-{frames}"
    fence = Fence(lease_key(source), "bench/0", 30_000)
    client.set(fence.key, fence.token, px=60_000)
    box = Outbox(
        client,
        "bench-w0",
        [],
        {source: 1000},
        maxlen=100_000,
        stopping=lambda: False,
        drain_s=1.0,
        on_source_failed=lambda *a: None,
        drained=lambda _s: True,
        watch=watch,
    )
    box.add_source(SourceSpec(name=source, url="/bench.mp4", live=False), fence)
    todo = _frames(source, 0, frames, time.time())
    before = _counters(client)
    for i in range(0, frames, batch):
        box.publish(todo[i : i + batch])
    after = _counters(client)
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def measure(url: str, frames: int = 2000, runs: int = 3) -> dict:
    """Per frame, marginal (a pass of 2N frames minus a pass of N): commands, Redis CPU us, bytes in; and
    Redis memory per entry. The client is a worker's: its connections watched for a server change."""
    from affectstream.pipeline.streams.connection import connect
    from affectstream.pipeline.streams.server_watch import ServerWatch

    watch = ServerWatch()
    with connect(url, watch=watch) as client:
        return _measure(client, watch, frames, runs)


def _measure(client, watch, frames: int, runs: int) -> dict:
    from affectstream.pipeline.streams.keys import frames_key

    out: dict = {}
    _pass(client, watch, 1, 1, "warm")  # the script loaded (SCRIPT LOAD once, after NOSCRIPT) before counting
    for name, batch in BATCHES.items():
        n = frames if batch > 1 else frames // 4  # camera pace: one round trip per frame, fewer frames
        commands, cpu_us, wire = [], [], []
        for r in range(runs):
            small = _pass(client, watch, batch, n, f"s{r}")
            large = _pass(client, watch, batch, 2 * n, f"l{r}")
            commands.append((large[0] - small[0]) / n)
            cpu_us.append((large[1] - small[1]) / n * 1e6)
            wire.append((large[2] - small[2]) / n)
        out[name] = {
            "batch": batch,
            "commands_per_frame": round(statistics.median(commands), 3),
            "redis_cpu_us_per_frame": round(statistics.median(cpu_us), 1),
            "bytes_in_per_frame": round(statistics.median(wire)),
        }
    key = frames_key(f"bench-l0-8-{2 * frames}")  # the larger pass in 8-frame round trips
    out["memory_bytes_per_entry"] = round(client.memory_usage(key, samples=0) / client.xlen(key))
    out["targets"] = {"commands_per_frame": TARGET_COMMANDS, "redis_cpu_us_per_frame": TARGET_CPU_US}
    return out


def main(argv: list[str] | None = None) -> int:
    from affectstream.pipeline.streams.connection import redis_session

    p = argparse.ArgumentParser(prog="python -m bench.publish_cost", description=__doc__.split("\n")[0])
    p.add_argument("--redis", metavar="URL", help="a Redis to measure (default: a private embedded one)")
    p.add_argument("--frames", type=int, default=2000, help="frames of the smaller pass (default 2000)")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    import tempfile

    with (
        tempfile.TemporaryDirectory(prefix="redis-") as data,
        redis_session(args.redis, data) as (url, _client),
    ):
        print(json.dumps(measure(url, args.frames, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
