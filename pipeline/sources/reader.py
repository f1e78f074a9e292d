"""A running source: one reader thread decoding with PyAV into a frame buffer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.masking import mask_text
from pipeline.sources import _av
from pipeline.sources._backoff import Backoff
from pipeline.sources._buffer import FrameBuffer
from pipeline.sources.spec import SourceSpec
from pipeline.types import Frame

log = logging.getLogger("pipeline.sources")

EventCallback = Callable[[str, str, dict], None]
EVENT_KINDS = ("started", "reconnecting", "recovered", "eof", "error")
STATES = ("starting", "live", "reconnecting", "down", "eof", "error")
# Consecutive packets the decoder rejects before a file counts as corrupt (isolated bad packets are
# skipped: one damaged GOP should not cost the rest of an archive).
MAX_BAD_PACKETS = 25


@dataclass(frozen=True)
class SourceStats:
    """A snapshot of a source's counters.

    Attributes:
        decoded: Frames decoded (and handed to the buffer).
        dropped: Frames replaced unread under the live policy.
        reconnects: Reconnect attempts so far.
        state: starting | live | reconnecting | down (stopped) | eof | error.
    """

    decoded: int
    dropped: int
    reconnects: int
    state: str


class _Stopped(Exception):
    """Internal: stop() was called while decoding."""


class _OpenFailed(Exception):
    """Internal: opening failed; the message is the (masked) reason."""


class _Silent(Exception):
    """Internal: packets arrive but no frame came out for too long."""


class Source:
    """Reads one `SourceSpec` on its own thread; the consumer polls `get`.

    Nothing raises into the consumer: failures become events (`on_event(name, kind, detail)`) and states.
    Live sources reconnect forever with capped, jittered backoff; finite ones end with `eof` or `error`.
    """

    def __init__(self, spec: SourceSpec, on_event: EventCallback | None = None) -> None:
        self.spec = spec
        self._on_event = on_event
        self._buffer: FrameBuffer[Frame] = FrameBuffer(spec.queue_size, keep_newest=bool(spec.live))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = "starting"
        self._decoded = 0
        self._reconnects = 0
        self._open_containers = 0  # containers opened and not yet closed (tests check it drops to 0)
        self._decoded_since_open = 0
        self._connection = 0  # successful opens after the first (Frame.connection)

    @property
    def name(self) -> str:
        return self.spec.name

    # -- consumer side ------------------------------------------------------------------------
    def start(self) -> Source:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"source {self.name!r} was already started")
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None when none arrived within `timeout` seconds (or the source finished)."""
        return self._buffer.get(timeout)

    @property
    def finished(self) -> bool:
        """True once a finite source reached EOF or failed for good and every frame was taken."""
        return self._buffer.drained and self.state in ("eof", "error")

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def stats(self) -> SourceStats:
        with self._lock:
            return SourceStats(self._decoded, self._buffer.dropped, self._reconnects, self._state)

    @property
    def open_containers(self) -> int:
        """Containers this source holds open right now (0 after `stop()`)."""
        with self._lock:
            return self._open_containers

    def stop(self, timeout: float | None = None) -> None:
        """Stop reading, join the reader thread and close its container.

        A read blocked in FFmpeg returns within the source's read timeout, so the join waits at most
        about `timeout_s` (default: that plus a margin).
        """
        self._stop.set()
        self._buffer.close()
        if self._thread is None:
            self._set_state("down")
            return
        if self._thread is not threading.current_thread() and timeout != 0:  # 0: ask, do not wait
            self._thread.join(timeout if timeout is not None else self.spec.timeout_s + 2.0)
            if self._thread.is_alive():
                log.warning("source %s: reader thread still blocked after stop()", self.name)

    # -- reader thread ------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def _emit(self, kind: str, **detail: Any) -> None:
        level = logging.WARNING if kind in ("reconnecting", "error") else logging.INFO
        log.log(level, "source %s: %s %s", self.name, kind, mask_text(repr(detail)))
        if self._on_event is None:
            return
        try:
            self._on_event(self.name, kind, detail)
        except Exception:  # a failing listener must not kill the reader
            log.exception("source %s: event listener failed on %s", self.name, kind)

    def _run(self) -> None:
        try:
            if self.spec.live:
                self._run_live()
            else:
                self._run_finite()
        except BaseException as exc:  # last resort: the thread must end in a known state
            reason = mask_text(f"reader crashed: {type(exc).__name__}: {exc}")
            log.exception("source %s: %s", self.name, reason)
            self._set_state("error")
            self._emit("error", reason=reason)
        finally:
            if self._stop.is_set() and self.state not in ("eof", "error"):
                self._set_state("down")
            self._buffer.close()

    def _run_finite(self) -> None:
        try:
            container = _av.open_container(self.spec)
        except Exception as exc:
            self._fail(
                f"cannot open {self.spec.safe_url}: {_av.describe_error(exc, self.spec, opening=True)}"
            )
            return
        try:
            self._count_container(+1)
            stream = _av.video_stream(container, self.spec)
            self._set_state("live")
            self._emit("started", url=self.spec.safe_url, live=False, **_av.stream_info(stream))
            packets = self._decode(container, stream, on_first_frame=None)
            _check_complete(stream, packets)
        except _Stopped:
            return
        except Exception as exc:
            self._fail(
                f"decoding {self.spec.safe_url} failed after {self._decoded} frames: "
                f"{_av.describe_error(exc, self.spec)}"
            )
            return
        finally:
            self._close(container)
        self._set_state("eof")
        self._emit("eof", frames=self._decoded)

    def _fail(self, reason: str) -> None:
        self._set_state("error")
        self._emit("error", reason=reason)

    def _run_live(self) -> None:
        backoff = Backoff(self.spec.backoff_first_s, self.spec.backoff_cap_s)
        attempt = 0
        started = False
        down_since = 0.0
        while not self._stop.is_set():
            reason = None
            container = None
            self._decoded_since_open = 0
            try:
                try:
                    container = _av.open_container(self.spec)
                except Exception as exc:
                    raise _OpenFailed(_av.describe_error(exc, self.spec, opening=True)) from exc
                self._count_container(+1)
                stream = _av.video_stream(container, self.spec)
                if started:
                    self._connection += 1  # read by _decode for every frame of this connection
                else:
                    started = True
                    self._set_state("live")
                    self._emit("started", url=self.spec.safe_url, live=True, **_av.stream_info(stream))

                def recovered(attempts: int = attempt, since: float = down_since) -> None:
                    self._set_state("live")
                    if attempts:
                        self._emit("recovered", attempts=attempts, down_s=round(time.monotonic() - since, 3))

                self._decode(container, stream, on_first_frame=recovered)
                reason = "stream ended"
            except _Stopped:
                return
            except _OpenFailed as exc:
                reason = str(exc)
            except _Silent:
                reason = f"no frame for {self.spec.silent_after_s:g} s (silent)"
            except Exception as exc:
                reason = _av.describe_error(exc, self.spec)
            finally:
                if container is not None:
                    self._close(container)
            if self._stop.is_set():
                return
            if self._decoded_since_open:
                attempt = 0  # it worked for a while: start the backoff from the bottom again
            if attempt == 0:
                down_since = time.monotonic()
            attempt += 1
            delay = backoff.delay(attempt)
            with self._lock:
                self._reconnects += 1
                self._state = "reconnecting"
            self._emit("reconnecting", attempt=attempt, delay_s=round(delay, 3), reason=reason)
            if self._stop.wait(delay):
                return

    def _decode(self, container: Any, stream: Any, on_first_frame: Callable[[], None] | None) -> int:
        """Decode `stream` into the buffer until EOF; raises on errors, `_Stopped` or `_Silent`.

        Returns:
            The number of non-empty packets read.
        """
        packets = 0
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        last_pts: float | None = None
        last_frame_t = time.monotonic()
        pacer = _Pacer(self._stop) if self.spec.realtime else None
        to_bgr = _av.BgrConverter()
        bad = 0
        for packet in container.demux(stream):
            if self._stop.is_set():
                raise _Stopped
            if packet.size:
                packets += 1
            try:
                frames = packet.decode()
                bad = 0
            except _decode_errors() as exc:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    raise
                log.warning("source %s: skipped an undecodable packet: %s", self.name, mask_text(str(exc)))
                continue
            now = time.monotonic()
            for vf in frames:
                # RTSP's first frame often has no pts: continue the clock from the previous frame.
                pts = (
                    float(vf.time)
                    if vf.time is not None
                    else (last_pts + 1.0 / rate if last_pts is not None else 0.0)
                )
                last_pts = pts
                if pacer is not None:
                    pacer.wait_for(pts)
                frame = Frame(self.name, self._decoded, pts, time.time(), to_bgr(vf), self._connection)
                if not self._buffer.put(frame, self._stop):
                    raise _Stopped
                with self._lock:
                    self._decoded += 1
                self._decoded_since_open += 1
                last_frame_t = now
                if on_first_frame is not None and self._decoded_since_open == 1:
                    on_first_frame()
            if self.spec.live and now - last_frame_t > self.spec.silent_after_s:
                raise _Silent
        return packets

    def _count_container(self, delta: int) -> None:
        with self._lock:
            self._open_containers += delta

    def _close(self, container: Any) -> None:
        try:
            container.close()
        except Exception as exc:  # closing must not mask the real failure
            log.warning("source %s: closing the container failed: %s", self.name, mask_text(str(exc)))
        finally:
            self._count_container(-1)


def _check_complete(stream: Any, packets: int) -> None:
    """Raise when a file ended before the frames its header lists (a truncated mp4 just ends early).

    FFmpeg reports a cut-off mp4 as a plain end of file; the sample table in the header still counts
    every frame, so fewer packets than that means the data is missing. A small slack tolerates headers
    that count frames a little differently (e.g. AVI index entries).
    """
    expected = int(stream.frames or 0)
    if expected and packets < expected - max(2, expected // 100):
        raise ValueError(
            f"file is truncated or damaged: its header lists {expected} frames but only {packets} could be read"
        )


class _Pacer:
    """Sleeps so frames leave at their presentation times (realtime replay of a file)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._t0: float | None = None
        self._p0 = 0.0

    def wait_for(self, pts: float) -> None:
        now = time.monotonic()
        if self._t0 is None or pts < self._p0:
            self._t0, self._p0 = now, pts
            return
        delay = self._t0 + (pts - self._p0) - now
        if delay > 0:
            self._stop.wait(delay)


def _decode_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.InvalidDataError,)


def open_source(spec: SourceSpec, on_event: EventCallback | None = None) -> Source:
    """Create (not start) the reader of `spec`.

    Args:
        spec: What to read.
        on_event: Called from the reader thread as `on_event(source_name, kind, detail)` with kind one
            of `EVENT_KINDS`; detail values are JSON-friendly and never contain a password.

    Returns:
        The `Source`; call `start()`, poll `get()`, and `stop()` it.
    """
    return Source(spec, on_event)
