"""Subcommands `run`, `demo` and `health`."""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_source_arg(text: str) -> dict:
    """`[NAME=]URL` -> {"name": ..., "url": ...}; a URL's own `=` (query strings) is left alone."""
    name, sep, rest = text.partition("=")
    if sep and _NAME.match(name) and "://" not in name and rest:
        return {"name": name, "url": rest}
    return {"url": text}


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="pipeline YAML (over the packaged defaults)")
    p.add_argument("--redis", metavar="URL", help="redis://, rediss:// or unix:// URL (default: $AFFECTSTREAM_REDIS_URL, else embedded)")
    p.add_argument("--detector", metavar="PATH", help="SCRFD ONNX path or insightface pack name (default: $AFFECTSTREAM_DETECTOR)")


def overrides_from_args(args: argparse.Namespace) -> dict:
    over: dict = {}
    if getattr(args, "redis", None):
        over.setdefault("redis", {})["url"] = args.redis
    if getattr(args, "detector", None):
        over.setdefault("detector", {})["model"] = args.detector
    if getattr(args, "workers", None):
        over.setdefault("workers", {})["count"] = args.workers
    if getattr(args, "source", None):
        over["sources"] = [parse_source_arg(s) for s in args.source]
    return over


def _supervise(cfg, url: str, duration: float | None) -> int:
    from pipeline.supervisor import Supervisor

    supervisor = Supervisor(cfg, url)
    if duration:
        timer = threading.Timer(duration, supervisor.stop)
        timer.daemon = True
        timer.start()
    return supervisor.run()


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.redis_conn import ensure_redis

    cfg = load_config(args.config, overrides_from_args(args))
    url, server = ensure_redis(cfg.redis.url, cfg.redis.data_dir)
    try:
        return _supervise(cfg, url, args.duration)
    finally:
        if server is not None:
            server.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.demo import build_demo_clip, format_summary, summarise
    from pipeline.redis_conn import connect, ensure_redis

    if args.source:
        sources = [parse_source_arg(s) for s in args.source]
    else:
        clip = build_demo_clip(Path(args.workdir) / "demo_clip.mp4")
        print(f"demo clip: {clip} (built from insightface's sample images)")
        sources = [{"name": "demo", "url": str(clip)}]
    over = overrides_from_args(argparse.Namespace(redis=args.redis, detector=args.detector, source=None))
    over["sources"] = sources
    cfg = load_config(args.config, over)
    live = any(s.live for s in cfg.sources)
    start_ms = int(time.time() * 1000)
    url, server = ensure_redis(cfg.redis.url, cfg.redis.data_dir)
    try:
        code = _supervise(cfg, url, args.duration or (10.0 if live else None))
        rows = summarise(connect(url), [s.name for s in cfg.sources], since_ms=start_ms)
    finally:
        if server is not None:
            server.stop()
    print(format_summary(rows))
    if not cfg.redis.url:
        print(f"results kept in the embedded Redis under {Path(cfg.redis.data_dir).resolve()}; "
              f"`affectstream tail {cfg.sources[0].name}` shows them")  # fmt: skip
    return code


def cmd_health(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.health import worker_health
    from pipeline.redis_conn import EmbeddedRedis, connect

    cfg = load_config(args.config, overrides_from_args(args))
    url = cfg.redis.url or EmbeddedRedis(cfg.redis.data_dir).url
    healthy, lines = worker_health(connect(url), args.stale_after or cfg.workers.stale_after_s)
    print("\n".join(lines), file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def register(sub) -> None:
    p = sub.add_parser("run", help="run the pipeline: sources -> faces -> MTL-GCN -> Redis Streams")
    add_common(p)
    p.add_argument("--source", action="append", metavar="[NAME=]URL", help="file, rtsp://, http(s)://, /dev/videoN (repeatable)")
    p.add_argument("--workers", type=int, help="worker processes (default: workers.count)")
    p.add_argument("--duration", type=float, help="stop (draining) after this many seconds")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", help="run the whole pipeline on a bundled clip and print a summary")
    add_common(p)
    p.add_argument("--source", action="append", metavar="[NAME=]PATH_OR_URL", help="use this instead of the bundled clip")
    p.add_argument("--duration", type=float, help="seconds to run a live source (default 10)")
    p.add_argument("--workdir", default="var/demo", help="where the clip is written")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("health", help="exit non-zero when a worker heartbeat is stale or missing")
    add_common(p)
    p.add_argument("--stale-after", type=float, help="seconds (default: workers.stale_after_s)")
    p.set_defaults(handler=cmd_health)
