"""Fixtures of the archive tests: an emotion model file, the detector, and `archive` CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, need_shared

FERPLUS = ("Neutral", "Happy", "Surprise", "Sad", "Anger", "Disgust", "Fear", "Contempt")


@pytest.fixture(scope="session")
def detector() -> str:
    return str(need_shared("models", "scrfd_500m.onnx"))


def cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m affectstream ARGS` from the repository root; returns the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "affectstream", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_cli(*args: str, log: Path) -> subprocess.Popen:
    """Start `python -m affectstream ARGS` in the background, its output going to `log`."""
    with open(log, "w") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "affectstream", *args], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT
        )
