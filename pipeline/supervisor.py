"""`affectstream run`: start the worker processes, restart crashed ones, stop them cleanly.

Sources are spread round-robin over `workers.count` processes. Each file gets one pass of this run
(`entry_ids.PassIds`): a worker that dies (crash, OOM kill) is restarted after a backoff and resumes its
files' passes after their last published frame, and its cameras reconnect. SIGTERM/SIGINT are
forwarded; each worker drains what it has taken. Exit status: 0 once every file was published in full,
1 when a source failed for good (named in the log) or a worker could not be kept running.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import re
import signal
import socket
import time
from dataclasses import dataclass, field

from pipeline.entry_ids import new_pass_base
from pipeline.keys import frames_key, heartbeat_key
from pipeline.redis_conn import connect

log = logging.getLogger(__name__)

MAX_RESTARTS_PER_MINUTE = 5


@dataclass
class _Slot:
    worker_id: str
    specs: list
    index: int
    process: mp.Process | None = None
    restarts: list[float] = field(default_factory=list)
    done: bool = False


def split_sources(specs: list, count: int) -> list[list]:
    """Round-robin so each worker gets a similar number of sources."""
    count = max(1, min(count, len(specs)))
    return [specs[i::count] for i in range(count)]


def run_id() -> str:
    """Unique per run and host, key-safe: `<host>-<pid>`."""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


class Supervisor:
    def __init__(self, cfg, redis_url: str, *, log_level: int = logging.INFO) -> None:
        self.cfg = cfg
        self.redis_url = redis_url
        self.log_level = log_level
        self.ctx = mp.get_context("spawn")  # no forked ONNX Runtime / PyAV state
        self.stopping = False
        self.failures = self.ctx.Queue()  # (worker id, source, reason) of sources that failed for good
        self.failed_sources: dict[str, str] = {}
        self.passes: dict[str, int] = {}
        run = run_id()
        self.slots = [
            _Slot(f"{run}-w{i}", specs, i)
            for i, specs in enumerate(split_sources(list(cfg.sources), cfg.workers.count))
        ]

    def _start_passes(self) -> None:
        """One new pass per file source, fixed for the whole run (restarted workers resume it)."""
        client = connect(self.redis_url)
        try:
            for spec in self.cfg.sources:
                if not spec.live:
                    self.passes[spec.name] = new_pass_base(client, frames_key(spec.name))
        finally:
            client.close()

    def _spawn(self, slot: _Slot) -> None:
        from pipeline.worker import worker_main

        port = self.cfg.metrics.port + slot.index if self.cfg.metrics.port else 0
        passes = {spec.name: self.passes[spec.name] for spec in slot.specs if spec.name in self.passes}
        slot.process = self.ctx.Process(
            target=worker_main,
            args=(self.cfg, slot.specs, slot.worker_id, self.redis_url, passes, port, self.log_level, self.failures,
                  os.getpid()),
            name=f"worker-{slot.worker_id}",
        )
        slot.process.start()
        log.info("worker %s (pid %d): %s", slot.worker_id, slot.process.pid, ", ".join(s.name for s in slot.specs))

    def _on_signal(self, signum, _frame) -> None:
        log.info("signal %d: draining workers", signum)
        self.stop()

    def stop(self) -> None:
        """Ask every worker to drain and exit (SIGTERM); `run` returns once they have."""
        self.stopping = True
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                slot.process.terminate()  # SIGTERM: the worker drains and exits 0

    def run(self) -> int:
        if not self.slots or not self.cfg.sources:
            log.error("no sources configured: add `sources:` to the config or pass --source URL")
            return 2
        from pipeline.worker import EXIT_CANNOT_RUN, EXIT_SOURCES_FAILED

        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._start_passes()
        for slot in self.slots:
            self._spawn(slot)
        failed = False
        while not all(s.done for s in self.slots):
            time.sleep(0.2)
            self._collect_failures()
            for slot in self.slots:
                if slot.done or slot.process is None or slot.process.is_alive():
                    continue
                code = slot.process.exitcode
                if code in (0, EXIT_SOURCES_FAILED, EXIT_CANNOT_RUN) or self.stopping:
                    slot.done = True
                    failed |= code != 0
                    continue
                now = time.monotonic()
                slot.restarts = [t for t in slot.restarts if now - t < 60] + [now]
                if len(slot.restarts) > MAX_RESTARTS_PER_MINUTE:
                    log.error("worker %s crashed %d times in a minute; giving up", slot.worker_id, len(slot.restarts))
                    slot.done = failed = True
                    continue
                log.warning("worker %s exited with %s; restarting it (resume)", slot.worker_id, code)
                time.sleep(self.cfg.workers.restart_backoff_s)
                if not self.stopping:
                    self._spawn(slot)
        self._collect_failures()
        self._clear_heartbeats()
        if self.failed_sources:
            log.error("%d sources failed: %s", len(self.failed_sources),
                      "; ".join(f"{name}: {reason}" for name, reason in sorted(self.failed_sources.items())))  # fmt: skip
        return 1 if failed or self.failed_sources else 0

    def _collect_failures(self) -> None:
        while True:
            try:
                _worker, source, reason = self.failures.get_nowait()
            except queue.Empty:
                return
            self.failed_sources.setdefault(source, reason)

    def _clear_heartbeats(self) -> None:
        try:
            client = connect(self.redis_url)
            client.delete(*[heartbeat_key(s.worker_id) for s in self.slots])
            client.close()
        except Exception as exc:
            log.warning("could not clear heartbeats: %s", exc)

