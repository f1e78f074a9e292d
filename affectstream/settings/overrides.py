"""`--set KEY=VALUE`, as `run`, `demo`, `archive submit|work` and `train` take it: one parser for all.

The value is read as YAML, so `--set engine.threads=2` gives an int, `--set smoothing.enabled=true` a
bool, `--set detector.input_size=[320,320]` a list, and `--set export.model_id=x` a string.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

import yaml


def parse_set(text: str) -> tuple[str, Any]:
    """`"a.b=1"` -> `("a.b", 1)`; an argparse `type`, so a malformed pair is a usage error (exit 2)."""
    key, sep, raw = text.partition("=")
    if not sep or not all(key.split(".")):
        raise argparse.ArgumentTypeError(
            f"expects KEY=VALUE with a dotted key (e.g. engine.threads=2), got {text!r}"
        )
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value is not YAML ({exc.__class__.__name__})"
        ) from None


def nested(pairs: Iterable[tuple[str, Any]]) -> dict:
    """`[("a.b", 1), ("a.c", 2)]` -> `{"a": {"b": 1, "c": 2}}`; a later pair wins."""
    out: dict = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return out


def add_set_option(parser: argparse.ArgumentParser, what: str = "a config key") -> None:
    """`--set KEY=VALUE` (repeatable) on `parser`; `args.set` is a list of (dotted key, value)."""
    parser.add_argument(
        "--set",
        action="append",
        type=parse_set,
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what}, value read as YAML (repeatable)",
    )


def merge(base: dict, over: dict) -> dict:
    """`over` laid over `base`, mapping by mapping (a file's settings, then the command line's)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
