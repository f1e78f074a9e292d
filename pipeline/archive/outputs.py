"""A finished job's files, built from its frames stream (the durable record), never from memory.

Reading the results back from Redis means a job that was interrupted and resumed writes exactly the
files an uninterrupted run writes: both read the same entries. The files: `<out>/VA/<video>.txt`,
`<out>/EXPR/<video>.txt` (Aff-Wild2 format, see `pipeline.archive.abaw`) and `<out>/summary/<video>.json`.
Everything in them is a function of the entries and the job's parameters (no timings, no host names), so
they are byte-identical across runs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.archive.abaw import ABAW_EXPR, expr_index, rank_tracks, select_subject, va_text, write_atomic
from pipeline.archive.abaw import expr_text as _expr_text
from pipeline.keys import frames_key
from pipeline.smooth import smooth_centred


def read_frames(client, source: str, n: int) -> list[list[dict]]:
    """The faces of frames 0..n-1 from the source's frames stream.

    Raises:
        JobFailed: A frame has no entry (the stream was trimmed or deleted under the job).
    """
    from pipeline.archive.run import JobFailed, frame_of

    key = frames_key(source)
    frames: list[list[dict] | None] = [None] * n
    lo = "-"
    while True:
        page = client.xrange(key, min=lo, max="+", count=1000)
        if not page:
            break
        for eid, data in page:
            i = frame_of(eid)
            if i < n:
                frames[i] = json.loads(data[b"faces"])
        lo = "(" + (page[-1][0].decode() if isinstance(page[-1][0], bytes) else page[-1][0])
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        raise JobFailed(
            f"stream {key} lacks {len(missing)} of {n} frames (first: {missing[0]}); it was trimmed or "
            "deleted while the job ran: resubmit with --force"
        )
    return frames  # type: ignore[return-value]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def summarise(frames: list[list[dict]], subjects: list[dict | None], params, size: tuple[int, int]) -> dict:
    """Counts and means that describe the predictions (deterministic: no timings)."""
    per_track = Counter(f["track"] for faces in frames for f in faces)
    ranked = rank_tracks(frames, params.subject, size) or sorted(per_track)
    chosen = [s for s in subjects if s is not None]
    exprs = Counter(expr_index(s["probs"]) for s in chosen)
    return {
        "frames": len(frames),
        "frames_with_face": sum(1 for faces in frames if faces),
        "tracks": [{"track": t, "frames": per_track[t]} for t in ranked],
        "subject_frames_by_track": {
            str(t): c for t, c in sorted(Counter(s["track"] for s in chosen).items())
        },
        "expr_counts": {name: exprs.get(i, 0) for i, name in enumerate(ABAW_EXPR)}
        | {"none": len(frames) - len(chosen)},
        "valence_mean": _mean([s["valence"] for s in chosen if s.get("valence") is not None]),
        "arousal_mean": _mean([s["arousal"] for s in chosen if s.get("arousal") is not None]),
    }


def write_outputs(client, job, params, info: dict, n: int, model_id: str) -> dict:
    """Write the VA, EXPR and summary files of a job whose `n` frames are all in its stream."""
    frames = read_frames(client, job.source, n)
    if params.smooth > 1:
        frames = smooth_centred(frames, params.smooth)
    size = (int(info["width"]), int(info["height"]))
    subjects = select_subject(frames, params.subject, size)
    video = Path(job.path).stem
    out = Path(job.out)
    try:
        va = write_atomic(out / "VA" / f"{video}.txt", va_text(subjects, params.va_invalid))
        expr = write_atomic(out / "EXPR" / f"{video}.txt", _expr_text(subjects))
    except OSError as exc:
        from pipeline.archive.run import JobFailed

        raise JobFailed(
            f"cannot write the results to {out}: {exc}; fix the folder and `archive retry`"
        ) from exc
    summary = {
        "video": video,
        "path": job.path,
        "job": job.id,
        "source": job.source,
        "stream": frames_key(job.source),
        "fps": round(float(info["fps"]), 6),
        "width": size[0],
        "height": size[1],
        "model": model_id,
        "params": params.to_dict(),
        "files": {"VA": str(va.relative_to(out)), "EXPR": str(expr.relative_to(out))},
        **summarise(frames, subjects, params, size),
    }
    write_atomic(out / "summary" / f"{video}.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary
