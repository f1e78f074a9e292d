"""A finished job's files, built from its frames stream (the durable record), never from memory.

Reading the results back from Redis means a job that was interrupted and resumed writes exactly the
files an uninterrupted run writes: both read the same entries. The files: `<out>/VA/<video>.txt`,
`<out>/EXPR/<video>.txt` (Aff-Wild2 format, see `scoring.abaw`) and `<out>/summary/<video>.json`.
Everything in them is a function of the entries and the job's parameters (no timings, no host names), so
they are byte-identical across runs.

Every frame gets a prediction (`pipeline.archive.fill`); `<out>/frames/<video>.csv` says per frame which
face was taken as the subject and why, or how the frame was filled (see `FRAMES_HEADER`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstream.pipeline.archive.fill import fill_predictions
from affectstream.pipeline.archive.jobs import frame_of
from affectstream.pipeline.archive.subject import Choice, choose, rank_tracks
from affectstream.pipeline.errors import JobFailed
from affectstream.pipeline.frames.smooth import smooth_centred
from affectstream.pipeline.streams.keys import frames_key, text
from affectstream.scoring.abaw import ABAW_EXPR, abaw_probs, expr_text, va_text, write_atomic


def read_frames(client, source: str, n: int) -> list[list[dict]]:
    """The faces of frames 0..n-1 from the source's frames stream.

    Raises:
        JobFailed: A frame has no entry (the stream was trimmed or deleted under the job).
    """
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
        lo = "(" + text(page[-1][0])
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        raise JobFailed(
            f"stream {key} lacks {len(missing)} of {n} frames (first: {missing[0]}); it was trimmed or "
            "deleted while the job ran: resubmit with --force"
        )
    return frames  # type: ignore[return-value]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


FRAMES_HEADER = "frame,status,track,others,filled_from,reason"


def subject_arrays(choices: list[Choice]) -> tuple[np.ndarray, np.ndarray]:
    """The subject's VA [frames, 2] and ABAW class probabilities [frames, 8], NaN rows where none."""
    va = np.full((len(choices), 2), np.nan)
    probs = np.full((len(choices), len(ABAW_EXPR)), np.nan)
    for i, c in enumerate(choices):
        if c.face is None:
            continue
        if c.face.get("valence") is not None and c.face.get("arousal") is not None:
            va[i] = c.face["valence"], c.face["arousal"]
        p = abaw_probs(c.face.get("probs") or {})
        if p.any():
            probs[i] = p
    return va, probs


def frames_text(choices: list[Choice], how: list[str]) -> str:
    """`frames/<video>.csv`: per frame, `subject` (its own face) or `filled`, the track, the faces not
    taken, what a filled frame's value came from, and the reason."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(FRAMES_HEADER.split(","))
    for i, (c, h) in enumerate(zip(choices, how, strict=True)):
        status = "filled" if c.face is None or h else "subject"
        track = "" if c.face is None else c.face["track"]
        out.writerow([i, status, track, " ".join(map(str, c.others)), h, c.reason])
    return buf.getvalue()


def summarise(frames: list[list[dict]], pred: VideoPredictions, params, size: tuple[int, int]) -> dict:
    """Counts and means that describe the predictions (deterministic: no timings)."""
    per_track = Counter(f["track"] for faces in frames for f in faces)
    ranked = rank_tracks(frames, params.subject, size) or sorted(per_track)
    chosen = [c.face for c in pred.choices if c.face is not None]
    exprs = Counter(int(e) for e in pred.expr)
    return {
        "frames": len(frames),
        "frames_with_face": sum(1 for faces in frames if faces),
        "frames_filled": pred.filled,
        "tracks": [{"track": t, "frames": per_track[t]} for t in ranked],
        "subject_frames_by_track": {
            str(t): c for t, c in sorted(Counter(s["track"] for s in chosen).items())
        },
        "expr_counts": {name: exprs.get(i, 0) for i, name in enumerate(ABAW_EXPR)},
        "valence_mean": _mean([s["valence"] for s in chosen if s.get("valence") is not None]),
        "arousal_mean": _mean([s["arousal"] for s in chosen if s.get("arousal") is not None]),
    }


@dataclass(frozen=True)
class VideoPredictions:
    """A video's subject decisions and its filled predictions.

    Attributes:
        choices: Per frame, the subject decision.
        va: [frames, 2] valence, arousal (filled where the subject is not visible).
        expr: [frames] ABAW class (never -1).
        how: Per frame, how it was filled ("" where the subject's own prediction was used).
    """

    choices: list[Choice]
    va: np.ndarray
    expr: np.ndarray
    how: list[str]

    @property
    def filled(self) -> int:
        return sum(1 for c, h in zip(self.choices, self.how, strict=True) if c.face is None or h)


def predict(frames: list[list[dict]], params, size: tuple[int, int]) -> VideoPredictions:
    """Subject per frame (`params.subject`), then a value for every frame (`params.fill`)."""
    choices = choose(frames, params.subject, size)
    va, probs = subject_arrays(choices)
    va_f, expr = fill_predictions(va, probs, params.fill, params.fill_max_gap)
    return VideoPredictions(choices, va_f.values, expr, va_f.how)


def write_video(out: Path, video: str, pred: VideoPredictions) -> dict[str, Path]:
    """Write a video's `VA/`, `EXPR/` and `frames/` files under `out`; returns their paths."""
    return {
        "VA": write_atomic(out / "VA" / f"{video}.txt", va_text(pred.va)),
        "EXPR": write_atomic(out / "EXPR" / f"{video}.txt", expr_text(pred.expr)),
        "frames": write_atomic(out / "frames" / f"{video}.csv", frames_text(pred.choices, pred.how)),
    }


def write_outputs(client, job, params, info: dict, n: int, model_id: str) -> dict:
    """Write the VA, EXPR and summary files of a job whose `n` frames are all in its stream."""
    frames = read_frames(client, job.source, n)
    if params.smooth > 1:
        frames = smooth_centred(frames, params.smooth)
    size = (int(info["width"]), int(info["height"]))
    pred = predict(frames, params, size)
    video = Path(job.path).stem
    out = Path(job.out)
    try:
        files = write_video(out, video, pred)
    except OSError as exc:
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
        "files": {kind: str(path.relative_to(out)) for kind, path in files.items()},
        **summarise(frames, pred, params, size),
    }
    write_atomic(out / "summary" / f"{video}.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary
