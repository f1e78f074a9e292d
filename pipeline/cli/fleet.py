"""Subcommands `cameras add|rm|ls|import` and `fleet status`: the fleet's cameras and what it does.

None of them starts the embedded Redis: they edit or read what the members share, so they talk to the
Redis given by `--redis`, `$AFFECTSTREAM_REDIS_URL` or the config, else to an embedded server that is
already running (`redis_conn.connect_existing`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from affectstream.pipeline.cli.run import add_common
from affectstream.pipeline.streams.keys import KEY_SAFE_RULE
from affectstream.settings.overrides import add_set_option, nested

_NOT_CAMERAS = {"file": "a file (read by `affectstream run` or `archive submit`)", "device": "a local device"}


def _client(args: argparse.Namespace):
    """A client for the configured Redis. The config is validated without its `sources:`, whose `${ENV}`
    references are the members' to resolve and need not be set where the operator types."""
    from affectstream.pipeline.config import load_config, read_config_file
    from affectstream.pipeline.streams.connection import connect_existing

    raw = read_config_file(args.config) if args.config else {}
    raw.pop("sources", None)
    if args.redis:
        section = raw.get("redis")
        raw["redis"] = {**section, "url": args.redis} if isinstance(section, dict) else {"url": args.redis}
    redis_cfg = load_config(None, raw).redis
    return connect_existing(redis_cfg.url, redis_cfg.data_dir)


def cameras_from_sources(sources: Any, where: str) -> tuple[list, list[str]]:
    """(cameras to store, one line per source refused) from a config's raw `sources:`, URLs as written.

    Files, folders and devices are refused: a fleet camera may be claimed by any member, on any host.

    Raises:
        ConfigError: A malformed entry, a bad option or two sources of one name (nothing is stored then).
    """
    from affectstream.pipeline.errors import ConfigError
    from affectstream.pipeline.fleet.cameras import check_camera
    from affectstream.pipeline.sources.entries import expand_local
    from affectstream.pipeline.sources.spec import kind_from_url, source_name_from_url

    if not isinstance(sources, list):
        raise ConfigError(f"{where}: sources: expected a list of {{name, url, ...}} mappings")
    cameras, refused, seen = [], [], set()
    for i, item in enumerate(sources):
        at = f"{where}: sources[{i}]"
        options = {"url": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else {}
        if not options.get("url"):
            raise ConfigError(f"{at}: expected a mapping with at least `url`")
        url = str(options.pop("url"))
        name = str(options.pop("name", None) or source_name_from_url(url))
        live = options.pop("live", None)
        try:
            kind = "file" if expand_local(url) else kind_from_url(url) if "${" not in url else "live"
            if kind in _NOT_CAMERAS or live is False:
                refused.append(f"{at} {name}: {_NOT_CAMERAS.get(kind, 'live: false')}, not a camera")
                continue
            if name in seen:
                raise ConfigError(f"two sources are named {name!r}")
            seen.add(name)
            cameras.append(check_camera(name, url, options))
        except ConfigError as exc:
            raise ConfigError(f"{at}: {exc}") from None
    return cameras, refused


def cmd_add(args: argparse.Namespace) -> int:
    from affectstream.pipeline.fleet.cameras import add_camera, check_camera

    camera = check_camera(args.name, args.url, nested(args.set))  # ConfigError: exit 2, nothing stored
    client = _client(args)
    try:
        new = add_camera(client, camera)
    finally:
        client.close()
    print(f"{'added' if new else 'replaced'} camera {camera.name}: {camera.safe_url}")
    if camera.safe_url != camera.url:
        print(
            "note: the URL's credentials are stored in Redis; write them as ${VAR}, set on every member, "
            "to keep them out of it",
            file=sys.stderr,
        )
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from affectstream.pipeline.fleet.cameras import remove_camera
    from affectstream.pipeline.fleet.fences import clear_dead_fence
    from affectstream.pipeline.fleet.view import read_members_info

    client = _client(args)
    try:
        removed = remove_camera(client, args.name)
        if removed:
            live = {str(f.get("worker")) for f in read_members_info(client).values()}
            clear_dead_fence(client, args.name, live)
    finally:
        client.close()
    if not removed:
        print(f"error: camera {args.name} is not in the fleet (`affectstream cameras ls`)", file=sys.stderr)
        return 1
    print(f"removed camera {args.name}: its owner stops it within a claim round")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from affectstream.pipeline.fleet.status import (
        camera_rows,
        format_camera_list,
        read_members,
        unreadable_cameras,
    )

    client = _client(args)
    try:
        now_ms, members, _bad = read_members(client)
        rows = [r for r in camera_rows(client, now_ms, members) if r["desired"]]
        bad = unreadable_cameras(client)
    finally:
        client.close()
    keep = ("name", "url", "options", "owner", "worker", "lease_age_s")
    if args.json:
        print(json.dumps({"cameras": [{k: r[k] for k in keep} for r in rows], "unreadable": bad}, indent=1))
    else:
        print(format_camera_list(rows))
    if bad and not args.json:
        print(f"unreadable entries (skipped by members): {', '.join(bad)}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from affectstream.pipeline.config import read_config_file
    from affectstream.pipeline.errors import ConfigError
    from affectstream.pipeline.fleet.cameras import add_cameras

    if not args.config:
        raise ConfigError("cameras import: give the config whose `sources:` to import with -c CONFIG")
    cameras, refused = cameras_from_sources(read_config_file(args.config).get("sources") or [], args.config)
    for line in refused:
        print(f"refused {line}", file=sys.stderr)
    if not cameras:
        raise ConfigError(f"{args.config}: no live source to import")
    client = _client(args)
    try:
        new = add_cameras(client, cameras)  # all or nothing: one script
    finally:
        client.close()
    print(f"imported {len(cameras)} camera(s) from {args.config}: {new} new, {len(cameras) - new} replaced")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from affectstream.pipeline.fleet.status import fleet_status, format_status

    client = _client(args)
    try:
        status = fleet_status(client)
    finally:
        client.close()
    print(json.dumps(status, indent=1) if args.json else format_status(status))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from affectstream.pipeline.fleet.cameras import migrate_v1

    client = _client(args)
    try:
        moved = migrate_v1(client)
    finally:
        client.close()
    print(
        f"moved {moved} camera(s) from the fleet schema 1 list to schema 2" if moved else "nothing to migrate"
    )
    return 0


def register(sub) -> None:
    cameras = sub.add_parser("cameras", help="the fleet's cameras in Redis: add, rm, ls, import")
    csub = cameras.add_subparsers(dest="cameras_command", required=True, metavar="ACTION")

    p = csub.add_parser("add", help="add a camera (or replace one of the same name); members pick it up")
    add_common(p)
    p.add_argument("name", metavar="NAME", help=f"camera name: {KEY_SAFE_RULE}")
    p.add_argument(
        "url", metavar="URL", help="rtsp://, http(s)://; credentials may be ${VAR}, resolved on each member"
    )
    add_set_option(p, "a source option, e.g. rtsp_transport=udp or timeout_s=3")
    p.set_defaults(handler=cmd_add)

    p = csub.add_parser("rm", help="remove a camera (exit 1 when it is not there); its owner stops it")
    add_common(p)
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=cmd_rm)

    p = csub.add_parser("ls", help="the cameras, URLs masked, with owner and lease age")
    add_common(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_ls)

    p = csub.add_parser("import", help="add the live sources of a config (-c CONFIG); files are refused")
    add_common(p)
    p.set_defaults(handler=cmd_import)

    fleet = sub.add_parser("fleet", help="the camera fleet: members and who holds which camera")
    fsub = fleet.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    p = fsub.add_parser(
        "status", help="members (host, cameras, capacity, last beat) and cameras (owner, fps, drops)"
    )
    add_common(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=cmd_status)
    p = fsub.add_parser(
        "migrate",
        help="move the camera list of fleet schema 1 (affect:fleet:cameras) to schema 2 (docs/fleet.md)",
    )
    add_common(p)
    p.set_defaults(handler=cmd_migrate)
