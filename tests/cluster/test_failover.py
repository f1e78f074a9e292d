"""Failover without loss: SIGKILL the master that holds a file pass's stream while `run` writes it; a
replica is promoted (by the sentinels, or by the cluster itself), `run` follows it, writes there within
10 s of the promotion, and ends with exactly the file's frames, each index once, exit 0."""

from __future__ import annotations

import time

import pytest

from affectstream.pipeline.streams.keys import events_key, frames_key
from tests.cluster.test_verbs import cli
from tests.conftest import need_shared

FRAMES = 472  # WolfgangLanger_Pexels.mp4


def _frames(client, source: str) -> list[int]:
    return [int(fields[b"frame"]) for _id, fields in client.xrange(frames_key(source))]


def _until(predicate, timeout_s: float, what: str) -> float:
    """Wait for `predicate`; the monotonic time it first held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except Exception:  # a server still coming up or going down
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout_s:.0f} s")


def _fail_over(kind: str, servers, run, source: str):
    """Kill the master of `source`'s stream mid-pass; (the new master's client, seconds from the promotion
    to the first entry written there)."""
    if kind == "sentinel":
        old = servers.named_master()
        promoted = servers.replica
    else:
        old = servers.master_of(frames_key(source))
        promoted = servers.replica_of(old)
    master = servers.client(old)
    try:
        _until(lambda: master.xlen(frames_key(source)) >= 60 or run.poll() is not None, 120, "60 frames")
    except AssertionError:
        run.kill()
        raise
    assert run.poll() is None, run.communicate()[0][-3000:]
    # Make asynchronous replication lose the last writes for sure: the replica stops reading, 40 MB of
    # filler (in the stream's own slot) fill the sockets between them, so the entries written next wait in
    # the master's output buffer and die with it.
    servers.pause(promoted)
    held = master.xlen(frames_key(source))
    for i in range(40):
        master.set(f"affect:{{{source}}}:filler:{i}", b"x" * 1_000_000)
    _until(lambda: master.xlen(frames_key(source)) >= held + 20, 60, "20 frames the replica never got")
    assert run.poll() is None, "the pass ended before the kill: use a longer video"
    written = master.xlen(frames_key(source))
    servers.kill(old)
    killed = time.monotonic()
    servers.resume(promoted)
    new = servers.client(promoted)
    if kind == "sentinel":
        at = _until(lambda: servers.named_master() == promoted, 30, "a sentinel names the replica")
    else:
        at = _until(lambda: new.execute_command("ROLE")[0] == b"master", 30, "the replica's ROLE is master")
    held = new.xlen(frames_key(source))
    assert held < written, f"the promoted replica has all {written} entries: nothing was lost to test"
    first = _until(lambda: new.xlen(frames_key(source)) > held, 30, "a write on the promoted master")
    print(
        f"{kind}: {written - held} entries lost; promoted {at - killed:.1f} s after the kill, written {first - at:.1f} s later"
    )
    return new, first - at


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
def test_master_killed_mid_pass_loses_nothing(kind, fresh_sets):
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    servers = fresh_sets(kind)
    url = servers.url() if kind == "sentinel" else servers.url
    run = cli("run", "--source", f"clip={video}", url=url, wait=False)
    try:
        new, delay = _fail_over(kind, servers, run, "clip")
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, out[-4000:]
    assert delay <= 10, f"first write on the promoted master {delay:.1f} s after the promotion"
    got = _frames(new, "clip")
    assert got == list(range(FRAMES)), f"{len(got)} entries, {len(set(got))} distinct, {FRAMES} frames"
    kinds = [fields[b"kind"] for _id, fields in new.xrange(events_key("clip"))]
    assert kinds[-1] == b"eof"
