"""`affectstream run` end to end on real files, a real Redis server and the shipped model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import events_key, frames_key
from affectstream.pipeline.streams.schema import validate_entry
from tests.conftest import REPO, need_shared


def run_cli(*args, redis_url, timeout=240, wait=True):
    env = {
        **os.environ,
        "AFFECTSTREAM_DETECTOR": str(need_shared("models", "scrfd_500m.onnx")),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "-m", "affectstream", "run", "--redis", redis_url, *args]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def entries(client, source):
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _id, fields in client.xrange(frames_key(source))
    ]


def events(client, source):
    return [fields[b"kind"].decode() for _id, fields in client.xrange(events_key(source))]


def worker_processes(supervisor_pid: int) -> list:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    import psutil

    return [c for c in psutil.Process(supervisor_pid).children() if "spawn_main" in " ".join(c.cmdline())]


def wait_for(predicate, timeout=60.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_file_source_all_frames_in_order_schema_valid(redis_url):
    video = need_shared("media", "videos", "single_face.mp4")
    code, out = run_cli("--source", f"clip={video}", redis_url=redis_url)
    assert code == 0, out
    client = connect(redis_url)
    got = entries(client, "clip")
    assert [int(e["frame"]) for e in got] == list(range(72))
    for e in got:
        validate_entry(e)
    pts = [float(e["pts"]) for e in got]
    assert pts == sorted(pts)
    with_face = [e for e in got if int(e["n"]) > 0]
    assert len(with_face) >= 0.9 * len(got)
    face = json.loads(with_face[0]["faces"])[0]
    assert abs(sum(face["probs"].values()) - 1.0) < 1e-3
    assert events(client, "clip") == ["started", "eof"]


def test_bad_sources_do_not_stop_a_healthy_one(redis_url, tmp_path):
    video = need_shared("media", "videos", "single_face.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(video.read_bytes()[:4096] + os.urandom(20000))
    garbage = tmp_path / "notes.mp4"
    garbage.write_text("this is not a video\n" * 100)
    proc = run_cli(
        "--source",
        f"good={video}",
        "--source",
        f"corrupt={corrupt}",
        "--source",
        f"text={garbage}",
        "--source",
        "dead=rtsp://127.0.0.1:9/none",
        redis_url=redis_url,
        wait=False,
    )
    client = connect(redis_url)
    try:
        assert wait_for(lambda: len(entries(client, "good")) == 72, timeout=180), (
            "healthy source did not finish"
        )
        assert wait_for(lambda: "reconnecting" in events(client, "dead"), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    # Failed files make the run fail, by name; the healthy file and the camera were not disturbed.
    assert proc.returncode == 1, out
    assert "2 sources failed" in out and "corrupt:" in out and "text:" in out, out
    assert "error" in events(client, "text")
    reasons = [f[b"reason"].decode() for _i, f in client.xrange(events_key("text")) if f[b"kind"] == b"error"]
    assert reasons and reasons[0].strip()
    assert "error" in events(client, "corrupt")


def test_sigterm_drains_and_exits_zero(redis_url, tmp_path):
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    cfg = tmp_path / "realtime.yaml"  # replayed at its native 24 fps: SIGTERM comes well before the end
    cfg.write_text(f"sources:\n  - {{name: long, url: '{video}', realtime: true}}\n")
    proc = run_cli("-c", str(cfg), redis_url=redis_url, wait=False)
    client = connect(redis_url)
    assert wait_for(lambda: len(entries(client, "long")) >= 20, timeout=120)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    frames = [int(e["frame"]) for e in entries(client, "long")]
    assert frames == list(range(len(frames))), "published frames must be contiguous and in order"
    took = re.search(r"took (\d+) frames, published (\d+)", out)
    assert took, out
    assert int(took.group(1)) == int(took.group(2)) == len(frames), "a frame taken from the source was lost"
    assert len(frames) < 472


def test_crashed_worker_restarts_and_resumes_without_duplicates(redis_url):
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    proc = run_cli("--source", f"crash={video}", redis_url=redis_url, wait=False)
    client = connect(redis_url)
    assert wait_for(lambda: len(entries(client, "crash")) >= 30, timeout=120)
    workers = worker_processes(proc.pid)
    assert workers, "no worker process found"
    for w in workers:
        w.kill()  # SIGKILL: no chance to drain
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "restarting it (resume)" in out
    frames = [int(e["frame"]) for e in entries(client, "crash")]
    assert frames == list(range(472)), "every frame exactly once, in order, after the restart"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source", "x=rtsp://h/s", "--redis", "http://nope"], "scheme must be one of"),
    ],
)
def test_bad_command_line_fails_fast_with_message(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "affectstream", "run", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_live_smoothing_steadies_valence(redis_url, tmp_path):
    video = need_shared("media", "videos", "single_face.mp4")
    cfg = tmp_path / "smooth.yaml"
    cfg.write_text("smoothing:\n  window: 8\n")
    assert run_cli("--source", f"raw={video}", redis_url=redis_url)[0] == 0
    assert run_cli("-c", str(cfg), "--source", f"smooth={video}", redis_url=redis_url)[0] == 0
    client = connect(redis_url)

    def jitter(source):
        vals = [json.loads(e["faces"])[0]["valence"] for e in entries(client, source) if int(e["n"]) == 1]
        assert len(vals) > 30
        return sum(abs(a - b) for a, b in zip(vals, vals[1:], strict=False)) / (len(vals) - 1)

    assert jitter("smooth") < 0.7 * jitter("raw")


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 1.0])
def test_sigterm_while_a_run_starts_is_a_clean_stop(redis_url, delay_s):
    """SIGTERM as soon as the run holds its writer lease (workers still starting, before they can catch it),
    or a little later: the run exits 0, nothing half-written, the lease given back."""
    from affectstream.pipeline.streams.keys import lease_key

    client = connect(redis_url)
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    proc = run_cli("--source", f"early={video}", redis_url=redis_url, wait=False)
    try:
        assert wait_for(lambda: client.exists(lease_key("early")), timeout=60, every=0.01), proc.stdout.read()
        time.sleep(delay_s)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert not client.exists(lease_key("early")), "the stopped run kept its writer lease"
    frames = [int(f[b"frame"]) for _id, f in client.xrange(frames_key("early"))]
    assert frames == list(range(len(frames))), "a gap or a duplicate in what was published"


def test_ctrl_c_with_the_embedded_redis_publishes_every_frame_taken(tmp_path):
    """Ctrl-C in a terminal signals the whole foreground process group; the embedded redis-server runs in
    a session of its own, so it is still there while the run drains, and is stopped by the run after."""
    from affectstream.pipeline.streams.embedded import EmbeddedRedis

    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    data = tmp_path / "redis"
    cfg = tmp_path / "embedded.yaml"
    cfg.write_text(
        f"redis: {{data_dir: '{data}'}}\nsources:\n  - {{name: long, url: '{video}', realtime: true}}\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AFFECTSTREAM_REDIS_URL": ""}
    env["AFFECTSTREAM_DETECTOR"] = str(need_shared("models", "scrfd_500m.onnx"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "affectstream", "run", "-c", str(cfg)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a shell gives a foreground job
    )
    client = (
        connect(f"unix://{data / 'redis.sock'}")
        if wait_for(lambda: (data / "redis.sock").exists(), timeout=60)
        else None
    )
    assert client is not None
    assert wait_for(lambda: client.xlen(frames_key("long")) >= 20, timeout=120)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "failed" not in out and "cannot reach Redis" not in out, out
    took = re.search(r"took (\d+) frames, published (\d+)", out)
    assert took and took.group(1) == took.group(2), out
    with EmbeddedRedis(data) as server:  # the run stopped its server; its append-only file has every entry
        frames = [int(e["frame"]) for e in entries(connect(server.url), "long")]
    assert frames == list(range(int(took.group(2)))) and len(frames) < 472
