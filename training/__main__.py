"""``python -m training {train,evaluate,export}``: the training CLI without the pipeline installed."""

from __future__ import annotations

import argparse
import sys

from affectstream.training.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
