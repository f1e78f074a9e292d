"""Sources against real media, a real GStreamer RTSP server and a real HTTP server."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from affectstream.pipeline.sources import SourceSpec, SourceSpecError, kind_from_url, open_source
from affectstream.pipeline.sources._backoff import Backoff
from tests.conftest import need_shared
from tests.rtsp_fixtures import PASSWORD, free_port, rtsp_server  # noqa: F401  (fixture)

WOLF = ("media", "videos", "WolfgangLanger_Pexels.mp4")
SINGLE = ("media", "videos", "single_face.mp4")


class Events:
    """Thread-safe recorder of `on_event` calls."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, kind: str, detail: dict) -> None:
        with self._lock:
            self.items.append((name, kind, detail))

    def kinds(self) -> list[str]:
        with self._lock:
            return [k for _, k, _ in self.items]

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [d for _, k, d in self.items if k == kind]

    def wait_for(self, kind: str, timeout: float, after: int = 0) -> dict:
        """The first `kind` event at or after position `after`; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for _, k, d in self.items[after:]:
                    if k == kind:
                        return d
            time.sleep(0.02)
        raise AssertionError(f"no {kind!r} event within {timeout} s; got {self.kinds()}")


def drain(src, limit_s: float = 30.0) -> list:
    """Every frame of a finite source until it finishes."""
    frames = []
    deadline = time.monotonic() + limit_s
    while not src.finished:
        assert time.monotonic() < deadline, f"source did not finish; {src.stats}"
        frame = src.get(0.5)
        if frame is not None:
            frames.append(frame)
    return frames


def frames_within(src, seconds: float) -> int:
    n, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        if src.get(0.1) is not None:
            n += 1
    return n


def wait_frames(src, count: int, timeout: float) -> list:
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < count:
        assert time.monotonic() < deadline, (
            f"only {len(frames)} of {count} frames in {timeout} s; {src.stats}"
        )
        frame = src.get(0.2)
        if frame is not None:
            frames.append(frame)
    return frames


# -- spec --------------------------------------------------------------------------------------
def test_spec_guesses_kind_and_live_policy():
    assert SourceSpec("a", "/data/x.mp4").kind == "file"
    assert SourceSpec("a", "/data/x.mp4").live is False
    assert SourceSpec("a", "rtsp://u:p@cam/1").kind == "rtsp"
    assert SourceSpec("a", "rtsp://cam/1").live is True
    assert SourceSpec("a", "https://host/live/index.m3u8").kind == "http"
    assert SourceSpec("a", "/dev/video0").kind == "device"
    assert SourceSpec("a", "/dev/v4l/by-id/usb-cam", kind="device").live is True
    assert SourceSpec("a", "/data/x.mp4", live=True).live is True
    assert kind_from_url("file:///data/x.mp4") == "file"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"url": ""}, "url"),
        ({"url": "udp://239.0.0.1:1234"}, "url"),
        ({"kind": "camera"}, "kind"),
        ({"kind": "rtsp"}, "kind"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"silent_after_s": -1.0}, "silent_after_s"),
        ({"backoff_first_s": float("nan")}, "backoff_first_s"),
        ({"backoff_first_s": 2.0, "backoff_cap_s": 1.0}, "backoff_cap_s"),
        ({"queue_size": 0}, "queue_size"),
        ({"rtsp_transport": "sctp"}, "rtsp_transport"),
        ({"url": "rtsp://cam/1", "realtime": True}, "realtime"),
    ],
)
def test_spec_rejects_bad_fields_naming_them(kwargs, field):
    args = {"name": "cam", "url": "/data/x.mp4", **kwargs}
    with pytest.raises(SourceSpecError, match=rf"SourceSpec\.{field}") as info:
        SourceSpec(**args)
    assert isinstance(info.value, ValueError)


def test_spec_repr_masks_password():
    spec = SourceSpec("cam", f"rtsp://admin:{PASSWORD}@10.0.0.5/stream")
    assert PASSWORD not in repr(spec) and PASSWORD not in spec.safe_url
    with pytest.raises(SourceSpecError) as info:
        SourceSpec("cam", f"rtsp://admin:{PASSWORD}@10.0.0.5/stream", kind="file")
    assert PASSWORD not in str(info.value)


def test_backoff_is_capped_exponential_with_full_jitter():
    backoff = Backoff(0.5, 5.0)
    assert [backoff.bound(a) for a in (1, 2, 3, 4, 5, 100)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    delays = [backoff.delay(1) for _ in range(200)]
    assert all(0.0 <= d <= 0.5 for d in delays) and len(set(delays)) > 100
    assert max(backoff.delay(50) for _ in range(200)) <= 5.0


def test_import_does_not_load_pyav():
    code = "import sys, pipeline.sources; sys.exit('av' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- files -------------------------------------------------------------------------------------
def test_file_source_yields_every_frame_in_order():
    import av

    path = need_shared(*WOLF)
    events = Events()
    src = open_source(SourceSpec("wolf", str(path)), events).start()
    try:
        frames = drain(src)
    finally:
        src.stop()
    assert len(frames) == 472
    assert [f.index for f in frames] == list(range(472))
    pts = np.array([f.pts for f in frames])
    assert pts[0] == 0.0 and np.all(np.diff(pts) > 0)
    assert abs(pts[-1] - 471 / (24000 / 1001)) < 0.05
    assert all(
        f.source == "wolf" and f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames
    )
    assert frames[-1].ts >= frames[0].ts
    with av.open(str(path)) as container:  # BGR, as insightface expects
        first = next(container.decode(video=0)).to_ndarray(format="bgr24")
    assert np.array_equal(frames[0].image, first)
    assert events.kinds() == ["started", "eof"]
    assert events.of("started")[0]["frames"] == 472 and events.of("eof")[0]["frames"] == 472
    assert src.stats.decoded == 472 and src.stats.dropped == 0 and src.stats.state == "eof"


def test_file_policy_blocks_instead_of_dropping():
    path = need_shared(*SINGLE)
    src = open_source(SourceSpec("single", str(path), queue_size=3)).start()
    try:
        time.sleep(0.5)  # a slow consumer: the reader must wait, not run ahead or drop
        assert src.stats.decoded <= 3 + 1
        frames = drain(src)
    finally:
        src.stop()
    assert [f.index for f in frames] == list(range(72))
    assert src.stats.dropped == 0


def test_live_policy_keeps_newest_frame_and_counts_drops():
    path = need_shared(*SINGLE)
    # A file read as a live source: decoded as fast as possible, the slow consumer only sees the newest.
    src = open_source(SourceSpec("live-file", str(path), live=True)).start()
    try:
        time.sleep(0.6)
        frame = src.get(1.0)
        stats = src.stats
    finally:
        src.stop()
    assert frame is not None
    assert stats.dropped > 0 and stats.decoded >= frame.index + 1


def test_realtime_file_replays_at_native_rate():
    path = need_shared(*SINGLE)  # 30 fps
    src = open_source(SourceSpec("rt", str(path), realtime=True)).start()
    try:
        t0 = time.monotonic()
        frames = wait_frames(src, 31, timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        src.stop()
    assert elapsed >= 0.9, f"31 frames at 30 fps took {elapsed:.2f} s"
    assert [f.index for f in frames] == list(range(31))


def test_corrupt_and_missing_files_report_errors_and_spare_other_sources(tmp_path):
    data = need_shared(*WOLF).read_bytes()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(64_000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])  # header intact, two thirds of the frames gone
    missing = tmp_path / "missing.mp4"
    events = Events()
    bad = [open_source(SourceSpec(p.stem, str(p)), events).start() for p in (garbage, truncated, missing)]
    healthy = open_source(SourceSpec("healthy", str(need_shared(*SINGLE))), events).start()
    try:
        frames = drain(healthy)
        for src in bad:
            drain(src)  # must finish without raising
    finally:
        for src in (*bad, healthy):
            src.stop()
    assert len(frames) == 72
    reasons = {name: d["reason"] for name, kind, d in events.items if kind == "error"}
    assert set(reasons) == {"garbage", "truncated", "missing"}
    assert "Invalid data" in reasons["garbage"] and str(garbage) in reasons["garbage"]
    assert "truncated" in reasons["truncated"] and "472" in reasons["truncated"]
    assert "No such file" in reasons["missing"]
    assert all(src.finished and src.stats.state == "error" for src in bad)
    assert "error" not in [k for n, k, _ in events.items if n == "healthy"]


def _fds_pointing_at(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path.resolve()):
                count += 1
        except OSError:
            continue
    return count


def test_containers_are_closed_on_stop_and_on_eof():
    path = need_shared(*WOLF)
    # Stopped mid-file (the readers sit blocked on a full queue) ...
    sources = [open_source(SourceSpec(f"s{i}", str(path), queue_size=2)).start() for i in range(3)]
    deadline = time.monotonic() + 10
    while any(s.stats.decoded < 2 for s in sources):  # every reader is decoding (then blocks on its queue)
        assert time.monotonic() < deadline, [s.stats for s in sources]
        time.sleep(0.02)
    assert _fds_pointing_at(path) == 3
    assert [s.open_containers for s in sources] == [1, 1, 1]
    for s in sources:
        s.stop()
    assert _fds_pointing_at(path) == 0
    assert [s.open_containers for s in sources] == [0, 0, 0]
    assert all(s.stats.state == "down" for s in sources)
    # ... and read to the end.
    single = need_shared(*SINGLE)
    src = open_source(SourceSpec("eof", str(single))).start()
    drain(src)
    assert _fds_pointing_at(single) == 0 and src.open_containers == 0
    src.stop()


def _write_hls(src: Path, folder: Path) -> Path:
    """Remux `src` into an HLS VOD playlist with MPEG-TS segments (no re-encoding)."""
    import av

    playlist = folder / "index.m3u8"
    opts = {"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(src)) as inp, av.open(str(playlist), "w", format="hls", options=opts) as out:
        ost = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = ost
                out.mux(packet)
    return playlist


def test_http_sources_read_mp4_and_hls_from_a_real_http_server(tmp_path):
    wolf, single = need_shared(*WOLF), need_shared(*SINGLE)
    # This mp4 keeps its index up front ("faststart"), which is what a server without Range support needs.
    (tmp_path / wolf.name).symlink_to(wolf)
    _write_hls(single, tmp_path)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    events = Events()
    sources = [
        open_source(SourceSpec("mp4", f"{base}/{wolf.name}", live=False), events).start(),
        open_source(SourceSpec("hls", f"{base}/index.m3u8", live=False), events).start(),
    ]
    try:
        frames = [drain(src) for src in sources]
    finally:
        for src in sources:
            src.stop()
        server.shutdown()
        server.server_close()
    assert [f.index for f in frames[0]] == list(range(472))
    assert [f.index for f in frames[1]] == list(range(72))
    assert sorted(k for _, k, _ in events.items) == ["eof", "eof", "started", "started"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (signature of the base class)
        pass


# -- RTSP --------------------------------------------------------------------------------------
@pytest.mark.rtsp
def test_rtsp_live_source_delivers_newest_frames(rtsp_server):  # noqa: F811
    events = Events()
    src = open_source(SourceSpec("cam", rtsp_server.url), events).start()
    try:
        frames = wait_frames(src, 10, timeout=15)
        started = events.wait_for("started", 1)
        time.sleep(1.0)  # a slow consumer: older frames are replaced, not queued
        stats = src.stats
    finally:
        src.stop()
    assert started["codec"] == "h264" and (started["width"], started["height"]) == (640, 360)
    index = [f.index for f in frames]
    assert index == sorted(set(index))  # a busy consumer may miss frames, never sees one twice or late
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8
    # RTSP's first frame carries no timestamp (it gets 0.0); the stream's clock runs from the second on.
    assert all(b.pts > a.pts for a, b in zip(frames[1:], frames[2:], strict=False))
    assert stats.state == "live" and stats.dropped >= 5
    assert stats.decoded - stats.dropped - len(frames) in (0, 1)  # the rest waits in the 1-slot mailbox
    assert src.open_containers == 0 and src.stats.state == "down"


@pytest.mark.rtsp
def test_rtsp_server_killed_and_restarted_reconnects_without_leaking_password(rtsp_server, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    events = Events()
    spec = SourceSpec("cam", rtsp_server.secure_url, timeout_s=2.0, silent_after_s=1.5)
    src = open_source(spec, events).start()
    try:
        first = wait_frames(src, 5, timeout=15)
        rtsp_server.kill()
        events.wait_for("reconnecting", timeout=5)
        time.sleep(1.0)  # refused attempts while it is down
        frames_while_down = frames_within(src, 0.3)
        mark = len(events.items)
        rtsp_server.start()
        events.wait_for("recovered", timeout=15, after=mark)
        after = wait_frames(src, 5, timeout=10)
        stats = src.stats
    finally:
        src.stop()
    kinds = events.kinds()
    assert kinds[0] == "started" and "reconnecting" in kinds
    assert kinds.index("recovered") > kinds.index("reconnecting")
    attempts = [d["attempt"] for d in events.of("reconnecting")]
    assert attempts == list(range(1, len(attempts) + 1)) and len(attempts) >= 2
    assert events.of("reconnecting")[0]["delay_s"] <= 0.5
    assert all(d["delay_s"] <= 5.0 and d["reason"] for d in events.of("reconnecting"))
    assert frames_while_down <= 1  # at most the one frame left in the mailbox
    assert after[0].index > 5 and stats.reconnects == len(attempts) and stats.state == "live"
    # Frames say which connection decoded them: the worker restarts the source's tracks when it changes.
    assert {f.connection for f in first} == {0} and {f.connection for f in after} == {1}
    # The password never leaves: not in events, not in any log record (the URL is in FFmpeg's errors).
    assert "Connection refused" in " ".join(d["reason"] for d in events.of("reconnecting"))
    assert PASSWORD not in repr(events.items)
    assert PASSWORD not in caplog.text and "***" in caplog.text


@pytest.mark.rtsp
def test_rtsp_silent_camera_is_treated_as_down(rtsp_server):  # noqa: F811
    events = Events()
    src = open_source(SourceSpec("cam", rtsp_server.url, timeout_s=1.0, silent_after_s=1.0), events).start()
    try:
        wait_frames(src, 3, timeout=15)
        rtsp_server.pause()  # connection stays open, nothing arrives
        down = events.wait_for("reconnecting", timeout=6)
        rtsp_server.resume()
        events.wait_for("recovered", timeout=15)
        wait_frames(src, 3, timeout=10)
    finally:
        src.stop()
    assert "timed out" in down["reason"] or "silent" in down["reason"]


@pytest.mark.rtsp
def test_rtsp_wrong_password_is_reported_without_the_password(rtsp_server, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    events = Events()
    url = rtsp_server.secure_url.replace(PASSWORD, PASSWORD + "-wrong")
    src = open_source(SourceSpec("cam", url, backoff_first_s=0.1, backoff_cap_s=0.2), events).start()
    try:
        reason = events.wait_for("reconnecting", timeout=10)["reason"]
    finally:
        src.stop()
    assert "401" in reason and "***" in reason
    assert PASSWORD not in repr(events.items) and PASSWORD not in caplog.text


def test_unreachable_rtsp_url_retries_and_never_blocks():
    events = Events()
    url = f"rtsp://user:{PASSWORD}@127.0.0.1:{free_port()}/nothing"  # nobody listens there
    src = open_source(SourceSpec("gone", url, timeout_s=1.0), events).start()
    t0 = time.monotonic()
    assert src.get(0.1) is None
    assert time.monotonic() - t0 < 0.5
    events.wait_for("reconnecting", timeout=3)
    time.sleep(1.5)
    assert not src.finished and src.stats.state == "reconnecting"
    t0 = time.monotonic()
    src.stop()
    assert time.monotonic() - t0 < 2.0
    attempts = events.of("reconnecting")
    assert len(attempts) >= 2 and "started" not in events.kinds()
    assert PASSWORD not in repr(events.items)
    assert src.stats.state == "down" and src.open_containers == 0


def test_probe_command_reports_frames_and_rate(capsys):
    import argparse

    from affectstream.pipeline.cli import probe as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["probe", str(need_shared(*WOLF)), "--frames", "48", "--json"])
    assert args.handler(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 48 and summary["fps"] > 0 and summary["state"] == "down"


def test_missing_device_retries_with_a_clear_reason():
    events = Events()
    src = open_source(SourceSpec("usb", "/dev/video99", timeout_s=1.0), events).start()
    try:
        reason = events.wait_for("reconnecting", timeout=5)["reason"]
    finally:
        src.stop()
    assert "/dev/video99" in reason and "No such file" in reason
    assert src.stats.state == "down"


def test_bgr_converter_matches_pyav_to_ndarray_across_frame_sizes():
    import av

    from affectstream.pipeline.sources import BgrConverter

    to_bgr = BgrConverter()  # one converter, two frame sizes: its swscale context must follow the change
    for parts in (("media", "videos", "face_noface.mov"), WOLF):
        with av.open(str(need_shared(*parts))) as container:
            for i, frame in enumerate(container.decode(video=0)):
                got = to_bgr(frame)
                assert got.shape == (frame.height, frame.width, 3)
                np.testing.assert_array_equal(got, frame.to_ndarray(format="bgr24"))
                if i == 5:
                    break


@pytest.mark.rtsp
def test_probe_reports_stream_facts_and_takes_the_camera_options(rtsp_server, capsys):  # noqa: F811
    import argparse

    from affectstream.pipeline.cli import probe as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "probe",
            rtsp_server.url,
            "--frames",
            "10",
            "--json",
            "--rtsp-transport",
            "udp",
            "--timeout",
            "3",
            "--silent-after",
            "4",
        ]
    )
    assert args.handler(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 10 and summary["corrupt"] == 0
    assert (summary["codec"], summary["width"], summary["height"]) == ("h264", 640, 360)
    assert summary["transport"] == "udp" and summary["fps"] > 0


def test_probe_of_a_camera_that_is_down_says_why(capsys):
    import argparse

    from affectstream.pipeline.cli import probe as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    url = f"rtsp://127.0.0.1:{free_port()}/cam"
    args = parser.parse_args(["probe", url, "--seconds", "1", "--json", "--timeout", "1"])
    assert args.handler(args) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 0 and "Connection refused" in summary["reason"]
