"""Subcommands `tail`, `render` and `dashboard` (the consumer side); logic lives in their modules."""

from __future__ import annotations

import argparse
import os
import sys

from affectstream.pipeline.cli.argtypes import det_size, positive_int
from affectstream.settings import env

REDIS_HELP = "Redis URL: redis[s]://, unix://, redis[s]+cluster://, redis[s]+sentinel://HOSTS/SERVICE (docs/deploy.md; default: $AFFECTSTREAM_REDIS_URL, else the embedded server)"


def positive_float(text: str) -> float:
    """Seconds above 0 (`--stale-after 0` is refused, not silently the default)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not allowed; a number of seconds above 0")
    return value


def percent(text: str) -> float:
    """A percentage, 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not allowed; 0 - 100 (percent)")
    return value


def _redis(url: str | None):
    """(url, client) for `url`, the environment's URL, or the embedded server under var/redis."""
    from affectstream.pipeline.streams.connection import redis_session

    return redis_session(url or os.environ.get(env.REDIS_URL))


def _duration(text: str):
    from affectstream.pipeline.errors import AffectstreamError
    from affectstream.pipeline.streams.since import parse_duration

    try:
        return parse_duration(text)
    except AffectstreamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time(text: str):
    from affectstream.pipeline.errors import AffectstreamError
    from affectstream.pipeline.streams.since import parse_time

    try:
        return parse_time(text)
    except AffectstreamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_tail(args: argparse.Namespace) -> int:
    from affectstream.pipeline.consumers.tail import tail

    with _redis(args.redis) as (_url, client):
        try:
            start = args.since if args.since is not None else args.from_time
            tail(
                client,
                args.sources,
                n=args.n,
                follow=args.follow,
                as_json=args.json,
                out=sys.stdout,
                start=start,
            )
        except BrokenPipeError:  # `affectstream tail ... | head`
            sys.stderr.close()
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from affectstream.pipeline.errors import EXTRAS, require

    # decoding the video; detecting and scoring too unless an existing results stream is drawn
    require("av", *(() if args.redis or args.source else EXTRAS["worker"]))
    if args.plots is not None:
        require("matplotlib")  # before the video is processed, not after
    from affectstream.pipeline.consumers.render import render_from_stream, render_live

    if args.redis or args.source:
        from affectstream.pipeline.sources.spec import source_name_from_url

        source = args.source or source_name_from_url(args.video)
        with _redis(args.redis) as (_url, client):
            stats = render_from_stream(args.video, args.output, client, source, plots_dir=args.plots)
    else:
        from affectstream.pipeline.frames.build import build_processor, per_core

        model = args.model or os.environ.get(env.MODEL)
        processor = build_processor(
            detector=args.detector,
            engine=args.engine,
            model=model,
            detect_every=args.detect_every,
            det_size=args.det_size,
            detectors=per_core(),
        )
        stats = render_live(args.video, args.output, processor, plots_dir=args.plots)
    print(
        f"wrote {args.output}: {stats.frames} frames, {stats.faces} faces, {stats.tracks} tracks "
        f"in {stats.seconds:.1f} s ({stats.frames / max(stats.seconds, 1e-9):.1f} frames/s)"
    )
    if stats.missing:
        print(f"warning: {stats.missing} frames had no result in the stream", file=sys.stderr)
    for path in stats.plots:
        print(f"plot {path}")
    if args.plots is not None and not stats.plots:
        print("no track long enough to plot", file=sys.stderr)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from affectstream.pipeline.consumers.dashboard.app import check_bind, serve

    token = args.token or os.environ.get(env.DASHBOARD_TOKEN) or None
    check_bind(args.host, token)  # before starting anything
    with _redis(args.redis) as (url, _client):
        serve(
            url,
            host=args.host,
            port=args.port,
            token=token,
            stale_s=args.stale_after,
            forget_after_s=args.forget_after,
            drop_warning=args.drop_warning / 100,
        )
    return 0


def register(subparsers) -> None:
    """Add `tail`, `render` and `dashboard` to the `affectstream` command."""
    p = subparsers.add_parser("tail", help="print the newest result entries of sources (globs allowed)")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="source name or glob, e.g. 'cam-*'")
    p.add_argument("-n", type=int, default=10, help="entries to show first (default 10)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--since",
        type=_duration,
        metavar="AGO",
        help="every entry from this long ago on (Redis's clock), e.g. 90s, 10m, 1h30m; instead of -n",
    )
    when.add_argument(
        "--from",
        dest="from_time",
        type=_time,
        metavar="TIME",
        help="every entry from this time on, e.g. 2026-12-07T16:00:00 (local) or unix seconds; instead of -n",
    )
    p.add_argument("--redis", metavar="URL", help=REDIS_HELP)
    p.set_defaults(handler=cmd_tail)

    p = subparsers.add_parser("render", help="annotated MP4 of a video (and per-track plots)")
    p.add_argument("video", help="input video file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="annotated MP4 to write")
    p.add_argument("--plots", metavar="DIR", help="write per-track PNG plots into DIR")
    p.add_argument("--redis", metavar="URL", help="draw an existing results stream from this Redis")
    p.add_argument("--source", metavar="NAME", help="results stream to draw (default: named after the video)")
    p.add_argument(
        "--detector",
        metavar="PATH",
        help="SCRFD ONNX path or pack, or blazeface_full_range (Apache-2.0 weights) "
        "(default: $AFFECTSTREAM_DETECTOR)",
    )
    p.add_argument("--engine", default="onnxruntime", help="engine backend (default onnxruntime)")
    p.add_argument("--model", help="model file (default: the shipped model or $AFFECTSTREAM_MODEL)")
    p.add_argument(
        "--detect-every", type=positive_int, default=1, metavar="N", help="run the detector every Nth frame"
    )
    p.add_argument(
        "--det-size",
        type=det_size,
        default=(640, 640),
        metavar="WxH",
        help="detector input size, multiples of 32, or auto (default 640x640)",
    )
    p.set_defaults(handler=cmd_render)

    p = subparsers.add_parser("dashboard", help="live web dashboard of the result streams")
    p.add_argument("--redis", metavar="URL", help=REDIS_HELP)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)"
    )
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--token", help="require this token (?token=..., or $AFFECTSTREAM_DASHBOARD_TOKEN)")
    p.add_argument(
        "--stale-after",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="a source with no news for S seconds is shown stale, greyed (default 10)",
    )
    p.add_argument(
        "--forget-after",
        type=positive_float,
        default=3600.0,
        metavar="S",
        help="a source with no news for S seconds is no longer shown (default 3600)",
    )
    p.add_argument(
        "--drop-warning",
        type=percent,
        default=5.0,
        metavar="PCT",
        help="flag a source that dropped more than PCT%% of its frames in the last minute (default 5)",
    )
    p.set_defaults(handler=cmd_dashboard)
