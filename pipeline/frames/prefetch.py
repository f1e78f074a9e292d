"""Run an iterator ahead on its own thread: the one-thread frame path's overlap of its two halves.

`FrameProcessor.in_order` (archive jobs, `render`, the notebook API) reads, decodes, detects, tracks and
aligns the next frames here while the caller's thread runs the engine on the current ones: PyAV, OpenCV
and ONNX Runtime release the GIL, so on two cores the halves overlap as `run`'s threads do. Order is
kept (one producer, one FIFO queue), so results are the same as without the overlap; an exception of the
producer is raised in the consumer at the point where its item would have come.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class Prefetch(Generic[T]):
    """Iterate `items` on a thread, up to `depth` items ahead of the consumer; `close()` when done early."""

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name="prefetch", daemon=True)
        self._thread.start()

    def _run(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised where its item would have come
            self._put(_Raised(exc))
            return
        self._put(_END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the producer (the consumer left early) and wait for it to finish its current item."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.1)


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
