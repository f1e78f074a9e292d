"""Every verb on a real 6-node Redis Cluster and through a real Sentinel set (each test runs on both):
`run`, `tail` (with -f), `health`, the consumer API (XREAD and consumer groups over sources in many
slots), archive submit/work/status/retry, and the dashboard's reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from affectstream.pipeline.consumers.dashboard.state import DashboardState
from affectstream.pipeline.streams.connection import by_slot, connect
from affectstream.pipeline.streams.keys import frames_key
from affectstream.pipeline.streams.read import GroupReader, read_results
from affectstream.pipeline.streams.writer import ResultPublisher
from tests.conftest import REPO, need_shared
from tests.consumer.test_consume import make_result
from tests.test_run_files import entries, events, wait_for

SOURCES = [f"cam-{i}" for i in range(6)]  # six names: on a cluster they land in several slots


def cli(*args: str, url: str, timeout: float = 240, wait: bool = True):
    env = {
        **os.environ,
        "AFFECTSTREAM_DETECTOR": str(need_shared("models", "scrfd_500m.onnx")),
        "AFFECTSTREAM_REDIS_URL": url,
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "affectstream", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def test_run_then_tail_and_health(ha_url):
    video = need_shared("media", "videos", "single_face.mp4")
    long_video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    run = cli(
        "run", "--source", f"clip-a={video}", "--source", f"clip-b={long_video}", url=ha_url, wait=False
    )
    client = connect(ha_url)
    try:
        # health while the run works: its heartbeat is read (SCAN over every master, GET + PTTL per key)
        assert wait_for(lambda: client.xlen(frames_key("clip-b")) > 0, timeout=120)
        code, out = cli("health", url=ha_url, timeout=60)
        assert code == 0 and " ok (" in out, out
        out, _ = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out
    assert [int(e["frame"]) for e in entries(client, "clip-a")] == list(range(72))
    assert [int(e["frame"]) for e in entries(client, "clip-b")] == list(range(472))
    assert events(client, "clip-a") == ["started", "eof"]
    code, out = cli("tail", "clip-*", "-n", "4", url=ha_url, timeout=60)
    assert code == 0, out
    rows = out.strip().splitlines()[1:]
    assert len(rows) == 4 and all(" clip-" in f" {row}" for row in rows), out


def test_tail_follows_sources_in_many_slots(ha_url):
    client = connect(ha_url)
    publisher = ResultPublisher(client, maxlen=1000)
    publisher.publish([make_result(s, 0) for s in SOURCES], ids=["1-0"] * len(SOURCES))
    follow = cli("tail", "cam-*", "-f", "-n", "0", "--json", url=ha_url, wait=False)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        # Publish a new entry per source every second until tail has printed one of each: how soon it
        # starts reading does not matter, that it reads every slot does.
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        for n in range(2, 62):
            publisher.publish([make_result(s, n) for s in SOURCES], ids=[f"{n}-0"] * len(SOURCES))
            time.sleep(1)
            seen |= {json.loads(line)["source"] for line in list(lines) if line.startswith("{")}
            if seen == set(SOURCES) or time.monotonic() > deadline:
                break
        assert seen == set(SOURCES), lines[-5:]
    finally:
        follow.kill()
        follow.wait()
        reader.join(10)
        follow.stdout.close()


def test_consumer_api_reads_and_groups_across_slots(ha_url):
    client = connect(ha_url)
    if "cluster" in ha_url:
        assert len(by_slot(client, [frames_key(s) for s in SOURCES])) > 1
    publisher = ResultPublisher(client, maxlen=1000)
    for frame in range(5):
        publisher.publish([make_result(s, frame) for s in SOURCES], ids=[f"{frame + 1}-0"] * len(SOURCES))
    got = list(read_results(client, ["cam-*"], start="0", follow=False))
    assert sorted((e.source, e.result.frame) for e in got) == sorted(
        (s, f) for s in SOURCES for f in range(5)
    )
    # new entries only, waiting: a follower started before they are published gets them
    follower = read_results(client, ["cam-*"], start="$", block_ms=200)
    publisher.publish([make_result(s, 5) for s in SOURCES], ids=["6-0"] * len(SOURCES))
    assert sorted(next(follower).source for _ in SOURCES) == sorted(SOURCES)

    readers = [GroupReader(client, ["cam-*"], "g", f"c{i}", start="0", block_ms=100) for i in range(2)]
    delivered = []
    deadline = time.monotonic() + 30
    while len(delivered) < 6 * len(SOURCES) and time.monotonic() < deadline:
        for reader in readers:
            batch = reader.read()
            reader.ack(*batch)
            delivered += [(d.source, d.result.frame) for d in batch]
    assert sorted(delivered) == sorted((s, f) for s in SOURCES for f in range(6))
    assert readers[0].pending() == 0


def test_archive_submit_work_status(ha_url, tmp_path):
    video = need_shared("media", "videos", "single_face.mp4")
    code, out = cli("archive", "submit", "-o", str(tmp_path), str(video), url=ha_url)
    assert code == 0 and "1 of 1 video(s) queued" in out, out
    code, out = cli("archive", "work", "-j", "1", "--until-empty", url=ha_url, timeout=300)
    assert code == 0, out
    code, out = cli("archive", "status", url=ha_url)
    assert code == 0 and "1 done; frames 72/72" in out, out
    code, out = cli("archive", "submit", "--force", "-o", str(tmp_path), str(video), url=ha_url)
    assert code == 0 and "forced re-run" in out, out
    code, out = cli("archive", "retry", url=ha_url)
    assert code == 0 and "0 failed job(s)" in out, out


def test_dashboard_reads_sources_in_many_slots(ha_url):
    client = connect(ha_url)
    publisher = ResultPublisher(client, maxlen=1000)
    now = time.time()
    publisher.publish([make_result(s, 0) for s in SOURCES], ids=["1-0"] * len(SOURCES))
    state = DashboardState(client)
    state.discover()
    results = []
    for frame in (1, 2):
        for s in SOURCES:
            r = make_result(s, frame)
            r.ts = now
            results.append(r)
    publisher.publish(results, ids=[f"{f}-0" for f in (2, 3) for _ in SOURCES])
    got = 0
    deadline = time.monotonic() + 10
    while got < len(results) and time.monotonic() < deadline:
        got += state.poll(block_ms=200, scan_s=60)
    assert got == len(results)
    assert {s["name"] for s in state.snapshot()["sources"]} >= set(SOURCES)


def test_cameras_fleet_status_and_demo(ha_url):
    code, out = cli("cameras", "add", "cam-x", "rtsp://10.1.1.1/s", url=ha_url)
    assert code == 0, out
    code, out = cli("cameras", "ls", url=ha_url)
    assert code == 0 and "cam-x" in out, out
    code, out = cli("fleet", "status", url=ha_url)
    assert code == 0 and "cameras: 1, 0 owned, 1 unowned" in out, out
    code, out = cli("demo", url=ha_url, timeout=300)
    assert code == 0 and "demo " in out, out
    assert connect(ha_url).xlen(frames_key("demo")) == 40  # the bundled clip, every frame
