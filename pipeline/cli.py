"""The `affectstream` command: parses arguments and calls library code (no logic lives here)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipeline.errors import AffectstreamError

# Areas that add their own subcommands through `register(subparsers)`.
_AREAS = (
    "pipeline.run_cli",
    "pipeline.sources.cli",
    "pipeline.consumer_cli",
    "pipeline.archive.cli",
    "engines.cli",
    "training.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affectstream", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # area not installed (bench/ ships only in the repo)
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engines.errors import EngineError
    from pipeline.logs import setup_logging
    from pipeline.masking import mask_text

    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.handler(args) or 0)
    except (AffectstreamError, EngineError) as exc:
        print(f"error: {mask_text(str(exc))}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
