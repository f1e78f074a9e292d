"""Dashboard server without a browser: statuses, rates from heartbeats, drops, latency percentiles,
per-source shares, the snapshot route, SSE, token, bind policy.

Heartbeats and events are written here by hand (the contract's fields, with chosen times): these tests
check the dashboard's arithmetic; the browser test drives a real `affectstream run`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
import urllib.error
import urllib.request

import pytest

from affectstream.pipeline.consumers.dashboard.app import check_bind, create_app
from affectstream.pipeline.consumers.dashboard.state import DashboardState
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import events_key, heartbeat_key, snapshot_key, snapshot_request_key
from affectstream.pipeline.streams.writer import ResultPublisher, encode_event, publish_event
from tests.consumer.conftest import serve_app
from tests.consumer.test_consume import make_result


def get(url: str, headers: dict | None = None, timeout: float = 5.0):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def fill(client) -> None:
    """Four sources, one per status path."""
    publisher = ResultPublisher(client, maxlen=1000)
    publish_event(client, "cam-live", "started")
    publisher.publish([make_result("cam-live", i, faces=2) for i in range(8)])
    publish_event(client, "cam-flaky", "reconnecting", {"reason": "rtsp://admin:hunter2@10.0.0.9/ timed out"})
    publisher.publish([make_result("cam-flaky", 0)])
    publish_event(client, "archive", "eof", {"frames": 1})
    publisher.publish([make_result("archive", 0)])
    publisher.publish([make_result("no-events", 0)])  # frames but no events stream: judged by recency


def results(source: str, frames: range, *, ts: float, faces: int = 1, every_s: float = 0.04, latency=None):
    """Results whose capture times start at `ts` (unix seconds), one per `every_s`."""
    out = []
    for i in frames:
        r = make_result(source, i, faces=faces)
        lat = r.latency_ms if latency is None else latency(i)
        out.append(dataclasses.replace(r, ts=ts + (i - frames.start) * every_s, latency_ms=lat))
    return out


def event(client, source: str, kind: str, ts: float, **detail) -> None:
    client.xadd(
        events_key(source), encode_event(source, kind, detail, ts=ts, worker=detail.pop("worker", ""))
    )


def beat(client, worker: str, ts: float, stats: dict, member: str | None = None) -> None:
    """A worker heartbeat as `pipeline.runtime.worker` writes it (the contract's fields)."""
    doc = {
        "ts": ts,
        "pid": 1,
        "host": "h",
        "published": 0,
        "member": member,
        "sources": sorted(stats),
        "stats": stats,
        "queues": {"prepared": [0, 16], "results": [0, 32]},
    }
    client.set(heartbeat_key(worker), json.dumps(doc))


def counters(decoded: int, dropped: int = 0, *, state: str = "live", reconnects: int = 0, live: bool = True):
    return {
        "decoded": decoded,
        "dropped": dropped,
        "reconnects": reconnects,
        "published": decoded - dropped,
        "faces": 0,
        "state": state,
        "live": live,
    }


def by_name(state: DashboardState) -> dict[str, dict]:
    return {s["name"]: s for s in state.snapshot()["sources"]}


def test_statuses_mean_what_they_say(redis_url):
    """live, reconnecting, down (reason), finished, stopped, stale (last seen), aged out; by Redis times."""
    client = connect(redis_url)
    now = time.time()
    pub = ResultPublisher(client, maxlen=1000)
    event(client, "cam-live", "started", now - 20)
    pub.publish(results("cam-live", range(50), ts=now - 3))
    event(client, "cam-flaky", "reconnecting", now - 2, reason="rtsp://admin:hunter2@10.0.0.9/ timed out")
    event(client, "clip", "started", now - 40)
    pub.publish(results("clip", range(10), ts=now - 35))
    event(client, "clip", "eof", now - 30, frames=10)
    event(client, "cam-term", "started", now - 40)
    event(client, "cam-term", "stopped", now - 5, frames=120)
    event(client, "cam-moved", "claimed", now - 40, member="m1")
    event(client, "cam-moved", "released", now - 4, member="m1")
    event(client, "cam-moved", "lost", now - 3, member="m0")  # a former owner's late word changes nothing
    event(client, "bad-file", "error", now - 6, reason="cannot open /data/x.mp4: no such file")
    # a camera whose worker went away without a word: its news stops
    event(client, "cam-gone", "started", now - 120)
    pub.publish(results("cam-gone", range(10), ts=now - 45))
    # seeded entries of an old run: old, however recently the dashboard reads them
    pub.publish(results("old-run", range(10), ts=now - 7200))
    event(client, "old-file", "eof", now - 5000, frames=3)
    pub.publish(results("no-events", range(5), ts=now - 1))  # results only (e.g. an archive job)

    state = DashboardState(client, stale_s=10, forget_after_s=3600)
    state.discover()
    got = by_name(state)
    assert "old-run" not in got and "old-file" not in got  # aged out
    status = {name: (s["status"], s["detail"]) for name, s in got.items()}
    assert status["cam-live"] == ("live", "")
    assert status["cam-flaky"][0] == "reconnecting" and "timed out" in status["cam-flaky"][1]
    assert "hunter2" not in json.dumps(state.snapshot())
    assert status["clip"] == ("finished", "10 frames")
    assert status["cam-term"] == ("stopped", "120 frames")
    assert status["cam-moved"] == ("stopped", "released by m1")
    assert status["bad-file"] == ("down", "cannot open /data/x.mp4: no such file")
    assert status["cam-gone"] == ("stale", "was live")
    assert got["cam-gone"]["last_seen"] == pytest.approx(now - 45 + 9 * 0.04, abs=0.01)
    assert got["cam-gone"]["last_age_s"] == pytest.approx(45, abs=2)
    assert status["no-events"] == ("live", "")
    # faces in view only for a source shown live, and only from a recent result
    assert got["cam-live"]["faces"] and not got["cam-gone"]["faces"] and not got["clip"]["faces"]
    assert got["clip"]["fps"] is None and got["cam-live"]["fps"] > 0

    # forgetting is configurable: a shorter forget_after_s hides the finished file too
    state.forget_after_s = 25
    assert "clip" not in by_name(state) and "cam-gone" not in by_name(state) and "cam-live" in by_name(state)

    # new events arrive through poll(); the newest of an event and a heartbeat decides
    publish_event(client, "cam-flaky", "recovered")
    assert state.poll(block_ms=100) >= 1
    assert by_name(state)["cam-flaky"]["status"] == "live"
    beat(client, "w0", time.time() + 0.5, {"cam-flaky": counters(100, state="reconnecting", reconnects=2)})
    state.read_heartbeats()
    flaky = by_name(state)["cam-flaky"]
    assert (flaky["status"], flaky["worker"], flaky["reconnects"]) == ("reconnecting", "w0", 2)


def test_heartbeats_keep_a_quiet_reconnecting_camera_fresh(redis_url):
    """No results for a minute, but its worker still says reconnecting: not stale. Its worker gone: stale."""
    client = connect(redis_url)
    now = time.time()
    event(client, "cam", "reconnecting", now - 60, reason="connection refused")
    beat(client, "w0", now - 1, {"cam": counters(0, state="reconnecting", reconnects=30)}, member="m-1")
    state = DashboardState(client, stale_s=10)
    state.discover()
    cam = by_name(state)["cam"]
    assert (cam["status"], cam["worker"], cam["member"], cam["reconnects"]) == (
        "reconnecting",
        "w0",
        "m-1",
        30,
    )
    assert cam["detail"] == "connection refused"  # the heartbeat agrees with the event: its reason stays
    beat(client, "w0", now - 20, {"cam": counters(0, state="reconnecting")})  # an older beat: ignored
    state.read_heartbeats()
    assert by_name(state)["cam"]["status"] == "reconnecting"
    state.stale_s = 0.5
    assert by_name(state)["cam"]["status"] == "stale"


def test_a_worker_whose_clock_is_behind_is_dated_by_redis(redis_url):
    """Issue 24: a heartbeat that states its TTL is dated by its age in Redis, not by its writer's `ts`."""
    client = connect(redis_url)
    behind = time.time() - 30  # the worker's clock is 30 s behind; it beat 0.5 s ago
    event(client, "cam", "reconnecting", behind - 5, reason="connection refused")
    doc = {
        "ts": behind,
        "pid": 1,
        "host": "h",
        "published": 0,
        "member": "m-1",
        "sources": ["cam"],
        "stats": {"cam": counters(0, state="reconnecting")},
        "ttl_ms": 60_000,
    }
    client.set(heartbeat_key("w0"), json.dumps(doc), px=59_500)
    state = DashboardState(client, stale_s=10)
    state.discover()
    cam = by_name(state)["cam"]
    assert cam["status"] == "reconnecting" and cam["last_age_s"] == pytest.approx(0.5, abs=0.5)


def test_rates_and_drops_from_heartbeats(redis_url):
    """Input frames/s from decoded counters, drops over the last minute, by the heartbeats' own ts."""
    client = connect(redis_url)
    now = time.time()
    state = DashboardState(client, stale_s=10, drop_warning=0.05)
    # 24 frames/s decoded; the busy camera drops 6 of them per second, the calm one 1 every 2 s
    for k in range(40):
        t = now - 78 + 2 * k
        beat(client, "w0", t, {"busy": counters(24 * 2 * k, 6 * 2 * k), "calm": counters(24 * 2 * k, k)})
        state.read_heartbeats()
    state.read_heartbeats()  # the same heartbeat again: not a new sample
    got = by_name(state)
    busy, calm = got["busy"], got["calm"]
    assert busy["input_fps"] == pytest.approx(24) and calm["input_fps"] == pytest.approx(24)
    # the last minute: samples from now-60 on (30 intervals of 2 s)
    assert (busy["decoded_1m"], busy["dropped_1m"]) == (24 * 58, 6 * 58)
    assert busy["drop_share"] == pytest.approx(0.25) and busy["dropping"]
    assert calm["dropped_1m"] == 29 and calm["drop_share"] == pytest.approx(29 / (24 * 58), abs=1e-4)
    assert not calm["dropping"]
    assert busy["worker"] == "w0" and busy["kind"] == "camera"
    state.drop_warning = 0.01  # the warning threshold is a setting
    assert by_name(state)["calm"]["dropping"]

    # a new worker process of the same run counts from 0: its series is its own, never negative
    beat(client, "w1", now + 1, {"busy": counters(0)})
    state.read_heartbeats()
    busy = by_name(state)["busy"]
    assert busy["worker"] == "w1" and busy["input_fps"] is None  # one sample: no rate yet
    assert busy["dropped_1m"] == 6 * 58  # w0's minute still counts

    # heartbeats that stopped: no current input rate
    state.stale_s = 0.5
    assert by_name(state)["busy"]["input_fps"] is None


def test_latency_percentiles_processed_fps_and_per_source_shares(redis_url):
    client = connect(redis_url)
    now = time.time()
    pub = ResultPublisher(client, maxlen=10_000)
    # 100 results over the last 10 s with latencies 1..100 ms; another camera with two faces each
    pub.publish(results("cam-a", range(100), ts=now - 10, every_s=0.1, latency=lambda i: float(i + 1)))
    pub.publish(results("cam-b", range(50), ts=now - 10, every_s=0.2, faces=2))
    pub.publish(results("cam-c", range(10), ts=now - 200, latency=lambda i: 5000.0))  # outside the minute
    # a camera that began 3 s ago at 25 fps: measured over the 2 s it has published (1 s in flight), not 5
    pub.publish(results("cam-new", range(75), ts=now - 3, every_s=0.04))
    pub.publish(results("cam-newest", range(10), ts=now - 1.5, every_s=0.04))  # under a second: no rate yet
    state = DashboardState(client, stale_s=300)
    state.discover()
    snap = state.snapshot()
    got = {s["name"]: s for s in snap["sources"]}
    a = got["cam-a"]
    assert (a["latency_p50_ms"], a["latency_p95_ms"]) == (50.0, 95.0)
    assert a["fps"] == pytest.approx(10, abs=0.4)  # entries whose capture time is 1-6 s ago, per second
    assert got["cam-b"]["fps"] == pytest.approx(5, abs=0.4)
    assert got["cam-c"]["latency_p95_ms"] is None  # none in the last minute
    assert got["cam-new"]["fps"] == pytest.approx(25, abs=1.5)
    assert got["cam-newest"]["fps"] is None

    shares = snap["shares"]
    assert set(shares["by_source"]) == {"cam-a", "cam-b", "cam-new", "cam-newest"}
    assert sum(shares["by_source"]["cam-a"].values()) == 100
    assert sum(shares["by_source"]["cam-b"].values()) == 100
    assert shares["total"] == 285 and sum(shares["counts"].values()) == 285
    # valence/arousal points name their source and track and carry their capture time; the second face
    # of cam-b has no arousal (not plotted); one point per track per half second at most
    va = snap["va"]
    assert {(p["source"], p["track"]) for p in va} >= {("cam-a", 1), ("cam-b", 1)}
    assert all(now - 11 <= p["ts"] <= now for p in va)
    assert len([p for p in va if p["source"] == "cam-a"]) <= 21
    assert len([p for p in va if p["source"] == "cam-b"]) >= 19
    assert [p["ts"] for p in va] == sorted(p["ts"] for p in va)


def test_snapshot_route_token_names_and_request_key(redis_url):
    client = connect(redis_url)
    app = create_app(DashboardState(connect(redis_url)), token="s3cret", interval_s=0.1, poll=False)
    auth = {"Authorization": "Bearer s3cret"}
    with serve_app(app) as base:
        assert get(base + "/api/snapshot/cam")[0] == 401
        assert not client.exists(snapshot_request_key("cam"))  # nothing asked without the token
        status, headers, body = get(base + "/api/snapshot/cam", auth)
        assert status == 404 and b"off by default" in body and headers["cache-control"] == "no-store"
        assert 0 < client.ttl(snapshot_request_key("cam")) <= 15  # the page's ask keeps workers writing
        for bad in ("a%7Bb%7D", "cam%3Aframes", "x" * 101, "a%20b", "cam%0A"):
            status, _, body = get(base + "/api/snapshot/" + bad, auth)
            assert status == 400 and b"not a source name" in body, bad
        assert client.keys("*request*") == [snapshot_request_key("cam").encode()]
        jpeg = b"\xff\xd8\xff\xe0 not really a picture \xff\xd9"
        client.set(snapshot_key("cam"), jpeg, ex=30)
        status, headers, body = get(base + "/api/snapshot/cam", auth)
        assert (status, body) == (200, jpeg)
        assert headers["content-type"] == "image/jpeg" and headers["cache-control"] == "no-store"


def test_token_sse_and_static_assets(redis_url):
    client = connect(redis_url)
    fill(client)
    app = create_app(DashboardState(connect(redis_url)), token="s3cret", interval_s=0.1)
    with serve_app(app) as base:
        assert get(base + "/healthz")[0] == 200
        status, _, body = get(base + "/")
        assert status == 401 and b"token" in body
        assert get(base + "/api/state", {"Authorization": "Bearer wrong"})[0] == 401

        status, headers, body = get(base + "/?token=s3cret")
        assert status == 200 and b'id="circumplex"' in body
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"]
        for asset in ("/static/app.js", "/static/style.css"):
            status, _, body = get(base + asset, {"Cookie": cookie})
            assert status == 200 and len(body) > 500
        page = get(base + "/", {"Cookie": cookie})[2]
        assert not re.search(rb'(src|href)="(https?:)?//', page)  # assets ship in the package: no CDN

        deadline = time.monotonic() + 10
        names = []
        while time.monotonic() < deadline and "cam-live" not in names:
            snap = json.loads(get(base + "/api/state", {"Authorization": "Bearer s3cret"})[2])
            names = [s["name"] for s in snap["sources"]]
            time.sleep(0.1)
        assert "cam-live" in names

        request = urllib.request.Request(base + "/events", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = []
            while len([x for x in lines if x.startswith("data: ")]) < 2:
                lines.append(response.readline().decode().strip())
        events = [json.loads(x[6:]) for x in lines if x.startswith("data: ")]
        assert "event: snapshot" in lines and all("sources" in e for e in events)
        assert events[1]["now"] > events[0]["now"]


def test_remote_bind_needs_a_token():
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "t0k3n")
    with pytest.raises(ConfigError, match="--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError, match="--token"):
        check_bind("dashboard.example.org", None)


def test_dashboard_command_serves_and_stops_on_sigint(redis_url):
    """`affectstream dashboard` as a real process: serves the state of Redis, exits 0 on Ctrl-C."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.consumer.conftest import free_port

    client = connect(redis_url)
    fill(client)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "affectstream.pipeline.cli.main",
            "dashboard",
            "--redis",
            redis_url,
            "--port",
            str(port),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        names: list = []
        while time.monotonic() < deadline and "cam-flaky" not in names:
            with contextlib.suppress(urllib.error.URLError, ConnectionError):
                names = [
                    s["name"] for s in json.loads(get(f"http://127.0.0.1:{port}/api/state")[2])["sources"]
                ]
            time.sleep(0.2)
        assert "cam-flaky" in names
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_tokenless_mode_answers_only_loopback_host_names(redis_url):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends `Host: evil.example`."""
    app = create_app(DashboardState(connect(redis_url)), interval_s=0.1)
    with serve_app(app) as base:
        port = base.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
            assert get(base + "/api/state", {"Host": host})[0] == 200, host
        for host in (
            f"evil.example:{port}",
            "evil.example",
            f"127.0.0.1.evil.example:{port}",
            f"localhost.:{port}",
        ):
            assert get(base + "/api/state", {"Host": host})[0] == 421, host
