"""Redis Streams publishing, schema v1 (DESIGN.md): one entry per processed frame, faces or not."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import redis

from pipeline.keys import SCHEMA_VERSION, events_key, frames_key
from pipeline.masking import mask_text
from pipeline.types import FrameResult

log = logging.getLogger(__name__)

EVENT_KINDS = ("started", "reconnecting", "recovered", "eof", "error", "down")
EVENTS_MAXLEN = 10_000


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def encode_faces(result: FrameResult) -> list[dict]:
    return [
        {
            "track": int(f.track),
            "box": [_r(v, 1) for v in f.box],
            "score": _r(f.score),
            "expr": f.expr,
            "probs": {k: _r(p) for k, p in f.probs.items()},
            "valence": None if f.valence is None else _r(f.valence),
            "arousal": None if f.arousal is None else _r(f.arousal),
        }
        for f in result.faces
    ]


def encode_frame(result: FrameResult) -> dict[str, str]:
    """The stream entry of one frame result (all values strings, as Redis stores them)."""
    return {
        "v": str(SCHEMA_VERSION),
        "source": result.source,
        "frame": str(result.frame),
        "pts": f"{result.pts:.6f}",
        "ts": f"{result.ts:.6f}",
        "n": str(len(result.faces)),
        "faces": json.dumps(encode_faces(result), separators=(",", ":")),
        "model": result.model,
        "latency_ms": f"{result.latency_ms:.2f}",
    }


class ResultPublisher:
    """Pipelined, capped XADD of frame results.

    Args:
        client: Redis client.
        maxlen: Approximate cap of each results stream (`XADD MAXLEN ~`).
    """

    def __init__(self, client: redis.Redis, maxlen: int) -> None:
        self.client = client
        self.maxlen = maxlen

    def publish(self, results: Sequence[FrameResult], ids: Sequence[str] | None = None) -> list:
        """Write `results` in one round trip; returns XADD replies (entry ids).

        With explicit `ids` (archives) a reply may be a ResponseError when the id is not above the
        stream's top id: that frame was already published, which is exactly the duplicate guard.
        """
        if not results:
            return []
        pipe = self.client.pipeline(transaction=False)
        for i, result in enumerate(results):
            pipe.xadd(
                frames_key(result.source),
                encode_frame(result),
                id=ids[i] if ids is not None else "*",
                maxlen=self.maxlen,
                approximate=True,
            )
        return pipe.execute(raise_on_error=ids is None)


def publish_event(client: redis.Redis, source: str, kind: str, detail: dict | None = None) -> None:
    """Append a source event (started, reconnecting, recovered, eof, error, down); reasons are masked."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind {kind!r} is not one of {EVENT_KINDS}")
    fields = {"kind": kind, "source": source, "ts": f"{time.time():.6f}"}
    for key, value in (detail or {}).items():
        fields[str(key)] = mask_text(str(value))
    client.xadd(events_key(source), fields, maxlen=EVENTS_MAXLEN, approximate=True)
