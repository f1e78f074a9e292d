"""A real RTSP server for tests: `tests/rtsp_server.py` (GStreamer) run by Debian's python3.

Import the fixture into conftest.py (`from tests.rtsp_fixtures import rtsp_server  # noqa: F401`) or
into a test module. Tests using it are marked `@pytest.mark.rtsp`; when GStreamer's RTSP server cannot
run here they are skipped with the apt packages to install, and fail in CI (AFFECTSTREAM_REQUIRE_SHARED=1).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from affectstream.settings import env

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "rtsp_server.py"
# python3-gi lives in Debian's interpreter, not in the venv.
GST_PYTHON = os.environ.get("AFFECTSTREAM_GST_PYTHON", "/usr/bin/python3")
APT_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav"
)
_PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "import sys; sys.path.insert(0, sys.argv[1]); from rtsp_server import REQUIRED_ELEMENTS; "
    "m = [e for e in REQUIRED_ELEMENTS if Gst.ElementFactory.find(e) is None]; "
    "print('missing GStreamer elements: ' + ', '.join(m) if m else 'ok')"
)
USER = "camuser"
PASSWORD = "Pw-n0t-in-logs-7f3a"


@functools.lru_cache(maxsize=1)
def gstreamer_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    if not Path(GST_PYTHON).exists():
        return f"{GST_PYTHON} does not exist"
    try:
        out = subprocess.run(
            [GST_PYTHON, "-c", _PROBE, str(HERE)], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {GST_PYTHON}: {exc}"
    text = (out.stdout + out.stderr).strip()
    if out.returncode != 0 or text != "ok":
        return text.splitlines()[-1] if text else f"{GST_PYTHON} probe exited {out.returncode}"
    return None


def need_gstreamer() -> None:
    """Skip (or fail in CI) when the GStreamer RTSP server cannot run."""
    problem = gstreamer_problem()
    if problem is None:
        return
    msg = f"GStreamer RTSP server unavailable ({problem}); apt-get install {APT_PACKAGES}"
    if os.environ.get(env.REQUIRE_SHARED) == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RtspServer:
    """One `rtsp_server.py` process; it can be killed and started again on the same port.

    Attributes:
        media: The video file served (re-encoded unless `passthrough` names its codec).
        port: TCP port on 127.0.0.1 (kept across restarts, so clients reconnect to the same URL).
        name: Mount point; `/<name>` is open, `/<name>-secure` needs `user`/`password`.
    """

    media: Path
    port: int = field(default_factory=free_port)
    name: str = "cam"
    user: str = USER
    password: str = PASSWORD
    loop: bool = True
    passthrough: str | None = None  # "h264" / "h265": serve the coded video as it is (see rtsp_server.py)
    proc: subprocess.Popen | None = None
    _log: IO[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """URL of the open mount point."""
        return f"rtsp://127.0.0.1:{self.port}/{self.name}"

    @property
    def secure_url(self) -> str:
        """URL of the password-protected mount point, credentials included."""
        return f"rtsp://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.name}-secure"

    def start(self, timeout: float = 20.0) -> RtspServer:
        """Start the server and wait until it listens (it prints READY)."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        cmd = [GST_PYTHON, str(SCRIPT), "--media", str(self.media), "--port", str(self.port)]
        cmd += ["--name", self.name, "--user", self.user, "--password", self.password]
        if self.loop:
            cmd.append("--loop")
        if self.passthrough:
            cmd += ["--passthrough", self.passthrough]
        deadline = time.monotonic() + timeout
        last_err = ""
        while True:
            # stderr goes to a file: a pipe nobody reads would block a chatty server once it fills up.
            self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (open for the server's life: stop())
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True)
            line = self._read_line(deadline)
            if line.startswith("READY"):
                return self
            last_err = self._reap() or last_err
            # After a kill the port can linger briefly in the kernel; retry until the deadline.
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start on port {self.port}: {line or last_err}")
            time.sleep(0.2)

    def _read_line(self, deadline: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], max(2.0, deadline - time.monotonic()))
        return self.proc.stdout.readline().strip() if ready else ""

    def _reap(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        err = ""
        if self._log is not None:
            self._log.seek(0)
            err = self._log.read()[-2000:]
            self._log.close()
            self._log = None
        return err.strip()

    def kill(self) -> None:
        """Crash the server (SIGKILL): clients see the connection drop."""
        self._reap()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing is sent (a silent camera)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server for good (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self._reap()


@pytest.fixture
def rtsp_server():
    """A running GStreamer RTSP server on a free loopback port serving WolfgangLanger_Pexels.mp4 in a loop."""
    # Imported here: conftest imports this module, so a top-level import would be circular.
    from tests.conftest import need_shared

    need_gstreamer()
    media = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    server = RtspServer(media).start()
    try:
        yield server
    finally:
        server.stop()
