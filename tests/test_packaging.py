"""The wheel: one import name. Built from this checkout, installed outside it, `affectstream` imports and its
command runs with the packaged defaults and example configs; none of the old generic top-level names
(`pipeline`, `engines`, `training`, `scoring`, `settings`) is importable from it.

And installed as a user would, with its dependencies, into fresh virtual environments outside the
repository: `affectstream[worker]` runs `--version`, `config show` and `demo` on the shipped clip; the bare
`affectstream` (the consumer install) has no av, insightface or onnxruntime, and its consumer API and `tail`
read results a worker wrote to a real redis-server. pip installs from its configured index and wheel cache
(`~/.cache/pip`), so after the first run nothing is downloaded again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from affectstream.settings import env
from tests.conftest import REPO

OLD_NAMES = ("pipeline", "engines", "training", "scoring", "settings")
WORKER_ONLY = ("av", "insightface", "onnxruntime", "onnx", "cv2")  # what the consumer install must not pull


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
        "affectstream/py.typed",
        "affectstream/pipeline/frames/models/blazeface_short_range.onnx",  # the Apache-2.0 detector
        "affectstream/pipeline/frames/models/LICENSE-blazeface",
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


def _venv(path: Path, requirement: str) -> Path:
    """A fresh virtual environment at `path` with `requirement` installed; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    pip = subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return path / "bin"


def _user_env(**extra: str) -> dict[str, str]:
    """The environment of a user outside the checkout: no PYTHONPATH, no detector set by hand."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", env.DETECTOR, env.REDIS_URL}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _wheel(installed: Path) -> Path:
    (wheel,) = (installed / "dist").glob("affectstream-*.whl")
    return wheel


def test_worker_install_runs_version_config_and_the_demo(installed, tmp_path, redis_server, shared):
    bin_ = _venv(tmp_path / "venv", f"{_wheel(installed)}[worker]")
    user = _user_env(**{env.SHARED: str(shared)})  # the detector: the shared folder's, by default

    def affectstream(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bin_ / "affectstream"), *args],
            cwd=tmp_path,
            env=user,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    version = affectstream("--version")
    assert version.returncode == 0 and version.stdout.strip() == "affectstream 0.1.0", version
    shown = affectstream("config", "show")
    assert shown.returncode == 0 and "maxlen: 100000" in shown.stdout, shown.stdout + shown.stderr
    demo = affectstream("demo", "--redis", redis_server, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    (row,) = [
        cells
        for cells in map(str.split, demo.stdout.splitlines())
        if cells[:1] == ["demo"] and cells[1].isdigit()
    ]
    frames, faces = int(row[1]), int(row[2])
    assert frames > 0 and faces >= frames, demo.stdout  # every frame of the clip has faces

    # `render --plots` needs the `ui` extra, which this install lacks: said at once, before any frame
    found = subprocess.run([str(bin_ / "python"), "-c", "import matplotlib"], capture_output=True)
    assert found.returncode != 0, "matplotlib came with [worker]: this check needs an install without it"
    started = time.monotonic()
    render = affectstream("render", "var/demo/demo_clip.mp4", "-o", "out.mp4", "--plots", "plots")
    assert render.returncode == 3, render.stdout + render.stderr
    assert "needs matplotlib: pip install 'affectstream[ui]'" in render.stderr, render.stderr
    assert time.monotonic() - started < 30 and not (tmp_path / "out.mp4").exists()


def test_consumer_install_reads_and_tails_without_the_worker_packages(installed, tmp_path, redis_url):
    from affectstream.pipeline.streams.connection import connect
    from tests.consumer.test_consume import publish

    bin_ = _venv(tmp_path / "venv", str(_wheel(installed)))
    probe = f"import importlib.util as u; print([m for m in {WORKER_ONLY!r} if u.find_spec(m)])"
    found = subprocess.run([str(bin_ / "python"), "-c", probe], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stdout + found.stderr

    publish(connect(redis_url), "cam-pkg", range(3))  # a worker's results (written by this checkout)
    read = (
        "from affectstream.pipeline.streams.connection import connect\n"
        "from affectstream.pipeline.streams.read import read_results\n"
        f"for e in read_results(connect({redis_url!r}), ['cam-*'], start='0', follow=False):\n"
        "    print(e.result.source, e.result.frame, [f.expr for f in e.result.faces])\n"
    )
    user = _user_env()
    out = subprocess.run(
        [str(bin_ / "python"), "-c", read], cwd=tmp_path, env=user, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert [line.split()[:2] for line in out.stdout.splitlines()] == [["cam-pkg", str(i)] for i in range(3)]
    tail = subprocess.run(
        [str(bin_ / "affectstream"), "tail", "cam-*", "--json", "--redis", redis_url],
        cwd=tmp_path,
        env=user,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tail.returncode == 0, tail.stderr
    assert [json.loads(line)["frame"] for line in tail.stdout.splitlines()] == [0, 1, 2]
    run = subprocess.run(
        [str(bin_ / "affectstream"), "run", "--source", "x.mp4"],
        cwd=tmp_path,
        env=user,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3 and "pip install 'affectstream[worker]'" in run.stderr, run.stderr
