"""The `sources:` list of a config: shorthand URLs, folders and globs, names, and the checks of the list.

A config (or `run FILE...`, or `cameras import`) lists sources as URLs or `{name, url, ...}` mappings. A
local folder (recursively) or glob expands to one source per video file in it (sorted, `VIDEO_SUFFIXES`),
named after the file; an explicit name is checked (`keys.check_name`), never sanitised. After validation, no two
sources may share a name (they would write one stream) and every file source must be a video file.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.sources.spec import VIDEO_SUFFIXES, SourceSpec, source_name_from_url
from affectstream.pipeline.streams.keys import check_name, frames_key, safe_name


def check_sources(sources: tuple[SourceSpec, ...]) -> None:
    """The checks of a validated list (`ValueError`, raised inside the config's validation)."""
    _check_one_per_key(sources)
    for i, spec in enumerate(sources):
        if spec.kind == "file":
            _check_video_file(i, spec.url.removeprefix("file://"))


def _check_one_per_key(sources: tuple[SourceSpec, ...]) -> None:
    """Two sources of one name would write one stream (e.g. two files whose names sanitise alike)."""
    seen: dict[str, SourceSpec] = {}
    for spec in sources:
        other = seen.setdefault(spec.name, spec)
        if other is not spec:
            raise ValueError(
                f"sources: {other.safe_url!r} and {spec.safe_url!r} are both named {spec.name!r}, so both would "
                f"write {frames_key(spec.name)}; give each source a unique `name`"
            )


def _check_video_file(i: int, url: str) -> None:
    """A file source must exist and look like a video (as `archive` refuses other files)."""
    path = Path(url).expanduser()
    if not path.is_file():
        raise ValueError(f"sources[{i}].url: {url!r} does not exist or is not a file")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(
            f"sources[{i}].url: {url!r} is not a video file (allowed: {', '.join(VIDEO_SUFFIXES)})"
        )


def parse_sources(raw: Any) -> list[dict]:
    """The `sources:` list as mappings with a name each, folders and globs expanded."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("sources: expected a list of {name, url, ...} mappings")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, str):  # shorthand: just a URL or path
            item = {"url": item}
        if not isinstance(item, dict) or not item.get("url"):
            raise ConfigError(f"sources[{i}]: expected a mapping with at least `url`")
        item = dict(item)
        if item.get("name") is not None:  # an explicit name is checked, never sanitised
            item["name"] = _explicit_name(item["name"], f"sources[{i}].name")
        files = expand_local(str(item["url"]))
        if files is None:
            item.setdefault("name", source_name_from_url(str(item["url"])))
            out.append(item)
            continue
        if not files:
            raise ConfigError(
                f"sources[{i}].url: {item['url']!r} matches no video file ({', '.join(VIDEO_SUFFIXES)})"
            )
        prefix = item.pop("name", None)
        for path in files:  # a folder or glob: one source per file
            name = source_name_from_url(str(path))
            name = safe_name(f"{prefix}-{name}") if prefix else name
            out.append({**item, "url": str(path), "name": name})
    return out


def _explicit_name(name: Any, path: str) -> str:
    try:
        return check_name(str(name))
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def expand_local(url: str) -> list[Path] | None:
    """The video files (by suffix) of a local folder, recursively, or of a glob pattern (a matched folder
    recursively too), sorted and each once; None when `url` is no folder or pattern (a URL, a device, a
    single file): the one expansion of `sources:` entries, `run FILE...` and `archive submit`."""
    if "://" in url or url.startswith("/dev/"):
        return None
    path = Path(url).expanduser()
    if path.is_dir():
        roots = [path]
    elif glob.has_magic(url):
        roots = [Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
    else:
        return None
    found: dict[str, Path] = {}
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            if f.suffix.lower() in VIDEO_SUFFIXES:
                found.setdefault(os.path.realpath(f), f)
    return list(found.values())
