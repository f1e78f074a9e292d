"""Every command block of README.md runs as pasted after `make demo`, in the order of the page.

The README's promise (section "Running it"): from the repository root, after `make demo`, with no
variable set by hand (no `AFFECTSTREAM_DETECTOR`, `AFFECTSTREAM_SHARED` or `AFFECTSTREAM_REDIS_URL`): the
shared media at `../shared`, the embedded Redis under `var/redis`. The test runs the lines of every `sh`
block and every `python` block in a scratch checkout (the repository's files linked in, its own `var/`, a
`../shared` link beside it), so nothing of the developer's own state is read or changed:

- a plain line must exit 0 (within `LINE_TIMEOUT_S`);
- a line ending in `&` runs in the background; `wait` waits for those, each of which must exit 0;
- a line whose comment says it "runs until stopped" (a server) must still be running after
  `UNTIL_STOPPED_S` (or have exited 0); then it is stopped (one in the background: at the end of the
  page) with SIGINT, as Ctrl-C would, which must end it with 0 or 130 (interrupted);
- `export NAME=VALUE` sets a variable for the lines after it.

Two lines are not run, each for its reason (`NOT_RUN`): `make test` runs this test, and `pip install`
lines would install the scratch checkout into the shared `.venv` (the test's venv has every extra).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from affectstream.settings import env
from tests.conftest import REPO, shared_dir
from tests.rtsp_fixtures import need_gstreamer

pytestmark = pytest.mark.rtsp

README = REPO / "README.md"
LINE_TIMEOUT_S = 600
UNTIL_STOPPED_S = 8
NOT_RUN = {
    "make test": "it runs the test suite, this test included",
    ".venv/bin/pip install": "it would install the scratch checkout into the shared .venv",
}
OWN_STATE = {"var", "runs", "results", "upload", "plots", "annotated.mp4", "model.onnx", ".git"}


@dataclass
class Line:
    text: str  # the command, continuation lines joined, comment removed
    comment: str
    block: int  # the README line where its block starts

    @property
    def background(self) -> bool:
        return self.text.endswith("&")

    @property
    def until_stopped(self) -> bool:
        return "runs until stopped" in self.comment


def readme_blocks(text: str) -> list[tuple[int, str, list[Line]]]:
    """(first line number, language, lines) of every `sh` and `python` block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start, lang, body = i + 1, fence.group(1), []
        i += 1
        while not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang == "python":
            blocks.append((start, lang, [Line("\n".join(body), "", start)]))
        elif lang == "sh":
            blocks.append((start, lang, _sh_lines(body, start)))
    return blocks


def _sh_lines(body: list[str], start: int) -> list[Line]:
    out, pending = [], ""
    for raw in body:
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        whole, pending = pending + raw, ""
        command, comment = _split_comment(whole)
        if command:
            out.append(Line(command, comment, start))
    return out


def _split_comment(line: str) -> tuple[str, str]:
    """The command and its trailing `# comment` (a `#` outside quotes, after a space)."""
    quote, prev = None, " "
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev.isspace():
            return line[:i].strip(), line[i + 1 :].strip()
        prev = ch
    return line.strip(), ""


@dataclass
class Session:
    """The shell state across blocks: working directory, variables, background processes."""

    cwd: Path
    environ: dict[str, str]
    background: list[tuple[Line, subprocess.Popen]] = field(default_factory=list)
    servers: list[tuple[Line, subprocess.Popen]] = field(default_factory=list)

    def start(self, command: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # SIGINT to the group, as Ctrl-C would
        )


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -9, out
    return proc.returncode, out


def _run(session: Session, line: Line, lang: str) -> None:
    where = f"README.md block at line {line.block}: {line.text!r}"
    if lang == "python":
        python = str(session.cwd / ".venv" / "bin" / "python")
        out = subprocess.run(
            [python, "-c", line.text],
            cwd=session.cwd,
            env=session.environ,
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT_S,
        )
        assert out.returncode == 0, f"{where}\n{out.stdout}{out.stderr}"
        return
    if match := re.fullmatch(r"export (\w+)=(\S+)", line.text):
        session.environ[match.group(1)] = match.group(2)
        return
    if line.text == "wait":
        for bg, proc in session.background:
            try:
                out, _ = proc.communicate(timeout=LINE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code, out = _interrupt(proc)
                pytest.fail(f"README.md line {bg.text!r} did not end by itself\n{out}")
            assert proc.returncode == 0, (
                f"README.md background line {bg.text!r} exited {proc.returncode}\n{out}"
            )
        session.background.clear()
        return
    command = line.text.removesuffix("&").strip()
    proc = session.start(command)
    if line.until_stopped:
        time.sleep(UNTIL_STOPPED_S)
        if proc.poll() is not None:  # it ended by itself: only fine when it succeeded
            assert proc.returncode == 0, f"{where} exited {proc.returncode}\n{proc.communicate()[0]}"
        if line.background:
            session.servers.append((line, proc))
        else:
            _stop(line, proc)
        return
    if line.background:
        session.background.append((line, proc))
        return
    try:
        out, _ = proc.communicate(timeout=LINE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code, out = _interrupt(proc)
        pytest.fail(
            f"{where} still running after {LINE_TIMEOUT_S} s (the README does not say it runs until stopped)\n{out}"
        )
    assert proc.returncode == 0, f"{where} exited {proc.returncode}\n{out}"


def _stop(line: Line, proc: subprocess.Popen) -> None:
    code, out = _interrupt(proc)
    assert code in (0, 130), f"README.md line {line.text!r}: Ctrl-C ended it with {code}\n{out}"


def _scratch_checkout(tmp_path: Path) -> Path:
    """The repository's files linked into tmp/checkout (its own var/, runs/ ...), ../shared beside it;
    the Makefile and pyproject.toml copied with their times, so `make` judges .venv as in the repository."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in REPO.iterdir():
        if entry.name in OWN_STATE:
            continue
        if entry.name in ("Makefile", "pyproject.toml"):
            shutil.copy2(entry, checkout / entry.name)
        else:
            (checkout / entry.name).symlink_to(entry)
    (tmp_path / "shared").symlink_to(shared_dir())
    return checkout


def test_every_readme_command_runs_as_pasted_after_make_demo(tmp_path):
    need_gstreamer()
    if not shared_dir().is_dir():
        pytest.skip(f"{shared_dir()} is missing")
    # `make demo` in the scratch checkout must not reinstall (`pip install -e .` there would point the
    # shared .venv at the scratch folder): bring .venv up to date in the repository first.
    subprocess.run(["make", "-s", ".venv/.runtime"], cwd=REPO, check=True, timeout=900)
    drop = {env.DETECTOR, env.SHARED, env.REDIS_URL, env.MODEL, "PYTHONPATH", "VIRTUAL_ENV"}
    session = Session(_scratch_checkout(tmp_path), {k: v for k, v in os.environ.items() if k not in drop})
    ran = 0
    try:
        for _start, lang, lines in readme_blocks(README.read_text()):
            for line in lines:
                if any(line.text.startswith(prefix) for prefix in NOT_RUN):
                    continue
                _run(session, line, lang)
                ran += 1
        assert not session.background, "a block leaves background lines without `wait`"
        for line, proc in session.servers:
            _stop(line, proc)
    finally:
        for _line, proc in session.background + session.servers:
            if proc.poll() is None:
                _interrupt(proc)
    assert ran >= 20, f"only {ran} README commands ran"
