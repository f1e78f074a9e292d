"""End to end in a real browser: headless Chromium loads the dashboard while a pipeline publishes.

The pipeline is the real one (SCRFD + the MTL-GCN model over a real video, in a thread) publishing
through `ResultPublisher` to a real Redis; the dashboard is served by uvicorn; Debian's Chromium is
driven by selenium through /usr/bin/chromedriver. The screenshot lands in var/test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from pipeline.dashboard.app import create_app
from pipeline.dashboard.state import DashboardState
from pipeline.publish import ResultPublisher, publish_event
from pipeline.redis_conn import connect
from tests.conftest import REPO, missing, need_shared
from tests.consumer.conftest import serve_app

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Without these, Chromium waits on network services that a closed network never answers.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,860")  # fmt: skip
SIGNED = re.compile(r"^[+\u2212]\d\.\d\d$")
READ_PAGE = """
const card = document.querySelector(`.face[data-source="${arguments[0]}"]`);
const row = document.querySelector(`tr.source[data-source="${arguments[0]}"]`);
if (!card || !row) return null;
const text = (root, sel) => root.querySelector(sel).textContent;
return {source: text(card, ".face-source"), track: card.dataset.track, expr: text(card, ".face-expr"),
        v: text(card, ".va-v"), a: text(card, ".va-a"), status: text(row, ".status"),
        fps: text(row, ".fps"), conn: document.getElementById("conn").textContent};
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


def run_pipeline(redis_url: str, video: Path, processor, stop: threading.Event, published: list) -> None:
    """Process the video again and again, publishing every result, until `stop`."""
    from pipeline.process import iter_file_results

    client = connect(redis_url)
    publisher = ResultPublisher(client, maxlen=10_000)
    publish_event(client, "wolfgang", "started", {"url": video.name})
    while not stop.is_set():  # each pass is a new source context (`iter_file_results`)
        for _, result in iter_file_results(str(video), processor, name="wolfgang"):
            publisher.publish([result])
            published.extend((f.track, f.valence, f.arousal) for f in result.faces)
            if stop.is_set():
                break
    client.close()


def test_dashboard_shows_live_source_and_face_values(chromium, redis_url, small_processor):
    from selenium.webdriver.support.ui import WebDriverWait

    video = need_shared("media", "videos", "WolfgangLanger_Pexels.mp4")
    stop, published, failed = threading.Event(), [], []

    def target() -> None:
        try:
            run_pipeline(redis_url, video, small_processor(detect_every=2), stop, published)
        except BaseException as exc:  # surfaced below: a dead publisher must fail the test clearly
            failed.append(exc)

    thread = threading.Thread(target=target, name="pipeline", daemon=True)
    thread.start()
    try:
        with serve_app(create_app(DashboardState(connect(redis_url)))) as base:
            chromium.get(base + "/")

            def page_state(driver):
                assert not failed, f"pipeline thread failed: {failed[0]!r}"
                # One read of the DOM in the page itself: it is redrawn twice a second.
                state = driver.execute_script(READ_PAGE, "wolfgang")
                ok = state and SIGNED.match(state["v"]) and SIGNED.match(state["a"])
                return state if ok else False

            state = WebDriverWait(chromium, 90, poll_frequency=0.2).until(page_state)
            out = REPO / "var" / "test-artifacts" / "dashboard.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            assert chromium.save_screenshot(str(out))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert state["status"] == "live" and float(state["fps"]) > 0 and state["conn"] == "live"
    assert state["expr"] and state["source"] == "wolfgang"

    # The values on the page are ones the pipeline published for that track (2 decimals).
    def shown(x: float) -> str:
        return f"{'+' if x >= 0 else chr(0x2212)}{abs(x):.2f}"

    track = int(state["track"])
    pairs = {(shown(v), shown(a)) for t, v, a in published if t == track and v is not None and a is not None}
    assert (state["v"], state["a"]) in pairs
    assert out.stat().st_size > 20_000
