"""Consumer API against a real Redis server: typed reads, starts, globs, schema check, groups."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectstream.pipeline.errors import SchemaVersionError
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key
from affectstream.pipeline.streams.read import (
    GroupReader,
    decode_entry,
    latest,
    read_all,
    read_results,
    resolve_sources,
)
from affectstream.pipeline.streams.writer import ResultPublisher, encode_frame
from affectstream.pipeline.types import FaceResult, FrameResult

REPO = Path(__file__).resolve().parents[2]
LABELS = ("Neutral", "Happy", "Surprise")  # the one set of names (engines.labels)


def make_result(source: str, frame: int, faces: int = 1) -> FrameResult:
    """A frame result as the pipeline would produce it (values vary with the frame index)."""
    out = []
    for t in range(faces):
        p = [0.2, 0.5 + 0.01 * (frame % 10), 0.3 - 0.01 * (frame % 10)]
        out.append(
            FaceResult(
                track=t + 1,
                box=[10.0 + frame, 20.0, 110.0 + frame, 140.0],
                score=0.9,
                landmarks=[[0.0, 0.0]] * 5,
                expr=LABELS[p.index(max(p))],
                probs=dict(zip(LABELS, p, strict=True)),
                valence=round(-0.5 + 0.1 * (frame % 10), 4),
                arousal=None if t else 0.25,
            )
        )
    return FrameResult(source, frame, frame / 25, time.time(), out, "mtlgcn-test", 12.5)


def publish(client, source: str, frames: range, faces: int = 1) -> list[FrameResult]:
    results = [make_result(source, i, faces) for i in frames]
    ResultPublisher(client, maxlen=10_000).publish(results)
    return results


def test_roundtrip_matches_published_results(redis_url):
    client = connect(redis_url)
    sent = publish(client, "cam-a", range(5), faces=2)
    got = [e.result for e in read_results(client, ["cam-a"], start="0", follow=False)]
    assert [r.frame for r in got] == [0, 1, 2, 3, 4]
    for a, b in zip(sent, got, strict=True):
        assert (b.source, b.model, len(b.faces)) == (a.source, a.model, 2)
        assert b.pts == pytest.approx(a.pts) and b.ts == pytest.approx(a.ts, abs=1e-5)
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert (fb.track, fb.expr, fb.arousal) == (fa.track, fa.expr, fa.arousal)
            assert fb.valence == pytest.approx(fa.valence) and fb.box == pytest.approx(fa.box, abs=0.05)
            assert fb.probs == pytest.approx(fa.probs, abs=1e-4)
    assert [e.result.frame for e in latest(client, "cam-a", 2)] == [3, 4]
    assert [e.result.frame for e in read_all(client, "cam-a", page=2)] == [0, 1, 2, 3, 4]


def test_globs_new_only_and_point_in_time(redis_url):
    client = connect(redis_url)
    publish(client, "cam-1", range(3))
    publish(client, "cam-2", range(2))
    publish(client, "lobby", range(4))
    assert resolve_sources(client, ["cam-*"]) == ["cam-1", "cam-2"]
    assert resolve_sources(client, ["lobby", "cam-?", "lobby"]) == ["lobby", "cam-1", "cam-2"]

    everything = list(read_results(client, ["cam-*"], start="0", follow=False))
    assert sorted((e.source, e.result.frame) for e in everything) == [
        ("cam-1", 0),
        ("cam-1", 1),
        ("cam-1", 2),
        ("cam-2", 0),
        ("cam-2", 1),
    ]
    # "new only": what was there before the reader started is not returned
    assert list(read_results(client, ["cam-*"], start="$", follow=False)) == []

    time.sleep(0.01)
    t = time.time()
    publish(client, "cam-1", range(3, 5))
    assert [e.result.frame for e in read_results(client, ["cam-1"], start=t, follow=False)] == [3, 4]


def test_follow_sees_new_entries_and_new_streams(redis_url):
    client = connect(redis_url)
    publish(client, "cam-1", range(2))
    stop_at = time.monotonic() + 10
    reader = read_results(
        client,
        ["cam-*"],
        start="$",
        block_ms=100,
        rescan_s=0.2,
        should_stop=lambda: time.monotonic() > stop_at,
    )
    publish(client, "cam-1", range(2, 3))
    first = next(reader)
    assert (first.source, first.result.frame) == ("cam-1", 2)
    publish(client, "cam-9", range(1))  # a stream that appears after the reader started
    second = next(reader)
    assert (second.source, second.result.frame) == ("cam-9", 0)


def test_unknown_schema_version_is_a_clear_error(redis_url):
    client = connect(redis_url)
    fields = encode_frame(make_result("cam-x", 0))
    fields["v"] = "2"
    client.xadd(frames_key("cam-x"), fields)
    with pytest.raises(SchemaVersionError, match=r"v='2'.*reads v=1"):
        list(read_results(client, ["cam-x"], start="0", follow=False))
    with pytest.raises(SchemaVersionError, match="no schema version"):
        decode_entry({b"source": b"cam-x"})
    bad = encode_frame(make_result("cam-x", 1))
    bad["faces"] = "[{}]"
    with pytest.raises(SchemaVersionError, match="not valid schema v1"):
        decode_entry(bad)


def test_group_shares_entries_and_ack_clears_pending(redis_url):
    client = connect(redis_url)
    publish(client, "cam-g", range(6))
    a = GroupReader(client, ["cam-g"], "analytics", "a", start="0", count=3, block_ms=50)
    b = GroupReader(client, ["cam-g"], "analytics", "b", start="0", count=3, block_ms=50)
    got_a, got_b = a.read(), b.read()
    assert len(got_a) == 3 and len(got_b) == 3
    assert {d.id for d in got_a}.isdisjoint(d.id for d in got_b)
    assert a.pending() == 6
    assert a.ack(*got_a) == 3 and b.ack(*got_b) == 3
    assert a.pending() == 0 and a.read() == [] and b.read() == []


def test_killed_consumer_entries_are_redelivered(redis_url):
    """A real consumer process is SIGKILLed before acknowledging; another consumer gets its entries."""
    client = connect(redis_url)
    publish(client, "cam-k", range(10))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("group_worker.py")),
            redis_url,
            "cam-k",
            "grp",
            "doomed",
            "10",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        taken = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    assert len(taken) == 10
    survivor = GroupReader(client, ["cam-k"], "grp", "survivor", claim_idle_ms=300, block_ms=50)
    assert survivor.read() == []  # nothing new, and the dead consumer's entries are not idle long enough yet
    assert survivor.pending() == 10
    time.sleep(0.4)
    redelivered = []
    deadline = time.monotonic() + 5
    while len(redelivered) < 10 and time.monotonic() < deadline:
        redelivered += survivor.read()
    assert sorted(d.id for d in redelivered) == sorted(taken)
    assert all(d.claimed for d in redelivered)
    assert [d.result.frame for d in redelivered] == list(range(10))
    survivor.ack(*redelivered)
    assert survivor.pending() == 0


def test_restarted_consumer_gets_its_own_pending_back(redis_url):
    client = connect(redis_url)
    publish(client, "cam-r", range(4))
    first = GroupReader(client, ["cam-r"], "grp", "worker-1", start="0", block_ms=50).read()
    assert len(first) == 4  # never acknowledged: the process "restarts"
    again = GroupReader(client, ["cam-r"], "grp", "worker-1", block_ms=50).read()
    assert [d.id for d in again] == [d.id for d in first] and not any(d.claimed for d in again)


def test_point_in_time_on_an_archive_stream_uses_capture_times(redis_url):
    """Archive results carry frame-numbered ids (`<frame>-1`): a time start filters on `ts` instead."""
    client = connect(redis_url)
    results = [make_result("archive-clip", i) for i in range(6)]
    base = time.time() - 100
    for i, r in enumerate(results):
        r.ts = base + i
    ResultPublisher(client, maxlen=1000).publish(results, ids=[f"{i}-1" for i in range(6)])
    got = [e.result.frame for e in read_results(client, ["archive-clip"], start=base + 2.5, follow=False)]
    assert got == [3, 4, 5]
    assert [e.id for e in read_results(client, ["archive-clip"], start="3-1", follow=False)] == ["4-1", "5-1"]


def test_point_in_time_inside_a_file_pass_uses_capture_times(redis_url):
    """A `run` pass's ids are `<pass start ms>-<frame>`: a time inside the pass still finds its later frames,
    and the next pass follows."""
    client = connect(redis_url)
    base = time.time() - 100
    first, second = [make_result("clip", i) for i in range(6)], [make_result("clip", i) for i in range(3)]
    for i, r in enumerate(first):
        r.ts = base + i
    for i, r in enumerate(second):
        r.ts = base + 50 + i
    publisher = ResultPublisher(client, maxlen=1000)
    start_ms = int(base * 1000)
    publisher.publish(first, ids=[f"{start_ms}-{i}" for i in range(6)])
    publisher.publish(second, ids=[f"{start_ms + 50_000}-{i}" for i in range(3)])
    got = [e.result.ts - base for e in read_results(client, ["clip"], start=base + 3.5, follow=False)]
    assert got == pytest.approx([4, 5, 50, 51, 52], abs=1e-3)
