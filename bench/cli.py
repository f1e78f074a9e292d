"""`python -m bench` / `affectstream bench`: run the benchmark and write bench/results/latest.{json,md}."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engines.errors import EXIT_USAGE
from pipeline.argtypes import det_size, positive_int

RESULTS = Path(__file__).resolve().parent / "results"
SKIPPABLE = ("naive", "de3", "auto", "live", "archive")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="the <3 minute variant (also: BENCH_QUICK=1)")
    p.add_argument("--runs", type=positive_int, help="repetitions (medians reported); default 3, quick 2")
    p.add_argument(
        "--det-size", type=det_size, help="detector input of the e2e/naive comparison (default 640x640)"
    )
    p.add_argument(
        "--model",
        help="MTL-GCN ONNX (default: the shipped model the pipeline runs on CPU, mtlgcn_ferplus_int8.onnx)",
    )
    p.add_argument(
        "--detector",
        help="SCRFD ONNX (default: $AFFECTSTREAM_DETECTOR, else ../shared/models/scrfd_500m.onnx)",
    )
    p.add_argument("--redis", metavar="URL", help="use this Redis instead of a private embedded redis-server")
    p.add_argument("--live-seconds", type=float, help="length of each live run (default 15, quick 8)")
    p.add_argument("--live-streams", type=lambda t: tuple(int(x) for x in t.split(",")),
                   help="concurrent stream counts of the live runs (default 1,2,4)")  # fmt: skip
    p.add_argument(
        "--skip", action="append", choices=SKIPPABLE, default=[], help="leave a part out (repeatable)"
    )
    p.add_argument("-o", "--output", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    p.add_argument(
        "--workdir", default="var/bench", help="built clips and the embedded Redis (default var/bench)"
    )


def settings_from_args(args: argparse.Namespace):
    from bench.run import QUICK, Settings

    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    values = dict(QUICK) if quick else {}
    for name, key in (("runs", "runs"), ("det_size", "det_size"), ("model", "model"), ("detector", "detector"),
                      ("live_seconds", "live_seconds"), ("live_streams", "live_streams")):  # fmt: skip
        if getattr(args, name, None) is not None:
            values[key] = getattr(args, name)
    return Settings(**values, redis_url=args.redis or "", workdir=args.workdir, skip=tuple(args.skip))


def cmd_bench(args: argparse.Namespace) -> int:
    import logging

    from bench.inputs import InputError
    from bench.report import markdown, write
    from bench.run import run_benchmark

    logging.getLogger("bench").setLevel(logging.INFO)
    try:
        res = run_benchmark(settings_from_args(args))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE  # a missing input file
    js, md = write(res, args.output)
    print(markdown(res))
    print(f"wrote {js} and {md}")
    return 0


def register(subparsers) -> None:
    """Add `bench` to the `affectstream` command."""
    p = subparsers.add_parser("bench", help="benchmark stages, end to end, naive baseline and live latency")
    add_arguments(p)
    p.set_defaults(handler=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    import logging

    from pipeline.logs import setup_logging

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(logging.INFO)
    try:
        return cmd_bench(args)
    except Exception as exc:  # ModelFileError, RedisUnavailable, ...: one line, not a traceback
        from engines.errors import EngineError
        from pipeline.errors import AffectstreamError

        if isinstance(exc, (AffectstreamError, EngineError)):
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        raise
