"""Prometheus metrics of one worker process (served on metrics.port + worker index)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_decoded = Counter(
            "affect_frames_decoded", "Frames taken from sources", ["source"], registry=r
        )
        self.frames_published = Counter(
            "affect_frames_published", "Frame entries written", ["source"], registry=r
        )
        self.frames_dropped = Counter(
            "affect_frames_dropped", "Live frames dropped (newest-frame policy)", ["source"], registry=r
        )
        self.faces = Counter("affect_faces", "Faces processed", ["source"], registry=r)
        self.reconnects = Counter("affect_reconnects", "Source reconnect attempts", ["source"], registry=r)
        self.batch_size = Histogram(
            "affect_batch_faces", "Faces per engine call", buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r
        )
        self.stage_seconds = Histogram(
            "affect_stage_seconds", "Time per stage call", ["stage"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.e2e_seconds = Histogram(
            "affect_e2e_seconds", "Frame decode to XADD", ["source"], buckets=_LATENCY_BUCKETS, registry=r
        )

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
