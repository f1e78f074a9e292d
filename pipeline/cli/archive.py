"""Subcommands `archive submit|work|status|retry|submission` and `evaluate-abaw` (parsing only; logic lives beside)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _with_redis(args: argparse.Namespace, body) -> int:
    """Run `body(client, cfg, url)` against the configured Redis (starting the embedded one if none)."""
    from affectstream.pipeline.cli.run import overrides_from_args
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.streams.connection import redis_session

    cfg = load_config(args.config, overrides_from_args(args))
    with redis_session(cfg.redis.url, cfg.redis.data_dir) as (url, client):
        return body(client, cfg, url)


def _square_size(size, what: str) -> int:
    """An archive job's detector size (one side): jobs take square sizes only."""
    from affectstream.pipeline.errors import ConfigError

    if isinstance(size, str) or size[0] != size[1]:
        raise ConfigError(
            f"{what}: {size!r} is not allowed for archive jobs; they take a square size such as 640"
        )
    return int(size[0])


def job_params(args: argparse.Namespace, cfg) -> dict:
    """The job parameters: the flags given; else, with `-c`, the config's detector and engine; else defaults."""
    from affectstream.pipeline.archive.params import JobParams

    chosen = {name: getattr(args, name) for name in ("subject", "smooth", "chunk", "fill", "fill_max_gap")}
    chosen |= {
        "detect_every": args.detect_every,
        "detector": args.detector,
        "model": args.model,
        "det_size": None if args.det_size is None else _square_size(args.det_size, "--det-size"),
    }
    if args.config:
        from_config = {
            "detect_every": cfg.detector.detect_every,
            "det_size": _square_size(cfg.detector.input_size, "detector.input_size"),
            "detector": cfg.detector.model,
            "model": cfg.engine.model,
        }
        chosen = {k: from_config[k] if v is None and k in from_config else v for k, v in chosen.items()}
    return JobParams(**{k: v for k, v in chosen.items() if v is not None}).to_dict()


def cmd_submit(args: argparse.Namespace) -> int:
    from affectstream.pipeline.archive.inputs import check_output_names, expand_paths
    from affectstream.pipeline.archive.jobs import submit

    paths = expand_paths(args.paths)

    def body(client, cfg, _url) -> int:
        params = job_params(args, cfg)
        check_output_names(client, paths, args.output)
        queued = 0
        for path in paths:
            result = submit(client, path, args.output, params, force=args.force)
            queued += result.queued
            print(f"{result.job_id}  {result.note:<10}  {result.path}")
        print(f"{queued} of {len(paths)} video(s) queued")
        return 0

    return _with_redis(args, body)


def cmd_work(args: argparse.Namespace) -> int:
    from affectstream.pipeline.archive.worker import WorkerOptions, work
    from affectstream.pipeline.errors import EXTRAS, require

    require(*EXTRAS["worker"])  # here, not in each job's process

    def body(_client, cfg, url) -> int:
        opts = WorkerOptions(
            redis_url=url,
            detector=cfg.detector.model,
            engine=cfg.engine.backend,
            threads=args.threads or cfg.engine.threads,
            idle_timeout_s=args.idle_timeout,
            max_attempts=args.max_attempts,
            until_empty=args.until_empty,
            restart_backoff_s=cfg.workers.restart_backoff_s,
        )
        return work(opts, args.jobs)

    return _with_redis(args, body)


def cmd_status(args: argparse.Namespace) -> int:
    from affectstream.pipeline.archive.jobs import list_jobs
    from affectstream.pipeline.archive.status import format_status

    def body(client, _cfg, _url) -> int:
        rows = list_jobs(client)
        print(json.dumps(rows, indent=1) if args.json else format_status(rows))
        return 0

    return _with_redis(args, body)


def cmd_retry(args: argparse.Namespace) -> int:
    from affectstream.pipeline.archive.jobs import retry

    def body(client, _cfg, _url) -> int:
        ids = retry(client, args.job_ids or None)
        print(f"{len(ids)} failed job(s) queued again" + (f": {' '.join(ids)}" if ids else ""))
        return 0

    return _with_redis(args, body)


def cmd_submission(args: argparse.Namespace) -> int:
    from affectstream.pipeline.archive.submission import write_submission

    for kind, path in write_submission(args.results, args.output).items():
        print(f"{kind}: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from affectstream.pipeline.archive.evaluate import evaluate, format_report

    report = evaluate(args.pred, args.annotations)  # bad files raise errors the main CLI prints (exit 2)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def register(sub) -> None:
    """Add `archive` (submit, work, status, retry, submission) and `evaluate-abaw` to the main CLI."""
    from affectstream.pipeline.archive.fill import DEFAULT_FILL, DEFAULT_MAX_GAP, FILLS
    from affectstream.pipeline.archive.subject import POLICIES
    from affectstream.pipeline.cli.argtypes import det_size, positive_int
    from affectstream.pipeline.cli.run import add_common

    archive = sub.add_parser("archive", help="reprocess video archives: a Redis job queue, Aff-Wild2 files")
    asub = archive.add_subparsers(dest="archive_command", required=True, metavar="ACTION")

    p = asub.add_parser(
        "submit",
        help="queue one job per video (files, folders, globs)",
        description="Job parameters not given here come from the -c config's detector and "
        "engine sections, else from the defaults shown.",
    )
    add_common(p, detector=True, overrides=True)
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="video file, folder (searched recursively) or glob"
    )
    p.add_argument(
        "-o", "--output", required=True, help="folder for VA/, EXPR/ and summary/ (reachable by the workers)"
    )
    p.add_argument(
        "--force", action="store_true", help="queue videos already done or failed again, from scratch"
    )
    p.add_argument(
        "--detect-every", type=positive_int, metavar="N", help="detector on every Nth frame (default 1)"
    )
    p.add_argument(
        "--det-size",
        type=det_size,
        metavar="WxH",
        help="detector input, square: 640x640 or 640 (default 640x640)",
    )
    p.add_argument("--model", help="emotion model .onnx (default: the shipped one)")
    p.add_argument("--subject", choices=POLICIES, default="largest-track", help="which face is the subject")
    p.add_argument(
        "--smooth", type=int, default=0, metavar="FRAMES", help="centred per-track smoothing window (0 = off)"
    )
    p.add_argument(
        "--fill",
        choices=FILLS,
        default=DEFAULT_FILL,
        help=f"prediction for frames without the subject's face (default {DEFAULT_FILL})",
    )
    p.add_argument(
        "--fill-max-gap",
        type=int,
        default=DEFAULT_MAX_GAP,
        metavar="FRAMES",
        help="frames farther than this from a prediction get the video mean (default 0: no limit)",
    )
    p.add_argument(
        "--chunk", type=int, default=64, metavar="FRAMES", help="frames per durable commit (default 64)"
    )
    p.set_defaults(handler=cmd_submit)

    p = asub.add_parser("work", help="process queued jobs with N worker processes")
    add_common(p, detector=True, overrides=True)
    p.add_argument(
        "-j", "--jobs", type=positive_int, default=1, metavar="N", help="worker processes (default 1)"
    )
    p.add_argument("--until-empty", action="store_true", help="exit 0 once no job is queued or running")
    p.add_argument("--threads", type=int, default=0, help="inference threads per process (default cores / N)")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="take over jobs silent this long (default 60)",
    )
    p.add_argument(
        "--max-attempts", type=int, default=3, help="claims of one job before it is failed (default 3)"
    )
    p.set_defaults(handler=cmd_work)

    p = asub.add_parser("status", help="per-job progress and totals")
    add_common(p)
    p.add_argument("--json", action="store_true", help="print the job records as JSON")
    p.set_defaults(handler=cmd_status)

    p = asub.add_parser("retry", help="queue failed jobs again (all, or the given ids)")
    add_common(p)
    p.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    p.set_defaults(handler=cmd_retry)

    p = asub.add_parser(
        "submission", help="the ABAW submission files (one per task) from an archive output folder"
    )
    p.add_argument("--results", required=True, metavar="DIR", help="the `archive submit --output` folder")
    p.add_argument(
        "-o",
        "--output",
        "--dest",
        required=True,
        metavar="DIR",
        help="folder for VA.txt and EXPR.txt (outside --results)",
    )
    p.set_defaults(handler=cmd_submission)

    p = sub.add_parser("evaluate-abaw", help="ABAW scores (CCC, macro-F1) of Aff-Wild2-format predictions")
    p.add_argument(
        "--pred",
        required=True,
        help="predictions folder: an `archive submit --output` folder, or submission files",
    )
    p.add_argument("--annotations", required=True, help="annotation folder (VA and/or EXPR .txt files)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON instead of the table")
    p.add_argument("-o", "--output", metavar="PATH", help="also write the full report (JSON) here")
    p.set_defaults(handler=cmd_evaluate)
