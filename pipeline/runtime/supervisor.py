"""The one process supervisor, for `affectstream run`'s workers and `archive work -j N`'s.

One rule for both:

- Start: every child is a spawned process entering `_child_main`, which sets up logging from the
  environment (the CLI puts `--log-level`/`--log-format` there), turns SIGTERM/SIGINT into its stop
  event, watches its parent (a supervisor killed outright leaves no one to stop it) and runs its target.
- Restart: a child that exits 0, `EXIT_SOURCES_FAILED` or `EXIT_CANNOT_RUN` is done; any other exit (a
  crash, an OOM kill) is restarted after `restart_backoff_s`, up to `MAX_RESTARTS_PER_MINUTE`.
- Signals: SIGTERM/SIGINT are forwarded as SIGTERM; each child drains what it has taken and exits, and
  the supervisor returns once all have.

`affectstream run` (`Supervisor`): sources are spread round-robin over `workers.count` processes. The
supervisor takes the run's writer lease of every configured source before a worker starts, and renews
them while it runs (`pipeline.streams.writer_leases`: one writer per stream; a live run of the same source makes this
one exit 1 at start). Each file gets one pass of this run (`entry_ids.PassIds`; the unfinished pass of a
dead run of the same file is taken over): a restarted worker resumes its files' passes after their last
published frame, and its cameras reconnect. Exit status: 0 once every file was
published in full, 1 when a source failed for good (named in the log) or a worker could not be kept
running. A fleet member (`run --fleet`, docs/fleet.md) is one worker, `{member}-w0`, that claims its
cameras from Redis besides any static sources, and runs until stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

from affectstream.pipeline.errors import EXIT_CANNOT_RUN, EXIT_SOURCES_FAILED, AffectstreamError
from affectstream.pipeline.streams.connection import connect, refuse_evicting
from affectstream.pipeline.streams.keys import heartbeat_key, process_id
from affectstream.pipeline.streams.writer_leases import WriterBusy, WriterLeases

log = logging.getLogger(__name__)

MAX_RESTARTS_PER_MINUTE = 5
_FINAL = (0, EXIT_SOURCES_FAILED, EXIT_CANNOT_RUN)  # a child's exit statuses that are not restarted


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`: the process drains what it has taken, then exits."""

    def handler(signum, _frame) -> None:
        log.info("signal %d: draining, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _child_main(target: Callable[..., int], args: tuple, parent: int) -> None:
    """Entry point of every child process: `target(*args, stop=stop)` returns its exit status."""
    stop = threading.Event()
    stop_on_signals(stop)  # first: a SIGTERM during start-up must not kill it mid-way
    from affectstream.engines.errors import EngineError
    from affectstream.pipeline.logs import setup_logging
    from affectstream.pipeline.masking import mask_text

    setup_logging()
    threading.Thread(
        target=_stop_when_orphaned, args=(stop, parent), name="parent-watch", daemon=True
    ).start()
    try:
        code = target(*args, stop=stop)
    except (AffectstreamError, EngineError) as exc:  # a missing model or detector: a restart cannot help
        log.error("%s cannot run: %s", mp.current_process().name, mask_text(str(exc)))
        code = EXIT_CANNOT_RUN
    raise SystemExit(code)


def _stop_when_orphaned(stop: threading.Event, parent: int, every_s: float = 0.5) -> None:
    while not stop.wait(every_s):
        if os.getppid() != parent:
            log.warning("%s: supervisor %d is gone; draining and exiting", mp.current_process().name, parent)
            stop.set()


@dataclass
class Slot:
    """One child: what it runs (`target(*args, stop=event)`, a module-level function) and its restarts."""

    name: str
    target: Callable[..., int]
    args: tuple = ()
    process: BaseProcess | None = None
    restarts: list[float] = field(default_factory=list)  # times of the restarts in the last minute
    restarted: int = 0  # restarts in all
    done: bool = False


class ProcessGroup:
    """Runs `slots` as child processes under the rules of the module docstring.

    Args:
        slots: The children.
        restart_backoff_s: Wait before restarting a crashed child.
        poll: Called about every 0.2 s while the children run, and once at the end.
    """

    def __init__(
        self, slots: Sequence[Slot], *, restart_backoff_s: float, poll: Callable[[], None] | None = None
    ) -> None:
        self.slots = list(slots)
        self.restart_backoff_s = restart_backoff_s
        self.poll = poll or (lambda: None)
        self.ctx = mp.get_context("spawn")  # no forked ONNX Runtime / PyAV state, no inherited Redis sockets
        self.stopping = False

    def _spawn(self, slot: Slot) -> None:
        process = self.ctx.Process(
            target=_child_main, args=(slot.target, slot.args, os.getpid()), name=slot.name
        )
        process.start()
        slot.process = process
        log.info("worker %s started (pid %d)", slot.name, process.pid)

    def _on_signal(self, signum, _frame) -> None:
        log.info("signal %d: draining workers", signum)
        self.stop()

    def handle_signals(self) -> None:
        """From now on SIGTERM and SIGINT stop the group (also before `run`: the owner's set-up)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def stop(self) -> None:
        """Ask every child to drain and exit (SIGTERM); `run` returns once they have."""
        self.stopping = True
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                slot.process.terminate()

    def _restart(self, slot: Slot, code: int | None) -> bool:
        """Restart a crashed child unless it crashes too often; False when given up."""
        now = time.monotonic()
        slot.restarts = [t for t in slot.restarts if now - t < 60] + [now]
        if len(slot.restarts) > MAX_RESTARTS_PER_MINUTE:
            log.error("worker %s crashed %d times in a minute; giving up", slot.name, len(slot.restarts))
            return False
        log.warning("worker %s exited with %s; restarting it (resume)", slot.name, code)
        slot.restarted += 1
        time.sleep(self.restart_backoff_s)
        if not self.stopping:
            self._spawn(slot)
        return True

    def run(self) -> bool:
        """Start the children and supervise them until all are done; True when every one ended with 0."""
        self.handle_signals()
        if self.stopping:  # stopped before anything started: nothing was taken, nothing is left to do
            return True
        for slot in self.slots:
            self._spawn(slot)
        ok = True
        while not all(s.done for s in self.slots):
            time.sleep(0.2)
            self.poll()
            for slot in self.slots:
                if slot.done or slot.process is None or slot.process.is_alive():
                    continue
                code = slot.process.exitcode
                if code in _FINAL or self.stopping or not self._restart(slot, code):
                    slot.done = True
                    # A child told to stop before it could install its own handler (it was still starting)
                    # dies of the SIGTERM: it had taken nothing, so that is a clean stop too.
                    ok &= code == 0 or (self.stopping and code == -signal.SIGTERM)
        self.poll()
        return ok


def split_sources(specs: list, count: int) -> list[list]:
    """Round-robin so each worker gets a similar number of sources."""
    count = max(1, min(count, len(specs)))
    return [specs[i::count] for i in range(count)]


class Supervisor:
    """`affectstream run`: the config's sources over `workers.count` worker processes."""

    def __init__(self, cfg, redis_url: str) -> None:
        from affectstream.pipeline.runtime.worker_process import worker_main

        run = process_id()  # the run's id: unique per run and host
        if cfg.fleet.enabled:  # one worker (the config refuses more); its id names the member
            cfg = dataclasses.replace(
                cfg, fleet=dataclasses.replace(cfg.fleet, member=cfg.fleet.member or run)
            )
            run = cfg.fleet.member
        self.cfg = cfg
        self.redis_url = redis_url
        self.run_id = run
        self.writers: WriterLeases | None = None  # taken by `run`
        self.failed_sources: dict[str, str] = {}
        self.specs = split_sources(list(cfg.sources), cfg.workers.count)
        self.slots = [Slot(f"{run}-w{i}", worker_main) for i in range(len(self.specs))]
        self.group = ProcessGroup(
            self.slots, restart_backoff_s=cfg.workers.restart_backoff_s, poll=self._collect_failures
        )
        self.failures = self.group.ctx.Queue()  # (worker id, source, reason) of sources that failed for good
        self.metrics = None  # the run's one metrics endpoint (`metrics.port`), over its workers' pages
        self.ports = None  # (worker id, metrics port) from each worker once it serves
        if cfg.metrics.port:
            from affectstream.pipeline.runtime.metrics import RunMetricsServer

            self.metrics = RunMetricsServer()
            self.ports = self.group.ctx.Queue()

    def stop(self) -> None:
        self.group.stop()

    def run(self) -> int:
        if not self.cfg.sources and not self.cfg.fleet.enabled:
            log.error("no sources configured: add `sources:` to the config or pass --source URL")
            return 2
        self.group.handle_signals()  # a SIGTERM while the leases are taken still ends the run cleanly
        client = connect(self.redis_url)
        try:
            refuse_evicting(client)
            self.writers = WriterLeases(client, self.run_id)
            passes = self.writers.acquire(self.cfg.sources)  # one pass per file, fixed for the whole run
        except WriterBusy as exc:
            log.error("%s", exc)
            client.close()
            return 1
        try:
            return self._supervise(passes)
        finally:
            self.writers.release()
            client.close()

    def _supervise(self, passes: dict[str, int]) -> int:
        assert self.writers is not None
        for slot, specs in zip(self.slots, self.specs, strict=True):
            mine = {spec.name: passes[spec.name] for spec in specs if spec.name in passes}
            fences = {spec.name: self.writers.fence(spec.name) for spec in specs}
            slot.args = (self.cfg, specs, slot.name, self.redis_url, mine, fences, self.ports, self.failures)
            log.info("worker %s: %s", slot.name, ", ".join(s.name for s in specs) or "fleet cameras only")
        if self.metrics is not None:
            port = self.metrics.serve(
                self.cfg.metrics.host, self.cfg.metrics.port, self._worker_view, self.redis_url
            )
            log.info("metrics of this run on http://%s:%d/metrics", self.cfg.metrics.host, port)
        ok = self.group.run()
        self._clear_heartbeats()
        if self.failed_sources:
            log.error(
                "%d sources failed: %s",
                len(self.failed_sources),
                "; ".join(f"{name}: {reason}" for name, reason in sorted(self.failed_sources.items())),
            )
        return 0 if ok and not self.failed_sources else 1

    def _worker_view(self) -> dict[str, tuple[bool, int]]:
        """{worker id: (process alive, restarts)} for the metrics endpoint (its own thread)."""
        return {s.name: (s.process is not None and s.process.is_alive(), s.restarted) for s in self.slots}

    def _collect_failures(self) -> None:
        while self.ports is not None and self.metrics is not None:
            try:
                self.metrics.worker_port(*self.ports.get_nowait())
            except queue.Empty:
                break
        while True:
            try:
                _worker, source, reason = self.failures.get_nowait()
            except queue.Empty:
                return
            self.failed_sources.setdefault(source, reason)

    def _clear_heartbeats(self) -> None:
        try:
            client = connect(self.redis_url)
            client.delete(*[heartbeat_key(s.name) for s in self.slots])
            client.close()
        except Exception as exc:
            log.warning("could not clear heartbeats: %s", exc)
