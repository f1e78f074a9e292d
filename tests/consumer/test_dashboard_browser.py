"""End to end in a real browser: headless Chromium on the dashboard of two real `affectstream run`s.

Everything on the page is real: the GStreamer RTSP server (`tests/rtsp_fixtures.py`) serves a looped
video; run A reads it as `cam-lobby` (snapshots on), a short file `clip-interview` (it finishes) and
`cam-door`, an RTSP URL on a closed port (it keeps reconnecting); run B, at nice 10 so that run A keeps
its CPU, reads the same camera as `cam-busy` with the larger SCRFD-2.5G detector on every frame at 1280x736
(about 5.7 GFLOPs a frame: several times what one core does at the camera's 24 fps; SCRFD-500M there
kept up on a quiet machine): its newest-frame policy drops frames, which its heartbeats count. Nothing is written into Redis by the test. Debian's Chromium is driven by selenium through
/usr/bin/chromedriver; the screenshots (desktop 1280 px wide, narrow 420 px) land in the test's own folder,
or in docs/consumer/ with AFFECTSTREAM_UPDATE_SCREENSHOTS=1 (a test run leaves the tree as it was).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from affectstream.pipeline.consumers.dashboard.app import create_app
from affectstream.pipeline.consumers.dashboard.state import DashboardState
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.keys import frames_key
from tests.conftest import REPO, missing, need_shared
from tests.consumer.conftest import serve_app
from tests.rtsp_fixtures import free_port

pytestmark = pytest.mark.rtsp

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Without these, Chromium waits on network services that a closed network never answers.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,860",
    "--hide-scrollbars",
)
DOCS = REPO / "docs" / "consumer"
READ_PAGE = """
const text = (root, sel) => { const n = root.querySelector(sel); return n ? n.textContent : null; };
const rows = {};
for (const r of document.querySelectorAll("tr.source")) {
  rows[r.dataset.source] = {status: r.dataset.status, dropping: r.classList.contains("dropping"),
    warn: text(r, ".warn"), fps: text(r, ".fps"), input: text(r, ".input-fps"), owner: text(r, ".owner"),
    drops: text(r, ".drops"), latency: text(r, ".latency"), reconnects: text(r, ".reconnects")};
}
const cams = {};
for (const c of document.querySelectorAll(".camera")) {
  const img = c.querySelector("img.snapshot");
  cams[c.dataset.source] = {picture: !img.hidden && img.complete && img.naturalWidth > 0,
    faces: [...c.querySelectorAll(".face")].map((f) => [f.dataset.track, text(f, ".va-v"), text(f, ".va-a")]),
    note: text(c, ".note")};
}
return {rows, cams, conn: document.getElementById("conn").textContent,
        banner: document.getElementById("drop-warning").hidden ? "" : document.getElementById("drop-warning").textContent,
        timelines: document.querySelectorAll("#timelines .timeline-row").length,
        scale: document.getElementById("circumplex-scale").textContent,
        shares: document.getElementById("shares-scope").textContent,
        innerHTML: [...document.querySelectorAll("script")].some((s) => s.text.includes(".innerHTML"))};
"""


@pytest.fixture
def chromium():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        missing(
            "Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def start_run(config: Path, redis_url: str, log: Path, nice: int = 0) -> subprocess.Popen:
    """`affectstream run -c config` as a real process (its output into `log`)."""
    env = {
        **os.environ,
        "AFFECTSTREAM_DETECTOR": str(need_shared("models", "scrfd_500m.onnx")),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "-m", "affectstream", "run", "--redis", redis_url, "-c", str(config)]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_run(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def screenshot(driver, width: int, path: Path) -> None:
    """The whole page at `width` CSS pixels: the window is made as tall as the page first (the window's
    outer size includes the browser's own frame, measured here, so the viewport is what is set)."""
    driver.set_window_size(width, 900)
    frame, height = driver.execute_script(
        "return [window.outerHeight - window.innerHeight, document.documentElement.scrollHeight]"
    )
    driver.set_window_size(width, min(int(height) + int(frame), 4000))
    assert driver.save_screenshot(str(path))


def rate(text: str | None) -> float:
    """A frames/s cell as a number (0 for "–", no figure yet)."""
    try:
        return float(text or "")
    except ValueError:
        return 0.0


def shown(x: float | None) -> str:
    return "n/a" if x is None else f"{'+' if x >= 0 else chr(0x2212)}{abs(x):.2f}"


def test_dashboard_of_real_runs_desktop_and_narrow(chromium, rtsp_server, redis_url, tmp_path):  # noqa: PLR0915 (one end-to-end run, its checks in order)
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = DOCS if os.environ.get("AFFECTSTREAM_UPDATE_SCREENSHOTS") else tmp_path
    clip = need_shared("media", "videos", "single_face.mp4")
    healthy, busy = tmp_path / "run-a.yaml", tmp_path / "run-b.yaml"
    healthy.write_text(
        "workers:\n  heartbeat_s: 0.5\n"
        "snapshots:\n  enabled: true\n  every_s: 1.0\n"
        "sources:\n"
        f"  - {{name: cam-lobby, url: '{rtsp_server.url}'}}\n"
        f"  - {{name: clip-interview, url: '{clip}'}}\n"
        f"  - {{name: cam-door, url: 'rtsp://127.0.0.1:{free_port()}/door'}}\n"
    )
    busy.write_text(
        "workers:\n  heartbeat_s: 0.5\n"
        f"detector:\n  model: '{need_shared('models', 'scrfd_2.5g.onnx')}'\n"
        "  live: {detect_every: 1, input_size: [1280, 736]}\n"
        f"sources:\n  - {{name: cam-busy, url: '{rtsp_server.url}'}}\n"
    )
    runs = [
        start_run(healthy, redis_url, tmp_path / "run-a.log"),
        start_run(busy, redis_url, tmp_path / "run-b.log", nice=10),
    ]
    try:
        with serve_app(create_app(DashboardState(connect(redis_url)))) as base:
            chromium.get(base + "/")

            seen: dict = {}
            lobby_notes = set()  # what the page said in cam-lobby's picture frame before its first snapshot

            def ready(driver):
                for proc, name in zip(runs, ("run-a", "run-b"), strict=True):
                    assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
                page = seen["page"] = driver.execute_script(READ_PAGE)
                rows, cams = page["rows"], page["cams"]
                if "cam-lobby" in cams and not cams["cam-lobby"]["picture"]:
                    lobby_notes.add(cams["cam-lobby"]["note"])
                ok = (
                    rows.get("cam-lobby", {}).get("status") == "live"
                    and rows.get("clip-interview", {}).get("status") == "finished"
                    and rows.get("cam-door", {}).get("status") == "reconnecting"
                    and rows.get("cam-busy", {}).get("dropping")
                    and rate(rows["cam-busy"]["fps"]) > 0  # dropping, yet publishing
                    and cams.get("cam-lobby", {}).get("picture")
                    and cams["cam-lobby"]["faces"]
                )
                return page if ok else False

            try:
                page = WebDriverWait(chromium, 240, poll_frequency=0.5).until(ready)
            except TimeoutException:
                logs = {n: (tmp_path / f"{n}.log").read_text()[-2000:] for n in ("run-a", "run-b")}
                pytest.fail(
                    f"the page never showed all four states; last seen: {seen.get('page')}; logs: {logs}"
                )
            # run B writes no snapshots: its camera says so once the first one is overdue
            busy_note = WebDriverWait(chromium, 60, poll_frequency=0.5).until(
                lambda d: (n := d.execute_script(READ_PAGE)["cams"]["cam-busy"]["note"]) and "off" in n and n
            )
            Select(chromium.find_element("id", "filter")).select_by_value("cam-lobby")
            page = WebDriverWait(chromium, 30, poll_frequency=0.2).until(
                lambda d: (p := d.execute_script(READ_PAGE))["timelines"] > 0 and p
            )
            screenshot(chromium, 1280, shots / "dashboard_desktop.png")
            table_fit = chromium.execute_script(
                "const t = document.getElementById('sources');"
                "return [t.scrollWidth, t.parentElement.clientWidth, document.documentElement.scrollWidth,"
                " window.innerWidth];"
            )
            screenshot(chromium, 420, shots / "dashboard_narrow.png")
            narrow = chromium.execute_script(
                "return [window.innerWidth, getComputedStyle(document.querySelector('#sources thead')).display]"
            )
            lobby_entries = connect(redis_url).xrevrange(frames_key("cam-lobby"), count=3000)
    finally:
        for proc in runs:
            stop_run(proc)

    rows, cams = page["rows"], page["cams"]
    assert page["conn"] == "live" and not page["innerHTML"]
    assert float(rows["cam-lobby"]["fps"]) > 0 and float(rows["cam-lobby"]["input"]) > 0
    assert rows["cam-lobby"]["owner"].endswith("-w0")
    busy_row = rows["cam-busy"]
    assert busy_row["warn"].startswith("dropping ") and "cam-busy" in page["banner"]
    assert int(busy_row["drops"].split()[0]) > 0
    assert int(rows["cam-door"]["reconnects"]) >= 1 and "cam-door" in cams and not cams["cam-door"]["picture"]
    assert "clip-interview" not in cams  # a finished file has no live picture
    # snapshots on (run A): never called off while the first one is on its way; off (run B): said so
    assert not [n for n in lobby_notes if n and "off" in n], lobby_notes
    assert "snapshots are off by default" in busy_note, busy_note
    assert page["scale"].startswith("cam-lobby") and "axes \u00b1" in page["scale"]
    assert page["shares"].startswith("cam-lobby")
    assert narrow[0] <= 480 and narrow[1] == "none"  # the table's rows are cards on a narrow screen
    # at 1280 px the sources table fits its card, and the page does not scroll sideways
    assert table_fit[0] <= table_fit[1] and table_fit[2] <= table_fit[3], table_fit

    # The face values on the page are ones the pipeline published for that track (2 decimals).
    published = set()
    for _, fields in lobby_entries:
        for f in json.loads(fields[b"faces"]):
            published.add((str(f["track"]), shown(f.get("valence")), shown(f.get("arousal"))))
    assert all(tuple(face) in published for face in cams["cam-lobby"]["faces"])
    for name in ("dashboard_desktop.png", "dashboard_narrow.png"):
        assert (shots / name).stat().st_size > 30_000
