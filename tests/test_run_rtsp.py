"""`affectstream run` against a real GStreamer RTSP server: reconnects, health, metrics, no leaked password."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import events_key, frames_key
from tests.conftest import REPO
from tests.rtsp_fixtures import PASSWORD, free_port
from tests.test_run_files import entries, events, run_cli, wait_for, worker_processes

pytestmark = pytest.mark.rtsp


def health(redis_url: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "affectstream", "health", "--redis", redis_url, "--stale-after", "3"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_camera_restart_reconnects_without_restarting_affectstream(rtsp_server, redis_url, tmp_path):
    port = free_port()
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"workers:\n  heartbeat_s: 0.5\nmetrics:\n  port: {port}\n")
    proc = run_cli("-c", str(cfg), "--source", f"cam={rtsp_server.url}", redis_url=redis_url, wait=False)
    client = connect(redis_url)
    try:
        assert wait_for(lambda: len(entries(client, "cam")) >= 10, timeout=90), "no results from the camera"
        assert health(redis_url).returncode == 0
        first_worker = worker_processes(proc.pid)[0].pid
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert re.search(r'affectstream_frames_published_total\{source="cam",worker="w0"\} [1-9]', metrics)
        assert "affectstream_stage_duration_seconds_bucket" in metrics

        rtsp_server.kill()
        assert wait_for(lambda: "reconnecting" in events(client, "cam"), timeout=30)
        time.sleep(1.0)
        before = len(entries(client, "cam"))  # the old connection's last frames are published by now
        rtsp_server.start()
        assert wait_for(lambda: "recovered" in events(client, "cam"), timeout=60)
        assert wait_for(lambda: len(entries(client, "cam")) > before + 10, timeout=60), (
            "no results after recovery"
        )
        # Faces seen over the new connection are new tracks, not continuations of the old ones.
        published = entries(client, "cam")
        tracks_before = {f["track"] for e in published[:before] for f in json.loads(e["faces"])}
        tracks_after = {f["track"] for e in published[before:] for f in json.loads(e["faces"])}
        assert tracks_before and tracks_after and min(tracks_after) > max(tracks_before)
        # Worker processes are the same ones: affectstream itself was not restarted.
        workers = worker_processes(proc.pid)
        assert len(workers) == 1 and workers[0].pid == first_worker
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "restarting it" not in out
    assert health(redis_url).returncode == 1  # heartbeats are cleared on a clean stop


def test_stale_worker_fails_health(rtsp_server, redis_url, tmp_path):
    cfg = tmp_path / "live.yaml"
    cfg.write_text("workers:\n  heartbeat_s: 0.5\n")
    proc = run_cli("-c", str(cfg), "--source", f"cam={rtsp_server.url}", redis_url=redis_url, wait=False)
    client = connect(redis_url)
    try:
        assert wait_for(lambda: len(entries(client, "cam")) >= 5, timeout=90)
        assert health(redis_url).returncode == 0
        worker = worker_processes(proc.pid)[0]
        worker.suspend()  # a hung worker: alive, but no heartbeat
        try:
            time.sleep(4.0)
            result = health(redis_url)
        finally:
            worker.resume()
        assert result.returncode == 1 and "STALE" in result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_rtsp_password_never_in_logs_events_or_results(rtsp_server, redis_url):
    proc = run_cli("--source", f"secure={rtsp_server.secure_url}", redis_url=redis_url, wait=False)
    client = connect(redis_url)
    try:
        assert wait_for(lambda: len(entries(client, "secure")) >= 5, timeout=90), (
            "no results via the password URL"
        )
        rtsp_server.kill()  # reconnect attempts log and publish the URL too
        assert wait_for(lambda: "reconnecting" in events(client, "secure"), timeout=30)
        rtsp_server.start()
        assert wait_for(lambda: "recovered" in events(client, "secure"), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "camuser" in out or "secure" in out  # the logs did talk about this source
    assert PASSWORD not in out
    dump = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        if kind == b"stream":
            dump += [
                json.dumps({k.decode(): v.decode() for k, v in f.items()}) for _i, f in client.xrange(key)
            ]
        elif kind == b"string":
            dump.append(client.get(key).decode())
        elif kind == b"hash":
            dump.append(json.dumps({k.decode(): v.decode() for k, v in client.hgetall(key).items()}))
    blob = "\n".join(dump)
    keys = set(client.scan_iter("*"))
    assert {events_key("secure").encode(), frames_key("secure").encode()} <= keys  # the scan saw this source
    assert PASSWORD not in blob


def test_sigterm_ends_a_run_whatever_state_its_cameras_are_in(rtsp_server, redis_url, tmp_path):
    """Down (nothing listens), reconnecting (server killed), half-connected (accepts, never answers) and
    frozen mid-stream (SIGSTOP): SIGTERM still ends the run within the sources' timeouts."""
    import socket
    import threading

    from tests.rtsp_fixtures import RtspServer

    half = socket.create_server(("127.0.0.1", 0))
    held: list = []
    threading.Thread(target=lambda: [held.append(half.accept()) for _ in range(100)], daemon=True).start()
    frozen = RtspServer(rtsp_server.media).start()
    sources = {
        "down": f"rtsp://127.0.0.1:{free_port()}/cam",
        "half": f"rtsp://127.0.0.1:{half.getsockname()[1]}/cam",
        "gone": rtsp_server.url,
        "frozen": frozen.url,
    }
    args = [a for name, url in sources.items() for a in ("--source", f"{name}={url}")]
    proc = run_cli(*args, redis_url=redis_url, wait=False)
    client = connect(redis_url)
    try:
        assert wait_for(
            lambda: len(entries(client, "gone")) >= 3 and len(entries(client, "frozen")) >= 3, timeout=90
        )
        rtsp_server.kill()
        frozen.pause()
        assert wait_for(
            lambda: all("reconnecting" in events(client, s) for s in ("down", "half", "gone")), timeout=30
        )
        time.sleep(1.0)  # `frozen` is now blocked in a read, `half` in an open
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        frozen.resume()
        frozen.stop()
        half.close()
    assert proc.returncode == 0, out[-3000:]
    assert took < 15.0, f"SIGTERM took {took:.1f} s to end the run"
    print(f"\nsigterm: run ended {took:.1f} s after SIGTERM (down, reconnecting, half-connected, frozen)")
