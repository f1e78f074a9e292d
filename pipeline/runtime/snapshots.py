"""Snapshots for the dashboard: a small JPEG of what a source sees, with its faces boxed and labelled.

Off by default (`snapshots.enabled`): the pictures show people's faces. When on, a worker writes a
source's snapshot only while a dashboard asks for it (`keys.snapshot_request_key`, which the dashboard
sets with a short expiry whenever a page shows that source), at most once per `every_s`, scaled to
`width` and capped at `max_bytes` (the JPEG quality is lowered until it fits; a picture that cannot fit
is skipped). Each snapshot expires after 3 x `every_s`, so none outlives its source for long.

The engine thread only offers frames (`offer`: a dict lookup per result); the request check, drawing,
encoding and the Redis write run on this module's own thread, and offers are dropped while it is busy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time

import numpy as np

from affectstream.pipeline.streams.keys import snapshot_key, snapshot_request_key
from affectstream.pipeline.types import FrameResult

log = logging.getLogger(__name__)

QUALITIES = (80, 65, 50, 35, 20)


def encode_snapshot(image: np.ndarray, result: FrameResult, width: int, max_bytes: int) -> bytes | None:
    """`image` (BGR) scaled down to `width` with `result`'s faces drawn, as a JPEG of at most `max_bytes`;
    None when even the lowest quality is too big."""
    import cv2

    from affectstream.pipeline.frames.draw import draw_face

    scale = min(width, image.shape[1]) / image.shape[1]  # never enlarged
    width = round(image.shape[1] * scale)
    small = cv2.resize(image, (width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    for face in result.faces:  # drawn after scaling, so that labels stay readable
        draw_face(
            small,
            dataclasses.replace(
                face,
                box=[v * scale for v in face.box],
                landmarks=[[x * scale, y * scale] for x, y in face.landmarks or []],
            ),
        )
    for quality in QUALITIES:
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(jpeg) <= max_bytes:
            return jpeg.tobytes()
    return None


class SnapshotWriter:
    """Writes requested snapshots of a worker's sources (see the module docstring).

    Args:
        client: Redis client (its own: this runs on its own thread).
        cfg: `SnapshotsConfig`.
    """

    def __init__(self, client, cfg) -> None:
        self.client, self.cfg = client, cfg
        self._due: dict[str, float] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self.written = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self._thread.start()

    def offer(self, image: np.ndarray, result: FrameResult) -> None:
        """Called for every inferred frame; takes one per source per `every_s`."""
        now = time.monotonic()
        if now < self._due.get(result.source, 0.0):
            return
        self._due[result.source] = now + self.cfg.every_s
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait((image, result))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            image, result = item
            try:
                self._write(image, result)
            except Exception as exc:  # a snapshot is a convenience: never a reason to stop the worker
                log.warning("snapshot of %s failed: %s", result.source, type(exc).__name__)

    def _write(self, image: np.ndarray, result: FrameResult) -> None:
        if not self.client.exists(snapshot_request_key(result.source)):
            return
        jpeg = encode_snapshot(image, result, self.cfg.width, self.cfg.max_bytes)
        if jpeg is None:
            log.warning("snapshot of %s does not fit in %d bytes; skipped", result.source, self.cfg.max_bytes)
            return
        ttl_ms = max(1000, int(self.cfg.every_s * 3000))
        self.client.set(snapshot_key(result.source), jpeg, px=ttl_ms)
        self.written += 1
