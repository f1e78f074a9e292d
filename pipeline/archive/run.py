"""Processing one archive job: every frame in order, exactly one stream entry per frame, resumable.

Exactly once: frame i is published with the explicit entry id `i-1` (milliseconds = frame index) through
the same idempotent writer as `run` (`pipeline.streams.writer`): only ids above the stream's last id are added,
so a worker that replays frames after a crash (or a stalled worker racing the one that took its job over)
cannot publish a frame twice.

Resume, byte for byte: the video is processed in chunks of `chunk` frames (a multiple of
`detect_every`), and the tracker starts afresh at every chunk, so a chunk's results depend only on its own
frames. A restarted job re-decodes the video, skips to the start of the chunk holding the first frame
not yet in the stream, and recomputes from there: frames already published are refused by Redis, the rest
are identical to what an uninterrupted run would have produced. Track ids stay continuous across chunks:
a track in a chunk's first frame inherits the id of the face it overlaps (IoU) in the previous chunk's
last frame, as published, and new tracks take the next unused id. Both come from the stream itself, so a
resumed run makes the same choices as the first.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from typing import TYPE_CHECKING

from affectstream.pipeline.archive import jobs
from affectstream.pipeline.archive.jobs import entry_id, frame_of
from affectstream.pipeline.archive.params import JobParams
from affectstream.pipeline.errors import JobFailed, SourceError
from affectstream.pipeline.masking import mask_text
from affectstream.pipeline.sources import DecodeStats, TruncatedVideo, read_video
from affectstream.pipeline.sources import probe as probe_video
from affectstream.pipeline.streams.keys import frames_key, job_key
from affectstream.pipeline.types import Frame, FrameResult

if TYPE_CHECKING:
    from affectstream.pipeline.frames.processor import FrameProcessor

log = logging.getLogger(__name__)

STITCH_IOU = 0.3


class JobLost(Exception):
    """Another worker took the job over (this one stalled past the idle timeout)."""


class JobReleased(Exception):
    """The worker is stopping; the job was left at a chunk boundary for another worker to resume."""


def probe(path: str) -> dict:
    """Declared frame count (0 if the container does not say), fps and size of the video's first stream.

    Raises:
        JobFailed: The file is missing or not a readable video (`pipeline.sources.probe`).
    """
    try:
        info = probe_video(path)
    except SourceError as exc:
        raise JobFailed(str(exc)) from exc
    return {"frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height}


def iter_frames(path: str, source: str, start: int, stats: DecodeStats) -> Iterator[Frame]:
    """Every frame from index `start` on (`pipeline.sources.read_video`); a decode failure fails the job.

    Strict: no undecodable packet is skipped, as that would shift the index of every later frame.
    `stats.discarded` counts packets the container marks as not for display (edit lists): the declared
    frame count includes them, the decoded frames do not.
    """
    import av

    try:
        yield from read_video(path, name=source, start=start, stats=stats)
    except TruncatedVideo as exc:
        raise JobFailed(
            f"{path}: truncated or corrupt: decoded {stats.decoded} of the {exc.declared} frames it declares"
        ) from exc
    except av.error.FFmpegError as exc:
        raise JobFailed(
            f"{path}: corrupt video, decoding failed after frame {stats.decoded - 1}: {mask_text(str(exc))}"
        ) from exc


def _prev_state(client, key: str, start: int) -> tuple[list[dict], int, str]:
    """Faces of frame `start - 1` as published, the next unused track id, and the model of the entries."""
    prev, top, model, lo = [], 0, "", "-"
    while start > 0:
        page = client.xrange(key, min=lo, max=entry_id(start - 1), count=1000)
        if not page:
            break
        for eid, data in page:
            faces = json.loads(data[b"faces"])
            top = max([top, *(f["track"] for f in faces)])
            model = data.get(b"model", b"").decode()
            if frame_of(eid) == start - 1:
                prev = faces
        lo = "(" + jobs._text(page[-1][0])
    return prev, top + 1, model


def stitch(results: list[FrameResult], prev: list[dict], next_track: int) -> int:
    """Rename a chunk's tracks in place to continue the previous chunk's ids; returns the next free id."""
    from affectstream.pipeline.frames.track import iou_matrix

    mapping: dict[int, int] = {}
    if results and results[0].faces and prev:
        first = results[0].faces
        iou = iou_matrix([f.box for f in first], [p["box"] for p in prev])
        pairs = sorted(
            ((iou[i, j], i, j) for i in range(len(first)) for j in range(len(prev))),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        used_f, used_p = set(), set()
        for v, i, j in pairs:
            if v >= STITCH_IOU and i not in used_f and j not in used_p:
                mapping[first[i].track] = prev[j]["track"]
                used_f.add(i)
                used_p.add(j)
    for result in results:
        for face in result.faces:
            if face.track not in mapping:
                mapping[face.track] = next_track
                next_track += 1
            face.track = mapping[face.track]
    return next_track


def _file_id(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


class _Commits:
    """The durable side of a job: each chunk stitched and published, progress recorded, the claim kept."""

    def __init__(
        self,
        client,
        job: jobs.Job,
        consumer: str,
        *,
        maxlen: int,
        prev: list[dict],
        next_track: int,
        touch_every_s: float,
        heartbeat: Callable[[], None] | None,
    ) -> None:
        from affectstream.pipeline.streams.writer import ResultPublisher

        self.client, self.job, self.consumer = client, job, consumer
        self.publisher = ResultPublisher(client, maxlen=maxlen)
        self.prev, self.next_track = prev, next_track
        self.touch_every_s = touch_every_s
        self.heartbeat = heartbeat
        self.last_touch = time.monotonic()

    def touch(self) -> None:
        if not jobs.touch(self.client, self.job, self.consumer):
            raise JobLost(self.job.id)
        self.last_touch = time.monotonic()

    def touching(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """`frames`, telling the queue every `touch_every_s` that this worker still holds the job."""
        for frame in frames:
            yield frame
            if time.monotonic() - self.last_touch > self.touch_every_s:
                self.touch()

    def commit(self, chunk: list[FrameResult]) -> None:
        from affectstream.pipeline.frames.processor import stamp_latency
        from affectstream.pipeline.streams.writer import encode_faces

        self.next_track = stitch(chunk, self.prev, self.next_track)
        stamp_latency(chunk)
        self.publisher.publish(chunk, ids=[entry_id(r.frame) for r in chunk])  # already there: skipped
        self.prev = encode_faces(chunk[-1])
        jobs.progress(self.client, self.job, frames_done=chunk[-1].frame + 1)
        self.touch()
        if self.heartbeat is not None:
            self.heartbeat()


def run_job(
    client,
    job: jobs.Job,
    processor_for: Callable[[JobParams], FrameProcessor],
    *,
    consumer: str,
    stop: threading.Event | None = None,
    touch_every_s: float = 5.0,
    heartbeat: Callable[[], None] | None = None,
) -> dict:
    """Process `job` to the end (or to a chunk boundary when `stop` is set) and write its files.

    Args:
        client: Redis client.
        job: The claimed job.
        processor_for: Builds (or returns a cached) `FrameProcessor` for the job's parameters.
        consumer: This worker's consumer name in the `workers` group.
        stop: Set by the worker's signal handler; the job is left for another worker at a chunk boundary.
        touch_every_s: How often to tell the queue this worker still holds the job.
        heartbeat: Called after every durable commit (the worker refreshes its health key).

    A chunk's frames go through the stages as `run`'s do: each is prepared (detect when due, track,
    align), and the faces of up to the engine's batch size of frames meet in one engine call.

    Returns:
        The per-video summary (also written to `<out>/summary/<video>.json`).

    Raises:
        JobFailed: The video or the parameters are unusable; the reason names the problem.
        JobLost: Another worker took the job over.
        JobReleased: `stop` was set.
    """
    from affectstream.pipeline.archive.outputs import write_outputs

    params = JobParams.from_dict(job.params)
    info = probe(job.path)
    key, hkey = frames_key(job.source), job_key(job.id)
    ident = _file_id(job.path)
    if client.hget(hkey, "file") not in (None, ident.encode()) and client.xlen(key):
        log.info("%s changed since its results were published: starting over", job.path)
        client.delete(key)
    client.hset(
        hkey,
        mapping={
            "file": ident,
            "frames_total": info["frames"],
            "fps": info["fps"],
            "width": info["width"],
            "height": info["height"],
        },
    )
    processor = processor_for(params)  # loading models can take a while: say we are alive right after
    if not jobs.touch(client, job, consumer):
        raise JobLost(job.id)
    model_id = processor.spec.model_id
    top = client.xrevrange(key, count=1)
    done = frame_of(top[0][0]) + 1 if top else 0
    start = done - done % params.chunk
    prev, next_track, prev_model = _prev_state(client, key, start)
    earlier = {prev_model, top[0][1].get(b"model", b"").decode() if top else ""} - {"", model_id}
    if earlier:
        raise JobFailed(
            f"frames so far were computed by model {sorted(earlier)[0]!r}, this worker runs "
            f"{model_id!r}; resubmit with --force to start over"
        )
    if done:
        log.info("job %s: resuming %s at frame %d (%d already published)", job.id, job.path, start, done)
    # Cap at the video's own length: the cap then never trims one of this video's frames.
    commits = _Commits(
        client,
        job,
        consumer,
        maxlen=max(info["frames"], 1) * 2 + 1000,
        prev=prev,
        next_track=next_track,
        touch_every_s=touch_every_s,
        heartbeat=heartbeat,
    )
    source = processor.new_source(job.source)
    n, t0, computed = start, time.monotonic(), 0
    decode = DecodeStats()
    for _, frames in groupby(
        iter_frames(job.path, job.source, start, decode), key=lambda f: f.index // params.chunk
    ):
        if stop is not None and stop.is_set():
            raise JobReleased(job.id)
        source.reset()  # a chunk's results depend only on its own frames
        chunk = [result for _, result in processor.in_order(commits.touching(frames), source)]
        commits.commit(chunk)
        n, computed = chunk[-1].frame + 1, computed + len(chunk)
    if n == 0:
        raise JobFailed(f"{job.path}: no frame could be decoded")
    if info["frames"] and n + decode.discarded < info["frames"]:
        raise JobFailed(
            f"{job.path}: truncated or corrupt: decoded {n} of the {info['frames']} frames it declares"
        )
    seconds = time.monotonic() - t0
    summary = write_outputs(client, job, params, info, n, model_id)
    jobs.finish(
        client,
        job,
        frames_done=n,
        frames_total=n,
        model=model_id,
        fps_processing=f"{computed / seconds:.2f}" if seconds > 0 else "0",
    )
    return summary
