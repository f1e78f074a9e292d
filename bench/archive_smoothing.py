"""What centred per-track smoothing (`archive submit --smooth N`) does to the scores and to jitter.

The only labelled video in ../shared is AFEW-VA clip 001 (42 frames with per-frame valence/arousal,
integers in [-10, 10], scaled here by 1/10 to ABAW's [-1, 1]). Its labels are constant (V=0, A=5), so
CCC is 0 or undefined whatever the predictions: the script reports RMSE and sign agreement against the
labels, and, on every video, the frame-to-frame jitter of the subject's valence/arousal (mean absolute
change between consecutive frames) and how often the EXPR label flips.

Each video is processed once (`archive` job, smoothing off); the files for every window are then
rebuilt from the same frames stream, so the windows differ in smoothing only.

    .venv/bin/python bench/archive_smoothing.py [--model PATH] [--windows 0 3 5 9]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from affectstream.pipeline.tables import format_table  # noqa: E402
from bench.inputs import detector_path, need, shared_dir  # noqa: E402


def afew_clip(folder: Path, out: Path) -> tuple[Path, np.ndarray]:
    """The clip's PNG frames as a lossless video, and its labels as [frames, 2] in [-1, 1]."""
    import av

    frames = sorted(folder.glob("*.png"))
    labels = json.loads(next(folder.glob("*.json")).read_text())["frames"]
    va = np.array([[labels[p.stem]["valence"] / 10, labels[p.stem]["arousal"] / 10] for p in frames])
    with av.open(str(out), "w") as container:
        stream = None
        for png in frames:
            with av.open(str(png)) as img:
                frame = next(img.decode(video=0)).reformat(format="yuv444p")
            if stream is None:
                stream = container.add_stream("ffv1", rate=25)
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv444p"
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out, va


def jitter(va: np.ndarray, expr: np.ndarray) -> dict:
    ok = (va[:, 0] != -5) & (va[:, 1] != -5)
    both = ok[1:] & ok[:-1]
    d = np.abs(np.diff(va, axis=0))[both]
    e = (expr != -1)[1:] & (expr != -1)[:-1]
    flips = (np.diff(expr) != 0)[e]
    return {
        "valence_jitter": round(float(d[:, 0].mean()), 4) if len(d) else None,
        "arousal_jitter": round(float(d[:, 1].mean()), 4) if len(d) else None,
        "expr_flips_per_100": round(100 * float(flips.mean()), 1) if len(flips) else None,
    }


def main(argv: list[str] | None = None) -> int:
    from affectstream.pipeline.archive import jobs
    from affectstream.pipeline.archive.outputs import write_outputs
    from affectstream.pipeline.archive.params import JobParams
    from affectstream.pipeline.archive.run import probe, run_job
    from affectstream.pipeline.archive.worker import ProcessorCache, WorkerOptions
    from affectstream.pipeline.streams.connection import redis_session
    from affectstream.scoring.abaw import read_expr, read_va

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--windows", type=int, nargs="+", default=[0, 3, 5, 9])
    p.add_argument("-o", "--output", default=str(REPO / "bench" / "results" / "archive_smoothing.json"))
    args = p.parse_args(argv)

    shared = shared_dir()
    with (
        tempfile.TemporaryDirectory(prefix="archive-smooth-") as tmp,
        redis_session(None, Path(tmp) / "redis") as (url, client),
    ):
        tmp = Path(tmp)
        clip, labels = afew_clip(need(shared / "data" / "afew_va" / "001"), tmp / "afew_va_001.mkv")
        videos = [clip, need(shared / "media" / "videos" / "WolfgangLanger_Pexels.mp4")]
        params = JobParams(model=args.model, detector=str(detector_path()))
        cache = ProcessorCache(WorkerOptions(redis_url=url))
        done = []
        for video in videos:
            jobs.submit(client, video, tmp / "out0", params.to_dict())
            job = jobs.claim(client, "bench", idle_ms=600_000, block_ms=10)
            summary = run_job(client, job, cache, consumer="bench")
            done.append((job, probe(job.path), summary))
        rows = []
        for w in args.windows:
            out = tmp / f"out{w}"
            for job, info, summary in done:
                job = replace(job, out=str(out))
                write_outputs(
                    client, job, replace(params, smooth=w), info, summary["frames"], summary["model"]
                )
                name = Path(job.path).stem
                va, expr = read_va(out / "VA" / f"{name}.txt"), read_expr(out / "EXPR" / f"{name}.txt")
                row = {"window": w, "video": name, **jitter(va, expr)}
                if name == clip.stem:
                    ok = va[:, 0] != -5
                    err = va[ok] - labels[ok]
                    row |= {
                        "frames_scored": int(ok.sum()),
                        "rmse_valence": round(float(np.sqrt((err[:, 0] ** 2).mean())), 4),
                        "rmse_arousal": round(float(np.sqrt((err[:, 1] ** 2).mean())), 4),
                        "sagr_arousal": round(
                            float((np.sign(va[ok, 1]) == np.sign(labels[ok, 1])).mean()), 3
                        ),
                    }
                rows.append(row)
    model = done[0][2]["model"]
    print(f"model {model}; AFEW-VA 001 labels are constant (V=0, A=0.5): CCC is 0 by construction")
    cells = [
        (
            r["window"],
            r["video"],
            r["valence_jitter"],
            r["arousal_jitter"],
            r["expr_flips_per_100"],
            r.get("rmse_valence", ""),
            r.get("rmse_arousal", ""),
        )
        for r in rows
    ]
    header = ("window", "video", "V jitter", "A jitter", "flips/100", "RMSE V", "RMSE A")
    print(format_table(header, cells, align="><>>>>>"))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"model": model, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
