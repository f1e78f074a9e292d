"""Redis misbehaving during a run with two live cameras (a real GStreamer RTSP server, one mount open, one
with a password) and two files: SIGSTOP for 10 s, SIGKILL + restart with and without AOF, OOM under
`noeviction`, and a stream key of the wrong type.

Files must end with exactly one entry per frame, in order; cameras publish each frame at most once, in
order; every file's events end with one `eof`; the password never reaches Redis or the log.
"""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from affectstream.pipeline.streams.keys import events_key, frames_key
from tests.conftest import need_shared
from tests.faults.harness import (
    accounts,
    assert_accounts_hold,
    audit_file,
    audit_live,
    report,
    start_run,
    wait_for,
)
from tests.rtsp_fixtures import PASSWORD

pytestmark = pytest.mark.rtsp

FILE_FRAMES = 472  # WolfgangLanger_Pexels.mp4


def _inject(fault: str, server) -> None:
    if fault == "sigstop":
        server.pause()
        time.sleep(10)
        server.resume()
    elif fault in ("kill-aof", "kill-no-aof"):
        server.kill()
        time.sleep(2)
        server.start()
    elif fault == "oom":
        client = server.client()
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set(
            "maxmemory", used + 64 * 1024
        )  # a few more entries fit, then every write is refused
        time.sleep(8)
        client.config_set("maxmemory", 0)  # consumers trimmed their streams: memory is back
    else:
        raise AssertionError(fault)


@pytest.mark.parametrize("fault", ["sigstop", "kill-aof", "kill-no-aof", "oom"])
def test_files_exactly_once_and_cameras_at_most_once_through_a_redis_fault(
    fault, tmp_path, rtsp_server, redis_process
):
    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    copy = tmp_path / "second.mp4"
    shutil.copy(video, copy)
    server = redis_process(aof=fault != "kill-no-aof")
    client = server.client()
    sources = {
        "file-a": str(video),
        "file-b": str(copy),
        "cam-open": rtsp_server.url,
        "cam-secure": rtsp_server.secure_url,
    }
    proc = start_run(server.url, sources, tmp_path)
    try:
        assert wait_for(lambda: client.xlen(frames_key("file-a")) >= 60, timeout=120, proc=proc), (
            "no progress before the fault"
        )
        t_fault = time.monotonic()
        _inject(fault, server)
        t_back = time.monotonic()
        client = server.client()
        before = client.xlen(frames_key("file-a")) if client.exists(frames_key("file-a")) else 0
        wait_for(lambda: client.xlen(frames_key("file-a")) > before, timeout=120, every=0.05)
        recover_s = time.monotonic() - t_back

        def done() -> bool:
            return all(
                b"eof" in [f[b"kind"] for _i, f in client.xrange(events_key(s))] for s in ("file-a", "file-b")
            )

        assert wait_for(done, timeout=300, proc=proc), "files did not finish"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
        server_log = (tmp_path / "run.log").read_text()
    files = [audit_file(client, s, FILE_FRAMES) for s in ("file-a", "file-b")]
    cams = [audit_live(client, s) for s in ("cam-open", "cam-secure")]
    report(
        {
            "fault": fault,
            "trials": 1,
            "files": files,
            "cameras": cams,
            "recover_s": round(recover_s, 2),
            "accounts": accounts(server_log),
            "fault_s": round(t_back - t_fault, 1),
        }
    )
    assert code == 0, server_log[-3000:]
    assert_accounts_hold(server_log, list(sources))  # per source: decoded = published + dropped{reason}
    for a in files:
        assert a.complete, a
        assert a.events[-1] == "eof" and a.events.count("eof") == 1 and a.events[0] == "started", a
    for a in cams:
        assert a.duplicates == 0 and a.in_order and a.published > 0, a
    assert PASSWORD not in server_log
    dump = b"".join(
        k + repr(client.xrange(k)).encode() for k in client.keys("*") if client.type(k) == b"stream"
    )
    assert PASSWORD.encode() not in dump and PASSWORD.encode() not in b"".join(client.keys("*"))


def test_a_wrongtype_key_fails_its_source_alone(tmp_path, rtsp_server, redis_process):
    """One file's stream key holds a string: that source fails with an `error` event naming the key; the
    other file and the cameras are untouched (no entry written twice), and `run` exits 1 naming it."""
    video = need_shared("media", "videos", "single_face.mp4")
    server = redis_process()
    client = server.client()
    client.set(frames_key("broken"), "not a stream")
    sources = {
        "good": str(video),
        "broken": str(video),
        "cam-open": rtsp_server.url,
        "cam-secure": rtsp_server.secure_url,
    }
    proc = start_run(server.url, sources, tmp_path)
    try:
        assert wait_for(
            lambda: b"eof" in [f[b"kind"] for _i, f in client.xrange(events_key("good"))],
            timeout=180,
            proc=proc,
        )
        assert wait_for(
            lambda: b"error" in [f[b"kind"] for _i, f in client.xrange(events_key("broken"))],
            timeout=60,
            proc=proc,
        )
        time.sleep(2)  # the camera keeps publishing next to the broken source
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
    log = (tmp_path / "run.log").read_text()
    good, cams = audit_file(client, "good", 72), [audit_live(client, s) for s in ("cam-open", "cam-secure")]
    report({"fault": "wrongtype", "trials": 1, "files": [good], "cameras": cams, "accounts": accounts(log)})
    assert good.complete and good.events == ["started", "eof"], good
    found = assert_accounts_hold(log, list(sources))
    assert all(a["published"] == 0 for a in found if a["source"] == "broken"), found
    for cam in cams:
        assert cam.duplicates == 0 and cam.in_order and cam.published > 0, cam
    assert PASSWORD not in log
    assert client.get(frames_key("broken")) == b"not a stream"
    reasons = [
        f[b"reason"].decode() for _i, f in client.xrange(events_key("broken")) if f[b"kind"] == b"error"
    ]
    assert reasons and frames_key("broken") in reasons[0] and "WRONGTYPE" in reasons[0], reasons
    assert code == 1 and "1 sources failed: broken:" in log, log[-3000:]
