"""Camera capacity: what `fleet.max_sources: auto` reads, the live detect settings, a real short search."""

import json
import logging
from types import SimpleNamespace

import pytest

from affectstream.pipeline.fleet import capacity
from affectstream.pipeline.fleet.capacity import FALLBACK, machine_facts, member_capacity, write_capacity
from tests.conftest import need_shared


@pytest.fixture
def capacity_file(tmp_path, monkeypatch):
    path = tmp_path / "capacity.json"
    monkeypatch.setenv("AFFECTSTREAM_CAPACITY_FILE", str(path))
    return path


def test_a_number_is_the_capacity_itself(capacity_file):
    write_capacity(capacity_file, 9, {})
    assert member_capacity(4) == 4


def test_auto_reads_what_was_measured_on_this_machine(capacity_file):
    write_capacity(capacity_file, 7, {"rows": []})
    assert json.loads(capacity_file.read_text())["machine"] == machine_facts()
    assert member_capacity("auto") == 7


def test_auto_without_a_file_falls_back_with_one_log_line(capacity_file, caplog):
    with caplog.at_level(logging.INFO, logger=capacity.__name__):
        assert member_capacity("auto") == FALLBACK == 3
    assert len(caplog.records) == 1 and "bench capacity" in caplog.text


@pytest.mark.parametrize("foreign", [{"cores": 64}, {"cpu": "Some Other CPU"}])
def test_a_file_measured_on_another_machine_is_not_trusted(capacity_file, foreign, caplog):
    data = {"capacity": 40, "machine": {**machine_facts(), **foreign}}
    capacity_file.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger=capacity.__name__):
        assert member_capacity("auto") == FALLBACK
    assert "measured on" in caplog.text


@pytest.mark.parametrize(
    "text", ["{not json", '{"capacity": "many", "machine": {}}', '{"machine": {}}', "[]"]
)
def test_an_unreadable_file_falls_back(capacity_file, text):
    capacity_file.write_text(text)
    assert member_capacity("auto") == FALLBACK


def test_a_machine_that_met_the_targets_with_no_camera_still_holds_one(capacity_file):
    write_capacity(capacity_file, 0, {})
    assert member_capacity("auto") == 1


def test_live_sources_get_detector_live_and_files_keep_the_detector_settings():
    from affectstream.pipeline.config import load_config
    from affectstream.pipeline.frames.processor import FrameProcessor

    cfg = load_config(
        None, {"detector": {"detect_every": 2, "live": {"input_size": [320, 192], "detect_every": 4}}}
    )
    live = (cfg.detector.live.detect_every, cfg.detector.live.input_size)
    processor = FrameProcessor([object()], SimpleNamespace(spec=None), detect_every=2, live=live)
    camera, file = processor.new_source("cam", live=True), processor.new_source("clip")
    assert (camera.detect_every, camera.detector_input) == (4, (320, 192))
    assert (file.detect_every, file.detector_input) == (2, None)
    # Without live settings (archive jobs, rendering) every source is detected alike.
    plain = FrameProcessor([object()], SimpleNamespace(spec=None), detect_every=2).new_source(
        "cam", live=True
    )
    assert (plain.detect_every, plain.detector_input) == (2, None)


def test_one_detector_detects_each_call_at_the_input_it_is_given():
    import cv2

    from affectstream.pipeline.frames.detect import FaceDetector

    scrfd = need_shared("models", "scrfd_500m.onnx")
    image = cv2.resize(cv2.imread(str(need_shared("media", "images", "multi_face.jpg"))), (640, 360))
    shared = FaceDetector(scrfd, input_size=(640, 640))
    for size in ("auto", (320, 192)):
        alone = FaceDetector(scrfd, input_size=size).detect(image)
        given = shared.detect(image, size)
        assert [d.box.tolist() for d in given] == [d.box.tolist() for d in alone] and alone
    assert shared.input_size_for(640, 360, "auto") == (640, 384)
    assert shared.input_size_for(640, 360) == (640, 640)


def test_capacity_cli_settings():
    import argparse

    from bench.cli import add_capacity_arguments, capacity_settings_from_args

    parser = argparse.ArgumentParser()
    add_capacity_arguments(parser)
    hd = (1920, 1080)
    s = capacity_settings_from_args(parser.parse_args(["--baseline", "--detect-every", "3", "--quick"]), hd)
    assert s.live == {"input_size": [640, 640], "detect_every": 3} and s.resolution == hd
    assert (s.seconds, s.runs, s.max_cameras) == (4.0, 1, 2)
    assert capacity_settings_from_args(parser.parse_args(["--input-size", "auto"]), hd).live == {
        "input_size": "auto"
    }
    assert capacity_settings_from_args(parser.parse_args([]), hd).live is None  # the config's defaults
    assert parser.parse_args(["--resolution", "1920x1080"]).resolution == hd
    with pytest.raises(SystemExit):
        parser.parse_args(["--resolution", "1080p"])


@pytest.mark.timeout(180)
def test_a_short_real_search_of_one_or_two_cameras(redis_url, tmp_path, model_path, capacity_file):
    from bench.capacity import CapacitySettings, cpu_bound, resolved_live, run_capacity

    s = CapacitySettings(seconds=2.0, runs=1, max_cameras=2)
    res = run_capacity(s, model=model_path, redis_url=redis_url, workdir=str(tmp_path))
    assert res["live"] == resolved_live(None)  # the config's live defaults
    assert (res["width"], res["height"]) == (640, 360) and res["cpu_ms_per_frame"] > 0
    assert res["cpu_bound_cameras"] == cpu_bound(res["rows"][-1]["cpu_ms_per_frame"])
    rows = res["rows"]
    assert [r["cameras"] for r in rows] == list(range(1, len(rows) + 1)) and 1 <= len(rows) <= 2
    for r in rows:
        assert r["ok"] == (r["drop_rate"] <= 0.01 and r["p99_ms"] <= 100.0)
        assert r["runs"][0]["published"] > 0
    # The capacity is the last count that met the targets, and the search stops at the first miss.
    assert res["capacity"] == sum(r["ok"] for r in rows) and all(r["ok"] for r in rows[:-1])
    assert res["complete"] == (not rows[-1]["ok"])  # else max_cameras cut it: the capacity is a floor
    write_capacity(capacity_file, res["capacity"], {"rows": rows})
    assert member_capacity("auto") == max(1, res["capacity"])


def test_cameras_detect_on_spread_frames_and_the_first_frame_always():
    from affectstream.pipeline.frames.context import SourceContext
    from affectstream.pipeline.frames.processor import FrameProcessor

    ctx = SourceContext("a", detect_every=4, detect_phase=1)
    assert [i for i in range(10) if ctx.detect_due()] == [0, 1, 5, 9]
    ctx.reset()  # a reconnect: the tracks are gone, the next frame is detected
    assert [ctx.detect_due() for _ in range(3)] == [True, True, False]
    processor = FrameProcessor([object()], SimpleNamespace(spec=None), live=(12, "auto"))
    phases = [processor.new_source(f"cam{i}", live=True).detect_phase for i in range(4)]
    assert phases[0] == 0 and len(set(phases)) == 4
    assert processor.new_source("file").detect_phase == 0  # files keep the detection frames of their results


def test_a_1080p_camera_clip_is_real_1080p_h264(tmp_path):
    """`bench capacity --resolution 1920x1080` replays a clip that decodes at 1920x1080, 30 fps."""
    from affectstream.pipeline.sources import probe
    from bench.inputs import live_clip

    info = probe(live_clip(tmp_path, size=(1920, 1080)))
    assert (info.width, info.height) == (1920, 1080) and round(info.fps) == 30 and info.frames > 100
