"""The outbox's accounts against a real redis-server: a file's `eof` says how many frames of its pass the
stream holds, a pass short of what was decoded fails its source, frames another writer went past are
counted as `rejected` (never as published), and a clock stepped back does not make a camera's frames look
older than the source."""

from __future__ import annotations

import time

from affectstream.pipeline.sources import SourceSpec
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import events_key, frames_key
from affectstream.pipeline.streams.outbox import Outbox
from affectstream.pipeline.types import FrameResult


def _outbox(client, passes: dict, failed: list, watch=None) -> Outbox:
    return Outbox(
        client,
        "w0",
        [],
        passes,
        maxlen=1000,
        stopping=lambda: False,
        drain_s=1.0,
        on_source_failed=lambda *a: failed.append(a),
        drained=lambda _s: True,
        watch=watch,
    )


def _eofs(client, source: str) -> list[dict]:
    return [
        {k.decode(): v.decode() for k, v in f.items()}
        for _id, f in client.xrange(events_key(source))
        if f[b"kind"] == b"eof"
    ]


def test_eof_says_what_the_stream_holds_and_a_short_pass_fails_its_source(redis_url):
    client = connect(redis_url)
    failed: list = []
    box = _outbox(client, {"whole": 1000, "short": 2000}, failed)
    for name in ("whole", "short"):
        box.add_source(SourceSpec(name=name, url=f"/media/{name}.mp4", live=False))
    now = time.time()
    published = box.publish(
        [FrameResult(name, i, i / 25, now) for name in ("whole", "short") for i in range(3)]
    )
    assert len(published) == 6
    box.add_event("whole", "eof", {"frames": 3})
    box.add_event("short", "eof", {"frames": 5})  # the reader decoded 5, only 3 reached the stream
    box.publish([])
    box.flush_events()
    assert _eofs(client, "whole")[0]["frames"] == "3" and _eofs(client, "whole")[0]["decoded"] == "3"
    assert _eofs(client, "short")[0]["frames"] == "3" and _eofs(client, "short")[0]["decoded"] == "5"
    assert [source for source, _reason in failed] == ["short"]
    assert "pass incomplete: 3 of the 5 frames decoded" in failed[0][1]


def test_frames_another_writer_went_past_are_rejected_not_published(redis_url):
    client = connect(redis_url)
    failed: list = []
    box = _outbox(client, {"clip": 1000}, failed)
    box.add_source(SourceSpec(name="clip", url="/media/clip.mp4", live=False))
    now = time.time()
    assert len(box.publish([FrameResult("clip", 0, 0.0, now)])) == 1
    client.xadd(frames_key("clip"), {"frame": "0"}, id="5000-0")  # a second writer's pass, unfenced here
    out = box.publish([FrameResult("clip", 1, 0.04, now), FrameResult("clip", 2, 0.08, now)])
    assert out == [] and box.dropped["clip", "rejected"] == 2 and client.xlen(frames_key("clip")) == 2


def test_a_camera_re_added_after_a_clock_step_back_still_publishes(redis_url, monkeypatch):
    """Frames are "the source's own" by the monotonic clock: a wall clock set back two minutes after the
    camera was (re)added must not make its new frames look older than the claim (they used to be dropped)."""
    client = connect(redis_url)
    box = _outbox(client, {}, [])
    box.add_source(SourceSpec(name="cam", url="rtsp://127.0.0.1:1/x", live=True))
    stepped = time.time() - 120
    frames = [FrameResult("cam", i, i / 25, stepped + i / 25) for i in range(3)]
    assert len(box.publish(frames)) == 3 and client.xlen(frames_key("cam")) == 3
    assert not box.dropped
