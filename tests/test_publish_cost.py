"""bench/publish_cost.py against a real redis-server: the commands Redis counts per published frame (those
inside the publish script included) are exact, so they are asserted exactly; `make bench` reports them."""

from __future__ import annotations

import pytest

from bench.publish_cost import measure
from bench.run import checks


def test_commands_per_frame_as_redis_counts_them(redis_url):
    cost = measure(redis_url, frames=128, runs=1)
    # a round trip: EVALSHA + the fence's GET, then one XADD per frame (no SCRIPT EXISTS, and no XINFO
    # STREAM: the tail is checked only after the server changed, tests/test_server_watch.py)
    assert cost["file pass, 64 a round trip"]["commands_per_frame"] == pytest.approx(
        (2 * 2 + 128) / 128, abs=1e-3
    )
    assert cost["file pass, 8 frames a round trip"]["commands_per_frame"] == pytest.approx(
        (16 * 2 + 128) / 128, abs=1e-3
    )
    assert cost["camera pace"]["commands_per_frame"] == 3.0
    assert 200 < cost["memory_bytes_per_entry"] < 1000
    assert all(
        row["bytes_in_per_frame"] > 300 for row in cost.values() if isinstance(row, dict) and "batch" in row
    )
    verdict = checks({"publish_cost": cost})
    assert verdict["publish_le_1_1_commands_per_frame"] is True
    assert "## Redis cost per published frame" in markdown_section(cost)


def markdown_section(cost: dict) -> str:
    from bench.report import _publish_table

    return "\n".join(_publish_table(cost))
