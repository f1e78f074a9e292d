"""The one heartbeat writer: `affect:worker:<id>:heartbeat`, for `run`'s workers and `archive work`'s.

A heartbeat is JSON (docs/consumer/README.md) written with a TTL. It states that TTL (`ttl_ms`), so a
reader tells the beat's age by Redis's clock alone, TTL minus PTTL (`pipeline.streams.liveness`):
`affectstream health` never compares two hosts' wall clocks. `ts` is data, `host` and `pid` say whose
beat it is (`health` judges this host's workers by `host`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

from affectstream.pipeline.streams.keys import heartbeat_key, host_id

log = logging.getLogger(__name__)


def write_heartbeat(client, worker_id: str, ttl_ms: int, **fields) -> None:
    """Write `worker_id`'s beat with `fields` (published, sources, stats, ...); raises Redis's errors."""
    beat = {"ts": time.time(), "ttl_ms": ttl_ms, "pid": os.getpid(), "host": host_id(), **fields}
    client.set(heartbeat_key(worker_id), json.dumps(beat), px=ttl_ms)


def clear_heartbeat(client, worker_id: str) -> None:
    """Remove `worker_id`'s beat (it stopped cleanly: `health` need not wait for the key to expire)."""
    client.delete(heartbeat_key(worker_id))


class Heartbeat:
    """Writes one process's beat every `interval_s` on a daemon thread until `stop` is set.

    Args:
        fields: Called for the beat's own fields at each beat (`write_heartbeat`).
    """

    def __init__(
        self, client, worker_id: str, ttl_ms: int, fields: Callable[[], dict], *, interval_s: float, stop
    ) -> None:
        self._client = client
        self._worker_id = worker_id
        self._ttl_ms = ttl_ms
        self._fields = fields
        self._interval_s = interval_s
        self._stop = stop

    def beat(self) -> None:
        """One beat now; a Redis error is logged, not raised (the next beat may get through)."""
        try:
            write_heartbeat(self._client, self._worker_id, self._ttl_ms, **self._fields())
        except Exception as exc:
            log.warning("heartbeat failed: %s", exc)

    def start(self) -> None:
        threading.Thread(target=self._loop, name="heartbeat", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()
