"""`affectstream bench capacity`: how many 30 fps cameras one member (one worker) holds, at 640x360 and at
1920x1080 (`RESOLUTIONS`; `--resolution` picks one).

N concurrent realtime replays of the live clip at the resolution (`bench.inputs.live_clip`, looping like a
reconnecting camera) run in one worker for `seconds`, for N = 1, 2, 3, ... until the first N that misses a target:
more than 1% of the decoded frames dropped, or p99 latency (decode to XADD) above 100 ms. The capacity
is the last N that met both. Each N runs `runs` times and is judged on the medians, so one noisy run on
a shared machine neither makes nor breaks a count.

The cameras run at the config's `detector.live` settings unless `live` says otherwise; `coverage`
measures what those settings cost in faces: the archive workload (every shared video and the many-face
clip, every frame published) detected at them against detecting every frame at 640x640, as the main
benchmark measures `detect_every 3` (`bench.e2e.coverage`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import e2e, inputs, machine
from bench.stats import median

log = logging.getLogger("bench")

# The live defaults before issue 13: what `--baseline` measures.
BASELINE = {"input_size": [640, 640], "detect_every": 1}
# Camera resolutions searched by default: the shared clip's own, and what most real cameras send.
RESOLUTIONS = ((640, 360), (1920, 1080))
QUIET_LOAD = 1.5  # a sitting whose 1-minute load starts above this is flagged: its figures are not comparable


@dataclass(frozen=True)
class Targets:
    max_drop_rate: float = 0.01
    max_p99_ms: float = 100.0

    def met(self, drop_rate: float, p99_ms: float) -> bool:
        return drop_rate <= self.max_drop_rate and p99_ms <= self.max_p99_ms


@dataclass(frozen=True)
class CapacitySettings:
    """One capacity search.

    Attributes:
        live: `detector.live` settings of the cameras; None: the config's defaults.
        seconds: Length of each run (the first second is warm-up for latency; drops count throughout).
        runs: Runs per camera count (medians judged).
        max_cameras: Stop searching here even if every count met the targets.
        coverage: Also measure face-frame coverage of `live` against detecting every frame.
    """

    live: dict | None = None
    resolution: tuple[int, int] = RESOLUTIONS[0]
    seconds: float = 15.0
    runs: int = 2
    max_cameras: int = 16
    coverage: bool = False
    targets: Targets = Targets()


def resolved_live(live: dict | None) -> dict:
    """The `detector.live` settings a run uses: `live` over the config's defaults."""
    from affectstream.pipeline.config import load_config

    cfg = load_config(None, {"detector": {"live": live or {}}})
    size = cfg.detector.live.input_size
    return {
        "input_size": size if isinstance(size, str) else list(size),
        "detect_every": cfg.detector.live.detect_every,
    }


def search(s: CapacitySettings, live: dict, clip: Path, detector: Path, model: Path, url: str) -> dict:
    """Run 1, 2, ... cameras at `live` until a count misses a target; the rows and the capacity."""
    rows: list[dict] = []
    capacity = 0
    for n in range(1, s.max_cameras + 1):
        runs = []
        for r in range(s.runs):
            log.info("capacity: %d camera(s), run %d/%d, %.0f s", n, r + 1, s.runs, s.seconds)
            result = e2e.live_run(clip, n, s.seconds, detector, model, (640, 640), url, live=live)
            runs.append(e2e.live_metrics(result))
        drop, p99 = median([m["drop_rate"] for m in runs]), median([m["p99_ms"] for m in runs])
        ok = s.targets.met(drop, p99)
        rows.append(
            {
                "cameras": n,
                "ok": ok,
                "drop_rate": round(drop, 4),
                "p99_ms": round(p99, 1),
                "published_fps": round(median([m["published_fps"] for m in runs]), 1),
                "cpu_ms_per_frame": round(median([m["cpu_ms_per_frame"] for m in runs]), 2),
                "runs": runs,
            }
        )
        if not ok:
            break
        capacity = n
    # `complete`: a count missed the targets; else `max_cameras` cut the search and the capacity is a floor.
    # The bound from the last row's cost, as issue 28 measured it (the count that missed the targets).
    return {
        "capacity": capacity,
        "complete": capacity < len(rows),
        "rows": rows,
        "cpu_ms_per_frame": rows[-1]["cpu_ms_per_frame"],
        "cpu_bound_cameras": cpu_bound(rows[-1]["cpu_ms_per_frame"]),
    }


def cpu_bound(cpu_ms_per_frame: float, fps: float = 30.0) -> float:
    """Cameras this machine's cores could hold at this worker CPU per frame with nothing else running:
    the capacity a loaded machine cannot show, read from what a camera costs (no search counts it)."""
    cores = os.cpu_count() or 1
    return round(cores * 1000.0 / (fps * cpu_ms_per_frame), 1) if cpu_ms_per_frame else 0.0


def coverage(lives: list[dict], detector: Path, model: Path, url: str, workdir: Path) -> list[dict]:
    """Face-frame coverage of detecting at each of `lives` against every frame at 640x640 (the archive
    workload), with each variant's archive frames/s (a quick, load-sensitive hint of its cost)."""
    videos = [*inputs.shared_videos(), inputs.many_face_clip(workdir, 180)]
    base = e2e.archive_run(videos, "cov-base", detector, model, BASELINE["input_size"], url)
    out = []
    for live in lives:
        log.info("coverage of %s against every frame at 640x640", live)
        other = e2e.archive_run(
            videos, "cov-live", detector, model, live["input_size"], url, detect_every=live["detect_every"]
        )
        fps = e2e.archive_metrics(other)["fps"]
        out.append({**live, **e2e.coverage(base, other), "archive_fps": round(fps, 1)})
    return out


def _session(detector: str | None, model: str | None, workdir: str) -> tuple[Path, Path, Path]:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    return work, Path(detector) if detector else inputs.detector_path(), inputs.model_path(model)


def run_coverage_sweep(
    everies: list[int],
    input_size=None,
    *,
    detector: str | None = None,
    model: str | None = None,
    redis_url: str = "",
    workdir: str = "var/bench",
) -> dict:
    """Coverage of each detect cadence at the live input size: how far `detector.live.detect_every`
    may go before coverage falls under 99% (`bench capacity --coverage-sweep`)."""
    from affectstream.pipeline.streams.connection import redis_session

    work, det, mdl = _session(detector, model, workdir)
    size = resolved_live({"input_size": input_size} if input_size else None)["input_size"]
    out: dict = {"machine": machine.describe()}
    with (
        tempfile.TemporaryDirectory(prefix="redis-", dir=work) as redis_dir,
        redis_session(redis_url, redis_dir) as (url, _client),
    ):
        lives = [{"input_size": size, "detect_every": n} for n in everies]
        out["coverage"] = coverage(lives, det, mdl, url, work)
    out["machine"] = machine.finish(out["machine"])
    return out


def run_capacity(
    s: CapacitySettings,
    *,
    detector: str | None = None,
    model: str | None = None,
    redis_url: str = "",
    workdir: str = "var/bench",
) -> dict:
    """The capacity search (and coverage) as one JSON-friendly result; `bench.report.capacity_markdown`
    prints it, `pipeline.fleet.capacity.write_capacity` stores it for `fleet.max_sources: auto`."""
    from affectstream.pipeline.streams.connection import redis_session

    started = time.monotonic()
    work, det, mdl = _session(detector, model, workdir)
    clip = inputs.live_clip(work, size=s.resolution)
    live = resolved_live(s.live)
    described = machine.describe()
    out: dict = {
        "width": s.resolution[0],
        "height": s.resolution[1],
        "machine": described,
        "quiet": described["loadavg_at_start"][0] < QUIET_LOAD,
        "live": live,
        "targets": vars(s.targets),
    }
    if not out["quiet"]:
        log.warning(
            "capacity: load %.2f at start (>= %.1f): a busy machine; these figures are not comparable",
            described["loadavg_at_start"][0],
            QUIET_LOAD,
        )
    with (
        tempfile.TemporaryDirectory(prefix="redis-", dir=work) as redis_dir,
        redis_session(redis_url, redis_dir) as (url, _client),
    ):
        out.update(search(s, live, clip, det, mdl, url))
        if s.coverage:
            out["coverage"] = coverage([live], det, mdl, url, work)[0]
    out["settings"] = {
        "seconds": s.seconds,
        "runs": s.runs,
        "max_cameras": s.max_cameras,
        "clip": clip.name,
        "detector_file": str(det),
        "model_file": str(mdl),
    }
    out["duration_s"] = round(time.monotonic() - started, 1)
    out["machine"] = machine.finish(out["machine"])
    return out
