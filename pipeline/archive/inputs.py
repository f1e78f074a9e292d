"""What `archive submit` is given: files, folders and globs to the videos to queue, and output name clashes.

A file named explicitly is queued whatever its suffix (if it is no video, its job fails and says so);
folders and globs expand as every source list does (`pipeline.sources.entries.expand_local`). Output files
are named after the video, so two videos of one name must not share an output folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from affectstream.pipeline.archive.jobs import job_id_for, list_jobs
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.sources.entries import expand_local
from affectstream.pipeline.sources.spec import VIDEO_SUFFIXES


def expand_paths(items: list[str]) -> list[Path]:
    """The videos to queue for `items` (files, folders, globs), each once, in the order given.

    Raises:
        ConfigError: An item does not exist, or a folder or glob holds no video file.
    """
    found: dict[str, Path] = {}
    for item in items:
        path = Path(item)
        if path.is_file():
            videos = [path]
        else:
            expanded = expand_local(item)
            if expanded is None:
                raise ConfigError(f"{item}: no such file or folder")
            if not expanded:
                raise ConfigError(f"{item}: no video files in it (looked for {', '.join(VIDEO_SUFFIXES)})")
            videos = expanded
        for video in videos:
            found.setdefault(os.path.realpath(video), video)
    return list(found.values())


def check_output_names(client, paths: list[Path], out: str) -> None:
    """Output files are named after the video: two videos with one name must not share an output folder."""
    taken = {
        Path(j["path"]).stem: j["path"] for j in list_jobs(client) if j.get("out") == os.path.realpath(out)
    }
    seen: dict[str, str] = {}
    for path in paths:
        real = os.path.realpath(path)
        other = seen.get(path.stem) or taken.get(path.stem)
        if other and job_id_for(other) != job_id_for(real):
            raise ConfigError(
                f"{real} and {other} would both write {path.stem}.txt under {out}; "
                "submit them with different --output folders (or rename one)"
            )
        seen[path.stem] = real
