"""One job in-process: stopping at a chunk boundary, resuming, replaying, and track ids across chunks."""

from __future__ import annotations

import json
import threading

import pytest

from affectstream.pipeline.archive import jobs
from affectstream.pipeline.archive.params import JobParams
from affectstream.pipeline.archive.run import JobLost, JobReleased, run_job, stitch
from affectstream.pipeline.archive.worker import ProcessorCache, WorkerOptions
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key
from affectstream.pipeline.streams.schema import validate_entry
from affectstream.pipeline.types import FaceResult, FrameResult
from tests.conftest import need_shared


class StopAfter:
    """A processor that sets `stop` once it has processed frame `index` (a SIGTERM arriving then)."""

    def __init__(self, inner, index: int, stop: threading.Event) -> None:
        self.inner, self.index, self.stop = inner, index, stop

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def in_order(self, frames, source):
        for frame, result in self.inner.in_order(frames, source):
            if frame.index == self.index:
                self.stop.set()
            yield frame, result


def test_stop_resume_and_replay_publish_each_frame_once(redis_url, tmp_path, model_path, detector):
    client = connect(redis_url)
    video = need_shared("media", "videos", "single_face.mp4")
    params = JobParams(det_size=320, detect_every=2, chunk=16, model=model_path, detector=detector)
    jobs.submit(client, video, tmp_path / "out", params.to_dict())
    cache = ProcessorCache(WorkerOptions(redis_url=redis_url, threads=1))
    stop = threading.Event()

    job = jobs.claim(client, "w", idle_ms=60_000, block_ms=10)
    with pytest.raises(JobReleased):
        run_job(client, job, lambda p: StopAfter(cache(p), 20, stop), consumer="w", stop=stop)
    key = frames_key(job.source)
    assert client.xlen(key) == 32  # the chunk holding frame 20 was finished and committed, nothing more
    assert not (tmp_path / "out").exists()
    jobs.release(client, job)

    job = jobs.claim(client, "w", idle_ms=60_000, block_ms=10)
    summary = run_job(client, job, cache, consumer="w")
    assert summary["frames"] == 72 and client.xlen(key) == 72
    first = (tmp_path / "out" / "VA" / "single_face.txt").read_bytes()
    # a worker that stalled and comes back after the job was finished publishes nothing new, and
    # learns at its first commit that the job is no longer its own
    with pytest.raises(JobLost):
        run_job(client, job, cache, consumer="w")
    entries = client.xrange(key)
    assert [eid.decode() for eid, _ in entries] == [f"{i}-1" for i in range(72)]
    for eid, fields in entries:
        entry = {k.decode(): v.decode() for k, v in fields.items()}
        validate_entry(entry)  # schema v1, like live results
        assert int(entry["frame"]) == int(eid.decode().split("-")[0])
    tracks = {f["track"] for _, fields in entries for f in json.loads(fields[b"faces"])}
    assert tracks == {1}  # one face, one id across all five chunks
    assert (tmp_path / "out" / "VA" / "single_face.txt").read_bytes() == first


def _face(track: int, box: list[float]) -> FaceResult:
    return FaceResult(
        track=track, box=box, score=1.0, landmarks=[], expr="Neutral", probs={}, valence=0.0, arousal=0.0
    )


def test_stitch_continues_track_ids_across_chunks():
    prev = [{"track": 4, "box": [0, 0, 100, 100]}, {"track": 9, "box": [300, 0, 400, 100]}]
    chunk = [
        FrameResult("s", 16, 0, 0, [_face(1, [302, 2, 402, 102]), _face(2, [5, 5, 105, 105])]),
        FrameResult(
            "s",
            17,
            0,
            0,
            [_face(1, [304, 2, 404, 102]), _face(2, [6, 5, 106, 105]), _face(3, [600, 0, 640, 40])],
        ),
    ]
    assert stitch(chunk, prev, next_track=10) == 11
    assert [[f.track for f in r.faces] for r in chunk] == [[9, 4], [9, 4, 10]]
    fresh = [FrameResult("s", 0, 0, 0, [_face(1, [0, 0, 10, 10])])]
    assert stitch(fresh, [], next_track=1) == 2 and fresh[0].faces[0].track == 1
