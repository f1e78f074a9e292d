"""Subcommands `run`, `demo` and `health`."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from affectstream.pipeline.cli.argtypes import positive_int
from affectstream.settings.overrides import add_set_option, nested


def parse_source_arg(text: str) -> dict:
    """`[NAME=]URL` -> {"name": ..., "url": ...}; a URL's or path's own `=` (query strings) is left alone.

    Raises:
        ConfigError: The text before the first `=` is a name (it has no `/`) that breaks the name rule.
    """
    from affectstream.pipeline.errors import ConfigError
    from affectstream.pipeline.streams.keys import check_name

    name, sep, rest = text.partition("=")
    if not (sep and rest) or "/" in name:
        return {"url": text}
    try:
        return {"name": check_name(name), "url": rest}
    except ValueError as exc:
        raise ConfigError(
            f"--source {text!r}: the name {exc} (a file whose name has '=' is read as ./FILE)"
        ) from None


def add_common(p: argparse.ArgumentParser, *, detector: bool = False, overrides: bool = False) -> None:
    """`-c` and `--redis`; `--detector` and `--set` only for verbs that use them."""
    p.add_argument("-c", "--config", help="pipeline YAML (over the packaged defaults)")
    p.add_argument(
        "--redis",
        metavar="URL",
        help="Redis URL: redis[s]://, unix://, redis[s]+cluster://, redis[s]+sentinel://HOSTS/SERVICE "
        "(docs/deploy.md; default: $AFFECTSTREAM_REDIS_URL, else embedded)",
    )
    if detector:
        p.add_argument(
            "--detector",
            metavar="PATH",
            help="SCRFD ONNX path or insightface pack name, or blazeface_full_range (Apache-2.0 weights) "
            "(default: $AFFECTSTREAM_DETECTOR)",
        )
    if overrides:
        add_set_option(p, "a config key, e.g. engine.threads=2")


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The config overrides of the command line: `--set` pairs, then the flags (which win).

    Raises:
        ConfigError: `--source` and `--set sources=...` both name the sources (one would silently win).
    """
    over = nested(getattr(args, "set", None) or [])
    if getattr(args, "redis", None):
        over.setdefault("redis", {})["url"] = args.redis
    if getattr(args, "detector", None):
        over.setdefault("detector", {})["model"] = args.detector
    if getattr(args, "workers", None):
        over.setdefault("workers", {})["count"] = args.workers
    if getattr(args, "fleet", False):
        over.setdefault("fleet", {})["enabled"] = True
    if getattr(args, "member", None):
        over.setdefault("fleet", {})["member"] = args.member
    if getattr(args, "source", None):
        if "sources" in over:
            from affectstream.pipeline.errors import ConfigError

            raise ConfigError("--source and --set sources=... both name the sources; give one of them")
        over["sources"] = [parse_source_arg(s) for s in args.source]
    return over


def _supervise(cfg, url: str, duration: float | None) -> int:
    from affectstream.pipeline.runtime.supervisor import Supervisor

    supervisor = Supervisor(cfg, url)
    if duration:
        timer = threading.Timer(duration, supervisor.stop)
        timer.daemon = True
        timer.start()
    return supervisor.run()


def cmd_run(args: argparse.Namespace) -> int:
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.errors import EXTRAS, require
    from affectstream.pipeline.streams.connection import redis_session

    require(*EXTRAS["worker"])  # here, not in a worker process that would crash and be restarted

    cfg = load_config(args.config, overrides_from_args(args))
    with redis_session(cfg.redis.url, cfg.redis.data_dir) as (url, _client):
        return _supervise(cfg, url, args.duration)


def cmd_demo(args: argparse.Namespace) -> int:
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.consumers.demo import build_demo_clip, format_summary, summarise
    from affectstream.pipeline.errors import EXTRAS, require
    from affectstream.pipeline.streams.connection import redis_session

    require(*EXTRAS["worker"])

    over = overrides_from_args(args)
    cfg = load_config(args.config, over)
    if not cfg.sources:  # none from --source, --set sources=... or the config: the bundled clip
        clip = build_demo_clip(Path(args.workdir) / "demo_clip.mp4")
        print(f"demo clip: {clip} (built from insightface's sample images)")
        over["sources"] = [{"name": "demo", "url": str(clip)}]
        cfg = load_config(args.config, over)
    live = any(s.live for s in cfg.sources)
    start_ms = int(time.time() * 1000)
    with redis_session(cfg.redis.url, cfg.redis.data_dir) as (url, client):
        code = _supervise(cfg, url, args.duration or (10.0 if live else None))
        rows = summarise(client, [s.name for s in cfg.sources], since_ms=start_ms)
    print(format_summary(rows))
    if not cfg.redis.url:
        print(
            f"results kept in the embedded Redis under {Path(cfg.redis.data_dir).resolve()}; "
            f"`affectstream tail {cfg.sources[0].name}` shows them"
        )
    return code


def cmd_health(args: argparse.Namespace) -> int:
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.runtime.health import fleet_health, worker_health
    from affectstream.pipeline.streams.connection import connect_existing
    from affectstream.pipeline.streams.keys import heartbeat_ttl_s, host_id

    cfg = load_config(args.config, overrides_from_args(args))
    stale_after = args.stale_after or cfg.workers.stale_after_s
    client = connect_existing(cfg.redis.url, cfg.redis.data_dir)
    try:
        beat_ttl = heartbeat_ttl_s(cfg.workers.stale_after_s)  # what the workers of this config write
        healthy, lines = worker_health(client, stale_after, None if args.all else host_id(), beat_ttl)
        if args.all:
            fleet_ok, fleet_lines = fleet_health(client, stale_after)
            healthy, lines = healthy and fleet_ok, lines + fleet_lines
    finally:
        client.close()
    print("\n".join(lines), file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def register(sub) -> None:
    p = sub.add_parser("run", help="run the pipeline: sources -> faces -> MTL-GCN -> Redis Streams")
    add_common(p, detector=True, overrides=True)
    p.add_argument(
        "--source",
        action="append",
        metavar="[NAME=]URL",
        help="file, rtsp://, http(s)://, /dev/videoN (repeatable)",
    )
    p.add_argument("--workers", type=positive_int, help="worker processes (default: workers.count)")
    p.add_argument(
        "--fleet", action="store_true", help="join the camera fleet: claim cameras listed in Redis"
    )
    p.add_argument(
        "--member", metavar="ID", help="fleet member id (default: fleet.member, else {host}-{pid})"
    )
    p.add_argument("--duration", type=float, help="stop (draining) after this many seconds")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", help="run the whole pipeline on a bundled clip and print a summary")
    add_common(p, detector=True, overrides=True)
    p.add_argument(
        "--source",
        action="append",
        metavar="[NAME=]PATH_OR_URL",
        help="use this instead of the bundled clip (as do sources from -c or --set sources=...)",
    )
    p.add_argument("--duration", type=float, help="seconds to run a live source (default 10)")
    p.add_argument("--workdir", default="var/demo", help="where the clip is written")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "health", help="exit 1 when this host's workers (or, --all, the fleet's) are stale or missing"
    )
    add_common(p)
    p.add_argument("--stale-after", type=float, help="seconds (default: workers.stale_after_s)")
    p.add_argument(
        "--all",
        action="store_true",
        help="every worker of every host, and the fleet: stale members, unowned cameras",
    )
    p.set_defaults(handler=cmd_health)
