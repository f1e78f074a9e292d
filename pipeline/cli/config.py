"""`affectstream config check|show|schema`: validate a pipeline config, print it resolved, print its schema."""

from __future__ import annotations

import argparse
import json

from affectstream.settings.overrides import add_set_option, nested


def _load(args: argparse.Namespace):
    from affectstream.pipeline.config import load_config

    return load_config(args.file, nested(args.set))  # a bad file raises ConfigError: exit 2 with the key path


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    print(f"{args.file}: ok ({len(cfg.sources)} source(s), engine {cfg.engine.backend})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import yaml

    from affectstream.pipeline.config import resolved

    data = resolved(_load(args))
    print(json.dumps(data, indent=2) if args.json else yaml.safe_dump(data, sort_keys=False).rstrip())
    return 0


def cmd_schema(_args: argparse.Namespace) -> int:
    from affectstream.pipeline.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def register(subparsers) -> None:
    """Add `config` (check, show, schema) to the main CLI."""
    config = subparsers.add_parser(
        "config", help="check a pipeline config, show it resolved, print its JSON Schema"
    )
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    p = csub.add_parser(
        "check", help="validate a config (exit 0, or 2 with the key path and the allowed values)"
    )
    p.add_argument("file", metavar="FILE", help="pipeline YAML")
    add_set_option(p)
    p.set_defaults(handler=cmd_check)

    p = csub.add_parser(
        "show", help="the config as a run would use it: defaults, file, --set, ${ENV}; secrets masked"
    )
    p.add_argument(
        "file", metavar="FILE", nargs="?", help="pipeline YAML (default: the packaged defaults alone)"
    )
    add_set_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(handler=cmd_show)

    p = csub.add_parser("schema", help="JSON Schema of the pipeline config")
    p.set_defaults(handler=cmd_schema)
