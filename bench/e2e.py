"""End-to-end runs through the real `Supervisor` and `Worker` processes, read back from Redis.

Archive mode: every frame of every workload file is published; throughput is frames over the time
from the first frame leaving a decoder (its `ts` field) to the last `XADD` (`ts` + `latency_ms`), so process
start-up and model loading, which a long archive job pays once, are not counted.

Live mode: files replayed at their native rate (`SourceSpec(realtime=True, live=True)`: newest-frame
policy, looping at EOF like a camera that reconnects); latency is each entry's `latency_ms` (frame
decode to XADD, measured by the worker); a frame the worker never took shows as a gap in the
per-source frame indices (the reader numbers every decoded frame), i.e. a drop.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import PeakSampler, percentile

log = logging.getLogger(__name__)


@dataclass
class Entry:
    frame: int
    ts: float  # frame left the decoder (unix s)
    added: float  # XADD time: capture time + the worker's decode-to-XADD latency (unix s)
    latency_ms: float
    faces: list = field(default_factory=list)


@dataclass
class RunResult:
    entries: dict[str, list[Entry]]
    peak_rss_mib: float
    wall_s: float
    exit_code: int
    cpu_s: float | None = None  # worker CPU seconds between the first decode and the last XADD

    @property
    def frames(self) -> int:
        return sum(len(e) for e in self.entries.values())

    @property
    def faces(self) -> int:
        return sum(len(x.faces) for e in self.entries.values() for x in e)

    def span_s(self) -> float:
        """First decode to last XADD over all sources."""
        first = min(e[0].ts for e in self.entries.values() if e)
        last = max(e[-1].added for e in self.entries.values() if e)
        return max(last - first, 1e-9)


def read_entries(client, source: str) -> list[Entry]:
    from affectstream.pipeline.streams.keys import frames_key

    out = []
    for _entry_id, f in client.xrange(frames_key(source)):
        # Not the entry id: a file pass's ids are <pass start ms>-<frame> (pipeline.entry_ids).
        ts, latency_ms = float(f[b"ts"]), float(f[b"latency_ms"])
        out.append(Entry(int(f[b"frame"]), ts, ts + latency_ms / 1000.0, latency_ms, json.loads(f[b"faces"])))
    return out


def run_supervised(
    overrides: dict, redis_url: str, *, duration_s: float | None = None, timeout_s: float = 900
) -> RunResult:
    """Run `affectstream run`'s supervisor in this process (main thread) and collect what it published.

    Args:
        overrides: Config overrides (`load_config(None, overrides)`), including `sources`.
        redis_url: A running Redis.
        duration_s: Stop (SIGTERM to ourselves, which the supervisor forwards to its workers) this long
            after the first frame is published (model loading, slow on a busy machine, is not counted);
            None waits for finite sources to end.
        timeout_s: A run that neither ends nor was given a duration is stopped after this long.
    """
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.logs import logging_env
    from affectstream.pipeline.runtime.supervisor import Supervisor
    from affectstream.pipeline.streams.connection import connect
    from affectstream.pipeline.streams.keys import events_key, frames_key

    cfg = load_config(None, {**overrides, "redis": {"url": redis_url}})
    client = connect(redis_url)
    names = [s.name for s in cfg.sources]
    client.delete(*[frames_key(n) for n in names], *[events_key(n) for n in names])
    supervisor = Supervisor(cfg, redis_url)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    done = threading.Event()
    watched = [frames_key(n) for n in names] if duration_s else []
    timer = threading.Thread(
        target=_stop_after, args=(client, watched, duration_s or timeout_s, timeout_s, done), daemon=True
    )
    start = time.monotonic()
    try:
        with PeakSampler(
            lambda: [s.process.pid for s in supervisor.slots if s.process is not None]
        ) as sampler:
            timer.start()
            with logging_env("warning"):  # the worker processes read it (`setup_logging`)
                code = supervisor.run()
            sampler.sample()
    finally:
        done.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    wall = time.monotonic() - start
    entries = {n: read_entries(client, n) for n in names}
    client.delete(*[frames_key(n) for n in names], *[events_key(n) for n in names])
    client.close()
    result = RunResult(entries, sampler.peak_mib, wall, code)
    if result.frames:
        first = min(e[0].ts for e in entries.values() if e)
        result.cpu_s = sampler.cpu_between(first, first + result.span_s())
    return result


def _stop_after(client, keys: list[str], seconds: float, timeout_s: float, done: threading.Event) -> None:
    """SIGTERM this process `seconds` after one of `keys` got its first entry (at once: no `keys`), or
    after `timeout_s` at most; nothing once `done` is set."""
    deadline = time.monotonic() + timeout_s
    while keys and not done.is_set() and time.monotonic() < deadline:
        if any(client.xlen(k) for k in keys):
            break
        done.wait(0.1)
    if not done.wait(max(0.0, min(seconds, deadline - time.monotonic()))):
        os.kill(os.getpid(), signal.SIGTERM)


def base_overrides(detector: Path, model: Path, det_size, detect_every: int = 1) -> dict:
    size = det_size if isinstance(det_size, str) else list(det_size)
    return {
        "detector": {"model": str(detector), "input_size": size, "detect_every": detect_every},
        "engine": {"model": str(model)},
        "workers": {"count": 1},
    }


def archive_run(
    videos: list[Path],
    tag: str,
    detector: Path,
    model: Path,
    det_size,
    redis_url: str,
    *,
    detect_every: int = 1,
    expected: dict[str, int] | None = None,
) -> RunResult:
    """All `videos` as file sources of one worker; checks every frame was published, in order."""
    over = base_overrides(detector, model, det_size, detect_every)
    over["sources"] = [{"name": f"{tag}-{i}", "url": str(v)} for i, v in enumerate(videos)]
    result = run_supervised(over, redis_url)
    if result.exit_code != 0:
        raise RuntimeError(f"archive run {tag} exited with {result.exit_code}")
    for i, video in enumerate(videos):
        got = [e.frame for e in result.entries[f"{tag}-{i}"]]
        want = (expected or {}).get(str(video))
        if got != list(range(len(got))) or (want is not None and len(got) != want):
            raise RuntimeError(
                f"archive run {tag}: {video.name} published {len(got)} frames (expected {want}), "
                "not every frame in order"
            )
    return result


def archive_metrics(result: RunResult) -> dict:
    span = result.span_s()
    return {
        "fps": result.frames / span,
        "faces_per_s": result.faces / span,
        "frames": result.frames,
        "faces": result.faces,
        "seconds": span,
        "cpu_ms_per_frame": 1000.0 * result.cpu_s / result.frames if result.cpu_s else 0.0,
        "wall_s": result.wall_s,
        "peak_rss_mib": result.peak_rss_mib,
    }


def live_run(
    clip: Path,
    streams: int,
    seconds: float,
    detector: Path,
    model: Path,
    det_size,
    redis_url: str,
    *,
    live: dict | None = None,
) -> RunResult:
    """`streams` concurrent realtime replays of `clip` in one worker for `seconds`.

    `live`: the `detector.live` settings (`input_size`, `detect_every`) the cameras run at; None: the
    config's defaults (`det_size` is the file sources' input, which live sources do not use).
    """
    over = base_overrides(detector, model, det_size)
    if live:
        over["detector"]["live"] = live
    over["sources"] = [
        {"name": f"live{streams}-{i}", "url": str(clip), "live": True, "realtime": True}
        for i in range(streams)
    ]
    return run_supervised(over, redis_url, duration_s=seconds)


def live_metrics(result: RunResult, warmup_s: float = 1.0, windows: int = 4) -> dict:
    """Latency percentiles (after `warmup_s`), drops, and p99 per time window (growth check)."""
    all_entries = [e for es in result.entries.values() for e in es]
    if not all_entries:
        raise RuntimeError("live run published nothing")
    t0 = min(e.added for e in all_entries) + warmup_s
    steady = sorted((e for e in all_entries if e.added >= t0), key=lambda e: e.added)
    lat = [e.latency_ms for e in steady]
    decoded = published = 0
    for es in result.entries.values():
        if es:
            # Frames after the last published one were still in flight at stop: not drops.
            decoded += es[-1].frame + 1
            published += len(es)
    span = (steady[-1].added - steady[0].added) if len(steady) > 1 else 0.0
    per_window = []
    if span > 0:
        for w in range(windows):
            lo, hi = steady[0].added + span * w / windows, steady[0].added + span * (w + 1) / windows
            chunk = [e.latency_ms for e in steady if lo <= e.added <= hi]
            per_window.append(round(percentile(chunk, 99), 1))
    return {
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(max(lat), 1) if lat else 0.0,
        "p99_per_window_ms": per_window,
        "published": published,
        "decoded": decoded,
        "dropped": decoded - published,
        "drop_rate": round((decoded - published) / decoded, 4) if decoded else 0.0,
        "published_fps": round(len(steady) / span, 1) if span else 0.0,
        # The worker's CPU per published frame: what a camera costs, hardly depending on the machine's load.
        "cpu_ms_per_frame": round(1000.0 * result.cpu_s / published, 2)
        if result.cpu_s and published
        else 0.0,
        "peak_rss_mib": round(result.peak_rss_mib, 1),
    }


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def coverage(base: RunResult, other: RunResult, iou: float = 0.5) -> dict:
    """How much of `base`'s faces `other` still reports, matched by source order and frame index.

    Returns:
        face_frames: share of base frames with a face where `other` has a face too;
        faces: share of base faces with an `other` face of IoU >= `iou` in the same frame.
    """
    frames_base = frames_hit = faces_base = faces_hit = 0
    for es_base, es_other in zip(base.entries.values(), other.entries.values(), strict=True):
        by_frame = {e.frame: e for e in es_other}
        for e in es_base:
            if not e.faces:
                continue
            frames_base += 1
            o = by_frame.get(e.frame)
            boxes = [f["box"] for f in o.faces] if o is not None else []
            frames_hit += bool(boxes)
            for f in e.faces:
                faces_base += 1
                faces_hit += any(_iou(f["box"], b) >= iou for b in boxes)
    return {
        "face_frames": round(frames_hit / frames_base, 4) if frames_base else 1.0,
        "faces_iou50": round(faces_hit / faces_base, 4) if faces_base else 1.0,
        "base_face_frames": frames_base,
        "base_faces": faces_base,
    }
