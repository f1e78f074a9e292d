"""The job queue on a real Redis: de-duplication, claims, take-over of silent workers, retry, release."""

from __future__ import annotations

import time

import pytest

from affectstream.pipeline.archive import jobs
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key, job_key


@pytest.fixture
def client(redis_url):
    c = connect(redis_url)
    yield c
    c.close()


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip one.mp4"
    path.write_bytes(b"not decoded by these tests")
    return path


def test_submit_queues_once_and_force_starts_over(client, video, tmp_path):
    first = jobs.submit(client, video, tmp_path / "out", {"chunk": 8})
    assert first.queued and first.note == "queued"
    again = jobs.submit(client, str(video.parent / "." / video.name), tmp_path / "out", {})
    assert (again.queued, again.note, again.job_id) == (False, "already queued", first.job_id)
    job = jobs.claim(client, "w1", idle_ms=60_000, block_ms=10)
    assert job.id == first.job_id and job.params == {"chunk": 8} and job.source.startswith("clip_one-")
    assert not jobs.submit(client, video, tmp_path / "out", {}).queued  # running
    client.xadd(frames_key(job.source), {"frame": "0"}, id="0-1")
    jobs.finish(client, job, frames_done=1)
    done = jobs.submit(client, video, tmp_path / "out", {})
    assert not done.queued and "--force" in done.note
    forced = jobs.submit(client, video, tmp_path / "out", {}, force=True)
    assert forced.queued and client.xlen(frames_key(job.source)) == 0
    assert client.hget(job_key(job.id), "state") == b"queued"


def test_one_claim_per_job_and_take_over_after_idle_timeout(client, video, tmp_path):
    jobs.submit(client, video, tmp_path, {})
    a = jobs.claim(client, "a", idle_ms=300, block_ms=10)
    assert a is not None and a.attempts == 1
    assert jobs.claim(client, "b", idle_ms=300, block_ms=10) is None  # held by a
    time.sleep(0.2)
    assert jobs.touch(client, a, "a")  # a is alive: the idle time restarts
    time.sleep(0.2)
    assert jobs.claim(client, "b", idle_ms=300, block_ms=10) is None
    time.sleep(0.4)  # a went silent
    b = jobs.claim(client, "b", idle_ms=300, block_ms=10)
    assert b is not None and (b.id, b.msg, b.attempts) == (a.id, a.msg, 2)
    assert client.hget(job_key(a.id), "worker") == b"b"
    assert not jobs.touch(client, a, "a")  # a learns it lost the job, and does not steal it back
    assert jobs.touch(client, b, "b")


def test_fail_retry_release_and_empty_queue(client, video, tmp_path):
    assert jobs.queue_empty(client)
    jobs.submit(client, video, tmp_path, {})
    assert not jobs.queue_empty(client)  # queued
    job = jobs.claim(client, "a", idle_ms=60_000, block_ms=10)
    assert not jobs.queue_empty(client)  # running
    jobs.fail(client, job, "corrupt video")
    assert jobs.queue_empty(client)
    row = jobs.list_jobs(client)[0]
    assert (row["state"], row["reason"]) == ("failed", "corrupt video")
    assert jobs.claim(client, "a", idle_ms=0, block_ms=10) is None
    assert jobs.retry(client) == [job.id]
    assert jobs.retry(client) == []  # no longer failed
    job = jobs.claim(client, "b", idle_ms=60_000, block_ms=10)
    assert job is not None and job.attempts == 1
    jobs.release(client, job)  # shutting down: back in the queue at once, no idle wait
    again = jobs.claim(client, "c", idle_ms=60_000, block_ms=10)
    assert again is not None and again.id == job.id and again.attempts == 1


def test_a_job_that_keeps_killing_workers_fails(client, video, tmp_path):
    jobs.submit(client, video, tmp_path, {})
    for n in (1, 2):
        job = jobs.claim(client, f"w{n}", idle_ms=50, block_ms=10)
        assert job.attempts == n
        time.sleep(0.1)  # the worker dies: no touch, no ack
    assert jobs.claim(client, "w3", idle_ms=50, block_ms=10, max_attempts=2) is None
    row = jobs.list_jobs(client)[0]
    assert row["state"] == "failed" and "gave up after 2 attempts" in row["reason"]
    assert jobs.queue_empty(client)
