"""`python -m bench` / `affectstream bench`: run the benchmark and write bench/results/latest.{json,md};
`bench capacity`: the camera-capacity search (bench/capacity.py), written for `fleet.max_sources: auto`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from affectstream.engines.errors import EXIT_USAGE
from affectstream.pipeline.cli.argtypes import det_size, positive_int

RESULTS = Path(__file__).resolve().parent / "results"
SKIPPABLE = ("naive", "de3", "auto", "live", "archive", "publish")


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
    p.add_argument(
        "--live-streams",
        type=lambda t: tuple(int(x) for x in t.split(",")),
        help="concurrent stream counts of the live runs (default 1,2,4)",
    )
    p.add_argument(
        "--skip", action="append", choices=SKIPPABLE, default=[], help="leave a part out (repeatable)"
    )
    p.add_argument("-o", "--output", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    p.add_argument(
        "--workdir", default="var/bench", help="built clips and the embedded Redis (default var/bench)"
    )


def _quick(args: argparse.Namespace) -> bool:
    return args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")


def settings_from_args(args: argparse.Namespace):
    from bench.run import QUICK, Settings

    quick = _quick(args)
    values = dict(QUICK) if quick else {}
    for name, key in (
        ("runs", "runs"),
        ("det_size", "det_size"),
        ("model", "model"),
        ("detector", "detector"),
        ("live_seconds", "live_seconds"),
        ("live_streams", "live_streams"),
    ):
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


def add_capacity_arguments(p: argparse.ArgumentParser) -> None:
    from affectstream.pipeline.fleet.capacity import DEFAULT_FILE

    p.add_argument(
        "--quick",
        action="store_true",
        help="1-2 cameras, 4 s runs, one run each: a smoke test (also: BENCH_QUICK=1)",
    )
    p.add_argument("--runs", type=positive_int, help="runs per camera count, medians judged (default 2)")
    p.add_argument("--seconds", type=float, help="length of each run (default 15)")
    p.add_argument("--max-cameras", type=positive_int, help="stop the search here (default 16)")
    p.add_argument(
        "--resolution",
        type=_resolution,
        metavar="WxH",
        help="search this camera resolution only (default: 640x360, then 1920x1080)",
    )
    p.add_argument("--input-size", type=det_size, help="detector.live.input_size (default: the config's)")
    p.add_argument(
        "--detect-every", type=positive_int, help="detector.live.detect_every (default: the config's)"
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="the live defaults before issue 13: 640x640, detect every frame",
    )
    p.add_argument(
        "--coverage",
        action="store_true",
        help="also measure face-frame coverage against detecting every frame at 640x640",
    )
    p.add_argument(
        "--coverage-sweep",
        type=lambda t: [positive_int(x) for x in t.split(",")],
        metavar="N,N,...",
        help="no search: coverage of each detect_every at the live input size (choosing defaults)",
    )
    p.add_argument(
        "--detector",
        help="SCRFD ONNX (default: $AFFECTSTREAM_DETECTOR, else ../shared/models/scrfd_500m.onnx)",
    )
    p.add_argument("--model", help="MTL-GCN ONNX (default: the shipped model the pipeline runs on CPU)")
    p.add_argument("--redis", metavar="URL", help="use this Redis instead of a private embedded redis-server")
    p.add_argument(
        "--write",
        type=Path,
        metavar="PATH",
        help=f"where fleet.max_sources: auto reads it (default $AFFECTSTREAM_CAPACITY_FILE, else {DEFAULT_FILE})",
    )
    p.add_argument("--no-write", action="store_true", help="print only; leave the capacity file as it is")
    p.add_argument("-o", "--output", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    p.add_argument(
        "--workdir", default="var/bench", help="built clips and the embedded Redis (default var/bench)"
    )


def _resolution(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 1920x1080)") from None
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be positive and even")
    return width, height


def capacity_settings_from_args(args: argparse.Namespace, resolution: tuple[int, int]):
    from bench.capacity import BASELINE, CapacitySettings

    live = dict(BASELINE) if args.baseline else {}
    if args.input_size is not None:
        live["input_size"] = args.input_size if isinstance(args.input_size, str) else list(args.input_size)
    if args.detect_every is not None:
        live["detect_every"] = args.detect_every
    values: dict = {"live": live or None, "coverage": args.coverage, "resolution": resolution}
    if _quick(args):
        values.update(seconds=4.0, runs=1, max_cameras=2)
    for name in ("runs", "seconds", "max_cameras"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return CapacitySettings(**values)


def cmd_capacity(args: argparse.Namespace) -> int:
    import logging

    from affectstream.pipeline.fleet.capacity import capacity_file, write_capacity
    from bench.capacity import run_capacity
    from bench.inputs import InputError
    from bench.report import capacity_markdown, write_capacity_results

    logging.getLogger("bench").setLevel(logging.INFO)
    if args.coverage_sweep:
        return _coverage_sweep(args)
    from bench.capacity import RESOLUTIONS

    results = []
    for resolution in [args.resolution] if args.resolution else RESOLUTIONS:
        try:
            res = run_capacity(
                capacity_settings_from_args(args, resolution),
                detector=args.detector,
                model=args.model,
                redis_url=args.redis or "",
                workdir=args.workdir,
            )
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        js = write_capacity_results(res, args.output)
        print(capacity_markdown(res))
        print(f"wrote {js}")
        results.append(res)
    # `fleet.max_sources: auto` reads one count: the first resolution's (640x360 unless --resolution).
    res = results[0]
    if _quick(args) and args.write is None:
        print(
            "quick: not written to the capacity file (it stops at 2 cameras); pass --write PATH to store it"
        )
    elif not args.no_write:
        path = args.write or capacity_file()
        write_capacity(
            path,
            res["capacity"],
            {k: res[k] for k in ("live", "targets", "rows", "settings", "cpu_bound_cameras")},
        )
        print(f"wrote {path}: fleet.max_sources: auto is {res['capacity']} camera(s) on this machine")
    return 0


def _coverage_sweep(args: argparse.Namespace) -> int:
    import json

    from bench.capacity import run_coverage_sweep
    from bench.report import coverage_markdown

    res = run_coverage_sweep(
        args.coverage_sweep,
        args.input_size,
        detector=args.detector,
        model=args.model,
        redis_url=args.redis or "",
        workdir=args.workdir,
    )
    args.output.mkdir(parents=True, exist_ok=True)
    js = args.output / "capacity_coverage.json"
    js.write_text(json.dumps(res, indent=2) + "\n")
    print(coverage_markdown(res))
    print(f"wrote {js}")
    return 0


def _add_parts(p: argparse.ArgumentParser) -> None:
    """`bench` runs the main benchmark; `bench capacity` the camera-capacity search."""
    add_arguments(p)
    p.set_defaults(handler=cmd_bench)
    parts = p.add_subparsers(dest="part", metavar="{capacity}")
    c = parts.add_parser("capacity", help="how many 640x360 30 fps cameras one member holds (docs/bench.md)")
    add_capacity_arguments(c)
    c.set_defaults(handler=cmd_capacity)


def register(subparsers) -> None:
    """Add `bench` (and `bench capacity`) to the `affectstream` command."""
    p = subparsers.add_parser("bench", help="benchmark stages, end to end, naive baseline and live latency")
    _add_parts(p)


def main(argv: list[str] | None = None) -> int:
    import logging

    from affectstream.pipeline.logs import setup_logging

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    _add_parts(parser)
    args = parser.parse_args(argv)
    setup_logging(logging.INFO)
    try:
        return args.handler(args)
    except Exception as exc:  # ModelFileError, RedisUnavailable, ...: one line, not a traceback
        from affectstream.engines.errors import EngineError
        from affectstream.pipeline.errors import AffectstreamError

        if isinstance(exc, (AffectstreamError, EngineError)):
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        raise
