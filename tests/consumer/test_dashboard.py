"""Dashboard server without a browser: statuses from events, snapshots, SSE, token, bind policy."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from pipeline.dashboard.app import check_bind, create_app
from pipeline.dashboard.state import DashboardState
from pipeline.errors import ConfigError
from pipeline.keys import frames_key
from pipeline.publish import ResultPublisher, encode_frame, publish_event
from pipeline.redis_conn import connect
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
    publish_event(client, "archive", "eof")
    publisher.publish([make_result("archive", 0)])
    publisher.publish([make_result("no-events", 0)])  # frames but no events stream: judged by recency


def test_snapshot_status_faces_shares_and_rates(redis_url):
    client = connect(redis_url)
    fill(client)
    bad = encode_frame(make_result("cam-live", 99))
    bad["v"] = "7"
    client.xadd(frames_key("cam-live"), bad)
    state = DashboardState(client, stale_s=10)
    state.discover()
    snap = state.snapshot()
    by_name = {s["name"]: s for s in snap["sources"]}
    assert sorted(by_name) == ["archive", "cam-flaky", "cam-live", "no-events"]
    assert (by_name["cam-live"]["status"], by_name["cam-live"]["detail"]) == ("live", "")
    assert by_name["cam-flaky"]["status"] == "reconnecting"
    assert "hunter2" not in json.dumps(snap) and "timed out" in by_name["cam-flaky"]["detail"]
    assert (by_name["archive"]["status"], by_name["archive"]["detail"]) == ("down", "eof")
    assert by_name["no-events"]["status"] == "live"

    live = by_name["cam-live"]
    assert live["frames"] == 8 and live["bad_entries"] == 1 and live["last_frame"] == 7
    assert [f["track"] for f in live["faces"]] == [1, 2]
    assert live["fps"] > 0 and live["latency_ms"] == pytest.approx(12.5)
    assert by_name["archive"]["faces"] == []  # a source that is down shows no faces in view
    assert snap["shares"]["total"] == 8 * 2 + 3
    assert sum(snap["shares"]["counts"].values()) == snap["shares"]["total"]
    assert len(snap["va"]) == 8 + 3  # the second face of cam-live has no arousal: not plotted

    # new entries and events arrive through poll(); a quiet "live" source turns down after stale_s
    publish_event(client, "cam-flaky", "recovered")
    assert state.poll(block_ms=100) >= 1
    assert {s["name"]: s["status"] for s in state.snapshot()["sources"]}["cam-flaky"] == "live"
    state.stale_s = 0.05
    time.sleep(0.1)
    quiet = {s["name"]: s for s in state.snapshot()["sources"]}["cam-live"]
    assert quiet["status"] == "down" and "no results" in quiet["detail"]


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
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "dashboard", "--redis", redis_url,
                             "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        names: list = []
        while time.monotonic() < deadline and "cam-flaky" not in names:
            try:
                names = [
                    s["name"] for s in json.loads(get(f"http://127.0.0.1:{port}/api/state")[2])["sources"]
                ]
            except (urllib.error.URLError, ConnectionError):
                pass
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
