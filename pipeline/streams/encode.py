"""Stream entries of schema v1 (DESIGN.md, `pipeline/streams/schema/*.schema.json`): a frame result or a
source event as the string fields Redis stores. Numbers are rounded to what a consumer can use (boxes to
0.1 px, scores and probabilities to 1e-4), which keeps entries small; event details are masked, since their
reasons quote URLs and server errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.streams.keys import SCHEMA_VERSION
from affectstream.pipeline.streams.schema import EVENT_KINDS, EVENT_VERSION
from affectstream.pipeline.types import FrameResult


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


def encode_frame(result: FrameResult, worker: str = "") -> dict[str, str]:
    """The stream entry of one frame result (all values strings, as Redis stores them).

    `worker` (optional in schema v1) names the worker run that wrote the entry.
    """
    fields = {
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
    if worker:
        fields["worker"] = worker
    return fields


def encode_event(
    source: str, kind: str, detail: Mapping | None = None, *, ts: float | None = None, worker: str = ""
) -> dict[str, str]:
    """The entry of a source event; every detail value is masked (reasons quote URLs and server errors)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind {kind!r} is not one of {EVENT_KINDS}")
    fields = {
        "v": str(EVENT_VERSION),
        "kind": kind,
        "source": source,
        "ts": f"{time.time() if ts is None else ts:.6f}",
    }
    if worker:
        fields["worker"] = worker
    for key, value in (detail or {}).items():
        if value is not None:  # absent stays absent (events v1 stored "None")
            fields[str(key)] = mask_text(event_text(value))
    return fields


def event_text(value: object) -> str:
    """An event detail as stored (events v2): booleans `true`/`false` (v1 stored Python's "True"),
    numbers in decimal, anything else as its text; `pipeline.streams.events` reads them back typed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
