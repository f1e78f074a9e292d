"""A running source: one reader thread decoding with PyAV into a frame buffer (`Source`, `open_source`).

A file is read once to its end (`eof`) or its first unreadable packet (`error`); a live source (RTSP,
HTTP, a device) reconnects forever with capped, jittered backoff, reports its life as events (`started`,
`reconnecting`, `recovered`, `degraded`) and states, and never raises into its consumer. Over 300 lines
on purpose: the life of one reader thread (open, decode, reconnect, count, stop) reads best in one class;
each step it takes is its own module beside it (`_av` opening and errors, `_decode` packets to frames,
`_pictures` joining split pictures, `_corruption` counting damaged ones, `_buffer`, `_backoff`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.sources import _av
from affectstream.pipeline.sources._backoff import Backoff
from affectstream.pipeline.sources._buffer import Doorbell, FrameBuffer
from affectstream.pipeline.sources._corruption import CorruptionWatch
from affectstream.pipeline.sources._decode import MAX_BAD_PACKETS, Pacer, PacketDecoder
from affectstream.pipeline.sources._pictures import PictureJoiner
from affectstream.pipeline.sources.files import VideoFile
from affectstream.pipeline.sources.spec import SourceSpec
from affectstream.pipeline.streams.schema import READER_EVENT_KINDS
from affectstream.pipeline.types import Frame

log = logging.getLogger("affectstream.pipeline.sources")

EventCallback = Callable[[str, str, dict], None]
# What `on_event` reports: `streams.schema.READER_EVENT_KINDS`. Corrupt pictures are counted, never handed on.
EVENT_KINDS = READER_EVENT_KINDS
# Kinds whose demuxer may hand out pieces of a picture (pipeline.sources._pictures).
_JOINED_KINDS = ("rtsp", "http")
STATES = ("starting", "live", "reconnecting", "down", "eof", "error")


@dataclass(frozen=True)
class SourceStats:
    """A snapshot of a source's counters.

    Attributes:
        decoded: Frames decoded (handed to the buffer, or counted in `corrupt`).
        dropped: Frames replaced unread under the live policy.
        reconnects: Reconnect attempts so far.
        state: starting | live | reconnecting | down (stopped) | eof | error.
        corrupt: Frames of a live source the decoder flagged as corrupt (a slice lost in transit, a missing
            reference), and those predicted from such a frame up to the next keyframe: counted in
            `decoded`, never put in the buffer, so they never reach the model.
    """

    decoded: int
    dropped: int
    reconnects: int
    state: str
    corrupt: int = 0


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

    def __init__(
        self, spec: SourceSpec, on_event: EventCallback | None = None, doorbell: Doorbell | None = None
    ) -> None:
        self.spec = spec
        self._on_event = on_event
        self._buffer: FrameBuffer[Frame] = FrameBuffer(spec.queue_size, bool(spec.live), doorbell)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = "starting"
        self._decoded = 0
        self._corrupt = 0
        self._reconnects = 0
        self._corruption = CorruptionWatch()
        self._transport: str | None = None  # the RTSP transport of the last successful open
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
            return SourceStats(
                self._decoded, self._buffer.dropped, self._reconnects, self._state, self._corrupt
            )

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
        level = logging.WARNING if kind in ("reconnecting", "degraded", "error") else logging.INFO
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
            video = VideoFile(self.spec)
        except Exception as exc:
            self._fail(
                f"cannot open {self.spec.safe_url}: {_av.describe_error(exc, self.spec, opening=True)}"
            )
            return
        self._count_container(+1)
        try:
            self._set_state("live")
            self._emit("started", url=self.spec.safe_url, live=False, **_av.stream_info(video.stream))
            for frame in video.frames(stop=self._stop):
                self._put(frame)
            if self._stop.is_set():
                return
        except _Stopped:
            return
        except Exception as exc:
            self._fail(
                f"decoding {self.spec.safe_url} failed after {self._decoded} frames: "
                f"{_av.describe_error(exc, self.spec)}"
            )
            return
        finally:
            self._close(video)
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
                container = self._open()
                self._count_container(+1)
                stream = _av.video_stream(container, self.spec)
                info = _av.stream_info(stream, self._transport)
                if started:
                    self._connection += 1  # read by _decode for every frame of this connection
                else:
                    started = True
                    self._set_state("live")
                    self._emit("started", url=self.spec.safe_url, live=True, **info)

                def recovered(attempts: int = attempt, since: float = down_since, info: dict = info) -> None:
                    self._set_state("live")
                    if attempts:
                        down_s = round(time.monotonic() - since, 3)
                        self._emit("recovered", attempts=attempts, down_s=down_s, **info)

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

    def _open(self) -> Any:
        """Open the container, trying each RTSP transport `rtsp_transport` allows; `_OpenFailed` if none."""
        order = _av.transports(self.spec, self._transport)
        for i, transport in enumerate(order):
            if self._stop.is_set():
                raise _Stopped
            try:
                container = _av.open_container(self.spec, transport)
            except Exception as exc:
                if i + 1 < len(order) and _av.transport_refused(exc):
                    log.info(
                        "source %s: rtsp_transport %s refused (461), trying %s",
                        self.name,
                        transport,
                        order[i + 1],
                    )
                    continue
                reason = _av.describe_error(exc, self.spec, opening=True, transport=transport)
                raise _OpenFailed(reason) from exc
            self._transport = transport
            return container
        raise AssertionError("transports() is never empty")

    def _decode(self, container: Any, stream: Any, on_first_frame: Callable[[], None]) -> None:
        """Decode a live `stream` into the buffer until EOF; raises on errors, `_Stopped` or `_Silent`."""
        decoder = PacketDecoder(stream, self.name, MAX_BAD_PACKETS)
        joiner = PictureJoiner(stream.codec_context.name if self.spec.kind in _JOINED_KINDS else "")
        pacer = Pacer(self._stop) if self.spec.realtime else None
        last_frame_t = time.monotonic()
        # FFmpeg flags the picture that lost a slice, not the ones predicted from it after: they carry the
        # damage (smeared areas) until the next keyframe, so they count as corrupt too.
        damaged = False
        for packet in container.demux(stream):
            if self._stop.is_set():
                raise _Stopped
            now = time.monotonic()
            for picture in joiner.push(packet):
                for pts, vf in decoder.decode(picture):
                    last_frame_t = now
                    self._decoded_since_open += 1
                    if self._decoded_since_open == 1:
                        on_first_frame()
                    damaged = vf.is_corrupt or (damaged and not vf.key_frame)
                    if not self._take(damaged):
                        continue
                    if pacer is not None:
                        pacer.wait_for(pts)
                    ts = time.time()  # before the conversion, as in the file iterator: latency counts it
                    self._put(Frame(self.name, self._decoded, pts, ts, decoder.to_bgr(vf), self._connection))
            if now - last_frame_t > self.spec.silent_after_s:
                raise _Silent

    def _take(self, corrupt: bool) -> bool:
        """Whether a decoded live frame goes on; a corrupt one is counted (decoded, corrupt) and dropped."""
        degraded = self._corruption.add(corrupt)
        if degraded is not None:
            self._emit("degraded", **degraded)
        if corrupt:
            with self._lock:
                self._decoded += 1
                self._corrupt += 1
        return not corrupt

    def _put(self, frame: Frame) -> None:
        """Hand `frame` to the consumer (waiting for space under the file policy); `_Stopped` on stop."""
        # Counted before it can be taken: a metrics scrape must never see a frame published but not decoded.
        with self._lock:
            self._decoded += 1
        if not self._buffer.put(frame, self._stop):
            with self._lock:  # never handed over: not decoded for anyone to account for
                self._decoded -= 1
            raise _Stopped

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


def open_source(
    spec: SourceSpec, on_event: EventCallback | None = None, doorbell: Doorbell | None = None
) -> Source:
    """Create (not start) the reader of `spec`.

    Args:
        spec: What to read.
        on_event: Called from the reader thread as `on_event(source_name, kind, detail)` with kind one
            of `EVENT_KINDS`; detail values are JSON-friendly and never contain a password.

        doorbell: Rung whenever the source has a frame for its consumer, or ends (a consumer of many
            sources waits on one doorbell).

    Returns:
        The `Source`; call `start()`, poll `get()`, and `stop()` it.
    """
    return Source(spec, on_event, doorbell)
