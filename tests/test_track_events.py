"""Track events (`affect:{<source>}:tracks`) of real `run`s on real files, against a real Redis server:
start, updates, end with the track's account, checked against the frames stream of the same run."""

from __future__ import annotations

from collections import Counter

import pytest

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import tracks_key
from affectstream.pipeline.streams.read import read_all
from affectstream.pipeline.streams.schema import validate_track
from affectstream.pipeline.streams.track_read import decode_track, read_tracks
from affectstream.pipeline.streams.tracks import PER_FRAME
from tests.conftest import need_shared
from tests.test_run_files import run_cli, wait_for, worker_processes


def _run(redis_url, name: str, video: str, *extra: str):
    code, out = run_cli(
        "--source", f"{name}={need_shared('media', 'videos', video)}", *extra, redis_url=redis_url
    )
    assert code == 0, out
    client = connect(redis_url)
    return client, [e for e in read_all(client, name)], list(read_tracks(client, [name]))


def _faces_of(frames, track: int):
    return [(e.result, f) for e in frames for f in e.result.faces if f.track == track]


def test_a_face_that_leaves_starts_updates_and_ends_with_its_account(redis_url):
    client, frames, events = _run(redis_url, "leaves", "face_noface.mov", "--set", "tracks.update_every_s=1")
    by_track: dict[int, list] = {}
    for e in events:
        by_track.setdefault(e.track, []).append(e)
    main = max(by_track, key=lambda t: len(_faces_of(frames, t)))
    seen = _faces_of(frames, main)
    kinds = [e.event for e in by_track[main]]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"update"}
    start, *updates, end = by_track[main]
    assert start.frame == seen[0][0].frame and start.detail["box"] == pytest.approx(seen[0][1].box, abs=0.06)
    # updates at most every 1 s of the video, and there are some: the face stays for several seconds
    times = [start.pts] + [u.pts for u in updates]
    assert updates and all(b - a >= 1.0 - 1e-6 for a, b in zip(times, times[1:], strict=False))
    # the end: the tracker let the face go before the file ended, and its account is the frames'
    assert end.detail["reason"] == "gone" and end.frame < frames[-1].result.frame
    assert end.detail["frames"] == len(seen) and end.detail["first_frame"] == seen[0][0].frame
    assert end.detail["duration_s"] == pytest.approx(seen[-1][0].pts - seen[0][0].pts, abs=1e-3)
    mean_v = sum(f.valence for _r, f in seen) / len(seen)
    assert end.detail["valence_mean"] == pytest.approx(mean_v, abs=1e-3)
    expr, count = Counter(f.expr for _r, f in seen).most_common(1)[0]
    assert (end.detail["dominant_expr"], end.detail["dominant_share"]) == (
        expr,
        pytest.approx(count / len(seen), abs=1e-4),
    )
    strongest = max((f for _r, f in seen if f.expr != "Neutral"), key=lambda f: f.probs[f.expr], default=None)
    if strongest is not None:
        assert end.detail["peak_expr"] == strongest.expr
        assert end.detail["peak_prob"] == pytest.approx(strongest.probs[strongest.expr], abs=2e-4)
    # ids follow the frames' ids: `<pass base>-<frame * PER_FRAME + i>`, and every track that started ended
    base = int(frames[0].id.split("-")[0])
    for e in events:
        ms, seq = map(int, e.id.split("-"))
        assert ms == base and seq // PER_FRAME == e.frame
    assert Counter(e.event for e in events)["start"] == Counter(e.event for e in events)["end"]
    for entry_id, fields in client.xrange(tracks_key("leaves")):
        validate_track({k.decode(): v.decode() for k, v in fields.items()})
        decode_track(fields, entry_id=entry_id.decode())


def test_a_face_in_view_at_the_end_of_a_file_ends_with_it(redis_url):
    _client, frames, events = _run(
        redis_url, "appears", "noface_face.mov", "--set", "tracks.update_every_s=0"
    )
    assert {e.event for e in events} == {"start", "end"}  # 0: no updates
    last = [e for e in events if e.event == "end"][-1]
    assert last.detail["reason"] == "eof"
    assert last.frame == max(
        e.result.frame for e in frames if any(f.track == last.track for f in e.result.faces)
    )
    first = next(e for e in events if e.event == "start")
    assert first.frame > 0  # the file starts without a face


def test_tracks_off(redis_url):
    _client, frames, events = _run(redis_url, "off", "single_face.mp4", "--set", "tracks.enabled=false")
    assert len(frames) == 72 and events == []


def test_a_crashed_worker_writes_no_track_event_twice(redis_url):
    """Killed mid-file and restarted: the entries written before stay as they were, none is written again,
    and every event is at a frame of the stream (its id derived from that frame's)."""
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    proc = run_cli(
        "--source", f"crash={video}", "--set", "tracks.update_every_s=1", redis_url=redis_url, wait=False
    )
    client = connect(redis_url)
    assert wait_for(lambda: client.xlen(tracks_key("crash")) >= 3, timeout=120)
    for w in worker_processes(proc.pid):
        w.kill()  # SIGKILL: no chance to drain
    before = client.xrange(tracks_key("crash"))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    after = client.xrange(tracks_key("crash"))
    assert after[: len(before)] == before  # nothing rewritten, nothing inserted before
    ids = [i for i, _f in after]
    assert len(ids) == len(set(ids))
    frames = {e.id: e.result.frame for e in read_all(client, "crash")}
    assert sorted(frames.values()) == list(range(472))
    base = int(next(iter(frames)).split("-")[0])
    for e in read_tracks(client, ["crash"]):
        ms, seq = map(int, e.id.split("-"))
        assert (ms, seq // PER_FRAME) == (base, e.frame) and f"{base}-{e.frame}" in frames
    ends = [e for e in read_tracks(client, ["crash"]) if e.event == "end"]
    assert ends and ends[-1].detail["reason"] == "eof"
