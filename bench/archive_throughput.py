"""Throughput of `affectstream archive work` on this machine, with 1 and with 2 worker processes.

For each process count: a fresh embedded Redis, `--copies` copies of a 640x360 clip from ../shared
(each copy is its own job), `archive submit`, then `archive work -j N --until-empty` timed from start to
exit (model loading included, as a user would see it). Prints a table and writes JSON.

    .venv/bin/python bench/archive_throughput.py                       # defaults: 4 x WolfgangLanger, -j 1 and 2
    .venv/bin/python bench/archive_throughput.py --det-size 320 --detect-every 2

The emotion model is the shipped one when it exists; `--model PATH` picks another (e.g. an untrained
export of the same architecture while the shipped one is still training: the cost is the same).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from affectstream.pipeline.tables import format_table  # noqa: E402
from bench.inputs import detector_path, need, shared_dir  # noqa: E402
from bench.machine import describe, finish  # noqa: E402


def cli(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "affectstream", *args], cwd=REPO, capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"`affectstream {' '.join(args[:2])}` failed:\n{proc.stderr[-3000:]}")
    return proc


def measure(video: Path, copies: int, processes: int, args: argparse.Namespace, detector: Path) -> dict:
    from affectstream.pipeline.archive.jobs import list_jobs
    from affectstream.pipeline.streams.connection import redis_session

    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        tmp = Path(tmp)
        clips = []
        for i in range(copies):
            clips.append(tmp / "videos" / f"{video.stem}_{i}{video.suffix}")
            clips[-1].parent.mkdir(exist_ok=True)
            shutil.copy(video, clips[-1])
        with redis_session(None, tmp / "redis") as (url, client):
            cli(
                "archive",
                "submit",
                "--redis",
                url,
                "--output",
                str(tmp / "out"),
                "--detector",
                str(detector),
                "--model",
                args.model,
                "--det-size",
                str(args.det_size),
                "--detect-every",
                str(args.detect_every),
                *map(str, clips),
            )
            t0 = time.monotonic()
            cli("archive", "work", "--redis", url, "--until-empty", "-j", str(processes))
            wall = time.monotonic() - t0
            rows = list_jobs(client)
    states = {r["state"] for r in rows}
    if states != {"done"}:
        raise SystemExit(f"jobs ended {states}: {[r.get('reason') for r in rows]}")
    frames = sum(int(r["frames_done"]) for r in rows)
    per_job = [float(r["fps_processing"]) for r in rows]
    fps_video = float(rows[0]["fps"])
    return {
        "processes": processes,
        "jobs": len(rows),
        "frames": frames,
        "wall_s": round(wall, 2),
        "frames_per_s": round(frames / wall, 2),
        "per_job_frames_per_s": [round(x, 2) for x in per_job],
        "videos_per_hour": round(3600 * len(rows) / wall, 1),
        "video_hours_per_hour": round(frames / wall / fps_video, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default="WolfgangLanger_Pexels.mp4", help="clip under <shared>/media/videos")
    p.add_argument("--copies", type=int, default=4, help="jobs per measurement (copies of the clip)")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--det-size", type=int, default=640)
    p.add_argument("--detect-every", type=int, default=1)
    p.add_argument("--model", default="default")
    p.add_argument("-o", "--output", default=str(REPO / "bench" / "results" / "archive_throughput.json"))
    args = p.parse_args(argv)

    video = need(shared_dir() / "media" / "videos" / args.video)
    from affectstream.pipeline.archive.run import probe

    info = probe(str(video))
    machine = describe()
    runs = [measure(video, args.copies, n, args, detector_path()) for n in args.processes]
    report = {
        "video": {"name": video.name, **info},
        "settings": {
            "det_size": args.det_size,
            "detect_every": args.detect_every,
            "model": args.model,
            "copies": args.copies,
        },
        "runs": runs,
        "machine": finish(machine),
    }
    print(
        f"{video.name}: {info['frames']} frames, {info['width']}x{info['height']}, {info['fps']:.2f} fps; "
        f"detector {args.det_size}px every {args.detect_every} frame(s); model {args.model}"
    )
    rows = [
        (
            r["processes"],
            r["jobs"],
            r["frames"],
            f"{r['wall_s']:.1f}",
            f"{r['frames_per_s']:.1f}",
            f"{r['videos_per_hour']:.0f}",
            f"{r['video_hours_per_hour']:.2f}",
        )
        for r in runs
    ]
    header = ("procs", "jobs", "frames", "wall s", "frames/s", "videos/h", "x realtime")
    print(format_table(header, rows, align=">" * len(header)))
    print(f"load average at start {machine['loadavg_at_start']}, at end {machine['loadavg_at_end']}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
