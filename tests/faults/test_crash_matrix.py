"""SIGKILL at random points: of a `run`'s worker, of its supervisor, of Redis (AOF on), and of an archive
worker. Every trial must end with a complete pass (no duplicate, no gap) and, where a run was cut short,
a gap-free prefix for its pass.

3 trials per target here; `AFFECTSTREAM_CRASH_TRIALS=20 pytest -m slow tests/faults` runs the long
matrix (the `slow` copy of each target). The random seed of each trial is in its report row.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from affectstream.pipeline.archive.jobs import list_jobs
from affectstream.pipeline.streams.keys import events_key, frames_key
from tests.conftest import REPO, need_shared
from tests.faults.harness import (
    accounts,
    alive,
    assert_accounts_hold,
    audit_file,
    audit_prefix,
    passes_of,
    report,
    start_run,
    wait_for,
    worker_pids,
)

FRAMES = 472  # WolfgangLanger_Pexels.mp4
CI_TRIALS = 3


def _trials(slow: bool) -> list:
    count = int(os.environ.get("AFFECTSTREAM_CRASH_TRIALS", "20")) if slow else CI_TRIALS
    marks = [pytest.mark.slow] if slow else []
    return [pytest.param(i, marks=marks, id=f"{'slow' if slow else 'ci'}-{i}") for i in range(count)]


TRIALS = _trials(False) + _trials(True)


def _eof(client, source: str) -> bool:
    return b"eof" in [f[b"kind"] for _i, f in client.xrange(events_key(source))]


def _kill_point(client, rng: random.Random, proc) -> float:
    """Wait until the file is somewhere in its first 90% (a random number of published frames)."""
    target = rng.randint(1, int(FRAMES * 0.9))
    assert wait_for(
        lambda: client.exists(frames_key("clip")) and client.xlen(frames_key("clip")) >= target,
        timeout=180,
        every=0.02,
        proc=proc,
    ), "no progress"
    return target


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize("target", ["worker", "supervisor", "redis"])
def test_run_survives_sigkill(target, trial, tmp_path, redis_process):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    video = str(need_shared("media", "videos", "WolfgangLanger_Pexels.mp4"))
    server = redis_process()
    client = server.client()
    proc = start_run(server.url, {"clip": video}, tmp_path)
    recover_s = None
    try:
        at = _kill_point(client, rng, proc)
        if target == "worker":
            pids = worker_pids(client)
            assert pids, "no worker heartbeat"
            os.kill(pids[0], signal.SIGKILL)
        elif target == "supervisor":
            pids = worker_pids(client)
            proc.kill()
            proc.wait()
            # its worker notices, drains what it took and exits; then a new run takes the dead run's writer
            # lease over (its pid is gone) and completes that very pass (pipeline/streams/writer_leases.py)
            assert wait_for(lambda: not any(alive(p) for p in pids), timeout=60), (
                "orphaned worker kept running"
            )
            proc = start_run(server.url, {"clip": video}, tmp_path)
        else:
            server.kill()
            time.sleep(rng.uniform(0.2, 2.0))
            server.start()
            client = server.client()
        t_kill = time.monotonic()
        before = client.xlen(frames_key("clip"))
        wait_for(lambda: client.xlen(frames_key("clip")) > before, timeout=120, every=0.05)
        recover_s = time.monotonic() - t_kill
        assert wait_for(lambda: proc.poll() is not None, timeout=300), "run did not finish"
        code = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    final = audit_file(client, "clip", FRAMES)
    first = audit_prefix(client, "clip", 0) if target == "supervisor" else None
    report(
        {
            "fault": f"sigkill-{target}",
            "kind": "run (file)",
            "seed": seed,
            "killed_at_frame": at,
            "files": [final],
            "prefix": first,
            "recover_s": round(recover_s or -1, 2),
            "accounts": accounts((tmp_path / "run.log").read_text()),
        }
    )
    log = (tmp_path / "run.log").read_text()
    assert code == 0, log[-3000:]
    assert_accounts_hold(
        log, ["clip"]
    )  # every worker that ended (not the SIGKILLed one) accounts to the frame
    assert final.complete, final
    assert final.events.count("eof") == 1 and final.events[-1] == "eof", final
    if first is not None:
        assert first.duplicates == 0 and first.gaps == 0 and first.in_order, first
        assert len(passes_of(client, "clip")) == 1, "the next run did not take the dead run's pass over"


@pytest.mark.parametrize("trial", TRIALS)
def test_archive_job_survives_sigkill_of_its_worker(trial, tmp_path, model_path, redis_process):
    """An archive worker dies mid-job; a second one takes the job over (XAUTOCLAIM) and completes it."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    detector = str(need_shared("models", "scrfd_500m.onnx"))
    server = redis_process()
    client = server.client()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "affectstream", "archive"]
    subprocess.run(
        [
            *base,
            "submit",
            "--redis",
            server.url,
            "--out",
            str(tmp_path / "out"),
            "--model",
            model_path,
            "--detector",
            detector,
            "--det-size",
            "320",
            "--chunk",
            "16",
            str(video),
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    work = [*base, "work", "--redis", server.url, "--until-empty", "--idle-timeout", "2"]
    source = None
    with open(tmp_path / "archive.log", "w") as log:
        first = subprocess.Popen(work, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_for(lambda: client.keys("affect:{*}:frames"), timeout=120, proc=first)
            source = client.keys("affect:{*}:frames")[0].decode().split("{", 1)[1].split("}", 1)[0]
            target = rng.randint(1, int(FRAMES * 0.9))
            assert wait_for(
                lambda: client.xlen(frames_key(source)) >= target, timeout=180, every=0.02, proc=first
            )
            first.kill()
            first.wait()
            second = subprocess.run(
                work, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300
            )
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    audit = audit_file(client, source, FRAMES, archive=True)
    report(
        {
            "fault": "sigkill-archive-worker",
            "kind": "archive job",
            "seed": seed,
            "killed_at_frame": target,
            "files": [audit],
        }
    )
    assert second.returncode == 0, (tmp_path / "archive.log").read_text()[-3000:]
    assert audit.complete, audit
    assert [job["state"] for job in list_jobs(client)] == ["done"]  # an archive job's "eof"


def test_archive_children_exit_when_their_parent_is_killed(tmp_path, redis_process):
    """`archive work -j 2` SIGKILLed: its children must not go on taking jobs with no one to stop them."""
    import psutil

    server = redis_process()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(tmp_path / "archive.log", "w") as log:  # the child keeps its own copy of the descriptor
        parent = subprocess.Popen(
            [sys.executable, "-m", "affectstream", "archive", "work", "--redis", server.url, "-j", "2"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    children: list[int] = []

    def workers() -> list[int]:  # not multiprocessing's resource tracker
        return [c.pid for c in psutil.Process(parent.pid).children() if "spawn_main" in " ".join(c.cmdline())]

    try:
        assert wait_for(lambda: len(workers()) == 2, timeout=60, proc=parent)
        children = workers()
        parent.kill()
        parent.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=30), "children kept running"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        # only this test's processes: the session's Redis and RTSP servers are children too
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
