"""The benchmark's arithmetic: which stage is slowest, the shared-core bound, the pass/fail checks.

The benchmark itself takes minutes (`make bench`); these tests pin the formulas its report rests on.
"""

import pytest

from bench import stages
from bench.run import checks
from bench.stats import percentile

FPS = {
    "decode": 500.0,
    "detect_640x640": 60.0,
    "detect_640x640_x2": 90.0,
    "detect_320x320": 190.0,
    "align": 2800.0,
    "engine_b1_faces": 1400.0,
    "engine_b8_faces": 2800.0,
    "engine_b32_faces": 3500.0,
    "publish": 19000.0,
}


def test_slowest_stage_counts_detection_at_its_best_standalone_throughput():
    # The parallel detectors (90) beat one detector with two intra-op threads (60): 90 is the bar.
    assert stages.slowest_stage(FPS, "640x640", 1.5, 32) == ("detect_640x640_x2", 90.0)


def test_slowest_stage_converts_the_engine_to_frames_at_the_workload_faces_per_frame():
    # 3500 faces/s at 50 faces per frame is 70 frames/s: slower than detection.
    assert stages.slowest_stage(FPS, "640x640", 50.0, 32) == ("engine_b32", 70.0)
    # A max batch of 8 uses the batch-8 figure: 2800 / 50 = 56.
    assert stages.slowest_stage(FPS, "640x640", 50.0, 8) == ("engine_b8", 56.0)


def test_shared_core_bound_is_cores_over_the_summed_cpu_per_frame():
    cpu = {"decode": 2.5, "detect_640x640_x2": 21.5, "align": 0.5, "publish": 0.1, "engine_b32_faces": 0.6}
    # 2.5 + 21.5 + 0.5 + 0.1 + 0.6 * 1.5 = 25.5 ms per frame; two cores -> 2000 / 25.5 frames/s.
    assert stages.shared_core_bound(cpu, "detect_640x640_x2", 1.5, 32, 2) == pytest.approx(2000 / 25.5)
    assert stages.shared_core_bound(cpu, "detect_640x640_x2", 0.0, 32, 1) == pytest.approx(1000 / 24.6)


def test_checks_apply_the_issue_thresholds():
    out = {
        "ratios": {"e2e_over_slowest_stage": 0.849, "e2e_over_naive": 2.0},
        "live_p99_ms": 100.0,
        "live": {"4": {"p99_per_window_ms": [80.0, 90.0, 120.0]}},
    }
    assert checks(out) == {
        "e2e_ge_85pct_of_slowest_stage": False,
        "e2e_ge_2x_naive": True,
        "live_1_stream_p99_le_100ms": True,
        "live_4_streams_bounded": True,  # 120 <= 1.25 * 80 + 20
    }
    out["live"]["4"]["p99_per_window_ms"] = [80.0, 90.0, 121.0]
    assert checks(out)["live_4_streams_bounded"] is False


def test_percentile_interpolates_linearly():
    assert percentile([], 99) == 0.0
    assert percentile([10.0], 99) == 10.0
    assert percentile([0.0, 10.0, 20.0, 30.0, 40.0], 50) == 20.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)
