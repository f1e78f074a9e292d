"""`archive submit` input handling: files, folders, globs, name clashes; `archive status` with no jobs."""

from __future__ import annotations

import pytest

from affectstream.pipeline.archive.inputs import expand_paths
from affectstream.pipeline.errors import ConfigError
from tests.archive.conftest import cli


def test_expand_paths(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "deep").mkdir()
    for name in ("a/one.mp4", "a/deep/two.MOV", "a/readme.txt", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    got = expand_paths([str(tmp_path / "a"), str(tmp_path / "notes.txt"), str(tmp_path / "a" / "*.mp4")])
    # folder: videos only, recursively; an explicit file whatever it is; the glob's match counted once
    assert [p.name for p in got] == ["two.MOV", "one.mp4", "notes.txt"]
    with pytest.raises(ConfigError, match="no such file or folder"):
        expand_paths([str(tmp_path / "missing.mp4")])
    with pytest.raises(ConfigError, match="no video files"):
        expand_paths([str(tmp_path / "*.txt")])


def test_submit_refuses_two_videos_with_one_name_in_one_folder(redis_url, tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "clip.mp4").write_bytes(b"x")
    proc = cli(
        "archive",
        "submit",
        "--redis",
        redis_url,
        "--output",
        str(tmp_path / "out"),
        str(tmp_path / "x" / "clip.mp4"),
        str(tmp_path / "y" / "clip.mp4"),
    )
    assert proc.returncode == 2 and "would both write clip.txt" in proc.stderr
    status = cli("archive", "status", "--redis", redis_url)
    assert status.returncode == 0 and "no archive jobs" in status.stdout
    proc = cli(
        "archive",
        "submit",
        "--redis",
        redis_url,
        "--output",
        str(tmp_path / "out"),
        "--chunk",
        "10",
        "--detect-every",
        "3",
        str(tmp_path / "x" / "clip.mp4"),
    )
    assert proc.returncode == 2 and "chunk 10 must be a positive multiple of detect_every 3" in proc.stderr
