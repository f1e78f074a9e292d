"""`affectstream run`: start the worker processes, restart crashed ones, stop them cleanly.

Sources are spread round-robin over `workers.count` processes. A worker that dies (crash, OOM kill)
is restarted after a backoff with `resume=True`, so its files continue after their last published
frame and its cameras reconnect. SIGTERM/SIGINT are forwarded; each worker drains what it has taken
and the supervisor exits 0. With only finite sources, it exits 0 once every worker has finished.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from dataclasses import dataclass, field

from pipeline.keys import heartbeat_key
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


class Supervisor:
    def __init__(self, cfg, redis_url: str, *, log_level: int = logging.INFO) -> None:
        self.cfg = cfg
        self.redis_url = redis_url
        self.log_level = log_level
        self.ctx = mp.get_context("spawn")  # no forked ONNX Runtime / PyAV state
        self.stopping = False
        self.slots = [
            _Slot(f"w{i}", specs, i) for i, specs in enumerate(split_sources(list(cfg.sources), cfg.workers.count))
        ]

    def _spawn(self, slot: _Slot, resume: bool) -> None:
        from pipeline.worker import worker_main

        port = self.cfg.metrics.port + slot.index if self.cfg.metrics.port else 0
        slot.process = self.ctx.Process(
            target=worker_main,
            args=(self.cfg, slot.specs, slot.worker_id, self.redis_url, resume, port, self.log_level),
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
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in self.slots:
            self._spawn(slot, resume=False)
        failed = False
        while not all(s.done for s in self.slots):
            time.sleep(0.2)
            for slot in self.slots:
                if slot.done or slot.process is None or slot.process.is_alive():
                    continue
                code = slot.process.exitcode
                if code == 0 or self.stopping:
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
                    self._spawn(slot, resume=True)
        self._clear_heartbeats()
        return 1 if failed else 0

    def _clear_heartbeats(self) -> None:
        try:
            client = connect(self.redis_url)
            client.delete(*[heartbeat_key(s.worker_id) for s in self.slots])
            client.close()
        except Exception as exc:
            log.warning("could not clear heartbeats: %s", exc)

