"""No silent loss (issue 24): what used to lose results without a word, each against a real redis-server.

- Two runs of one source: the second is refused at start naming the first, whose pass stays whole; a run
  whose supervisor died is taken over by the next run of the same file, which completes its pass.
- A wall clock stepped back or forth by 120 s in every process of a run (tests/clockshift), during a
  camera and a file pass: the camera keeps publishing, the file ends exactly once.
- Redis refusing writes server-wide for 10 s (MISCONF after a failed RDB save; CLIENT PAUSE WRITE): nothing
  fails, cameras count what they skip as `redis_unavailable`, files wait, events all arrive.
- An evicting Redis (`allkeys-lru`) is refused at start with the setting to change.

Each run must end with its accounting holding per source, to the frame: decoded = published + dropped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectstream.pipeline.streams.keys import events_key, frames_key, lease_key
from tests.conftest import REPO, need_shared
from tests.faults.harness import (
    alive,
    assert_accounts_hold,
    audit_file,
    audit_live,
    event_kinds,
    passes_of,
    report,
    start_run,
    wait_for,
    worker_pids,
)

FILE_FRAMES = 472  # WolfgangLanger_Pexels.mp4
CLOCKSHIFT = REPO / "tests" / "clockshift"


def _video() -> str:
    return str(need_shared("media", "videos", "WolfgangLanger_Pexels.mp4"))


def _eof_frames(client, source: str) -> list[int]:
    return [int(f[b"frames"]) for _i, f in client.xrange(events_key(source)) if f[b"kind"] == b"eof"]


def test_a_second_run_of_a_source_is_refused_and_the_first_pass_stays_whole(tmp_path, redis_process):
    """Before: the second run's pass truncated the first (77 of 472 entries) while it logged 472."""
    server = redis_process()
    client = server.client()
    (tmp_path / "a").mkdir()
    first = start_run(server.url, {"clip": _video()}, tmp_path / "a")
    try:
        assert wait_for(lambda: client.exists(frames_key("clip")), timeout=120, proc=first), "first run idle"
        second_dir = tmp_path / "b"
        second_dir.mkdir()
        second = start_run(server.url, {"clip": _video()}, second_dir)
        assert second.wait(timeout=60) == 1
        refusal = (second_dir / "run.log").read_text()
        holder = client.get(lease_key("clip")).decode().split("/")[0]
        assert f"being written by run {holder}" in refusal and "another name" in refusal, refusal[-2000:]
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None:
            first.kill()
    log = (tmp_path / "a" / "run.log").read_text()
    audit = audit_file(client, "clip", FILE_FRAMES)
    report({"fault": "second-run", "trials": 1, "files": [audit]})
    assert audit.complete and len(passes_of(client, "clip")) == 1, audit
    assert _eof_frames(client, "clip") == [FILE_FRAMES]
    assert_accounts_hold(log, ["clip"])
    assert not client.exists(lease_key("clip")), "the finished run kept its writer lease"


def test_the_next_run_takes_over_a_dead_runs_pass(tmp_path, redis_process):
    """The supervisor is SIGKILLed mid-pass (its worker drains and exits): the next run of the same file
    takes the lease over at once (the holder's pid is gone) and completes that very pass."""
    server = redis_process()
    client = server.client()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    proc = start_run(server.url, {"clip": _video()}, tmp_path / "a")
    try:
        assert wait_for(lambda: client.xlen(frames_key("clip")) >= 100, timeout=120, proc=proc)
        pids = worker_pids(client)
        proc.kill()
        proc.wait()
        assert wait_for(lambda: not any(alive(p) for p in pids), timeout=60), "orphaned worker kept running"
        proc = start_run(server.url, {"clip": _video()}, tmp_path / "b")
        assert proc.wait(timeout=300) == 0, (tmp_path / "b" / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "b" / "run.log").read_text()
    audit = audit_file(client, "clip", FILE_FRAMES)
    report({"fault": "takeover-dead-run", "trials": 1, "files": [audit]})
    assert "taking over its stream" in log and "resuming the unfinished pass" in log, log[-3000:]
    assert audit.complete and len(passes_of(client, "clip")) == 1, audit
    assert _eof_frames(client, "clip") == [FILE_FRAMES]
    assert_accounts_hold(log, ["clip"])


def _shift_clock(path: Path, seconds: float) -> None:
    path.write_text(str(seconds))


def _misconf(server, on: bool) -> None:
    """A failed RDB save (the directory cannot take the file, like a full disk) makes Redis refuse every
    write with MISCONF (stop-writes-on-bgsave-error) until a save succeeds again."""
    client = server.client()
    if on:
        client.config_set("stop-writes-on-bgsave-error", "yes")
        client.config_set("save", "3600 1")  # Redis refuses writes only when it is meant to save
        client.config_set("dir", "/proc")  # no file can be created there, whoever we are
        client.bgsave()
        assert wait_for(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "err", timeout=10)
    else:
        client.config_set("dir", str(server.data_dir))
        client.bgsave()
        assert wait_for(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "ok", timeout=10)


@pytest.mark.rtsp
@pytest.mark.parametrize("fault", ["misconf", "client-pause-write", "clock-back", "clock-forward"])
def test_nothing_lost_unsaid_through_a_fault(fault, tmp_path, rtsp_server, redis_process):
    server = redis_process(aof=False)  # MISCONF moves the RDB directory; an AOF would move with it
    client = server.client()
    clock = tmp_path / "clock-offset"
    clock.write_text("0")
    env = {"AFFECTSTREAM_TEST_CLOCK_FILE": str(clock), "PYTHONPATH": f"{CLOCKSHIFT}{os.pathsep}{REPO}"}
    proc = start_run(server.url, {"clip": _video(), "cam": rtsp_server.url}, tmp_path, env=env)
    try:
        assert wait_for(
            lambda: client.xlen(frames_key("clip")) >= 60 and client.xlen(frames_key("cam")) >= 30,
            timeout=120,
            proc=proc,
        ), (tmp_path / "run.log").read_text()[-3000:]
        t0 = time.monotonic()
        if fault == "misconf":
            _misconf(server, True)
            time.sleep(10)
            assert "MISCONF" in _write_refusal(client)
            _misconf(server, False)
        elif fault == "client-pause-write":
            client.client_pause(10_000, all=False)
            time.sleep(10)
        else:
            _shift_clock(clock, -120 if fault == "clock-back" else 120)
        cam_before = client.xlen(frames_key("cam"))
        assert wait_for(lambda: client.xlen(frames_key("cam")) >= cam_before + 30, timeout=30, proc=proc), (
            f"the camera stopped publishing after {fault}"
        )
        assert wait_for(lambda: "eof" in event_kinds(client, "clip"), timeout=300, proc=proc), (
            "file unfinished"
        )
        fault_s = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
    log = (tmp_path / "run.log").read_text()
    # A clock stepped back takes capture times (`ts`, data) back with it: order is by frame index then.
    cam = audit_live(client, "cam", order_by="frame" if fault.startswith("clock") else "ts")
    clip = audit_file(client, "clip", FILE_FRAMES)
    found = assert_accounts_hold(log, ["clip", "cam"])
    report(
        {
            "fault": fault,
            "trials": 1,
            "files": [clip],
            "cameras": [cam],
            "fault_s": round(fault_s, 1),
            "accounts": found,
        }
    )
    assert code == 0, log[-3000:]
    assert clip.complete and clip.events.count("eof") == 1, clip
    assert _eof_frames(client, "clip") == [FILE_FRAMES]
    assert cam.duplicates == 0 and cam.in_order, cam
    assert "error" not in event_kinds(client, "cam") and "error" not in event_kinds(client, "clip")
    assert "lease was lost" not in log and "cannot reach Redis" not in log, log[-3000:]


def _write_refusal(client) -> str:
    try:
        client.xadd("affect:probe", {"x": "1"})
    except Exception as exc:
        return str(exc)
    return ""


def test_an_evicting_redis_is_refused_at_start(tmp_path, redis_process):
    server = redis_process()
    client = server.client()
    client.config_set("maxmemory-policy", "allkeys-lru")
    proc = start_run(server.url, {"clip": _video()}, tmp_path)
    assert proc.wait(timeout=60) == 1
    log = (tmp_path / "run.log").read_text()
    assert "maxmemory-policy allkeys-lru" in log and "noeviction" in log, log[-2000:]
    assert not client.exists(frames_key("clip"))


def test_two_runs_at_once_from_the_command_line_exit_statuses(tmp_path, redis_process):
    """The same refusal through `--source`, and a different file whose name sanitises to the same source."""
    server = redis_process()
    client = server.client()
    video = _video()
    odd = tmp_path / "clip!.mp4"
    odd.symlink_to(video)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    detector = str(need_shared("models", "scrfd_500m.onnx"))
    base = [sys.executable, "-m", "affectstream", "run", "--redis", server.url, "--detector", detector]
    first = subprocess.Popen(
        [*base, "--source", f"clip={video}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(lambda: client.exists(lease_key("clip")), timeout=60, proc=first)
        second = subprocess.run(
            [*base, "--source", str(odd)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert "'clip' is being written by run" in second.stdout + second.stderr
        out, _ = first.communicate(timeout=300)
        assert first.returncode == 0, out[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert audit_file(client, "clip", FILE_FRAMES).complete
