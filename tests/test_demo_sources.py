"""`demo` and `run` take their sources from exactly what the flags say (issue 25's CLI findings)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "affectstream", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_source_and_set_sources_together_are_refused():
    for verb in ("demo", "run"):
        done = _cli(verb, "--source", "x.mp4", "--set", "sources=[{url: y.mp4}]")
        assert done.returncode == 2, done.stderr
        assert "--source and --set sources=... both name the sources" in done.stderr


def test_demo_runs_the_configs_sources_not_the_bundled_clip(tmp_path):
    missing = tmp_path / "missing.mp4"
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(f"sources:\n  - {{name: a, url: {missing}}}\n")
    done = _cli("demo", "-c", str(cfg), "--workdir", str(tmp_path / "work"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(missing) in done.stderr  # the config's source was the one read
    assert "demo clip" not in done.stdout
    assert not (tmp_path / "work").exists()
    done = _cli(
        "demo", "--set", f"sources=[{{name: b, url: {missing}}}]", "--workdir", str(tmp_path / "work")
    )
    assert done.returncode == 2 and str(missing) in done.stderr and "demo clip" not in done.stdout
