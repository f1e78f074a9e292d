"""The `affectstream` command: parses arguments and calls library code (no logic lives here)."""

from __future__ import annotations

import argparse
import importlib
import sys

import affectstream
from affectstream.engines.errors import EngineError
from affectstream.pipeline.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STATUSES,
    EXIT_UNAVAILABLE,
    AffectstreamError,
    extra_for,
)
from affectstream.pipeline.logs import FORMATS, LEVELS, logging_env, setup_logging
from affectstream.pipeline.masking import mask_text
from affectstream.scoring.errors import ScoringError
from affectstream.settings import env

DESCRIPTION = (
    "Facial expression and valence-arousal of faces in cameras and video archives, to Redis Streams."
)

# Areas that add their own subcommands through `register(subparsers)`.
_AREAS = (
    "affectstream.pipeline.cli.run",
    "affectstream.pipeline.cli.fleet",
    "affectstream.pipeline.cli.probe",
    "affectstream.pipeline.cli.consumers",
    "affectstream.pipeline.cli.bridge",
    "affectstream.pipeline.cli.archive",
    "affectstream.pipeline.cli.config",
    "affectstream.pipeline.cli.engines",
    "affectstream.training.cli",
    "bench.cli",
)


def _add_logging_options(parser: argparse.ArgumentParser, default) -> None:
    """`--log-level`, `--log-format` and `-v`, on the top level and on every verb.

    A verb's copies default to SUPPRESS so that they do not overwrite what was given before the verb.
    """
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level", choices=LEVELS, default=default, help=f"default: ${env.LOG_LEVEL}, else info"
    )
    group.add_argument(
        "--log-format",
        choices=FORMATS,
        default=default,
        help=f"text, or one JSON object per line (default: ${env.LOG_FORMAT}, else text)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const="debug",
        default=default,
        help="same as --log-level debug",
    )


def _verbs(parser: argparse.ArgumentParser):
    """The parsers under `parser` that have no subcommands of their own (`run`, `archive submit`, ...)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs or not subs[0].required:  # a verb that also runs alone (`bench`, `bench capacity`)
        yield parser
    if not subs:
        return
    for child in dict.fromkeys(subs[0].choices.values()):  # aliases map to the same parser
        yield from _verbs(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affectstream", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {affectstream.version()}")
    _add_logging_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # area not installed (bench/ ships only in the repo)
                continue
            raise
        module.register(sub)
    for verb in _verbs(parser):
        _add_logging_options(verb, argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; the exit status is one of `pipeline.errors.EXIT_STATUSES` (README "Exit status")."""
    args = build_parser().parse_args(argv)  # usage errors: argparse exits 2
    try:
        # The logging choice goes into the environment, where this process and its workers read it.
        with logging_env(args.log_level, args.log_format):
            setup_logging()
            code = int(args.handler(args) or 0)
    except (AffectstreamError, EngineError, ScoringError) as exc:
        print(f"error: {mask_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        extra = extra_for(exc.name)
        if extra is None:
            raise  # one of our own modules: a bug, keep the traceback
        print(
            f"error: `affectstream {args.command}` needs {exc.name}: pip install 'affectstream[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code if code in EXIT_STATUSES else EXIT_FAILED  # a worker's internal status stays inside


if __name__ == "__main__":
    sys.exit(main())
