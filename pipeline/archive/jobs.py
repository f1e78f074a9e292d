"""The archive job queue in Redis: submit, claim, keep alive, finish, fail, release, retry, list.

Layout (names in `pipeline/streams/keys.py`): the stream `affect:jobs` carries one entry `{job: <id>}` each time
a job is queued; the consumer group `workers` hands every entry to exactly one worker (XREADGROUP). The
entry stays pending until that worker acknowledges it (job done or failed). A working worker re-claims its
own entry now and then (`touch`), which resets the entry's idle time; an entry idle for longer than the
timeout belongs to a dead worker and another worker takes it over with XAUTOCLAIM. The hash
`affect:{jobs}:job:<id>` holds state, parameters and progress; the set `affect:{jobs}:index` lists every job.

On a Redis Cluster: the queue, the index and the job hashes share the hash tag `{jobs}`, so they live in one
slot and every MULTI and script here spans that slot alone (archive jobs are videos, a few per second at
most: one slot serves them). The one other key a job touches, its frames stream, has its source's tag and
is only ever written or deleted on its own.

A job is one video. Its id is derived from the video's real path, so submitting the same file twice finds
the existing job instead of queueing a second one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from affectstream.pipeline.streams.keys import JOBS_GROUP, JOBS_INDEX, JOBS_STREAM, frames_key, job_key
from affectstream.pipeline.streams.keys import text as _text

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)

# Re-claim our own pending entry (resets its idle time) only while it is still ours: a worker that stalled
# past the timeout must not steal the job back from the worker that took it over.
_TOUCH = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""


@dataclass(frozen=True)
class Job:
    """A claimed job, as the worker that holds it sees it.

    Attributes:
        id: Job id (16 hex digits of the path hash).
        path: Video file, absolute.
        out: Output folder for the Aff-Wild2-format files.
        source: Source id of the job's frames stream (`affect:{<source>}:frames`).
        params: Processing parameters fixed at submit time (see `pipeline.archive.params.JobParams`).
        msg: Id of the `affect:jobs` entry this claim holds.
        attempts: How many times the job has been claimed, this claim included.
    """

    id: str
    path: str
    out: str
    source: str
    params: dict
    msg: str
    attempts: int


@dataclass(frozen=True)
class Submitted:
    """What `submit` did with one path: queued it, or why not."""

    path: str
    job_id: str
    queued: bool
    note: str


def job_id_for(path: str | Path) -> str:
    return hashlib.sha1(os.path.realpath(path).encode()).hexdigest()[:16]


def source_id_for(path: str | Path, job_id: str) -> str:
    """Readable and unique: the file stem (safe characters only) plus the job id's first 8 digits."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:48] or "video"
    return f"{stem}-{job_id[:8]}"


def entry_id(frame: int) -> str:
    """Stream entry id of frame `frame` (0-based) in a job's frames stream: its index in the millisecond part."""
    return f"{frame}-1"


def frame_of(entry: bytes | str) -> int:
    """The frame index of a job's frames-stream entry id (the inverse of `entry_id`)."""
    return int(_text(entry).split("-", 1)[0])


def ensure_group(client: redis.Redis) -> None:
    """Create the `workers` group reading from the stream's start (entries queued before it exist too)."""
    try:
        client.xgroup_create(JOBS_STREAM, JOBS_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def submit(
    client: redis.Redis, path: str | Path, out: str | Path, params: dict, *, force: bool = False
) -> Submitted:
    """Queue one video unless it is already queued, running or done (`force` re-runs done/failed jobs).

    A forced re-run deletes the job's previous frames stream, so the video is processed from scratch.
    """
    ensure_group(client)
    path = os.path.realpath(path)
    jid = job_id_for(path)
    key = job_key(jid)
    source = source_id_for(path, jid)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                state = _text(pipe.hget(key, "state"))
                if state in (QUEUED, RUNNING):
                    return Submitted(path, jid, False, f"already {state}")
                if state and not force:
                    hint = "`archive retry`" if state == FAILED else "--force"
                    return Submitted(path, jid, False, f"already {state} (use {hint} to run it again)")
                # The old frames go before the job is queued (no worker writes them now: the job is
                # neither queued nor running), on their own: they are in another slot on a cluster.
                client.delete(frames_key(source))
                pipe.multi()
                pipe.delete(key)
                pipe.hset(
                    key,
                    mapping={
                        "id": jid,
                        "path": path,
                        "out": os.path.realpath(out),
                        "source": source,
                        "params": json.dumps(params, sort_keys=True),
                        "state": QUEUED,
                        "reason": "",
                        "frames_done": 0,
                        "frames_total": 0,
                        "attempts": 0,
                        "worker": "",
                        "submitted": f"{time.time():.3f}",
                    },
                )
                pipe.sadd(JOBS_INDEX, jid)
                pipe.xadd(JOBS_STREAM, {"job": jid})
                pipe.execute()
                return Submitted(path, jid, True, "forced re-run" if state else "queued")
            except redis.WatchError:
                continue


def claim(
    client: redis.Redis, consumer: str, *, idle_ms: int, block_ms: int = 1000, max_attempts: int = 3
) -> Job | None:
    """Take one job: first any whose worker went silent for `idle_ms`, else a newly queued one.

    Returns None when nothing was available within `block_ms`. A job whose workers died `max_attempts`
    times is marked failed instead of being handed out again (a video that crashes the decoder must not
    take every worker down in turn).
    """
    ensure_group(client)
    start = "0-0"
    while True:
        reply = client.xautoclaim(
            JOBS_STREAM, JOBS_GROUP, consumer, min_idle_time=idle_ms, start_id=start, count=1
        )
        for msg_id, fields in reply[1]:
            job = _accept(client, _text(msg_id), fields, consumer, max_attempts)
            if job is not None:
                return job
        start = _text(reply[0])
        if start == "0-0":
            break
    reply = client.xreadgroup(JOBS_GROUP, consumer, {JOBS_STREAM: ">"}, count=1, block=block_ms or None)
    for _stream, messages in reply or []:
        for msg_id, fields in messages:
            job = _accept(client, _text(msg_id), fields, consumer, max_attempts)
            if job is not None:
                return job
    return None


def _accept(client: redis.Redis, msg_id: str, fields: dict | None, consumer: str, max_attempts: int):
    jid = _text((fields or {}).get(b"job"))
    raw = {_text(k): _text(v) for k, v in client.hgetall(job_key(jid)).items()} if jid else {}
    if raw.get("state") not in (QUEUED, RUNNING):
        # a leftover entry: its job was deleted, finished elsewhere, or re-queued under a newer entry
        client.xack(JOBS_STREAM, JOBS_GROUP, msg_id)
        return None
    attempts = int(raw.get("attempts") or 0) + 1
    if attempts > max_attempts:
        reason = f"gave up after {max_attempts} attempts: the workers holding it died or stalled"
        _close(client, jid, msg_id, FAILED, reason=reason)
        return None
    client.hset(
        job_key(jid),
        mapping={
            "state": RUNNING,
            "worker": consumer,
            "attempts": attempts,
            "msg": msg_id,
            "started": f"{time.time():.3f}",
        },
    )
    return Job(jid, raw["path"], raw["out"], raw["source"], json.loads(raw["params"]), msg_id, attempts)


def touch(client: redis.Redis, job: Job, consumer: str) -> bool:
    """Tell the queue this worker is alive and still holds `job`; False if another worker took it over."""
    return bool(client.eval(_TOUCH, 1, JOBS_STREAM, JOBS_GROUP, job.msg, consumer))


def progress(client: redis.Redis, job: Job, **fields: object) -> None:
    client.hset(job_key(job.id), mapping={k: str(v) for k, v in fields.items()})


def _close(client: redis.Redis, jid: str, msg_id: str, state: str, **fields: object) -> None:
    mapping = {"state": state, "finished": f"{time.time():.3f}", **{k: str(v) for k, v in fields.items()}}
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(job_key(jid), mapping=mapping)
        pipe.xack(JOBS_STREAM, JOBS_GROUP, msg_id)
        pipe.execute()


def finish(client: redis.Redis, job: Job, **fields: object) -> None:
    """Mark `job` done and acknowledge its entry (results and files are already written)."""
    _close(client, job.id, job.msg, DONE, reason="", **fields)


def fail(client: redis.Redis, job: Job, reason: str) -> None:
    """Mark `job` failed with `reason` and acknowledge it, so it does not come back on its own."""
    _close(client, job.id, job.msg, FAILED, reason=reason)


def release(client: redis.Redis, job: Job) -> None:
    """Give `job` back to the queue now (worker shutting down); its progress is kept for the next worker."""
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(job_key(job.id), mapping={"state": QUEUED, "worker": "", "attempts": job.attempts - 1})
        pipe.xack(JOBS_STREAM, JOBS_GROUP, job.msg)
        pipe.xadd(JOBS_STREAM, {"job": job.id})
        pipe.execute()


def retry(client: redis.Redis, job_ids: list[str] | None = None) -> list[str]:
    """Queue failed jobs again (all of them, or those in `job_ids`); returns the ids re-queued.

    Progress is kept: a retried job resumes after its last durable frame, unless the video file
    changed since, in which case `run` starts it over.
    """
    ensure_group(client)
    wanted = job_ids if job_ids else [_text(j) for j in client.smembers(JOBS_INDEX)]
    requeued = []
    for jid in sorted(wanted):
        key = job_key(jid)
        with client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if _text(pipe.hget(key, "state")) != FAILED:
                        break
                    pipe.multi()
                    pipe.hset(key, mapping={"state": QUEUED, "reason": "", "attempts": 0, "worker": ""})
                    pipe.xadd(JOBS_STREAM, {"job": jid})
                    pipe.execute()
                    requeued.append(jid)
                    break
                except redis.WatchError:
                    continue
    return requeued


def list_jobs(client: redis.Redis) -> list[dict[str, str]]:
    """Every job's hash, oldest submission first."""
    ids = sorted(_text(j) for j in client.smembers(JOBS_INDEX))
    with client.pipeline(transaction=False) as pipe:
        for jid in ids:
            pipe.hgetall(job_key(jid))
        rows = pipe.execute()
    jobs = [{_text(k): _text(v) for k, v in row.items()} for row in rows if row]
    return sorted(jobs, key=lambda j: (float(j.get("submitted") or 0), j["id"]))


def queue_empty(client: redis.Redis) -> bool:
    """True when no entry of `affect:jobs` is waiting for a worker or held by one (none queued or running)."""
    ensure_group(client)
    if int(client.xpending(JOBS_STREAM, JOBS_GROUP)["pending"]):
        return False
    group = next(g for g in client.xinfo_groups(JOBS_STREAM) if _text(g["name"]) == JOBS_GROUP)
    after = _text(group["last-delivered-id"])
    return not client.xrange(JOBS_STREAM, min=f"({after}", count=1)
