"""The wheel: one import name. Built from this checkout, installed outside it, `affectstream` imports and its
command runs with the packaged defaults and example configs; none of the old generic top-level names
(`pipeline`, `engines`, `training`, `scoring`, `settings`) is importable from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

OLD_NAMES = ("pipeline", "engines", "training", "scoring", "settings")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout, installed (without its dependencies: the test's own serve) into a folder."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (out / "dist").glob("affectstream-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(out / "site"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _python(installed: Path, *args: str) -> subprocess.CompletedProcess:
    """Python outside the repository, seeing the installed wheel first (then the test's dependencies)."""
    env = {**os.environ, "PYTHONPATH": str(installed / "site")}
    return subprocess.run(
        [sys.executable, *args], cwd=installed, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_holds_one_top_level_package_with_its_data(installed):
    (wheel,) = (installed / "dist").glob("affectstream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"affectstream", wheel.name.split("-py3")[0] + ".dist-info"}
    for data in (
        "affectstream/pipeline/streams/schema/frame_entry.schema.json",
        "affectstream/pipeline/consumers/dashboard/static/index.html",
        "affectstream/configs/pipeline/demo.yaml",
        "affectstream/configs/graph/label_embeddings.json",
    ):
        assert data in names, data
    assert any(n.startswith("affectstream/engines/models/") and n.endswith(".onnx") for n in names)


def test_installed_it_imports_as_affectstream_only(installed):
    probe = "import affectstream, importlib.util as u; print(affectstream.__file__); " + "; ".join(
        f"print({name!r}, u.find_spec({name!r}) is not None)" for name in OLD_NAMES
    )
    out = _python(installed, "-c", probe)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0].startswith(str(installed / "site")), lines[0]
    assert [line for line in lines[1:] if line.endswith("True")] == []


def test_installed_its_command_runs_on_the_packaged_defaults(installed):
    help_ = _python(installed, "-m", "affectstream", "--help")
    assert help_.returncode == 0 and "run" in help_.stdout, help_.stderr
    shown = _python(installed, "-m", "affectstream", "config", "show", "--json")
    assert shown.returncode == 0 and '"maxlen": 100000' in shown.stdout, shown.stderr
    example = installed / "site" / "affectstream" / "configs" / "pipeline" / "demo.yaml"
    checked = _python(installed, "-m", "affectstream", "config", "check", str(example))
    assert checked.returncode == 0, checked.stdout + checked.stderr
