"""The run's one Prometheus endpoint, scraped while a real 2-worker `affectstream run` publishes.

Sources: two cameras on the real GStreamer RTSP server and two video files, spread over two worker
processes (a camera each, so both run to the end); the supervisor serves `metrics.port` and merges its workers' pages. Every scrape must be
consistent: per source and worker, decoded >= published, and published <= the entries Redis holds
(read after the scrape). The same run checks the heartbeat's per-source stats, opt-in snapshots and the
`stopped` event of a camera stopped by SIGTERM.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from collections import defaultdict

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from affectstream.pipeline.runtime.metrics import FAMILIES
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import (
    HEARTBEAT_PATTERN,
    frames_key,
    snapshot_key,
    snapshot_request_key,
)
from affectstream.pipeline.streams.outbox import DROP_REASONS
from tests.conftest import need_shared
from tests.rtsp_fixtures import free_port
from tests.test_run_files import events, run_cli, wait_for

pytestmark = pytest.mark.rtsp

MIN_SCRAPES = 50


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        assert family.name in FAMILIES, f"{family.name} is exported but not in FAMILIES"
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def by_source_worker(sample: dict[tuple, float]) -> dict[tuple[str, str], float]:
    """Summed over the other labels (`reason` of the dropped counter)."""
    out: dict[tuple[str, str], float] = {}
    for k, v in sample.items():
        key = (dict(k)["source"], dict(k)["worker"])
        out[key] = out.get(key, 0) + v
    return out


def test_one_endpoint_for_two_workers_decoded_never_below_published(rtsp_server, redis_url, tmp_path):  # noqa: PLR0915 (one end-to-end run, its checks in order)
    port = free_port()
    files = {
        "clip-a": need_shared("media", "videos", "single_face.mp4"),
        "clip-b": need_shared("media", "videos", "WolfgangLanger_Pexels.mp4"),
    }
    cfg = tmp_path / "two.yaml"
    cfg.write_text(
        "workers:\n  count: 2\n  heartbeat_s: 0.5\n"
        f"metrics:\n  port: {port}\n"
        "snapshots:\n  enabled: true\n  every_s: 0.5\n  width: 320\n  max_bytes: 40000\n"
        "sources:\n"
        f"  - {{name: cam, url: '{rtsp_server.url}'}}\n  - {{name: cam2, url: '{rtsp_server.url}'}}\n"
        + "".join(f"  - {{name: {n}, url: '{p}'}}\n" for n, p in files.items())
    )
    client = connect(redis_url)
    client.set(snapshot_request_key("cam"), 1, ex=120)  # what a dashboard showing `cam` does
    proc = run_cli("-c", str(cfg), redis_url=redis_url, wait=False)
    scrapes, workers_seen = [], set()
    try:
        deadline = time.monotonic() + 180
        while len(scrapes) < MIN_SCRAPES or not wait_for(lambda: client.exists(snapshot_key("cam")), 0.01):
            assert time.monotonic() < deadline, f"only {len(scrapes)} scrapes with published frames"
            assert proc.poll() is None, proc.stdout.read()
            try:
                sample = scrape(port)
            except OSError:  # not listening yet
                time.sleep(0.2)
                continue
            xlen = {s: client.xlen(frames_key(s)) for s in ("cam", "cam2", *files)}  # after the scrape
            decoded = by_source_worker(sample.get("affectstream_frames_decoded_total", {}))
            published = by_source_worker(sample.get("affectstream_frames_published_total", {}))
            dropped = by_source_worker(sample.get("affectstream_frames_dropped_total", {}))
            assert all(
                dict(k)["reason"] in DROP_REASONS for k in sample.get("affectstream_frames_dropped_total", {})
            )
            for key, n in published.items():
                assert decoded.get(key, 0) >= n + dropped.get(key, 0), (
                    f"scrape {len(scrapes)}: {key} decoded {decoded.get(key)} < published {n} + dropped "
                    f"{dropped.get(key, 0)}"
                )
            for source in xlen:
                shown = sum(n for (s, _), n in published.items() if s == source)
                assert shown <= xlen[source], f"{source}: {shown} published but {xlen[source]} in Redis"
            if sum(published.values()) > 0:
                scrapes.append(sample)
                workers_seen |= {w for _, w in published}
            time.sleep(0.1)

        last = scrapes[-1]
        up = {dict(k)["worker"]: v for k, v in last["affectstream_worker_up"].items()}
        assert len(up) == 2 and set(up.values()) == {1.0}, up
        assert set(up) == {"w0", "w1"}, "the worker label is the slot: the same series after a restart"
        assert workers_seen == set(up), "both workers published through the one endpoint"
        info = last["affectstream_build_info"]
        assert {dict(k)["worker"] for k in info} == set(up)
        assert all(dict(k)["model"] and dict(k)["backend"] for k in info)
        states = {
            dict(k)["state"]: v
            for k, v in last["affectstream_source_state"].items()
            if dict(k)["source"] == "cam"
        }
        assert sum(states.values()) == 1.0 and set(states) >= {"live", "reconnecting", "eof"}
        assert (
            sum(
                v
                for k, v in last["affectstream_frames_published_total"].items()
                if dict(k)["source"] == "cam"
            )
            > 0
        )
        assert sum(last["affectstream_expressions_total"].values()) == sum(
            last["affectstream_faces_total"].values()
        )
        assert last["affectstream_queue_capacity"] and "affectstream_stage_duration_seconds_bucket" in last
        published_over_time = [sum(s["affectstream_frames_published_total"].values()) for s in scrapes]
        assert published_over_time[-1] > published_over_time[0], "counters move between scrapes"
        margins = [
            sum(s["affectstream_frames_decoded_total"].values()) - p
            for s, p in zip(scrapes, published_over_time, strict=True)
        ]
        print(
            f"{len(scrapes)} scrapes, published {published_over_time[0]:.0f} -> {published_over_time[-1]:.0f}, "
            f"decoded - published min {min(margins):.0f} median {sorted(margins)[len(margins) // 2]:.0f}"
        )

        # the heartbeat carries the same per-source counters for the dashboard
        beats = [json.loads(client.get(k)) for k in client.scan_iter(match=HEARTBEAT_PATTERN)]
        stats = {name: st for b in beats for name, st in b["stats"].items()}
        assert stats["cam"]["live"] is True and stats["clip-a"]["live"] is False
        assert stats["cam"]["decoded"] >= stats["cam"]["published"] > 0 and stats["cam"]["state"] == "live"
        assert all(b["member"] is None and set(b["queues"]) >= {"prepared", "results"} for b in beats)

        # the requested snapshot: a small JPEG under the cap, scaled to the configured width
        import cv2

        jpeg = client.get(snapshot_key("cam"))
        assert 0 < len(jpeg) <= 40000
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and picture.shape[1] == 320
        assert client.pttl(snapshot_key("cam")) <= 1500
        assert not client.exists(snapshot_key("clip-a")) or client.exists(snapshot_request_key("clip-a"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        client.close()
    assert proc.returncode == 0, out
    # every frame accounted for: each worker's closing account per source adds up, nothing in flight
    accounts = [json.loads(m) for m in re.findall(r"accounting (?:does not add up )?(\{.*\})", out)]
    assert {a["source"] for a in accounts} == {"cam", "cam2", *files} and "does not add up" not in out, out
    for a in accounts:
        assert a["in_flight"] == 0 and a["decoded"] == a["published"] + sum(a["dropped"].values()), a
    client = connect(redis_url)
    for cam in ("cam", "cam2"):
        assert events(client, cam)[-1] == "stopped", events(client, cam)
    assert not client.exists(snapshot_key("clip-a")), "no snapshot of a source nobody asked for"
